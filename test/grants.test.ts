/**
 * A release hands its slot to the oldest waiter inside the same Redis step: the waiter never
 * asks again. Two apps on two clients stand for two processes (two instances, the grant
 * crossing Redis pub/sub); the backoff is so long (10 s) that a poll cannot explain a
 * waiter getting a slot within these tests.
 */
import t from 'tap'
import { RedisStore } from '../lib/stores/redis-store'
import type { GrantListener, SlotStore, TryAcquireArgs } from '../lib/stores/store'
import { wrapStore } from './helpers/wrapped-store'
import { client, holders, keysLeft, keysUnder, redisUrl, uniquePrefix } from './helpers/redis'
import { eventually, sleep, slotsApp } from './helpers/app'

const SLOW_BACKOFF = { initialMs: 10_000, maxMs: 10_000 }

/** A Redis store that counts tries and can drop the grant messages from other instances. */
function inspectedStore (inner: RedisStore, options: { dropClaims?: boolean } = {}): SlotStore & { tries: number } {
  const store = Object.assign(wrapStore(inner, {
    tryAcquire: (args: TryAcquireArgs) => { store.tries++; return inner.tryAcquire(args) },
    onGrant: (instanceId: string, listener: GrantListener) => inner.onGrant(instanceId, (ref, claimed) => {
      if (!(claimed && options.dropClaims === true)) listener(ref, claimed)
    })
  }), { tries: 0 })
  return store
}

async function holderScore (t: tap.Test, url: string, prefix: string, tag: string): Promise<number> {
  const redis = client(t, url)
  const [member, score] = await redis.zrange(`${prefix}:{${tag}}:holders`, '0', '0', 'WITHSCORES')
  t.ok(member !== undefined, 'one holder')
  const [s, us] = await redis.time()
  return Number(score) - (Number(s) * 1000 + Math.floor(Number(us) / 1000))
}

t.test('a release in one instance grants the slot to a waiter of another: one try, no poll', async t => {
  const url = await redisUrl(t)
  const prefix = uniquePrefix('grant-cross')
  const appA = await slotsApp(t, { redis: client(t, url), prefix })
  const storeB = inspectedStore(new RedisStore({ client: client(t, url), prefix }))
  const appB = await slotsApp(t, { store: storeB, backoff: SLOW_BACKOFF })
  await appB.slots.ready

  const held = await appA.slots.acquire('user', 'g', 1)
  const waiting = appB.slots.acquire('user', 'g', 1)
  const redis = client(t, url)
  await eventually(async () => await redis.zcard(`${prefix}:{user:g}:tickets`) === 1)
  const released = Date.now()
  await held.release()
  const slot = await waiting
  const handOffMs = Date.now() - released
  t.ok(handOffMs < 1000, `B holds the slot ${handOffMs} ms after A's release (its next poll was 10 s away)`)
  t.equal(storeB.tries, 1, 'B tried once, when it arrived: the slot came to it')
  t.equal(await holders(redis, prefix, 'user:g'), 1)
  await slot.release()
  t.same(await keysLeft(redis, prefix), [], 'nothing left')
})

t.test('a slot granted by another instance is a claim, confirmed to a full lease as soon as it arrives', async t => {
  const url = await redisUrl(t)
  const prefix = uniquePrefix('grant-claim')
  // Ticket ttl min(2 * (backoff.maxMs 200 + storeTimeoutMs 100), leaseMs / 2) = 600 ms: claims
  // last the rest of the lease, 4400 ms; leases last 5 s.
  const options = { leaseMs: 5000, storeTimeoutMs: 100, backoff: { initialMs: 200, maxMs: 200 } }
  const appA = await slotsApp(t, { redis: client(t, url), prefix, ...options })
  const appB = await slotsApp(t, { redis: client(t, url), prefix, ...options })
  const lost: unknown[] = []
  appB.slots.on('lost', event => lost.push(event))
  await appB.slots.ready

  const held = await appA.slots.acquire('user', 'c', 1)
  const waiting = appB.slots.acquire('user', 'c', 1)
  const redis = client(t, url)
  await eventually(async () => await redis.zcard(`${prefix}:{user:c}:tickets`) === 1)
  await held.release()
  const slot = await waiting
  const confirmedMs = await eventually(async () => await holderScore(t, url, prefix, 'user:c') > 4400, 500, 2)
  t.ok(confirmedMs < 500, `the claim (4400 ms) became a full lease ${confirmedMs} ms after the grant arrived`)
  await sleep(1500)
  const lease = await holderScore(t, url, prefix, 'user:c')
  t.ok(lease > 3000, `1.5 s later it still holds a lease: ${lease} ms left (leaseMs 5000)`)
  t.same(lost, [], 'never reported lost')
  t.equal(appB.slots.stats().held, 1)
  await slot.release()
  await eventually(async () => (await keysUnder(redis, prefix)).length === 0)
})

t.test('a grant whose message is lost still reaches its waiter (the ticket refresh finds it granted)', async t => {
  const url = await redisUrl(t)
  const prefix = uniquePrefix('grant-lost')
  // Tickets refresh every 2 * (1000 + 200) / 3 = 800 ms; the head's polls are 1 s apart, so
  // the second waiter (not the head) can only learn of its grant from the refresh.
  const options = { storeTimeoutMs: 200, backoff: { initialMs: 1000, maxMs: 1000 } }
  const appA = await slotsApp(t, { redis: client(t, url), prefix, ...options })
  const storeB = inspectedStore(new RedisStore({ client: client(t, url), prefix }), { dropClaims: true })
  const appB = await slotsApp(t, { store: storeB, ...options })
  const redis = client(t, url)

  const held = [await appA.slots.acquire('user', 'l', 2), await appA.slots.acquire('user', 'l', 2)]
  const first = appB.slots.acquire('user', 'l', 2, { maxWaitMs: 10_000 })
  await eventually(async () => await redis.zcard(`${prefix}:{user:l}:tickets`) === 1)
  const second = appB.slots.acquire('user', 'l', 2, { maxWaitMs: 10_000 })
  await eventually(async () => await redis.zcard(`${prefix}:{user:l}:tickets`) === 2)
  await Promise.all(held.map(slot => slot.release()))
  t.equal(await holders(redis, prefix, 'user:l'), 2, 'both waiters were granted a slot in Redis')
  const slots = await Promise.all([first, second])
  // Polls come at 1000 ms (the head) and 2000 ms (the next head); refreshes every 800 ms.
  t.ok(slots.every(slot => slot.waitedMs < 1800), `and both got it without the message, before a second poll: waited ${slots.map(s => s.waitedMs).join(' and ')} ms`)
  t.equal(appB.slots.stats().held, 2)
  await Promise.all(slots.map(slot => slot.release()))
  await eventually(async () => (await keysUnder(redis, prefix)).length === 0)
})

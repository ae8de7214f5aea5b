/**
 * Finding 12: waiters that gave up while the store was failing kept their tickets (their one
 * cleanup failed too); after recovery the next releases granted slots to them, held by nobody
 * for a claim or a whole lease. Cleanup is now retried, and a grant that reaches a member
 * nobody waits for is given back at once.
 */
import t from 'tap'
import { RedisStore } from '../../lib'
import { client, holders, redisUrl, uniquePrefix } from '../helpers/redis'
import { sleep, slotsApp } from '../helpers/app'
import { wrapStore } from '../helpers/wrapped-store'

t.test('after an outage, a slot granted to a waiter that gave up goes straight to a live one', async t => {
  const url = await redisUrl(t)
  const redis = client(t, url)
  const prefix = uniquePrefix('outage')
  const holderApp = await slotsApp(t, { redis: client(t, url), prefix })
  const inner = new RedisStore({ client: client(t, url), prefix })
  let failing = false
  const fail = async (): Promise<never> => { throw new Error('simulated outage') }
  const store = wrapStore(inner, {
    poll: args => failing ? fail() : inner.poll(args),
    abandon: args => failing ? fail() : inner.abandon(args),
    refreshTickets: (refs, ttl) => failing ? fail() : inner.refreshTickets(refs, ttl)
  })
  const waiterApp = await slotsApp(t, { store, backoff: { initialMs: 20, maxMs: 50 } })
  const newcomerApp = await slotsApp(t, { redis: client(t, url), prefix })
  await Promise.all([waiterApp.slots.ready, newcomerApp.slots.ready])

  const held = await holderApp.slots.acquire('user', 'outage', 1)
  const gaveUp = waiterApp.slots.acquire('user', 'outage', 1).then(() => 'acquired', (err: { code: string }) => err.code)
  await sleep(50)
  failing = true
  t.equal(await gaveUp, 'SLOT_STORE_UNAVAILABLE', 'the waiter got 503 during the outage')
  t.equal(await redis.zcard(`${prefix}:{user:outage}:tickets`), 1, 'and its ticket is still in Redis')
  const newcomer = newcomerApp.slots.acquire('user', 'outage', 1, { maxWaitMs: 5000 })
  await sleep(50)
  failing = false
  await held.release()
  const started = Date.now()
  const slot = await newcomer
  t.ok(Date.now() - started < 1000, `the live waiter holds the slot ${Date.now() - started} ms after the release`)
  t.equal(await holders(redis, prefix, 'user:outage'), 1)
  await slot.release()
})

/**
 * A freed slot goes to a waiter at once, not at its next poll: these tests make the backoff
 * so long (10 s) that only a wake-up can explain a waiter getting the slot within the test.
 */
import t from 'tap'
import { MemoryStore } from '../lib/stores/memory-store'
import { client, holders, keysLeft, redisUrl, uniquePrefix } from './helpers/redis'
import { eventually, sleep, slotsApp } from './helpers/app'
import { startFixture } from './helpers/processes'

const SLOW_BACKOFF = { initialMs: 10_000, maxMs: 10_000 }

t.test('a release in another process wakes the waiter through Redis pub/sub', async t => {
  const url = await redisUrl(t)
  const redis = client(t, url)
  const prefix = uniquePrefix('wake-cross')
  const holderApp = await slotsApp(t, { redis, prefix })
  const held = await holderApp.slots.acquire('user', 'shared', 1)
  const waiter = await startFixture(t, 'slots-server.ts', { REDIS_URL: url, PREFIX: prefix, MAX: '1', HOLD_MS: '1', BACKOFF_MS: '10000' })
  const response = fetch(`http://127.0.0.1:${String(waiter.hello.port)}/work`)
  await eventually(async () => await redis.zcard(`${prefix}:{user:shared}:tickets`) === 1)
  await held.release()
  const res = await response
  const body = await res.json() as { waitedMs: number }
  t.equal(res.status, 200)
  t.ok(body.waitedMs < 5000, `the waiter got the slot ${body.waitedMs} ms after it asked, not at its 10 s poll`)
  t.same(await keysLeft(redis, prefix), [], 'nothing left')
})

for (const store of ['memory', 'redis'] as const) {
  t.test(`a release in the same process wakes the oldest waiter at once (${store})`, async t => {
    const options = store === 'redis'
      ? { redis: client(t, await redisUrl(t)), prefix: uniquePrefix('wake-local') }
      : { store: new MemoryStore() }
    const app = await slotsApp(t, { ...options, backoff: SLOW_BACKOFF })
    const first = await app.slots.acquire('user', 'u', 1)
    const order: number[] = []
    const waiters = [1, 2, 3, 4].map(async n => {
      await sleep(n * 20) // arrive in order
      const slot = await app.slots.acquire('user', 'u', 1)
      order.push(n)
      await sleep(5)
      await slot.release()
    })
    await sleep(150)
    const started = Date.now()
    await first.release()
    await Promise.all(waiters)
    t.same(order, [1, 2, 3, 4], 'served in arrival order')
    t.ok(Date.now() - started < 5000, 'each release handed the slot on at once')
    t.equal(app.slots.stats().waiting, 0)
  })
}

t.test('a newcomer does not barge past waiters of its own process', async t => {
  const app = await slotsApp(t, { store: new MemoryStore(), backoff: SLOW_BACKOFF })
  const holder = await app.slots.acquire('user', 'b', 1)
  const order: string[] = []
  const waiting = app.slots.acquire('user', 'b', 1).then(slot => { order.push('waiter'); return slot })
  await sleep(20)
  await holder.release()
  // The release woke the waiter; a newcomer arriving in the same tick must queue behind it.
  const newcomer = app.slots.acquire('user', 'b', 1).then(slot => { order.push('newcomer'); return slot })
  const first = await waiting
  await first.release()
  await (await newcomer).release()
  t.same(order, ['waiter', 'newcomer'])
})

t.test('with room for two, one release pass serves two local waiters', async t => {
  const url = await redisUrl(t)
  const redis = client(t, url)
  const prefix = uniquePrefix('wake-room')
  const app = await slotsApp(t, { redis, prefix, backoff: SLOW_BACKOFF })
  const a = await app.slots.acquire('user', 'r', 2)
  const b = await app.slots.acquire('user', 'r', 2)
  const waiters = [app.slots.acquire('user', 'r', 2), app.slots.acquire('user', 'r', 2)]
  await sleep(50)
  await Promise.all([a.release(), b.release()])
  const slots = await Promise.all(waiters)
  t.equal(await holders(redis, prefix, 'user:r'), 2, 'both waiters hold a slot')
  await Promise.all(slots.map(s => s.release()))
})

t.test('fair mode across processes: the oldest waiter anywhere is served first', async t => {
  const url = await redisUrl(t)
  const redis = client(t, url)
  const prefix = uniquePrefix('fair')
  const app = await slotsApp(t, { redis, prefix, fair: true, backoff: SLOW_BACKOFF })
  const held = await app.slots.acquire('user', 'shared', 1)
  const other = await startFixture(t, 'slots-server.ts', { REDIS_URL: url, PREFIX: prefix, MAX: '1', HOLD_MS: '50', BACKOFF_MS: '10000', FAIR: '1' })
  const done: string[] = []
  // The other process's request queues first, then one of ours.
  const remote = fetch(`http://127.0.0.1:${String(other.hello.port)}/work`).then(() => done.push('remote (older)'))
  await eventually(async () => await redis.zcard(`${prefix}:{user:shared}:tickets`) === 1)
  const local = app.slots.acquire('user', 'shared', 1).then(async slot => { done.push('local (newer)'); await slot.release() })
  await eventually(async () => await redis.zcard(`${prefix}:{user:shared}:tickets`) === 2)
  await sleep(100)
  await held.release()
  await Promise.all([remote, local])
  t.same(done, ['remote (older)', 'local (newer)'], 'the release in this process still went to the older waiter elsewhere')
  t.same(await keysLeft(redis, prefix), [])
})

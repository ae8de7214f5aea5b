/**
 * Finding 6: ioredis resends an unanswered command after a reconnect. A resent first try
 * queued behind its own slot (or, with maxWaiters 0, answered SLOT_QUEUE_FULL on a free
 * subject), and a resent release reported the slot `lost`. Every store operation is now safe
 * to run twice. Here each operation runs twice against real Redis and the plugin sees the
 * second answer, as it would after a lost reply.
 */
import t from 'tap'
import { RedisStore } from '../../lib'
import { client, holders, keysLeft, redisUrl, uniquePrefix } from '../helpers/redis'
import { slotsApp } from '../helpers/app'
import { wrapStore } from '../helpers/wrapped-store'

t.test('a first try and a release that run twice: acquired at once, released, never lost', async t => {
  const url = await redisUrl(t)
  const redis = client(t, url)
  const prefix = uniquePrefix('resent')
  const inner = new RedisStore({ client: client(t, url), prefix })
  const store = wrapStore(inner, {
    tryAcquire: async args => { await inner.tryAcquire(args); return await inner.tryAcquire(args) },
    release: async args => { await inner.release(args); return await inner.release(args) }
  })
  const app = await slotsApp(t, { store, maxWaiters: 0, maxWaitMs: 2000 })
  const events: string[] = []
  app.slots.on('lost', () => events.push('lost')).on('released', () => events.push('released'))

  const started = Date.now()
  const slot = await app.slots.acquire('user', 'resent', 1)
  t.ok(Date.now() - started < 100, `acquired in ${Date.now() - started} ms: the resent try found its own slot`)
  t.equal(await holders(redis, prefix, 'user:resent'), 1, 'one holder, not two')
  await slot.release()
  t.same(events, ['released'], 'a release that ran twice is released, not lost')
  t.same(await keysLeft(redis, prefix), [])
})

t.test('a first try that runs twice on a full subject keeps one ticket and never counts it against maxWaiters', async t => {
  const url = await redisUrl(t)
  const redis = client(t, url)
  const prefix = uniquePrefix('resent-full')
  const inner = new RedisStore({ client: client(t, url), prefix })
  const store = wrapStore(inner, {
    tryAcquire: async args => { await inner.tryAcquire(args); return await inner.tryAcquire(args) }
  })
  const app = await slotsApp(t, { store, maxWaiters: 1 })
  const held = await app.slots.acquire('user', 'rf', 1)
  const waiting = app.slots.acquire('user', 'rf', 1).then(() => 'acquired', (err: { code: string }) => err.code)
  await new Promise(resolve => setTimeout(resolve, 100))
  t.equal(await redis.zcard(`${prefix}:{user:rf}:tickets`), 1, 'one ticket')
  await held.release()
  t.equal(await waiting, 'acquired', 'the waiter was not refused as queue-full by its own ticket')
})

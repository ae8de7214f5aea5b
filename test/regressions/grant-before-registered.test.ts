/**
 * Finding 7: a waiter entered the wait registry only after its first try's reply came back;
 * a release in that window granted it, the grant found nobody, and the waiter learnt of its
 * slot at its next poll (7.3 s in test/wakeups.test.ts with a 10 s backoff). Acquisitions are
 * now registered before their first store call.
 */
import t from 'tap'
import { RedisStore } from '../../lib'
import { client, redisUrl, uniquePrefix } from '../helpers/redis'
import { sleep, slotsApp } from '../helpers/app'
import { wrapStore } from '../helpers/wrapped-store'

t.test('a grant that arrives while the first try\'s reply is still on its way is taken at once', async t => {
  const url = await redisUrl(t)
  const prefix = uniquePrefix('grant-early')
  const holderApp = await slotsApp(t, { redis: client(t, url), prefix })
  const inner = new RedisStore({ client: client(t, url), prefix })
  // The first try lands in Redis at once; its reply reaches the plugin 1 s later.
  const store = wrapStore(inner, {
    tryAcquire: async args => {
      const outcome = await inner.tryAcquire(args)
      await sleep(1000)
      return outcome
    }
  })
  const waiterApp = await slotsApp(t, { store, backoff: { initialMs: 10_000, maxMs: 10_000 } })
  await waiterApp.slots.ready

  const held = await holderApp.slots.acquire('user', 'early', 1)
  const waiting = waiterApp.slots.acquire('user', 'early', 1)
  await sleep(100) // its ticket is in Redis, its reply is not back
  await held.release()
  const slot = await waiting
  t.ok(slot.waitedMs < 1000, `held after ${slot.waitedMs} ms, before the first try's reply came (1000 ms) and long before a poll (10 s)`)
  await slot.release()
})

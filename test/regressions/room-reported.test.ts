/**
 * Finding 9: the Redis store answered "acquired, now full" while expired holders still
 * counted (it purged only when full), so the next local waiter slept a backoff instead of
 * trying at once. The answer is now exact on both stores.
 */
import t from 'tap'
import { AcquireOutcome, MemoryStore, RedisStore } from '../../lib'
import { memberName, type SlotStore } from '../../lib/stores/store'
import { client, redisUrl, uniquePrefix } from '../helpers/redis'
import { sleep } from '../helpers/app'

for (const kind of ['redis', 'memory'] as const) {
  t.test(`${kind}: an acquire that leaves room says so, even with an expired holder still stored`, async t => {
    const store: SlotStore = kind === 'redis'
      ? new RedisStore({ client: client(t, await redisUrl(t)), prefix: uniquePrefix('room'), wakeups: false })
      : new MemoryStore()
    t.teardown(() => store.close?.())
    const base = { tag: 'user:room', max: 2, maxWaiters: 10, ticketTtlMs: 1000 }
    t.equal(await store.tryAcquire({ ...base, member: memberName('x', 1, 2, 1000), leaseMs: 50 }), AcquireOutcome.AcquiredWithRoom)
    await sleep(100) // its lease lapsed, nobody purged it
    t.equal(await store.tryAcquire({ ...base, member: memberName('x', 2, 2, 1000), leaseMs: 5000 }), AcquireOutcome.AcquiredWithRoom,
      'one live holder of two: room left')
    t.equal(await store.tryAcquire({ ...base, member: memberName('x', 3, 2, 1000), leaseMs: 5000 }), AcquireOutcome.Acquired, 'now full')
  })
}

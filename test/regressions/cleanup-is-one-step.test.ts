/**
 * Finding 4: a waiter that gave up was cleaned up by two store operations (release, then
 * leave the queue) that could land in two script calls; a release elsewhere in between
 * granted the waiter that had already left, and its slot stayed held by nobody for a claim.
 * Giving up is now one atomic `abandon`: a slot granted just before goes to the next waiter.
 */
import t from 'tap'
import { MemoryStore, RedisStore } from '../../lib'
import { memberName, type SlotStore } from '../../lib/stores/store'
import { client, redisUrl, uniquePrefix } from '../helpers/redis'

for (const kind of ['redis', 'memory'] as const) {
  t.test(`${kind}: abandoning a just-granted waiter hands its slot to the next one in the same step`, async t => {
    const store: SlotStore = kind === 'redis'
      ? new RedisStore({ client: client(t, await redisUrl(t)), prefix: uniquePrefix('abandon'), wakeups: false })
      : new MemoryStore()
    t.teardown(() => store.close?.())
    const tag = 'user:ab'
    const [holder, left, next] = ['h', 'w', 'n'].map((name, i) => memberName(name, i, 1, 5000))
    const base = { tag, max: 1, leaseMs: 5000, maxWaiters: 10, ticketTtlMs: 5000 }
    await store.tryAcquire({ ...base, member: holder })
    await store.tryAcquire({ ...base, member: left })
    await store.tryAcquire({ ...base, member: next })
    await store.release({ tag, member: holder, leaseMs: 5000 }) // grants `left`, which already gave up
    await store.abandon({ tag, member: left, leaseMs: 5000 })
    t.same(await store.renew([{ tag, member: left }, { tag, member: next }], 5000), [false, true],
      'the slot granted to the waiter that left is the next waiter\'s now')
    await store.abandon({ tag, member: left, leaseMs: 5000 })
    t.same(await store.renew([{ tag, member: next }], 5000), [true], 'abandoning twice changes nothing')
  })
}

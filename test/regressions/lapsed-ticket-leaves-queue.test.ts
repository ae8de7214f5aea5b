/**
 * Finding 8: refreshing a lapsed ticket removed the ticket but left its arrival-order entry,
 * which the next release granted while skipping a live waiter (a slot held by nobody for a
 * claim). A ticket found lapsed now leaves the queue too; and a grant pass drops any queue
 * entry whose ticket is gone.
 */
import t from 'tap'
import { MemoryStore, RedisStore } from '../../lib'
import { memberName, type SlotStore } from '../../lib/stores/store'
import { client, redisUrl, uniquePrefix } from '../helpers/redis'
import { sleep } from '../helpers/app'

for (const kind of ['redis', 'memory'] as const) {
  t.test(`${kind}: after a lapsed ticket's refresh, a release grants the live waiter behind it`, async t => {
    const url = kind === 'redis' ? await redisUrl(t) : ''
    const prefix = uniquePrefix('lapsed-queue')
    const store: SlotStore = kind === 'redis' ? new RedisStore({ client: client(t, url), prefix, wakeups: false }) : new MemoryStore()
    t.teardown(() => store.close?.())
    const tag = 'user:lq'
    const [holder, dead, live] = ['h', 'd', 'l'].map((name, i) => memberName(name, i, 1, 5000))
    const base = { tag, max: 1, leaseMs: 5000, maxWaiters: 10 }
    t.equal(await store.tryAcquire({ ...base, member: holder, ticketTtlMs: 5000 }), 1)
    t.same(await store.tryAcquire({ ...base, member: dead, ticketTtlMs: 100 }), { outcome: 0, ahead: 0 }, 'the dead waiter queues first')
    t.same(await store.tryAcquire({ ...base, member: live, ticketTtlMs: 5000 }), { outcome: 0, ahead: 1 }, 'the live one behind it')
    await sleep(150)
    t.same(await store.refreshTickets([{ tag, member: dead }], 5000), [false], 'the dead ticket lapsed')
    if (kind === 'redis') {
      const redis = client(t, url)
      t.equal(await redis.zscore(`${prefix}:{${tag}}:queue`, dead), null, 'and left the queue')
    }
    await store.release({ tag, member: holder, leaseMs: 5000 })
    t.same(await store.renew([{ tag, member: live }, { tag, member: dead }], 5000), [true, false], 'the live waiter holds the slot, the dead one does not')
  })
}

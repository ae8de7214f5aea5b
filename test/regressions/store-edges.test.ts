/**
 * Finding 10, the smaller edges: a release without `leaseMs` granted slots that had already
 * expired (and reported them granted); closing one app closed a store object another app
 * shared; and a slot taken for a request that ended during its acquire was counted released
 * without ever being counted acquired.
 */
import t from 'tap'
import { MemoryStore, RedisStore } from '../../lib'
import { memberName, type GrantListener, type SlotStore } from '../../lib/stores/store'
import { client, redisUrl, uniquePrefix } from '../helpers/redis'
import { sleep, slotsApp } from '../helpers/app'
import { wrapStore } from '../helpers/wrapped-store'

for (const kind of ['redis', 'memory'] as const) {
  t.test(`${kind}: a release without leaseMs grants the waiter its own claim, a live slot`, async t => {
    const store: SlotStore & Required<Pick<SlotStore, 'onGrant'>> = kind === 'redis'
      ? new RedisStore({ client: client(t, await redisUrl(t)), prefix: uniquePrefix('no-lease') })
      : new MemoryStore()
    t.teardown(() => store.close?.())
    const tag = 'user:nl'
    const [holder, waiter] = [memberName('i', 1, 1, 5000), memberName('i', 2, 1, 5000)]
    const base = { tag, max: 1, leaseMs: 5000, maxWaiters: 1, ticketTtlMs: 5000 }
    const granted: string[] = []
    store.onGrant('i', (ref => granted.push(ref.member)) as GrantListener)
    await store.tryAcquire({ ...base, member: holder })
    await store.tryAcquire({ ...base, member: waiter })
    await store.release({ tag, member: holder })
    await sleep(50)
    t.same(granted, [waiter], 'the waiter is told of its grant')
    t.same(await store.renew([{ tag, member: waiter }], 5000), [true], 'and the slot it was granted is live')
  })
}

t.test('closing one app leaves a store it shares with another working; the last one closes it', async t => {
  let closed = 0
  const inner = new MemoryStore()
  const store = wrapStore(inner, { close: () => { closed++ } })
  const first = await slotsApp(t, { store })
  const second = await slotsApp(t, { store })
  await first.close()
  t.equal(closed, 0, 'still in use by the other app')
  const slot = await second.slots.acquire('user', 'shared', 1)
  await slot.release()
  await second.close()
  t.equal(closed, 1, 'closed once, by the last app')
})

t.test('a slot taken for a request that ended during its acquire is neither acquired nor released in stats', async t => {
  const inner = new MemoryStore()
  let tried = (): void => {}
  const trying = new Promise<void>(resolve => { tried = resolve })
  const store = wrapStore(inner, {
    tryAcquire: async args => {
      const outcome = await inner.tryAcquire(args)
      tried()
      await sleep(200)
      return outcome
    }
  })
  const app = await slotsApp(t, { store })
  app.get('/', async (request) => {
    await request.acquireSlot('user', 'ended', 1).catch(() => {})
    return 'done'
  })
  // The client leaves once the try has taken the slot (not before the request reached the
  // handler, which a loaded machine can delay past a fixed time).
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  const controller = new AbortController()
  const request = fetch(url, { signal: controller.signal }).catch(() => {})
  await trying
  controller.abort()
  await request
  await sleep(400)
  const stats = app.slots.stats()
  t.equal(stats.acquired, 0)
  t.equal(stats.released, 0, 'released never exceeds acquired')
  t.equal(stats.rejected.SLOT_WAIT_ABORTED, 1)
  t.same(await inner.usage(['user:ended']), [{ held: 0, waiting: 0, oldestWaitMs: 0, waitingByPriority: {} }], 'and the slot went back')
})

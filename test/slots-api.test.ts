import t from 'tap'
import { MemoryStore } from '../lib/stores/memory-store'
import { client, redisUrl, uniquePrefix } from './helpers/redis'
import { sleep, slotsApp } from './helpers/app'
import { wrapStore } from './helpers/wrapped-store'

for (const store of ['memory', 'redis'] as const) {
  t.test(`usage() and leastLoaded() read holders and waiters (${store})`, async t => {
    const options = store === 'redis'
      ? { redis: client(t, await redisUrl(t)), prefix: uniquePrefix('usage') }
      : { store: new MemoryStore() }
    const app = await slotsApp(t, { ...options, backoff: { initialMs: 50, maxMs: 50 } })
    const a1 = await app.slots.acquire('account', 'a', 2)
    const a2 = await app.slots.acquire('account', 'a', 2)
    const waiting = app.slots.acquire('account', 'a', 2)
    await app.slots.acquire('account', 'b', 4)
    const waitStarted = Date.now()
    await sleep(30)
    const usage = await app.slots.usage('account', ['a', 'b', 'c'])
    const waited = Date.now() - waitStarted
    t.same(usage.map(u => u.waitingByPriority), [{ 0: 1 }, {}, {}], 'the waiter is of class 0')
    t.same(usage.map(({ oldestWaitMs, waitingByPriority, ...rest }) => rest), [
      { id: 'a', held: 2, waiting: 1 },
      { id: 'b', held: 1, waiting: 0 },
      { id: 'c', held: 0, waiting: 0 }
    ])
    t.ok(usage[0].oldestWaitMs! >= 25 && usage[0].oldestWaitMs! <= waited + 5, `a's waiter has waited about 30 ms (${String(usage[0].oldestWaitMs)} of ${waited})`)
    t.same(usage.slice(1).map(u => u.oldestWaitMs), [0, 0], 'nobody waits for b or c')
    const candidates = [{ id: 'a', max: 2, name: 'first' }, { id: 'b', max: 4, name: 'second' }, { id: 'c', max: 1, name: 'third' }]
    const best = await app.slots.leastLoaded('account', candidates)
    t.equal(best?.name, 'third', 'c is empty: load 0 beats b at 25 % and a at 150 %')
    t.equal((await app.slots.leastLoaded('account', [{ id: 'a', max: 2 }, { id: 'b', max: 1 }])), null, 'all full: null')
    t.equal((await app.slots.leastLoaded('account', [{ id: 'x', max: 3 }, { id: 'y', max: 3 }]))?.id, 'x', 'ties go to the first')
    await a1.release()
    await a2.release()
    await (await waiting).release()
    t.same(await app.slots.usage('account', ['a']), [{ id: 'a', held: 0, waiting: 0, oldestWaitMs: 0, waitingByPriority: {} }])
    await t.rejects(app.slots.usage('account', ['bad\nid']), { code: 'SLOT_INVALID_ARGUMENT' })
    await t.rejects(app.slots.leastLoaded('account', [{ id: 'a', max: -1 }]), { code: 'SLOT_INVALID_ARGUMENT' })
  })
}

t.test('usage() shares one store read among concurrent callers, and caches when asked', async t => {
  const inner = new MemoryStore()
  let reads = 0
  const store = wrapStore(inner, {
    usage: async tags => { reads++; await sleep(20); return await inner.usage(tags) }
  })
  const app = await slotsApp(t, { store })
  await Promise.all([app.slots.usage('user', [1, 2]), app.slots.usage('user', [1, 2]), app.slots.usage('user', [1, 2])])
  t.equal(reads, 1, 'three concurrent reads, one store call')
  await app.slots.usage('user', [1, 2])
  t.equal(reads, 2, 'no cache by default: the next read goes to the store')

  const cached = await slotsApp(t, { store, usageCacheMs: 200 })
  reads = 0
  await cached.slots.usage('user', [1])
  await cached.slots.usage('user', [1])
  t.equal(reads, 1, 'within usageCacheMs the answer comes from memory')
  await sleep(250)
  await cached.slots.usage('user', [1])
  t.equal(reads, 2, 'after it, from the store again')
})

t.test('events and stats() tell observers what happened', async t => {
  const app = await slotsApp(t, { store: new MemoryStore(), backoff: { initialMs: 20, maxMs: 20 } })
  const seen: string[] = []
  app.slots.on('acquired', e => seen.push(`acquired ${e.type}:${e.id}`))
  app.slots.on('released', e => seen.push(`released ${e.type}:${e.id} after ${e.heldMs >= 0 ? 'ok' : '?'}`))
  app.slots.on('rejected', e => seen.push(`rejected ${e.code}`))
  app.slots.on('acquired', () => { throw new Error('a broken listener') })
  const slot = await app.slots.acquire('user', 7, 1)
  await t.rejects(app.slots.acquire('user', 7, 1, { maxWaitMs: 50 }), { code: 'SLOT_WAIT_TIMEOUT' })
  await t.rejects(app.slots.acquire('user', 7, 1, { maxWaiters: 0 }), { code: 'SLOT_QUEUE_FULL' })
  await slot.release()
  t.same(seen, ['acquired user:7', 'rejected SLOT_WAIT_TIMEOUT', 'rejected SLOT_QUEUE_FULL', 'released user:7 after ok'])
  const stats = app.slots.stats()
  t.equal(stats.acquired, 1)
  t.equal(stats.released, 1)
  t.equal(stats.rejected.SLOT_WAIT_TIMEOUT, 1)
  t.equal(stats.rejected.SLOT_QUEUE_FULL, 1)
  t.equal(stats.held, 0)
  t.equal(stats.waiting, 0)
  t.equal(stats.waitMs.count, 1)
  t.equal(stats.waitMs.counts.reduce((a, b) => a + b, 0), 1, 'one wait in the histogram')
})

t.test('a slot whose lease lapsed while the process stalled is reported lost and never released over others', async t => {
  let now = Date.now()
  const store = new MemoryStore({ now: () => now })
  const app = await slotsApp(t, { store, leaseMs: 300 })
  const lost: string[] = []
  app.slots.on('lost', e => lost.push(`${e.type}:${e.id}`))
  const slot = await app.slots.acquire('user', 'stalled', 1)
  now += 10_000 // the lease lapsed as if the process had been suspended
  const other = await app.slots.acquire('user', 'stalled', 1)
  await sleep(150) // a renewal tick (every leaseMs / 3)
  t.same(lost, ['user:stalled'])
  t.equal(app.slots.stats().lost, 1)
  await slot.release()
  t.same(await store.usage(['user:stalled']), [{ held: 1, waiting: 0, oldestWaitMs: 0, waitingByPriority: {} }], 'releasing the lost slot did not free the new holder')
  await other.release()
})

t.test('fastify.slots.acquire: an AbortSignal stops the wait; stream is refused', async t => {
  const app = await slotsApp(t, { store: new MemoryStore() })
  const held = await app.slots.acquire('job', 1, 1)
  const controller = new AbortController()
  const waiting = app.slots.acquire('job', 1, 1, { signal: controller.signal })
  await sleep(20)
  controller.abort()
  await t.rejects(waiting, { code: 'SLOT_WAIT_ABORTED' })
  await t.rejects(app.slots.acquire('job', 1, 1, { signal: AbortSignal.abort() }), { code: 'SLOT_WAIT_ABORTED' })
  await t.rejects(app.slots.acquire('job', 1, 1, { stream: true } as never), { code: 'SLOT_INVALID_ARGUMENT' })
  await held.release()
})

t.test('errors name the call they come from, and fastify.slots.acquire refuses options only a stream uses', async t => {
  const app = await slotsApp(t, { store: new MemoryStore() })
  await t.rejects(app.slots.usage('user', [null as unknown as string]), { code: 'SLOT_INVALID_ARGUMENT', message: /^usage: id must be/ })
  await t.rejects(app.slots.leastLoaded('user', [{ id: 'a', max: -1 }]), { message: /^leastLoaded: max must be/ })
  await t.rejects(app.slots.leastLoaded('us er', [{ id: 'a', max: 1 }]), { message: /^leastLoaded: type may contain only/ })
  for (const option of ['ping', 'protocol', 'stream']) {
    const opts = { [option]: option === 'protocol' ? 'anthropic' : option === 'ping' ? { intervalMs: 100 } : true }
    await t.rejects(app.slots.acquire('user', 1, 1, opts as never), { code: 'SLOT_INVALID_ARGUMENT', message: new RegExp(`^acquire: option "${option}" applies only to a request's stream`) })
  }
  t.equal(app.slots.stats().held, 0, 'nothing taken')
})

/**
 * Finding 3: an abort, a request end or close while the FIRST store call was on the wire was
 * ignored (the abort was registered only once the request started waiting): an aborted
 * `fastify.slots.acquire` resolved with a slot 303 ms later, and app.close() waited for the
 * call. Every acquisition is now registered before its first store call.
 */
import t from 'tap'
import { MemoryStore } from '../../lib'
import { leaveAfter, sleep, slotsApp } from '../helpers/app'
import { wrapStore } from '../helpers/wrapped-store'

const SLOW_MS = 400

/** A memory store whose first tries answer SLOW_MS late (they still land at once). */
function slowFirstTries (inner = new MemoryStore()): { store: ReturnType<typeof wrapStore>, inner: MemoryStore } {
  return {
    inner,
    store: wrapStore(inner, {
      tryAcquire: async args => {
        const outcome = await inner.tryAcquire(args)
        await sleep(SLOW_MS)
        return outcome
      }
    })
  }
}

t.test('an AbortSignal that fires during the first try rejects at once and leaves nothing held', async t => {
  const { store, inner } = slowFirstTries()
  const app = await slotsApp(t, { store })
  const controller = new AbortController()
  const started = Date.now()
  const call = app.slots.acquire('user', 'first', 1, { signal: controller.signal })
  setTimeout(() => controller.abort(), 50)
  const outcome = await call.then(() => 'acquired', (err: { code: string }) => err.code)
  const elapsed = Date.now() - started
  t.equal(outcome, 'SLOT_WAIT_ABORTED')
  t.ok(elapsed < SLOW_MS, `settled ${elapsed} ms after the call, before the first try answered (${SLOW_MS} ms)`)
  await sleep(SLOW_MS + 50)
  t.same(await inner.usage(['user:first']), [{ held: 0, waiting: 0, oldestWaitMs: 0, waitingByPriority: {} }], 'the slot the first try took was given back')
  t.equal(app.slots.stats().held, 0)
})

t.test('app.close() during a first try answers 503 at once and is not held up', async t => {
  const { store } = slowFirstTries()
  const app = await slotsApp(t, { store })
  const call = app.slots.acquire('user', 'closing', 1).then(() => 'acquired', (err: { code: string }) => err.code)
  await sleep(20)
  const started = Date.now()
  await app.close()
  const closeMs = Date.now() - started
  t.equal(await call, 'SLOT_STORE_UNAVAILABLE')
  t.ok(closeMs < SLOW_MS + 200, `close() took ${closeMs} ms`)
})

t.test('a client that leaves during the first try stops waiting and its request ends', async t => {
  const { store, inner } = slowFirstTries()
  const app = await slotsApp(t, { store })
  const settled: string[] = []
  app.get('/', async (request) => {
    await request.acquireSlot('user', 'gone', 1).then(() => settled.push('acquired'), (err: { code: string }) => settled.push(err.code))
    return 'done'
  })
  await leaveAfter(app, '/', 50)
  await sleep(100)
  t.same(settled, ['SLOT_WAIT_ABORTED'], 'the acquire rejected before its first try answered')
  await sleep(SLOW_MS)
  t.same(await inner.usage(['user:gone']), [{ held: 0, waiting: 0, oldestWaitMs: 0, waitingByPriority: {} }], 'nothing left in the store')
})

/**
 * slot.signal: aborts when the slot ends, released (SLOT_RELEASED: release(), or the request
 * ended, the client leaving included) or lost (SLOT_LOST: its lease lapsed before renewal),
 * so a handler can stop the upstream work the slot guarded.
 */
import { createServer, type IncomingMessage } from 'node:http'
import t from 'tap'
import { MemoryStore, SlotError } from '../lib'
import { buildApp } from '../docs/examples/upstream-signal'
import { eventually, leaveAfter, sleep, slotsApp } from './helpers/app'

t.test('release() aborts the signal with SLOT_RELEASED; a signal read after the end is already aborted', async t => {
  const app = await slotsApp(t, { store: new MemoryStore() })
  const slot = await app.slots.acquire('user', 'sig', 1)
  const signal = slot.signal
  t.equal(signal.aborted, false, 'live while held')
  await slot.release()
  t.equal(signal.aborted, true)
  t.ok(signal.reason instanceof SlotError)
  t.equal(signal.reason.code, 'SLOT_RELEASED')
  const late = await app.slots.acquire('user', 'sig', 1)
  await late.release()
  t.equal(late.signal.reason.code, 'SLOT_RELEASED', 'read after release: aborted already')
})

t.test('a lease that lapsed aborts the signal with SLOT_LOST', async t => {
  let offset = 0
  const store = new MemoryStore({ now: () => Date.now() + offset })
  const app = await slotsApp(t, { store, leaseMs: 300 })
  const slot = await app.slots.acquire('user', 'lapsed', 1)
  offset = 10_000 // as if the process had stalled past its lease
  await eventually(() => slot.signal.aborted, 1000)
  t.equal(slot.signal.reason.code, 'SLOT_LOST')
  t.equal(slot.signal.reason.slotId, 'lapsed')
})

t.test('the example: a client that leaves aborts the upstream call its slot guarded', async t => {
  const seen: string[] = []
  const upstream = createServer((req: IncomingMessage) => {
    seen.push('request')
    req.once('close', () => seen.push('closed'))
    // Never answers: the upstream is slow, and only the abort ends this request.
  })
  await new Promise<void>(resolve => upstream.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { upstream.closeAllConnections(); upstream.close() })
  const address = upstream.address() as { port: number }
  const app = await buildApp({ upstreamUrl: `http://127.0.0.1:${address.port}/` })
  t.teardown(() => app.close())
  await leaveAfter(app, '/v1/messages', 200, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"prompt":"hi"}' })
  await eventually(() => seen.includes('closed'), 1000)
  t.same(seen, ['request', 'closed'], 'the upstream request was aborted when the client left')
  await sleep(10)
  t.same(await app.slots.usage('account', ['acct-1']), [{ id: 'acct-1', held: 0, waiting: 0, oldestWaitMs: 0, waitingByPriority: {} }])
})

/**
 * Honest waiting: where a waiting request stands and how long it is expected to take, from the
 * store's answer (its place in line) and the holds this process saw (HoldTimes). The `queued`
 * event, a Retry-After that follows them, failFast, and ping frames built from the wait.
 */
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { MemoryStore } from '../lib'
import type fastifySlots from '../lib'
import { client, keysLeft, redisUrl, uniquePrefix } from './helpers/redis'
import { eventually, sleep, slotsApp } from './helpers/app'

type Options = Omit<fastifySlots.FastifySlotsOptions, 'redis'>

/** An app whose GET /hold?ms=N takes account:a (max 1, or ?max) and holds it N ms; `opts` per call from the query. */
async function holdApp (t: tap.Test, store: 'memory' | 'redis', options: Options = {}): Promise<{ app: FastifyInstance, waiting: () => Promise<number>, left: () => Promise<string[]> }> {
  const redis = store === 'redis' ? client(t, await redisUrl(t)) : undefined
  const prefix = uniquePrefix('honest')
  const app = await slotsApp(t, { ...(redis === undefined ? { store: new MemoryStore() } : { redis, prefix }), ...options })
  app.get<{ Querystring: { ms?: string, max?: string, maxWaitMs?: string, failFast?: string } }>('/hold', async request => {
    const { ms, max, maxWaitMs, failFast } = request.query
    const opts: fastifySlots.AcquireOptions = {}
    if (maxWaitMs !== undefined) opts.maxWaitMs = Number(maxWaitMs)
    if (failFast !== undefined) opts.failFast = failFast === '1'
    const slot = await request.acquireSlot('account', 'a', Number(max ?? 1), opts)
    await sleep(Number(ms ?? 0))
    return { waitedMs: slot.waitedMs }
  })
  return {
    app,
    waiting: async () => (await app.slots.usage('account', ['a']))[0].waiting,
    left: async () => redis === undefined ? [] : await keysLeft(redis, prefix)
  }
}

/** Starts requests one after another, each once the previous one holds or waits. */
async function lineUp (app: FastifyInstance, waiting: () => Promise<number>, urls: string[]): Promise<Array<Promise<{ statusCode: number }>>> {
  const started = []
  for (const [i, url] of urls.entries()) {
    started.push(app.inject(url))
    // The first holds; each later one waits behind the ones before it.
    await eventually(async () => i === 0 ? (await app.slots.usage('account', ['a']))[0].held === 1 : await waiting() === i)
  }
  return started
}

for (const store of ['memory', 'redis'] as const) {
  t.test(`queued: the place in line, and the wait expected from the holds seen (${store} store)`, async t => {
    const { app, waiting, left } = await holdApp(t, store)
    const queued: Array<{ position: number | null, expectedWaitMs: number | null }> = []
    app.slots.on('queued', ({ type, id, position, expectedWaitMs }) => {
      t.same([type, id], ['account', 'a'])
      queued.push({ position, expectedWaitMs })
    })
    // Nothing seen yet: a place, no estimate.
    await Promise.all(await lineUp(app, waiting, ['/hold?ms=150', '/hold?ms=150']))
    t.same(queued, [{ position: 1, expectedWaitMs: null }], 'before any hold was seen, the wait is unknown')
    // Two holds of ~150 ms seen: one slot frees every ~150 ms.
    const round = await lineUp(app, waiting, ['/hold?ms=150', '/hold?ms=150', '/hold?ms=150'])
    t.same(queued.slice(1).map(q => q.position), [1, 2], 'the second and third in line')
    const [second, third] = queued.slice(1).map(q => q.expectedWaitMs!)
    t.ok(second >= 140 && second <= 300, `the next in line expects one hold: ${second} ms`)
    t.ok(third >= 2 * 140 && third <= 2 * 300, `the one behind it two: ${third} ms`)
    for (const res of await Promise.all(round)) t.equal(res.statusCode, 200)
    t.same(await left(), [], 'no key left')
  })

  t.test(`Retry-After of a full queue follows the holds seen, clamped (${store} store)`, async t => {
    // Without an estimate Retry-After falls back to the backoff's maxMs (here 1 s).
    const { app, waiting, left } = await holdApp(t, store, { maxWaiters: 4, backoff: { maxMs: 500 } })
    const urls = Array<string>(5).fill('/hold?ms=250')
    const first = await lineUp(app, waiting, urls)
    const early = await app.inject('/hold')
    t.equal(early.statusCode, 429)
    t.equal(early.json().code, 'SLOT_QUEUE_FULL')
    t.equal(early.headers['retry-after'], '1', 'nothing seen yet: the fallback')
    await Promise.all(first)
    // Holds of ~250 ms seen: a place behind 4 waiters comes up after ~5 × 250 ms.
    const second = await lineUp(app, waiting, urls)
    const late = await app.inject('/hold')
    t.equal(late.statusCode, 429)
    t.equal(late.headers['retry-after'], '2', 'behind 4 waiters and a holder of ~250 ms each: 2 s')
    await Promise.all(second)
    t.same(await left(), [], 'no key left')
  })

  t.test(`failFast answers SLOT_WAIT_TOO_LONG at once when the expected wait outlasts maxWaitMs (${store} store)`, async t => {
    const { app, waiting, left } = await holdApp(t, store, { maxRetryAfterSeconds: 1 })
    const rejected: string[] = []
    app.slots.on('rejected', ({ code }) => rejected.push(code))
    // Nothing seen yet: failFast cannot know, so it waits like any other request.
    const [holding] = await lineUp(app, waiting, ['/hold?ms=300'])
    const blind = await app.inject('/hold?maxWaitMs=50&failFast=1')
    t.equal(blind.json().code, 'SLOT_WAIT_TIMEOUT', 'without an estimate it waited out its maxWaitMs')
    await holding

    // Holds of ~300 ms seen; four wait behind a holder: the fifth place is expected in ~1.5 s.
    const round = await lineUp(app, waiting, Array<string>(5).fill('/hold?ms=300'))
    const started = Date.now()
    const refused = await app.inject('/hold?maxWaitMs=1000&failFast=1')
    t.equal(refused.statusCode, 429)
    t.equal(refused.json().code, 'SLOT_WAIT_TOO_LONG')
    t.match(refused.json().message, /place 5 in line \(\d+ ms\) is longer than the \d+ ms left/)
    t.equal(refused.headers['retry-after'], '1', 'its expected wait (2 s) clamped to maxRetryAfterSeconds')
    t.ok(Date.now() - started < 250, `refused without waiting (${Date.now() - started} ms)`)
    await eventually(async () => await waiting() === 4)
    t.pass('its ticket was given back: four still wait')
    // With time enough, a failFast request waits and gets its slot.
    const patient = app.inject('/hold?maxWaitMs=10000&failFast=1')
    for (const res of await Promise.all([...round, patient])) t.equal(res.statusCode, 200)
    t.same(rejected, ['SLOT_WAIT_TIMEOUT', 'SLOT_WAIT_TOO_LONG'])
    t.equal(app.slots.stats().rejected.SLOT_WAIT_TOO_LONG, 1, 'counted in stats()')
    t.same(await left(), [], 'no key left')
  })
}

t.test('a ping frame function is given the wait so far; a bad one is logged and replaced by a comment', async t => {
  const { app } = await holdApp(t, 'memory')
  const logged: string[] = []
  app.log.error = ((obj: unknown, msg?: string) => { logged.push(String(msg)) }) as typeof app.log.error
  const frames: Record<string, fastifySlots.PingFrame> = {
    good: ({ position, waitedMs, expectedWaitMs }) => `: waiting, place ${String(position)}, ${waitedMs >= 0 ? 'some' : 'no'} ms, expected ${String(expectedWaitMs)}\n\n`,
    bad: () => 'no blank line'
  }
  app.get<{ Params: { kind: string } }>('/stream/:kind', async (request, reply) => {
    await request.acquireSlot('account', 'a', 1, { stream: true, ping: { intervalMs: 20, frame: frames[request.params.kind] } })
    if (!request.slotStreamStarted) return 'not streamed'
    reply.raw.end('data: done\n\n')
    return reply
  })
  const holding = app.inject('/hold?ms=150')
  await eventually(async () => (await app.slots.usage('account', ['a']))[0].held === 1)
  const [good, bad] = await Promise.all([app.inject('/stream/good'), app.inject('/stream/bad')])
  await holding
  t.match(good.body, /^: waiting, place 1, some ms, expected null\n\n/, 'the first in line, nothing seen yet')
  t.match(good.body, /data: done\n\n$/)
  t.match(bad.body, /^: ping\n\n/, 'a bad frame is replaced by an SSE comment')
  t.notMatch(bad.body, /no blank line/)
  t.ok(logged.some(m => m.includes('ping.frame must return a string')), 'and logged')
})

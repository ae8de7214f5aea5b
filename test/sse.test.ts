import t from 'tap'
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { pingFrames, SlotError } from '../lib'
import { client, holders, keysUnder, redisUrl, uniquePrefix, waiters } from './helpers/redis'
import { eventually, sleep, slotsApp } from './helpers/app'

const TAG = 'user:42'

interface Deferred {
  promise: Promise<void>
  resolve: () => void
}

function deferred (): Deferred {
  let resolve: () => void = () => {}
  const promise = new Promise<void>(_resolve => { resolve = _resolve })
  return { promise, resolve }
}

/** One HTTP response read as it arrives. */
interface Response {
  status: number
  headers: IncomingHttpHeaders
  /** ms from sending the request to the response head arriving. */
  headAfterMs: number
  /** Everything received so far. */
  text: () => string
  /** Resolves when the response ended or the connection closed; `complete` tells which. */
  done: Promise<{ complete: boolean }>
  destroy: () => void
}

/** Every response opened by the running test: its teardown closes those still open. */
const opened = new Set<Response>()

function open (app: FastifyInstance, path: string): Promise<Response> {
  const { port } = app.server.address() as AddressInfo
  const sent = Date.now()
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, method: 'GET', agent: false }, res => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { body += chunk })
      const done = new Promise<{ complete: boolean }>(resolve => {
        res.once('end', () => resolve({ complete: res.complete }))
        res.once('close', () => resolve({ complete: res.complete }))
        res.once('error', () => resolve({ complete: false }))
      })
      const response: Response = {
        status: res.statusCode ?? 0,
        headers: res.headers,
        headAfterMs: Date.now() - sent,
        text: () => body,
        done,
        destroy: () => req.destroy()
      }
      opened.add(response)
      resolve(response)
    })
    req.on('error', reject)
    req.end()
  })
}

/** The SSE frames of a body: every event ends in a blank line. */
function frames (text: string): string[] {
  return text.split('\n\n').filter(f => f !== '').map(f => `${f}\n\n`)
}

function count (text: string, frame: string): number {
  return frames(text).filter(f => f === frame).length
}

interface Fixture {
  app: FastifyInstance
  redis: ReturnType<typeof client>
  prefix: string
  /** Lets the /hold request give its slot back. */
  releaseHolder: () => void
  holderDone: Promise<Response>
}

/** An app whose GET /hold takes the only slot of user:42 and keeps it until released. */
async function withHolder (t: Parameters<typeof slotsApp>[0], options: Parameters<typeof slotsApp>[1], routes: (app: FastifyInstance) => void): Promise<Fixture> {
  const url = await redisUrl(t)
  const redis = client(t, url)
  const prefix = uniquePrefix('sse')
  const app = await slotsApp(t, { ...options, redis, prefix })
  const hold = deferred()
  app.get('/hold', async (request) => {
    await request.acquireSlot('user', 42, 1)
    await hold.promise
    return { held: true }
  })
  routes(app)
  await app.listen({ port: 0, host: '127.0.0.1' })
  // Whatever a test does, the holder lets go and no stream stays open before the app closes
  // (teardowns run last-in first-out, and close waits for open requests).
  t.teardown(() => {
    hold.resolve()
    for (const response of opened) response.destroy()
    opened.clear()
  })
  const holderDone = open(app, '/hold')
  await eventually(async () => await holders(redis, prefix, TAG) === 1)
  return { app, redis, prefix, releaseHolder: hold.resolve, holderDone }
}

t.test('a waiting stream is committed as SSE, pinged on schedule, then continues once it holds the slot', async t => {
  let startedInHandler: boolean | undefined
  let startedBeforeAcquire: boolean | undefined
  const fx = await withHolder(t, { ping: { intervalMs: 100, frame: pingFrames.comment } }, app => {
    app.get('/stream', async (request, reply) => {
      reply.header('x-route', 'kept')
      startedBeforeAcquire = request.slotStreamStarted
      await request.acquireSlot('user', 42, 1, { stream: true })
      startedInHandler = request.slotStreamStarted
      if (!request.slotStreamStarted) return { notStreamed: true }
      reply.raw.write('data: hello\n\n')
      reply.raw.end()
    })
  })

  const sent = Date.now()
  const res = await open(fx.app, '/stream')
  t.equal(res.status, 200, 'the waiting stream is answered 200')
  t.ok(res.headAfterMs >= 80, `the head is only sent once the request waited one ping interval (after ${res.headAfterMs} ms)`)
  t.match(res.headers['content-type'], /^text\/event-stream/)
  t.equal(res.headers['cache-control'], 'no-cache')
  t.equal(res.headers.connection, 'keep-alive')
  t.equal(res.headers['x-accel-buffering'], 'no')
  t.equal(res.headers['x-route'], 'kept', 'a header the route set before acquireSlot is kept')
  t.notOk(res.headers['content-length'], 'no content-length on a stream')

  await sleep(350 - (Date.now() - sent))
  const pingsWhileWaiting = count(res.text(), pingFrames.comment)
  t.ok(pingsWhileWaiting >= 2 && pingsWhileWaiting <= 4, `2 to 4 pings in ~350 ms at 100 ms (got ${pingsWhileWaiting})`)
  t.same(frames(res.text()), Array(pingsWhileWaiting).fill(pingFrames.comment), 'only ping frames while waiting')
  t.equal(await waiters(fx.redis, fx.prefix, TAG), 1, 'the stream is queued while it waits')

  fx.releaseHolder()
  const holder = await fx.holderDone
  t.equal(holder.status, 200)
  const end = await Promise.race([res.done, sleep(2000).then(() => ({ complete: false, timedOut: true }))])
  t.same(end, { complete: true }, 'the stream ends once the handler ends it')

  const all = frames(res.text())
  t.equal(all[all.length - 1], 'data: hello\n\n', 'the handler\'s event comes last')
  t.same(all.slice(0, -1), Array(all.length - 1).fill(pingFrames.comment), 'everything before it is a ping')
  t.ok(all.length - 1 >= pingsWhileWaiting, 'the pings came before the data')
  t.equal(startedBeforeAcquire, false, 'slotStreamStarted starts false')
  t.equal(startedInHandler, true, 'slotStreamStarted is true in the handler after a committed wait')

  await eventually(async () => (await keysUnder(fx.redis, fx.prefix)).length === 0)
  t.pass('every slot and ticket is gone once both requests ended')
})

t.test('the Anthropic ping frame is written when configured per call', async t => {
  let caught: unknown
  const fx = await withHolder(t, { ping: { intervalMs: 100, frame: pingFrames.comment } }, app => {
    app.get('/anthropic', async (request, reply) => {
      try {
        // Only the frame per call: the interval comes from the plugin.
        await request.acquireSlot('user', 42, 1, { stream: true, ping: { frame: pingFrames.anthropic } })
      } catch (err) {
        caught = err
        return
      }
      reply.raw.end('data: done\n\n')
    })
    app.get('/anthropic-full', async (request, reply) => {
      await request.acquireSlot('user', 42, 1, { stream: true, ping: { intervalMs: 50, frame: pingFrames.anthropic } })
      reply.raw.end('data: done\n\n')
    })
  })

  t.equal(pingFrames.anthropic, 'data: {"type": "ping"}\n\n')
  const sent = Date.now()
  const [res, full] = await Promise.all([open(fx.app, '/anthropic'), open(fx.app, '/anthropic-full')])
  t.equal(res.status, 200)
  t.equal(full.status, 200)
  await sleep(350 - (Date.now() - sent))
  const pings = count(res.text(), pingFrames.anthropic)
  t.ok(pings >= 2 && pings <= 4, `2 to 4 Anthropic pings at the plugin's 100 ms (got ${pings})`)
  t.same(frames(res.text()), Array(pings).fill(pingFrames.anthropic), 'every frame is the Anthropic ping, no comment pings')
  const fullPings = count(full.text(), pingFrames.anthropic)
  t.ok(fullPings >= 5, `a per-call interval of 50 ms pings faster (got ${fullPings})`)
  t.same(frames(full.text()), Array(fullPings).fill(pingFrames.anthropic))

  fx.releaseHolder()
  await Promise.all([res.done, full.done])
  t.equal(caught, undefined)
  t.equal(frames(res.text()).pop(), 'data: done\n\n')
  t.equal(frames(full.text()).pop(), 'data: done\n\n')
})

t.test('a wait that times out after the stream started ends the stream with an error event', async t => {
  let caught: unknown
  let afterCatch = false
  const fx = await withHolder(t, { ping: { intervalMs: 100, frame: pingFrames.comment } }, app => {
    app.get('/stream', async (request, reply) => {
      try {
        await request.acquireSlot('user', 42, 1, { stream: true, maxWaitMs: 350 })
      } catch (err) {
        caught = err
        if ((err as SlotError).streamed) return
        throw err
      }
      afterCatch = true
      reply.raw.end('data: should not happen\n\n')
    })
  })

  const res = await open(fx.app, '/stream')
  t.equal(res.status, 200)
  t.match(res.headers['content-type'], /^text\/event-stream/)
  const end = await Promise.race([res.done, sleep(3000).then(() => ({ complete: false, timedOut: true }))])
  t.same(end, { complete: true }, 'the plugin ends the response')

  const all = frames(res.text())
  const pings = all.filter(f => f === pingFrames.comment).length
  t.ok(pings >= 2 && pings <= 4, `2 to 4 pings before the timeout (got ${pings})`)
  t.same(all.slice(0, -1), Array(all.length - 1).fill(pingFrames.comment), 'only pings before the error')
  const last = all[all.length - 1] ?? ''
  const match = /^event: error\ndata: (.*)\n\n$/.exec(last)
  t.ok(match, `the last frame is an error event: ${JSON.stringify(last)}`)
  const data = JSON.parse(match?.[1] ?? '{}') as Record<string, unknown>
  t.equal(data.type, 'error')
  t.equal(data.code, 'SLOT_WAIT_TIMEOUT')
  t.type(data.message, 'string')
  t.ok(String(data.message).length > 0, 'the error event carries a message')

  t.ok(caught instanceof SlotError, 'acquireSlot rejected with a SlotError')
  t.equal((caught as SlotError).code, 'SLOT_WAIT_TIMEOUT')
  t.equal((caught as SlotError).streamed, true, 'the error says it was written into the stream')
  t.equal((caught as SlotError).message, data.message, 'the frame carries the error\'s message')
  t.equal(afterCatch, false)
  t.equal(await holders(fx.redis, fx.prefix, TAG), 1, 'the holder still holds')
  await eventually(async () => await waiters(fx.redis, fx.prefix, TAG) === 0)
  t.pass('the timed-out stream left the queue')

  fx.releaseHolder()
  await fx.holderDone
})

t.test('a custom streamErrorFrame replaces the default error event', async t => {
  const seen: Array<{ code: string, url: string }> = []
  let caught: unknown
  const fx = await withHolder(t, {
    ping: { intervalMs: 100, frame: pingFrames.comment },
    streamErrorFrame: (error, request) => {
      seen.push({ code: error.code, url: request.url })
      return `event: busy\ndata: ${error.code} ${request.url}\n\n`
    }
  }, app => {
    app.get('/custom', async (request) => {
      try {
        await request.acquireSlot('user', 42, 1, { stream: true, maxWaitMs: 250 })
      } catch (err) {
        caught = err
        if ((err as SlotError).streamed) return
        throw err
      }
    })
  })

  const res = await open(fx.app, '/custom')
  t.equal(res.status, 200)
  const end = await Promise.race([res.done, sleep(3000).then(() => ({ complete: false, timedOut: true }))])
  t.same(end, { complete: true })
  const all = frames(res.text())
  t.ok(all.length >= 2, 'at least one ping came before the error')
  t.equal(all[all.length - 1], 'event: busy\ndata: SLOT_WAIT_TIMEOUT /custom\n\n', 'the custom frame is written')
  t.notOk(res.text().includes('event: error'), 'the default frame is not written')
  t.same(seen, [{ code: 'SLOT_WAIT_TIMEOUT', url: '/custom' }], 'called once with the error and the request')
  t.equal((caught as SlotError).streamed, true)

  fx.releaseHolder()
  await fx.holderDone
})

t.test('a waiter that does not stream gets no pings and times out as a 429', async t => {
  let started: boolean | undefined
  const fx = await withHolder(t, { ping: { intervalMs: 100, frame: pingFrames.comment } }, app => {
    app.get('/plain', async (request) => {
      try {
        await request.acquireSlot('user', 42, 1, { stream: false, maxWaitMs: 350 })
        return { acquired: true }
      } finally {
        started = request.slotStreamStarted
      }
    })
  })

  const res = await open(fx.app, '/plain')
  await res.done
  t.equal(res.status, 429)
  t.ok(res.headAfterMs >= 300, `answered only after waiting (${res.headAfterMs} ms)`)
  t.match(res.headers['content-type'], /^application\/json/)
  t.match(res.headers['retry-after'], /^[1-9][0-9]*$/, 'Retry-After is a positive number of seconds')
  t.notOk(res.text().includes('ping'), 'no ping was written')
  const body = JSON.parse(res.text()) as Record<string, unknown>
  t.equal(body.code, 'SLOT_WAIT_TIMEOUT')
  t.equal(body.statusCode, 429)
  t.equal(started, false, 'the response was never committed as a stream')

  fx.releaseHolder()
  await fx.holderDone
})

t.test('a stream whose client goes away stops waiting and leaves the queue', async t => {
  let caught: unknown
  let settledAt = 0
  const fx = await withHolder(t, { ping: { intervalMs: 100, frame: pingFrames.comment } }, app => {
    app.get('/stream', async (request, reply) => {
      try {
        await request.acquireSlot('user', 42, 1, { stream: true, maxWaitMs: 10_000 })
      } catch (err) {
        caught = err
        return
      } finally {
        settledAt = Date.now()
      }
      reply.raw.end('data: too late\n\n')
    })
  })

  const res = await open(fx.app, '/stream')
  t.equal(res.status, 200)
  await eventually(() => count(res.text(), pingFrames.comment) >= 1)
  t.equal(await waiters(fx.redis, fx.prefix, TAG), 1, 'queued while the stream waits')

  const gone = Date.now()
  res.destroy()
  // The waiting ticket lives for seconds (2 * (backoff.maxMs + storeTimeoutMs)): only an
  // explicit abandon gets it to 0 this fast.
  await eventually(async () => await waiters(fx.redis, fx.prefix, TAG) === 0, 1000)
  t.pass('the ticket left the queue')
  await eventually(() => caught !== undefined, 1000)
  t.ok(caught instanceof SlotError)
  t.equal((caught as SlotError).code, 'SLOT_WAIT_ABORTED')
  t.ok(settledAt - gone < 1000, `the wait stopped right after the disconnect (${settledAt - gone} ms)`)

  fx.releaseHolder()
  await fx.holderDone
  await eventually(async () => await holders(fx.redis, fx.prefix, TAG) === 0)
  await sleep(300)
  t.equal(await holders(fx.redis, fx.prefix, TAG), 0, 'the gone stream never takes the freed slot')
  t.same(await keysUnder(fx.redis, fx.prefix), [])
})

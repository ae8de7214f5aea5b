/**
 * Each protocol's frames, parsed as its clients parse them: an SSE parser, then the JSON
 * shape the protocol's SDKs read (Anthropic's error event, OpenAI's error object, the
 * Responses API's response.created then response.failed).
 */
import t from 'tap'
import fastifySlots from '../lib'
import { MemoryStore } from '../lib/stores/memory-store'
import { slotsApp } from './helpers/app'
import { parseSse } from './helpers/sse'

/** A waiting stream that gets pings, then times out inside the stream. */
async function failedStream (t: { teardown: (fn: () => unknown) => void }, protocol: fastifySlots.ProtocolName, perCall: boolean): Promise<{ status: number, body: string, error: fastifySlots.SlotError }> {
  const app = await slotsApp(t, {
    store: new MemoryStore(),
    ping: { intervalMs: 30 },
    maxWaitMs: 130,
    backoff: { initialMs: 20, maxMs: 20 },
    ...(perCall ? {} : { protocol })
  })
  let error: fastifySlots.SlotError | undefined
  app.get('/stream', async (request) => {
    try {
      await request.acquireSlot('user', 1, 1, { stream: true, ...(perCall ? { protocol } : {}) })
    } catch (err) {
      error = err as fastifySlots.SlotError
      if (error.streamed) return
      throw err
    }
    return new Promise(() => {}) // the first request holds its slot until the app closes
  })
  // light-my-request starts a request only when its result is awaited or then'd.
  app.inject('/stream').then(() => {}, () => {})
  const res = await app.inject('/stream')
  return { status: res.statusCode, body: res.body, error: error! }
}

for (const perCall of [false, true]) {
  const how = perCall ? 'per call' : 'per plugin'

  t.test(`anthropic (${how}): ping events, then an Anthropic error event`, async t => {
    const { status, body, error } = await failedStream(t, 'anthropic', perCall)
    t.equal(status, 200)
    t.equal(error.streamed, true)
    const { events, comments } = parseSse(body)
    t.same(comments, [], 'no comments: pings are events')
    const pings = events.filter(e => e.event === 'ping')
    t.ok(pings.length >= 2, `${pings.length} ping events`)
    for (const ping of pings) t.same(JSON.parse(ping.data), { type: 'ping' })
    const last = events[events.length - 1]
    t.equal(last.event, 'error')
    const data = JSON.parse(last.data)
    t.equal(data.type, 'error')
    t.equal(data.error.type, 'rate_limit_error', 'a wait timeout is a rate limit to Anthropic clients')
    t.equal(data.error.message, error.message)
  })

  t.test(`openai-chat (${how}): comment pings, then a data line with an OpenAI error object`, async t => {
    const { status, body, error } = await failedStream(t, 'openai-chat', perCall)
    t.equal(status, 200)
    const { events, comments } = parseSse(body)
    t.ok(comments.filter(c => c === 'ping').length >= 2, 'pings are comments, invisible to the client')
    t.equal(events.length, 1, 'the only event is the error')
    t.equal(events[0].event, 'message', 'an unnamed event, as chat completion chunks are')
    const { error: e } = JSON.parse(events[0].data)
    t.same(e, { message: error.message, type: 'rate_limit_error', param: null, code: 'rate_limit_exceeded' })
  })

  t.test(`openai-responses (${how}): comment pings, then response.created and response.failed`, async t => {
    const { status, body, error } = await failedStream(t, 'openai-responses', perCall)
    t.equal(status, 200)
    const { events, comments } = parseSse(body)
    t.ok(comments.length >= 2)
    // The SDKs refuse a stream that does not begin with response.created.
    t.same(events.map(e => e.event), ['response.created', 'response.failed'], 'not a generic error event, which Codex reports as a closed stream')
    const [created, failed] = events.map(e => JSON.parse(e.data))
    t.equal(created.type, 'response.created')
    t.equal(created.sequence_number, 0)
    t.equal(created.response.status, 'in_progress')
    t.equal(created.response.error, null)
    t.same(created.response.output, [])
    t.equal(failed.type, 'response.failed')
    t.equal(failed.sequence_number, 1, 'sequence numbers increase')
    t.equal(failed.response.object, 'response')
    t.equal(failed.response.status, 'failed')
    t.match(failed.response.id, /^resp_/)
    t.equal(failed.response.id, created.response.id, 'one response')
    t.equal(failed.response.created_at, created.response.created_at)
    t.same(failed.response.error, { code: 'rate_limit_exceeded', message: error.message })
  })
}

t.test('generic (the default): comment pings and event: error with type, code and message', async t => {
  const { body, error } = await failedStream(t, 'generic', false)
  const { events, comments } = parseSse(body)
  t.ok(comments.length >= 2)
  t.same(events.map(e => e.event), ['error'])
  t.same(JSON.parse(events[0].data), { type: 'error', code: 'SLOT_WAIT_TIMEOUT', message: error.message })
})

t.test('store unavailable maps to each protocol\'s overload error', async t => {
  const err = new fastifySlots.SlotError('SLOT_STORE_UNAVAILABLE', 'down')
  const anthropic = JSON.parse(parseSse(fastifySlots.protocols.anthropic.errorFrame(err)).events[0].data)
  t.equal(anthropic.error.type, 'overloaded_error')
  const chat = JSON.parse(parseSse(fastifySlots.protocols['openai-chat'].errorFrame(err)).events[0].data)
  t.equal(chat.error.type, 'server_error')
  const responses = JSON.parse(parseSse(fastifySlots.protocols['openai-responses'].errorFrame(err)).events[1].data)
  t.equal(responses.response.error.code, 'server_is_overloaded')
})

t.test('a per-call ping frame beats the protocol\'s; unknown protocols are refused', async t => {
  const app = await slotsApp(t, { store: new MemoryStore() })
  app.get('/', async (request) => {
    await request.acquireSlot('user', 1, 1, { protocol: 'smtp' as never })
  })
  const res = await app.inject('/')
  t.equal(res.statusCode, 500)
  t.match(res.json().message, /option "protocol" must be 'generic', 'anthropic', 'openai-chat', 'openai-responses'/)
  await t.rejects(slotsApp(t, { protocol: 'smtp' as never }), /option "protocol"/)
})

/**
 * A failed acquire answered as JSON (not streamed) speaks its protocol: the plugin's, the
 * call's or the route's. Status and Retry-After stay; `generic` keeps Fastify's default body;
 * a body the app's own error handler shaped is left alone.
 */
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import fastifySlots from '../lib'
import { MemoryStore } from '../lib/stores/memory-store'
import { failingStore } from './helpers/wrapped-store'
import { slotsApp } from './helpers/app'

const TIMEOUT = 'concurrency limit reached for user: no slot freed within 0 ms'

/** An app whose GET /?protocol=... takes user 1's only slot with maxWaitMs 0, the slot held by the test. */
async function fullApp (t: Parameters<typeof slotsApp>[0], options: Pick<fastifySlots.FastifySlotsOptions, 'protocol'> = {}): Promise<FastifyInstance> {
  const app = await slotsApp(t, { store: new MemoryStore(), maxWaitMs: 0, ...options })
  app.get<{ Querystring: { protocol?: fastifySlots.ProtocolName } }>('/', async (request) => {
    const { protocol } = request.query
    await request.acquireSlot('user', 1, 1, protocol === undefined ? undefined : { protocol })
    return 'unreachable'
  })
  const held = await app.slots.acquire('user', 1, 1)
  t.teardown(() => held.release())
  return app
}

const anthropic429 = { type: 'error', error: { type: 'rate_limit_error', message: TIMEOUT } }
const openai429 = { error: { message: TIMEOUT, type: 'rate_limit_error', param: null, code: 'rate_limit_exceeded' } }
const generic429 = { statusCode: 429, code: 'SLOT_WAIT_TIMEOUT', error: 'Too Many Requests', message: TIMEOUT }

t.test('per call: each protocol\'s 429 body, same status, Retry-After and content type', async t => {
  const app = await fullApp(t)
  const expected: Record<string, object> = { generic: generic429, anthropic: anthropic429, 'openai-chat': openai429, 'openai-responses': openai429 }
  for (const [protocol, body] of Object.entries(expected)) {
    const res = await app.inject(`/?protocol=${protocol}`)
    t.equal(res.statusCode, 429, protocol)
    t.equal(res.headers['retry-after'], '2', `${protocol}: Retry-After kept`)
    t.match(res.headers['content-type'], /^application\/json/)
    t.equal(Number(res.headers['content-length']), Buffer.byteLength(res.body), `${protocol}: content-length matches the new body`)
    t.same(res.json(), body, `${protocol}: body`)
  }
  t.same((await app.inject('/')).json(), generic429, 'no protocol anywhere: Fastify\'s default body')
})

t.test('per plugin, and a call overrides it', async t => {
  const app = await fullApp(t, { protocol: 'anthropic' })
  t.same((await app.inject('/')).json(), anthropic429)
  t.same((await app.inject('/?protocol=openai-chat')).json(), openai429)
  t.same((await app.inject('/?protocol=generic')).json(), generic429)
})

t.test('per route config.slots', async t => {
  const app = await slotsApp(t, { store: new MemoryStore(), maxWaiters: 0 })
  app.get('/responses', { config: { slots: [{ type: 'user', id: 1, max: 1, protocol: 'openai-responses' }] } }, async () => 'unreachable')
  app.get('/plain', { config: { slots: [{ type: 'user', id: 1, max: 1 }] } }, async () => 'unreachable')
  const held = await app.slots.acquire('user', 1, 1)
  t.teardown(() => held.release())
  const res = await app.inject('/responses')
  t.equal(res.statusCode, 429)
  t.equal(res.headers['retry-after'], '2')
  t.same(res.json(), { error: { message: res.json().error.message, type: 'rate_limit_error', param: null, code: 'rate_limit_exceeded' } })
  t.match(res.json().error.message, /^concurrency limit reached for user/)
  t.equal((await app.inject('/plain')).json().code, 'SLOT_QUEUE_FULL')
})

t.test('503 and 500 map to each API\'s server errors', async t => {
  const failing = failingStore('store exploded')
  const app = await slotsApp(t, { store: failing })
  app.get<{ Querystring: { protocol: fastifySlots.ProtocolName, max?: string } }>('/', async (request) => {
    await request.acquireSlot('user', 1, request.query.max === undefined ? 1 : Number(request.query.max), { protocol: request.query.protocol })
  })
  const anthropic = await app.inject('/?protocol=anthropic')
  t.equal(anthropic.statusCode, 503)
  t.same(anthropic.json(), { type: 'error', error: { type: 'overloaded_error', message: anthropic.json().error.message } })
  t.match(anthropic.json().error.message, /store exploded/)
  const chat = await app.inject('/?protocol=openai-chat')
  t.equal(chat.statusCode, 503)
  t.same({ ...chat.json().error, message: '' }, { message: '', type: 'server_error', param: null, code: 'server_is_overloaded' })
  // An invalid argument is a 500 SlotError: the generic server error of each API.
  const invalid = await app.inject('/?protocol=anthropic&max=-1')
  t.equal(invalid.statusCode, 500)
  t.equal(invalid.json().type, 'error')
  t.equal(invalid.json().error.type, 'api_error')
  const invalidChat = await app.inject('/?protocol=openai-responses&max=-1')
  t.equal(invalidChat.json().error.code, 'server_error')
})

t.test('an error handler that shapes its own body is left alone; one that sends the error on is shaped', async t => {
  const app = await slotsApp(t, { store: new MemoryStore(), maxWaitMs: 0, protocol: 'openai-chat' })
  await app.register(async scope => {
    scope.setErrorHandler(async (error: fastifySlots.SlotError, _request, reply) => {
      reply.code(error.statusCode)
      return { mine: true, code: error.code }
    })
    scope.get('/own', async (request) => { await request.acquireSlot('user', 1, 1) })
  })
  await app.register(async scope => {
    scope.setErrorHandler(async (error, _request, reply) => reply.send(error))
    scope.get('/passed-on', async (request) => { await request.acquireSlot('user', 1, 1) })
  })
  // Caught by the handler, which then answers something else entirely.
  app.get('/caught', async (request, reply) => {
    try {
      await request.acquireSlot('user', 1, 1)
    } catch {
      reply.code(429)
      return { statusCode: 429, code: 'MINE', error: 'Too Many Requests', message: 'mine' }
    }
  })
  const held = await app.slots.acquire('user', 1, 1)
  t.teardown(() => held.release())
  const own = await app.inject('/own')
  t.equal(own.statusCode, 429)
  t.same(own.json(), { mine: true, code: 'SLOT_WAIT_TIMEOUT' })
  const passed = await app.inject('/passed-on')
  t.equal(passed.statusCode, 429)
  t.equal(passed.headers['retry-after'], '2')
  t.same(passed.json(), openai429)
  t.same((await app.inject('/caught')).json(), { statusCode: 429, code: 'MINE', error: 'Too Many Requests', message: 'mine' })
})

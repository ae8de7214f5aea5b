import t from 'tap'
import Fastify from 'fastify'
import fastifySlots from '../lib'
import { MemoryStore } from '../lib/stores/memory-store'
import { sleep, slotsApp } from './helpers/app'

declare module 'fastify' {
  interface FastifyRequest {
    user?: { id: string, limit: number }
  }
}

t.test('config.slots takes the slots in order before the handler and releases them after', async t => {
  const store = new MemoryStore()
  const app = await slotsApp(t, { store, maxWaitMs: 20, backoff: { initialMs: 10, maxMs: 20 } })
  app.addHook('onRequest', async request => {
    request.user = { id: String(request.headers['x-user']), limit: Number(request.headers['x-limit'] ?? 1) }
  })
  let duringHandler: unknown
  app.post('/v1/messages', {
    config: {
      slots: [
        { type: 'user', id: (req) => req.user!.id, max: (req) => req.user!.limit, stream: (req) => (req.body as { stream?: boolean }).stream === true },
        { type: 'account', id: 'acct-1', max: 10 }
      ]
    }
  }, async () => {
    duringHandler = await store.usage(['user:alice', 'account:acct-1'])
    await sleep(50)
    return 'ok'
  })
  const res = await app.inject({ method: 'POST', url: '/v1/messages', headers: { 'x-user': 'alice' }, payload: { stream: false } })
  t.equal(res.statusCode, 200)
  t.same(duringHandler, [{ held: 1, waiting: 0, oldestWaitMs: 0, waitingByPriority: {} }, { held: 1, waiting: 0, oldestWaitMs: 0, waitingByPriority: {} }], 'both slots were held in the handler')
  t.same(await store.usage(['user:alice', 'account:acct-1']), [{ held: 0, waiting: 0, oldestWaitMs: 0, waitingByPriority: {} }, { held: 0, waiting: 0, oldestWaitMs: 0, waitingByPriority: {} }], 'and released after')

  // alice's limit is 1: a second concurrent request waits, then times out with 429.
  const [a, b] = await Promise.all([
    app.inject({ method: 'POST', url: '/v1/messages', headers: { 'x-user': 'alice' }, payload: {} }),
    (async () => { await sleep(10); return await app.inject({ method: 'POST', url: '/v1/messages', headers: { 'x-user': 'alice' }, payload: {} }) })()
  ])
  t.equal(a.statusCode, 200)
  t.equal(b.statusCode, 429)
  t.equal(b.json().code, 'SLOT_WAIT_TIMEOUT')
  // With limit 2 both pass.
  const both = await Promise.all([1, 2].map(() => app.inject({ method: 'POST', url: '/v1/messages', headers: { 'x-user': 'bob', 'x-limit': '2' }, payload: {} })))
  t.same(both.map(r => r.statusCode), [200, 200])
})

t.test('a streaming route config pings while waiting and the handler continues the stream', async t => {
  const app = await slotsApp(t, { store: new MemoryStore(), ping: { intervalMs: 20 }, protocol: 'anthropic' })
  app.get('/stream', { config: { slots: [{ type: 'user', id: 'u', max: 1, stream: true }] } }, async (request, reply) => {
    if (!request.slotStreamStarted) {
      reply.hijack()
      reply.raw.writeHead(200, { 'content-type': 'text/event-stream' })
    }
    await sleep(60)
    reply.raw.end('data: done\n\n')
  })
  const [first, second] = await Promise.all([app.inject('/stream'), (async () => { await sleep(5); return await app.inject('/stream') })()])
  t.notMatch(first.body, /ping/, 'the first did not wait')
  t.match(second.body, /^event: ping\ndata: \{"type":"ping"\}\n\n/, 'the second got Anthropic pings while it waited')
  t.match(second.body, /data: done\n\n$/)
})

t.test('bad config.slots fails at route registration with a message naming the route', async t => {
  const app = Fastify()
  await app.register(fastifySlots, { store: new MemoryStore() })
  const bad: Array<[unknown, RegExp]> = [
    [{ type: 'user', id: 1, max: 1 }, /GET \/bad0 config\.slots must be an array/],
    [[{ type: 'user', id: 1 }], /GET \/bad1 config\.slots\[0\] needs "max"/],
    [[{ type: 'user', id: 1, max: -1 }], /config\.slots\[0\] max must be a non-negative/],
    [[{ type: 'a:b', id: 1, max: 1 }], /config\.slots\[0\] type may contain only/],
    [[{ type: 'user', id: 1, max: 1 }, 'x'], /config\.slots\[1\] must be an object/],
    [[{ type: 'user', id: 1, max: 1, maxWait: 5 }], /unknown field "maxWait"/],
    [[{ type: 'user', id: 1, max: 1, maxWaitMs: -5 }], /config\.slots\[0\] option "maxWaitMs" must be an integer/],
    [[{ type: 'user', id: 1, max: 1, protocol: 'grpc' }], /config\.slots\[0\] option "protocol" must be/],
    [[{ type: 'user', id: 1, max: 1, failFast: 'yes' }], /config\.slots\[0\] option "failFast" must be a boolean/],
    [[{ type: 'user', id: 1, max: 1, priority: 1.5 }], /config\.slots\[0\] option "priority" must be an integer from 0 to 1000/],
    [[{ type: 'user', id: 1, max: 2, weight: 3 }], /config\.slots\[0\] option "weight" must be at most max \(2\), got 3/],
    [[{ type: 'user', id: 1, max: 2 }, { type: 'user', id: '1', max: 3 }], /config\.slots\[1\] takes user 1 again \(as config\.slots\[0\] does\): a subject is taken once/]
  ]
  bad.forEach(([slots, message], i) => {
    t.throws(() => app.get(`/bad${i}`, { config: { slots: slots as never } }, async () => 'x'), message)
  })
  t.doesNotThrow(() => app.get('/good', { config: { slots: [{ type: 'user', id: (req) => req.ip, max: 2 }] } }, async () => 'ok'))
  await app.close()
})

t.test('routes without config.slots get no preHandler', async t => {
  const app = await slotsApp(t, { store: new MemoryStore() })
  let preHandlers: unknown
  app.addHook('onRoute', route => { if (route.url === '/plain') preHandlers = route.preHandler })
  app.get('/plain', async () => 'plain')
  await app.ready()
  t.equal(preHandlers, undefined)
  t.equal((await app.inject('/plain')).body, 'plain')
})

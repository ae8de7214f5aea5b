/**
 * No silent misconfiguration: an app says which store keeps its slots, refuses to start when
 * @fastify/redis came after the plugin had picked the per-process memory store, and refuses
 * to serve a route whose config.slots nothing takes (registered before the plugin).
 */
import { Writable } from 'node:stream'
import t from 'tap'
import Fastify from 'fastify'
import fastifyRedis from '@fastify/redis'
import fastifySlots from '../lib'
import { redisUrl, uniquePrefix } from './helpers/redis'

t.test('one info line at startup names the store, the prefix and the instance id', async t => {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({ write (chunk, _encoding, done) { lines.push(JSON.parse(String(chunk))); done() } })
  const app = Fastify({ logger: { level: 'info', stream } })
  await app.register(fastifySlots, { prefix: 'wiring-log' })
  t.teardown(() => app.close())
  const line = lines.find(l => String(l.msg).startsWith('fastify-slots:'))
  t.same(line && { store: line.store, prefix: line.prefix, instanceId: line.instanceId }, { store: 'memory', prefix: 'wiring-log', instanceId: app.slots.instanceId })
})

t.test('@fastify/redis registered after the plugin: ready() fails with a clear error', async t => {
  const app = Fastify()
  await app.register(fastifySlots)
  await app.register(fastifyRedis, { url: await redisUrl(t), lazyConnect: true })
  t.teardown(() => app.close())
  await t.rejects(async () => { await app.ready() }, /@fastify\/redis was registered after fastify-slots/)
})

t.test('@fastify/redis first, or an explicit memory store: no error', async t => {
  const url = await redisUrl(t)
  const first = Fastify()
  await first.register(fastifyRedis, { url })
  await first.register(fastifySlots, { prefix: uniquePrefix('wiring') })
  t.teardown(() => first.close())
  await first.ready()
  const explicit = Fastify()
  await explicit.register(fastifySlots, { store: 'memory' })
  await explicit.register(fastifyRedis, { url, lazyConnect: true })
  t.teardown(() => explicit.close())
  await explicit.ready()
  t.pass()
})

t.test('a route with config.slots registered before the plugin is refused, never served unlimited', async t => {
  const app = Fastify()
  let served = 0
  app.get('/early', { config: { slots: [{ type: 'user', id: 1, max: 1 }] } }, async () => { served++; return 'unlimited' })
  await app.register(fastifySlots)
  app.get('/late', { config: { slots: [{ type: 'user', id: 1, max: 1 }] } }, async () => 'limited')
  app.get('/plain', async () => 'plain')
  t.teardown(() => app.close())
  const early = await app.inject('/early')
  t.equal(early.statusCode, 500)
  t.match(early.json().message, /GET \/early declares config\.slots but was registered before fastify-slots/)
  t.equal(served, 0, 'its handler never ran')
  t.equal((await app.inject('/late')).body, 'limited')
  t.equal((await app.inject('/plain')).body, 'plain')
})

import { request as httpRequest } from 'node:http'
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import fastifySlots from '../lib'
import { client, holders, keysLeft, redisUrl, uniquePrefix, waiters } from './helpers/redis'
import { eventually, slotsApp } from './helpers/app'
import { wrapStore } from './helpers/wrapped-store'

/** Starts a request and destroys its socket once `ready` says so; resolves when the socket closed. */
async function abortWhen (base: string, path: string, ready: () => Promise<boolean>): Promise<void> {
  const req = httpRequest(`${base}${path}`)
  req.on('error', () => {})
  req.end()
  await eventually(ready)
  req.destroy()
}

async function listen (app: FastifyInstance): Promise<string> {
  return await app.listen({ port: 0, host: '127.0.0.1' })
}

/** A store wrapping another that counts release calls: each slot must be released exactly once. */
function countingStore (inner: fastifySlots.SlotStore): fastifySlots.SlotStore & { releases: number } {
  const store = Object.assign(wrapStore(inner, {
    release: args => { store.releases++; return inner.release(args) }
  }), { releases: 0 })
  return store
}

t.test('a client abort while holding frees the slot within 100 ms', async t => {
  const url = await redisUrl(t)
  const redis = client(t, url)
  const prefix = uniquePrefix('abort-hold')
  const app = await slotsApp(t, { redis, prefix })
  let finish = (): void => {}
  const never = new Promise<void>(resolve => { finish = resolve })
  t.teardown(finish)
  app.get('/hold', async (request) => {
    await request.acquireSlot('user', 'gone', 2)
    await never
    return 'unreachable'
  })
  const base = await listen(app)
  await abortWhen(base, '/hold', async () => await holders(redis, prefix, 'user:gone') === 1)
  const elapsed = await eventually(async () => await holders(redis, prefix, 'user:gone') === 0, 2000, 2)
  t.ok(elapsed <= 100, `freed ${elapsed} ms after the client left`)
  t.same(await keysLeft(redis, prefix), [])
})

t.test('a client abort while waiting leaves the queue and rejects with SLOT_WAIT_ABORTED', async t => {
  const url = await redisUrl(t)
  const redis = client(t, url)
  const prefix = uniquePrefix('abort-wait')
  const app = await slotsApp(t, { redis, prefix, maxWaitMs: 10_000 })
  let finish = (): void => {}
  const held = new Promise<void>(resolve => { finish = resolve })
  t.teardown(finish)
  let waitError: unknown
  app.get('/hold', async (request) => {
    await request.acquireSlot('user', 'busy', 1)
    await held
    return 'held'
  })
  app.get('/wait', async (request) => {
    try {
      await request.acquireSlot('user', 'busy', 1)
    } catch (err) {
      waitError = err
      throw err
    }
    return 'got it'
  })
  const holding = app.inject('/hold')
  await eventually(async () => await holders(redis, prefix, 'user:busy') === 1)
  const base = await listen(app)
  await abortWhen(base, '/wait', async () => await waiters(redis, prefix, 'user:busy') === 1)
  await eventually(async () => await waiters(redis, prefix, 'user:busy') === 0, 1000)
  await eventually(() => waitError !== undefined)
  t.type(waitError, fastifySlots.SlotError)
  t.equal((waitError as fastifySlots.SlotError).code, 'SLOT_WAIT_ABORTED')
  t.equal((waitError as fastifySlots.SlotError).statusCode, 499)
  t.equal(await holders(redis, prefix, 'user:busy'), 1, 'the holder is untouched')
  finish()
  t.equal((await holding).statusCode, 200)
  t.same(await keysLeft(redis, prefix), [], 'nothing is left once the release went out')
})

t.test('every slot is released exactly once however the request ends', async t => {
  const url = await redisUrl(t)
  const redis = client(t, url)
  const prefix = uniquePrefix('once')
  const { RedisStore } = fastifySlots
  const store = countingStore(new RedisStore({ client: redis, prefix }))
  const app = await slotsApp(t, { store })
  app.get('/ok', async (request) => {
    const user = await request.acquireSlot('user', 1, 3)
    await request.acquireSlot('account', 9, 10)
    await user.release()
    await user.release()
    return 'ok'
  })
  app.get('/throws', async (request) => {
    await request.acquireSlot('user', 1, 3)
    throw new Error('handler failed')
  })
  app.get('/stream', async (request, reply) => {
    await request.acquireSlot('user', 1, 3)
    reply.hijack()
    reply.raw.writeHead(200, { 'content-type': 'text/plain' })
    reply.raw.end('streamed')
  })
  const base = await listen(app)

  t.equal((await fetch(`${base}/ok`)).status, 200)
  await eventually(() => store.releases === 2)
  t.equal((await fetch(`${base}/throws`)).status, 500)
  await eventually(() => store.releases === 3)
  const streamed = await fetch(`${base}/stream`)
  t.equal(await streamed.text(), 'streamed')
  await eventually(() => store.releases === 4)
  await new Promise(resolve => setTimeout(resolve, 50))
  t.equal(store.releases, 4, 'two slots, then one, then one: one release call each (onResponse, close and release() together)')
  t.same(await keysLeft(redis, prefix), [])
})

t.test('max 0 means unlimited: no store call, a no-op release', async t => {
  const url = await redisUrl(t)
  const redis = client(t, url)
  const prefix = uniquePrefix('unlimited')
  const store = countingStore(new fastifySlots.RedisStore({ client: redis, prefix }))
  let calls = 0
  const counted = { ...store, tryAcquire: (args: fastifySlots.TryAcquireArgs) => { calls++; return store.tryAcquire(args) } }
  const app = await slotsApp(t, { store: counted })
  app.get('/', async (request) => {
    const slot = await request.acquireSlot('user', 1, 0)
    await slot.release()
    return { bypassed: slot.bypassed }
  })
  const res = await app.inject('/')
  t.same(res.json(), { bypassed: true })
  t.equal(calls, 0)
  t.equal(store.releases, 0)
})

t.test('app.close() rejects waiters with 503, releases held slots and stops', async t => {
  const url = await redisUrl(t)
  const redis = client(t, url)
  const prefix = uniquePrefix('close')
  const app = await slotsApp(t, { redis, prefix, maxWaitMs: 20_000 })
  let finish = (): void => {}
  const held = new Promise<void>(resolve => { finish = resolve })
  app.get('/hold', async (request) => {
    await request.acquireSlot('user', 'c', 1)
    await held
    return 'held'
  })
  const base = await listen(app)
  const holding = fetch(`${base}/hold`)
  await eventually(async () => await holders(redis, prefix, 'user:c') === 1)
  const waiting = fetch(`${base}/hold`)
  await eventually(async () => await waiters(redis, prefix, 'user:c') === 1)

  const closing = app.close()
  const waited = await waiting
  t.equal(waited.status, 503, 'the waiter is told the service is unavailable')
  t.equal((await waited.json() as { code: string }).code, 'SLOT_STORE_UNAVAILABLE')
  finish()
  t.equal((await holding).status, 200, 'the in-flight holder completes')
  // fetch keeps connections alive; Node's server.close() waits for them unless told they are idle.
  app.server.closeIdleConnections()
  await closing
  t.same(await keysLeft(redis, prefix), [], 'nothing is left in Redis')
})

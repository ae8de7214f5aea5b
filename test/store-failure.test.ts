/**
 * A slot store that is down, hanging or failing: fail-closed answers 503 fast, fail-open lets
 * the request through without a slot, and a restarted Redis is used again.
 */
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import type { Redis, RedisOptions } from 'ioredis'
import { client, holders, keysLeft, startPrivateRedis, type PrivateRedis, uniquePrefix } from './helpers/redis'
import { eventually, slotsApp } from './helpers/app'
import { ReleaseOutcome, type MemberRef, type SlotStore, type TryAcquireArgs } from '../lib/stores/store'

type Test = tap.Test

const STORE_TIMEOUT_MS = 200

interface Seen { bypassed?: boolean, held?: number }

/** Queues commands while disconnected and retries the connection every 50 ms (a quick restart). */
const RECONNECTING: RedisOptions = { maxRetriesPerRequest: null, retryStrategy: () => 50 }

/** A private Redis, a client on it, and an app on that client. */
async function setup (t: Test, onStoreError: 'fail-closed' | 'fail-open', options: RedisOptions = RECONNECTING): Promise<{ server: PrivateRedis, redis: Redis, prefix: string, app: FastifyInstance, seen: Seen }> {
  const server = await startPrivateRedis(t)
  const redis = client(t, server.url, options)
  redis.on('error', () => {}) // connection errors while the server is down are expected
  // Connected before the first request (a client without an offline queue fails until then).
  await eventually(() => redis.status === 'ready', 2000)
  const prefix = uniquePrefix('failure')
  const app = await slotsApp(t, { redis, prefix, storeTimeoutMs: STORE_TIMEOUT_MS, onStoreError })
  const seen: Seen = {}
  app.get('/', async (request) => {
    const slot = await request.acquireSlot('user', 1, 2)
    seen.bypassed = slot.bypassed
    seen.held = slot.bypassed ? undefined : await holders(redis, prefix, 'user:1')
    return { bypassed: slot.bypassed }
  })
  await app.ready()
  return { server, redis, prefix, app, seen }
}

t.test('fail-closed: a stopped Redis answers 503 SLOT_STORE_UNAVAILABLE within storeTimeoutMs', async t => {
  const clients: Array<[string, RedisOptions, boolean]> = [
    // [label, client options, whether a command waits in the offline queue (so the timeout ends it)]
    ['maxRetriesPerRequest: null', RECONNECTING, true],
    ['default client options', {}, true],
    ['enableOfflineQueue: false', { enableOfflineQueue: false }, false]
  ]
  for (const [label, options, queues] of clients) {
    await t.test(label, async t => {
      const { server, app, seen } = await setup(t, 'fail-closed', options)
      const ok = await app.inject('/')
      t.equal(ok.statusCode, 200, 'works while Redis is up')
      t.same(seen, { bypassed: false, held: 1 })

      await server.stop()
      for (let i = 0; i < 2; i++) {
        const started = Date.now()
        const res = await app.inject('/')
        const elapsed = Date.now() - started
        t.equal(res.statusCode, 503)
        t.equal(res.json().code, 'SLOT_STORE_UNAVAILABLE')
        if (queues) t.ok(elapsed >= STORE_TIMEOUT_MS - 20, `waited for the store timeout (${elapsed} ms)`)
        t.ok(elapsed < 1500, `did not hang (${elapsed} ms)`)
      }
    })
  }
})

t.test('fail-open: with Redis stopped the route runs without a slot', async t => {
  const { server, app, seen } = await setup(t, 'fail-open')
  await server.stop()
  const started = Date.now()
  const res = await app.inject('/')
  const elapsed = Date.now() - started
  t.equal(res.statusCode, 200)
  t.same(res.json(), { bypassed: true })
  t.equal(seen.bypassed, true, 'the route saw a bypassed slot')
  t.ok(elapsed < 1500, `did not hang (${elapsed} ms)`)
})

t.test('after Redis restarts, requests take real slots again', async t => {
  const { server, redis, prefix, app, seen } = await setup(t, 'fail-closed')
  await server.stop()
  t.equal((await app.inject('/')).statusCode, 503, 'down: 503')
  t.equal((await app.inject('/')).statusCode, 503, 'still down: 503')

  await server.start()
  await eventually(async () => {
    seen.held = undefined
    const res = await app.inject('/')
    return res.statusCode === 200
  }, 8000, 50)
  t.same(seen, { bypassed: false, held: 1 }, 'the route held a real slot in the restarted Redis')

  const res = await app.inject('/')
  t.equal(res.statusCode, 200)
  t.same(seen, { bypassed: false, held: 1 })
  // Whatever the outage left queued on the connection (attempts and their clean-ups) has run.
  t.same(await keysLeft(redis, prefix, 2000), [], 'no slot or ticket is left behind')
})

t.test('fail-open: after Redis restarts, slots are real again', async t => {
  const { server, app, seen } = await setup(t, 'fail-open')
  await server.stop()
  t.same((await app.inject('/')).json(), { bypassed: true })
  await server.start()
  await eventually(async () => (await app.inject('/')).json().bypassed === false, 8000, 50)
  t.same(seen, { bypassed: false, held: 1 })
})

/** A custom store whose tryAcquire is given; the rest succeed and are recorded. */
function customStore (tryAcquire: (args: TryAcquireArgs) => Promise<never>): SlotStore & { cleaned: MemberRef[] } {
  const cleaned: MemberRef[] = []
  return {
    cleaned,
    tryAcquire,
    poll: tryAcquire,
    release: async () => ReleaseOutcome.Gone,
    abandon: async ({ tag, member }) => { cleaned.push({ tag, member }) },
    renew: async (refs) => refs.map(() => false),
    refreshTickets: async (refs) => refs.map(() => false)
  }
}

/** One request taking ('user', 1, 2) on an app with this store: its response and how long it took. */
async function acquireThrough (t: { teardown: (fn: () => unknown) => void }, store: SlotStore): Promise<{ res: Awaited<ReturnType<FastifyInstance['inject']>>, elapsed: number }> {
  const app = await slotsApp(t, { store, storeTimeoutMs: STORE_TIMEOUT_MS })
  app.get('/', async (request) => {
    await request.acquireSlot('user', 1, 2)
    return 'unreachable'
  })
  const started = Date.now()
  const res = await app.inject('/')
  return { res, elapsed: Date.now() - started }
}

t.test('a custom store', async t => {
  t.test('whose tryAcquire never resolves: 503 after storeTimeoutMs', async t => {
    const calls: TryAcquireArgs[] = []
    const store = customStore(args => {
      calls.push(args)
      return new Promise<never>(() => {})
    })
    const { res, elapsed } = await acquireThrough(t, store)
    t.equal(res.statusCode, 503)
    t.equal(res.json().code, 'SLOT_STORE_UNAVAILABLE')
    t.ok(elapsed >= STORE_TIMEOUT_MS - 20, `waited for the timeout (${elapsed} ms)`)
    t.ok(elapsed < 1500, `did not hang (${elapsed} ms)`)
    t.equal(calls.length, 1, 'one attempt')
    t.equal(calls[0].tag, 'user:1')
    t.equal(calls[0].max, 2)
    await eventually(() => store.cleaned.length === 1)
    t.ok(store.cleaned.every(h => h.tag === 'user:1' && h.member === calls[0].member),
      'the attempt that may still land is cleaned up')
  })

  t.test('whose tryAcquire rejects: 503', async t => {
    const store = customStore(async () => { throw new Error('store exploded') })
    const { res, elapsed } = await acquireThrough(t, store)
    t.equal(res.statusCode, 503)
    t.equal(res.json().code, 'SLOT_STORE_UNAVAILABLE')
    t.match(res.json().message, /store exploded/, 'the cause is named')
    t.ok(elapsed < STORE_TIMEOUT_MS, `a rejection answers at once (${elapsed} ms)`)
  })

  t.test('whose tryAcquire rejects, fail-open: the route runs bypassed', async t => {
    const store = customStore(async () => { throw new Error('store exploded') })
    const app = await slotsApp(t, { store, storeTimeoutMs: STORE_TIMEOUT_MS, onStoreError: 'fail-open' })
    app.get('/', async (request) => {
      const slot = await request.acquireSlot('user', 1, 2)
      return { bypassed: slot.bypassed }
    })
    const res = await app.inject('/')
    t.equal(res.statusCode, 200)
    t.same(res.json(), { bypassed: true })
  })
})

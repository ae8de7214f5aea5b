/**
 * What only the Redis store promises: its key layout, Redis-clock scores, key TTLs, integer
 * replies, batching, and working on any ioredis client (shared, RESP2 or RESP3).
 */
import t from 'tap'
import { Redis } from 'ioredis'
import { client, keysUnder, redisUrl, startPrivateRedis, uniquePrefix } from './helpers/redis'
import { sleep } from './helpers/app'
import { RedisStore } from '../lib/stores/redis-store'
import { AcquireOutcome, type TryAcquireArgs } from '../lib/stores/store'

type Test = tap.Test

const { Acquired, AcquiredWithRoom, Waiting, QueueFull } = AcquireOutcome

/** Both acquired outcomes as one (the contract suite tests which one). */
function acquired (outcome: AcquireOutcome): AcquireOutcome {
  return outcome === AcquiredWithRoom ? Acquired : outcome
}

function args (tag: string, member: string, overrides: Partial<TryAcquireArgs> = {}): TryAcquireArgs {
  return { tag, member, max: 1, leaseMs: 10_000, maxWaiters: 10, ticketTtlMs: 10_000, ...overrides }
}

async function redisNow (redis: Redis): Promise<number> {
  const [s, us] = await redis.time()
  return Number(s) * 1000 + Math.floor(Number(us) / 1000)
}

/** A client on the shared test Redis, and a prefix whose keys are deleted when the test ends. */
async function setup (t: Test, name: string): Promise<{ redis: Redis, url: string, prefix: string }> {
  const url = await redisUrl(t)
  const redis = client(t, url)
  const prefix = uniquePrefix(name)
  const cleaner = new Redis(url)
  t.teardown(async () => {
    const keys = await keysUnder(cleaner, prefix)
    if (keys.length > 0) await cleaner.del(...keys)
    cleaner.disconnect()
  })
  return { redis, url, prefix }
}

async function scores (redis: Redis, key: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {}
  for (const member of await redis.zrange(key, 0, '-1')) out[String(member)] = Number(await redis.zscore(key, member))
  return out
}

t.test('keys are <prefix>:{<tag>}:holders, :waiters and :queue, and nothing else is written', async t => {
  // A private server, so "nothing else" can be checked over the whole keyspace.
  const server = await startPrivateRedis(t)
  const redis = client(t, server.url)
  const prefix = 'slots-test'
  const store = new RedisStore({ client: redis, prefix })
  const tag = 'user:42'
  t.equal(store.key(tag, 'holders'), 'slots-test:{user:42}:holders')
  t.equal(store.key(tag, 'waiters'), 'slots-test:{user:42}:waiters')

  t.same(await redis.keys('*'), [], 'the private server starts empty')
  t.equal(acquired(await store.tryAcquire(args(tag, 'h'))), Acquired)
  t.same(await redis.keys('*'), ['slots-test:{user:42}:holders'], 'a holder writes only the holders key')
  t.equal(await store.tryAcquire(args(tag, 'w')), Waiting)
  const all = ['slots-test:{user:42}:holders', 'slots-test:{user:42}:queue', 'slots-test:{user:42}:waiters']
  t.same((await redis.keys('*')).sort(), all, 'a waiter writes its ticket and its place in the queue')
  for (const key of all) t.equal(await redis.type(key), 'zset')
  t.same(Object.keys(await scores(redis, 'slots-test:{user:42}:holders')), ['h'])
  t.same(Object.keys(await scores(redis, 'slots-test:{user:42}:waiters')), ['w'])
  t.same(Object.keys(await scores(redis, 'slots-test:{user:42}:queue')), ['w'])

  t.same(await store.renew([{ tag, member: 'h' }, { tag, member: 'nobody' }], 10_000), [true, false])
  t.equal(await store.tryAcquire(args(tag, 'x', { ticketTtlMs: 0 })), Waiting)
  t.equal(await store.tryAcquire(args(tag, 'y', { maxWaiters: 1 })), QueueFull)
  t.same((await redis.keys('*')).sort(), all,
    'renewing, a full try without a ticket and a refused one write no other key')

  await store.leaveQueue({ tag, member: 'w' })
  await store.release({ tag, member: 'h' })
  t.same(await redis.keys('*'), [], 'emptied sets are gone')
})

t.test('holder scores are Redis TIME + leaseMs, never the client clock', async t => {
  const { redis, prefix } = await setup(t, 'scores')
  const store = new RedisStore({ client: redis, prefix })
  const tag = 'user:1'
  const realNow = Date.now
  // A client clock an hour off: a store reading it would write scores an hour off.
  Date.now = () => realNow() + 3_600_000
  let before: number
  let after: number
  try {
    before = await redisNow(redis)
    t.equal(acquired(await store.tryAcquire(args(tag, 'a', { max: 2, leaseMs: 5000 }))), Acquired)
    t.equal(acquired(await store.tryAcquire(args(tag, 'b', { max: 2, leaseMs: 60_000 }))), Acquired)
    t.equal(await store.tryAcquire(args(tag, 'w', { max: 2, ticketTtlMs: 7000 })), Waiting)
    after = await redisNow(redis)
  } finally {
    Date.now = realNow
  }
  const held = await scores(redis, store.key(tag, 'holders'))
  const tol = 50
  t.ok(held.a >= before + 5000 - tol && held.a <= after + 5000 + tol, `a expires at Redis now + 5000 (${held.a - before - 5000} ms off)`)
  t.ok(held.b >= before + 60_000 - tol && held.b <= after + 60_000 + tol, `b expires at Redis now + 60000 (${held.b - before - 60_000} ms off)`)
  const waiting = await scores(redis, store.key(tag, 'waiters'))
  t.ok(waiting.w >= before + 7000 - tol && waiting.w <= after + 7000 + tol, 'the ticket expires at Redis now + ticketTtlMs')

  // Renewal rescores from the Redis clock too.
  await sleep(100)
  Date.now = () => realNow() - 3_600_000
  let renewBefore: number
  let renewAfter: number
  try {
    renewBefore = await redisNow(redis)
    t.same(await store.renew([{ tag, member: 'a' }], 8000), [true])
    renewAfter = await redisNow(redis)
  } finally {
    Date.now = realNow
  }
  const renewed = (await scores(redis, store.key(tag, 'holders'))).a
  t.ok(renewed >= renewBefore + 8000 - tol && renewed <= renewAfter + 8000 + tol, 'renew sets Redis now + leaseMs')
})

t.test('the holders key lives as long as its longest lease, and goes when empty', async t => {
  const { redis, prefix } = await setup(t, 'pttl')
  const store = new RedisStore({ client: redis, prefix })
  const tol = 50

  /** Checks the key's PTTL covers every live entry: PTTL >= max(score) - Redis now. */
  async function coversAll (key: string, what: string): Promise<void> {
    const now = await redisNow(redis)
    const latest = Math.max(...Object.values(await scores(redis, key)))
    const pttl = await redis.pttl(key)
    t.ok(pttl >= latest - now - tol, `${what}: PTTL ${pttl} covers the latest expiry, ${latest - now} ms away`)
  }

  // Long lease first, then a short one: the short one must not shorten the key.
  const tag = 'user:long-first'
  const holders = store.key(tag, 'holders')
  t.equal(acquired(await store.tryAcquire(args(tag, 'long', { max: 3, leaseMs: 3000 }))), Acquired)
  t.equal(acquired(await store.tryAcquire(args(tag, 'short', { max: 3, leaseMs: 300 }))), Acquired)
  await coversAll(holders, 'long then short')
  t.ok(await redis.pttl(holders) > 2000, 'the key keeps the long lease')

  // Short first, then long: the key must be extended.
  const tag2 = 'user:short-first'
  const holders2 = store.key(tag2, 'holders')
  t.equal(acquired(await store.tryAcquire(args(tag2, 'short', { max: 3, leaseMs: 300 }))), Acquired)
  t.equal(acquired(await store.tryAcquire(args(tag2, 'long', { max: 3, leaseMs: 3000 }))), Acquired)
  await coversAll(holders2, 'short then long')

  // Renewing with a longer lease extends the key too.
  const tag3 = 'user:renewed'
  const holders3 = store.key(tag3, 'holders')
  t.equal(acquired(await store.tryAcquire(args(tag3, 'a', { leaseMs: 300 }))), Acquired)
  t.same(await store.renew([{ tag: tag3, member: 'a' }], 4000), [true])
  await coversAll(holders3, 'renewed to a longer lease')

  // Re-acquiring with a longer lease, some time later.
  await sleep(100)
  t.equal(acquired(await store.tryAcquire(args(tag3, 'a', { leaseMs: 5000 }))), Acquired)
  await coversAll(holders3, 're-acquired with a longer lease')

  // Waiting tickets: the waiters key covers the longest ticket.
  t.equal(await store.tryAcquire(args(tag3, 'w1', { ticketTtlMs: 3000 })), Waiting)
  t.equal(await store.tryAcquire(args(tag3, 'w2', { ticketTtlMs: 300 })), Waiting)
  await coversAll(store.key(tag3, 'waiters'), 'waiters')

  // Once empty, the keys are gone: by release...
  await store.release({ tag, member: 'long' })
  await store.release({ tag, member: 'short' })
  t.equal(await redis.exists(holders), 0, 'released: the holders key is gone')
  await store.release({ tag: tag3, member: 'a' })
  await store.leaveQueue({ tag: tag3, member: 'w1' })
  await store.leaveQueue({ tag: tag3, member: 'w2' })
  t.equal(await redis.exists(store.key(tag3, 'waiters')), 0, 'left: the waiters key is gone')

  // ...and by expiry, with no call at all (a key's TTL is set to twice what its entries
  // need, so a busy key is re-armed once per period, not on every call).
  const tag4 = 'user:expires'
  t.equal(acquired(await store.tryAcquire(args(tag4, 'a', { leaseMs: 150 }))), Acquired)
  t.equal(await store.tryAcquire(args(tag4, 'w', { ticketTtlMs: 150 })), Waiting)
  t.ok(await redis.pttl(store.key(tag4, 'holders')) <= 300, 'the holders key lives at most twice the lease')
  t.ok(await redis.pttl(store.key(tag4, 'waiters')) <= 300, 'the waiters key at most twice the ticket ttl')
  await sleep(400)
  t.equal(await redis.exists(store.key(tag4, 'holders')), 0, 'expired lease: the holders key expired')
  t.equal(await redis.exists(store.key(tag4, 'waiters')), 0, 'expired ticket: the waiters key expired')

  await store.release({ tag: tag2, member: 'short' })
  await store.release({ tag: tag2, member: 'long' })
  t.same(await keysUnder(redis, prefix), [], 'nothing is left')
})

t.test('the scripts reply with integers', async t => {
  const { redis, prefix } = await setup(t, 'integers')
  const store = new RedisStore({ client: redis, prefix })
  const tag = 'user:1'
  const outcomes = [
    await store.tryAcquire(args(tag, 'h', { maxWaiters: 1 })),
    await store.tryAcquire(args(tag, 'w', { maxWaiters: 1 })),
    await store.tryAcquire(args(tag, 'x', { maxWaiters: 1 }))
  ]
  t.same(outcomes, [1, 0, -1])
  for (const o of outcomes) t.equal(typeof o, 'number')

  // The raw script replies, before the store's own conversion: one batch of five operations.
  const raw = redis as unknown as { fastifySlotsBatch: (...a: unknown[]) => Promise<unknown> }
  const keys = [store.key(tag, 'holders'), store.key(tag, 'waiters'), store.key(tag, 'queue')]
  const replies = await raw.fastifySlotsBatch(15, ...keys, ...keys, ...keys, ...keys, ...keys, `${prefix}:grants:`, 1,
    'a', 'h', 1, 10_000, 1, 10_000, 0, 0, 1,
    'a', 'w', 1, 10_000, 1, 10_000, 0, 0, 1,
    'a', 'x', 1, 10_000, 1, 10_000, 0, 0, 0,
    'h', 'h', 10_000,
    'h', 'nobody', 10_000) as unknown[]
  t.same(replies, [1, 0, -1, 1, 0])
  for (const r of replies) t.equal(typeof r, 'number', `raw reply ${String(r)} is a number`)
  const released = await raw.fastifySlotsBatch(3, ...keys, `${prefix}:grants:`, 1, 'r', 'h', 1, 10_000, 5000) as unknown[]
  t.same(released, [[1, 'w']], "a release answers { live, the releasing instance's grantees } ('h' and 'w' are both instance '')")
  t.equal(typeof (released[0] as unknown[])[0], 'number')

  const renewed = await store.renew([{ tag, member: 'w' }, { tag, member: 'nobody' }], 10_000)
  t.same(renewed, [true, false])
  for (const r of renewed) t.equal(typeof r, 'boolean')
})

t.test('two stores on one client', async t => {
  const { redis, prefix } = await setup(t, 'twice')
  const defined: string[] = []
  const define = redis.defineCommand.bind(redis)
  redis.defineCommand = (name, definition) => {
    defined.push(name)
    define(name, definition)
  }
  const first = new RedisStore({ client: redis, prefix })
  const second = new RedisStore({ client: redis, prefix })
  const other = new RedisStore({ client: redis, prefix: `${prefix}-other` })
  t.same(defined, ['fastifySlotsBatch'], 'the script is defined once per client')

  const tag = 'user:1'
  t.equal(acquired(await first.tryAcquire(args(tag, 'a'))), Acquired)
  t.equal(await second.tryAcquire(args(tag, 'b', { ticketTtlMs: 0 })), Waiting, 'same prefix: same slots')
  t.equal(acquired(await other.tryAcquire(args(tag, 'b', { ticketTtlMs: 0 }))), Acquired, 'another prefix: other slots')
  t.same(await second.renew([{ tag, member: 'a' }, { tag, member: 'b' }], 10_000), [true, false], 'renew through the other store')
  await second.release({ tag, member: 'a' })
  t.equal(acquired(await first.tryAcquire(args(tag, 'b', { ticketTtlMs: 0 }))), Acquired)
  await first.release({ tag, member: 'b' })
  await other.release({ tag, member: 'b' })
  t.same(await keysUnder(redis, prefix), [])
})

t.test('the scripts are reloaded when Redis forgot them (SCRIPT FLUSH, as after a restart)', async t => {
  const server = await startPrivateRedis(t)
  const redis = client(t, server.url)
  const store = new RedisStore({ client: redis, prefix: 'flush' })
  const tag = 'user:1'
  t.equal(acquired(await store.tryAcquire(args(tag, 'a', { max: 2 }))), Acquired)
  await redis.script('FLUSH')
  t.same(await store.renew([{ tag, member: 'a' }, { tag, member: 'b' }], 10_000), [true, false], 'renew (a pipeline) reloads')
  await redis.script('FLUSH')
  t.equal(acquired(await store.tryAcquire(args(tag, 'b', { max: 2 }))), Acquired, 'tryAcquire reloads')
  t.equal(await store.tryAcquire(args(tag, 'c', { max: 2 })), Waiting)
})

t.test('works on clients with default options (RESP3) and on RESP2', async t => {
  const url = await redisUrl(t)
  for (const [label, options] of [['new Redis(url)', undefined], ['protocol 2', { protocol: 2 as const }]] as const) {
    await t.test(label, async t => {
      const redis = options === undefined ? new Redis(url) : new Redis(url, options)
      t.teardown(() => redis.disconnect())
      const prefix = uniquePrefix('resp')
      t.teardown(async () => {
        const keys = await keysUnder(redis, prefix)
        if (keys.length > 0) await redis.del(...keys)
      })
      const info = String(await redis.call('CLIENT', 'INFO'))
      t.match(info, options === undefined ? /\bresp=3\b/ : /\bresp=2\b/, 'the connection speaks the expected protocol')

      const store = new RedisStore({ client: redis, prefix })
      const tag = 'user:1'
      t.equal(acquired(await store.tryAcquire(args(tag, 'a', { maxWaiters: 1 }))), Acquired)
      t.equal(await store.tryAcquire(args(tag, 'b', { maxWaiters: 1 })), Waiting)
      t.equal(await store.tryAcquire(args(tag, 'c', { maxWaiters: 1 })), QueueFull)
      t.same(await store.renew([{ tag, member: 'a' }, { tag, member: 'b' }], 10_000), [true, false])
      await store.release({ tag, member: 'a' })
      t.equal(acquired(await store.tryAcquire(args(tag, 'b', { maxWaiters: 1 }))), Acquired, 'b takes the released slot')
      t.equal(await store.tryAcquire(args(tag, 'c', { maxWaiters: 1 })), Waiting, "b's ticket left with it")
      await store.release({ tag, member: 'b' })
      await store.leaveQueue({ tag, member: 'c' })
      t.same(await keysUnder(redis, prefix), [])
    })
  }
})

t.test('operations issued together travel in few script calls, and a failing one fails alone', async t => {
  // A private server, so INFO commandstats counts only this test's calls.
  const server = await startPrivateRedis(t)
  const redis = client(t, server.url)
  const store = new RedisStore({ client: redis, prefix: 'batch', wakeups: false })
  const evalshaCalls = async (): Promise<number> => {
    const line = (await redis.info('commandstats')).split(/\r?\n/).find(l => l.startsWith('cmdstat_evalsha:'))
    return Number(/calls=(\d+)/.exec(line ?? '')?.[1] ?? 0)
  }
  // The first call loads the script (EVALSHA → NOSCRIPT → EVAL); count from a warm client.
  await store.tryAcquire(args('user:warm', 'a'))
  await store.release({ tag: 'user:warm', member: 'a' })
  const before = await evalshaCalls()

  const tags = Array.from({ length: 64 }, (_, i) => `user:${i}`)
  const outcomes = await Promise.all(tags.map(tag => store.tryAcquire(args(tag, 'a'))))
  t.same(outcomes.map(acquired), tags.map(() => Acquired), '64 concurrent acquires on 64 subjects: all acquired')
  const calls = await evalshaCalls() - before - 1
  t.ok(calls >= 1 && calls <= 8, `they took ${calls} script calls (8 operations a call at most), not 64`)
  t.same(await redis.zcard('batch:{user:63}:holders'), 1, 'and each landed on its own subject')

  // A key of the wrong type makes its own operation fail; the rest of the batch still runs.
  await redis.set('batch:{user:broken}:holders', 'not a zset')
  const [broken, fine] = await Promise.allSettled([store.tryAcquire(args('user:broken', 'b')), store.tryAcquire(args('user:fine', 'b'))])
  t.equal(broken.status, 'rejected', 'the operation on the broken key fails')
  t.match(broken.status === 'rejected' ? String(broken.reason) : '', /WRONGTYPE/, 'with the error Redis gave it')
  t.same(fine.status === 'fulfilled' ? acquired(fine.value) : fine, Acquired, 'the one beside it in the batch succeeds')
})

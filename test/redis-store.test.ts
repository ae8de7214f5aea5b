/**
 * What only the Redis store promises: its key layout, Redis-clock scores, key TTLs, integer
 * replies, batching, and working on any ioredis client (shared, RESP2 or RESP3).
 */
import t from 'tap'
import { Redis } from 'ioredis'
import { client, keysLeft, keysUnder, redisUrl, startPrivateRedis, uniquePrefix } from './helpers/redis'
import { sleep } from './helpers/app'
import { RedisStore } from '../lib/stores/redis-store'
import { AcquireOutcome, memberName, outcomeOf, ReleaseOutcome, type TryAcquireAnswer, type TryAcquireArgs } from '../lib/stores/store'
import { m, seedLapsedRedisTickets } from './helpers/store-contract'

type Test = tap.Test

const { Acquired, AcquiredWithRoom, Full, QueueFull } = AcquireOutcome

/** Both acquired outcomes as one (the contract suite tests which one). */
function acquired (answer: TryAcquireAnswer): AcquireOutcome {
  const outcome = outcomeOf(answer)
  return outcome === AcquiredWithRoom ? Acquired : outcome
}

/** The arguments for the member `m(name, max)` (see the contract helper). */
function args (tag: string, name: string, overrides: Partial<Omit<TryAcquireArgs, 'tag' | 'member'>> = {}): TryAcquireArgs {
  const max = overrides.max ?? 1
  return { tag, member: m(name, max), max, leaseMs: 10_000, maxWaiters: 10, ticketTtlMs: 10_000, ...overrides }
}

/** The member name `args(tag, name, { max })` uses, as a MemberRef. */
function ref (tag: string, name: string, max = 1): { tag: string, member: string } {
  return { tag, member: m(name, max) }
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

t.test('keys are <prefix>:{<tag>}:holders, :tickets and :queue, and nothing else is written', async t => {
  // A private server, so "nothing else" can be checked over the whole keyspace.
  const server = await startPrivateRedis(t)
  const redis = client(t, server.url)
  const prefix = 'slots-test'
  const store = new RedisStore({ client: redis, prefix })
  const tag = 'user:42'
  t.equal(store.key(tag, 'holders'), 'slots-test:{user:42}:holders')
  t.equal(store.key(tag, 'tickets'), 'slots-test:{user:42}:tickets')

  t.same(await redis.keys('*'), [], 'the private server starts empty')
  t.equal(acquired(await store.tryAcquire(args(tag, 'h'))), Acquired)
  t.same(await redis.keys('*'), ['slots-test:{user:42}:holders'], 'a holder writes only the holders key')
  t.same(await store.tryAcquire(args(tag, 'w')), { outcome: Full, ahead: 0 })
  const all = ['slots-test:{user:42}:holders', 'slots-test:{user:42}:queue', 'slots-test:{user:42}:tickets']
  t.same((await redis.keys('*')).sort(), all, 'a waiter writes its ticket and its place in the queue')
  for (const key of all) t.equal(await redis.type(key), 'zset')
  t.same(Object.keys(await scores(redis, 'slots-test:{user:42}:holders')), [m('h')])
  t.same(Object.keys(await scores(redis, 'slots-test:{user:42}:tickets')), [m('w')])
  t.same(Object.keys(await scores(redis, 'slots-test:{user:42}:queue')), [m('w')])

  t.same(await store.renew([ref(tag, 'h'), { tag, member: 'nobody' }], 10_000), [true, false])
  t.equal(await store.tryAcquire(args(tag, 'x', { ticketTtlMs: 0 })), Full)
  t.equal(await store.tryAcquire(args(tag, 'y', { maxWaiters: 1 })), QueueFull)
  t.same((await redis.keys('*')).sort(), all,
    'renewing, a full try without a ticket and a refused one write no other key')

  await store.abandon(ref(tag, 'w'))
  await store.release(ref(tag, 'h'))
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
    t.same(await store.tryAcquire(args(tag, 'w', { max: 2, ticketTtlMs: 7000 })), { outcome: Full, ahead: 0 })
    after = await redisNow(redis)
  } finally {
    Date.now = realNow
  }
  const held = await scores(redis, store.key(tag, 'holders'))
  const tol = 50
  t.ok(held[m('a', 2)] >= before + 5000 - tol && held[m('a', 2)] <= after + 5000 + tol, `a expires at Redis now + 5000 (${held[m('a', 2)] - before - 5000} ms off)`)
  t.ok(held[m('b', 2)] >= before + 60_000 - tol && held[m('b', 2)] <= after + 60_000 + tol, `b expires at Redis now + 60000 (${held[m('b', 2)] - before - 60_000} ms off)`)
  const waiting = await scores(redis, store.key(tag, 'tickets'))
  t.ok(waiting[m('w', 2)] >= before + 7000 - tol && waiting[m('w', 2)] <= after + 7000 + tol, 'the ticket expires at Redis now + ticketTtlMs')

  // Renewal rescores from the Redis clock too.
  await sleep(100)
  Date.now = () => realNow() - 3_600_000
  let renewBefore: number
  let renewAfter: number
  try {
    renewBefore = await redisNow(redis)
    t.same(await store.renew([ref(tag, 'a', 2)], 8000), [true])
    renewAfter = await redisNow(redis)
  } finally {
    Date.now = realNow
  }
  const renewed = (await scores(redis, store.key(tag, 'holders')))[m('a', 2)]
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
  t.same(await store.renew([ref(tag3, 'a')], 4000), [true])
  await coversAll(holders3, 'renewed to a longer lease')

  // Re-acquiring with a longer lease, some time later.
  await sleep(100)
  t.equal(acquired(await store.tryAcquire(args(tag3, 'a', { leaseMs: 5000 }))), Acquired)
  await coversAll(holders3, 're-acquired with a longer lease')

  // Full tickets: the waiters key covers the longest ticket.
  t.same(await store.tryAcquire(args(tag3, 'w1', { ticketTtlMs: 3000 })), { outcome: Full, ahead: 0 })
  t.same(await store.tryAcquire(args(tag3, 'w2', { ticketTtlMs: 300 })), { outcome: Full, ahead: 1 })
  await coversAll(store.key(tag3, 'tickets'), 'tickets')

  // Once empty, the keys are gone: by release...
  await store.release(ref(tag, 'long', 3))
  await store.release(ref(tag, 'short', 3))
  t.equal(await redis.exists(holders), 0, 'released: the holders key is gone')
  await store.release(ref(tag3, 'a'))
  await store.abandon(ref(tag3, 'w1'))
  await store.abandon(ref(tag3, 'w2'))
  t.equal(await redis.exists(store.key(tag3, 'tickets')), 0, 'left: the waiters key is gone')

  // ...and by expiry, with no call at all (a key's TTL is set to twice what its entries
  // need, so a busy key is re-armed once per period, not on every call).
  const tag4 = 'user:expires'
  t.equal(acquired(await store.tryAcquire(args(tag4, 'a', { leaseMs: 150 }))), Acquired)
  t.same(await store.tryAcquire(args(tag4, 'w', { ticketTtlMs: 150 })), { outcome: Full, ahead: 0 })
  t.ok(await redis.pttl(store.key(tag4, 'holders')) <= 300, 'the holders key lives at most twice the lease')
  t.ok(await redis.pttl(store.key(tag4, 'tickets')) <= 300, 'the waiters key at most twice the ticket ttl')
  await sleep(400)
  t.equal(await redis.exists(store.key(tag4, 'holders')), 0, 'expired lease: the holders key expired')
  t.equal(await redis.exists(store.key(tag4, 'tickets')), 0, 'expired ticket: the waiters key expired')

  await store.release(ref(tag2, 'short', 3))
  await store.release(ref(tag2, 'long', 3))
  t.same(await keysLeft(redis, prefix), [], 'nothing is left')
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
  t.same(outcomes, [1, { outcome: 0, ahead: 0 }, -1], 'a ticket comes with its place in line')
  for (const o of outcomes) t.equal(typeof (typeof o === 'object' ? o.ahead : o), 'number')

  // The raw script replies, before the store's own conversion: one batch of five operations.
  const raw = redis as unknown as { fastifySlotsBatch: (...a: unknown[]) => Promise<unknown> }
  const keys = [store.key(tag, 'holders'), store.key(tag, 'tickets'), store.key(tag, 'queue')]
  const [h, w, x] = [m('h'), m('w'), m('x')]
  const replies = await raw.fastifySlotsBatch(15, ...keys, ...keys, ...keys, ...keys, ...keys, `${prefix}:grants:`, 1,
    'a', h, 1, 10_000, 1, 10_000, 0, 0, 0,
    'a', w, 1, 10_000, 1, 10_000, 0, 0, 0,
    'a', x, 1, 10_000, 1, 10_000, 0, 0, 0,
    'h', h, 10_000,
    'h', 'nobody', 10_000) as unknown[]
  t.same(replies, [1, [0, 0], -1, 1, 0], 'a ticket is answered with its place: { 0, tickets ahead }')
  for (const r of replies.flat()) t.equal(typeof r, 'number', `raw reply ${String(r)} is a number`)
  const released = await raw.fastifySlotsBatch(3, ...keys, `${prefix}:grants:`, 1, 'r', h, 10_000, 1) as unknown[]
  t.same(released, [[1, w]], "a release answers { live, the releasing instance's grantees } (h and w are both instance 't')")
  t.equal(typeof (released[0] as unknown[])[0], 'number')

  const renewed = await store.renew([{ tag, member: w }, { tag, member: 'nobody' }], 10_000)
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
  t.equal(await second.tryAcquire(args(tag, 'b', { ticketTtlMs: 0 })), Full, 'same prefix: same slots')
  t.equal(acquired(await other.tryAcquire(args(tag, 'b', { ticketTtlMs: 0 }))), Acquired, 'another prefix: other slots')
  t.same(await second.renew([ref(tag, 'a'), ref(tag, 'b')], 10_000), [true, false], 'renew through the other store')
  await second.release(ref(tag, 'a'))
  t.equal(acquired(await first.tryAcquire(args(tag, 'b', { ticketTtlMs: 0 }))), Acquired)
  await first.release(ref(tag, 'b'))
  await other.release(ref(tag, 'b'))
  t.same(await keysLeft(redis, prefix), [])
})

t.test('the scripts are reloaded when Redis forgot them (SCRIPT FLUSH, as after a restart)', async t => {
  const server = await startPrivateRedis(t)
  const redis = client(t, server.url)
  const store = new RedisStore({ client: redis, prefix: 'flush' })
  const tag = 'user:1'
  t.equal(acquired(await store.tryAcquire(args(tag, 'a', { max: 2 }))), Acquired)
  await redis.script('FLUSH')
  t.same(await store.renew([ref(tag, 'a', 2), ref(tag, 'b', 2)], 10_000), [true, false], 'renew (a pipeline) reloads')
  await redis.script('FLUSH')
  t.equal(acquired(await store.tryAcquire(args(tag, 'b', { max: 2 }))), Acquired, 'tryAcquire reloads')
  t.same(await store.tryAcquire(args(tag, 'c', { max: 2 })), { outcome: Full, ahead: 0 })
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
      t.same(await store.tryAcquire(args(tag, 'b', { maxWaiters: 1 })), { outcome: Full, ahead: 0 })
      t.equal(await store.tryAcquire(args(tag, 'c', { maxWaiters: 1 })), QueueFull)
      t.same(await store.renew([ref(tag, 'a'), ref(tag, 'b')], 10_000), [true, false])
      await store.release(ref(tag, 'a'))
      t.equal(acquired(await store.tryAcquire(args(tag, 'b', { maxWaiters: 1 }))), Acquired, 'b takes the released slot')
      t.same(await store.tryAcquire(args(tag, 'c', { maxWaiters: 1 })), { outcome: Full, ahead: 0 }, "b's ticket left with it")
      await store.release(ref(tag, 'b'))
      await store.abandon(ref(tag, 'c'))
      t.same(await keysLeft(redis, prefix), [])
    })
  }
})

t.test('operations issued together travel in few script calls, and a failing one fails alone', async t => {
  // A private server, so INFO commandstats counts only this test's calls.
  const server = await startPrivateRedis(t)
  const redis = client(t, server.url)
  const store = new RedisStore({ client: redis, prefix: 'batch', wakeups: false })
  // Batches are FCALLs of the loaded function (EVALSHA where the server has no functions).
  const evalshaCalls = async (): Promise<number> => {
    const stats = await redis.info('commandstats')
    return ['fcall', 'evalsha'].reduce((sum, name) => sum + Number(new RegExp(`cmdstat_${name}:calls=(\\d+)`).exec(stats)?.[1] ?? 0), 0)
  }
  // The first call loads the function (FCALL → not found → FUNCTION LOAD → FCALL); count from a warm client.
  await store.tryAcquire(args('user:warm', 'a'))
  await store.release(ref('user:warm', 'a'))
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

t.test('refreshTickets of a lapsed ticket answers false and takes it out of the :queue zset', async t => {
  const { redis, prefix } = await setup(t, 'refresh-lapsed')
  const store = new RedisStore({ client: redis, prefix, wakeups: false })
  const tag = 'user:1'
  const queue = store.key(tag, 'queue')
  t.equal(acquired(await store.tryAcquire(args(tag, 'h'))), Acquired)
  t.same(await store.tryAcquire(args(tag, 'w1', { ticketTtlMs: 100 })), { outcome: Full, ahead: 0 })
  t.same(await store.tryAcquire(args(tag, 'w2')), { outcome: Full, ahead: 1 })
  t.same(await redis.zrange(queue, 0, '-1'), [m('w1'), m('w2')], 'both are queued, in arrival order')
  await sleep(200)
  t.same(await store.refreshTickets([ref(tag, 'w1'), ref(tag, 'w2')], 10_000), [false, true])
  t.same(await redis.zrange(queue, 0, '-1'), [m('w2')], 'the lapsed ticket left the queue')
  t.equal(await redis.zscore(store.key(tag, 'tickets'), m('w1')), null, 'and the tickets')
  t.equal(await store.poll(args(tag, 'w1')), Full, 'its poll queues it again')
  t.same(await redis.zrange(queue, 0, '-1'), [m('w2'), m('w1')], 'at the back')
})

t.test('a grant to another instance is published on its channel as member, newline, tag', async t => {
  const { redis, url, prefix } = await setup(t, 'grant-message')
  const store = new RedisStore({ client: redis, prefix, wakeups: false })
  const tag = 'user:a:b'
  const channel = store.grantChannel('b')
  t.equal(channel, `${prefix}:grants:b`)
  const listener = client(t, url)
  const messages: string[] = []
  listener.on('smessage', (_channel: string, message: string) => messages.push(message))
  listener.on('message', (_channel: string, message: string) => messages.push(message))
  // The store publishes sharded (SPUBLISH) on a single server with Redis 7, classic before.
  await listener.ssubscribe(channel).catch(async () => await listener.subscribe(channel))

  const waiter = memberName('b', 1, 1, 3000)
  t.equal(acquired(await store.tryAcquire(args(tag, 'a:h'))), Acquired)
  t.same(await store.tryAcquire({ ...args(tag, 'unused'), member: waiter }), { outcome: Full, ahead: 0 })
  t.equal(await store.release({ ...ref(tag, 'a:h'), leaseMs: 10_000 }), ReleaseOutcome.Released)
  const started = Date.now()
  while (messages.length === 0 && Date.now() - started < 2000) await sleep(5)
  t.same(messages, [`${waiter}\n${tag}`], 'the member, a newline and the tag (a tag may contain colons)')
  const holders = await scores(redis, store.key(tag, 'holders'))
  t.same(Object.keys(holders), [waiter], 'the waiter holds the slot')
})

t.test('grant passes purge lapsed tickets a bounded chunk at a time: 20,000 of them never fail a call', async t => {
  const { redis, prefix } = await setup(t, 'lapsed-many')
  const store = new RedisStore({ client: redis, prefix, wakeups: false })
  const tag = 'user:1'
  const tickets = store.key(tag, 'tickets')
  const queue = store.key(tag, 'queue')
  t.equal(acquired(await store.tryAcquire(args(tag, 'h'))), Acquired)
  await seedLapsedRedisTickets(redis, store, tag, Array.from({ length: 20_000 }, (_, i) => m(`lapsed${i}`)))
  t.same(await store.tryAcquire(args(tag, 'w', { maxWaiters: 1 })), { outcome: Full, ahead: 0 }, 'the live ticket queues behind them, first of the live ones')
  t.equal(await redis.zcard(queue), 20_001)

  t.equal(await store.release(ref(tag, 'h')), ReleaseOutcome.Released, 'a release (one grant pass) does not fail')
  const left = await redis.zcard(tickets)
  // Chunks of 1000 (a few per pass at most) plus the queue entries the pass looked at.
  t.ok(20_001 - left >= 1000, `one pass removed ${20_001 - left} lapsed tickets: at least a chunk`)
  t.ok(left > 1, 'but not all of them: a pass is bounded')
  t.equal(await redis.zcard(queue), left, 'from the queue too')

  let passes = 1
  let outcome = await store.poll(args(tag, 'w', { maxWaiters: 1 }))
  while (outcome !== Acquired && passes < 40) {
    passes++
    outcome = await store.poll(args(tag, 'w', { maxWaiters: 1 }))
  }
  t.equal(outcome, Acquired, `granted after ${passes} passes`)
  t.ok(passes <= 21, 'at most about 20,000 / 1050 passes')
  t.equal(await redis.exists(tickets, queue), 0, 'no ticket is left')
  t.equal(await store.release(ref(tag, 'w')), ReleaseOutcome.Released)
})

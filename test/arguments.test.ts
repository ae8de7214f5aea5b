/**
 * Argument and option validation, end to end: request.acquireSlot's (type, id, max, opts)
 * through a real app on a real Redis, and the plugin's registration options.
 *
 * Bad per-call arguments answer 500 SLOT_INVALID_ARGUMENT (a SlotError) before any store call:
 * no key is written (checked while the request is still in flight, after it, and with a
 * MONITOR connection that sees every command touching the test's prefix). Valid but odd ids
 * map to distinct subjects whose keys carry exactly one well-formed Redis Cluster hash tag.
 * Bad registration options reject `register()`/`ready()` with a TypeError naming the option.
 */
import t from 'tap'
import Fastify from 'fastify'
import fastifyRedis from '@fastify/redis'
import type { Redis } from 'ioredis'
import fastifySlots, { MemoryStore, RedisStore, SlotError, pingFrames } from '../lib'
import { parseMember } from '../lib/stores/store'
import { client, keysLeft, keysUnder, redisUrl, uniquePrefix } from './helpers/redis'
import { eventually, slotsApp } from './helpers/app'

type Slot = fastifySlots.Slot
type SlotStore = fastifySlots.SlotStore
type MemberRef = fastifySlots.MemberRef
type ReleaseArgs = fastifySlots.ReleaseArgs
type TryAcquireArgs = fastifySlots.TryAcquireArgs
type Options = fastifySlots.FastifySlotsOptions

const DAY_MS = 86_400_000
// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/

let url = ''
t.before(async () => { url = await redisUrl(t) })

/** Calls request.acquireSlot with arbitrary (untyped) arguments, keeping `this`. */
function callAcquire (request: { acquireSlot: unknown }, args: readonly unknown[]): unknown {
  return Reflect.apply(request.acquireSlot as (...a: unknown[]) => unknown, request, args)
}

/** Every command (but SCAN, which the test itself sends) naming a key under `prefix`, seen through MONITOR. */
async function watchPrefix (tt: { teardown: (fn: () => unknown) => void }, redis: Redis, prefix: string): Promise<string[][]> {
  const monitor = await redis.monitor()
  tt.teardown(() => monitor.disconnect())
  const seen: string[][] = []
  monitor.on('monitor', (_time: string, args: string[]) => {
    if (args[0]?.toLowerCase() !== 'scan' && args.some(a => a.includes(`${prefix}:`))) seen.push(args)
  })
  return seen
}

/** A custom SlotStore (a plain class, not a subclass of ours) that records every call. */
class RecordingStore implements SlotStore {
  readonly calls: Array<[string, unknown]> = []
  private readonly inner = new MemoryStore()

  async tryAcquire (args: TryAcquireArgs): Promise<fastifySlots.TryAcquireAnswer> {
    this.calls.push(['tryAcquire', { ...args }])
    return await this.inner.tryAcquire(args)
  }

  async poll (args: TryAcquireArgs): Promise<fastifySlots.AcquireOutcome> {
    this.calls.push(['poll', { ...args }])
    return await this.inner.poll(args)
  }

  async release (args: ReleaseArgs): Promise<fastifySlots.ReleaseOutcome> {
    this.calls.push(['release', { ...args }])
    return await this.inner.release(args)
  }

  async abandon (args: ReleaseArgs): Promise<void> {
    this.calls.push(['abandon', { ...args }])
    await this.inner.abandon(args)
  }

  async renew (holds: readonly MemberRef[], leaseMs: number): Promise<boolean[]> {
    this.calls.push(['renew', { holds: holds.length, leaseMs }])
    return await this.inner.renew(holds, leaseMs)
  }

  async refreshTickets (holds: readonly MemberRef[], ticketTtlMs: number): Promise<boolean[]> {
    this.calls.push(['refreshTickets', { holds: holds.length, ticketTtlMs }])
    return await this.inner.refreshTickets(holds, ticketTtlMs)
  }
}

interface BadCall {
  name: string
  args: unknown[]
  message: RegExp
}

const bigId = 'x'.repeat(10 * 1024)

const BAD_CALLS: BadCall[] = [
  // type
  { name: "type ''", args: ['', 1, 1], message: /type must be a non-empty string, got ""/ },
  { name: 'type a number', args: [42, 1, 1], message: /type must be a non-empty string, got 42/ },
  { name: 'type an object', args: [{}, 1, 1], message: /type must be a non-empty string, got an object/ },
  { name: 'type null', args: [null, 1, 1], message: /type must be a non-empty string, got null/ },
  { name: 'type undefined', args: [undefined, 1, 1], message: /type must be a non-empty string, got undefined/ },
  { name: 'type a String object', args: [Object('user'), 1, 1], message: /type must be a non-empty string, got an object/ },
  { name: "type 'a:b'", args: ['a:b', 1, 1], message: /type may contain only letters, digits, "_", "\." and "-", got "a:b"/ },
  { name: "type 'a{b}'", args: ['a{b}', 1, 1], message: /type may contain only .*got "a\{b\}"/ },
  { name: "type 'x*'", args: ['x*', 1, 1], message: /type may contain only .*got "x\*"/ },
  { name: 'type with a newline', args: ['new\nline', 1, 1], message: /type may contain only .*got "new\\nline"/ },
  { name: 'type with NUL', args: ['nul\0', 1, 1], message: /type may contain only .*got "nul\\u0000"/ },
  { name: 'type with a space', args: ['user ', 1, 1], message: /type may contain only/ },
  { name: 'type of 65 characters', args: ['a'.repeat(65), 1, 1], message: /type must be at most 64 characters, got 65/ },
  { name: 'type of 10 KB', args: [bigId, 1, 1], message: /type must be at most 64 characters, got 10240/ },
  { name: 'unicode type', args: ['ユーザー', 1, 1], message: /type may contain only .*got "ユーザー"/ },
  { name: 'type with a lone surrogate', args: ['\uD800', 1, 1], message: /type may contain only .*got "\\ud800"/ },
  // id
  { name: "id ''", args: ['user', '', 1], message: /id must be a non-empty string or an integer, got ""/ },
  { name: 'id null', args: ['user', null, 1], message: /id must be a non-empty string or an integer, got null/ },
  { name: 'id undefined', args: ['user', undefined, 1], message: /id must be a non-empty string or an integer, got undefined/ },
  { name: 'id {}', args: ['user', {}, 1], message: /id must be a non-empty string or an integer, got an object/ },
  { name: 'id []', args: ['user', [], 1], message: /id must be a non-empty string or an integer, got an array/ },
  { name: 'id true', args: ['user', true, 1], message: /id must be a non-empty string or an integer, got true/ },
  { name: 'id a bigint', args: ['user', 1n, 1], message: /id must be a non-empty string or an integer, got 1/ },
  { name: 'id a symbol', args: ['user', Symbol('id'), 1], message: /id must be a non-empty string or an integer, got symbol/ },
  { name: 'id a function', args: ['user', () => 1, 1], message: /id must be a non-empty string or an integer, got function/ },
  { name: 'id 1.5', args: ['user', 1.5, 1], message: /numeric id must be a safe integer, got 1\.5/ },
  { name: 'id NaN', args: ['user', NaN, 1], message: /numeric id must be a safe integer, got NaN/ },
  { name: 'id Infinity', args: ['user', Infinity, 1], message: /numeric id must be a safe integer, got Infinity/ },
  { name: 'id -Infinity', args: ['user', -Infinity, 1], message: /numeric id must be a safe integer, got -Infinity/ },
  { name: 'id 2**53', args: ['user', 2 ** 53, 1], message: /numeric id must be a safe integer, got 9007199254740992/ },
  { name: 'id with a newline', args: ['user', 'a\nb', 1], message: /id must not contain control characters/ },
  { name: 'id with NUL', args: ['user', 'a\0b', 1], message: /id must not contain control characters/ },
  { name: 'id with a tab', args: ['user', 'a\tb', 1], message: /id must not contain control characters/ },
  { name: 'id with DEL', args: ['user', 'a\u007fb', 1], message: /id must not contain control characters/ },
  { name: 'id with a C1 control (NEL)', args: ['user', 'a\u0085b', 1], message: /id must not contain control characters/ },
  { name: 'id of 257 characters', args: ['user', 'x'.repeat(257), 1], message: /id must be at most 256 characters, got 257/ },
  { name: 'id of 10 KB', args: ['user', bigId, 1], message: /id must be at most 256 characters, got 10240/ },
  { name: 'id a lone high surrogate', args: ['user', '\uD800', 1], message: /id must be well-formed unicode/ },
  { name: 'id with a lone low surrogate', args: ['user', 'a\uDC00b', 1], message: /id must be well-formed unicode/ },
  // max
  { name: 'max -1', args: ['user', 1, -1], message: /max must be a non-negative safe integer \(0 = unlimited\), got -1/ },
  { name: 'max 1.5', args: ['user', 1, 1.5], message: /max must be a non-negative safe integer .*got 1\.5/ },
  { name: 'max NaN', args: ['user', 1, NaN], message: /max must be a non-negative safe integer .*got NaN/ },
  { name: 'max Infinity', args: ['user', 1, Infinity], message: /max must be a non-negative safe integer .*got Infinity/ },
  { name: "max '5'", args: ['user', 1, '5'], message: /max must be a non-negative safe integer .*got "5"/ },
  { name: 'max 2**53', args: ['user', 1, 2 ** 53], message: /max must be a non-negative safe integer .*got 9007199254740992/ },
  { name: 'max null', args: ['user', 1, null], message: /max must be a non-negative safe integer .*got null/ },
  { name: 'max missing', args: ['user', 1], message: /max must be a non-negative safe integer .*got undefined/ },
  // opts
  { name: 'opts a string', args: ['user', 1, 1, 'fast'], message: /option "options" must be an object, got "fast"/ },
  { name: 'opts a number', args: ['user', 1, 1, 5], message: /option "options" must be an object, got 5/ },
  { name: 'opts null', args: ['user', 1, 1, null], message: /option "options" must be an object, got null/ },
  { name: 'opts an array', args: ['user', 1, 1, []], message: /option "options" must be an object, got an array/ },
  { name: 'opts true', args: ['user', 1, 1, true], message: /option "options" must be an object, got true/ },
  { name: 'opts unknown key maxWait', args: ['user', 1, 1, { maxWait: 10 }], message: /option "maxWait" is not an option/ },
  { name: 'opts plugin-only key leaseMs', args: ['user', 1, 1, { leaseMs: 1000 }], message: /option "leaseMs" is not an option/ },
  { name: 'opts.maxWaitMs -1', args: ['user', 1, 1, { maxWaitMs: -1 }], message: /option "maxWaitMs" must be an integer from 0 to 86400000, got -1/ },
  { name: 'opts.maxWaitMs 1.5', args: ['user', 1, 1, { maxWaitMs: 1.5 }], message: /option "maxWaitMs" must be an integer .*got 1\.5/ },
  { name: "opts.maxWaitMs '100'", args: ['user', 1, 1, { maxWaitMs: '100' }], message: /option "maxWaitMs" must be an integer .*got "100"/ },
  { name: 'opts.maxWaiters -1', args: ['user', 1, 1, { maxWaiters: -1 }], message: /option "maxWaiters" must be an integer from 0 to 1000000, got -1/ },
  { name: "opts.stream 'yes'", args: ['user', 1, 1, { stream: 'yes' }], message: /option "stream" must be a boolean, got "yes"/ },
  { name: 'opts.ping true', args: ['user', 1, 1, { ping: true }], message: /option "ping" must be an object, got true/ },
  { name: 'opts.ping.frame without a blank line', args: ['user', 1, 1, { ping: { frame: 'no blank line' } }], message: /option "ping\.frame" must be a string .*ending in a blank line/ },
  { name: 'opts.ping.intervalMs 0', args: ['user', 1, 1, { ping: { intervalMs: 0 } }], message: /option "ping\.intervalMs" must be an integer from 10 to 86400000, got 0/ },
  { name: 'opts.ping unknown key', args: ['user', 1, 1, { ping: { every: 5 } }], message: /option "ping\.every" is not an option/ },
  { name: 'opts.ping.frame a number', args: ['user', 1, 1, { ping: { frame: 5 } }], message: /option "ping\.frame" must be a string .*or a function returning one, got 5/ },
  { name: "opts.failFast 'yes'", args: ['user', 1, 1, { failFast: 'yes' }], message: /option "failFast" must be a boolean, got "yes"/ },
  { name: 'opts.priority -1', args: ['user', 1, 1, { priority: -1 }], message: /option "priority" must be an integer from 0 to 1000, got -1/ },
  { name: 'opts.priority 1001', args: ['user', 1, 1, { priority: 1001 }], message: /option "priority" must be an integer from 0 to 1000, got 1001/ },
  { name: "opts.priority '2'", args: ['user', 1, 1, { priority: '2' }], message: /option "priority" must be an integer .*got "2"/ },
  { name: 'opts.weight 0', args: ['user', 1, 3, { weight: 0 }], message: /option "weight" must be an integer from 1 to 1000, got 0/ },
  { name: 'opts.weight 1.5', args: ['user', 1, 3, { weight: 1.5 }], message: /option "weight" must be an integer .*got 1\.5/ },
  { name: 'opts.weight above max', args: ['user', 1, 3, { weight: 4 }], message: /option "weight" must be at most max \(3\), got 4/ },
  { name: 'opts plugin-only key priorityStepMs', args: ['user', 1, 1, { priorityStepMs: 5 }], message: /option "priorityStepMs" is not an option/ },
  { name: 'opts plugin-only key maxRetryAfterSeconds', args: ['user', 1, 1, { maxRetryAfterSeconds: 5 }], message: /option "maxRetryAfterSeconds" is not an option/ },
  // validation happens before the max-0 bypass, and in argument order
  { name: 'bad type with max 0', args: ['a:b', 1, 0], message: /type may contain only/ },
  { name: 'bad id with max 0', args: ['user', 'a\nb', 0], message: /id must not contain control characters/ },
  { name: 'bad opts with max 0', args: ['user', 1, 0, { stream: 1 }], message: /option "stream" must be a boolean/ },
  { name: 'everything wrong: the type is reported first', args: ['', null, -1, 'x'], message: /type must be a non-empty string/ },
  { name: 'bad id and max: the id is reported first', args: ['user', null, -1], message: /id must be a non-empty string/ },
  { name: 'bad max and opts: max is reported first', args: ['user', 1, -1, 'x'], message: /max must be/ }
]

t.test('bad acquireSlot arguments: 500 SLOT_INVALID_ARGUMENT, a SlotError, and no key written', async t => {
  t.ok(BAD_CALLS.length >= 30, `${BAD_CALLS.length} rows`)
  const redis = client(t, url)
  const prefix = uniquePrefix('args-bad')
  const seen = await watchPrefix(t, redis, prefix)
  // maxWaitMs 0: a bad call wrongly accepted on a full subject fails at once instead of waiting.
  const app = await slotsApp(t, { redis, prefix, maxWaitMs: 0 })

  let handlerError: unknown
  app.addHook('onError', async (_request, _reply, error) => { handlerError = error })
  // The error goes to Fastify's default error handler untouched.
  app.get('/bad/:i', async (request) => {
    await callAcquire(request, BAD_CALLS[Number((request.params as { i: string }).i)].args)
    return { acquired: true }
  })
  // The same call, caught in the route: what was thrown, and what Redis holds at that moment.
  app.get('/caught/:i', async (request) => {
    let returned: unknown
    try {
      returned = callAcquire(request, BAD_CALLS[Number((request.params as { i: string }).i)].args)
    } catch (err) {
      return { threwSynchronously: true, message: (err as Error).message }
    }
    const isPromise = returned instanceof Promise
    try {
      await returned
      return { isPromise, settled: 'resolved' }
    } catch (err) {
      const e = err as SlotError
      return {
        isPromise,
        settled: 'rejected',
        isSlotError: err instanceof SlotError,
        isError: err instanceof Error,
        name: e.name,
        code: e.code,
        statusCode: e.statusCode,
        message: e.message,
        streamed: e.streamed,
        headers: e.headers ?? null,
        keysWhileInFlight: await keysUnder(redis, prefix)
      }
    }
  })

  app.get('/control', async (request) => {
    const slot = await request.acquireSlot('control', 1, 1)
    return { bypassed: slot.bypassed }
  })

  for (const [i, row] of BAD_CALLS.entries()) {
    await t.test(row.name, async t => {
      handlerError = undefined
      const res = await app.inject(`/bad/${i}`)
      t.equal(res.statusCode, 500)
      t.match(res.headers['content-type'], /^application\/json/)
      t.notOk(res.headers['retry-after'], 'no Retry-After on an argument error')
      const body = res.json()
      t.equal(body.code, 'SLOT_INVALID_ARGUMENT')
      t.equal(body.statusCode, 500)
      t.equal(body.error, 'Internal Server Error')
      t.type(body.message, 'string')
      t.match(body.message, row.message)
      t.ok(handlerError instanceof SlotError, 'the error reaching the error handler is a SlotError')

      const caught = (await app.inject(`/caught/${i}`)).json()
      t.notOk(caught.threwSynchronously, 'acquireSlot never throws synchronously')
      t.equal(caught.isPromise, true, 'acquireSlot returns a promise')
      t.equal(caught.settled, 'rejected')
      t.equal(caught.isSlotError, true, 'instanceof SlotError')
      t.equal(caught.isError, true, 'instanceof Error')
      t.equal(caught.name, 'SlotError')
      t.equal(caught.code, 'SLOT_INVALID_ARGUMENT')
      t.equal(caught.statusCode, 500)
      t.equal(caught.streamed, false)
      t.equal(caught.headers, null)
      t.equal(caught.message, body.message, 'the response carries the error message')
      t.match(caught.message, /^acquireSlot: /)
      t.ok(caught.message.length <= 300, 'the message never echoes a huge argument')
      t.notOk(CONTROL_CHARS.test(caught.message), 'the message has no raw control characters')
      t.same(caught.keysWhileInFlight, [], 'no key while the request is in flight')
      t.same(await keysLeft(redis, prefix), [], 'no key afterwards')
    })
  }

  await t.test('MONITOR saw no command on the prefix before a valid control acquire', async t => {
    const res = await app.inject('/control')
    t.equal(res.statusCode, 200)
    t.same(res.json(), { bypassed: false })
    // MONITOR streams in execution order: once the control's commands arrived, any earlier one had.
    await eventually(() => seen.some(args => args.some(a => a.includes(`${prefix}:{control:1}`))))
    // The subscriber's one subscription, at registration, to this instance's grant channel is
    // not about any subject.
    const others = seen.filter(args => !args.some(a => a.includes(`${prefix}:{control:1}`)) &&
      !(args[0]?.toLowerCase() === 'ssubscribe' && args[1].startsWith(`${prefix}:grants:`) && args.length === 2))
    t.same(others, [], 'no command touched any other key under the prefix')
  })
})

t.test('bad arguments never reach the store: a recording custom store sees no call', async t => {
  const store = new RecordingStore()
  const app = await slotsApp(t, { store, maxWaitMs: 0 })
  app.get('/bad/:i', async (request) => {
    await callAcquire(request, BAD_CALLS[Number((request.params as { i: string }).i)].args)
    return { acquired: true }
  })
  for (const i of BAD_CALLS.keys()) {
    const res = await app.inject(`/bad/${i}`)
    t.equal(res.statusCode, 500, BAD_CALLS[i].name)
    t.equal(res.json().code, 'SLOT_INVALID_ARGUMENT', BAD_CALLS[i].name)
  }
  t.same(store.calls, [], 'no store method was called')
})

t.test('a rejected bad call leaves the request able to take a valid slot', async t => {
  const redis = client(t, url)
  const prefix = uniquePrefix('args-recover')
  const app = await slotsApp(t, { redis, prefix })
  app.get('/', async (request) => {
    const bad = await request.acquireSlot('user', 'a\nb', 1).then(() => null, (err: unknown) => err)
    const slot = await request.acquireSlot('user', 'a b', 1, { maxWaitMs: 0 })
    return { badCode: (bad as SlotError).code, bypassed: slot.bypassed, keys: await keysUnder(redis, prefix) }
  })
  const res = await app.inject('/')
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.equal(body.badCode, 'SLOT_INVALID_ARGUMENT')
  t.equal(body.bypassed, false)
  t.equal(body.keys.length, 1, 'the valid slot is held in Redis')
  await eventually(async () => (await keysUnder(redis, prefix)).length === 0)
})

t.test('acquireSlot in an onRequest hook added before the plugin: SLOT_INVALID_ARGUMENT naming the fix', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  let caught: unknown
  app.addHook('onRequest', async (request) => {
    caught = await request.acquireSlot('user', 1, 1).then(() => null, (err: unknown) => err)
  })
  await app.register(fastifySlots)
  app.get('/', async () => ({ ok: true }))
  const res = await app.inject('/')
  t.equal(res.statusCode, 200)
  t.ok(caught instanceof SlotError)
  t.equal((caught as SlotError).code, 'SLOT_INVALID_ARGUMENT')
  t.match((caught as SlotError).message, /register fastify-slots before any onRequest hook/)
})

/** Valid ids that look like key syntax, encodings, globs, unicode... each its own subject. */
const TRICKY: Array<[string, string | number]> = [
  ['user', '{'], ['user', '}'], ['user', '{}'], ['user', '}{'], ['user', 'a{b}c'], ['user', '{user:1}'],
  ['user', 'x}:holders'], ['user', '}:{'], ['user', '{{'], ['user', '}}'],
  ['user', ':'], ['user', 'a'], ['user', 'a:'], ['user', ':a'], ['user', 'a:b'], ['user', 'a::b'],
  ['user', 'a%3Ab'], ['user', 'a%3ab'], ['user', 'a%253Ab'], ['user', '%'], ['user', '%%'], ['user', '%7B'], ['user', '%7D'],
  ['user', '*'], ['user', 'a*'], ['user', '?'], ['user', '[a-z]'], ['user', '\\'], ['user', '"'], ['user', "'"],
  ['user', ' '], ['user', 'a b'], ['user', 'a+b'], ['user', 'a%20b'], ['user', '\u00a0'], ['user', '\u2028'], ['user', '\u200b'],
  ['user', 'é'], ['user', 'e\u0301'], ['user', '用户'], ['user', '🙂'], ['user', '👩‍👩‍👧'],
  ['user', '🙂'.repeat(128)], ['user', 'x'.repeat(256)],
  ['user', 1], ['user', '01'], ['user', ' 1'], ['user', -1], ['user', '1e3'], ['user', 1000], ['user', Number.MAX_SAFE_INTEGER],
  ['user', 'user:1'], ['user', 'v2:a'], ['user.v2', 'a'], ['user-v2', 'a'], ['u', 'ser:a'], ['User', 'a'], ['a'.repeat(64), 'a']
]

t.test('valid but odd ids: distinct subjects, each key one well-formed hash tag', async t => {
  const redis = client(t, url)
  const prefix = uniquePrefix('args-tricky')
  const app = await slotsApp(t, { redis, prefix })
  app.get('/', async (request) => {
    const results = []
    let before = await keysUnder(redis, prefix)
    for (const [type, id] of TRICKY) {
      // max 1 and no waiting: an id sharing another's subject would fail at once with 429.
      const slot = await request.acquireSlot(type, id, 1, { maxWaitMs: 0 })
      const after = await keysUnder(redis, prefix)
      results.push({ type, id: String(id), slotType: slot.type, slotId: slot.id, bypassed: slot.bypassed, newKeys: after.filter(k => !before.includes(k)) })
      before = after
    }
    return { results, held: before }
  })
  const res = await app.inject('/')
  t.equal(res.statusCode, 200, res.statusCode === 200 ? 'all acquired' : res.body)
  const { results, held } = res.json() as { held: string[], results: Array<{ type: string, id: string, slotType: string, slotId: string, bypassed: boolean, newKeys: string[] }> }
  t.equal(results.length, TRICKY.length)
  t.equal(held.length, TRICKY.length, 'one key per subject while all are held')
  t.equal(new Set(held).size, held.length, 'all keys distinct')
  const tags = new Map<string, string>()
  for (const r of results) {
    // ASCII-only labels: a raw U+2028 in a test name breaks the TAP stream.
    const label = JSON.stringify([r.type, r.id]).replace(/[^\x20-\x7e]/g, c => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
    t.equal(r.slotType, r.type, `${label} slot.type`)
    t.equal(r.slotId, r.id, `${label} slot.id is the id's string form`)
    t.equal(r.bypassed, false, `${label} really held`)
    t.equal(r.newKeys.length, 1, `${label} wrote exactly one new key`)
    const key = r.newKeys[0] ?? ''
    t.equal([...key].filter(c => c === '{').length, 1, `${label} one '{' in ${key}`)
    t.equal([...key].filter(c => c === '}').length, 1, `${label} one '}' in ${key}`)
    const m = /^(.*?):\{([^{}]+)\}:holders$/.exec(key)
    t.ok(m, `${label} key is <prefix>:{<tag>}:holders`)
    if (m === null) continue
    t.equal(m[1], prefix)
    const tag = m[2]
    t.ok(tag.startsWith(`${r.type}:`), `${label} tag starts with the type`)
    t.equal(tag.split(':').length, 2, `${label} the tag has exactly one unescaped ':'`)
    t.notOk(tags.has(tag), `${label} tag not shared with ${tags.get(tag) ?? 'any other id'}`)
    tags.set(tag, label)
  }
  await eventually(async () => (await keysUnder(redis, prefix)).length === 0)
  t.pass('every slot released when the request ended')
})

t.test("look-alike ids 'a:b', 'a%3Ab', 'a' + ':' + 'b' built differently never share keys, across requests too", async t => {
  const redis = client(t, url)
  const prefix = uniquePrefix('args-lookalike')
  const app = await slotsApp(t, { redis, prefix })
  let open: () => void = () => {}
  const gate = new Promise<void>(resolve => { open = resolve })
  app.get('/hold', async (request) => {
    await request.acquireSlot('user', 'a:b', 1)
    await gate
    return { ok: true }
  })
  app.get('/try', async (request) => {
    const id = (request.query as { id: string }).id
    const slot = await request.acquireSlot('user', id, 1, { maxWaitMs: 0 })
    return { id: slot.id, keys: await keysUnder(redis, prefix) }
  })
  const holding = app.inject('/hold')
  await eventually(async () => (await keysUnder(redis, prefix)).length === 1)
  for (const id of ['a%3Ab', 'a%3ab', 'a', 'b', 'a:', ':b', 'a::b', 'a%253Ab', '{a:b}']) {
    const res = await app.inject({ url: '/try', query: { id } })
    t.equal(res.statusCode, 200, `${JSON.stringify(id)} is not the held 'a:b'`)
    t.equal(res.json().id, id)
    t.equal(res.json().keys.length, 2, `${JSON.stringify(id)} has its own key`)
  }
  const same = await app.inject({ url: '/try', query: { id: 'a' + ':' + 'b' } })
  t.equal(same.statusCode, 429, "'a' + ':' + 'b' is 'a:b': the held subject")
  t.equal(same.json().code, 'SLOT_WAIT_TIMEOUT')
  open()
  t.equal((await holding).statusCode, 200)
  await eventually(async () => (await keysUnder(redis, prefix)).length === 0)
})

t.test('a subject\'s holders, waiters and queue keys share one hash tag', async t => {
  const redis = client(t, url)
  const prefix = uniquePrefix('args-tag')
  const app = await slotsApp(t, { redis, prefix })
  app.get('/', async (request) => {
    const first = await request.acquireSlot('user', '{a}:b%', 1)
    const second = request.acquireSlot('user', '{a}:b%', 1, { maxWaitMs: 5000 })
    await eventually(async () => (await keysUnder(redis, prefix)).length === 3)
    const keys = await keysUnder(redis, prefix)
    await first.release()
    const slot = await second
    return { keys, secondBypassed: slot.bypassed }
  })
  const res = await app.inject('/')
  t.equal(res.statusCode, 200, res.body)
  const { keys, secondBypassed } = res.json() as { keys: string[], secondBypassed: boolean }
  t.equal(secondBypassed, false)
  t.equal(keys.length, 3)
  const tagOf = (key: string): string => key.slice(key.indexOf('{'), key.indexOf('}') + 1)
  t.same(keys.map(k => k.slice(k.lastIndexOf(':') + 1)).sort(), ['holders', 'queue', 'tickets'], keys.join(' '))
  t.equal(new Set(keys.map(tagOf)).size, 1, 'same hash tag, so the same Cluster slot')
  for (const key of keys) {
    t.equal(key.split('{').length - 1, 1, `one '{' in ${key}`)
    t.equal(key.split('}').length - 1, 1, `one '}' in ${key}`)
  }
  await eventually(async () => (await keysUnder(redis, prefix)).length === 0)
})

t.test('numeric id 42 and string "42" are the SAME subject (ids are compared by their string form)', async t => {
  const redis = client(t, url)
  const prefix = uniquePrefix('args-42')
  const app = await slotsApp(t, { redis, prefix })
  let open: () => void = () => {}
  const gate = new Promise<void>(resolve => { open = resolve })
  app.get('/hold', async (request) => {
    await request.acquireSlot('user', 42, 1)
    await gate
    return { ok: true }
  })
  app.get('/string', async (request) => {
    await request.acquireSlot('user', '42', 1, { maxWaitMs: 0 })
    return { ok: true }
  })
  app.get('/', async (request) => {
    const numeric = await request.acquireSlot('user', 42, 1)
    const sameErr = await request.acquireSlot('user', '42', 1, { maxWaitMs: 0 }).then(() => null, (err: unknown) => err as SlotError)
    const keysWhileHeld = await keysUnder(redis, prefix)
    // Only the exact string form is the same: these are all other subjects.
    const others = []
    for (const id of ['042', ' 42', '42.0', '+42', 420, -42]) others.push((await request.acquireSlot('user', id, 1, { maxWaitMs: 0 })).id)
    // -0, 0 and '0' are one subject too.
    await request.acquireSlot('user', 0, 1)
    const zeroErrs = []
    for (const id of [-0, '0']) zeroErrs.push(await request.acquireSlot('user', id, 1, { maxWaitMs: 0 }).then(() => null, (err: unknown) => (err as SlotError).code))
    return {
      numericId: numeric.id,
      sameErr: sameErr === null ? null : { isSlotError: sameErr instanceof SlotError, code: sameErr.code, statusCode: sameErr.statusCode, slotType: sameErr.slotType, slotId: sameErr.slotId, retryAfter: sameErr.headers?.['retry-after'] },
      keysWhileHeld,
      others,
      zeroErrs
    }
  })
  const res = await app.inject('/')
  t.equal(res.statusCode, 200, res.body)
  const body = res.json()
  t.equal(body.numericId, '42', 'slot.id of a numeric id is its string form')
  t.same(body.sameErr, { isSlotError: true, code: 'SLOT_WAIT_TIMEOUT', statusCode: 429, slotType: 'user', slotId: '42', retryAfter: '2' }, "'42' is blocked by 42's slot")
  t.same(body.keysWhileHeld, [`${prefix}:{user:42}:holders`], 'one key for both')
  t.same(body.others, ['042', ' 42', '42.0', '+42', '420', '-42'])
  t.same(body.zeroErrs, ['SLOT_WAIT_TIMEOUT', 'SLOT_WAIT_TIMEOUT'])

  // Across requests too: a request holding 42 makes another asking for '42' answer 429.
  await eventually(async () => (await keysUnder(redis, prefix)).length === 0)
  const holding = app.inject('/hold')
  await eventually(async () => (await keysUnder(redis, prefix)).length === 1)
  const blocked = await app.inject('/string')
  t.equal(blocked.statusCode, 429)
  t.equal(blocked.json().code, 'SLOT_WAIT_TIMEOUT')
  t.equal(blocked.headers['retry-after'], '2')
  open()
  t.equal((await holding).statusCode, 200)
  await eventually(async () => (await keysUnder(redis, prefix)).length === 0)
  t.equal((await app.inject('/string')).statusCode, 200, 'free again once 42 is released')
})

t.test('max 0 = unlimited: bypassed slots, nothing written, even on a full subject', async t => {
  const redis = client(t, url)
  const prefix = uniquePrefix('args-max0')
  const seen = await watchPrefix(t, redis, prefix)
  const app = await slotsApp(t, { redis, prefix })
  app.get('/unlimited', async (request) => {
    const slots: Slot[] = []
    for (let i = 0; i < 5; i++) slots.push(await request.acquireSlot('user', 1, 0))
    slots.push(await request.acquireSlot('user', 'x', 0, { maxWaitMs: 0, maxWaiters: 0 }))
    const keys = await keysUnder(redis, prefix)
    const released = await Promise.all(slots.map(s => s.release()))
    const again = await slots[0].release()
    return {
      slots: slots.map(s => ({ type: s.type, id: s.id, bypassed: s.bypassed, waitedMs: s.waitedMs })),
      keys,
      released,
      again: again === undefined
    }
  })
  app.get('/full', async (request) => {
    const held = await request.acquireSlot('user', 2, 1)
    const unlimited = await request.acquireSlot('user', 2, 0)
    return { held: held.bypassed, unlimited: unlimited.bypassed, keys: await keysUnder(redis, prefix) }
  })
  app.get('/max-safe', async (request) => {
    const slot = await request.acquireSlot('user', 3, Number.MAX_SAFE_INTEGER)
    return { bypassed: slot.bypassed, keys: await keysUnder(redis, prefix) }
  })

  const res = await app.inject('/unlimited')
  t.equal(res.statusCode, 200, res.body)
  const body = res.json()
  t.equal(body.slots.length, 6)
  for (const s of body.slots) {
    t.equal(s.bypassed, true)
    t.equal(s.type, 'user')
    t.type(s.waitedMs, 'number')
    t.ok(s.waitedMs >= 0)
  }
  t.same(body.slots.map((s: { id: string }) => s.id), ['1', '1', '1', '1', '1', 'x'])
  t.same(body.keys, [], 'no key while the bypassed slots are held')
  t.same(body.released, Array(6).fill(null), 'every release() resolved (to undefined)')
  t.equal(body.again, true, 'release() is idempotent')
  t.same(seen, [], 'MONITOR: no command touched the prefix')

  const full = await app.inject('/full')
  t.equal(full.statusCode, 200, full.body)
  t.same(full.json(), { held: false, unlimited: true, keys: [`${prefix}:{user:2}:holders`] }, 'max 0 passes a subject whose max-1 slot is taken')

  const safe = await app.inject('/max-safe')
  t.equal(safe.statusCode, 200, safe.body)
  t.equal(safe.json().bypassed, false, 'Number.MAX_SAFE_INTEGER is a real limit, not unlimited')
  t.same(safe.json().keys.filter((k: string) => k.includes('{user:3}')), [`${prefix}:{user:3}:holders`])
  await eventually(async () => (await keysUnder(redis, prefix)).length === 0)
})

interface BadOption {
  name: string
  options: Record<string, unknown>
  /** The option the message must name, in double quotes. */
  option: string
}

const BAD_OPTIONS: BadOption[] = [
  { name: "store 'mongo'", options: { store: 'mongo' }, option: 'store' },
  { name: 'store {} (not a SlotStore)', options: { store: {} }, option: 'store' },
  { name: 'store missing poll, abandon, renew and refreshTickets', options: { store: { tryAcquire: async () => 1, release: async () => 1 } }, option: 'store' },
  {
    name: 'store missing poll and abandon (the old interface, with leaveQueue)',
    options: { store: { tryAcquire: async () => 1, release: async () => 1, leaveQueue: async () => {}, renew: async () => [], refreshTickets: async () => [] } },
    option: 'store'
  },
  { name: 'store null', options: { store: null }, option: 'store' },
  { name: 'store true', options: { store: true }, option: 'store' },
  { name: "redis 'x'", options: { redis: 'x' }, option: 'redis' },
  { name: 'redis {}', options: { redis: {} }, option: 'redis' },
  { name: "prefix ''", options: { prefix: '' }, option: 'prefix' },
  { name: "prefix 'a{b}'", options: { prefix: 'a{b}' }, option: 'prefix' },
  { name: 'prefix 5', options: { prefix: 5 }, option: 'prefix' },
  { name: "prefix 'a b'", options: { prefix: 'a b' }, option: 'prefix' },
  { name: "prefix 'a*'", options: { prefix: 'a*' }, option: 'prefix' },
  { name: 'prefix of 129 characters', options: { prefix: 'p'.repeat(129) }, option: 'prefix' },
  { name: 'leaseMs 0', options: { leaseMs: 0 }, option: 'leaseMs' },
  { name: 'leaseMs 99', options: { leaseMs: 99 }, option: 'leaseMs' },
  { name: 'leaseMs 1.5', options: { leaseMs: 1.5 }, option: 'leaseMs' },
  { name: "leaseMs '1000'", options: { leaseMs: '1000' }, option: 'leaseMs' },
  { name: 'leaseMs NaN', options: { leaseMs: NaN }, option: 'leaseMs' },
  { name: 'leaseMs over a day', options: { leaseMs: DAY_MS + 1 }, option: 'leaseMs' },
  { name: 'maxWaitMs -1', options: { maxWaitMs: -1 }, option: 'maxWaitMs' },
  { name: 'maxWaitMs Infinity', options: { maxWaitMs: Infinity }, option: 'maxWaitMs' },
  { name: 'maxWaiters -1', options: { maxWaiters: -1 }, option: 'maxWaiters' },
  { name: 'maxWaiters 1.5', options: { maxWaiters: 1.5 }, option: 'maxWaiters' },
  { name: 'backoff {initialMs: 0}', options: { backoff: { initialMs: 0 } }, option: 'backoff.initialMs' },
  { name: 'backoff {jitter: 1}', options: { backoff: { jitter: 1 } }, option: 'backoff.jitter' },
  { name: 'backoff {jitter: -0.1}', options: { backoff: { jitter: -0.1 } }, option: 'backoff.jitter' },
  { name: 'backoff maxMs smaller than initialMs', options: { backoff: { initialMs: 500, maxMs: 100 } }, option: 'backoff.maxMs' },
  { name: 'backoff {multiplier: 0.5}', options: { backoff: { multiplier: 0.5 } }, option: 'backoff.multiplier' },
  { name: 'backoff unknown key', options: { backoff: { factor: 2 } }, option: 'backoff.factor' },
  { name: "backoff 'fast'", options: { backoff: 'fast' }, option: 'backoff' },
  { name: 'ping {intervalMs: 0}', options: { ping: { intervalMs: 0 } }, option: 'ping.intervalMs' },
  { name: "ping {frame: 'x'}", options: { ping: { frame: 'x' } }, option: 'ping.frame' },
  { name: 'ping frame over 4096 characters', options: { ping: { frame: `: ${'x'.repeat(4096)}\n\n` } }, option: 'ping.frame' },
  { name: 'ping true', options: { ping: true }, option: 'ping' },
  { name: 'ping unknown key', options: { ping: { every: 10 } }, option: 'ping.every' },
  { name: 'ping {frame: null}', options: { ping: { frame: null } }, option: 'ping.frame' },
  { name: 'failFast 1', options: { failFast: 1 }, option: 'failFast' },
  { name: 'maxRetryAfterSeconds 0', options: { maxRetryAfterSeconds: 0 }, option: 'maxRetryAfterSeconds' },
  { name: 'maxRetryAfterSeconds 1.5', options: { maxRetryAfterSeconds: 1.5 }, option: 'maxRetryAfterSeconds' },
  { name: 'priorityStepMs 0', options: { priorityStepMs: 0 }, option: 'priorityStepMs' },
  { name: 'priorityStepMs over a day', options: { priorityStepMs: DAY_MS + 1 }, option: 'priorityStepMs' },
  { name: "onStoreError 'maybe'", options: { onStoreError: 'maybe' }, option: 'onStoreError' },
  { name: 'storeTimeoutMs 0', options: { storeTimeoutMs: 0 }, option: 'storeTimeoutMs' },
  { name: 'storeTimeoutMs over a minute', options: { storeTimeoutMs: 60_001 }, option: 'storeTimeoutMs' },
  { name: "streamErrorFrame 'x'", options: { streamErrorFrame: 'x' }, option: 'streamErrorFrame' },
  { name: "unknown option 'maxWait'", options: { maxWait: 1000 }, option: 'maxWait' },
  { name: "unknown option 'lease'", options: { lease: 1000 }, option: 'lease' }
]

t.test('bad registration options: register() and ready() reject with a TypeError naming the option', async t => {
  t.ok(BAD_OPTIONS.length >= 15, `${BAD_OPTIONS.length} rows`)
  for (const row of BAD_OPTIONS) {
    await t.test(row.name, async t => {
      const app = Fastify()
      const registered = await app.register(fastifySlots, row.options as Options).then(() => null, (err: unknown) => err)
      t.ok(registered instanceof TypeError, 'register() rejects with a TypeError')
      t.match((registered as Error).message, /^fastify-slots: option /)
      t.ok((registered as Error).message.includes(`"${row.option}"`), `the message names "${row.option}": ${(registered as Error).message}`)
      t.notOk(CONTROL_CHARS.test((registered as Error).message), 'no raw control characters')
      const ready = await app.ready().then(() => null, (err: unknown) => err)
      t.equal(ready, registered, 'ready() rejects with the same error')
      await app.close()
    })
  }

  await t.test('ready() alone (register not awaited) rejects too', async t => {
    const app = Fastify()
    app.register(fastifySlots, { leaseMs: 99 })
    const err = await app.ready().then(() => null, (e: unknown) => e)
    t.ok(err instanceof TypeError)
    t.match((err as Error).message, /"leaseMs"/)
    await app.close()
  })
})

t.test("store 'redis' without a client rejects with a clear message", async t => {
  const app = Fastify()
  const err = await app.register(fastifySlots, { store: 'redis' }).then(() => null, (e: unknown) => e)
  t.ok(err instanceof TypeError)
  t.match((err as Error).message, /"store" is 'redis' but no client was found/)
  t.match((err as Error).message, /"redis" option/)
  t.match((err as Error).message, /@fastify\/redis/)
  await app.close()
})

t.test('@fastify/redis registered under a namespace only (fastify.redis is not a client): a clear error naming the option', async t => {
  const redis = client(t, url)
  const app = Fastify()
  await app.register(fastifyRedis, { client: redis, namespace: 'cache' })
  const err = await app.register(fastifySlots, { prefix: uniquePrefix('args-ns') }).then(() => null, (e: unknown) => e)
  t.ok(err instanceof TypeError, 'rejects with a TypeError')
  // Expected: like store 'redis' with no client, a message naming "redis" / @fastify/redis,
  // not an internal "client.defineCommand is not a function".
  t.match((err as Error | null)?.message, /"redis"|@fastify\/redis/, 'the message says what to do')
  t.notMatch((err as Error | null)?.message, /defineCommand is not a function/)
  await app.close()
})

interface GoodOption {
  name: string
  options: (redis: Redis, prefix: string) => Options
  /** Where the slot lives: Redis keys under the prefix, or not in Redis. */
  backend: 'redis' | 'elsewhere'
}

const plainStore = (): SlotStore => {
  const inner = new MemoryStore()
  return {
    tryAcquire: args => inner.tryAcquire(args),
    poll: args => inner.poll(args),
    release: args => inner.release(args),
    abandon: args => inner.abandon(args),
    renew: (holds, leaseMs) => inner.renew(holds, leaseMs),
    refreshTickets: (holds, ticketTtlMs) => inner.refreshTickets(holds, ticketTtlMs)
  }
}

const GOOD_OPTIONS: GoodOption[] = [
  { name: 'no options (memory store)', options: () => ({}), backend: 'elsewhere' },
  { name: "store 'memory' even with a redis client", options: (redis, prefix) => ({ store: 'memory', redis, prefix }), backend: 'elsewhere' },
  { name: 'redis client (redis store by default)', options: (redis, prefix) => ({ redis, prefix }), backend: 'redis' },
  { name: "store 'redis' with a client", options: (redis, prefix) => ({ store: 'redis', redis, prefix }), backend: 'redis' },
  { name: 'a MemoryStore instance', options: () => ({ store: new MemoryStore() }), backend: 'elsewhere' },
  { name: 'a RedisStore instance', options: (redis, prefix) => ({ store: new RedisStore({ client: redis, prefix }) }), backend: 'redis' },
  { name: 'a custom class implementing SlotStore', options: () => ({ store: new RecordingStore() }), backend: 'elsewhere' },
  { name: 'a plain object implementing SlotStore', options: () => ({ store: plainStore() }), backend: 'elsewhere' },
  { name: 'a custom store wins over a redis client', options: (redis, prefix) => ({ store: plainStore(), redis, prefix }), backend: 'elsewhere' },
  { name: 'leaseMs 100 (minimum)', options: (redis, prefix) => ({ redis, prefix, leaseMs: 100 }), backend: 'redis' },
  { name: 'leaseMs one day (maximum)', options: (redis, prefix) => ({ redis, prefix, leaseMs: DAY_MS }), backend: 'redis' },
  { name: 'maxWaitMs 0 and maxWaiters 0', options: (redis, prefix) => ({ redis, prefix, maxWaitMs: 0, maxWaiters: 0 }), backend: 'redis' },
  { name: 'backoff at its tightest', options: (redis, prefix) => ({ redis, prefix, backoff: { initialMs: 1, maxMs: 1, multiplier: 1, jitter: 0 } }), backend: 'redis' },
  { name: 'backoff {} and ping {}', options: (redis, prefix) => ({ redis, prefix, backoff: {}, ping: {} }), backend: 'redis' },
  { name: 'ping false', options: (redis, prefix) => ({ redis, prefix, ping: false }), backend: 'redis' },
  { name: 'ping with the anthropic frame every 10 ms', options: (redis, prefix) => ({ redis, prefix, ping: { frame: pingFrames.anthropic, intervalMs: 10 } }), backend: 'redis' },
  { name: 'prefix with every allowed kind of character', options: (redis, prefix) => ({ redis, prefix: `${prefix}:a.b-c_D9` }), backend: 'redis' },
  { name: "onStoreError 'fail-open', storeTimeoutMs 60000", options: (redis, prefix) => ({ redis, prefix, onStoreError: 'fail-open', storeTimeoutMs: 60_000 }), backend: 'redis' },
  { name: 'a streamErrorFrame function', options: (redis, prefix) => ({ redis, prefix, streamErrorFrame: (err) => `event: error\ndata: ${err.code}\n\n` }), backend: 'redis' },
  { name: 'options explicitly undefined', options: (redis, prefix) => ({ redis, prefix, leaseMs: undefined, ping: undefined }), backend: 'redis' }
]

t.test('good registration options register and enforce limits', async t => {
  const redis = client(t, url)
  for (const row of GOOD_OPTIONS) {
    await t.test(row.name, async t => {
      const prefix = uniquePrefix('args-good')
      const app = Fastify()
      t.teardown(() => app.close())
      await app.register(fastifySlots, row.options(redis, prefix))
      app.get('/', async (request) => {
        const slot = await request.acquireSlot('user', 7, 1)
        const second = await request.acquireSlot('user', '7', 1, { maxWaitMs: 0 }).then(() => null, (err: unknown) => (err as SlotError).code)
        return { bypassed: slot.bypassed, second, keys: await keysUnder(redis, prefix) }
      })
      await app.ready()
      const res = await app.inject('/')
      t.equal(res.statusCode, 200, res.body)
      const body = res.json()
      t.equal(body.bypassed, false, 'a real slot')
      t.equal(body.second, 'SLOT_WAIT_TIMEOUT', 'the limit is enforced')
      if (row.backend === 'redis') {
        t.equal(body.keys.length, 1, 'the slot is in Redis under the prefix')
        await eventually(async () => (await keysUnder(redis, prefix)).length === 0)
      } else {
        t.same(body.keys, [], 'nothing in Redis under the prefix')
      }
    })
  }
})

t.test('a custom store receives the subject tag and the effective settings', async t => {
  const store = new RecordingStore()
  const app = await slotsApp(t, { store, leaseMs: 5000 })
  app.get('/', async (request) => {
    const slot = await request.acquireSlot('user', 'a:b', 2, { maxWaiters: 3 })
    return { id: slot.id }
  })
  const res = await app.inject('/')
  t.equal(res.statusCode, 200, res.body)
  t.equal(res.json().id, 'a:b')
  await eventually(() => store.calls.some(([method]) => method === 'release'))
  const [[method, args], ...rest] = store.calls as Array<[string, TryAcquireArgs]>
  t.equal(method, 'tryAcquire')
  t.match(args, { tag: 'user:a%3Ab', max: 2, leaseMs: 5000, maxWaiters: 3 })
  t.type(args.member, 'string')
  t.ok(args.ticketTtlMs > 0, 'a waiting ticket may be taken (maxWaitMs > 0)')
  // The member name carries what a grant to it needs: its max and its claim, the rest of the
  // lease after a ticket's lifetime (min(2 * (backoff.maxMs 2000 + storeTimeoutMs 1000), leaseMs / 2)).
  t.match(parseMember(args.member), { max: 2, claimMs: 5000 - args.ticketTtlMs }, 'the member carries its max and claim')
  t.ok(parseMember(args.member).instance.length > 0, 'and its instance')
  // The lease of a slot the release grants to a waiter of this process; a release well inside
  // the lease does not ask the store to check for a lapse.
  t.same(rest, [['release', { tag: 'user:a%3Ab', member: args.member, leaseMs: 5000, mayHaveLapsed: false }]], 'released with the same member, once')
})

t.test('@fastify/redis decorated: the redis store is the default', async t => {
  const redis = client(t, url)
  const prefix = uniquePrefix('args-decorated')
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyRedis, { client: redis })
  await app.register(fastifySlots, { prefix })
  app.get('/', async (request) => {
    await request.acquireSlot('user', 1, 1)
    return { keys: await keysUnder(redis, prefix) }
  })
  const res = await app.inject('/')
  t.equal(res.statusCode, 200, res.body)
  t.same(res.json().keys, [`${prefix}:{user:1}:holders`])
  await eventually(async () => (await keysUnder(redis, prefix)).length === 0)
})

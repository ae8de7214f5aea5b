/**
 * Type tests against the built package (package.json "types": dist/index.d.ts):
 * `npm run build && npx tsd`. Not run by tap (tap's glob is test/**\/*.test.ts).
 */
import fastify, { type FastifyRequest } from 'fastify'
import { Redis, Cluster } from 'ioredis'
import { expectAssignable, expectError, expectNotAssignable, expectType } from 'tsd'
import fastifySlotsDefault, { fastifySlots, SlotError, pingFrames, MemoryStore, RedisStore, AcquireOutcome, ReleaseOutcome } from '../..'
import type { AcquireOptions, FastifySlotsOptions, GrantListener, GrantSubscription, MemberRef, ReleaseArgs, Slot, SlotErrorCode, SlotStore, TryAcquireArgs } from '../..'
import fastifySlotsCjs = require('../..')

const app = fastify()

// Registration: no options, typical options, every import style.
app.register(fastifySlots)
app.register(fastifySlotsDefault)
app.register(fastifySlotsCjs)
app.register(fastifySlotsCjs.fastifySlots)
app.register(fastifySlots, { leaseMs: 1000, ping: { intervalMs: 100 } })
app.register(fastifySlotsDefault, { leaseMs: 1000, ping: { intervalMs: 100 } })
app.register(fastifySlots, {
  store: 'redis',
  redis: new Redis(),
  prefix: 'slots',
  maxWaitMs: 5000,
  maxWaiters: 10,
  backoff: { initialMs: 50, maxMs: 1000, multiplier: 2, jitter: 0.1 },
  ping: { intervalMs: 15000, frame: pingFrames.anthropic },
  onStoreError: 'fail-open',
  storeTimeoutMs: 500,
  streamErrorFrame: (error, request) => {
    expectType<SlotError>(error)
    expectType<FastifyRequest>(request)
    return `event: error\ndata: ${error.code}\n\n`
  }
})
app.register(fastifySlots, { store: 'memory', ping: false })
app.register(fastifySlots, { redis: new Cluster([{ host: '127.0.0.1', port: 7000 }]) })
app.register(fastifySlots, { store: new MemoryStore() })
app.register(fastifySlots, { store: new RedisStore({ client: new Redis(), prefix: 'slots' }) })

// Bad options do not type-check.
expectError(app.register(fastifySlots, { leaseMs: '1' }))
expectError(app.register(fastifySlots, { store: 'mongo' }))
expectError(app.register(fastifySlots, { onStoreError: 'maybe' }))
expectError(app.register(fastifySlots, { ping: true }))
expectError(app.register(fastifySlots, { ping: { frame: 1 } }))
expectError(app.register(fastifySlots, { backoff: { initialMs: '10' } }))
expectError(app.register(fastifySlots, { redis: 'redis://localhost' }))
expectError(app.register(fastifySlots, { streamErrorFrame: 'x' }))
expectError(app.register(fastifySlots, { store: { tryAcquire: async () => AcquireOutcome.Acquired } }))

expectAssignable<FastifySlotsOptions>({})
expectAssignable<FastifySlotsOptions>({ ping: false, backoff: { jitter: 0 } })
expectNotAssignable<FastifySlotsOptions>({ onStoreError: 'maybe' })
expectNotAssignable<FastifySlotsOptions>({ leaseMs: '1000' })

// A custom object implementing SlotStore is accepted as `store`.
const customStore: SlotStore = {
  async tryAcquire (args) {
    expectType<TryAcquireArgs>(args)
    expectType<string>(args.tag)
    expectType<string>(args.member)
    expectType<number>(args.max)
    return args.max > 0 ? AcquireOutcome.Acquired : AcquireOutcome.Full
  },
  async poll (args) {
    expectType<TryAcquireArgs>(args)
    return AcquireOutcome.Full
  },
  async release (args) {
    expectType<ReleaseArgs>(args)
    expectAssignable<MemberRef>(args)
    expectType<number | undefined>(args.leaseMs)
    return ReleaseOutcome.Released
  },
  async abandon (args) { expectType<ReleaseArgs>(args) },
  async renew (refs, leaseMs) {
    expectType<readonly MemberRef[]>(refs)
    expectType<number>(leaseMs)
    return refs.map(() => true)
  },
  async refreshTickets (refs, ticketTtlMs) {
    expectType<readonly MemberRef[]>(refs)
    expectType<number>(ticketTtlMs)
    return refs.map(() => true)
  },
  // Optional: a store that hands released slots to waiters tells each instance of its grants.
  onGrant (instanceId, listener) {
    expectType<string>(instanceId)
    expectType<GrantListener>(listener)
    listener({ tag: 'user:1', member: `${instanceId}:1:3:1000` }, true)
    const subscription: GrantSubscription = { ready: Promise.resolve(), stop: () => {} }
    return subscription
  }
}
app.register(fastifySlots, { store: customStore })
class ClassStore implements SlotStore {
  async tryAcquire (): Promise<AcquireOutcome> { return AcquireOutcome.QueueFull }
  async poll (): Promise<AcquireOutcome> { return AcquireOutcome.QueueFull }
  async release (): Promise<ReleaseOutcome> { return ReleaseOutcome.Gone }
  async abandon (): Promise<void> {}
  async renew (refs: readonly MemberRef[]): Promise<boolean[]> { return refs.map(() => false) }
  async refreshTickets (refs: readonly MemberRef[]): Promise<boolean[]> { return refs.map(() => false) }
  close (): void {}
}
app.register(fastifySlots, { store: new ClassStore() })
expectAssignable<SlotStore>(new MemoryStore())
expectAssignable<SlotStore>(new RedisStore({ client: new Redis(), prefix: 'p' }))
expectNotAssignable<SlotStore>({ tryAcquire: async () => AcquireOutcome.Acquired, release: async () => {} })
expectType<2>(AcquireOutcome.AcquiredWithRoom)
expectType<1>(AcquireOutcome.Acquired)
expectType<0>(AcquireOutcome.Full)
expectType<-1>(AcquireOutcome.QueueFull)
// AcquireOutcome is both a value and the union type of its values.
expectAssignable<AcquireOutcome>(AcquireOutcome.Acquired)
expectType<2 | 1 | 0 | -1>(AcquireOutcome.Acquired as AcquireOutcome)
expectNotAssignable<AcquireOutcome>(3)
expectType<fastifySlotsCjs.AcquireOutcome>(AcquireOutcome.Full as AcquireOutcome)
expectType<1 | 0 | -1>(ReleaseOutcome.Gone as ReleaseOutcome)
// Custom stores read a ticket's own max and claim from its name.
expectType<string>(fastifySlotsCjs.memberName('instance', 1, 3, 1000))
expectType<fastifySlotsCjs.MemberInfo>(fastifySlotsCjs.parseMember('instance:1:3:1000'))

// fastify.slots and route config.slots.
expectType<Promise<fastifySlotsCjs.Slot>>(app.slots.acquire('job', 1, 2, { signal: AbortSignal.timeout(10) }))
expectError(app.slots.acquire('job', 1, 2, { stream: true }))
expectType<Promise<Array<{ id: string, held: number, waiting: number, oldestWaitMs?: number, waitingByPriority?: Record<number, number> }>>>(app.slots.usage('account', ['a', 2]))
app.slots.on('lost', e => { expectType<number>(e.heldMs) })
app.get('/r', { config: { slots: [{ type: 'user', id: (req) => req.ip, max: 3, stream: true, protocol: 'anthropic' }] } }, async () => 'ok')
expectError(app.get('/r2', { config: { slots: [{ type: 'user', id: 1, max: 3, protocol: 'grpc' }] } }, async () => 'ok'))

// Honest waiting: failFast, a clamped Retry-After, ping frames built from the wait, the queued event.
app.register(fastifySlots, {
  failFast: true,
  maxRetryAfterSeconds: 30,
  ping: {
    frame: (wait) => {
      expectType<fastifySlotsCjs.WaitProgress>(wait)
      expectType<number | null>(wait.position)
      expectType<number>(wait.waitedMs)
      expectType<number | null>(wait.expectedWaitMs)
      return `: waiting, place ${String(wait.position)}\n\n`
    }
  }
})
expectError(app.register(fastifySlots, { failFast: 'yes' }))
expectError(app.register(fastifySlots, { maxRetryAfterSeconds: '5' }))
expectError(app.register(fastifySlots, { ping: { frame: () => 1 } }))
expectAssignable<AcquireOptions>({ failFast: true, ping: { frame: () => ': ping\n\n' } })
expectAssignable<fastifySlotsCjs.PingFrame>(pingFrames.comment)
app.get('/ff', { config: { slots: [{ type: 'user', id: 1, max: 3, failFast: true }] } }, async () => 'ok')
expectError(app.get('/ff2', { config: { slots: [{ type: 'user', id: 1, max: 3, failFast: 1 }] } }, async () => 'ok'))
app.register(fastifySlots, { priorityStepMs: 20_000 })
expectError(app.register(fastifySlots, { priorityStepMs: '1s' }))
expectAssignable<AcquireOptions>({ priority: 3 })
expectNotAssignable<AcquireOptions>({ priority: 'high' })
app.get('/pr', { config: { slots: [{ type: 'user', id: 1, max: 3, priority: (req) => req.headers['x-plan'] === 'pro' ? 1 : 0 }] } }, async () => 'ok')
expectType<Promise<fastifySlotsCjs.Slot>>(app.slots.acquire('job', 1, 2, { priority: 2 }))
expectType<Record<number, number> | undefined>((await app.slots.usage('user', [1]))[0].waitingByPriority)
expectType<number>(fastifySlotsCjs.parseMember('i:1.p2.w3:3:1000').priority)
expectType<number>(fastifySlotsCjs.parseMember('i:1.p2.w3:3:1000').weight)
expectAssignable<AcquireOptions>({ weight: 2 })
expectNotAssignable<AcquireOptions>({ weight: '2' })
app.get('/w', { config: { slots: [{ type: 'user', id: 1, max: 8, weight: (req) => req.headers['x-batch'] === '1' ? 4 : 1 }] } }, async () => 'ok')
// All-or-nothing slots of several subjects.
app.get('/set', async request => {
  const slots = await request.acquireSlots([{ type: 'user', id: 1, max: 3 }, { type: 'account', id: 'a', max: 10, weight: 2 }], { maxWaitMs: 5000, priority: 1 })
  expectType<Slot[]>(slots)
  expectError(request.acquireSlots([{ type: 'user', id: 1, max: 3 }], { weight: 2 }))
  expectError(request.acquireSlots([{ type: 'user', id: 1 }]))
  expectError(request.acquireSlots([{ type: 'user', id: 1, max: 3, weight: '2' }]))
  return 'ok'
})
expectType<Promise<Slot[]>>(app.slots.acquireAll([{ type: 'user', id: 1, max: 3 }, { type: 'account', id: 'a', max: 1 }], { signal: new AbortController().signal }))
expectAssignable<fastifySlotsCjs.SlotRequest>({ type: 'user', id: 'u', max: 2, weight: 1 })
app.register(fastifySlots, { redis: new Cluster([]), hashTag: (type, id) => type === 'account' ? 'gw' : `gw:${id}` })
app.register(fastifySlots, { hashTag: () => undefined })
expectError(app.register(fastifySlots, { hashTag: 'gw' }))
expectType<boolean>(fastifySlotsCjs.parseMember('i:1.s:3:1000').set)
expectAssignable<fastifySlotsCjs.AcquireSetArgs>({ members: [{ tag: 'user:1', member: 'i:1.s:3:1000', max: 3 }], first: true, leaseMs: 1000, maxWaiters: 1, ticketTtlMs: 500 })
expectAssignable<Partial<SlotStore>>({ acquireSet: async () => AcquireOutcome.Acquired, groupsOf: () => undefined })
app.slots.on('queued', e => {
  expectType<number>(e.priority)
  expectType<string>(e.type)
  expectType<number | null>(e.position)
  expectType<number | null>(e.expectedWaitMs)
})
expectAssignable<SlotErrorCode>('SLOT_WAIT_TOO_LONG')
expectAssignable<fastifySlotsCjs.RejectionCode>('SLOT_WAIT_TOO_LONG')
expectType<number>(app.slots.stats().rejected.SLOT_WAIT_TOO_LONG)
// A store may answer a ticket with its place in line.
const placingStore: SlotStore = { ...customStore, tryAcquire: async () => ({ outcome: AcquireOutcome.Full, ahead: 3 }) }
app.register(fastifySlots, { store: placingStore })
expectAssignable<fastifySlotsCjs.QueuedAnswer>({ outcome: AcquireOutcome.Full, ahead: 0 })
expectNotAssignable<fastifySlotsCjs.TryAcquireAnswer>({ outcome: AcquireOutcome.Acquired, ahead: 1 })
expectType<Promise<fastifySlotsCjs.TryAcquireAnswer>>(placingStore.tryAcquire({ tag: 'user:1', member: 'i:1:1:1000', max: 1, leaseMs: 1000, maxWaiters: 1, ticketTtlMs: 1000 }))

// request.acquireSlot and request.slotStreamStarted.
app.get('/', async (request) => {
  expectType<Promise<Slot>>(request.acquireSlot('user', 42, 3))
  expectType<Promise<Slot>>(request.acquireSlot('user', '42', 0, { stream: true, maxWaitMs: 100, maxWaiters: 2, ping: { intervalMs: 10 } }))
  expectType<Promise<Slot>>(request.acquireSlot('user', 1, 1, { ping: false }))
  const slot = await request.acquireSlot('user', 42, 3)
  expectType<Slot>(slot)
  expectType<string>(slot.type)
  expectType<string>(slot.id)
  expectType<number>(slot.waitedMs)
  expectType<boolean>(slot.bypassed)
  expectType<Promise<void>>(slot.release())
  expectError(slot.bypassed = true)
  expectType<boolean>(request.slotStreamStarted)

  expectError(request.acquireSlot('user', 42))
  expectError(request.acquireSlot(1, 42, 3))
  expectError(request.acquireSlot('user', { id: 1 }, 3))
  expectError(request.acquireSlot('user', null, 3))
  expectError(request.acquireSlot('user', 42, '3'))
  expectError(request.acquireSlot('user', 42, 3, { stream: 'yes' }))
  expectError(request.acquireSlot('user', 42, 3, { maxWaitMs: '10' }))
  expectError(request.acquireSlot('user', 42, 3, 'fast'))
  expectAssignable<AcquireOptions>({})
  expectNotAssignable<AcquireOptions>({ stream: 'yes' })
  return { waited: slot.waitedMs }
})

// SlotError: a class with the documented fields.
const err = new SlotError('SLOT_QUEUE_FULL', 'too many waiting')
expectAssignable<Error>(err)
expectType<SlotErrorCode>(err.code)
expectType<number>(err.statusCode)
expectType<string | undefined>(err.slotType)
expectType<string | undefined>(err.slotId)
expectType<boolean>(err.streamed)
expectType<Record<string, string> | undefined>(err.headers)
expectAssignable<SlotErrorCode>('SLOT_WAIT_TIMEOUT')
expectAssignable<SlotErrorCode>('SLOT_INVALID_ARGUMENT')
expectNotAssignable<SlotErrorCode>('SLOT_NOPE')
expectError(new SlotError('SLOT_NOPE', 'x'))
expectError(err.code = 'SLOT_QUEUE_FULL')
expectType<SlotError>(new fastifySlotsCjs.SlotError('SLOT_WAIT_ABORTED', 'gone', { slotType: 'user', slotId: '1' }))
const caught: unknown = err
if (caught instanceof SlotError) expectType<SlotError>(caught)

// pingFrames: the two documented frames.
expectType<': ping\n\n'>(pingFrames.comment)
expectType<'data: {"type": "ping"}\n\n'>(pingFrames.anthropic)
expectAssignable<FastifySlotsOptions>({ ping: { frame: pingFrames.comment } })
expectError(pingFrames.comment = 'x')

// Every type the API hands out is exported by name.
expectType<fastifySlotsCjs.SlotStats>(app.slots.stats())
expectType<Promise<fastifySlotsCjs.SubjectUsage[]>>(app.slots.usage('user', [1]))
expectAssignable<fastifySlotsCjs.SubjectLoad>({ held: 1, waiting: 0 })
expectAssignable<fastifySlotsCjs.Candidate>({ id: 'acct-1', max: 3 })
expectAssignable<fastifySlotsCjs.DetachedAcquireOptions>({ maxWaitMs: 10, signal: new AbortController().signal })
expectNotAssignable<fastifySlotsCjs.DetachedAcquireOptions>({ protocol: 'anthropic' })
expectNotAssignable<fastifySlotsCjs.DetachedAcquireOptions>({ ping: { intervalMs: 100 } })
expectAssignable<fastifySlotsCjs.StreamErrorFrame>((error: SlotError) => `event: error\ndata: ${error.code}\n\n`)
expectAssignable<fastifySlotsCjs.SlotEventMap['acquired']>([{ type: 'user', id: '1', waitedMs: 0 }])

// A held slot's signal aborts when it ends; its reason is a SlotError of one of these codes.
declare const heldSlot: Slot
expectType<AbortSignal>(heldSlot.signal)
expectAssignable<SlotErrorCode>('SLOT_LOST')
expectAssignable<SlotErrorCode>('SLOT_RELEASED')
expectNotAssignable<fastifySlotsCjs.RejectionCode>('SLOT_LOST')

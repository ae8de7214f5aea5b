/**
 * fastify-slots: `request.acquireSlot(type, id, max)` takes a distributed concurrency slot
 * (a counting semaphore per subject) and releases it however the request ends.
 *
 * This file only wires things together: options → store → manager, and Fastify's hooks.
 */
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { SlotError as SlotErrorClass, type RejectionCode as RejectionCodeType, type SlotErrorCode as SlotErrorCodeType } from './errors'
import { isRedisClient, resolveOptions, type AcquireOptions as AcquireOptionsType, type BackoffOptions as BackoffOptionsType, type FastifySlotsOptions as FastifySlotsOptionsType, type PingOptions as PingOptionsType, type PingFrame as PingFrameType, type WaitProgress as WaitProgressType, type ResolvedOptions, type StreamErrorFrame as StreamErrorFrameType } from './options'
import { RequestSlots } from './request-slots'
import type { Slot as SlotType } from './slot'
import { SlotManager } from './slot-manager'
import { SlotsApi, type Candidate as CandidateType, type DetachedAcquireOptions as DetachedAcquireOptionsType, type SubjectUsage as SubjectUsageType } from './slots-api'
import type { SlotEventMap as SlotEventMapType } from './events'
import type { SlotStats as SlotStatsType } from './stats'
import { routeSlots, takeRouteSlots, type RouteSlot as RouteSlotType } from './route-config'
import type { SlotRequest as SlotRequestType } from './set-subjects'
import { checkRedisOrder, markWired, unwiredRoute } from './wiring-checks'
import { callProtocol, rememberFailure, shapeErrorBody } from './error-body'
import { pingFrames as pingFramesValue, protocols as protocolsValue, type ProtocolName as ProtocolNameType, type StreamProtocol as StreamProtocolType } from './protocols'
import { MemoryStore as MemoryStoreClass } from './stores/memory-store'
import { RedisStore as RedisStoreClass, type RedisClientLike as RedisClientLikeType } from './stores/redis-store'
import {
  AcquireOutcome as AcquireOutcomeValue, memberName as memberNameValue, parseMember as parseMemberValue, type MemberInfo as MemberInfoType, type GrantListener as GrantListenerType, type GrantSubscription as GrantSubscriptionType,
  type MemberRef as MemberRefType, ReleaseOutcome as ReleaseOutcomeValue, type ReleaseArgs as ReleaseArgsType, type SlotStore as SlotStoreType, type SubjectLoad as SubjectLoadType, type TryAcquireArgs as TryAcquireArgsType,
  type TryAcquireAnswer as TryAcquireAnswerType, type QueuedAnswer as QueuedAnswerType, type AcquireSetArgs as AcquireSetArgsType, type SetMemberArgs as SetMemberArgsType
} from './stores/store'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Slots this route takes, in order, before its handler (see RouteSlot). */
    slots?: RouteSlotType[]
  }
  interface FastifyInstance {
    slots: SlotsApi
  }
  interface FastifyRequest {
    /**
     * Takes a concurrency slot of subject (type, id) with at most `max` holders (0 = unlimited),
     * waiting with backoff when full. Released automatically when the request ends.
     */
    acquireSlot (type: string, id: string | number, max: number, opts?: AcquireOptionsType): Promise<SlotType>
    /**
     * Takes a slot of every subject at once, or none: while any of them is full it holds none
     * and waits as one waiter (see docs/slot-sets.md). Slots come back in the order asked.
     */
    acquireSlots (slots: readonly SlotRequestType[], opts?: Omit<AcquireOptionsType, 'weight'>): Promise<SlotType[]>
    /** True once fastify-slots committed the response as an SSE stream: keep writing on `reply.raw`. */
    slotStreamStarted: boolean
  }
}

type FastifySlotsPlugin = FastifyPluginAsync<FastifySlotsOptionsType>

const kReply = Symbol('fastify-slots.reply')
const kSlots = Symbol('fastify-slots.request')

interface SlotsRequest extends FastifyRequest {
  [kReply]: FastifyReply | null
  [kSlots]: RequestSlots | null
}

function createStore (fastify: FastifyInstance, options: ResolvedOptions): SlotStoreType {
  if (typeof options.store === 'object') return options.store
  const decorated = fastify.hasDecorator('redis') ? (fastify as unknown as { redis: unknown }).redis : undefined
  // @fastify/redis registered with a namespace decorates an object of clients, not a client.
  // Falling back to the memory store there would silently stop sharing slots between processes.
  const client = options.redis ?? decorated
  const kind = options.store ?? (client === undefined ? 'memory' : 'redis')
  if (kind === 'memory') return new MemoryStoreClass()
  if (client === undefined) {
    throw new TypeError('fastify-slots: option "store" is \'redis\' but no client was found: pass the "redis" option or register @fastify/redis first')
  }
  if (!isRedisClient(client)) {
    throw new TypeError('fastify-slots: fastify.redis is not an ioredis client (@fastify/redis registered with a namespace?): pass one as the "redis" option')
  }
  return new RedisStoreClass({ client, prefix: options.prefix, hashTag: options.hashTag })
}

function requestSlots (request: SlotsRequest): RequestSlots {
  let state = request[kSlots]
  if (state === null) {
    const reply = request[kReply]
    if (reply === null) {
      throw new SlotErrorClass('SLOT_INVALID_ARGUMENT', 'acquireSlot was called before fastify-slots saw the request: register fastify-slots before any onRequest hook that takes slots')
    }
    state = new RequestSlots(request, reply)
    request[kSlots] = state
  }
  return state
}

async function fastifySlots (fastify: FastifyInstance, opts: FastifySlotsOptionsType): Promise<void> {
  const options = resolveOptions(opts)
  const store = createStore(fastify, options)
  const manager = new SlotManager(store, options, fastify.log)
  const storeName = store instanceof MemoryStoreClass ? 'memory' : store instanceof RedisStoreClass ? 'redis' : 'custom'
  fastify.log.info({ store: storeName, prefix: options.prefix, instanceId: manager.instanceId }, `fastify-slots: slots are kept in the ${storeName} store`)
  // Chosen by default (no store, no client, no fastify.redis yet): checked again when ready.
  const memoryByDefault = options.store === undefined && storeName === 'memory'
  fastify.addHook('onReady', async () => checkRedisOrder(fastify, memoryByDefault))

  fastify.decorate('slots', new SlotsApi(manager, fastify.log, options.usageCacheMs))
  fastify.decorateRequest('slotStreamStarted', false)
  fastify.decorateRequest(kReply, null)
  fastify.decorateRequest(kSlots, null)
  // A failure answered as JSON speaks the call's (or the plugin's) protocol: see error-body.ts.
  const pluginProtocol = callProtocol(opts, 'generic')
  const failed = (request: FastifyRequest, callOptions: unknown) => (err: unknown): never => {
    rememberFailure(request, err, callProtocol(callOptions, pluginProtocol))
    throw err
  }
  fastify.decorateRequest('acquireSlot', function (this: FastifyRequest, type: string, id: string | number, max: number, callOptions?: AcquireOptionsType): Promise<SlotType> {
    try {
      return manager.acquire(requestSlots(this as SlotsRequest), type, id, max, callOptions).catch(failed(this, callOptions))
    } catch (err) {
      return Promise.reject(err).catch(failed(this, callOptions))
    }
  })

  fastify.decorateRequest('acquireSlots', function (this: FastifyRequest, slots: readonly SlotRequestType[], callOptions?: AcquireOptionsType): Promise<SlotType[]> {
    try {
      return manager.acquireSet(requestSlots(this as SlotsRequest), slots, callOptions).catch(failed(this, callOptions))
    } catch (err) {
      return Promise.reject(err).catch(failed(this, callOptions))
    }
  })

  // Only routes that declare slots pay for the preHandler; it runs after the route's own
  // preHandlers (which may authenticate the user the slot's id comes from).
  fastify.addHook('onRoute', route => {
    const slots = routeSlots(route, options)
    if (slots === undefined) return
    markWired(route.config as object)
    const take = async (request: FastifyRequest): Promise<void> => {
      const state = requestSlots(request as SlotsRequest)
      state.hijackOnStream = false
      try {
        await takeRouteSlots(request, slots)
      } finally {
        state.hijackOnStream = true
      }
    }
    route.preHandler = route.preHandler === undefined ? [take] : [...[route.preHandler].flat(), take]
  })
  fastify.addHook('onRequest', (request, reply, done) => {
    (request as SlotsRequest)[kReply] = reply
    // A route with config.slots registered before this plugin: refused, never served unlimited.
    done(unwiredRoute(request))
  })
  // Every way a request ends releases its slots; RequestSlots also watches the raw 'close' events.
  const end = (request: FastifyRequest, _reply: unknown, done: () => void): void => {
    (request as SlotsRequest)[kSlots]?.end()
    done()
  }
  fastify.addHook('onSend', shapeErrorBody)
  fastify.addHook('onResponse', end)
  fastify.addHook('onTimeout', end)
  fastify.addHook('onRequestAbort', (request, done) => end(request, null, done))
  fastify.addHook('preClose', (done) => {
    manager.beginClose()
    done()
  })
  fastify.addHook('onClose', async () => manager.close())
}

fp(fastifySlots, { fastify: '5.x', name: 'fastify-slots' })

// The namespace merges with the plugin function so `export =` serves CommonJS and ESM consumers
// alike: `import fastifySlots from 'fastify-slots'`, `import { fastifySlots, SlotError } from ...`
// and `const fastifySlots = require('fastify-slots')` all type-check.
declare namespace fastifySlots {
  export type FastifySlotsOptions = FastifySlotsOptionsType
  export type AcquireOptions = AcquireOptionsType
  export type BackoffOptions = BackoffOptionsType
  export type PingOptions = PingOptionsType
  export type PingFrame = PingFrameType
  export type WaitProgress = WaitProgressType
  export type Slot = SlotType
  export type SlotErrorCode = SlotErrorCodeType
  export type RejectionCode = RejectionCodeType
  export type SlotStore = SlotStoreType
  export type TryAcquireArgs = TryAcquireArgsType
  export type TryAcquireAnswer = TryAcquireAnswerType
  export type QueuedAnswer = QueuedAnswerType
  export type AcquireSetArgs = AcquireSetArgsType
  export type SetMemberArgs = SetMemberArgsType
  export type MemberRef = MemberRefType
  export type MemberInfo = MemberInfoType
  export type ReleaseArgs = ReleaseArgsType
  export type GrantListener = GrantListenerType
  export type GrantSubscription = GrantSubscriptionType
  export type RedisClientLike = RedisClientLikeType
  export type Slots = SlotsApi
  export type SlotStats = SlotStatsType
  export type SubjectUsage = SubjectUsageType
  export type SubjectLoad = SubjectLoadType
  export type Candidate = CandidateType
  export type DetachedAcquireOptions = DetachedAcquireOptionsType
  export type StreamErrorFrame = StreamErrorFrameType
  export type SlotEventMap = SlotEventMapType
  export type ProtocolName = ProtocolNameType
  export type RouteSlot = RouteSlotType
  export type SlotRequest = SlotRequestType
  export type StreamProtocol = StreamProtocolType
  export type SlotError = SlotErrorClass
  export type MemoryStore = MemoryStoreClass
  export type RedisStore = RedisStoreClass
  export type AcquireOutcome = typeof AcquireOutcomeValue[keyof typeof AcquireOutcomeValue]
  export type ReleaseOutcome = typeof ReleaseOutcomeValue[keyof typeof ReleaseOutcomeValue]
  export const SlotError: typeof SlotErrorClass
  export const MemoryStore: typeof MemoryStoreClass
  export const RedisStore: typeof RedisStoreClass
  export const AcquireOutcome: typeof AcquireOutcomeValue
  export const ReleaseOutcome: typeof ReleaseOutcomeValue
  export const memberName: typeof memberNameValue
  export const parseMember: typeof parseMemberValue
  export const pingFrames: typeof pingFramesValue
  export const protocols: typeof protocolsValue
  export const fastifySlots: FastifySlotsPlugin
  export { fastifySlots as default }
}

Object.assign(fastifySlots, {
  fastifySlots,
  default: fastifySlots,
  SlotError: SlotErrorClass,
  MemoryStore: MemoryStoreClass,
  RedisStore: RedisStoreClass,
  AcquireOutcome: AcquireOutcomeValue,
  ReleaseOutcome: ReleaseOutcomeValue,
  memberName: memberNameValue,
  parseMember: parseMemberValue,
  pingFrames: pingFramesValue,
  protocols: protocolsValue
})

export = fastifySlots

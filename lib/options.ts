/**
 * Plugin and per-call options: their types, defaults, and validation. Registration errors
 * are TypeErrors naming the option; per-call errors are SLOT_INVALID_ARGUMENT SlotErrors.
 */
import type { FastifyRequest } from 'fastify'
import { describe, invalidArgument, invalidOption, type SlotError } from './errors'
import { STRICT_PRIORITY_STEP_MS, type SlotStore } from './stores/store'
import type { RedisClientLike } from './stores/redis-store'
import { protocols, type ProtocolName } from './protocols'

export interface BackoffOptions {
  /** First retry delay, and the lower clamp of every delay. */
  initialMs: number
  /** Each delay is the previous one times this. */
  multiplier: number
  /** Upper clamp of every delay. */
  maxMs: number
  /** Each delay is multiplied by a random factor in [1 - jitter, 1 + jitter]. */
  jitter: number
}

/** Where a waiting request stands, for a ping frame built per ping. */
export interface WaitProgress {
  /** Its place in line when it started waiting (1: next), or null when the store did not say. */
  position: number | null
  /** Milliseconds since acquireSlot was called. */
  waitedMs: number
  /** The wait expected for that place when it started waiting (see `queued`), or null when unknown. */
  expectedWaitMs: number | null
}

/**
 * One keepalive event, ending in a blank line (see `pingFrames`), or a function building each
 * one from the wait so far (for protocols that allow comments: `: waiting, 3rd in line\n\n`).
 */
export type PingFrame = string | ((wait: WaitProgress) => string)

export interface PingOptions {
  /** A stream still waiting after this long is committed and pinged at this interval. */
  intervalMs: number
  frame: PingFrame
}

export type StreamErrorFrame = (error: SlotError, request: FastifyRequest) => string

export interface FastifySlotsOptions {
  /** Default: 'redis' when `redis` is given or `fastify.redis` is decorated, else 'memory'. */
  store?: 'redis' | 'memory' | SlotStore
  /** An ioredis client (or Cluster) to use instead of `fastify.redis`. */
  redis?: RedisClientLike
  /** Key prefix. Default 'slots'. */
  prefix?: string
  /** A held slot expires unless renewed; renewed every leaseMs / 3 while held. Default 30000. */
  leaseMs?: number
  /** How long a request may wait for a slot. Default 30000. */
  maxWaitMs?: number
  /** Requests allowed to wait per subject, beyond the holders. Default 20. */
  maxWaiters?: number
  backoff?: Partial<BackoffOptions>
  /** SSE keepalive while a streaming request waits, or false. Default `{ intervalMs: 15000, frame: <the protocol's ping> }`. */
  ping?: Partial<PingOptions> | false
  /** Default 'fail-closed' (503). 'fail-open' lets the request proceed without a slot. */
  onStoreError?: 'fail-closed' | 'fail-open'
  /** Upper bound of every store call. Default 1000. */
  storeTimeoutMs?: number
  /**
   * The API the clients speak: a waiting stream's keepalive and error frames, and the JSON body
   * of a failed acquire answered before any stream started (that API's error object, so its
   * SDK raises its own rate-limit error). 'generic' (default: Fastify's error body), 'anthropic',
   * 'openai-chat' or 'openai-responses'.
   */
  protocol?: ProtocolName
  /** The bytes written when acquisition fails after the SSE stream was committed. Default: the protocol's error frame. */
  streamErrorFrame?: StreamErrorFrame
  /**
   * Strict first-come-first-served across processes: a freed slot goes to the oldest waiter
   * anywhere, and newcomers queue behind it. Default false: waiters in one process are served
   * in order, but a newcomer may take a slot that frees before a waiter elsewhere retries.
   */
  fair?: boolean
  /** How long `fastify.slots.usage()` answers from memory (sub2api uses 200). Default 0: off. */
  usageCacheMs?: number
  /**
   * Answer 429 `SLOT_WAIT_TOO_LONG` at once when the wait expected for the request's place in
   * line is longer than what is left of its maxWaitMs, instead of holding it for nothing.
   * Default false.
   */
  failFast?: boolean
  /** Upper clamp of a 429's Retry-After, which is estimated from observed holds. Default 60. */
  maxRetryAfterSeconds?: number
  /**
   * How much earlier than its arrival a request one priority class higher is queued: a
   * waiter is passed by higher classes only when they arrive less than (class difference ×
   * priorityStepMs) after it, which bounds how long a low class can starve. Default 86400000
   * (a day, longer than any wait: strict classes). Use one value on every instance of a prefix.
   */
  priorityStepMs?: number
  /**
   * Redis Cluster: the hash tag a subject's keys go under, so that subjects taken together
   * by acquireSlots share one shard and are taken in one atomic step (see
   * docs/slot-sets.md). A function of the subject only; undefined keeps the subject's own.
   * Use the same function on every instance, and change it only with no slot held: it moves
   * subjects to other keys. Default: every subject under its own tag.
   */
  hashTag?: (type: string, id: string) => string | undefined
}

export interface AcquireOptions {
  /** The request streams (SSE): ping it while it waits. Default false. */
  stream?: boolean
  maxWaitMs?: number
  maxWaiters?: number
  ping?: Partial<PingOptions> | false
  fair?: boolean
  /** This call's API: its stream's pings (unless `ping.frame` is given) and error frame, and its JSON error body. */
  protocol?: ProtocolName
  failFast?: boolean
  /** Priority class, 0 to 1000: waiters of a higher class are served first (see priorityStepMs). Default 0. */
  priority?: number
  /** The units of `max` this request counts for, 1 to min(max, 1000) (a long-context request costs more). Default 1. */
  weight?: number
}

export interface ResolvedOptions {
  store: 'redis' | 'memory' | SlotStore | undefined
  redis: RedisClientLike | undefined
  prefix: string
  leaseMs: number
  maxWaitMs: number
  maxWaiters: number
  backoff: BackoffOptions
  ping: PingOptions | false
  onStoreError: 'fail-closed' | 'fail-open'
  storeTimeoutMs: number
  streamErrorFrame: StreamErrorFrame
  fair: boolean
  usageCacheMs: number
  failFast: boolean
  maxRetryAfterSeconds: number
  priorityStepMs: number
  hashTag: ((type: string, id: string) => string | undefined) | undefined
  /** Derived: a waiting ticket lapses unless refreshed (every third of it) by a live process. */
  ticketTtlMs: number
  /** Derived: how long a slot granted by another process is its waiter's before it confirms it. */
  claimMs: number
  /**
   * Derived: Retry-After of a 429 when no hold of the subject was observed yet; by then a
   * waiter would have retried at least once at full backoff.
   */
  retryAfterSeconds: number
}

export interface CallSettings {
  stream: boolean
  maxWaitMs: number
  maxWaiters: number
  ping: PingOptions | false
  fair: boolean
  failFast: boolean
  priority: number
  weight: number
  errorFrame: StreamErrorFrame
}

const DAY_MS = 86_400_000
/** Classes above this would put a place beyond what a double holds exactly (priority × a day in µs, plus the time). */
const MAX_PRIORITY = 1000
/** A weight is that many entries written in one command (and in one Lua unpack, which is bounded). */
export const MAX_WEIGHT = 1000

/** A weight above the call's max could never be admitted: refused like any bad argument. */
export function checkWeight (weight: number, max: number): void {
  if (weight > max && max > 0) throw failCall('weight', mustBe(`at most max (${max})`, weight))
}
const PREFIX_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/

export const DEFAULT_BACKOFF: Readonly<BackoffOptions> = Object.freeze({ initialMs: 100, multiplier: 1.5, maxMs: 2000, jitter: 0.2 })
export const DEFAULT_PING: Readonly<PingOptions> = Object.freeze({ intervalMs: 15_000, frame: protocols.generic.ping })

/** Builds the error for option `name`; `problem` reads 'must be ..., got ...' or 'is not an option ...'. */
type Fail = (name: string, problem: string) => Error

const mustBe = (expected: string, got: unknown): string => `must be ${expected}, got ${describe(got)}`

const KNOWN_OPTIONS = new Set(['store', 'redis', 'prefix', 'leaseMs', 'maxWaitMs', 'maxWaiters', 'backoff', 'ping', 'onStoreError', 'storeTimeoutMs', 'streamErrorFrame', 'fair', 'usageCacheMs', 'protocol', 'failFast', 'maxRetryAfterSeconds', 'priorityStepMs', 'hashTag'])
// Options Fastify itself reads from every register() call; harmless here.
const FASTIFY_REGISTER_OPTIONS = new Set(['logLevel', 'logSerializers'])
const KNOWN_CALL_OPTIONS = new Set(['stream', 'maxWaitMs', 'maxWaiters', 'ping', 'fair', 'protocol', 'failFast', 'priority', 'weight'])

function integer (fail: Fail, name: string, value: unknown, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw fail(name, mustBe(`an integer from ${min} to ${max}`, value))
  }
  return value
}

function number (fail: Fail, name: string, value: unknown, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw fail(name, mustBe(`a number from ${min} to ${max}`, value))
  }
  return value
}

function boolean (fail: Fail, name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback
  if (typeof value !== 'boolean') throw fail(name, mustBe('a boolean', value))
  return value
}

function plainObject (fail: Fail, name: string, value: unknown, known: Set<string>): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw fail(name === '' ? 'options' : name, mustBe('an object', value))
  for (const key of Object.keys(value)) {
    if (!known.has(key) && !(name === '' && FASTIFY_REGISTER_OPTIONS.has(key))) {
      throw fail(name === '' ? key : `${name}.${key}`, `is not an option (known: ${[...known].join(', ')})`)
    }
  }
  return value as Record<string, unknown>
}

function resolveBackoff (fail: Fail, value: unknown): BackoffOptions {
  if (value === undefined) return { ...DEFAULT_BACKOFF }
  const b = plainObject(fail, 'backoff', value, new Set(Object.keys(DEFAULT_BACKOFF)))
  const initialMs = integer(fail, 'backoff.initialMs', b.initialMs, DEFAULT_BACKOFF.initialMs, 1, 60_000)
  const maxMs = integer(fail, 'backoff.maxMs', b.maxMs, Math.max(DEFAULT_BACKOFF.maxMs, initialMs), initialMs, DAY_MS)
  return {
    initialMs,
    maxMs,
    multiplier: number(fail, 'backoff.multiplier', b.multiplier, DEFAULT_BACKOFF.multiplier, 1, 100),
    jitter: number(fail, 'backoff.jitter', b.jitter, DEFAULT_BACKOFF.jitter, 0, 0.99)
  }
}

function resolvePing (fail: Fail, name: string, value: unknown, fallback: PingOptions | false): PingOptions | false {
  if (value === undefined) return fallback
  if (value === false) return false
  const p = plainObject(fail, name, value, new Set(['intervalMs', 'frame']))
  const base = fallback === false ? DEFAULT_PING : fallback
  const frame = p.frame === undefined ? base.frame : p.frame
  if (typeof frame !== 'function' && !isPingFrame(frame)) {
    throw fail(`${name}.frame`, mustBe('a string of at most 4096 characters ending in a blank line ("\\n\\n"), or a function returning one', frame))
  }
  return { intervalMs: integer(fail, `${name}.intervalMs`, p.intervalMs, base.intervalMs, 10, DAY_MS), frame: frame as PingFrame }
}

export function resolveOptions (options: unknown): ResolvedOptions {
  const o = plainObject(invalidOption, '', options ?? {}, KNOWN_OPTIONS)
  const protocol = protocols[resolveProtocol(invalidOption, o.protocol, 'generic')]
  const store = o.store
  if (store !== undefined && store !== 'redis' && store !== 'memory' && !isSlotStore(store)) {
    throw invalidOption('store', mustBe(`'redis', 'memory' or an object implementing SlotStore (${STORE_METHODS.join(', ')})`, store))
  }
  const redis = o.redis
  if (redis !== undefined && !isRedisClient(redis)) {
    throw invalidOption('redis', mustBe('an ioredis client or Cluster', redis))
  }
  const prefix = o.prefix ?? 'slots'
  if (typeof prefix !== 'string' || !PREFIX_PATTERN.test(prefix)) {
    throw invalidOption('prefix', mustBe('a string of 1 to 128 letters, digits, "_", ".", ":" or "-"', prefix))
  }
  const onStoreError = o.onStoreError ?? 'fail-closed'
  if (onStoreError !== 'fail-closed' && onStoreError !== 'fail-open') {
    throw invalidOption('onStoreError', mustBe("'fail-closed' or 'fail-open'", onStoreError))
  }
  const streamErrorFrame = o.streamErrorFrame ?? protocol.errorFrame
  if (typeof streamErrorFrame !== 'function') throw invalidOption('streamErrorFrame', mustBe('a function', streamErrorFrame))
  if (o.hashTag !== undefined && typeof o.hashTag !== 'function') throw invalidOption('hashTag', mustBe('a function (type, id) => string | undefined', o.hashTag))
  if (o.hashTag !== undefined && store !== undefined && store !== 'redis') throw invalidOption('hashTag', 'applies only to the Redis store the plugin builds (give a RedisStore of your own its own hashTag)')
  const leaseMs = integer(invalidOption, 'leaseMs', o.leaseMs, 30_000, 100, DAY_MS)
  const backoff = resolveBackoff(invalidOption, o.backoff)
  const storeTimeoutMs = integer(invalidOption, 'storeTimeoutMs', o.storeTimeoutMs, 1000, 1, 60_000)
  return {
    store: store as ResolvedOptions['store'],
    redis: redis as RedisClientLike | undefined,
    prefix,
    leaseMs,
    maxWaitMs: integer(invalidOption, 'maxWaitMs', o.maxWaitMs, 30_000, 0, DAY_MS),
    maxWaiters: integer(invalidOption, 'maxWaiters', o.maxWaiters, 20, 0, 1_000_000),
    backoff,
    ping: resolvePing(invalidOption, 'ping', o.ping, { ...DEFAULT_PING, frame: protocol.ping }),
    onStoreError,
    storeTimeoutMs,
    streamErrorFrame: streamErrorFrame as StreamErrorFrame,
    fair: boolean(invalidOption, 'fair', o.fair, false),
    usageCacheMs: integer(invalidOption, 'usageCacheMs', o.usageCacheMs, 0, 0, 60_000),
    failFast: boolean(invalidOption, 'failFast', o.failFast, false),
    maxRetryAfterSeconds: integer(invalidOption, 'maxRetryAfterSeconds', o.maxRetryAfterSeconds, 60, 1, DAY_MS / 1000),
    priorityStepMs: integer(invalidOption, 'priorityStepMs', o.priorityStepMs, STRICT_PRIORITY_STEP_MS, 1, DAY_MS),
    hashTag: o.hashTag as ResolvedOptions['hashTag'],
    ...waitTimings(leaseMs, backoff, storeTimeoutMs)
  }
}

/**
 * The lifetimes the wait scheduler runs on, all from the backoff that drives the polls:
 * - a ticket outlives a few refresh ticks and a slow store call, but at most half a lease;
 * - a claim is the rest of the lease. A process that dies while waiting has tickets for at
 *   most ticketTtlMs and a grant to one lasts claimMs, so everything of a crashed process is
 *   gone within one leaseMs (ticketTtlMs + claimMs = leaseMs), and a claim (at least half a
 *   lease) is far longer than a grant message takes to arrive and be confirmed.
 */
export function waitTimings (leaseMs: number, backoff: BackoffOptions, storeTimeoutMs: number): Pick<ResolvedOptions, 'ticketTtlMs' | 'claimMs' | 'retryAfterSeconds'> {
  const ticketTtlMs = Math.min(2 * (backoff.maxMs + storeTimeoutMs), Math.floor(leaseMs / 2))
  return { ticketTtlMs, claimMs: leaseMs - ticketTtlMs, retryAfterSeconds: Math.max(1, Math.ceil(backoff.maxMs / 1000)) }
}

/** What a keepalive frame must be: SSE bytes ending an event. */
export function isPingFrame (frame: unknown): frame is string {
  return typeof frame === 'string' && frame.endsWith('\n\n') && frame.length <= 4096
}

const failCall: Fail = (name, problem) => invalidArgument(`acquireSlot: option "${name}" ${problem}`)

/** Per-call options over the plugin's; validated before any store call. */
export function resolveCallSettings (opts: unknown, plugin: ResolvedOptions): CallSettings {
  if (opts === undefined) {
    return { stream: false, maxWaitMs: plugin.maxWaitMs, maxWaiters: plugin.maxWaiters, ping: plugin.ping, fair: plugin.fair, failFast: plugin.failFast, priority: 0, weight: 1, errorFrame: plugin.streamErrorFrame }
  }
  const o = plainObject(failCall, '', opts, KNOWN_CALL_OPTIONS)
  // A protocol chosen for this call brings its own frames; the plugin's are the defaults.
  const protocol = o.protocol === undefined ? undefined : protocols[resolveProtocol(failCall, o.protocol, 'generic')]
  const basePing = protocol === undefined || plugin.ping === false ? plugin.ping : { ...plugin.ping, frame: protocol.ping }
  return {
    errorFrame: protocol?.errorFrame ?? plugin.streamErrorFrame,
    stream: boolean(failCall, 'stream', o.stream, false),
    fair: boolean(failCall, 'fair', o.fair, plugin.fair),
    failFast: boolean(failCall, 'failFast', o.failFast, plugin.failFast),
    priority: integer(failCall, 'priority', o.priority, 0, 0, MAX_PRIORITY),
    // Checked against the call's max once that is known (see checkWeight).
    weight: integer(failCall, 'weight', o.weight, 1, 1, MAX_WEIGHT),
    maxWaitMs: integer(failCall, 'maxWaitMs', o.maxWaitMs, plugin.maxWaitMs, 0, DAY_MS),
    maxWaiters: integer(failCall, 'maxWaiters', o.maxWaiters, plugin.maxWaiters, 0, 1_000_000),
    ping: resolvePing(failCall, 'ping', o.ping, basePing)
  }
}

function resolveProtocol (fail: Fail, value: unknown, fallback: ProtocolName): ProtocolName {
  if (value === undefined) return fallback
  if (typeof value !== 'string' || !Object.hasOwn(protocols, value)) {
    throw fail('protocol', mustBe(Object.keys(protocols).map(p => `'${p}'`).join(', '), value))
  }
  return value as ProtocolName
}

const STORE_METHODS = ['tryAcquire', 'poll', 'release', 'abandon', 'renew', 'refreshTickets']

function isSlotStore (value: unknown): value is SlotStore {
  if (typeof value !== 'object' || value === null) return false
  const s = value as Record<string, unknown>
  return STORE_METHODS.every(m => typeof s[m] === 'function')
}

export function isRedisClient (value: unknown): value is RedisClientLike {
  return typeof value === 'object' && value !== null && typeof (value as RedisClientLike).defineCommand === 'function'
}

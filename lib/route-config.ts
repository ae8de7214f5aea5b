/**
 * Declarative slots, the @fastify/rate-limit way: a route with `config: { slots: [...] }`
 * takes them in a preHandler and releases them like any other slot. Each field is a value or
 * a function of the request. Checked when the route is registered. Two or more slots are
 * taken all at once or none (acquireSlots), under options merged from every entry.
 */
import type { FastifyRequest, RouteOptions } from 'fastify'
import { checkWeight, resolveCallSettings, type AcquireOptions, type ResolvedOptions } from './options'
import type { ProtocolName } from './protocols'
import { toSubject, validateId, validateMax, validateType } from './subject'

type PerRequest<T> = T | ((request: FastifyRequest) => T)

export interface RouteSlot {
  type: PerRequest<string>
  id: PerRequest<string | number>
  max: PerRequest<number>
  stream?: PerRequest<boolean>
  maxWaitMs?: number
  maxWaiters?: number
  fair?: boolean
  protocol?: ProtocolName
  failFast?: boolean
  priority?: PerRequest<number>
  weight?: PerRequest<number>
}

const FIELDS = new Set(['type', 'id', 'max', 'stream', 'maxWaitMs', 'maxWaiters', 'fair', 'protocol', 'failFast', 'priority', 'weight'])

function resolve<T> (value: PerRequest<T>, request: FastifyRequest): T {
  return typeof value === 'function' ? (value as (request: FastifyRequest) => T)(request) : value
}

function routeError (route: RouteOptions, index: number | undefined, problem: string): TypeError {
  return new TypeError(`fastify-slots: route ${String(route.method)} ${route.url} config.slots${index === undefined ? '' : `[${index}]`} ${problem}`)
}

/** A field's value when it is not a function of the request (those are checked per request). */
function staticValue (value: unknown): unknown {
  return typeof value === 'function' ? undefined : value
}

/** A route slot as taken per request: its per-call options built once, at registration. */
export interface CompiledRouteSlot {
  type: PerRequest<string>
  id: PerRequest<string | number>
  max: PerRequest<number>
  /** The options of every request, or (a per-request `stream`, `priority` or `weight`) a function building them. */
  options: AcquireOptions | ((request: FastifyRequest) => AcquireOptions)
}

/** `waits`: the plugin's maxWaitMs and maxWaiters, for an entry of a set that sets neither (the set takes the least). */
function compile (slot: RouteSlot, waits?: Pick<AcquireOptions, 'maxWaitMs' | 'maxWaiters'>): CompiledRouteSlot {
  const options: AcquireOptions = { ...waits }
  if (slot.maxWaitMs !== undefined) options.maxWaitMs = slot.maxWaitMs
  if (slot.maxWaiters !== undefined) options.maxWaiters = slot.maxWaiters
  if (slot.fair !== undefined) options.fair = slot.fair
  if (slot.protocol !== undefined) options.protocol = slot.protocol
  if (slot.failFast !== undefined) options.failFast = slot.failFast
  const { stream = false, priority, weight } = slot
  if (typeof priority === 'number') options.priority = priority
  if (typeof weight === 'number') options.weight = weight
  return {
    type: slot.type,
    id: slot.id,
    max: slot.max,
    // Per-request fields make the options per request; otherwise one object serves every request.
    options: typeof stream === 'function' || typeof priority === 'function' || typeof weight === 'function'
      ? request => {
        const built: AcquireOptions = { ...options, stream: resolve(stream, request) }
        if (priority !== undefined) built.priority = resolve(priority, request)
        if (weight !== undefined) built.weight = resolve(weight, request)
        return built
      }
      : { ...options, stream }
  }
}

/** Validates a route's `config.slots` (static values fully, functions by kind) and compiles them. */
export function routeSlots (route: RouteOptions, plugin: ResolvedOptions): CompiledRouteSlot[] | undefined {
  const slots = (route.config as { slots?: unknown } | undefined)?.slots
  if (slots === undefined) return undefined
  if (!Array.isArray(slots)) throw routeError(route, undefined, 'must be an array: config: { slots: [{ type, id, max }] }')
  slots.forEach((slot: unknown, index) => {
    if (typeof slot !== 'object' || slot === null) throw routeError(route, index, 'must be an object { type, id, max }')
    const s = slot as Record<string, unknown>
    for (const key of Object.keys(s)) {
      if (!FIELDS.has(key)) throw routeError(route, index, `has an unknown field "${key}"`)
    }
    for (const key of ['type', 'id', 'max']) {
      if (s[key] === undefined) throw routeError(route, index, `needs "${key}" (a value or a function of the request)`)
    }
    try {
      // Static values fail now, at registration, with the same checks acquireSlot makes.
      if (typeof s.type !== 'function') validateType(s.type)
      if (typeof s.id !== 'function') validateId(s.id)
      if (typeof s.max !== 'function') validateMax(s.max)
      const { maxWaitMs, maxWaiters, fair, protocol, failFast } = s
      const settings = resolveCallSettings({ maxWaitMs, maxWaiters, fair, protocol, failFast, priority: staticValue(s.priority), weight: staticValue(s.weight) }, plugin)
      if (typeof s.max === 'number') checkWeight(settings.weight, s.max)
    } catch (err) {
      throw routeError(route, index, (err as Error).message.replace(/^acquireSlot: /, ''))
    }
  })
  // Taken together, two entries for one subject would count against each other: refused now
  // when their type and id are static (per request, acquireSlots refuses it).
  const statics = new Map<string, number>()
  slots.forEach((slot: RouteSlot, index) => {
    if (typeof slot.type === 'function' || typeof slot.id === 'function') return
    const tag = toSubject(slot.type, slot.id).tag
    const earlier = statics.get(tag)
    if (earlier !== undefined) throw routeError(route, index, `takes ${slot.type} ${String(slot.id)} again (as config.slots[${earlier}] does): a subject is taken once`)
    statics.set(tag, index)
  })
  const waits = slots.length > 1 ? { maxWaitMs: plugin.maxWaitMs, maxWaiters: plugin.maxWaiters } : undefined
  return (slots as RouteSlot[]).map(slot => compile(slot, waits))
}

/**
 * Takes the route's slots: one with acquireSlot, several with acquireSlots, whose one wait
 * follows the strictest of the entries' options (the shortest maxWaitMs and maxWaiters, fair,
 * failFast or stream if any entry asks, the highest priority, the first protocol given).
 */
export async function takeRouteSlots (request: FastifyRequest, slots: readonly CompiledRouteSlot[]): Promise<void> {
  if (slots.length === 1) {
    const [slot] = slots
    await request.acquireSlot(resolve(slot.type, request), resolve(slot.id, request), resolve(slot.max, request), resolve(slot.options, request))
    return
  }
  const merged: AcquireOptions = {}
  const subjects = slots.map(slot => {
    const { weight, ...options } = resolve(slot.options, request)
    mergeOptions(merged, options)
    return { type: resolve(slot.type, request), id: resolve(slot.id, request), max: resolve(slot.max, request), weight }
  })
  await request.acquireSlots(subjects, merged)
}

function mergeOptions (into: AcquireOptions, options: AcquireOptions): void {
  const least = (a: number | undefined, b: number | undefined): number | undefined => a === undefined ? b : b === undefined ? a : Math.min(a, b)
  into.maxWaitMs = least(into.maxWaitMs, options.maxWaitMs)
  into.maxWaiters = least(into.maxWaiters, options.maxWaiters)
  if (options.fair === true) into.fair = true
  if (options.failFast === true) into.failFast = true
  if (options.stream === true) into.stream = true
  if (options.priority !== undefined) into.priority = Math.max(into.priority ?? 0, options.priority)
  into.protocol ??= options.protocol
  for (const key of Object.keys(into) as Array<keyof AcquireOptions>) if (into[key] === undefined) delete into[key]
}

/**
 * No silent misconfiguration: the ways an app can end up with no limit, or limits that are
 * not shared between instances, while everything seems to work.
 * - @fastify/redis registered after fastify-slots: the plugin already chose the memory store
 *   (per process), so slots would silently stop being shared. Refused when the app is ready.
 * - A route with `config.slots` registered before fastify-slots: the plugin never saw it, so
 *   it would be served with no limit. Refused when it is requested (hooks still reach it).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'

const kWired = Symbol('fastify-slots.wired')

/** Marks a route config whose slots fastify-slots takes. */
export function markWired (config: object): void {
  (config as Record<symbol, boolean>)[kWired] = true
}

/** An error when the request's route declares slots that nothing takes; undefined otherwise. */
export function unwiredRoute (request: FastifyRequest): Error | undefined {
  const config = request.routeOptions.config as { slots?: unknown, [kWired]?: boolean } | undefined
  if (config?.slots === undefined || config[kWired] === true) return undefined
  return new Error(`fastify-slots: route ${request.routeOptions.method} ${request.routeOptions.url} declares config.slots but was registered before fastify-slots, so nothing would limit it: register fastify-slots first`)
}

/** Throws when @fastify/redis appeared after the plugin picked the memory store by default. */
export function checkRedisOrder (fastify: FastifyInstance, choseMemoryByDefault: boolean): void {
  if (choseMemoryByDefault && fastify.hasDecorator('redis')) {
    throw new Error('fastify-slots: @fastify/redis was registered after fastify-slots, which had already chosen the in-process memory store (slots would not be shared between instances): register @fastify/redis first, or pass store: \'memory\' to keep per-process slots')
  }
}

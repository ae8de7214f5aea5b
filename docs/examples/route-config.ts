/**
 * Declarative slots: `config: { slots: [...] }` on a route takes them before the handler (in
 * a preHandler that runs after the route's own hooks), several of them all at once or none
 * (see docs/slot-sets.md), and releases them when the response ends. Each of type, id, max
 * and stream is a value or a function of the request.
 */
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyRedis from '@fastify/redis'
import fastifySlots from '../../lib'

declare module 'fastify' {
  interface FastifyRequest {
    /** Who is calling, set by the onRequest hook below. */
    caller?: { userId: string, limit: number }
  }
}

/** API key → user and that user's concurrency limit (a database in real life). */
const API_KEYS: Record<string, { userId: string, limit: number }> = {
  'key-alice': { userId: 'alice', limit: 2 },
  'key-bob': { userId: 'bob', limit: 1 }
}

export interface RouteConfigOptions {
  redisUrl?: string
  slots?: fastifySlots.FastifySlotsOptions
  upstreamMs?: number
}

export async function buildApp ({ redisUrl, slots = {}, upstreamMs = 100 }: RouteConfigOptions = {}): Promise<FastifyInstance> {
  const app = Fastify()
  if (redisUrl !== undefined) await app.register(fastifyRedis, { url: redisUrl })
  // Register fastify-slots before the routes that use config.slots.
  await app.register(fastifySlots, slots)

  app.addHook('onRequest', async (request, reply) => {
    request.caller = API_KEYS[String(request.headers['x-api-key'])]
    if (request.caller === undefined) return reply.code(401).send({ error: 'unknown x-api-key' })
  })

  app.post('/v1/messages', {
    config: {
      slots: [
        // Per request: the caller's own limit.
        { type: 'user', id: request => request.caller!.userId, max: request => request.caller!.limit },
        // Static: one upstream account, 10 in flight. Both slots are taken at once or not at
        // all, and the route waits at most 5 s for them (the shortest maxWaitMs of its entries).
        { type: 'account', id: 'acct-1', max: 10, maxWaitMs: 5000 }
      ]
    }
  }, async (request) => {
    // Both slots are held here; a request that could not get them never reaches the handler.
    await new Promise(resolve => setTimeout(resolve, upstreamMs))
    return { user: request.caller!.userId }
  })
  return app
}

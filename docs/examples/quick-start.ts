/**
 * Quick start: at most 3 requests in flight per user and 10 per upstream account. Slots live
 * in Redis when `redisUrl` is given (through @fastify/redis), in process memory otherwise.
 */
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyRedis from '@fastify/redis'
// In your app: import fastifySlots from 'fastify-slots'
import fastifySlots from '../../lib'

export interface QuickStartOptions {
  /** Share slots between processes through this Redis; the memory store when absent. */
  redisUrl?: string
  /** fastify-slots options (docs/options.md); all optional. */
  slots?: fastifySlots.FastifySlotsOptions
  /** How long the pretend upstream call takes. */
  upstreamMs?: number
}

export async function buildApp ({ redisUrl, slots = {}, upstreamMs = 100 }: QuickStartOptions = {}): Promise<FastifyInstance> {
  const app = Fastify()
  // Register @fastify/redis first: fastify-slots then finds `fastify.redis` and uses Redis.
  if (redisUrl !== undefined) await app.register(fastifyRedis, { url: redisUrl })
  await app.register(fastifySlots, slots)

  app.post('/v1/messages', async (request, reply) => {
    const userId = request.headers['x-user-id']
    if (typeof userId !== 'string') return reply.code(401).send({ error: 'missing x-user-id' })

    // The user's limit first, then the upstream account's: the request holds both.
    const user = await request.acquireSlot('user', userId, 3)
    const account = await request.acquireSlot('account', 'acct-1', 10)

    await new Promise(resolve => setTimeout(resolve, upstreamMs)) // the upstream call
    // No release here: both slots are given back when the response ends, however it ends.
    return { user: userId, waitedMs: user.waitedMs + account.waitedMs }
  })
  return app
}

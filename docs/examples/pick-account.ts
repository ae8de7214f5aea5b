/**
 * Load-aware scheduling, the way AI gateways pick an upstream account: read the holders and
 * waiters of every candidate in one round trip, take the least loaded one's slot.
 */
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyRedis from '@fastify/redis'
import fastifySlots from '../../lib'

/** Upstream accounts and how many requests each may have in flight. */
export const ACCOUNTS = [
  { id: 'acct-1', max: 2 },
  { id: 'acct-2', max: 4 }
]

export interface PickAccountOptions {
  redisUrl?: string
  slots?: fastifySlots.FastifySlotsOptions
  upstreamMs?: number
}

export async function buildApp ({ redisUrl, slots = {}, upstreamMs = 100 }: PickAccountOptions = {}): Promise<FastifyInstance> {
  const app = Fastify()
  if (redisUrl !== undefined) await app.register(fastifyRedis, { url: redisUrl })
  await app.register(fastifySlots, slots)

  app.post('/v1/messages', async (request) => {
    await request.acquireSlot('user', String(request.headers['x-user-id']), 3)
    // Lowest (held + waiting) / max under 100 %; null when every account is full, and then
    // this request queues for the first one.
    const account = await app.slots.leastLoaded('account', ACCOUNTS) ?? ACCOUNTS[0]
    // Another request may have taken the last free slot since the read: acquireSlot waits.
    await request.acquireSlot('account', account.id, account.max)
    await new Promise(resolve => setTimeout(resolve, upstreamMs))
    return { account: account.id }
  })

  // What a dashboard shows: [{ id, held, waiting }, ...] across every process.
  app.get('/accounts', async () => await app.slots.usage('account', ACCOUNTS.map(a => a.id)))
  return app
}

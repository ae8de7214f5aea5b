/**
 * Weighted slots: an upstream account can run 8 units of work at once, and a long-context
 * request costs more of them than a short one.
 */
import Fastify, { type FastifyInstance } from 'fastify'
import fastifySlots from '../../lib'

/** Units of the account's capacity. */
export const ACCOUNT_UNITS = 8

/** A request's weight: 1 unit per 32k tokens of context, at least 1, at most the account's capacity. */
export function weightOf (contextTokens: number): number {
  return Math.min(ACCOUNT_UNITS, Math.max(1, Math.ceil(contextTokens / 32_000)))
}

export async function buildApp (slots: fastifySlots.FastifySlotsOptions = {}): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(fastifySlots, slots)

  app.post<{ Body: { contextTokens?: number } }>('/v1/messages', async (request) => {
    const weight = weightOf(request.body?.contextTokens ?? 0)
    const slot = await request.acquireSlot('account', 'acct-1', ACCOUNT_UNITS, { weight })
    await new Promise(resolve => setTimeout(resolve, 50)) // the upstream call
    return { weight, waitedMs: slot.waitedMs }
  })

  // held counts units: 5 means, say, one 128k-token request and one short one.
  app.get('/account', async () => (await app.slots.usage('account', ['acct-1']))[0])
  return app
}

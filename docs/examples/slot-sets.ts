/**
 * All-or-nothing slots: a gateway request takes its user's slot and its upstream account's
 * at once, or neither. While the account is busy the request holds no user slot, so the
 * user's other requests (to other accounts) are not blocked by it.
 */
import Fastify, { type FastifyInstance } from 'fastify'
import fastifySlots from '../../lib'

/** Each user may have 3 requests in flight; each upstream account 2. */
export const USER_LIMIT = 3
export const ACCOUNT_LIMIT = 2

export async function buildApp (slots: fastifySlots.FastifySlotsOptions = {}, upstreamMs = 100): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(fastifySlots, slots)

  app.post<{ Headers: { 'x-user-id': string }, Body: { account: string } }>('/v1/messages', async (request) => {
    const [user, account] = await request.acquireSlots([
      { type: 'user', id: request.headers['x-user-id'], max: USER_LIMIT },
      { type: 'account', id: request.body.account, max: ACCOUNT_LIMIT }
    ], { maxWaitMs: 10_000 })
    await new Promise(resolve => setTimeout(resolve, upstreamMs)) // the upstream call
    return { user: user.id, account: account.id, waitedMs: account.waitedMs }
  })

  // The same, declared on the route: config.slots with two entries takes both at once.
  app.post<{ Headers: { 'x-user-id': string } }>('/v1/batch', {
    config: {
      slots: [
        { type: 'user', id: request => String(request.headers['x-user-id']), max: USER_LIMIT },
        { type: 'account', id: 'batch-pool', max: ACCOUNT_LIMIT, weight: 2 }
      ]
    }
  }, async () => {
    await new Promise(resolve => setTimeout(resolve, upstreamMs))
    return 'done'
  })
  return app
}

/**
 * Priority classes: paying users' requests wait ahead of free ones for the same upstream
 * account, and a free request is never passed for long.
 */
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify'
import fastifySlots from '../../lib'

/** The class of a request: 1 for a paying plan, 0 otherwise. */
const tier = (request: FastifyRequest): number => request.headers['x-plan'] === 'pro' ? 1 : 0

export async function buildApp (slots: fastifySlots.FastifySlotsOptions = {}): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(fastifySlots, {
    // A waiting free request is passed only by pro requests that arrive less than 20 s after
    // it: under any load, it is served once it has waited 20 s plus what was ahead of it then.
    priorityStepMs: 20_000,
    ...slots
  })

  app.post('/v1/messages', {
    config: { slots: [{ type: 'account', id: 'acct-1', max: 2, priority: tier }] }
  }, async () => {
    await new Promise(resolve => setTimeout(resolve, 100)) // the upstream call
    return { type: 'message', content: [] }
  })

  // Waiting requests per class: { "0": free, "1": pro }.
  app.get('/queue', async () => (await app.slots.usage('account', ['acct-1']))[0].waitingByPriority)
  return app
}

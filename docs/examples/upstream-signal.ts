/**
 * Stop paying for work whose slot is gone: pass the slot's signal to the upstream call it
 * guards. When the slot ends first (the client left, so the request's slots were released;
 * or its lease lapsed while the process stalled, so another request may hold it now), the
 * upstream request is aborted with the reason.
 */
import Fastify, { type FastifyInstance } from 'fastify'
// In your app: import fastifySlots from 'fastify-slots'
import fastifySlots from '../../lib'

export async function buildApp ({ upstreamUrl }: { upstreamUrl: string }): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(fastifySlots)

  app.post('/v1/messages', async (request) => {
    const slot = await request.acquireSlot('account', 'acct-1', 10)
    // Aborted (reason: a SlotError, SLOT_RELEASED or SLOT_LOST) if the slot ends first.
    const upstream = await fetch(upstreamUrl, { method: 'POST', body: JSON.stringify(request.body), signal: slot.signal })
    return await upstream.json()
  })
  return app
}

/**
 * A protocol fastify-slots does not know: your own keepalive frame and your own error frame,
 * written into the stream when acquisition fails after the response was committed as SSE.
 */
import Fastify, { type FastifyInstance } from 'fastify'
import fastifySlots from '../../lib'

export interface StreamErrorFrameOptions {
  pingMs?: number
  slots?: fastifySlots.FastifySlotsOptions
}

export async function buildApp ({ pingMs = 10_000, slots = {} }: StreamErrorFrameOptions = {}): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(fastifySlots, {
    ping: { intervalMs: pingMs, frame: 'event: keepalive\ndata: {}\n\n' }, // must end in a blank line
    streamErrorFrame: (error, request) => `event: failed\ndata: ${JSON.stringify({
      status: error.statusCode, // 429, 499, 503 or 500, as the JSON answer would have had
      code: error.code,
      message: error.message,
      requestId: request.id
    })}\n\n`,
    ...slots
  })

  app.get('/events', async (request, reply) => {
    try {
      await request.acquireSlot('user', String(request.headers['x-user-id']), 1, { stream: true })
    } catch (err) {
      if ((err as fastifySlots.SlotError).streamed) return
      throw err
    }
    reply.hijack()
    if (!request.slotStreamStarted) reply.raw.writeHead(200, { 'content-type': 'text/event-stream' })
    reply.raw.end('event: done\ndata: {}\n\n')
  })
  return app
}

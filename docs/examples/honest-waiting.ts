/**
 * Honest waiting: a waiting request learns where it stands and how long that should take, a
 * request that would wait for nothing is told so at once, and a 429's Retry-After says when
 * a retry is expected to find room.
 */
import Fastify, { type FastifyInstance } from 'fastify'
import fastifySlots from '../../lib'

/** How many requests each upstream account may have in flight. */
export const ACCOUNT_LIMIT = 2

export async function buildApp (slots: fastifySlots.FastifySlotsOptions = {}, pingMs = 5000): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(fastifySlots, {
    protocol: 'openai-chat',
    maxWaitMs: 10_000,
    failFast: true, // 429 SLOT_WAIT_TOO_LONG at once when the expected wait outlasts maxWaitMs
    maxRetryAfterSeconds: 30, // Retry-After follows the observed holds, up to 30 s
    ping: {
      intervalMs: pingMs,
      // OpenAI Chat streams allow SSE comments: tell the client where it stands.
      frame: ({ position, waitedMs, expectedWaitMs }) =>
        `: waiting ${Math.floor(waitedMs / 1000)} s, place ${position ?? '?'} in line` +
        (expectedWaitMs === null ? '' : `, about ${Math.ceil(expectedWaitMs / 1000)} s expected`) + '\n\n'
    },
    ...slots
  })

  // Each request that starts waiting: its place and expected wait (a log line, or a metric).
  app.slots.on('queued', ({ type, id, position, expectedWaitMs }) => {
    app.log.info({ type, id, position, expectedWaitMs }, 'waiting for a slot')
  })

  app.post<{ Body: { stream?: boolean, upstreamMs?: number } }>('/v1/chat/completions', async (request, reply) => {
    const stream = request.body?.stream === true
    try {
      await request.acquireSlot('account', 'acct-1', ACCOUNT_LIMIT, { stream })
    } catch (err) {
      if ((err as fastifySlots.SlotError).streamed) return // the error is already in the stream
      throw err // 429 SLOT_WAIT_TOO_LONG, with Retry-After, as an OpenAI rate-limit error
    }
    await new Promise(resolve => setTimeout(resolve, request.body?.upstreamMs ?? 100)) // the upstream call
    if (!stream) return { object: 'chat.completion', choices: [] }
    reply.hijack()
    if (!request.slotStreamStarted) reply.raw.writeHead(200, { 'content-type': 'text/event-stream' })
    reply.raw.end('data: [DONE]\n\n')
  })

  // For a dashboard: how busy the account is, and how long its oldest waiter has waited.
  app.get('/accounts', async () => await app.slots.usage('account', ['acct-1']))
  return app
}

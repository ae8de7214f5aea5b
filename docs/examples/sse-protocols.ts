/**
 * Streaming routes for the three wire protocols fastify-slots speaks, each with its own
 * keepalive and error frames: Anthropic Messages, OpenAI Chat Completions (both calling
 * `request.acquireSlot`) and OpenAI Responses (declared with route `config.slots`).
 */
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import fastifySlots from '../../lib'

const USER_LIMIT = 2

interface Body { stream?: boolean }

const userOf = (request: FastifyRequest): string => String(request.headers['x-user-id'])
const streams = (request: FastifyRequest): boolean => (request.body as Body | undefined)?.stream === true

/**
 * Takes the caller's slot. False when acquisition failed after fastify-slots had committed
 * the response as SSE: the error frame is already written and the response ended.
 */
async function takeSlot (request: FastifyRequest, protocol: fastifySlots.ProtocolName): Promise<boolean> {
  try {
    await request.acquireSlot('user', userOf(request), USER_LIMIT, { stream: streams(request), protocol })
    return true
  } catch (err) {
    if ((err as fastifySlots.SlotError).streamed) return false
    throw err // not streamed yet: Fastify answers 429, 503, ... as JSON
  }
}

/** From here on the handler writes on reply.raw; the head only if fastify-slots did not. */
function openStream (request: FastifyRequest, reply: FastifyReply): void {
  reply.hijack()
  if (!request.slotStreamStarted) {
    reply.raw.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
  }
}

export async function buildApp (slots: fastifySlots.FastifySlotsOptions = {}): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(fastifySlots, slots)

  // Anthropic Messages: `event: ping` keepalives, an Anthropic `event: error` on failure.
  app.post<{ Body: Body }>('/v1/messages', async (request, reply) => {
    if (!await takeSlot(request, 'anthropic')) return
    if (!streams(request)) return { type: 'message', content: [{ type: 'text', text: 'Hello' }] }
    openStream(request, reply)
    reply.raw.write('event: content_block_delta\ndata: {"type":"content_block_delta","delta":{"type":"text_delta","text":"Hello"}}\n\n')
    reply.raw.end('event: message_stop\ndata: {"type":"message_stop"}\n\n')
  })

  // OpenAI Chat Completions: comment keepalives, a `data: {"error": ...}` line on failure.
  app.post<{ Body: Body }>('/v1/chat/completions', async (request, reply) => {
    if (!await takeSlot(request, 'openai-chat')) return
    if (!streams(request)) return { object: 'chat.completion', choices: [{ message: { role: 'assistant', content: 'Hello' } }] }
    openStream(request, reply)
    reply.raw.write('data: {"object":"chat.completion.chunk","choices":[{"delta":{"content":"Hello"}}]}\n\n')
    reply.raw.end('data: [DONE]\n\n')
  })

  // OpenAI Responses, declared: comment keepalives, `response.created` then `response.failed` on failure.
  // A request that fails after its stream was committed never reaches the handler.
  app.post<{ Body: Body }>('/v1/responses', {
    config: { slots: [{ type: 'user', id: userOf, max: USER_LIMIT, stream: streams, protocol: 'openai-responses' }] }
  }, async (request, reply) => {
    if (!streams(request)) return { object: 'response', status: 'completed' }
    openStream(request, reply)
    reply.raw.write('event: response.output_text.delta\ndata: {"type":"response.output_text.delta","delta":"Hello"}\n\n')
    reply.raw.end('event: response.completed\ndata: {"type":"response.completed"}\n\n')
  })
  return app
}

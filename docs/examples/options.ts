/**
 * Every option of fastify-slots, spelled out at its default, and every per-call option of
 * `request.acquireSlot`. `store` and `redis` are left out: by default the plugin uses
 * `fastify.redis` when @fastify/redis is registered, and the memory store otherwise.
 */
import Fastify, { type FastifyInstance } from 'fastify'
import fastifySlots, { pingFrames, protocols } from '../../lib'

export const defaults: fastifySlots.FastifySlotsOptions = {
  prefix: 'slots', // keys: slots:{<type>:<id>}:holders, :tickets, :queue
  leaseMs: 30_000, // a held slot expires unless renewed; renewed every leaseMs / 3
  maxWaitMs: 30_000, // how long a request may wait for a slot; 0: never wait
  maxWaiters: 20, // requests allowed to wait per subject, beyond the holders
  backoff: { initialMs: 100, multiplier: 1.5, maxMs: 2000, jitter: 0.2 }, // the head waiter's polls
  ping: { intervalMs: 15_000, frame: pingFrames.comment }, // SSE keepalive while a stream waits
  onStoreError: 'fail-closed', // a store failure answers 503; 'fail-open' proceeds without a slot
  storeTimeoutMs: 1000, // upper bound of every store call
  protocol: 'generic', // the wire format of pings, of errors in a committed stream and of JSON errors
  streamErrorFrame: protocols.generic.errorFrame, // (error, request) => the error frame
  fair: false, // true: strict first come, first served across processes
  usageCacheMs: 0, // how long fastify.slots.usage() answers from memory
  failFast: false, // true: 429 SLOT_WAIT_TOO_LONG at once when the expected wait outlasts maxWaitMs
  maxRetryAfterSeconds: 60, // upper clamp of a 429's Retry-After, estimated from observed holds
  priorityStepMs: 86_400_000, // a class above waits as if it came this much earlier: a day is strict
  hashTag: undefined // Redis Cluster: (type, id) => a hash tag shared by subjects taken together
}

export async function buildApp (options: fastifySlots.FastifySlotsOptions = defaults): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(fastifySlots, options)

  app.post<{ Body: { stream?: boolean } }>('/v1/chat/completions', async (request, reply) => {
    const stream = request.body?.stream === true
    try {
      await request.acquireSlot('user', String(request.headers['x-user-id']), 3, {
        stream, // ping the client while it waits (and commit the response as SSE)
        maxWaitMs: 10_000, // this route gives up sooner than the plugin default
        maxWaiters: 5, // and lets fewer requests queue
        ping: { intervalMs: 5000 }, // the frame stays the protocol's
        fair: true, // strict FIFO for this subject, across processes
        protocol: 'openai-chat' // OpenAI Chat frames for pings and stream errors, OpenAI JSON errors
      })
    } catch (err) {
      if ((err as fastifySlots.SlotError).streamed) return // the error is already in the stream
      throw err
    }
    if (!stream) return { object: 'chat.completion', choices: [] }
    reply.hijack() // from here on the handler writes on reply.raw
    if (!request.slotStreamStarted) reply.raw.writeHead(200, { 'content-type': 'text/event-stream' })
    reply.raw.end('data: [DONE]\n\n')
  })
  return app
}

/**
 * A small AI API gateway on fastify-slots: per-user and per-account concurrency limits in
 * front of a fake streaming upstream. Uses Redis when REDIS_URL is set, the memory store
 * otherwise. Run it with `npm start` and try the curl lines it prints.
 */
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyRedis from '@fastify/redis'
import fastifySlots, { pingFrames } from '../../lib'

/** API key → user and that user's concurrency limit. */
const USERS: Record<string, { id: string, limit: number }> = {
  'key-alice': { id: 'alice', limit: 2 },
  'key-bob': { id: 'bob', limit: 1 }
}
/** Upstream accounts, each allowing 3 requests in flight. */
const ACCOUNTS = ['acct-1', 'acct-2']
const ACCOUNT_LIMIT = 3

interface MessageBody { prompt?: string, stream?: boolean, tokens?: number }

export interface GatewayOptions {
  redisUrl?: string
  /** Delay between fake upstream tokens. */
  tokenMs?: number
  /** Keepalive interval while a streaming request waits. */
  pingMs?: number
  logger?: boolean
}

export async function buildGateway ({ redisUrl, tokenMs = 200, pingMs = 2000, logger = false }: GatewayOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({ logger })
  if (redisUrl !== undefined) await app.register(fastifyRedis, { url: redisUrl })
  await app.register(fastifySlots, {
    prefix: 'demo-gateway',
    maxWaitMs: 20_000,
    ping: { intervalMs: pingMs, frame: pingFrames.anthropic }
  })

  let nextAccount = 0
  app.post<{ Body: MessageBody }>('/v1/messages', async (request, reply) => {
    const user = USERS[String(request.headers['x-api-key'])]
    if (user === undefined) return reply.code(401).send({ error: 'unknown x-api-key' })
    const stream = request.body?.stream === true
    const tokens = Math.min(Math.max(Number(request.body?.tokens ?? 5), 1), 50)
    try {
      // The user's limit first, then the upstream account's: a request holds both.
      await request.acquireSlot('user', user.id, user.limit, { stream })
      const account = ACCOUNTS[nextAccount++ % ACCOUNTS.length]
      await request.acquireSlot('account', account, ACCOUNT_LIMIT, { stream })
    } catch (err) {
      // Once the plugin committed the SSE stream it already wrote the error event and ended it.
      if ((err as fastifySlots.SlotError).streamed) return
      throw err
    }

    const words = Array.from({ length: tokens }, (_, i) => `token${i + 1}`)
    if (!stream) {
      await new Promise(resolve => setTimeout(resolve, tokenMs * tokens))
      return { content: words.join(' ') }
    }
    if (!request.slotStreamStarted) {
      reply.hijack()
      reply.raw.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
    }
    for (const word of words) {
      if (reply.raw.destroyed) return
      reply.raw.write(`event: content_block_delta\ndata: ${JSON.stringify({ type: 'content_block_delta', text: word })}\n\n`)
      await new Promise(resolve => setTimeout(resolve, tokenMs))
    }
    reply.raw.end('event: message_stop\ndata: {"type":"message_stop"}\n\n')
  })
  return app
}

async function main (): Promise<void> {
  const port = Number(process.env.PORT ?? 3000)
  const app = await buildGateway({ redisUrl: process.env.REDIS_URL, logger: true })
  await app.listen({ port, host: '127.0.0.1' })
  const base = `http://127.0.0.1:${port}`
  console.log(`
fastify-slots demo gateway on ${base} (store: ${process.env.REDIS_URL === undefined ? 'memory' : 'redis ' + process.env.REDIS_URL})
alice may have 2 requests in flight, bob 1; each upstream account 3.

  # one request
  curl -s ${base}/v1/messages -H 'x-api-key: key-alice' -H 'content-type: application/json' -d '{"prompt":"hi"}'
  # a stream: tokens arrive as SSE events
  curl -sN ${base}/v1/messages -H 'x-api-key: key-alice' -H 'content-type: application/json' -d '{"stream":true,"tokens":10}'
  # bob's limit is 1: the second request waits (and gets pings while it streams)
  for i in 1 2; do curl -sN ${base}/v1/messages -H 'x-api-key: key-bob' -H 'content-type: application/json' -d '{"stream":true,"tokens":20}' & done; wait
`)
}

if (require.main === module) {
  main().catch(err => {
    console.error(err)
    process.exit(1)
  })
}

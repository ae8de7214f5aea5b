/**
 * A small AI API gateway on fastify-slots: per-user and per-account concurrency limits in
 * front of a fake streaming upstream that speaks the Anthropic Messages API (its events, its
 * pings while a stream waits, its error bodies). Uses Redis when REDIS_URL is set, the memory
 * store otherwise; listens on PORT (default 3000). Run it with `npm start` and try the curl
 * lines it prints; Ctrl-C closes it cleanly, giving back every slot it holds.
 */
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyRedis from '@fastify/redis'
import fastifySlots from '../../lib'

/** API key → user and that user's concurrency limit. */
const USERS: Record<string, { id: string, limit: number }> = {
  'key-alice': { id: 'alice', limit: 2 },
  'key-bob': { id: 'bob', limit: 1 }
}
/** Upstream accounts, each allowing 3 requests in flight. */
const ACCOUNTS = ['acct-1', 'acct-2']
const ACCOUNT_LIMIT = 3

interface MessageBody { prompt?: string, stream?: boolean, tokens?: number }

/** One SSE event of the Anthropic Messages API. */
const sse = (type: string, data: Record<string, unknown>): string => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`

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
    // Anthropic's `event: ping` while a stream waits, its error event if the wait fails.
    protocol: 'anthropic',
    ping: { intervalMs: pingMs }
  })

  let nextAccount = 0
  app.post<{ Body: MessageBody }>('/v1/messages', async (request, reply) => {
    const user = USERS[String(request.headers['x-api-key'])]
    if (user === undefined) return reply.code(401).send({ error: 'unknown x-api-key' })
    const stream = request.body?.stream === true
    const tokens = Math.min(Math.max(Number(request.body?.tokens ?? 5), 1), 50)
    // `x-no-wait: 1`: answer 429 (with Retry-After) at once instead of waiting for a slot.
    const maxWaitMs = request.headers['x-no-wait'] === '1' ? 0 : undefined
    try {
      // The user's limit and the upstream account's, both at once: a request waiting for a
      // busy account holds none of its user's slots.
      const account = ACCOUNTS[nextAccount++ % ACCOUNTS.length]
      await request.acquireSlots([
        { type: 'user', id: user.id, max: user.limit },
        { type: 'account', id: account, max: ACCOUNT_LIMIT }
      ], { stream, maxWaitMs })
    } catch (err) {
      // Once the plugin committed the SSE stream it already wrote the error event and ended it.
      if ((err as fastifySlots.SlotError).streamed) return
      throw err
    }

    const words = Array.from({ length: tokens }, (_, i) => `token${i + 1}`)
    const message = { id: `msg_demo_${request.id}`, type: 'message', role: 'assistant', model: 'demo', stop_reason: 'end_turn' }
    if (!stream) {
      await new Promise(resolve => setTimeout(resolve, tokenMs * tokens))
      return { ...message, content: [{ type: 'text', text: words.join(' ') }] }
    }
    if (!request.slotStreamStarted) {
      reply.hijack()
      reply.raw.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
    }
    reply.raw.write(sse('message_start', { message: { ...message, content: [], stop_reason: null } }))
    reply.raw.write(sse('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }))
    for (const [i, word] of words.entries()) {
      if (reply.raw.destroyed) return
      reply.raw.write(sse('content_block_delta', { index: 0, delta: { type: 'text_delta', text: i === 0 ? word : ` ${word}` } }))
      await new Promise(resolve => setTimeout(resolve, tokenMs))
    }
    reply.raw.write(sse('content_block_stop', { index: 0 }))
    reply.raw.write(sse('message_delta', { delta: { stop_reason: 'end_turn' } }))
    reply.raw.end(sse('message_stop', {}))
  })
  return app
}

export async function main (): Promise<void> {
  const port = Number(process.env.PORT ?? 3000)
  const redisUrl = process.env.REDIS_URL === '' ? undefined : process.env.REDIS_URL
  const app = await buildGateway({ redisUrl, logger: true })
  // A restarted demo must not keep a user's slots for a whole lease: close gives them back.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      app.close().then(() => process.exit(0), () => process.exit(1))
    })
  }
  await app.listen({ port, host: '127.0.0.1' })
  const base = `http://127.0.0.1:${port}`
  const post = (key: string, body: string, flags = '-s'): string =>
    `curl ${flags} ${base}/v1/messages -H 'x-api-key: ${key}' -H 'content-type: application/json' -d '${body}'`
  console.log(`
fastify-slots demo gateway on ${base} (PORT=${port}; store: ${redisUrl === undefined ? 'memory' : 'redis ' + redisUrl})
alice may have 2 requests in flight, bob 1; each upstream account 3. Ctrl-C to stop.

  # one request
  ${post('key-alice', '{"prompt":"hi"}')}
  # a stream: tokens arrive as Anthropic SSE events
  ${post('key-alice', '{"stream":true,"tokens":10}', '-sN')}
  # bob's limit is 1: the second stream waits, with event: ping every 2 s, then streams
  for i in 1 2; do ${post('key-bob', '{"stream":true,"tokens":20}', '-iN')} & done; wait
  # bob again while his stream runs, without waiting: 429 with Retry-After and an Anthropic error body
  ${post('key-bob', '{"stream":true,"tokens":20}', '-sN')} > /dev/null & sleep 0.5; ${post('key-bob', '{"prompt":"hi"}', '-i -H "x-no-wait: 1"')}; wait
`)
}

if (require.main === module) {
  main().catch(err => {
    console.error(err)
    process.exit(1)
  })
}

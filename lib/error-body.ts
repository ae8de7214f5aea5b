/**
 * Protocol-shaped JSON errors. A failed acquire that was not streamed is answered by the app's
 * error handler, by default Fastify's `{ statusCode, code, error, message }`. The official SDKs
 * read their API's own shape instead (OpenAI's `{ error: { message, type, param, code } }`,
 * Anthropic's `{ type: 'error', error: { type, message } }`), so for those protocols the
 * default body is swapped for the protocol's in onSend. The app's error handler is never
 * replaced: a body it shaped itself, or any other error's, is left alone; status and headers
 * (Retry-After) are never touched.
 */
import { STATUS_CODES } from 'node:http'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { SlotError } from './errors'
import { errorBody, protocols, type ProtocolName } from './protocols'

interface Failure { error: SlotError, protocol: ProtocolName }

/** The last acquire failure of each request that was answered as JSON, not in a stream. */
const failures = new WeakMap<FastifyRequest, Failure>()

/** The protocol of one acquireSlot call: its own (when valid), else the plugin's. */
export function callProtocol (callOptions: unknown, plugin: ProtocolName): ProtocolName {
  const protocol = (callOptions as { protocol?: unknown } | null | undefined)?.protocol
  return typeof protocol === 'string' && Object.hasOwn(protocols, protocol) ? protocol as ProtocolName : plugin
}

/** Notes an acquireSlot rejection so onSend can shape its default error body. */
export function rememberFailure (request: FastifyRequest, err: unknown, protocol: ProtocolName): void {
  if (err instanceof SlotError && !err.streamed) failures.set(request, { error: err, protocol })
}

/** True when `payload` is exactly what Fastify's default error handler answers for `error`. */
function isDefaultErrorBody (payload: unknown, reply: FastifyReply, error: SlotError): boolean {
  if (typeof payload !== 'string' || reply.statusCode !== error.statusCode) return false
  if (!/^application\/json\b/.test(String(reply.getHeader('content-type') ?? ''))) return false
  let body: unknown
  try {
    body = JSON.parse(payload)
  } catch {
    return false
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return false
  const b = body as Record<string, unknown>
  const keys = Object.keys(b).sort().join()
  return (keys === 'code,error,message,statusCode' || keys === 'code,message,statusCode') &&
    b.statusCode === error.statusCode && b.code === error.code && b.message === error.message &&
    b.error === STATUS_CODES[error.statusCode]
}

/** onSend: replaces Fastify's default body of a remembered SlotError with the protocol's. */
export function shapeErrorBody (request: FastifyRequest, reply: FastifyReply, payload: unknown, done: (err: null, payload: unknown) => void): void {
  const failure = failures.get(request)
  if (failure === undefined || failure.protocol === 'generic' || !isDefaultErrorBody(payload, reply, failure.error)) {
    done(null, payload)
    return
  }
  failures.delete(request)
  done(null, JSON.stringify(errorBody(failure.protocol, failure.error)))
}

/**
 * What gateways actually speak. Once a waiting stream was committed, its keepalives and its
 * error must be frames the client's SDK understands: a generic `event: error` makes some
 * clients report a broken stream instead of a rate limit (Codex, on OpenAI Responses, says
 * "stream closed before response.completed"). Select one per plugin or per call.
 */
import type { SlotError } from './errors'

export interface StreamProtocol {
  /** One keepalive frame. */
  ping: string
  /** The frame that tells the client acquisition failed. */
  errorFrame: (error: SlotError) => string
}

/** An SSE comment: ignored by every SSE client, so it keeps any stream alive. */
const COMMENT_PING = ': ping\n\n'

/** Ping frames to pass as `ping.frame`. */
export const pingFrames = Object.freeze({
  comment: COMMENT_PING,
  /** The seed's Claude/Anthropic format (the `anthropic` protocol also names the event). */
  anthropic: 'data: {"type": "ping"}\n\n'
})

/** The error classes of each protocol, by what went wrong. */
function kind (error: SlotError): 'rate_limit' | 'overloaded' | 'internal' {
  if (error.statusCode === 429) return 'rate_limit'
  if (error.statusCode === 503) return 'overloaded'
  return 'internal'
}

const event = (name: string | undefined, data: unknown): string =>
  `${name === undefined ? '' : `event: ${name}\n`}data: ${JSON.stringify(data)}\n\n`

export const protocols = Object.freeze({
  /** SSE comment pings; `event: error` with `{ type, code, message }`. */
  generic: {
    ping: COMMENT_PING,
    errorFrame: (error: SlotError) => event('error', { type: 'error', code: error.code, message: error.message })
  },
  /** Anthropic Messages: `event: ping`, and `event: error` with an Anthropic error object. */
  anthropic: {
    ping: event('ping', { type: 'ping' }),
    errorFrame: (error: SlotError) => event('error', anthropicError(error))
  },
  /** OpenAI Chat Completions: comment pings (the API defines none); a `data:` line with `{ error }`. */
  'openai-chat': {
    ping: COMMENT_PING,
    errorFrame: (error: SlotError) => event(undefined, { error: openAiError(error) })
  },
  /**
   * OpenAI Responses: comment pings; on failure `response.created` then `response.failed`
   * (the same response, sequence numbers 0 and 1), as the API itself reports a failed
   * response. Its SDKs refuse a stream whose first event is not `response.created`, and a
   * generic error event makes some clients report a broken stream instead of a rate limit.
   */
  'openai-responses': {
    ping: COMMENT_PING,
    errorFrame: (error: SlotError) => {
      const response = { id: `resp_slot_${Date.now().toString(36)}`, object: 'response', created_at: Math.floor(Date.now() / 1000) }
      return event('response.created', {
        type: 'response.created',
        sequence_number: 0,
        response: { ...response, status: 'in_progress', error: null, incomplete_details: null, output: [] }
      }) + event('response.failed', {
        type: 'response.failed',
        sequence_number: 1,
        response: { ...response, status: 'failed', error: { code: openAiError(error).code, message: error.message }, incomplete_details: null, output: [] }
      })
    }
  }
} satisfies Record<string, StreamProtocol>)

export type ProtocolName = keyof typeof protocols

function anthropicError (error: SlotError): { type: 'error', error: { type: string, message: string } } {
  return {
    type: 'error',
    error: {
      type: { rate_limit: 'rate_limit_error', overloaded: 'overloaded_error', internal: 'api_error' }[kind(error)],
      message: error.message
    }
  }
}

function openAiError (error: SlotError): { message: string, type: string, param: null, code: string } {
  const k = kind(error)
  return {
    message: error.message,
    type: { rate_limit: 'rate_limit_error', overloaded: 'server_error', internal: 'server_error' }[k],
    param: null,
    code: { rate_limit: 'rate_limit_exceeded', overloaded: 'server_is_overloaded', internal: 'server_error' }[k]
  }
}

/**
 * The JSON body of a failed acquire that was not streamed, in the protocol's API's own error
 * shape (what its SDKs read the message, type and code from); undefined for `generic`, which
 * keeps Fastify's default `{ statusCode, code, error, message }`.
 */
export function errorBody (protocol: ProtocolName, error: SlotError): object | undefined {
  switch (protocol) {
    case 'anthropic': return anthropicError(error)
    case 'openai-chat':
    case 'openai-responses': return { error: openAiError(error) }
    default: return undefined
  }
}

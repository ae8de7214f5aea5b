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
    errorFrame: (error: SlotError) => event('error', {
      type: 'error',
      error: {
        type: { rate_limit: 'rate_limit_error', overloaded: 'overloaded_error', internal: 'api_error' }[kind(error)],
        message: error.message
      }
    })
  },
  /** OpenAI Chat Completions: comment pings (the API defines none); a `data:` line with `{ error }`. */
  'openai-chat': {
    ping: COMMENT_PING,
    errorFrame: (error: SlotError) => event(undefined, { error: openAiError(error) })
  },
  /** OpenAI Responses: comment pings; a `response.failed` event, the only failure its clients accept. */
  'openai-responses': {
    ping: COMMENT_PING,
    errorFrame: (error: SlotError) => event('response.failed', {
      type: 'response.failed',
      sequence_number: 0,
      response: {
        id: `resp_slot_${Date.now().toString(36)}`,
        object: 'response',
        created_at: Math.floor(Date.now() / 1000),
        status: 'failed',
        error: { code: openAiError(error).code, message: error.message },
        output: []
      }
    })
  }
} satisfies Record<string, StreamProtocol>)

export type ProtocolName = keyof typeof protocols

function openAiError (error: SlotError): { message: string, type: string, param: null, code: string } {
  const k = kind(error)
  return {
    message: error.message,
    type: { rate_limit: 'rate_limit_error', overloaded: 'server_error', internal: 'server_error' }[k],
    param: null,
    code: { rate_limit: 'rate_limit_exceeded', overloaded: 'server_is_overloaded', internal: 'server_error' }[k]
  }
}

/**
 * Every failure the plugin reports is a SlotError with a stable `code` and the HTTP status
 * Fastify's default error handler will answer with, so a route that does nothing special
 * still answers correctly (429 with Retry-After, 499, 503 or 500).
 */

/** Why acquireSlot failed. */
export type RejectionCode =
  | 'SLOT_WAIT_TIMEOUT'
  | 'SLOT_QUEUE_FULL'
  | 'SLOT_WAIT_TOO_LONG'
  | 'SLOT_WAIT_ABORTED'
  | 'SLOT_STORE_UNAVAILABLE'
  | 'SLOT_INVALID_ARGUMENT'

/**
 * Every code: the rejections, and why a held slot's `signal` aborted (its lease lapsed, or it
 * was released).
 */
export type SlotErrorCode = RejectionCode | 'SLOT_LOST' | 'SLOT_RELEASED'

const STATUS: Record<SlotErrorCode, number> = {
  SLOT_WAIT_TIMEOUT: 429,
  SLOT_QUEUE_FULL: 429,
  // failFast: the wait expected for its place is longer than the time it may wait.
  SLOT_WAIT_TOO_LONG: 429,
  // 499 is nginx's "client closed request": logged by Fastify at info level, not as an error.
  SLOT_WAIT_ABORTED: 499,
  SLOT_STORE_UNAVAILABLE: 503,
  SLOT_INVALID_ARGUMENT: 500,
  // A handler that rethrows its slot's signal reason: the work stopped for want of a slot.
  SLOT_LOST: 503,
  SLOT_RELEASED: 499
}

export interface SlotErrorDetails {
  slotType?: string
  slotId?: string
  retryAfterSeconds?: number
  cause?: unknown
}

export class SlotError extends Error {
  readonly code: SlotErrorCode
  readonly statusCode: number
  readonly slotType: string | undefined
  readonly slotId: string | undefined
  /** Response headers Fastify's error handler copies onto the reply (Retry-After). */
  readonly headers: Record<string, string> | undefined
  /** True when the response had already been committed as an SSE stream and the error was written into it. */
  streamed = false
  /** How long the call waited before it failed (set when it is reported). */
  waitedMs: number | undefined

  constructor (code: SlotErrorCode, message: string, details: SlotErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause })
    this.name = 'SlotError'
    this.code = code
    this.statusCode = STATUS[code]
    this.slotType = details.slotType
    this.slotId = details.slotId
    this.headers = details.retryAfterSeconds === undefined
      ? undefined
      : { 'retry-after': String(details.retryAfterSeconds) }
    // A limit reached or a client gone is an expected answer, not a fault: logged (by Fastify,
    // at info) with its code, subject and wait, without a stack into the plugin's internals.
    if (EXPECTED.has(code)) this.stack = `${this.name} [${code}]: ${message}`
  }
}

const EXPECTED = new Set<SlotErrorCode>(['SLOT_WAIT_TIMEOUT', 'SLOT_QUEUE_FULL', 'SLOT_WAIT_TOO_LONG', 'SLOT_WAIT_ABORTED', 'SLOT_RELEASED'])

export function invalidArgument (message: string): SlotError {
  return new SlotError('SLOT_INVALID_ARGUMENT', message)
}

/**
 * Registration-time option errors are plain TypeErrors naming the option: they are programmer
 * errors, not HTTP answers. `problem` reads after the name: 'must be ..., got ...'.
 */
export function invalidOption (name: string, problem: string): TypeError {
  return new TypeError(`fastify-slots: option "${name}" ${problem}`)
}

export function describe (value: unknown): string {
  if (typeof value === 'string') {
    return value.length > 40 ? `a string of length ${value.length}` : JSON.stringify(value)
  }
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value)
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  return typeof value === 'object' ? 'an object' : typeof value
}

/** A failure of one subject's acquire; rate-limit answers (429) carry Retry-After. */
export function subjectError (code: SlotErrorCode, message: string, subject: { type: string, id: string }, retryAfterSeconds: number): SlotError {
  return new SlotError(code, message, { slotType: subject.type, slotId: subject.id, retryAfterSeconds: STATUS[code] === 429 ? retryAfterSeconds : undefined })
}

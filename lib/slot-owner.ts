/**
 * Who takes slots: a request (released when it ends) or a caller of `fastify.slots.acquire`
 * outside any request (released by the caller, or on app close).
 */
import type { FastifyBaseLogger } from 'fastify'
import type { SlotErrorCode } from './errors'
import type { PingOptions, StreamErrorFrame, WaitProgress } from './options'
import type { SlotError } from './errors'
import type { HeldSlot } from './slot'

/** An acquisition in progress, which the owner's end stops: it rejects with a SlotError of this code and message. */
export interface Abortable {
  abort (code: SlotErrorCode, message: string): void
}

export interface SlotOwner {
  readonly log: FastifyBaseLogger
  /** No more slots: the request is over. */
  readonly ended: boolean
  /** An acquisition of the owner started: the owner's end aborts it until it settles. */
  addWait (wait: Abortable): void
  /** The acquisition settled. */
  removeWait (wait: Abortable): void
  /** A slot the owner holds from now on: released when the owner ends. */
  hold (slot: HeldSlot): void
  /**
   * Present when the owner is a request that can stream: keeps it alive with SSE pings while it
   * waits (a frame function is given `progress()`; calling `onPing` per frame, `onBroken` when
   * the client can no longer be written to); returns what stops them.
   */
  keepAlive? (ping: PingOptions, progress: () => WaitProgress, onPing: () => void, onBroken: () => void): () => void
  /** Writes a failed acquire into the stream when the response was already committed as SSE. */
  failStream? (error: SlotError, frame: StreamErrorFrame): void
}

/**
 * The owner of one `fastify.slots.acquire` call. Nothing ends it but the caller's AbortSignal,
 * and its slot is the caller's to release (or app close's), so it keeps its one wait in a
 * field and no slots: no collections made per call.
 */
class DetachedOwner implements SlotOwner {
  ended: boolean
  private wait: Abortable | undefined

  constructor (readonly log: FastifyBaseLogger, signal: AbortSignal | undefined) {
    this.ended = signal?.aborted === true
  }

  addWait (wait: Abortable): void {
    this.wait = wait
  }

  removeWait (wait: Abortable): void {
    if (this.wait === wait) this.wait = undefined
  }

  hold (): void {}

  /** Its signal aborted. */
  abort (): void {
    this.ended = true
    this.wait?.abort('SLOT_WAIT_ABORTED', 'the wait was aborted by its signal')
  }
}

/**
 * Runs `take` for a caller of `fastify.slots.acquire`: an owner that nothing ends but the
 * caller's AbortSignal, whose listener is removed once the call settles.
 */
export async function withDetachedOwner<T> (log: FastifyBaseLogger, signal: AbortSignal | undefined, take: (owner: SlotOwner) => Promise<T>): Promise<T> {
  const owner = new DetachedOwner(log, signal)
  if (signal === undefined) return await take(owner)
  const abort = (): void => owner.abort()
  signal.addEventListener('abort', abort, { once: true })
  try {
    return await take(owner)
  } finally {
    signal.removeEventListener('abort', abort)
  }
}

/**
 * Who takes slots: a request (released when it ends) or a caller of `fastify.slots.acquire`
 * outside any request (released by the caller, or on app close).
 */
import type { FastifyBaseLogger } from 'fastify'
import type { SlotErrorCode } from './errors'
import type { PingOptions, StreamErrorFrame } from './options'
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
  /** Slots to release when the owner ends. */
  readonly slots: Set<HeldSlot>
  /** Acquisitions to abort when the owner ends. */
  readonly waits: Set<Abortable>
  /**
   * Present when the owner is a request that can stream: keeps it alive with SSE pings while it
   * waits (calling `onPing` per frame, `onBroken` when the client can no longer be written
   * to); returns what stops them.
   */
  keepAlive? (ping: PingOptions, onPing: () => void, onBroken: () => void): () => void
  /** Writes a failed acquire into the stream when the response was already committed as SSE. */
  failStream? (error: SlotError, frame: StreamErrorFrame): void
}

/**
 * Runs `take` for a caller of `fastify.slots.acquire`: an owner that nothing ends but the
 * caller's AbortSignal, whose listener is removed once the call settles.
 */
export async function withDetachedOwner<T> (log: FastifyBaseLogger, signal: AbortSignal | undefined, take: (owner: SlotOwner) => Promise<T>): Promise<T> {
  const owner = { log, ended: signal?.aborted === true, slots: new Set<HeldSlot>(), waits: new Set<Abortable>() }
  const abort = (): void => {
    owner.ended = true
    for (const wait of [...owner.waits]) wait.abort('SLOT_WAIT_ABORTED', 'the wait was aborted by its signal')
  }
  signal?.addEventListener('abort', abort, { once: true })
  try {
    return await take(owner)
  } finally {
    signal?.removeEventListener('abort', abort)
  }
}

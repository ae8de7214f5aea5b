/**
 * What the plugin tells observers, with no dependency on any metrics library:
 * `fastify.slots.on('acquired' | 'queued' | 'rejected' | 'released' | 'lost' | 'storeError' | 'ping', ...)`.
 * A throwing listener is logged, never allowed to break a request.
 */
import { EventEmitter } from 'node:events'
import type { FastifyBaseLogger } from 'fastify'
import type { RejectionCode } from './errors'

export interface SlotEventSubject {
  type: string
  id: string
}

export interface SlotEventMap {
  /** A slot was taken; `waitedMs` 0-ish when it was free at once. */
  acquired: [SlotEventSubject & { waitedMs: number }]
  /**
   * A request started waiting: its priority class, its place in line (1: next; null when the store did not say)
   * and the wait expected for it from the subject's observed holds (null before one was seen).
   */
  queued: [SlotEventSubject & { priority: number, position: number | null, expectedWaitMs: number | null }]
  /** acquireSlot failed: timeout, queue full, wait too long, aborted, store unavailable. */
  rejected: [SlotEventSubject & { code: RejectionCode, waitedMs: number }]
  /** A slot was given back. */
  released: [SlotEventSubject & { heldMs: number }]
  /** Renewal found the lease had lapsed (the process stalled longer than leaseMs): the slot may be someone else's now. */
  lost: [SlotEventSubject & { heldMs: number }]
  /** A store call failed or timed out. */
  storeError: [{ operation: string, error: unknown }]
  /** A keepalive frame was written to a waiting stream. */
  ping: [SlotEventSubject]
}

export class SlotEvents extends EventEmitter<SlotEventMap> {
  constructor (private readonly log: FastifyBaseLogger) {
    super()
  }

  /** Emits without letting a listener's exception escape into the plugin. */
  notify<K extends keyof SlotEventMap> (event: K, ...args: SlotEventMap[K]): void {
    if (this.listenerCount(event) === 0) return
    try {
      (this.emit as (event: K, ...args: SlotEventMap[K]) => boolean)(event, ...args)
    } catch (err) {
      this.log.error({ err, event }, 'fastify-slots: an event listener threw')
    }
  }
}

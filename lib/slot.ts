/**
 * The Slot a request gets back: what it holds, how long it waited, and a release that runs
 * its store call exactly once however many of the request's end paths call it.
 */
import type { FastifyBaseLogger } from 'fastify'
import type { MemberRef } from './stores/store'

export interface Slot {
  readonly type: string
  readonly id: string
  /** Milliseconds between the call and the slot being held. */
  readonly waitedMs: number
  /** True when no slot was taken: max 0 (unlimited), or the store failed under 'fail-open'. */
  readonly bypassed: boolean
  /** Gives the slot back. Idempotent; never rejects (a store failure is logged). */
  release (): Promise<void>
}

export class HeldSlot implements Slot {
  readonly acquiredAt = Date.now()
  /** Renewal found the lease expired: the slot may belong to someone else; never counted again. */
  lost = false
  /** Granted by another process for its claim only, not confirmed yet. */
  claimed = false
  /**
   * Local time before which the store's entry cannot have expired (when the call that last set
   * its lease was sent, plus that lease): a release that finds no entry before then is a
   * resent release, not a lost slot.
   */
  liveUntil = 0
  private releasing: Promise<void> | undefined

  constructor (
    readonly type: string,
    readonly id: string,
    readonly waitedMs: number,
    /** null for a bypassed slot: nothing in the store. */
    readonly ref: MemberRef | null,
    readonly log: FastifyBaseLogger,
    private readonly giveBack: (slot: HeldSlot) => Promise<void>
  ) {}

  get bypassed (): boolean {
    return this.ref === null
  }

  get released (): boolean {
    return this.releasing !== undefined
  }

  release (): Promise<void> {
    this.releasing ??= this.giveBack(this)
    return this.releasing
  }
}

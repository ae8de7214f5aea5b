/**
 * The Slot a request gets back: what it holds, how long it waited, and a release that runs
 * its store call exactly once however many of the request's end paths call it.
 */
import type { FastifyBaseLogger } from 'fastify'
import { SlotError } from './errors'
import type { MemberRef } from './stores/store'

export interface Slot {
  readonly type: string
  readonly id: string
  /** Milliseconds between the call and the slot being held. */
  readonly waitedMs: number
  /** True when no slot was taken: max 0 (unlimited), or the store failed under 'fail-open'. */
  readonly bypassed: boolean
  /**
   * Aborts when the slot ends: released (`SLOT_RELEASED`: by `release()`, or because the
   * request ended, the client included) or lost (`SLOT_LOST`: its lease lapsed before it was
   * renewed, so it may be someone else's now). Its `reason` is that SlotError. Pass it to the
   * upstream call the slot guards, to stop paying for work nobody holds a slot for.
   */
  readonly signal: AbortSignal
  /** Gives the slot back. Idempotent; never rejects (a store failure is logged). */
  release (): Promise<void>
}

type EndCode = 'SLOT_RELEASED' | 'SLOT_LOST'

export class HeldSlot implements Slot {
  readonly acquiredAt = Date.now()
  /** Renewal found the lease expired: the slot may belong to someone else; never counted again. */
  lost = false
  /**
   * Local time before which the store's entry cannot have expired (when the call that last set
   * its lease was sent, plus that lease): a release that finds no entry before then is a
   * resent release, not a lost slot.
   */
  liveUntil = 0
  private releasing: Promise<void> | undefined
  /** Created on first use of `signal`: a slot nobody watches pays nothing. */
  private controller: AbortController | undefined
  private ended: EndCode | undefined

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

  get signal (): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController()
      if (this.ended !== undefined) this.controller.abort(this.reason(this.ended))
    }
    return this.controller.signal
  }

  release (): Promise<void> {
    if (this.releasing === undefined) {
      this.end('SLOT_RELEASED')
      this.releasing = this.giveBack(this)
    }
    return this.releasing
  }

  /** The slot ended (released, or lost): its signal aborts, once, with the first reason. */
  end (code: EndCode): void {
    if (this.ended !== undefined) return
    this.ended = code
    this.controller?.abort(this.reason(code))
  }

  /** Built only when a signal is watched: most slots end without anyone asking why. */
  private reason (code: EndCode): SlotError {
    const message = code === 'SLOT_LOST'
      ? "the slot was lost: its lease lapsed before it was renewed, so it may be someone else's now"
      : 'the slot was released'
    return new SlotError(code, message, { slotType: this.type, slotId: this.id })
  }
}

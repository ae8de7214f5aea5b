/**
 * One call of acquireSlot, from before its first store call until it holds a slot or fails.
 * It is registered by member before anything reaches the store, so every way it can end (a
 * grant, a poll, an abort, the deadline, close) finds it at any await, and it settles once:
 * the first of them wins, and whatever the others bring afterwards is given back.
 */
import type { SlotError, SlotErrorCode } from './errors'
import type { CallSettings, WaitProgress } from './options'
import type { HeldSlot } from './slot'
import type { Abortable, SlotOwner } from './slot-owner'
import type { AcquireOutcome, MemberRef, SlotStore, TryAcquireAnswer, TryAcquireArgs } from './stores/store'
import type { Subject } from './subject'

export class Acquisition implements Abortable {
  /** Set once the outcome is known; nothing changes it afterwards. */
  settled = false
  /** It settled holding a slot. */
  acquired = false
  /** Holding a slot granted by another process for its claim only: confirm it at once. */
  claimed = false
  /**
   * The store may hold a ticket or a slot of it: false until its first try is sent, and again
   * once an answer showed it has none. A failed acquisition with entries gives them back.
   */
  inStore = false
  /** Its first try found the subject full: it waits in a local queue, with a ticket to keep alive. */
  waiting = false
  /** The slot it holds, kept by the lease keeper from the moment it settled. */
  slot: HeldSlot | undefined
  /** Stops the SSE keepalives of a waiting stream. */
  stopStream: (() => void) | undefined
  /** Its place in line when it started waiting (1: next), when the store said. */
  position: number | null = null
  /** The wait expected for that place, when holds of the subject were seen (see HoldTimes). */
  expectedWaitMs: number | null = null
  readonly ref: MemberRef
  readonly result: Promise<void>
  private resolve!: () => void
  private reject!: (error: SlotError | Error) => void
  private timer: NodeJS.Timeout | undefined

  constructor (
    readonly subject: Subject,
    readonly owner: SlotOwner,
    readonly settings: CallSettings,
    /** Every try of this member, first and later, sends these. */
    readonly args: TryAcquireArgs,
    readonly started: number,
    /** Called once when it settles, before its promise does. */
    private readonly onSettled: (acquisition: Acquisition) => void,
    /** Builds the error of an abort (a request end, a signal, close). */
    private readonly abortError: (code: SlotErrorCode, message: string, subject: Subject) => SlotError
  ) {
    this.ref = { tag: args.tag, member: args.member }
    this.result = new Promise((resolve, reject) => {
      this.resolve = resolve
      this.reject = reject
    })
    // A rejection nobody awaited yet (it settled during the first try) is still handled.
    this.result.catch(() => {})
  }

  /** Its first try. */
  tryFirst (store: SlotStore): Promise<TryAcquireAnswer> {
    return store.tryAcquire(this.args)
  }

  /** A retry while it waits (the store grants what is free first). */
  retry (store: SlotStore): Promise<AcquireOutcome> {
    return store.poll(this.args)
  }

  /** What the store may hold of it: its ticket or its slot, per subject. */
  get refs (): readonly MemberRef[] {
    return [this.ref]
  }

  /** The local queue it waits in: its subject's (a set waits in one of its own). */
  get queueKey (): string {
    return this.ref.tag
  }

  /** Where it stands, for a ping frame function. */
  progress (): WaitProgress {
    return { position: this.position, waitedMs: Date.now() - this.started, expectedWaitMs: this.expectedWaitMs }
  }

  /** Milliseconds of maxWaitMs left. */
  get remainingMs (): number {
    return this.started + this.settings.maxWaitMs - Date.now()
  }

  /** maxWaitMs has passed (counted from the call). */
  get deadlinePassed (): boolean {
    return this.remainingMs <= 0
  }

  /**
   * Once it waits: fails it with `onDeadline()` when maxWaitMs has passed. Not before: a
   * deadline that passes while the first try is on its way lets that try's answer decide (a
   * 429 says the subject was full, which only the store knows; a store that does not answer
   * is a 503 within storeTimeoutMs), and the common acquire that never waits pays no timer.
   */
  startDeadline (onDeadline: () => SlotError): void {
    this.timer = setTimeout(() => this.fail(onDeadline()), Math.max(0, this.remainingMs))
  }

  /** It holds a slot; `claimed` when another process granted it for its claim only. */
  succeed (claimed = false): boolean {
    if (this.settled) return false
    this.acquired = true
    this.claimed = claimed
    this.settle()
    this.resolve()
    return true
  }

  abort (code: SlotErrorCode, message: string): void {
    this.fail(this.abortError(code, message, this.subject))
  }

  fail (error: SlotError | Error): boolean {
    if (this.settled) return false
    this.settle()
    this.reject(error)
    return true
  }

  private settle (): void {
    this.settled = true
    clearTimeout(this.timer)
    this.onSettled(this)
  }
}

/**
 * Every acquisition of this process that is not settled yet, by member, from before its first
 * store call: where grants find them (a grant that arrives while the first try is still on
 * the wire is not lost), where an abort, a request end or close finds them at any await, and
 * where their tickets are kept alive. Also gives back what the store may still hold for a
 * member nobody waits for, retrying until it could no longer be granted anything.
 */
import type { FastifyBaseLogger } from 'fastify'
import { Acquisition } from './acquisition'
import { nextDelay } from './backoff'
import { ChurnMap } from './churn-map'
import { subjectError, type SlotError, type SlotErrorCode } from './errors'
import type { SlotEvents } from './events'
import type { HoldTimes } from './hold-times'
import type { CallSettings, ResolvedOptions } from './options'
import type { SlotOwner } from './slot-owner'
import { storeCall } from './store-call'
import { SetAcquisition, type SetPart } from './set-acquisition'
import { AcquireOutcome, isAcquired, type MemberRef, type SlotStore, type TryAcquireArgs } from './stores/store'
import type { Subject } from './subject'
import { SubjectQueue } from './wait-queue'

export class WaitRegistry {
  private readonly acquisitions = new ChurnMap<string, Acquisition>()
  private readonly queues = new Map<string, SubjectQueue>()
  /** Give-backs still retrying; close() waits for their current attempt. */
  private readonly givingBack = new Set<Promise<void>>()
  private closed = false
  /** How many entries of `acquisitions` are a set's second, third... member. */
  private setMembersBeyondFirst = 0
  private readonly onSettled = (acquisition: Acquisition): void => this.settled(acquisition)
  private readonly onAbort = (code: SlotErrorCode, message: string, subject: Subject): ReturnType<typeof subjectError> => this.error(code, message, subject)

  constructor (
    private readonly store: SlotStore,
    private readonly options: ResolvedOptions,
    private readonly events: SlotEvents,
    private readonly log: FastifyBaseLogger,
    /** The store tells this process of grants (else waiters learn at their polls). */
    private readonly granting: boolean,
    /** What Retry-After and expected waits are estimated from. */
    private readonly holds: HoldTimes,
    /**
     * Takes the slot of an acquisition that just succeeded, before anything else runs: a
     * grant message arriving right after must find it held, not nobody's.
     */
    private readonly hold: (acquisition: Acquisition) => void
  ) {}

  /** Acquisitions in progress (a set is one, though it is found under each of its members). */
  get size (): number {
    return this.acquisitions.size - this.setMembersBeyondFirst
  }

  /** Registers an acquisition before its first store call. */
  register (subject: Subject, owner: SlotOwner, settings: CallSettings, args: TryAcquireArgs, started: number): Acquisition {
    const acquisition = new Acquisition(subject, owner, settings, args, started, this.onSettled, this.onAbort)
    this.acquisitions.set(args.member, acquisition)
    owner.addWait(acquisition)
    return acquisition
  }

  /** Registers a set (acquireSlots) under every member, before its first store call. */
  registerSet (parts: readonly SetPart[], owner: SlotOwner, settings: CallSettings, started: number): SetAcquisition {
    const acquisition = new SetAcquisition(parts, owner, settings, started, this.onSettled, this.onAbort)
    for (const { args } of parts) this.acquisitions.set(args.member, acquisition)
    this.setMembersBeyondFirst += parts.length - 1
    owner.addWait(acquisition)
    return acquisition
  }

  /** Its first try found the subject full: it waits in the subject's local queue. */
  enqueue (acquisition: Acquisition): void {
    acquisition.waiting = true
    const { owner, settings, subject } = acquisition
    acquisition.startDeadline(() => this.timeout(acquisition))
    this.queueFor(acquisition.queueKey).add(acquisition)
    if (settings.stream && settings.ping !== false && owner.keepAlive !== undefined) {
      acquisition.stopStream = owner.keepAlive(settings.ping, () => acquisition.progress(), () => this.events.notify('ping', { type: subject.type, id: subject.id }),
        () => acquisition.abort('SLOT_WAIT_ABORTED', 'writing a keepalive to the client failed'))
    }
  }

  /** The units of the subject's local waiters ahead of a newcomer of this class (default mode: no barging here). */
  unitsWaitingFor (tag: string, priority: number): number {
    return this.queues.get(tag)?.unitsFrom(priority) ?? 0
  }

  /** Capacity of the subject may be free: its local head polls now. */
  wake (tag: string): void {
    this.queues.get(tag)?.wake()
  }

  /**
   * The store granted `ref` a slot: true when a live acquisition took it. For a set's member
   * it is word that the set may fit now (grant passes never grant a set): it retries at once.
   */
  granted (ref: MemberRef, claimed: boolean): boolean {
    const acquisition = this.acquisitions.get(ref.member)
    if (!(acquisition instanceof SetAcquisition)) return acquisition?.succeed(claimed) === true
    if (!acquisition.settled) this.retrySet(acquisition)
    return true
  }

  /** One retry of a set at a time; word that arrives during one brings another after it. */
  private retrySet (acquisition: SetAcquisition): void {
    if (acquisition.retrying) {
      acquisition.again = true
      return
    }
    acquisition.retrying = true
    this.poll(acquisition).catch(() => {}).finally(() => {
      acquisition.retrying = false
      if (acquisition.again && !acquisition.settled) {
        acquisition.again = false
        this.retrySet(acquisition)
      }
    })
  }

  /** Fails every acquisition (close): each gives back what the store holds of it. */
  abortAll (code: SlotErrorCode, message: string): void {
    for (const acquisition of [...this.acquisitions.values()]) acquisition.abort(code, message)
  }

  /**
   * Keeps the tickets of waiting acquisitions alive. A ticket that is gone was granted a slot
   * whose message never came, or lapsed while this process stalled: it polls now (taking the
   * granted slot, or queueing anew).
   */
  async refreshTickets (): Promise<void> {
    // A set is in the map once per subject: each ticket once, each acquisition polled once.
    const waiting = [...new Set(this.acquisitions.values())].filter(a => a.waiting)
    if (waiting.length === 0) return
    const tickets = waiting.flatMap(a => a.refs.map(ref => ({ ref, of: a })))
    try {
      const alive = await this.call(this.store.refreshTickets(tickets.map(ticket => ticket.ref), this.options.ticketTtlMs))
      const gone = new Set(tickets.filter((_, i) => !alive[i]).map(ticket => ticket.of))
      for (const acquisition of gone) if (!acquisition.settled) this.poll(acquisition).catch(() => {})
    } catch (err) {
      this.log.debug({ err }, 'fastify-slots: refreshing waiting tickets failed; retrying next tick')
      this.events.notify('storeError', { operation: 'refreshTickets', error: err })
    }
  }

  /**
   * Removes whatever the store may hold of a member nobody waits for (its ticket, a slot
   * granted to it), retrying on failure until leaseMs has passed: by then anything of it has
   * expired. A released slot goes to the next waiter at once.
   */
  giveBack (ref: MemberRef): void {
    if (this.closed) return
    const deadline = Date.now() + this.options.leaseMs
    const attempt = (async () => {
      let delay = 0
      for (;;) {
        try {
          await this.call(this.store.abandon({ ...ref, leaseMs: this.options.leaseMs }))
          return
        } catch (err) {
          this.log.debug({ err }, 'fastify-slots: giving back an abandoned ticket or slot failed; retrying')
          delay = nextDelay(delay, this.options.backoff)
          if (this.closed || Date.now() + delay > deadline) return
          await new Promise(resolve => setTimeout(resolve, delay).unref())
        }
      }
    })()
    this.givingBack.add(attempt)
    attempt.finally(() => this.givingBack.delete(attempt)).catch(() => {})
  }

  /** Stops retrying give-backs once their current attempt is done. */
  async close (): Promise<void> {
    this.closed = true
    await Promise.all([...this.givingBack])
  }

  /** One poll for a waiting acquisition; settles it when that decides its wait. */
  private async poll (acquisition: Acquisition): Promise<void> {
    const outcome = await this.call(acquisition.retry(this.store))
    if (isAcquired(outcome)) {
      acquisition.succeed()
    } else if (outcome === AcquireOutcome.QueueFull) {
      // Its ticket lapsed (this process stalled) and others filled the queue meanwhile.
      acquisition.inStore = false
      acquisition.fail(this.queueFull(acquisition))
    }
  }

  private settled (acquisition: Acquisition): void {
    const set = acquisition instanceof SetAcquisition
    if (set) {
      for (const ref of acquisition.refs) this.acquisitions.delete(ref.member)
      this.setMembersBeyondFirst -= acquisition.parts.length - 1
    } else {
      this.acquisitions.delete(acquisition.ref.member)
    }
    if (acquisition.waiting) this.queues.get(acquisition.queueKey)?.remove(acquisition)
    acquisition.owner.removeWait(acquisition)
    acquisition.stopStream?.()
    if (acquisition.acquired) this.hold(acquisition)
    // A poll or grant still on its way lands before this give-back (one connection, in order).
    else if (acquisition.inStore) for (const ref of set ? acquisition.refs : [acquisition.ref]) this.giveBack(ref)
  }

  private queueFor (key: string): SubjectQueue {
    let queue = this.queues.get(key)
    if (queue === undefined) {
      const created = new SubjectQueue({
        backoff: this.options.backoff,
        granted: this.granting,
        poll: a => this.poll(a),
        emptied: () => { if (this.queues.get(key) === created) this.queues.delete(key) }
      })
      queue = created
      this.queues.set(key, queue)
    }
    return queue
  }

  /** 429: maxWaiters others wait. Retry-After: the wait of a place behind all of them. */
  queueFull ({ subject, settings, args }: Acquisition): SlotError {
    return subjectError('SLOT_QUEUE_FULL', `concurrency limit reached for ${subject.type}, and too many requests are already waiting`, subject,
      this.retryAfter(this.holds.expectedWaitMs(args.tag, settings.maxWaiters, args.max)))
  }

  /** 429: no slot within maxWaitMs. Retry-After: the wait its place was expected to take, by what is known now. */
  timeout ({ subject, settings, args, position }: Acquisition): SlotError {
    return subjectError('SLOT_WAIT_TIMEOUT', `concurrency limit reached for ${subject.type}: no slot freed within ${settings.maxWaitMs} ms`, subject,
      this.retryAfter(position === null ? null : this.holds.expectedWaitMs(args.tag, position - 1, args.max)))
  }

  /** 429 under failFast: its place is expected to take longer than it may wait. Retry-After: that wait. */
  tooLong ({ subject, position, expectedWaitMs, remainingMs }: Acquisition): SlotError {
    return subjectError('SLOT_WAIT_TOO_LONG', `concurrency limit reached for ${subject.type}: the wait expected for place ${String(position)} in line ` +
      `(${String(expectedWaitMs)} ms) is longer than the ${Math.max(0, remainingMs)} ms left to wait`, subject, this.retryAfter(expectedWaitMs))
  }

  /** Seconds until a retry is expected to find room, clamped to [1, maxRetryAfterSeconds]; the fixed fallback without an estimate. */
  private retryAfter (expectedWaitMs: number | null): number {
    const seconds = expectedWaitMs === null ? this.options.retryAfterSeconds : Math.ceil(expectedWaitMs / 1000)
    return Math.min(this.options.maxRetryAfterSeconds, Math.max(1, seconds))
  }

  error (code: SlotErrorCode, message: string, subject: Subject): ReturnType<typeof subjectError> {
    return subjectError(code, message, subject, this.options.retryAfterSeconds)
  }

  private call<T> (promise: Promise<T>): Promise<T> {
    return storeCall(promise, this.options.storeTimeoutMs)
  }
}

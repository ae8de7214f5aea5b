/**
 * The orchestrator: an acquireSlot call becomes an Acquisition, registered before its first
 * store call; its first try either holds a slot or sends it to wait (WaitRegistry), where a
 * grant or a poll settles it; a held slot is the LeaseKeeper's until it is given back. Also
 * routes the store's grants, runs the periodic jobs, and winds everything down on close.
 */
import { randomBytes } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type { Acquisition } from './acquisition'
import { SlotError, type RejectionCode } from './errors'
import { SlotEvents } from './events'
import { HoldTimes } from './hold-times'
import { LeaseKeeper } from './lease-keeper'
import { checkWeight, resolveCallSettings, type CallSettings, type ResolvedOptions } from './options'
import { HeldSlot, type Slot } from './slot'
import type { SlotOwner } from './slot-owner'
import { storeCall, storeUnavailable } from './store-call'
import { AcquireOutcome, isAcquired, memberName, outcomeOf, type GrantSubscription, type MemberRef, type SlotStore, type TryAcquireAnswer, type TryAcquireArgs } from './stores/store'
import { toSubject, validateMax, type Subject } from './subject'
import { WaitRegistry } from './wait-registry'
import { SetAcquisition } from './set-acquisition'
import { toSetSubjects, type SetSubject } from './set-subjects'
import { invalidArgument } from './errors'
import { takeAcrossShards } from './take-across-shards'

/** What a failed call reports from: its acquisition, or (a set taken in groups) the same fields. */
type CallOf = Pick<Acquisition, 'owner' | 'started' | 'settings' | 'subject'>

/** How many apps use each store: one passed to several apps is closed by the last of them. */
const storeUsers = new WeakMap<SlotStore, number>()

export class SlotManager {
  /** Prefix of every member this process writes, so no instance touches another's entries. */
  readonly instanceId = randomBytes(9).toString('base64url')
  readonly events: SlotEvents
  private counter = 0
  private closing = false
  private readonly waits: WaitRegistry
  private readonly leases: LeaseKeeper
  private readonly holds = new HoldTimes()
  /** The periodic jobs still running from their previous tick (a slow store must not stack them up). */
  private readonly running = new Set<() => Promise<void>>()
  private readonly timers: NodeJS.Timeout[]
  /** The settings of a call without options, shared. */
  private readonly defaultSettings: CallSettings
  /** The store hands released slots to our waiters (else the queue heads poll for them). */
  private readonly grants: GrantSubscription | undefined

  constructor (readonly store: SlotStore, readonly options: ResolvedOptions, log: FastifyBaseLogger) {
    storeUsers.set(store, (storeUsers.get(store) ?? 0) + 1)
    this.events = new SlotEvents(log)
    this.defaultSettings = resolveCallSettings(undefined, options)
    this.waits = new WaitRegistry(store, options, this.events, log, store.onGrant !== undefined, this.holds, acquisition => {
      if (acquisition instanceof SetAcquisition) acquisition.slots = this.leases.takeSet(acquisition)
      else acquisition.slot = this.leases.take(acquisition)
    })
    this.leases = new LeaseKeeper(store, options, this.events, log, this.holds, ref => this.waits.giveBack(ref), tag => {
      // Without grants, a waiter here learns of the freed slot by polling for it now.
      if (this.grants === undefined) this.waits.wake(tag)
    })
    this.grants = store.onGrant?.(this.instanceId, (ref, claimed) => this.granted(ref, claimed))
    this.timers = [
      this.every(Math.floor(options.leaseMs / 3), () => this.leases.renewAll()),
      this.every(Math.floor(options.ticketTtlMs / 3), () => this.waits.refreshTickets())
    ]
  }

  /** Runs `job` every `ms`, skipping a tick while its previous run is still on its way. */
  private every (ms: number, job: () => Promise<void>): NodeJS.Timeout {
    const timer = setInterval(() => {
      if (this.running.has(job)) return
      this.running.add(job)
      job().finally(() => this.running.delete(job)).catch(() => {})
    }, ms)
    timer.unref()
    return timer
  }

  async acquire (owner: SlotOwner, type: unknown, id: unknown, max: unknown, opts: unknown): Promise<Slot> {
    const started = Date.now()
    const subject = toSubject(type, id)
    const limit = validateMax(max)
    const settings = opts === undefined ? this.defaultSettings : resolveCallSettings(opts, this.options)
    checkWeight(settings.weight, limit)
    if (settings.stream && owner.keepAlive === undefined) {
      throw new SlotError('SLOT_INVALID_ARGUMENT', 'acquireSlot: option "stream" needs a request to stream to')
    }
    if (limit === 0) return this.bypass(subject, started, owner.log)
    if (owner.ended) throw this.waits.error('SLOT_WAIT_ABORTED', 'the request already ended', subject)
    if (this.closing) throw this.waits.error('SLOT_STORE_UNAVAILABLE', 'the server is shutting down', subject)

    const acquisition = this.waits.register(subject, owner, settings, this.attemptArgs(subject, limit, settings, settings.weight, false), started)
    this.firstTry(acquisition).catch(() => {})
    try {
      await acquisition.result
    } catch (err) {
      return this.failed(acquisition, err)
    }
    const slot = acquisition.slot as HeldSlot
    if (owner.ended) {
      // It ended between the grant and now: the slot goes back unseen (no events).
      this.leases.forget(slot)
      this.waits.giveBack(acquisition.ref)
      throw this.reject(acquisition, this.waits.error('SLOT_WAIT_ABORTED', 'the request ended while acquiring a slot', subject))
    }
    owner.hold(slot)
    owner.log.debug({ slotType: subject.type, slotId: subject.id, waitedMs: slot.waitedMs }, 'fastify-slots: slot acquired')
    this.events.notify('acquired', { type: subject.type, id: subject.id, waitedMs: slot.waitedMs })
    return slot
  }

  /**
   * acquireSlots: every subject's slot at once, or none (see SlotStore.acquireSet). Slots come
   * back in the order asked, a subject with max 0 as a bypassed slot.
   */
  async acquireSet (owner: SlotOwner, slots: unknown, opts: unknown): Promise<Slot[]> {
    const started = Date.now()
    const subjects = toSetSubjects(slots, opts)
    const settings = opts === undefined ? this.defaultSettings : resolveCallSettings(opts, this.options)
    if (settings.stream && owner.keepAlive === undefined) {
      throw new SlotError('SLOT_INVALID_ARGUMENT', 'acquireSlots: option "stream" needs a request to stream to')
    }
    const limited = subjects.filter(s => s.max > 0)
    // Groups of shards may come back in another order than asked: each slot goes to its subject.
    const inOrder = (held: readonly HeldSlot[]): Slot[] => {
      const byTag = new Map(held.map(slot => [(slot.ref as MemberRef).tag, slot]))
      return subjects.map(s => byTag.get(s.subject.tag) ?? this.bypass(s.subject, started, owner.log))
    }
    if (limited.length === 0) return inOrder([])
    const store = this.store
    if (limited.length > 1 && store.acquireSet === undefined) throw invalidArgument('acquireSlots: this store cannot take several slots at once (it has no acquireSet method)')
    const first = limited[0].subject
    if (owner.ended) throw this.waits.error('SLOT_WAIT_ABORTED', 'the request already ended', first)
    if (this.closing) throw this.waits.error('SLOT_STORE_UNAVAILABLE', 'the server is shutting down', first)

    const call = { owner, started, settings, subject: first }
    const groups = limited.length === 1 ? [limited] : this.groupsOf(limited)
    let held: HeldSlot[]
    try {
      held = groups.length === 1
        ? await this.takeGroup(owner, limited, settings, started)
        : await takeAcrossShards(groups, {
          take: (group, wait) => this.takeGroup(owner, group, wait ? settings : { ...settings, maxWaitMs: 0 }, started),
          giveBack: slots => this.giveBackUnseen(slots),
          over: () => owner.ended || Date.now() - started >= settings.maxWaitMs
        })
    } catch (err) {
      // Fail-open (failed() answers a bypass, or throws) bypasses every subject, each its own.
      this.failed(call, err)
      return inOrder([])
    }
    if (owner.ended) {
      // It ended between the grant and now: the slots go back unseen (no events).
      this.giveBackUnseen(held)
      throw this.reject(call, this.waits.error('SLOT_WAIT_ABORTED', 'the request ended while acquiring its slots', first))
    }
    for (const slot of held) {
      owner.hold(slot)
      this.events.notify('acquired', { type: slot.type, id: slot.id, waitedMs: slot.waitedMs })
    }
    owner.log.debug({ slots: held.map(s => `${s.type}:${s.id}`), waitedMs: held[0].waitedMs }, 'fastify-slots: slots acquired')
    return inOrder(held)
  }

  /** The subjects split into groups the store can take in one atomic step (one group on a single Redis). */
  private groupsOf (subjects: SetSubject[]): SetSubject[][] {
    const groups = this.store.groupsOf?.(subjects.map(s => s.subject.tag))
    return groups === undefined ? [subjects] : groups.map(indexes => indexes.map(i => subjects[i]))
  }

  /** One group's slots, all or none: a set's, or one subject's; rejects as an acquisition does. */
  private async takeGroup (owner: SlotOwner, group: SetSubject[], settings: CallSettings, started: number): Promise<HeldSlot[]> {
    const acquisition = group.length === 1
      ? this.waits.register(group[0].subject, owner, settings, this.attemptArgs(group[0].subject, group[0].max, settings, group[0].weight, false), started)
      : this.waits.registerSet(group.map(({ subject, max, weight }) => ({ subject, args: this.attemptArgs(subject, max, settings, weight, true) })), owner, settings, started)
    this.firstTry(acquisition).catch(() => {})
    await acquisition.result
    return acquisition instanceof SetAcquisition ? acquisition.slots : [acquisition.slot as HeldSlot]
  }

  /** Slots that go back without anyone having seen them (no events). */
  private giveBackUnseen (slots: readonly HeldSlot[]): void {
    for (const slot of slots) {
      this.leases.forget(slot)
      this.waits.giveBack(slot.ref as MemberRef)
    }
  }

  /** The arguments of every try of one subject's member (a set's member when `set`). */
  private attemptArgs (subject: Subject, max: number, settings: CallSettings, weight: number, set: boolean): TryAcquireArgs {
    return {
      tag: subject.tag,
      member: memberName(this.instanceId, ++this.counter, max, this.options.claimMs, settings.priority, weight, set),
      max,
      leaseMs: this.options.leaseMs,
      maxWaiters: settings.maxWaiters,
      ticketTtlMs: settings.maxWaitMs > 0 ? this.options.ticketTtlMs : 0,
      fair: settings.fair,
      // Without fair mode, this process's earlier waiters of its class or higher still go
      // first: no barging locally.
      ahead: settings.fair ? 0 : this.waits.unitsWaitingFor(subject.tag, settings.priority),
      priority: settings.priority,
      priorityStepMs: this.options.priorityStepMs,
      weight
    }
  }

  get grantsReady (): Promise<void> {
    return this.grants?.ready ?? Promise.resolve()
  }

  /** Slots held and requests waiting in this process right now. */
  get counts (): { held: number, waiting: number } {
    return { held: this.leases.size, waiting: this.waits.size }
  }

  /** Called as the app starts closing: every acquisition fails with 503 at once instead of holding up close(). */
  beginClose (): void {
    this.closing = true
    this.waits.abortAll('SLOT_STORE_UNAVAILABLE', 'the server is shutting down')
    // Their give-backs, and the releases of the requests still running, go out as they are
    // made: an onClose hook of the app may close the client before a batch would have.
    this.store.flush?.()
  }

  /** Stops the timers, gives back every slot and ticket of this process. */
  async close (): Promise<void> {
    this.beginClose()
    for (const timer of this.timers) clearInterval(timer)
    this.grants?.stop()
    await Promise.all([this.leases.releaseAll(), this.waits.close()])
    const users = (storeUsers.get(this.store) ?? 1) - 1
    storeUsers.set(this.store, users)
    if (users === 0) await this.store.close?.()
  }

  /** The first try; its answer settles the acquisition, unless something settled it first. */
  private async firstTry (acquisition: Acquisition): Promise<void> {
    acquisition.inStore = true
    let answer: TryAcquireAnswer
    try {
      answer = await storeCall(acquisition.tryFirst(this.store), this.options.storeTimeoutMs)
    } catch (err) {
      acquisition.fail(err as Error)
      return
    }
    // Aborted, timed out or granted meanwhile: a failed one gives back what this try took.
    if (acquisition.settled) return
    const { settings, subject } = acquisition
    const outcome = outcomeOf(answer)
    if (outcome === AcquireOutcome.AcquiredWithRoom) {
      acquisition.succeed()
      // Local waiters behind the room this try saw poll now.
      if (acquisition instanceof SetAcquisition) for (const ref of acquisition.refs) this.waits.wake(ref.tag)
      else this.waits.wake(subject.tag)
      return
    }
    // The subject is (now) full: how long its slots are held is worth knowing from here on.
    if (acquisition instanceof SetAcquisition) for (const ref of acquisition.refs) this.holds.watch(ref.tag)
    else this.holds.watch(subject.tag)
    if (isAcquired(outcome)) {
      acquisition.succeed()
      return
    }
    if (typeof answer === 'object') this.place(acquisition, answer.ahead)
    if (outcome === AcquireOutcome.QueueFull || settings.maxWaitMs === 0 || acquisition.deadlinePassed) {
      // Refused, or full without a ticket: nothing of it is in the store (a ticket taken
      // after the deadline passed is given back).
      if (outcome === AcquireOutcome.QueueFull || settings.maxWaitMs === 0) acquisition.inStore = false
      acquisition.fail(outcome === AcquireOutcome.QueueFull ? this.waits.queueFull(acquisition) : this.waits.timeout(acquisition))
    } else if (settings.failFast && acquisition.expectedWaitMs !== null && acquisition.expectedWaitMs > acquisition.remainingMs) {
      // Its ticket is given back: the ones behind it move up.
      acquisition.fail(this.waits.tooLong(acquisition))
    } else {
      this.events.notify('queued', { type: subject.type, id: subject.id, priority: settings.priority, position: acquisition.position, expectedWaitMs: acquisition.expectedWaitMs })
      this.waits.enqueue(acquisition)
    }
  }

  /** The store said where its ticket stands: its place in line and the wait expected for it. */
  private place (acquisition: Acquisition, ahead: number): void {
    acquisition.position = ahead + 1
    acquisition.expectedWaitMs = this.holds.expectedWaitMs(acquisition.subject.tag, ahead, acquisition.args.max)
  }

  /** A failed acquisition: its error (written into the stream if it was committed), or a bypass under fail-open. */
  private failed (acquisition: CallOf, err: unknown): Slot {
    if (err instanceof SlotError) throw this.reject(acquisition, err)
    const { subject, owner, started } = acquisition
    this.events.notify('storeError', { operation: 'tryAcquire', error: err })
    if (this.options.onStoreError === 'fail-open') {
      owner.log.warn({ err, slotType: subject.type }, 'fastify-slots: slot store failed; proceeding without a slot (fail-open)')
      return this.bypass(subject, started, owner.log)
    }
    throw this.reject(acquisition, storeUnavailable(err, subject.type, subject.id))
  }

  private reject ({ owner, started, settings }: CallOf, error: SlotError): SlotError {
    error.waitedMs = Date.now() - started
    this.events.notify('rejected', { type: error.slotType ?? '', id: error.slotId ?? '', code: error.code as RejectionCode, waitedMs: error.waitedMs })
    owner.failStream?.(error, settings.errorFrame)
    // Fastify logs this response as a 200 it already sent: say what ended the stream.
    if (error.streamed) owner.log.info({ err: error }, `fastify-slots: the committed stream ended with ${error.code}`)
    return error
  }

  /**
   * The store granted a slot to a member of this instance. One that nobody waits for any more
   * (it gave up, maybe while the store was unreachable) gives it straight back.
   */
  private granted (ref: MemberRef, claimed: boolean): void {
    if (this.waits.granted(ref, claimed) || this.leases.has(ref.member)) return
    this.waits.giveBack(ref)
  }

  private bypass (subject: Subject, started: number, log: FastifyBaseLogger): Slot {
    return new HeldSlot(subject.type, subject.id, Date.now() - started, null, log, async () => {})
  }
}

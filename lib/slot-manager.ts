/**
 * The heart of the plugin: takes slots for their owners (one try, then the subject's wait
 * queue, where the store grants them a released slot), keeps every held slot's lease and
 * every waiting ticket alive with one batched round trip per tick, gives slots back, and
 * winds everything down on close.
 */
import { randomBytes } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import { SlotError, type SlotErrorCode } from './errors'
import { SlotEvents } from './events'
import { resolveCallSettings, type CallSettings, type PingOptions, type ResolvedOptions } from './options'
import { HeldSlot, type Slot } from './slot'
import type { AbortWait, SlotOwner } from './slot-owner'
import { storeUnavailable, withTimeout } from './store-call'
import { isAcquired, AcquireOutcome, type GrantSubscription, type Hold, type ReleaseArgs, type SlotStore, type TryAcquireArgs } from './stores/store'
import { toSubject, validateMax, type Subject } from './subject'
import { SubjectQueue, WaitingRequest, type WaitResult } from './wait-queue'

export class SlotManager {
  /** Prefix of every member this process writes, so no instance touches another's entries. */
  readonly instanceId = randomBytes(9).toString('base64url')
  private counter = 0
  private readonly held = new Set<HeldSlot>()
  /** Held slots granted by another process for claimMs only, not renewed since. */
  private readonly claims = new Set<HeldSlot>()
  /** Waiting requests by member: where the store's grants find them. */
  private readonly waiting = new Map<string, WaitingRequest>()
  private readonly queues = new Map<string, SubjectQueue>()
  private readonly activeWaits = new Set<AbortWait>()
  private closing = false
  /** The periodic jobs still running from their previous tick (a slow store must not stack them up). */
  private readonly running = new Set<() => Promise<void>>()
  private readonly timers: NodeJS.Timeout[]
  /** Retry-After for 429s: by then a waiter would have retried at least once at full backoff. */
  private readonly retryAfterSeconds: number
  /** A waiting ticket outlives a few refresh ticks, then lapses if its process died. */
  private readonly ticketTtlMs: number
  /** The settings of a call without options, shared. */
  private readonly defaultSettings: CallSettings
  /** How long a slot granted to this process by another one is ours before we renew it. */
  private readonly claimMs: number
  /** The store hands released slots to our waiters (else the queue heads poll for them). */
  private readonly grants: GrantSubscription | undefined

  readonly events: SlotEvents

  constructor (readonly store: SlotStore, readonly options: ResolvedOptions, private readonly log: FastifyBaseLogger) {
    this.retryAfterSeconds = Math.max(1, Math.ceil(options.backoff.maxMs / 1000))
    this.ticketTtlMs = 2 * (options.backoff.maxMs + options.storeTimeoutMs)
    this.defaultSettings = resolveCallSettings(undefined, options)
    // A grant to a process that died lasts no longer than that process's tickets would.
    this.claimMs = Math.min(options.leaseMs, this.ticketTtlMs)
    this.events = new SlotEvents(log)
    this.grants = store.onGrant?.(this.instanceId, (member, claimed) => this.granted(member, claimed))
    this.timers = [
      this.every(Math.floor(options.leaseMs / 3), () => this.renewHeld()),
      this.every(Math.floor(this.ticketTtlMs / 3), () => this.refreshTickets()),
      this.every(Math.floor(this.claimMs / 3), () => this.confirmClaims())
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
    if (settings.stream && owner.sseWriter === undefined) {
      throw new SlotError('SLOT_INVALID_ARGUMENT', 'acquireSlot: option "stream" needs a request to stream to')
    }
    if (limit === 0) return this.bypass(subject, started, owner.log)
    if (owner.ended) throw this.error('SLOT_WAIT_ABORTED', 'the request already ended', subject)
    if (this.closing) throw this.error('SLOT_STORE_UNAVAILABLE', 'the server is shutting down', subject)

    // Also what releasing it takes: the limit its release fills back up with waiters.
    const hold: ReleaseArgs = {
      tag: subject.tag,
      member: `${this.instanceId}:${(++this.counter).toString(36)}`,
      max: limit,
      leaseMs: this.options.leaseMs,
      claimMs: this.claimMs
    }
    const args: TryAcquireArgs = {
      tag: hold.tag,
      member: hold.member,
      max: limit,
      leaseMs: this.options.leaseMs,
      maxWaiters: settings.maxWaiters,
      ticketTtlMs: settings.maxWaitMs > 0 ? this.ticketTtlMs : 0,
      fair: settings.fair,
      // Without fair mode, this process's earlier waiters still go first: no barging locally.
      ahead: settings.fair ? 0 : this.queues.get(hold.tag)?.length ?? 0,
      queued: false
    }
    const attempt = (): Promise<AcquireOutcome> => withTimeout(this.store.tryAcquire(args), this.options.storeTimeoutMs, 'the slot store')

    let result: WaitResult
    let claimed = false
    try {
      const first = await attempt()
      // From now on it polls as the head of the local queue: nobody here is ahead of it; and
      // it may hold a ticket, or a slot granted to it.
      args.ahead = 0
      args.queued = true
      result = isAcquired(first)
        ? 'acquired'
        : first === AcquireOutcome.QueueFull ? 'queue-full' : settings.maxWaitMs === 0 ? 'timeout' : await this.wait(owner, subject, hold, attempt, settings, started, () => { claimed = true })
    } catch (err) {
      // The last attempt may still land (a timed-out call, an abort mid-call): undo it.
      this.forget(hold, owner.log)
      if (err instanceof SlotError) throw this.fail(owner, err, started, settings)
      this.events.notify('storeError', { operation: 'tryAcquire', error: err })
      if (this.options.onStoreError === 'fail-open') {
        owner.log.warn({ err, slotType: subject.type }, 'fastify-slots: slot store failed; proceeding without a slot (fail-open)')
        return this.bypass(subject, started, owner.log)
      }
      throw this.fail(owner, storeUnavailable(err, subject.type, subject.id), started, settings)
    }
    if (result !== 'acquired') {
      this.forget(hold, owner.log)
      throw this.fail(owner, result === 'timeout'
        ? this.error('SLOT_WAIT_TIMEOUT', `concurrency limit reached for ${subject.type}: no slot freed within ${settings.maxWaitMs} ms`, subject)
        : this.error('SLOT_QUEUE_FULL', `concurrency limit reached for ${subject.type}, and too many requests are already waiting`, subject), started, settings)
    }

    const slot = new HeldSlot(subject.type, subject.id, Date.now() - started, hold, owner.log, s => this.giveBack(s))
    if (owner.ended) {
      await slot.release()
      throw this.fail(owner, this.error('SLOT_WAIT_ABORTED', 'the request ended while acquiring a slot', subject), started, settings)
    }
    owner.slots.add(slot)
    this.held.add(slot)
    // Most such slots are released before the claim tick: those never cost a renewal.
    if (claimed) this.claims.add(slot)
    owner.log.debug({ slotType: subject.type, slotId: subject.id, waitedMs: slot.waitedMs }, 'fastify-slots: slot acquired')
    this.events.notify('acquired', { type: subject.type, id: subject.id, waitedMs: slot.waitedMs })
    return slot
  }

  /** Slots held and requests waiting in this process right now. */
  get counts (): { held: number, waiting: number } {
    return { held: this.held.size, waiting: this.waiting.size }
  }

  /** Called as the app starts closing: waiting requests get 503 at once instead of holding up close(). */
  beginClose (): void {
    this.closing = true
    for (const abort of this.activeWaits) abort('SLOT_STORE_UNAVAILABLE', 'the server is shutting down')
  }

  /** Stops the timers and releases every slot this process still holds. */
  async close (): Promise<void> {
    this.beginClose()
    for (const timer of this.timers) clearInterval(timer)
    this.grants?.stop()
    await Promise.all([...this.held].map(slot => slot.release()))
    await this.store.close?.()
  }

  /** Joins the subject's queue in this process and waits for its turn (or the deadline). */
  private async wait (owner: SlotOwner, subject: Subject, hold: Hold, attempt: () => Promise<AcquireOutcome>, settings: CallSettings, started: number, onClaim: () => void): Promise<WaitResult> {
    const queue = this.queueFor(subject.tag)
    const entry = new WaitingRequest(hold, attempt, started + settings.maxWaitMs, e => {
      queue.remove(e)
      this.waiting.delete(e.hold.member)
    }, onClaim)
    const abort: AbortWait = (code, message) => entry.finish(this.error(code, message, subject))
    owner.waits.add(abort)
    this.activeWaits.add(abort)
    this.waiting.set(hold.member, entry)
    queue.add(entry)
    const pings = settings.stream && settings.ping !== false ? this.startPings(owner, subject, settings.ping, abort) : undefined
    try {
      return await entry.result
    } finally {
      clearInterval(pings)
      owner.waits.delete(abort)
      this.activeWaits.delete(abort)
    }
  }

  /** The subject's queue in this process, subscribed to its releases while anyone waits. */
  private queueFor (tag: string): SubjectQueue {
    let queue = this.queues.get(tag)
    if (queue === undefined) {
      const created = new SubjectQueue({
        backoff: this.options.backoff,
        granted: this.grants !== undefined,
        orphaned: hold => this.forget(hold, this.log),
        emptied: () => { if (this.queues.get(tag) === created) this.queues.delete(tag) }
      })
      queue = created
      this.queues.set(tag, queue)
    }
    return queue
  }

  private startPings (owner: SlotOwner, subject: Subject, ping: PingOptions, abort: AbortWait): NodeJS.Timeout {
    const writeFailed = (): void => abort('SLOT_WAIT_ABORTED', 'writing a keepalive to the client failed')
    const sse = owner.sseWriter!()
    return setInterval(() => {
      if (!sse.write(ping.frame, writeFailed)) return writeFailed()
      this.events.notify('ping', { type: subject.type, id: subject.id })
    }, ping.intervalMs)
  }

  /** Reports a failed acquire, and writes it into the stream when the response was already committed as SSE. */
  private fail (owner: SlotOwner, error: SlotError, started: number, settings: CallSettings): SlotError {
    this.events.notify('rejected', { type: error.slotType ?? '', id: error.slotId ?? '', code: error.code, waitedMs: Date.now() - started })
    if (owner.sse?.started === true && owner.request !== undefined) {
      owner.sse.fail(error, settings.errorFrame(error, owner.request))
    }
    return error
  }

  private error (code: SlotErrorCode, message: string, subject: Subject): SlotError {
    const retryAfterSeconds = code === 'SLOT_WAIT_TIMEOUT' || code === 'SLOT_QUEUE_FULL' ? this.retryAfterSeconds : undefined
    return new SlotError(code, message, { slotType: subject.type, slotId: subject.id, retryAfterSeconds })
  }

  /** The store granted a slot to one of our waiters. One that stopped waiting is cleaned up by its own forget(). */
  private granted (member: string, claimed: boolean): void {
    this.waiting.get(member)?.grant(claimed)
  }

  private bypass (subject: Subject, started: number, log: FastifyBaseLogger): Slot {
    return new HeldSlot(subject.type, subject.id, Date.now() - started, null, log, async () => {})
  }

  private async giveBack (slot: HeldSlot): Promise<void> {
    this.held.delete(slot)
    this.claims.delete(slot)
    const hold = slot.hold
    if (hold === null || slot.lost) return
    try {
      const live = await withTimeout(this.store.release(hold), this.options.storeTimeoutMs, 'the slot store')
      const heldMs = Date.now() - slot.acquiredAt
      if (live === false) {
        // Its lease lapsed before this release (the process stalled past leaseMs).
        this.markLost(slot)
        return
      }
      slot.log.debug({ slotType: slot.type, slotId: slot.id, heldMs }, 'fastify-slots: slot released')
      this.events.notify('released', { type: slot.type, id: slot.id, heldMs })
    } catch (err) {
      slot.log.warn({ err, slotType: slot.type }, 'fastify-slots: releasing a slot failed; it frees when its lease expires')
      this.events.notify('storeError', { operation: 'release', error: err })
    }
    // Without grants, a waiter here learns of the freed slot by trying for it now.
    if (this.grants === undefined) this.queues.get(hold.tag)?.wake()
  }

  /** The slot's lease lapsed: it may be someone else's now; never counted or released again. */
  private markLost (slot: HeldSlot): void {
    slot.lost = true
    this.held.delete(slot)
    this.claims.delete(slot)
    slot.log.warn({ slotType: slot.type, slotId: slot.id }, 'fastify-slots: slot lost: its lease expired before it was renewed or released')
    this.events.notify('lost', { type: slot.type, id: slot.id, heldMs: Date.now() - slot.acquiredAt })
  }

  /** Best-effort removal of a hold and its waiting ticket after a failed or abandoned acquire. */
  private forget (hold: Hold, log: FastifyBaseLogger): void {
    const timeout = this.options.storeTimeoutMs
    Promise.all([
      withTimeout(this.store.release(hold), timeout, 'the slot store'),
      withTimeout(this.store.leaveQueue(hold), timeout, 'the slot store')
    ]).catch(err => {
      log.debug({ err }, 'fastify-slots: cleanup after a failed acquire did not reach the store; the entries expire')
    })
  }

  /** One batched renewal of every held slot per tick; a slot whose lease already lapsed is lost. */
  private async renewHeld (): Promise<void> {
    if (this.held.size > 0) await this.renew([...this.held])
  }

  /**
   * Slots another process granted us are ours for claimMs only (so a grant to a process that
   * died frees soon): the ones still held get their full lease, one batch per claim tick.
   */
  private async confirmClaims (): Promise<void> {
    if (this.claims.size > 0) await this.renew([...this.claims])
  }

  private async renew (slots: HeldSlot[]): Promise<void> {
    try {
      const alive = await withTimeout(this.store.renew(slots.map(s => s.hold as Hold), this.options.leaseMs), this.options.storeTimeoutMs, 'the slot store')
      alive.forEach((ok, i) => {
        const slot = slots[i]
        if (ok) this.claims.delete(slot)
        // A release racing this renewal is not a loss.
        else if (!slot.released && !slot.lost) this.markLost(slot)
      })
    } catch (err) {
      this.log.warn({ err }, 'fastify-slots: renewing held slots failed; retrying next tick')
      this.events.notify('storeError', { operation: 'renew', error: err })
    }
  }

  /**
   * Keeps the tickets of this process's waiters alive. A ticket that is gone was granted a
   * slot whose message never came, or lapsed while this process stalled: that waiter tries
   * again now (taking the granted slot, or queueing anew).
   */
  private async refreshTickets (): Promise<void> {
    if (this.waiting.size === 0) return
    try {
      const entries = [...this.waiting.values()]
      const alive = await withTimeout(this.store.refreshTickets(entries.map(entry => entry.hold), this.ticketTtlMs), this.options.storeTimeoutMs, 'the slot store')
      alive?.forEach((ok, i) => { if (!ok) this.queues.get(entries[i].hold.tag)?.retry(entries[i]) })
    } catch (err) {
      this.log.debug({ err }, 'fastify-slots: refreshing waiting tickets failed; retrying next tick')
      this.events.notify('storeError', { operation: 'refreshTickets', error: err })
    }
  }
}

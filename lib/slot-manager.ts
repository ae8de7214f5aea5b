/**
 * The heart of the plugin: takes slots for requests (first try, then the wait scheduler),
 * keeps every held slot's lease alive with one batched renewal per tick, gives slots back,
 * nudges same-process waiters when a slot frees, and winds everything down on close.
 */
import { randomBytes } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import { SlotError, type SlotErrorCode } from './errors'
import { resolveCallSettings, type CallSettings, type PingOptions, type ResolvedOptions } from './options'
import type { RequestSlots } from './request-slots'
import { HeldSlot, type Slot } from './slot'
import { storeUnavailable, withTimeout } from './store-call'
import { AcquireOutcome, type Hold, type SlotStore } from './stores/store'
import { toSubject, validateMax, type Subject } from './subject'
import { waitForSlot, Waiter, type AbortWait } from './wait-for-slot'

type WaitResult = 'acquired' | 'timeout' | 'queue-full'

export class SlotManager {
  /** Prefix of every holder member this process writes, so no instance touches another's entries. */
  readonly instanceId = randomBytes(9).toString('base64url')
  private counter = 0
  private readonly held = new Set<HeldSlot>()
  private readonly waiters = new Map<string, Set<Waiter>>()
  private readonly activeWaits = new Set<AbortWait>()
  private closing = false
  private renewing = false
  private readonly renewTimer: NodeJS.Timeout
  /** Retry-After for 429s: by then a waiter would have retried at least once at full backoff. */
  private readonly retryAfterSeconds: number
  /** A waiting ticket outlives the longest sleep between two retries, then lapses if its waiter died. */
  private readonly ticketTtlMs: number

  constructor (readonly store: SlotStore, readonly options: ResolvedOptions, private readonly log: FastifyBaseLogger) {
    this.retryAfterSeconds = Math.max(1, Math.ceil(options.backoff.maxMs / 1000))
    this.ticketTtlMs = 2 * (options.backoff.maxMs + options.storeTimeoutMs)
    this.renewTimer = setInterval(() => { this.renewAll() }, Math.floor(options.leaseMs / 3))
    this.renewTimer.unref()
  }

  async acquire (state: RequestSlots, type: unknown, id: unknown, max: unknown, opts: unknown): Promise<Slot> {
    const started = Date.now()
    const subject = toSubject(type, id)
    const limit = validateMax(max)
    const settings = resolveCallSettings(opts, this.options)
    const log = state.request.log
    if (limit === 0) return this.bypass(subject, started, log)
    if (state.ended) throw this.error('SLOT_WAIT_ABORTED', 'the request already ended', subject)
    if (this.closing) throw this.error('SLOT_STORE_UNAVAILABLE', 'the server is shutting down', subject)

    const hold: Hold = { tag: subject.tag, member: `${this.instanceId}:${(++this.counter).toString(36)}` }
    const attempt = (): Promise<AcquireOutcome> => withTimeout(this.store.tryAcquire({
      ...hold,
      max: limit,
      leaseMs: this.options.leaseMs,
      maxWaiters: settings.maxWaiters,
      ticketTtlMs: settings.maxWaitMs > 0 ? this.ticketTtlMs : 0
    }), this.options.storeTimeoutMs, 'the slot store')

    let result: WaitResult
    try {
      result = await this.tryThenWait(state, subject, attempt, settings, started)
    } catch (err) {
      // The last attempt may still land (a timed-out call, an abort mid-call): undo it.
      this.forget(hold, log)
      if (err instanceof SlotError) throw this.fail(state, err)
      if (this.options.onStoreError === 'fail-open') {
        log.warn({ err, slotType: subject.type }, 'fastify-slots: slot store failed; proceeding without a slot (fail-open)')
        return this.bypass(subject, started, log)
      }
      throw this.fail(state, storeUnavailable(err, subject.type, subject.id))
    }
    if (result !== 'acquired') {
      this.forget(hold, log)
      throw this.fail(state, result === 'timeout'
        ? this.error('SLOT_WAIT_TIMEOUT', `concurrency limit reached for ${subject.type}: no slot freed within ${settings.maxWaitMs} ms`, subject)
        : this.error('SLOT_QUEUE_FULL', `concurrency limit reached for ${subject.type}, and too many requests are already waiting`, subject))
    }

    const slot = new HeldSlot(subject.type, subject.id, Date.now() - started, hold, log, s => this.giveBack(s))
    if (state.ended) {
      await slot.release()
      throw this.fail(state, this.error('SLOT_WAIT_ABORTED', 'the request ended while acquiring a slot', subject))
    }
    state.slots.add(slot)
    this.held.add(slot)
    log.debug({ slotType: subject.type, slotId: subject.id, waitedMs: slot.waitedMs }, 'fastify-slots: slot acquired')
    return slot
  }

  /** Called as the app starts closing: waiting requests get 503 at once instead of holding up close(). */
  beginClose (): void {
    this.closing = true
    for (const abort of this.activeWaits) abort('SLOT_STORE_UNAVAILABLE', 'the server is shutting down')
  }

  /** Stops the renewal timer and releases every slot this process still holds. */
  async close (): Promise<void> {
    this.beginClose()
    clearInterval(this.renewTimer)
    await Promise.all([...this.held].map(slot => slot.release()))
    await this.store.close?.()
  }

  private async tryThenWait (state: RequestSlots, subject: Subject, attempt: () => Promise<AcquireOutcome>, settings: CallSettings, started: number): Promise<WaitResult> {
    const first = await attempt()
    if (first === AcquireOutcome.Acquired) return 'acquired'
    if (first === AcquireOutcome.QueueFull) return 'queue-full'
    if (settings.maxWaitMs === 0) return 'timeout'

    const controller = new AbortController()
    const abort: AbortWait = (code, message) => controller.abort(this.error(code, message, subject))
    const waiter = new Waiter()
    const queue = this.waiters.get(subject.tag) ?? new Set()
    this.waiters.set(subject.tag, queue)
    queue.add(waiter)
    state.waits.add(abort)
    this.activeWaits.add(abort)
    const pings = settings.stream && settings.ping !== false ? this.startPings(state, settings.ping, abort) : undefined
    try {
      return await waitForSlot({ attempt, deadline: started + settings.maxWaitMs, backoff: this.options.backoff, signal: controller.signal, waiter })
    } finally {
      clearInterval(pings)
      queue.delete(waiter)
      if (queue.size === 0) this.waiters.delete(subject.tag)
      state.waits.delete(abort)
      this.activeWaits.delete(abort)
    }
  }

  private startPings (state: RequestSlots, ping: PingOptions, abort: AbortWait): NodeJS.Timeout {
    const writeFailed = (): void => abort('SLOT_WAIT_ABORTED', 'writing a keepalive to the client failed')
    const sse = state.sseWriter()
    return setInterval(() => {
      if (!sse.write(ping.frame, writeFailed)) writeFailed()
    }, ping.intervalMs)
  }

  /** Writes the error into the stream when the response was already committed as SSE. */
  private fail (state: RequestSlots, error: SlotError): SlotError {
    const sse = state.sse
    if (sse?.started === true) sse.fail(error, this.options.streamErrorFrame(error, state.request))
    return error
  }

  private error (code: SlotErrorCode, message: string, subject: Subject): SlotError {
    const retryAfterSeconds = code === 'SLOT_WAIT_TIMEOUT' || code === 'SLOT_QUEUE_FULL' ? this.retryAfterSeconds : undefined
    return new SlotError(code, message, { slotType: subject.type, slotId: subject.id, retryAfterSeconds })
  }

  private bypass (subject: Subject, started: number, log: FastifyBaseLogger): Slot {
    return new HeldSlot(subject.type, subject.id, Date.now() - started, null, log, async () => {})
  }

  private async giveBack (slot: HeldSlot): Promise<void> {
    this.held.delete(slot)
    const hold = slot.hold
    if (hold === null || slot.lost) return
    try {
      await withTimeout(this.store.release(hold), this.options.storeTimeoutMs, 'the slot store')
      slot.log.debug({ slotType: slot.type, slotId: slot.id, heldMs: Date.now() - slot.acquiredAt }, 'fastify-slots: slot released')
    } catch (err) {
      slot.log.warn({ err, slotType: slot.type }, 'fastify-slots: releasing a slot failed; it frees when its lease expires')
    }
    this.nudge(hold.tag)
  }

  /** Wakes the oldest same-process waiter of the subject that is not already awake. */
  private nudge (tag: string): void {
    for (const waiter of this.waiters.get(tag) ?? []) {
      if (!waiter.awake) {
        waiter.wake()
        return
      }
    }
  }

  /** Best-effort removal of a hold and its waiting ticket after a failed or abandoned acquire. */
  private async forget (hold: Hold, log: FastifyBaseLogger): Promise<void> {
    const timeout = this.options.storeTimeoutMs
    try {
      await Promise.all([
        withTimeout(this.store.release(hold), timeout, 'the slot store'),
        withTimeout(this.store.leaveQueue(hold), timeout, 'the slot store')
      ])
    } catch (err) {
      log.debug({ err }, 'fastify-slots: cleanup after a failed acquire did not reach the store; the entries expire')
    }
  }

  /** One batched renewal of every held slot per tick; a slot whose lease already lapsed is lost. */
  private async renewAll (): Promise<void> {
    if (this.renewing || this.held.size === 0) return
    this.renewing = true
    const slots = [...this.held]
    try {
      const alive = await withTimeout(this.store.renew(slots.map(s => s.hold as Hold), this.options.leaseMs), this.options.storeTimeoutMs, 'the slot store')
      alive.forEach((ok, i) => {
        const slot = slots[i]
        // A release racing this renewal is not a loss.
        if (ok || slot.released) return
        slot.lost = true
        this.held.delete(slot)
        slot.log.warn({ slotType: slot.type, slotId: slot.id }, 'fastify-slots: slot lost: its lease expired before it was renewed')
      })
    } catch (err) {
      this.log.warn({ err }, 'fastify-slots: renewing held slots failed; retrying next tick')
    } finally {
      this.renewing = false
    }
  }
}

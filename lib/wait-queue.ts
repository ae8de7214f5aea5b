/**
 * The wait scheduler. Requests waiting for the same subject in this process queue here in
 * arrival order. A store that grants (Redis, memory) hands each of them a released slot
 * directly, oldest ticket first, wherever it was released; the queue's head polls the store
 * on the backoff schedule only as the safety net, for capacity that frees without a release
 * (a lease that lapsed) and for lost grant messages: N local waiters cost one poller, not N.
 * With a store that does not grant, the head's polls (and a wake-up after each release in
 * this process) are how waiters get slots. When a poll gets a slot and room remains, the
 * next in line tries at once.
 */
import { nextDelay } from './backoff'
import type { SlotError } from './errors'
import type { BackoffOptions } from './options'
import { AcquireOutcome, isAcquired, type Hold } from './stores/store'

export type WaitResult = 'acquired' | 'timeout' | 'queue-full'

/** One request waiting in a {@link SubjectQueue}; settles once, with a result or an error. */
export class WaitingRequest {
  settled = false
  /** It ended holding a slot (granted, or its own try). */
  acquired = false
  readonly result: Promise<WaitResult>
  private settle!: (outcome: WaitResult | SlotError | Error) => void
  private readonly timer: NodeJS.Timeout

  constructor (
    readonly hold: Hold,
    /** One bounded tryAcquire of this request's hold, with nobody ahead of it here. */
    readonly attempt: () => Promise<AcquireOutcome>,
    deadline: number,
    private readonly leave: (entry: WaitingRequest) => void,
    /** The slot was granted for a claim period only: the owner must renew it. */
    private readonly onClaim: () => void = () => {}
  ) {
    this.result = new Promise((resolve, reject) => {
      this.settle = outcome => typeof outcome === 'string' ? resolve(outcome) : reject(outcome)
    })
    this.timer = setTimeout(() => this.finish('timeout'), Math.max(0, deadline - Date.now()))
  }

  /** The store granted this request a slot (a no-op once it stopped waiting). */
  grant (claimed: boolean): void {
    if (this.settled) return
    if (claimed) this.onClaim()
    this.finish('acquired')
  }

  /** Settles the wait (first call wins) and takes it out of its queue. */
  finish (outcome: WaitResult | SlotError | Error): void {
    if (this.settled) return
    this.settled = true
    this.acquired = outcome === 'acquired'
    clearTimeout(this.timer)
    this.leave(this)
    this.settle(outcome)
  }
}

/** The head's sleep between polls; a wake during a poll is kept for the next sleep. */
class Sleeper {
  private pending = false
  private wakeUp: (() => void) | undefined

  wake (): void {
    this.pending = true
    this.wakeUp?.()
  }

  sleep (ms: number): Promise<void> {
    if (this.pending) {
      this.pending = false
      return Promise.resolve()
    }
    return new Promise(resolve => {
      const done = (): void => {
        clearTimeout(timer)
        this.wakeUp = undefined
        this.pending = false
        resolve()
      }
      const timer = setTimeout(done, ms)
      this.wakeUp = done
    })
  }
}

export interface SubjectQueueOptions {
  backoff: BackoffOptions
  /** The store grants released slots to waiters: polls are only the safety net. */
  granted: boolean
  /** A try got a slot after its wait had already ended: give it back. */
  orphaned: (hold: Hold) => void
  /** The queue emptied and stopped. */
  emptied: () => void
}

export class SubjectQueue {
  private readonly entries: WaitingRequest[] = []
  private readonly sleeper = new Sleeper()
  private polling = false

  constructor (private readonly options: SubjectQueueOptions) {}

  get length (): number {
    return this.entries.length
  }

  /** Queues a request that just failed its first try; starts polling if it is the first. */
  add (entry: WaitingRequest): void {
    this.entries.push(entry)
    if (!this.polling) this.poll()
  }

  remove (entry: WaitingRequest): void {
    const index = this.entries.indexOf(entry)
    if (index === -1) return
    this.entries.splice(index, 1)
    // Without grants, a new head should not sleep out its predecessor's backoff.
    if (index === 0 && !this.options.granted) this.sleeper.wake()
  }

  /** A slot of this subject was released here (stores without grants): the head tries now. */
  wake (): void {
    this.sleeper.wake()
  }

  /** The entry's ticket is gone (granted, or lapsed): it tries once now, out of turn. */
  retry (entry: WaitingRequest): void {
    if (entry.settled) return
    this.attemptFor(entry).catch(() => {
      // A failing store is the head's poll's to report.
    })
  }

  private async poll (): Promise<void> {
    this.polling = true
    let delay = 0
    while (this.entries.length > 0) {
      delay = nextDelay(delay, this.options.backoff)
      await this.sleeper.sleep(delay)
      const head = this.entries[0]
      if (head === undefined) break
      try {
        if (await this.attemptFor(head) === AcquireOutcome.AcquiredWithRoom) this.sleeper.wake()
      } catch (err) {
        // The store is failing: every waiter here would only pay its own storeTimeoutMs in
        // turn and reach its deadline first. All of them fail now (503, or fail-open).
        for (const entry of [...this.entries]) entry.finish(err as Error)
      }
    }
    this.polling = false
    this.options.emptied()
  }

  /** One try for the entry, settling it when that decides its wait. */
  private async attemptFor (entry: WaitingRequest): Promise<AcquireOutcome> {
    const outcome = await entry.attempt()
    if (entry.settled) {
      // It timed out or was aborted while the attempt was on its way (a granted entry
      // already holds what the attempt found).
      if (isAcquired(outcome) && !entry.acquired) this.options.orphaned(entry.hold)
    } else if (isAcquired(outcome)) {
      entry.finish('acquired')
    } else if (outcome === AcquireOutcome.QueueFull) {
      // Its ticket lapsed (this process stalled) and others filled the queue meanwhile.
      entry.finish('queue-full')
    }
    return outcome
  }
}

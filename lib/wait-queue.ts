/**
 * The wait scheduler. Requests waiting for the same subject in this process queue here in
 * arrival order, and only the one at the head polls the store: N local waiters cost one
 * poller, not N. The head tries again when woken (a slot of the subject was released, here
 * or, through the store's pub/sub, in another process) and otherwise on the backoff schedule,
 * the safety net for lost wake-ups and for leases that lapse. When it gets a slot and room
 * remains, the next in line tries at once.
 */
import { nextDelay } from './backoff'
import type { SlotError } from './errors'
import type { BackoffOptions } from './options'
import { AcquireOutcome, isAcquired, type Hold, type ReleaseWatch } from './stores/store'

export type WaitResult = 'acquired' | 'timeout' | 'queue-full'

/** One request waiting in a {@link SubjectQueue}; settles once, with a result or an error. */
export class WaitingRequest {
  settled = false
  readonly result: Promise<WaitResult>
  private settle!: (outcome: WaitResult | SlotError | Error) => void
  private readonly timer: NodeJS.Timeout

  constructor (
    readonly hold: Hold,
    /** One bounded tryAcquire of this request's hold, with nobody ahead of it here. */
    readonly attempt: () => Promise<AcquireOutcome>,
    deadline: number,
    private readonly leave: (entry: WaitingRequest) => void
  ) {
    this.result = new Promise((resolve, reject) => {
      this.settle = outcome => typeof outcome === 'string' ? resolve(outcome) : reject(outcome)
    })
    this.timer = setTimeout(() => this.finish('timeout'), Math.max(0, deadline - Date.now()))
  }

  /** Settles the wait (first call wins) and takes it out of its queue. */
  finish (outcome: WaitResult | SlotError | Error): void {
    if (this.settled) return
    this.settled = true
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
  /** Subscribes to the subject's releases in other processes, if the store can. */
  watch?: (wake: () => void) => ReleaseWatch
  /** The head got a slot after its wait had already ended: give it back. */
  orphaned: (hold: Hold) => void
  /** The queue emptied and stopped. */
  emptied: () => void
}

export class SubjectQueue {
  private readonly entries: WaitingRequest[] = []
  private readonly sleeper = new Sleeper()
  private readonly watch: ReleaseWatch | undefined
  private polling = false

  constructor (private readonly options: SubjectQueueOptions) {
    const wake = (): void => this.wake()
    this.watch = options.watch?.(wake)
    // A release between the first failed try and the subscription going live was not heard.
    this.watch?.ready.then(wake, () => {})
  }

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
    // A new head should not sleep out its predecessor's backoff.
    if (index === 0) this.sleeper.wake()
  }

  /** A slot of this subject was released: the head tries now. */
  wake (): void {
    this.sleeper.wake()
  }

  private async poll (): Promise<void> {
    this.polling = true
    let delay = 0
    while (this.entries.length > 0) {
      delay = nextDelay(delay, this.options.backoff)
      await this.sleeper.sleep(delay)
      const head = this.entries[0]
      if (head === undefined) break
      let outcome: AcquireOutcome
      try {
        outcome = await head.attempt()
      } catch (err) {
        // The store is failing: every waiter here would only pay its own storeTimeoutMs in
        // turn and reach its deadline first. All of them fail now (503, or fail-open).
        for (const entry of [...this.entries]) entry.finish(err as Error)
        continue
      }
      if (head.settled) {
        // It timed out or was aborted while the attempt was on its way.
        if (isAcquired(outcome)) this.options.orphaned(head.hold)
        continue
      }
      if (isAcquired(outcome)) {
        head.finish('acquired')
        if (outcome === AcquireOutcome.AcquiredWithRoom) this.sleeper.wake()
      } else if (outcome === AcquireOutcome.QueueFull) {
        // Its ticket lapsed (this process stalled) and others filled the queue meanwhile.
        head.finish('queue-full')
      }
    }
    this.polling = false
    this.watch?.stop()
    this.options.emptied()
  }
}

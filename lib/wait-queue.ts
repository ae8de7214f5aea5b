/**
 * The wait scheduler of one subject in this process. Its waiting acquisitions queue here in
 * arrival order. A store that grants (Redis, memory) hands them released slots directly,
 * oldest ticket first, wherever the slot was released; the queue's head polls the store on the
 * backoff schedule only as the safety net, for capacity that frees without a release (a lease
 * that lapsed) and for lost grant messages. A poll hands free capacity to the oldest tickets
 * of every process, so N local waiters cost one poller, not N. With a store that does not
 * grant, the head's polls (and a wake-up after each release in this process) are how waiters
 * get slots.
 */
import type { Acquisition } from './acquisition'
import { nextDelay } from './backoff'
import type { BackoffOptions } from './options'

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
  /** The store grants released slots to waiters: a new head need not poll at once. */
  granted: boolean
  /** One poll for the acquisition, settling it when that decides its wait. */
  poll: (acquisition: Acquisition) => Promise<void>
  /** The queue emptied and stopped. */
  emptied: () => void
}

export class SubjectQueue {
  private readonly entries: Acquisition[] = []
  private readonly sleeper = new Sleeper()
  private polling = false

  constructor (private readonly options: SubjectQueueOptions) {}

  get length (): number {
    return this.entries.length
  }

  /** The units of the waiters of this priority class or higher. */
  unitsFrom (priority: number): number {
    let units = 0
    for (const { args } of this.entries) if ((args.priority ?? 0) >= priority) units += args.weight ?? 1
    return units
  }

  /** Queues an acquisition whose first try found the subject full; starts polling if it is the first. */
  add (acquisition: Acquisition): void {
    this.entries.push(acquisition)
    if (!this.polling) this.poll()
  }

  remove (acquisition: Acquisition): void {
    const index = this.entries.indexOf(acquisition)
    if (index === -1) return
    this.entries.splice(index, 1)
    // Without grants, a new head should not sleep out its predecessor's backoff.
    if (index === 0 && !this.options.granted) this.sleeper.wake()
  }

  /** Capacity may be free (a release here, a try that left room): the head polls now. */
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
      try {
        await this.options.poll(head)
      } catch (err) {
        // The store is failing: every waiter here would only pay its own storeTimeoutMs in
        // turn and reach its deadline first. All of them fail now (503, or fail-open).
        for (const entry of [...this.entries]) entry.fail(err as Error)
      }
    }
    this.polling = false
    this.options.emptied()
  }
}

/**
 * The wait scheduler: after a full first try, retry on the backoff schedule until the
 * deadline, waking early when a slot of the subject is released in this process, and stop
 * at once when the wait is aborted (client gone, stream write failed, app closing).
 */
import { nextDelay } from './backoff'
import type { SlotErrorCode } from './errors'
import type { BackoffOptions } from './options'
import { AcquireOutcome } from './stores/store'

/** Stops a wait; it rejects with a SlotError of this code and message. */
export type AbortWait = (code: SlotErrorCode, message: string) => void

export interface WaitPlan {
  /** One bounded tryAcquire; refreshes this waiter's ticket when still full. */
  attempt: () => Promise<AcquireOutcome>
  deadline: number
  backoff: BackoffOptions
  /** Aborted with the SlotError the wait must reject with. */
  signal: AbortSignal
  waiter: Waiter
}

/** A sleeping waiter a release can nudge. A nudge during an attempt is kept for the next sleep. */
export class Waiter {
  private nudged = false
  private wakeUp: (() => void) | undefined

  get awake (): boolean {
    return this.nudged
  }

  wake (): void {
    this.nudged = true
    this.wakeUp?.()
  }

  sleep (ms: number, signal: AbortSignal): Promise<void> {
    if (this.nudged || signal.aborted) {
      this.nudged = false
      return Promise.resolve()
    }
    return new Promise(resolve => {
      const done = (): void => {
        clearTimeout(timer)
        signal.removeEventListener('abort', done)
        this.wakeUp = undefined
        this.nudged = false
        resolve()
      }
      const timer = setTimeout(done, ms)
      signal.addEventListener('abort', done)
      this.wakeUp = done
    })
  }
}

/** Resolves when acquired; resolves 'timeout' or 'queue-full'; rejects with the abort reason. */
export async function waitForSlot ({ attempt, deadline, backoff, signal, waiter }: WaitPlan): Promise<'acquired' | 'timeout' | 'queue-full'> {
  let delay = 0
  for (;;) {
    const remaining = deadline - Date.now()
    if (remaining <= 0) return 'timeout'
    delay = nextDelay(delay, backoff)
    await waiter.sleep(Math.min(delay, remaining), signal)
    if (signal.aborted) throw signal.reason
    const outcome = await attempt()
    if (signal.aborted) throw signal.reason
    if (outcome === AcquireOutcome.Acquired) return 'acquired'
    // Our ticket expired (this process stalled) and others filled the queue meanwhile.
    if (outcome === AcquireOutcome.QueueFull) return 'queue-full'
  }
}

/**
 * Every store call is bounded by storeTimeoutMs: a dead Redis must fail fast instead of
 * hanging in ioredis' offline queue (the failure @fastify/rate-limit's skipOnError had).
 *
 * The bound costs no timer per call. Calls with one timeout end their wait in the order they
 * began, so each timeout keeps its pending calls in a list, oldest first, and one timer armed
 * for the oldest: when it fires, the calls past their deadline fail, and it is armed again for
 * the next. A call that settles leaves the list at once (a settled call kept until the sweep
 * would live long enough to be promoted, and cost the garbage collector more than the timer).
 * Under load that is one timer run per timeout period instead of a setTimeout, a
 * clearTimeout and a Promise.race per call.
 */
import { SlotError } from './errors'

interface Pending {
  deadline: number
  fail: (err: Error) => void
  prev: Pending | undefined
  next: Pending | undefined
}

class Deadlines {
  private oldest: Pending | undefined
  private newest: Pending | undefined
  private timer: NodeJS.Timeout | undefined

  constructor (private readonly timeoutMs: number) {}

  add (fail: (err: Error) => void): Pending {
    const entry: Pending = { deadline: performance.now() + this.timeoutMs, fail, prev: this.newest, next: undefined }
    if (this.newest === undefined) {
      this.oldest = entry
      // A pending call keeps the process alive until its deadline, as a timer of its own would.
      this.timer?.ref()
    } else {
      this.newest.next = entry
    }
    this.newest = entry
    this.timer ??= this.arm(this.timeoutMs)
    return entry
  }

  /** Takes the entry out of the list; one already out (failed by the sweep, then settled) is left alone. */
  remove (entry: Pending): void {
    if (entry.prev === undefined && this.oldest !== entry) return
    if (entry.prev === undefined) this.oldest = entry.next
    else entry.prev.next = entry.next
    if (entry.next === undefined) this.newest = entry.prev
    else entry.next.prev = entry.prev
    entry.prev = entry.next = undefined
    if (this.oldest === undefined) this.timer?.unref()
  }

  private sweep (): void {
    this.timer = undefined
    const now = performance.now()
    while (this.oldest !== undefined && this.oldest.deadline <= now) {
      const entry = this.oldest
      this.remove(entry)
      entry.fail(new Error(`the slot store did not answer within ${this.timeoutMs} ms`))
    }
    if (this.oldest !== undefined) this.timer = this.arm(Math.max(1, Math.ceil(this.oldest.deadline - now)))
  }

  /** It may stay armed after the last call settled: unref'd then, so it never holds the process open. */
  private arm (ms: number): NodeJS.Timeout {
    return setTimeout(() => this.sweep(), ms)
  }
}

const deadlines = new Map<number, Deadlines>()

function deadlinesOf (timeoutMs: number): Deadlines {
  let list = deadlines.get(timeoutMs)
  if (list === undefined) {
    list = new Deadlines(timeoutMs)
    deadlines.set(timeoutMs, list)
  }
  return list
}

/** `promise`, or a rejection once the store has not answered within `timeoutMs`. */
export function storeCall<T> (promise: Promise<T>, timeoutMs: number): Promise<T> {
  const list = deadlinesOf(timeoutMs)
  return new Promise<T>((resolve, reject) => {
    const entry = list.add(reject)
    promise.then(value => {
      list.remove(entry)
      resolve(value)
    }, (err: unknown) => {
      list.remove(entry)
      reject(err)
    })
  })
}

export function storeUnavailable (cause: unknown, slotType?: string, slotId?: string): SlotError {
  const reason = cause instanceof Error ? cause.message : String(cause)
  return new SlotError('SLOT_STORE_UNAVAILABLE', `slot store unavailable: ${reason}`, { slotType, slotId, cause })
}

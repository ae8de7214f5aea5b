/**
 * Turns the timestamped cycles of a contended run into the numbers we report: throughput,
 * slot utilisation, hand-off delay, waits, fairness and Redis cost.
 */
import type { Cycle, PendingWait } from './common'

/** Nearest-rank percentile of an ascending array (NaN when empty). */
export function percentile (sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN
  const rank = Math.ceil(q * sorted.length)
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]
}

/** Jain's fairness index: 1 when every value is equal, 1/n when one takes everything. */
export function jain (values: readonly number[]): number {
  const sum = values.reduce((a, b) => a + b, 0)
  const squares = values.reduce((a, b) => a + b * b, 0)
  return squares === 0 ? 1 : (sum * sum) / (values.length * squares)
}

export interface Distribution {
  count: number
  p50: number
  p99: number
  max: number
}

export function distribution (values: number[]): Distribution {
  const sorted = [...values].sort((a, b) => a - b)
  return { count: sorted.length, p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), max: sorted.length === 0 ? NaN : sorted[sorted.length - 1] }
}

export interface TimelineInput {
  cycles: readonly Cycle[]
  pending: readonly PendingWait[]
  windowStart: number
  windowEnd: number
  limit: number
  workers: number
}

export interface ContendedMetrics {
  acquisitions: number
  acquisitionsPerSecond: number
  /** Sum of held time (acquired → release called) inside the window / (limit × window). */
  utilisation: number
  /** From a release that happened while others waited to the next acquisition (ms). */
  handoff: Distribution
  /** Waits of the acquisitions in the window (ms). */
  wait: Distribution
  /** Requests still waiting when the run stopped, and the longest of those waits so far (ms). */
  pendingAtEnd: number
  pendingMaxMs: number
  /** Largest wait, counting the unfinished ones at their length so far (ms). */
  waitMaxInclPendingMs: number
  /** Time-averaged number of workers waiting during the window. */
  meanWaiting: number
  /** Workers that got no slot in the window. */
  starvedWorkers: number
  jain: number
  /** Largest wait (unfinished ones included) over the median wait. */
  maxOverP50Wait: number
  /** Every wait in the window plus the unfinished ones at their length so far, ascending (ms). */
  waitsForChart: number[]
}

const RELEASE = 0
const REQUEST = 1
const ACQUIRE = 2

export function analyseContended ({ cycles, pending, windowStart, windowEnd, limit, workers }: TimelineInput): ContendedMetrics {
  const seconds = (windowEnd - windowStart) / 1000
  const inWindow = (t: number): boolean => t >= windowStart && t < windowEnd

  // Utilisation: held intervals clipped to the window.
  let heldMs = 0
  for (const c of cycles) heldMs += Math.max(0, Math.min(c.releasedAt, windowEnd) - Math.max(c.acquiredAt, windowStart))

  // One timeline of every process's events, on the shared clock.
  const events: Array<[number, number]> = []
  for (const c of cycles) events.push([c.requestedAt, REQUEST], [c.acquiredAt, ACQUIRE], [c.releasedAt, RELEASE])
  for (const p of pending) events.push([p.requestedAt, REQUEST])
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1])

  let waiting = 0
  let waitingArea = 0
  let last = windowStart
  const releases: number[] = []
  let head = 0
  const handoffs: number[] = []
  for (const [t, kind] of events) {
    if (t > windowStart) {
      const from = Math.max(last, windowStart)
      const to = Math.min(t, windowEnd)
      if (to > from) waitingArea += waiting * (to - from)
      last = t
    }
    if (kind === REQUEST) {
      waiting++
    } else if (kind === ACQUIRE) {
      waiting--
      // The capacity freed by the oldest unmatched release (made while others waited) is taken.
      if (head < releases.length) {
        const released = releases[head++]
        if (inWindow(released)) handoffs.push(t - released)
      }
    } else if (waiting > 0) {
      releases.push(t)
    }
  }
  if (last < windowEnd) waitingArea += waiting * (windowEnd - Math.max(last, windowStart))

  const acquired = cycles.filter(c => inWindow(c.acquiredAt))
  const waits = acquired.map(c => c.acquiredAt - c.requestedAt)
  const pendingWaits = pending.map(p => Math.min(p.abortedAt, windowEnd) - p.requestedAt)
  const perWorker = new Array<number>(workers).fill(0)
  for (const c of acquired) perWorker[c.worker]++
  const wait = distribution(waits)
  const pendingMaxMs = pendingWaits.length === 0 ? 0 : Math.max(...pendingWaits)
  const waitMaxInclPendingMs = Math.max(wait.count === 0 ? 0 : wait.max, pendingMaxMs)
  return {
    acquisitions: acquired.length,
    acquisitionsPerSecond: acquired.length / seconds,
    utilisation: heldMs / (limit * (windowEnd - windowStart)),
    handoff: distribution(handoffs),
    wait,
    pendingAtEnd: pending.length,
    pendingMaxMs,
    waitMaxInclPendingMs,
    meanWaiting: waitingArea / (windowEnd - windowStart),
    starvedWorkers: perWorker.filter(n => n === 0).length,
    jain: jain(perWorker),
    maxOverP50Wait: waitMaxInclPendingMs / wait.p50,
    waitsForChart: [...waits, ...pendingWaits].sort((a, b) => a - b)
  }
}

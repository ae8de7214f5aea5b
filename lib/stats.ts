/**
 * `fastify.slots.stats()`: counters by outcome and a wait-time histogram, kept in process
 * from the plugin's own events (cheap enough to be always on).
 */
import type { RejectionCode } from './errors'
import type { SlotEvents } from './events'

/** Upper bounds (ms) of the wait-time histogram buckets; the last bucket is open-ended. */
export const WAIT_BUCKETS_MS = [1, 5, 10, 50, 100, 500, 1000, 5000, 10_000, 30_000] as const

export interface SlotStats {
  acquired: number
  released: number
  lost: number
  storeErrors: number
  pings: number
  rejected: Record<RejectionCode, number>
  /** Slots this process holds right now. */
  held: number
  /** Requests of this process waiting right now. */
  waiting: number
  /** Waits of acquired slots: `counts[i]` waited at most `bucketsMs[i]` (and more than the previous bound); the last count is above the last bound. */
  waitMs: { bucketsMs: readonly number[], counts: number[], sum: number, count: number }
}

export class StatsRecorder {
  private readonly counters = { acquired: 0, released: 0, lost: 0, storeErrors: 0, pings: 0 }
  private readonly rejected: Record<RejectionCode, number> = {
    SLOT_WAIT_TIMEOUT: 0, SLOT_QUEUE_FULL: 0, SLOT_WAIT_TOO_LONG: 0, SLOT_WAIT_ABORTED: 0, SLOT_STORE_UNAVAILABLE: 0, SLOT_INVALID_ARGUMENT: 0
  }

  private readonly counts = new Array<number>(WAIT_BUCKETS_MS.length + 1).fill(0)
  private sum = 0

  constructor (events: SlotEvents) {
    events.on('acquired', ({ waitedMs }) => {
      this.counters.acquired++
      this.sum += waitedMs
      const bucket = WAIT_BUCKETS_MS.findIndex(bound => waitedMs <= bound)
      this.counts[bucket === -1 ? WAIT_BUCKETS_MS.length : bucket]++
    })
    events.on('rejected', ({ code }) => { this.rejected[code]++ })
    events.on('released', () => { this.counters.released++ })
    events.on('lost', () => { this.counters.lost++ })
    events.on('storeError', () => { this.counters.storeErrors++ })
    events.on('ping', () => { this.counters.pings++ })
  }

  snapshot (held: number, waiting: number): SlotStats {
    return {
      ...this.counters,
      rejected: { ...this.rejected },
      held,
      waiting,
      waitMs: { bucketsMs: WAIT_BUCKETS_MS, counts: [...this.counts], sum: this.sum, count: this.counters.acquired }
    }
  }
}

/**
 * The in-process store: the same semantics as the Redis store for a single instance (and for
 * trying the plugin without Redis). Slots are not shared between processes.
 */
import { AcquireOutcome, type Hold, type SlotStore, type TryAcquireArgs } from './store'

/** member → expiry (ms since epoch). */
type Expiries = Map<string, number>

interface SubjectState {
  holders: Expiries
  waiters: Expiries
}

export interface MemoryStoreOptions {
  /** The clock, replaceable in tests. */
  now?: () => number
}

function purge (entries: Expiries, now: number): void {
  for (const [member, expiry] of entries) {
    if (expiry <= now) entries.delete(member)
  }
}

export class MemoryStore implements SlotStore {
  private readonly subjects = new Map<string, SubjectState>()
  private readonly now: () => number

  constructor (options: MemoryStoreOptions = {}) {
    this.now = options.now ?? Date.now
  }

  async tryAcquire ({ tag, member, max, leaseMs, maxWaiters, ticketTtlMs }: TryAcquireArgs): Promise<AcquireOutcome> {
    const now = this.now()
    const state = this.subjects.get(tag) ?? { holders: new Map(), waiters: new Map() }
    this.subjects.set(tag, state)
    try {
      purge(state.holders, now)
      if (state.holders.has(member) || state.holders.size < max) {
        state.holders.set(member, now + leaseMs)
        state.waiters.delete(member)
        return AcquireOutcome.Acquired
      }
      if (ticketTtlMs <= 0) return AcquireOutcome.Waiting
      purge(state.waiters, now)
      if (!state.waiters.has(member) && state.waiters.size >= maxWaiters) return AcquireOutcome.QueueFull
      state.waiters.set(member, now + ticketTtlMs)
      return AcquireOutcome.Waiting
    } finally {
      this.forgetIfEmpty(tag, state)
    }
  }

  async release ({ tag, member }: Hold): Promise<void> {
    const state = this.subjects.get(tag)
    if (state === undefined) return
    state.holders.delete(member)
    this.forgetIfEmpty(tag, state)
  }

  async leaveQueue ({ tag, member }: Hold): Promise<void> {
    const state = this.subjects.get(tag)
    if (state === undefined) return
    state.waiters.delete(member)
    this.forgetIfEmpty(tag, state)
  }

  async renew (holds: readonly Hold[], leaseMs: number): Promise<boolean[]> {
    const now = this.now()
    return holds.map(({ tag, member }) => {
      const holders = this.subjects.get(tag)?.holders
      const expiry = holders?.get(member)
      if (holders === undefined || expiry === undefined) return false
      if (expiry <= now) {
        holders.delete(member)
        return false
      }
      holders.set(member, now + leaseMs)
      return true
    })
  }

  /** Counts live holders and waiters of a subject tag (for tests and diagnostics). */
  count (tag: string): { held: number, waiting: number } {
    const state = this.subjects.get(tag)
    if (state === undefined) return { held: 0, waiting: 0 }
    const now = this.now()
    purge(state.holders, now)
    purge(state.waiters, now)
    return { held: state.holders.size, waiting: state.waiters.size }
  }

  /** Memory is freed when a subject has neither holders nor waiters. */
  private forgetIfEmpty (tag: string, state: SubjectState): void {
    if (state.holders.size === 0 && state.waiters.size === 0) this.subjects.delete(tag)
  }
}

/**
 * The in-process store: the same semantics as the Redis store for a single instance (and for
 * trying the plugin without Redis). Slots are not shared between processes.
 */
import { AcquireOutcome, memberInstance, type GrantListener, type GrantSubscription, type Hold, type ReleaseArgs, type SlotStore, type SubjectLoad, type TryAcquireArgs } from './store'

/** member → expiry (ms since epoch). Maps keep insertion order: the tickets' arrival order. */
type Expiries = Map<string, number>

interface SubjectState {
  holders: Expiries
  tickets: Expiries
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

/** Live tickets that arrived before `member`'s (all of them when it has none). */
function rank (tickets: Expiries, member: string): number {
  let ahead = 0
  for (const key of tickets.keys()) {
    if (key === member) return ahead
    ahead++
  }
  return ahead
}

export class MemoryStore implements SlotStore {
  private readonly subjects = new Map<string, SubjectState>()
  private readonly grantListeners = new Map<string, GrantListener>()
  private readonly now: () => number

  constructor (options: MemoryStoreOptions = {}) {
    this.now = options.now ?? Date.now
  }

  async tryAcquire ({ tag, member, max, leaseMs, maxWaiters, ticketTtlMs, fair = false, ahead = 0 }: TryAcquireArgs): Promise<AcquireOutcome> {
    const now = this.now()
    const state = this.subjects.get(tag) ?? { holders: new Map(), tickets: new Map() }
    this.subjects.set(tag, state)
    try {
      purge(state.holders, now)
      purge(state.tickets, now)
      const holding = state.holders.has(member)
      const others = state.holders.size - (holding ? 1 : 0)
      if (holding || others + (fair ? rank(state.tickets, member) : ahead) < max) {
        state.holders.set(member, now + leaseMs)
        state.tickets.delete(member)
        return others + 1 < max ? AcquireOutcome.AcquiredWithRoom : AcquireOutcome.Acquired
      }
      if (ticketTtlMs <= 0) return AcquireOutcome.Waiting
      if (!state.tickets.has(member) && state.tickets.size >= maxWaiters) return AcquireOutcome.QueueFull
      state.tickets.set(member, now + ticketTtlMs)
      return AcquireOutcome.Waiting
    } finally {
      this.forgetIfEmpty(tag, state)
    }
  }

  async release ({ tag, member, max = 0, leaseMs = 0, claimMs = 0 }: ReleaseArgs): Promise<boolean> {
    const state = this.subjects.get(tag)
    const expiry = state?.holders.get(member)
    if (state === undefined || expiry === undefined) return false
    state.holders.delete(member)
    const now = this.now()
    const granted = max > 0 ? this.grantFreed(state, max, now, memberInstance(member), leaseMs, claimMs) : []
    this.forgetIfEmpty(tag, state)
    for (const [waiter, claimed] of granted) this.grantListeners.get(memberInstance(waiter))?.(waiter, claimed)
    return expiry > now
  }

  onGrant (instanceId: string, listener: GrantListener): GrantSubscription {
    this.grantListeners.set(instanceId, listener)
    return {
      ready: Promise.resolve(),
      stop: () => { if (this.grantListeners.get(instanceId) === listener) this.grantListeners.delete(instanceId) }
    }
  }

  /** The freed capacity goes to the oldest live tickets, as in the Redis store's release script. */
  private grantFreed (state: SubjectState, max: number, now: number, releaser: string, leaseMs: number, claimMs: number): Array<[string, boolean]> {
    purge(state.holders, now)
    purge(state.tickets, now)
    const granted: Array<[string, boolean]> = []
    for (const waiter of state.tickets.keys()) {
      if (state.holders.size >= max) break
      const claimed = memberInstance(waiter) !== releaser
      state.holders.set(waiter, now + (claimed ? claimMs : leaseMs))
      state.tickets.delete(waiter)
      granted.push([waiter, claimed])
    }
    return granted
  }

  async leaveQueue ({ tag, member }: Hold): Promise<void> {
    const state = this.subjects.get(tag)
    if (state === undefined) return
    state.tickets.delete(member)
    this.forgetIfEmpty(tag, state)
  }

  async renew (holds: readonly Hold[], leaseMs: number): Promise<boolean[]> {
    return this.extend(holds, 'holders', leaseMs)
  }

  async refreshTickets (holds: readonly Hold[], ticketTtlMs: number): Promise<boolean[]> {
    return this.extend(holds, 'tickets', ticketTtlMs)
  }

  async usage (tags: readonly string[]): Promise<SubjectLoad[]> {
    const now = this.now()
    return tags.map(tag => {
      const state = this.subjects.get(tag)
      if (state === undefined) return { held: 0, waiting: 0 }
      purge(state.holders, now)
      purge(state.tickets, now)
      this.forgetIfEmpty(tag, state)
      return { held: state.holders.size, waiting: state.tickets.size }
    })
  }

  /** Extends live entries in place (a ticket keeps its place in line); lapsed ones are dropped. */
  private extend (holds: readonly Hold[], structure: keyof SubjectState, ttlMs: number): boolean[] {
    const now = this.now()
    return holds.map(({ tag, member }) => {
      const state = this.subjects.get(tag)
      const expiry = state?.[structure].get(member)
      if (state === undefined || expiry === undefined) return false
      if (expiry <= now) {
        state[structure].delete(member)
        this.forgetIfEmpty(tag, state)
        return false
      }
      state[structure].set(member, now + ttlMs)
      return true
    })
  }

  /** Memory is freed when a subject has neither holders nor waiters. */
  private forgetIfEmpty (tag: string, state: SubjectState): void {
    if (state.holders.size === 0 && state.tickets.size === 0) this.subjects.delete(tag)
  }
}

/**
 * The in-process store: the same semantics as the Redis store's scripts for apps sharing one
 * process (and for trying the plugin without Redis). Slots are not shared between processes.
 */
import { ChurnMap } from '../churn-map'
import {
  AcquireOutcome, parseMember, type AcquireSetArgs, type SetMemberArgs, precedenceUs, ReleaseOutcome, unitEntries, weightOf, type GrantListener, type GrantSubscription, type MemberRef,
  type ReleaseArgs, type SlotStore, type SubjectLoad, type TryAcquireAnswer, type TryAcquireArgs
} from './store'

/** A holder's or a ticket's lease: when it ends, and when it was first taken (ms since epoch). */
interface Entry {
  expiry: number
  since: number
}

/**
 * A ticket also has its place: its arrival (µs, unique) less its class's precedence, as in the
 * Redis queue. A set's ticket is parked (out of line, as out of the Redis queue) where it fits.
 */
interface Ticket extends Entry {
  order: number
  parked?: boolean
}

/** What a grant pass did: the members it granted (or, a set's, told to retry), and whether `mine` fits. */
interface Pass {
  granted: Array<[string, boolean]>
  fits: boolean
}

/**
 * member → entry. Maps keep insertion order: the tickets' arrival order, which is their grant
 * order while every class is 0. A busy subject's entries come and go with every operation
 * (see ChurnMap).
 */
type Entries<E extends Entry = Entry> = ChurnMap<string, E>

interface SubjectState {
  holders: Entries
  tickets: Entries<Ticket>
}

export interface MemoryStoreOptions {
  /** The clock, replaceable in tests. */
  now?: () => number
}

function purge (entries: Entries<Entry>, now: number): void {
  for (const [member, entry] of entries) {
    if (entry.expiry <= now) entries.delete(member)
  }
}

/**
 * Holds a slot of `weight` units, as the Redis store does: one entry per unit, all sharing
 * one Entry, so they are renewed and lapse together and `holders.size` counts units.
 */
function holdUnits (holders: Entries, member: string, weight: number, entry: Entry): void {
  if (weight === 1) holders.set(member, entry)
  else for (const unit of unitEntries(member, weight)) holders.set(unit, entry)
}

function dropUnits (holders: Entries, member: string, weight: number): void {
  if (weight === 1) holders.delete(member)
  else for (const unit of unitEntries(member, weight)) holders.delete(unit)
}

/** Tickets placed before `order`. */
function countBefore (tickets: Entries<Ticket>, order: number): number {
  let ahead = 0
  for (const ticket of tickets.values()) if (ticket.order < order) ahead++
  return ahead
}

/** The units of the tickets placed before `order`. */
function unitsBefore (tickets: Entries<Ticket>, order: number): number {
  let units = 0
  for (const [member, ticket] of tickets) if (ticket.order < order) units += weightOf(member)
  return units
}

/**
 * The tickets in grant order: insertion order (iterated in place, nothing copied), unless a
 * class above 0 placed one earlier, and only then a sorted copy.
 */
function inGrantOrder (tickets: Entries<Ticket>): Iterable<string> {
  let last = -Infinity
  for (const ticket of tickets.values()) {
    if (ticket.order < last) return [...tickets].sort((a, b) => a[1].order - b[1].order).map(([member]) => member)
    last = ticket.order
  }
  return tickets.keys()
}

export class MemoryStore implements SlotStore {
  /** A subject comes and goes with its holders and tickets: with every operation, when it is not busy. */
  private readonly subjects = new ChurnMap<string, SubjectState>()
  private readonly grantListeners = new Map<string, GrantListener>()
  private readonly now: () => number
  /** The last arrival given (µs): unique and increasing, like the Redis queue's. */
  private lastArrival = 0

  constructor (options: MemoryStoreOptions = {}) {
    this.now = options.now ?? Date.now
  }

  async tryAcquire ({ tag, member, max, leaseMs, maxWaiters, ticketTtlMs, fair = false, ahead = 0, priority, priorityStepMs }: TryAcquireArgs): Promise<TryAcquireAnswer> {
    const now = this.now()
    const state = this.state(tag, now)
    const precedence = precedenceUs(priority, priorityStepMs)
    try {
      // Fair: the units of every ticket placed before where it would queue are ahead (in
      // class 0, all of them: one taken this same millisecond too).
      const before = fair ? unitsBefore(state.tickets, precedence === 0 ? Infinity : now * 1000 - precedence) : ahead
      // A member that already holds (a resent try) is counted in size, with every unit.
      const held = state.holders.size
      const weight = weightOf(member)
      if (held + before + weight <= max) {
        const holding = state.holders.has(member)
        if (!holding) holdUnits(state.holders, member, weight, { expiry: now + leaseMs, since: now })
        else this.keepHolding(state, member, now, leaseMs)
        return (holding ? held : held + weight) + before < max ? AcquireOutcome.AcquiredWithRoom : AcquireOutcome.Acquired
      }
      if (this.keepHolding(state, member, now, leaseMs)) return AcquireOutcome.Acquired
      if (ticketTtlMs <= 0) return AcquireOutcome.Full
      const place = this.queueTicket(state, member, now, maxWaiters, ticketTtlMs, precedence)
      return place < 0 ? AcquireOutcome.QueueFull : { outcome: AcquireOutcome.Full, ahead: place }
    } finally {
      this.forgetIfEmpty(tag, state)
    }
  }

  async poll ({ tag, member, leaseMs, maxWaiters, ticketTtlMs, priority, priorityStepMs }: TryAcquireArgs): Promise<AcquireOutcome> {
    const now = this.now()
    const state = this.state(tag, now)
    try {
      if (this.keepHolding(state, member, now, leaseMs)) return AcquireOutcome.Acquired
      if (ticketTtlMs > 0 && this.queueTicket(state, member, now, maxWaiters, ticketTtlMs, precedenceUs(priority, priorityStepMs)) < 0) return AcquireOutcome.QueueFull
      const { granted } = this.grantWaiting(state, now, parseMember(member).instance, leaseMs)
      this.announce(tag, granted)
      return granted.some(([waiter]) => waiter === member) ? AcquireOutcome.Acquired : AcquireOutcome.Full
    } finally {
      this.forgetIfEmpty(tag, state)
    }
  }

  async release (args: ReleaseArgs): Promise<ReleaseOutcome> {
    return this.giveBack(args, false)
  }

  async abandon (args: ReleaseArgs): Promise<void> {
    this.giveBack(args, true)
  }

  onGrant (instanceId: string, listener: GrantListener): GrantSubscription {
    this.grantListeners.set(instanceId, listener)
    return {
      ready: Promise.resolve(),
      stop: () => { if (this.grantListeners.get(instanceId) === listener) this.grantListeners.delete(instanceId) }
    }
  }

  async renew (refs: readonly MemberRef[], leaseMs: number): Promise<boolean[]> {
    return this.extend(refs, 'holders', leaseMs)
  }

  async refreshTickets (refs: readonly MemberRef[], ticketTtlMs: number): Promise<boolean[]> {
    return this.extend(refs, 'tickets', ticketTtlMs)
  }

  async usage (tags: readonly string[]): Promise<SubjectLoad[]> {
    const now = this.now()
    return tags.map(tag => {
      const state = this.subjects.get(tag)
      if (state === undefined) return { held: 0, waiting: 0, oldestWaitMs: 0, waitingByPriority: {} }
      purge(state.holders, now)
      purge(state.tickets, now)
      this.forgetIfEmpty(tag, state)
      let oldest = now
      const waitingByPriority: Record<number, number> = {}
      for (const [member, ticket] of state.tickets) {
        oldest = Math.min(oldest, ticket.since)
        const priority = parseMember(member).priority
        waitingByPriority[priority] = (waitingByPriority[priority] ?? 0) + 1
      }
      return { held: state.holders.size, waiting: state.tickets.size, oldestWaitMs: now - oldest, waitingByPriority }
    })
  }

  /** The subject's state with lapsed holders and tickets gone. */
  private state (tag: string, now: number): SubjectState {
    let state = this.subjects.get(tag)
    if (state === undefined) {
      state = { holders: new ChurnMap(), tickets: new ChurnMap() }
      this.subjects.set(tag, state)
    }
    purge(state.holders, now)
    purge(state.tickets, now)
    return state
  }

  private keepHolding (state: SubjectState, member: string, now: number, leaseMs: number): boolean {
    const entry = state.holders.get(member)
    if (entry === undefined) return false
    entry.expiry = now + leaseMs
    return true
  }

  /**
   * Refreshes the member's ticket, or queues it at the back of its class unless maxWaiters
   * others wait. Answers the tickets ahead of it, or -1 when the queue is full.
   */
  private queueTicket (state: SubjectState, member: string, now: number, maxWaiters: number, ticketTtlMs: number, precedence: number): number {
    let ticket = state.tickets.get(member)
    if (ticket === undefined) {
      if (state.tickets.size >= maxWaiters) return -1
      ticket = { expiry: now + ticketTtlMs, since: now, order: this.nextPlace(now, precedence) }
      // In class 0 every ticket already there is ahead of it.
      const ahead = precedence === 0 ? state.tickets.size : countBefore(state.tickets, ticket.order)
      state.tickets.set(member, ticket)
      return ahead
    }
    ticket.expiry = now + ticketTtlMs
    return countBefore(state.tickets, ticket.order)
  }

  /** A release, or (`leaveQueue`) an abandon: the ticket goes with the slot, in one step. */
  private giveBack ({ tag, member, leaseMs = 0 }: ReleaseArgs, leaveQueue: boolean): ReleaseOutcome {
    const state = this.subjects.get(tag)
    if (state === undefined) return ReleaseOutcome.Gone
    const now = this.now()
    if (leaveQueue) state.tickets.delete(member)
    const expiry = state.holders.get(member)?.expiry
    dropUnits(state.holders, member, weightOf(member))
    if (state.tickets.size > 0) this.announce(tag, this.grantWaiting(state, now, parseMember(member).instance, leaseMs, member).granted)
    this.forgetIfEmpty(tag, state)
    if (expiry === undefined) return ReleaseOutcome.Gone
    return expiry > now ? ReleaseOutcome.Released : ReleaseOutcome.Lapsed
  }

  /**
   * The oldest live tickets, each admitted only below its own max, stopping at the first that
   * does not fit (the rule of the Redis store's grantWaiting). A grant to a member of
   * `instance` (the caller) gets `leaseMs`; any other its own claim. A set's ticket that fits
   * is never granted: its room is kept through the pass and it is told to retry (listed like a
   * grant); `mine`, a polling set's own ticket, is only checked.
   */
  private grantWaiting (state: SubjectState, now: number, instance: string, leaseMs: number, leaving?: string, mine?: string): Pass {
    purge(state.holders, now)
    purge(state.tickets, now)
    const pass: Pass = { granted: [], fits: false }
    let held = state.holders.size
    for (const waiter of inGrantOrder(state.tickets)) {
      if (state.tickets.get(waiter)?.parked === true) continue
      const { instance: owner, max, claimMs, weight, set } = parseMember(waiter)
      let waits = false
      // A member that already holds, or is leaving, has a stale ticket: it only loses it (as
      // does a malformed one: no max, or heavier than it).
      if (max >= weight && waiter !== leaving && !state.holders.has(waiter)) {
        if (held + weight > max) break
        const claimed = owner !== instance || leaseMs <= 0
        if (set) {
          waits = true
          if (waiter === mine) pass.fits = true
          else pass.granted.push([waiter, claimed])
        } else {
          holdUnits(state.holders, waiter, weight, { expiry: now + (claimed ? claimMs : leaseMs), since: now })
          pass.granted.push([waiter, claimed])
        }
        held += weight
      }
      if (!waits) state.tickets.delete(waiter)
    }
    return pass
  }

  async acquireSet ({ members, first, leaseMs, maxWaiters, ticketTtlMs, fair = false, priority, priorityStepMs }: AcquireSetArgs): Promise<TryAcquireAnswer> {
    const now = this.now()
    const states = members.map(({ tag }) => this.state(tag, now))
    try {
      // Admitted already (a resent call): every slot of it was written at once.
      if (states[0].holders.has(members[0].member)) {
        members.forEach(({ member }, i) => this.keepHolding(states[i], member, now, leaseMs))
        return AcquireOutcome.Acquired
      }
      const precedence = precedenceUs(priority, priorityStepMs)
      if (first) return this.firstSetTry(members, states, now, leaseMs, maxWaiters, ticketTtlMs, fair, precedence)
      return this.pollSet(members, states, now, leaseMs, maxWaiters, ticketTtlMs, precedence)
    } finally {
      members.forEach(({ tag }, i) => this.forgetIfEmpty(tag, states[i]))
    }
  }

  private firstSetTry (members: readonly SetMemberArgs[], states: SubjectState[], now: number, leaseMs: number, maxWaiters: number, ticketTtlMs: number, fair: boolean, precedence: number): TryAcquireAnswer {
    let all = true
    let room = true
    const fits = members.map(({ member, max, ahead = 0 }, i) => {
      const before = fair ? unitsBefore(states[i].tickets, precedence === 0 ? Infinity : now * 1000 - precedence) : ahead
      const units = states[i].holders.size + before + weightOf(member)
      if (units > max) all = false
      else if (units === max) room = false
      return units <= max
    })
    if (all) {
      members.forEach(({ member }, i) => holdUnits(states[i].holders, member, weightOf(member), { expiry: now + leaseMs, since: now }))
      return room ? AcquireOutcome.AcquiredWithRoom : AcquireOutcome.Acquired
    }
    if (ticketTtlMs <= 0) return AcquireOutcome.Full
    if (!this.claimPlaces(members, states, maxWaiters)) return AcquireOutcome.QueueFull
    const order = states[0].tickets.get(members[0].member)?.order ?? this.nextPlace(now, precedence)
    this.placeSet(members, states, now, ticketTtlMs, order, fits)
    let ahead = 0
    members.forEach((_, i) => {
      if (fits[i]) return
      let before = 0
      for (const ticket of states[i].tickets.values()) if (ticket.order < order && ticket.parked !== true) before++
      ahead = Math.max(ahead, before)
    })
    return { outcome: AcquireOutcome.Full, ahead }
  }

  private pollSet (members: readonly SetMemberArgs[], states: SubjectState[], now: number, leaseMs: number, maxWaiters: number, ticketTtlMs: number, precedence: number): AcquireOutcome {
    let order = states[0].tickets.get(members[0].member)?.order
    if (members.some(({ member }, i) => !states[i].tickets.has(member))) {
      // The process stalled past its tickets: the set queues again, at the back, everywhere.
      if (!this.claimPlaces(members, states, maxWaiters)) return AcquireOutcome.QueueFull
      members.forEach(({ member }, i) => states[i].tickets.delete(member))
      order = this.nextPlace(now, precedence)
    }
    this.placeSet(members, states, now, ticketTtlMs, order as number, members.map(() => false))
    const instance = parseMember(members[0].member).instance
    const passes = members.map(({ member }, i) => this.grantWaiting(states[i], now, instance, leaseMs, undefined, member))
    const all = passes.every(pass => pass.fits)
    members.forEach(({ member }, i) => {
      const state = states[i]
      if (all) {
        state.tickets.delete(member)
        holdUnits(state.holders, member, weightOf(member), { expiry: now + leaseMs, since: now })
      } else if (passes[i].fits) {
        // Parked where it fits, so it keeps no room from the waiters behind it.
        (state.tickets.get(member) as Ticket).parked = true
        passes[i].granted.push(...this.grantWaiting(state, now, instance, leaseMs).granted)
      }
    })
    members.forEach(({ tag }, i) => this.announce(tag, passes[i].granted))
    return all ? AcquireOutcome.Acquired : AcquireOutcome.Full
  }

  /** A place in every subject's line, or false (and no ticket) when one has maxWaiters others. */
  private claimPlaces (members: readonly SetMemberArgs[], states: SubjectState[], maxWaiters: number): boolean {
    const full = members.some(({ member }, i) => states[i].tickets.size - (states[i].tickets.has(member) ? 1 : 0) >= maxWaiters)
    if (full) members.forEach(({ member }, i) => states[i].tickets.delete(member))
    return !full
  }

  /** The set's tickets at one place in every line, parked where it `fits`. */
  private placeSet (members: readonly SetMemberArgs[], states: SubjectState[], now: number, ticketTtlMs: number, order: number, fits: boolean[]): void {
    members.forEach(({ member }, i) => {
      const ticket = states[i].tickets.get(member)
      if (ticket === undefined) {
        states[i].tickets.set(member, { expiry: now + ticketTtlMs, since: now, order, parked: fits[i] })
      } else {
        ticket.expiry = now + ticketTtlMs
        ticket.parked = fits[i]
      }
    })
  }

  /** The place of a ticket arriving now (unique, increasing), less its class's precedence. */
  private nextPlace (now: number, precedence: number): number {
    this.lastArrival = Math.max(now * 1000, this.lastArrival + 1)
    return this.lastArrival - precedence
  }

  private announce (tag: string, granted: Array<[string, boolean]>): void {
    for (const [member, claimed] of granted) this.grantListeners.get(parseMember(member).instance)?.({ tag, member }, claimed)
  }

  /** Extends live entries in place (a ticket keeps its place in line); lapsed ones are dropped. */
  private extend (refs: readonly MemberRef[], structure: keyof SubjectState, ttlMs: number): boolean[] {
    const now = this.now()
    return refs.map(({ tag, member }) => {
      const state = this.subjects.get(tag)
      const entry = state?.[structure].get(member)
      if (state === undefined || entry === undefined) return false
      if (entry.expiry <= now) {
        if (structure === 'holders') dropUnits(state.holders, member, weightOf(member))
        else state.tickets.delete(member)
        this.forgetIfEmpty(tag, state)
        return false
      }
      entry.expiry = now + ttlMs
      return true
    })
  }

  /** Memory is freed when a subject has neither holders nor waiters. */
  private forgetIfEmpty (tag: string, state: SubjectState): void {
    if (state.holders.size === 0 && state.tickets.size === 0) this.subjects.delete(tag)
  }
}

/**
 * The one interface every slot store implements (Redis, memory, or your own). A store keeps,
 * per subject, a set of holders with lease expiries, and a bounded queue of waiting tickets in
 * arrival order. Every operation is atomic per subject and safe to run twice (ioredis resends
 * an unanswered command after a reconnect); expired holders and tickets never count.
 *
 * Admission rule, for every store: a member is admitted only while the live holders, itself
 * excluded, are fewer than its OWN max. A ticket carries that max (in its member name, see
 * {@link memberName}), so a slot freed by a caller with a larger limit is never handed to a
 * waiter whose own limit is already reached. Grants follow arrival order and stop at the first
 * live ticket that does not fit: a waiter is never overtaken by the ones behind it (its own
 * deadline bounds how long it can hold them back).
 */

/**
 * Outcome of {@link SlotStore.tryAcquire} and {@link SlotStore.poll}, an integer so Lua can
 * return it as is: 2 the member holds a slot and there is room for more; 1 it holds one (now
 * full); 0 full, and the member's ticket was taken or refreshed (when asked for); -1 full and
 * `maxWaiters` other tickets already wait, so the member has no ticket.
 */
export const AcquireOutcome = { AcquiredWithRoom: 2, Acquired: 1, Full: 0, QueueFull: -1 } as const
// eslint-disable-next-line @typescript-eslint/no-redeclare -- a value and its type, like an enum
export type AcquireOutcome = typeof AcquireOutcome[keyof typeof AcquireOutcome]

export function isAcquired (outcome: AcquireOutcome): boolean {
  return outcome > 0
}

/**
 * A first try that queued, with where it stands: `ahead` live tickets wait before it (its
 * position in line is ahead + 1). A store may answer a plain `Full` instead; the plugin then
 * knows nothing of the queue (no position in the `queued` event, no fail-fast).
 */
export interface QueuedAnswer {
  outcome: typeof AcquireOutcome.Full
  ahead: number
}

/** What {@link SlotStore.tryAcquire} answers. */
export type TryAcquireAnswer = AcquireOutcome | QueuedAnswer

/** The outcome of a try, whatever form the store answered it in. */
export function outcomeOf (answer: TryAcquireAnswer): AcquireOutcome {
  return typeof answer === 'number' ? answer : answer.outcome
}

/**
 * Outcome of {@link SlotStore.release}: 1 the slot was there (live, when the caller asked for
 * the check) and is given back; 0 its entry was there but its lease had lapsed (it may have
 * been someone else's since: lost), answered only to a release with `mayHaveLapsed`; -1 no
 * entry (released already, e.g. a resent release, or lapsed and purged: the caller tells them
 * apart by its own clock).
 */
export const ReleaseOutcome = { Released: 1, Lapsed: 0, Gone: -1 } as const
// eslint-disable-next-line @typescript-eslint/no-redeclare -- a value and its type, like an enum
export type ReleaseOutcome = typeof ReleaseOutcome[keyof typeof ReleaseOutcome]

/** A member of one subject: what every store operation names. */
export interface MemberRef {
  /** Subject tag, `<type>:<encoded id>`. */
  tag: string
  /** Unique per acquisition, built by {@link memberName}. */
  member: string
}

export interface TryAcquireArgs extends MemberRef {
  /** The member's own limit (also carried in its name, for grants). */
  max: number
  leaseMs: number
  /** Tickets allowed in the queue besides this member's own. */
  maxWaiters: number
  /** Lifetime of the member's ticket when full; 0 = do not queue. */
  ticketTtlMs: number
  /** Fair mode: every live ticket in the queue is ahead of a newcomer. Default false. */
  fair?: boolean
  /** Without fair mode: units to leave for waiters ahead of it in its own process. Default 0. */
  ahead?: number
  /**
   * Its priority class (also carried in its name): a ticket of class p is queued as if it had
   * arrived p × priorityStepMs earlier, so higher classes are granted first, and a lower one
   * is passed only by requests that arrive less than that after it. Default 0.
   */
  priority?: number
  /** See priority. Default 86 400 000 (a day: longer than any wait, so classes are strict). */
  priorityStepMs?: number
  /** The units of `max` it counts for (also carried in its name, for grants). Default 1. */
  weight?: number
}

/** One subject of a set (see {@link SlotStore.acquireSet}); its weight rides in its member name. */
export interface SetMemberArgs extends MemberRef {
  max: number
  /** Without fair mode: units to leave for waiters ahead of it in its own process. Default 0. */
  ahead?: number
}

export interface AcquireSetArgs {
  /** Two or more distinct subjects, each with a set's member name ({@link memberName} with `set`). */
  members: readonly SetMemberArgs[]
  /** The set's first try (true), or a waiting set's retry. */
  first: boolean
  leaseMs: number
  maxWaiters: number
  ticketTtlMs: number
  fair?: boolean
  priority?: number
  priorityStepMs?: number
}

export interface ReleaseArgs extends MemberRef {
  /**
   * Lease of a slot granted to a waiter of the releasing instance (it is alive: it is the one
   * releasing). Omitted: such a grant gets the ticket's own claim, like any other.
   */
  leaseMs?: number
  /**
   * The caller's clock says the lease may have ended: the store tells a live slot (Released)
   * from a lapsed one (Lapsed). Otherwise a store may skip that check and answer Released for
   * an entry it removed (the Redis store then removes it without reading its clock).
   */
  mayHaveLapsed?: boolean
}

export interface SubjectLoad {
  held: number
  waiting: number
  /** How long the oldest live waiter has waited, in ms (0 when nobody waits). Optional for a store. */
  oldestWaitMs?: number
  /** Live waiters by priority class, classes with none left out. Optional for a store. */
  waitingByPriority?: Record<number, number>
}

/** The parts of a member name. */
export interface MemberInfo {
  /** Instance id of the process that created it ('' when the name has another form). */
  instance: string
  /** The member's own limit (0 when unknown: such a ticket is never granted). */
  max: number
  /** How long a slot granted to it by another process is its before it confirms it. */
  claimMs: number
  /** Its priority class (0 when the name carries none). */
  priority: number
  /** The units of max it counts for (1 when the name carries none). */
  weight: number
  /** One subject's member of an all-or-nothing set: never granted by a single subject's pass. */
  set: boolean
}

/**
 * `<instance id>:<counter>[.s][.p<priority>][.w<weight>]:<max>:<claimMs>`. The name carries
 * everything a grant needs, so a store can hand a slot to a ticket without looking anything
 * else up, on any shard. A set's mark, a class above 0 and a weight above 1 ride in the
 * counter's field, which earlier versions never read.
 */
export function memberName (instance: string, counter: number, max: number, claimMs: number, priority = 0, weight = 1, set = false): string {
  return `${instance}:${counter.toString(36)}${set ? '.s' : ''}${priority === 0 ? '' : `.p${priority}`}${weight === 1 ? '' : `.w${weight}`}:${max}:${claimMs}`
}

const MEMBER_PATTERN = /^([^:]*):([^:]*):(\d+):(\d+)$/
const PRIORITY_PATTERN = /\.p(\d+)/
const WEIGHT_PATTERN = /\.w(\d+)/

export function parseMember (member: string): MemberInfo {
  const match = MEMBER_PATTERN.exec(member)
  if (match === null) return { instance: '', max: 0, claimMs: 0, priority: 0, weight: 1, set: false }
  const counter = match[2]
  return {
    instance: match[1],
    max: Number(match[3]),
    claimMs: Number(match[4]),
    priority: Number(PRIORITY_PATTERN.exec(counter)?.[1] ?? 0),
    weight: Number(WEIGHT_PATTERN.exec(counter)?.[1] ?? 1),
    set: counter.includes('.s')
  }
}

/** The weight a member name carries (1 when none): what parseMember reads, without parsing the rest. */
export function weightOf (member: string): number {
  return member.includes('.w') ? parseMember(member).weight : 1
}

/**
 * The holders' entries of a member of weight k: itself, then `<member>#2` to `<member>#k`.
 * One entry per unit keeps the count of units held a ZCARD (and lapsed units a range purge),
 * and an entry of weight 1 is the member alone.
 */
export function unitEntries (member: string, weight: number): string[] {
  const entries = [member]
  for (let unit = 2; unit <= weight; unit++) entries.push(`${member}#${unit}`)
  return entries
}

/** The default priorityStepMs: longer than any wait (maxWaitMs is at most a day), so classes are strict. */
export const STRICT_PRIORITY_STEP_MS = 86_400_000

/** How far ahead of its arrival (µs) a ticket of the class is queued. */
export function precedenceUs (priority: number | undefined, priorityStepMs: number | undefined): number {
  return priority === undefined || priority === 0 ? 0 : priority * (priorityStepMs ?? STRICT_PRIORITY_STEP_MS) * 1000
}

/**
 * Called with the member a slot was granted to; `claimed` when it was granted only for its
 * claim and must be confirmed (renewed) to keep it.
 */
export type GrantListener = (ref: MemberRef, claimed: boolean) => void

/** A subscription to the grants of one instance (see {@link SlotStore.onGrant}). */
export interface GrantSubscription {
  /** Settles once grants from other processes can arrive: earlier ones may have been missed. */
  ready: Promise<void>
  stop (): void
}

export interface SlotStore {
  /**
   * A member's first try: takes a slot when `holders + ahead < max` (fair: every live ticket
   * is ahead), else takes a ticket. Run twice, it finds its own slot or ticket. A ticket taken
   * (or found) may be answered with the live tickets ahead of it ({@link QueuedAnswer}).
   */
  tryAcquire (args: TryAcquireArgs): Promise<TryAcquireAnswer>
  /**
   * A waiting member's retry: first hands free capacity to the oldest tickets (wherever they
   * are; grants to this instance's other members are reported to its grant listener), then
   * answers for the member: it holds a slot (granted now or earlier), or its ticket was
   * refreshed (re-taken at the back if it had lapsed).
   */
  poll (args: TryAcquireArgs): Promise<AcquireOutcome>
  /**
   * Optional: all-or-nothing slots of several subjects, in one atomic step. A first try takes
   * every slot when each subject admits it as it would a single first try, or none, and then a
   * ticket in every subject (all of them, or none: QueueFull); a retry takes every slot when
   * each subject's grant pass reaches its ticket with room for it. While it waits, a set holds
   * nothing and keeps no room: grant passes never grant a set's ticket; one that reaches it
   * with room tells its process (through the grant listener, as a grant of that member) to
   * retry. Run twice, a set that was admitted keeps its slots. Each slot is then an ordinary
   * holder of its subject (released, renewed, abandoned one by one). Without this method,
   * `acquireSlots` is refused.
   */
  acquireSet? (args: AcquireSetArgs): Promise<TryAcquireAnswer>
  /**
   * Optional: the subjects (by index) split into groups that one acquireSet can take, when not
   * all of them can (a Redis Cluster: keys on different hash slots). Without it, or answering
   * undefined, one group. Subjects in different groups are taken by the plugin's fallback.
   */
  groupsOf? (tags: readonly string[]): number[][] | undefined
  /** Removes the member's slot and grants the freed capacity to the oldest tickets. */
  release (args: ReleaseArgs): Promise<ReleaseOutcome>
  /**
   * A member that stopped waiting: removes its ticket and any slot it was granted, in one
   * atomic step (so no grant can reach it afterwards), and grants what it gave back.
   */
  abandon (args: ReleaseArgs): Promise<void>
  /**
   * Extends each holder's lease; false when it had already expired or is gone (the slot is
   * lost and may belong to someone else now). Sent together (one round trip).
   */
  renew (refs: readonly MemberRef[], leaseMs: number): Promise<boolean[]>
  /**
   * Extends the tickets of members still waiting (one round trip); a lapsed ticket leaves the
   * queue for good. False per member when its ticket is gone: granted (a grant message may
   * have been lost) or lapsed; the waiter then polls at once.
   */
  refreshTickets (refs: readonly MemberRef[], ticketTtlMs: number): Promise<boolean[]>
  /**
   * Optional: live holders and waiters of each subject tag, in order (one round trip per
   * shard). `priorityStepMs` (the plugin's) tells a ticket's arrival from its place.
   */
  usage? (tags: readonly string[], priorityStepMs?: number): Promise<SubjectLoad[]>
  /**
   * Optional: calls `listener` for every slot granted to a member of this instance, whichever
   * process granted it. Without it, waiters learn of grants when they poll.
   */
  onGrant? (instanceId: string, listener: GrantListener): GrantSubscription
  /**
   * Optional, for a store that batches its calls: sends what it holds back now, and each later
   * call as soon as it is made. Called when an app using it starts closing, so its give-backs
   * are on the wire before an onClose hook of the app (which may close the client) runs.
   */
  flush? (): void
  /** Called when the last app using the store closes: stop timers and background work (never closes a client it was given). */
  close? (): Promise<void> | void
}

/**
 * The one interface every slot store implements (Redis, memory, or your own). A store keeps,
 * per subject, a set of holders with lease expiries and a bounded queue of waiting tickets.
 * Every operation is atomic per subject; expired holders and tickets never count. A store
 * that implements `onGrant` hands a released slot straight to the oldest waiting ticket; one
 * without it leaves waiters to poll (on the backoff schedule, and at once after a release in
 * the same process).
 */

/**
 * Outcome of {@link SlotStore.tryAcquire}, an integer so Lua can return it as is:
 * 2 the member holds a slot and there is room for more; 1 it holds one (or already did: its
 * lease was refreshed) and the subject is now full; 0 full, and the member's waiting ticket was
 * added or refreshed (when asked for); -1 full and `maxWaiters` other tickets are already
 * waiting, so the member was not queued.
 */
export const AcquireOutcome = { AcquiredWithRoom: 2, Acquired: 1, Waiting: 0, QueueFull: -1 } as const
// eslint-disable-next-line @typescript-eslint/no-redeclare -- a value and its type, like an enum
export type AcquireOutcome = typeof AcquireOutcome[keyof typeof AcquireOutcome]

export function isAcquired (outcome: AcquireOutcome): boolean {
  return outcome > 0
}

export interface TryAcquireArgs {
  /** Subject tag, `<type>:<encoded id>`. */
  tag: string
  /** Unique per request and slot: `<instance id>:<counter>`. */
  member: string
  max: number
  leaseMs: number
  /** Tickets allowed in the wait queue besides this member's own. */
  maxWaiters: number
  /** Lifetime of this member's waiting ticket when full; 0 = do not queue. */
  ticketTtlMs: number
  /**
   * Fair mode: capacity goes to the oldest ticket across all processes (the store computes
   * who is ahead). Otherwise `ahead` says how many waiters go first. Default false.
   */
  fair?: boolean
  /** Without fair mode: slots to leave for earlier waiters (this process's queue ahead of the member). Default 0. */
  ahead?: number
  /** False on a member's first try (it holds nothing and has no ticket yet, so the store need not look). Default true. */
  queued?: boolean
}

export interface SubjectLoad {
  held: number
  waiting: number
}

/** The instance a member belongs to: members are `<instance id>:<counter>` ('' for any other form). */
export function memberInstance (member: string): string {
  const colon = member.indexOf(':')
  return colon === -1 ? '' : member.slice(0, colon)
}

export interface Hold {
  tag: string
  member: string
}

/** What a release needs to hand the freed capacity to waiters (stores with `onGrant`). */
export interface ReleaseArgs extends Hold {
  /** The subject's limit: grants fill it up to this. Omitted or 0: nothing is granted. */
  max?: number
  /** Lease of a slot granted to a waiter of the releasing instance (alive: it is releasing). */
  leaseMs?: number
  /** Lease of a slot granted to another instance's waiter until that instance renews it. */
  claimMs?: number
}

/**
 * Called with the member a slot was granted to; `claimed` when it was granted only for
 * `claimMs` and must be renewed to keep it.
 */
export type GrantListener = (member: string, claimed: boolean) => void

/** A subscription to the grants of one instance (see {@link SlotStore.onGrant}). */
export interface GrantSubscription {
  /** Settles once grants from other processes can arrive: earlier ones may have been missed. */
  ready: Promise<void>
  stop (): void
}

export interface SlotStore {
  tryAcquire (args: TryAcquireArgs): Promise<AcquireOutcome>
  /**
   * Removes the member's holder entry and (stores with `onGrant`) grants the freed capacity to
   * the oldest waiting tickets. May answer false when the entry was absent or its lease had
   * already lapsed: the slot is then reported lost.
   */
  release (hold: ReleaseArgs): Promise<boolean | void>
  /** Removes the member's waiting ticket (no-op when absent). */
  leaveQueue (hold: Hold): Promise<void>
  /**
   * Extends each hold's lease; one entry per hold, false when the hold had already expired
   * (the slot is lost and may belong to someone else now). Sent together (one round trip).
   */
  renew (holds: readonly Hold[], leaseMs: number): Promise<boolean[]>
  /**
   * Extends the waiting tickets of members still waiting (one round trip); lapsed ones stay
   * lapsed. May answer, per hold, false when its ticket is gone: granted a slot (a grant
   * message may have been lost) or lapsed; the waiter then tries again at once.
   */
  refreshTickets (holds: readonly Hold[], ticketTtlMs: number): Promise<boolean[] | void>
  /** Optional: live holders and waiters of each subject tag, in order (one round trip per shard). */
  usage? (tags: readonly string[]): Promise<SubjectLoad[]>
  /**
   * Optional: calls `listener` for every slot `release` grants to a waiter of this instance
   * (members `<instanceId>:...`), whichever process released it.
   */
  onGrant? (instanceId: string, listener: GrantListener): GrantSubscription
  /** Called on app close: stop timers and background work (never closes a client it was given). */
  close? (): Promise<void> | void
}

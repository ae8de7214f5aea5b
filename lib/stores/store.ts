/**
 * The one interface every slot store implements (Redis, memory, or your own). A store keeps,
 * per subject, a set of holders with lease expiries and a bounded queue of waiting tickets.
 * Every operation is atomic per subject; expired holders and tickets never count.
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
}

export interface SubjectLoad {
  held: number
  waiting: number
}

export interface Hold {
  tag: string
  member: string
}

/** A subscription to a subject's releases (see {@link SlotStore.watch}). */
export interface ReleaseWatch {
  /** Settles once the subscription is live: a release before that may have been missed. */
  ready: Promise<void>
  stop (): void
}

export interface SlotStore {
  tryAcquire (args: TryAcquireArgs): Promise<AcquireOutcome>
  /**
   * Removes the member's holder entry and wakes the subject's waiters. May answer false when
   * the entry was absent or its lease had already lapsed: the slot is then reported lost.
   */
  release (hold: Hold): Promise<boolean | void>
  /** Removes the member's waiting ticket (no-op when absent). */
  leaveQueue (hold: Hold): Promise<void>
  /**
   * Extends each hold's lease; one entry per hold, false when the hold had already expired
   * (the slot is lost and may belong to someone else now). Sent together (one round trip).
   */
  renew (holds: readonly Hold[], leaseMs: number): Promise<boolean[]>
  /** Extends the waiting tickets of members still waiting (one round trip); lapsed ones stay lapsed. */
  refreshTickets (holds: readonly Hold[], ticketTtlMs: number): Promise<void>
  /** Optional: live holders and waiters of each subject tag, in order (one round trip per shard). */
  usage? (tags: readonly string[]): Promise<SubjectLoad[]>
  /**
   * Optional: calls `onRelease` when a slot of the subject is released by another process.
   * In-process releases wake waiters without it; without it, other processes' releases are
   * found by polling on the backoff schedule.
   */
  watch? (tag: string, onRelease: () => void): ReleaseWatch
  /** Called on app close: stop timers and background work (never closes a client it was given). */
  close? (): Promise<void> | void
}

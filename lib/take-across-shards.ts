/**
 * The fallback of acquireSlots for subjects that no one store step can take together (Redis
 * Cluster shards without a shared hash tag): wait for one group as usual, then try every
 * other at once without waiting (one round trip). If one is full, give back all that was
 * taken and wait for that one next. So no slot is held while waiting for another longer than
 * that round trip; the price is that the request can be passed while it retries.
 */
import { SlotError } from './errors'
import type { HeldSlot } from './slot'

export interface ShardSteps<G> {
  /** One group's slots, all or none; `wait`: false tries without waiting (rejects SLOT_WAIT_TIMEOUT when full). */
  take: (group: G, wait: boolean) => Promise<HeldSlot[]>
  /** Gives back slots nobody saw. */
  giveBack: (slots: readonly HeldSlot[]) => void
  /** The call may not wait any longer (its deadline passed, or its owner ended). */
  over: () => boolean
}

export async function takeAcrossShards<G> (groups: readonly G[], steps: ShardSteps<G>): Promise<HeldSlot[]> {
  let waitFor = 0
  for (;;) {
    const held = await steps.take(groups[waitFor], true)
    const tries = await Promise.allSettled(groups.map((group, i) => i === waitFor ? Promise.resolve(held) : steps.take(group, false)))
    const full = tries.findIndex(result => result.status === 'rejected')
    const taken = tries.flatMap(result => result.status === 'fulfilled' ? result.value : [])
    if (full < 0) return taken
    steps.giveBack(taken)
    const reason = (tries[full] as PromiseRejectedResult).reason as unknown
    // Only "full" sends it to wait there; an abort, a store failure or the deadline ends it.
    if (!(reason instanceof SlotError) || reason.code !== 'SLOT_WAIT_TIMEOUT' || steps.over()) throw reason
    waitFor = full
  }
}

/**
 * Honest waiting: how long a place in a subject's queue is likely to take, from how long this
 * process has seen the subject's slots held. A full subject frees a slot every mean hold / max
 * on average, so a waiter with `ahead` tickets before it expects (ahead + 1) × mean hold / max.
 *
 * Only busy subjects are watched (one that was found full here): the common path, a subject
 * with room, pays one failed Map lookup per release. Only this process's releases are seen, a
 * sample of the subject's holds across a fleet; until one is seen there is no estimate (null)
 * and callers fall back to what they did without one.
 */

/** Weight of the newest hold in the moving mean: about the last ten holds count. */
const NEWEST = 0.2
/** Busy subjects remembered; past it the one watched longest ago is forgotten. */
const MAX_SUBJECTS = 10_000
/** A watched subject no hold was seen of yet. */
const UNSEEN = -1

export class HoldTimes {
  /** tag → mean hold in whole ms (a small integer keeps Map.set free of allocations), or UNSEEN. */
  private readonly means = new Map<string, number>()

  /** The subject was found full: its holds are worth measuring from now on. */
  watch (tag: string): void {
    if (this.means.has(tag)) return
    if (this.means.size >= MAX_SUBJECTS) this.means.delete(this.means.keys().next().value as string)
    this.means.set(tag, UNSEEN)
  }

  /** A slot of the subject was given back after `heldMs`. */
  observe (tag: string, heldMs: number): void {
    const mean = this.means.get(tag)
    if (mean === undefined) return
    this.means.set(tag, mean === UNSEEN ? heldMs : Math.round(mean + (heldMs - mean) * NEWEST))
  }

  /** The expected wait of a place with `ahead` waiters before it under `max`, or null when no hold was seen. */
  expectedWaitMs (tag: string, ahead: number, max: number): number | null {
    const mean = this.means.get(tag) ?? UNSEEN
    return mean === UNSEEN ? null : Math.ceil((ahead + 1) * mean / max)
  }
}

/**
 * The slots this process holds: one batched renewal per tick keeps their leases, a slot
 * granted by another process for its claim only is confirmed the moment it arrives, a release
 * gives the slot back (the store hands it to the next waiter), and a lease found lapsed makes
 * the slot lost: reported once, never counted or released again.
 */
import type { FastifyBaseLogger } from 'fastify'
import type { Acquisition } from './acquisition'
import type { SetAcquisition } from './set-acquisition'
import type { Subject } from './subject'
import { ChurnMap } from './churn-map'
import type { SlotEvents } from './events'
import type { HoldTimes } from './hold-times'
import type { ResolvedOptions } from './options'
import { HeldSlot } from './slot'
import { storeCall } from './store-call'
import { ReleaseOutcome, type MemberRef, type SlotStore } from './stores/store'

export class LeaseKeeper {
  private readonly held = new ChurnMap<string, HeldSlot>()
  /** What every slot's release calls (one function for all of them). */
  private readonly giveBackSlot = (slot: HeldSlot): Promise<void> => this.giveBack(slot)

  constructor (
    private readonly store: SlotStore,
    private readonly options: ResolvedOptions,
    private readonly events: SlotEvents,
    private readonly log: FastifyBaseLogger,
    /** Learns how long the subject's slots are held. */
    private readonly holds: HoldTimes,
    /** A release that failed: retried as a give-back until the lease would have ended anyway. */
    private readonly releaseFailed: (ref: MemberRef) => void,
    /** A slot of the subject was given back here. */
    private readonly released: (tag: string) => void
  ) {}

  get size (): number {
    return this.held.size
  }

  has (member: string): boolean {
    return this.held.has(member)
  }

  /** The acquisition's slot, held from now on. */
  take (acquisition: Acquisition): HeldSlot {
    return this.takeSlot(acquisition, acquisition.subject, acquisition.ref)
  }

  /** A set's slots, one per subject, held from now on (a set is admitted by its own call: none is claimed). */
  takeSet (acquisition: SetAcquisition): HeldSlot[] {
    return acquisition.parts.map(({ subject, args }) => this.takeSlot(acquisition, subject, { tag: args.tag, member: args.member }))
  }

  private takeSlot ({ owner, started, claimed }: Acquisition, subject: Subject, ref: MemberRef): HeldSlot {
    const slot = new HeldSlot(subject.type, subject.id, Date.now() - started, ref, owner.log, this.giveBackSlot)
    // The call that set its lease was sent at most storeTimeoutMs before its answer came.
    slot.liveUntil = Date.now() - this.options.storeTimeoutMs + (claimed ? this.options.claimMs : this.options.leaseMs)
    this.held.set(ref.member, slot)
    // Granted by another process for its claim only: confirmed (renewed) at once.
    if (claimed) this.renew([slot]).catch(() => {})
    return slot
  }

  /** Stops keeping a slot that is given back some other way (unseen: no events). */
  forget (slot: HeldSlot): void {
    if (slot.ref !== null) this.held.delete(slot.ref.member)
  }

  /** One batched renewal of every held slot (the lease tick). */
  async renewAll (): Promise<void> {
    if (this.held.size > 0) await this.renew([...this.held.values()])
  }

  async releaseAll (): Promise<void> {
    await Promise.all([...this.held.values()].map(slot => slot.release()))
  }

  private async renew (slots: HeldSlot[]): Promise<void> {
    const sent = Date.now()
    try {
      const alive = await storeCall(this.store.renew(slots.map(s => s.ref as MemberRef), this.options.leaseMs), this.options.storeTimeoutMs)
      alive.forEach((ok, i) => {
        const slot = slots[i]
        if (ok) {
          slot.liveUntil = Math.max(slot.liveUntil, sent + this.options.leaseMs)
        } else if (this.held.get(slot.ref!.member) === slot) {
          // Only a slot still kept: a release (or a give-back) racing this renewal is not a loss.
          this.markLost(slot)
        }
      })
    } catch (err) {
      this.log.warn({ err }, 'fastify-slots: renewing held slots failed; retrying next tick')
      this.events.notify('storeError', { operation: 'renew', error: err })
    }
  }

  private async giveBack (slot: HeldSlot): Promise<void> {
    const ref = slot.ref
    if (ref === null || slot.lost) return
    this.held.delete(ref.member)
    const heldMs = Date.now() - slot.acquiredAt
    try {
      const outcome = await storeCall(this.store.release({ tag: ref.tag, member: ref.member, leaseMs: this.options.leaseMs, mayHaveLapsed: Date.now() >= slot.liveUntil }), this.options.storeTimeoutMs)
      // No entry before its lease could have ended: an earlier run of this same release
      // (ioredis resends after a reconnect) already removed it.
      if (outcome === ReleaseOutcome.Released || (outcome === ReleaseOutcome.Gone && Date.now() < slot.liveUntil)) {
        this.holds.observe(ref.tag, heldMs)
        slot.log.debug({ slotType: slot.type, slotId: slot.id, heldMs }, 'fastify-slots: slot released')
        this.events.notify('released', { type: slot.type, id: slot.id, heldMs })
      } else {
        // Its lease lapsed before this release (the process stalled past leaseMs).
        this.markLost(slot)
      }
    } catch (err) {
      slot.log.warn({ err, slotType: slot.type }, 'fastify-slots: releasing a slot failed; retrying until its lease would have ended')
      this.events.notify('storeError', { operation: 'release', error: err })
      this.releaseFailed(ref)
    }
    this.released(ref.tag)
  }

  /** The slot's lease lapsed: it may be someone else's now; never counted or released again. */
  private markLost (slot: HeldSlot): void {
    slot.lost = true
    slot.end('SLOT_LOST')
    if (slot.ref !== null) this.held.delete(slot.ref.member)
    slot.log.warn({ slotType: slot.type, slotId: slot.id }, 'fastify-slots: slot lost: its lease expired before it was renewed or released')
    this.events.notify('lost', { type: slot.type, id: slot.id, heldMs: Date.now() - slot.acquiredAt })
  }
}

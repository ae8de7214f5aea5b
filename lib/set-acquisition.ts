/**
 * One call of acquireSlots: an Acquisition of several subjects at once, all or nothing. Its
 * first subject stands for it where one is needed (errors, the deadline, the place in line);
 * each subject has its own member, and a grant listener's call for any of them means "the
 * store found room for you there: retry the whole set" (grant passes never grant a set).
 */
import { Acquisition } from './acquisition'
import type { SlotError, SlotErrorCode } from './errors'
import type { CallSettings } from './options'
import type { HeldSlot } from './slot'
import type { SlotOwner } from './slot-owner'
import { outcomeOf, type AcquireOutcome, type AcquireSetArgs, type MemberRef, type SlotStore, type TryAcquireAnswer, type TryAcquireArgs } from './stores/store'
import type { Subject } from './subject'

export interface SetPart {
  subject: Subject
  /** Its subject's member, max and weight (the rest is the set's). */
  args: TryAcquireArgs
}

export class SetAcquisition extends Acquisition {
  /** The slots it holds once it succeeded, one per part, in the parts' order. */
  slots: HeldSlot[] = []
  /** A retry is on its way; `again`: the store asked for another meanwhile. */
  retrying = false
  again = false
  /** Each part's member, for every way the set reaches the store one subject at a time. */
  private readonly memberRefs: readonly MemberRef[]

  constructor (
    readonly parts: readonly SetPart[],
    owner: SlotOwner,
    settings: CallSettings,
    started: number,
    onSettled: (acquisition: Acquisition) => void,
    abortError: (code: SlotErrorCode, message: string, subject: Subject) => SlotError
  ) {
    super(parts[0].subject, owner, settings, parts[0].args, started, onSettled, abortError)
    this.memberRefs = parts.map(({ args }) => ({ tag: args.tag, member: args.member }))
  }

  override tryFirst (store: SlotStore): Promise<TryAcquireAnswer> {
    return (store.acquireSet as NonNullable<SlotStore['acquireSet']>)(this.setArgs(true))
  }

  override async retry (store: SlotStore): Promise<AcquireOutcome> {
    return outcomeOf(await (store.acquireSet as NonNullable<SlotStore['acquireSet']>)(this.setArgs(false)))
  }

  override get refs (): readonly MemberRef[] {
    return this.memberRefs
  }

  override get queueKey (): string {
    return `set ${this.ref.member}`
  }

  private setArgs (first: boolean): AcquireSetArgs {
    const { args } = this
    return {
      members: this.parts.map(({ args }) => ({ tag: args.tag, member: args.member, max: args.max, ahead: args.ahead })),
      first,
      leaseMs: args.leaseMs,
      maxWaiters: args.maxWaiters,
      ticketTtlMs: args.ticketTtlMs,
      fair: args.fair,
      priority: args.priority,
      priorityStepMs: args.priorityStepMs
    }
  }
}

/**
 * The subjects of one acquireSlots call, validated before anything reaches a store: each
 * `{ type, id, max, weight? }` checked as acquireSlot checks its arguments, no subject twice
 * (its slots would count against each other), and no option that belongs to a subject.
 */
import { describe, invalidArgument } from './errors'
import { MAX_WEIGHT } from './options'
import { toSubject, validateMax, type Subject } from './subject'

export interface SlotRequest {
  type: string
  id: string | number
  max: number
  /** The units of `max` it counts for in this subject, 1 to min(max, 1000). Default 1. */
  weight?: number
}

export interface SetSubject {
  subject: Subject
  max: number
  weight: number
}

const FIELDS = new Set(['type', 'id', 'max', 'weight'])
const CALLER = 'acquireSlots'

export function toSetSubjects (slots: unknown, opts: unknown): SetSubject[] {
  if (!Array.isArray(slots) || slots.length === 0) throw invalidArgument(`${CALLER}: slots must be a non-empty array of { type, id, max, weight? }, got ${describe(slots)}`)
  if (typeof opts === 'object' && opts !== null && (opts as { weight?: unknown }).weight !== undefined) {
    throw invalidArgument(`${CALLER}: option "weight" is per subject: give it in each slot, { type, id, max, weight }`)
  }
  const seen = new Set<string>()
  return slots.map((slot: unknown, index) => {
    const where = `${CALLER}: slots[${index}]`
    if (typeof slot !== 'object' || slot === null) throw invalidArgument(`${where} must be an object { type, id, max, weight? }, got ${describe(slot)}`)
    const s = slot as Record<string, unknown>
    const unknown = Object.keys(s).find(key => !FIELDS.has(key))
    if (unknown !== undefined) throw invalidArgument(`${where} has an unknown field "${unknown}"`)
    const subject = toSubject(s.type, s.id, where)
    const max = validateMax(s.max, where)
    const weight = s.weight ?? 1
    if (typeof weight !== 'number' || !Number.isSafeInteger(weight) || weight < 1 || weight > MAX_WEIGHT || (max > 0 && weight > max)) {
      throw invalidArgument(`${where}: weight must be an integer from 1 to ${max > 0 ? Math.min(max, MAX_WEIGHT) : MAX_WEIGHT} (at most max), got ${describe(weight)}`)
    }
    if (seen.has(subject.tag)) throw invalidArgument(`${where}: ${subject.type} ${subject.id} is already in the set (a subject is taken once)`)
    seen.add(subject.tag)
    return { subject, max, weight }
  })
}

/**
 * A subject is what a slot limits: (type, id), e.g. ('user', 42). This file validates the
 * caller's arguments and turns them into Redis keys, before anything touches a store. Errors
 * name the call they come from (`caller`).
 */
import { invalidArgument, describe } from './errors'

export const MAX_TYPE_LENGTH = 64
export const MAX_ID_LENGTH = 256

const TYPE_PATTERN = /^[A-Za-z0-9_.-]+$/
// C0 controls, DEL and C1 controls: they have no business in an id and make logs lie.
// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/

export interface Subject {
  type: string
  /** The id as the caller's string form (numbers are stringified). */
  id: string
  /** `<type>:<encoded id>`: unique per subject, free of `{`, `}` and unescaped `:`. */
  tag: string
}

export function validateType (type: unknown, caller = 'acquireSlot'): string {
  if (typeof type !== 'string' || type.length === 0) {
    throw invalidArgument(`${caller}: type must be a non-empty string, got ${describe(type)}`)
  }
  if (type.length > MAX_TYPE_LENGTH) {
    throw invalidArgument(`${caller}: type must be at most ${MAX_TYPE_LENGTH} characters, got ${type.length}`)
  }
  if (!TYPE_PATTERN.test(type)) {
    throw invalidArgument(`${caller}: type may contain only letters, digits, "_", "." and "-", got ${describe(type)}`)
  }
  return type
}

export function validateId (id: unknown, caller = 'acquireSlot'): string {
  if (typeof id === 'number') {
    if (!Number.isSafeInteger(id)) {
      throw invalidArgument(`${caller}: a numeric id must be a safe integer, got ${describe(id)}`)
    }
    return String(id)
  }
  if (typeof id !== 'string' || id.length === 0) {
    throw invalidArgument(`${caller}: id must be a non-empty string or an integer, got ${describe(id)}`)
  }
  if (id.length > MAX_ID_LENGTH) {
    throw invalidArgument(`${caller}: id must be at most ${MAX_ID_LENGTH} characters, got ${id.length}`)
  }
  if (CONTROL_CHARS.test(id)) {
    throw invalidArgument(`${caller}: id must not contain control characters (newline, NUL, ...)`)
  }
  if (!id.isWellFormed()) {
    throw invalidArgument(`${caller}: id must be well-formed unicode (no lone surrogates)`)
  }
  return id
}

/** 0 means unlimited, as in the seed. */
export function validateMax (max: unknown, caller = 'acquireSlot'): number {
  if (typeof max !== 'number' || !Number.isSafeInteger(max) || max < 0) {
    throw invalidArgument(`${caller}: max must be a non-negative safe integer (0 = unlimited), got ${describe(max)}`)
  }
  return max
}

export function toSubject (type: unknown, id: unknown, caller = 'acquireSlot'): Subject {
  const t = validateType(type, caller)
  const i = validateId(id, caller)
  // encodeURIComponent is injective and escapes `{`, `}`, `:` and `%`, so no id can forge
  // another subject's key or break out of the Redis Cluster hash tag.
  return { type: t, id: i, tag: `${t}:${encodeURIComponent(i)}` }
}

/**
 * The retry schedule of a waiting request, the seed's: start at initialMs, multiply each
 * delay, cap at maxMs, and spread retries with random jitter so waiters do not retry in step.
 */
import type { BackoffOptions } from './options'

/** The delay after `previousMs` (0 for the first), jittered and clamped to [initialMs, maxMs]. */
export function nextDelay (previousMs: number, backoff: BackoffOptions, random: () => number = Math.random): number {
  const base = previousMs <= 0 ? backoff.initialMs : Math.min(previousMs * backoff.multiplier, backoff.maxMs)
  const factor = 1 - backoff.jitter + random() * 2 * backoff.jitter
  return Math.min(backoff.maxMs, Math.max(backoff.initialMs, Math.round(base * factor)))
}

/**
 * Every store call is bounded by storeTimeoutMs: a dead Redis must fail fast instead of
 * hanging in ioredis' offline queue (the failure @fastify/rate-limit's skipOnError had).
 */
import { SlotError } from './errors'

/** `promise`, or a rejection once the store has not answered within `timeoutMs`. */
export async function storeCall<T> (promise: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`the slot store did not answer within ${timeoutMs} ms`)), timeoutMs)
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

export function storeUnavailable (cause: unknown, slotType?: string, slotId?: string): SlotError {
  const reason = cause instanceof Error ? cause.message : String(cause)
  return new SlotError('SLOT_STORE_UNAVAILABLE', `slot store unavailable: ${reason}`, { slotType, slotId, cause })
}

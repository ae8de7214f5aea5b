/**
 * Every store call is bounded by storeTimeoutMs: a dead Redis must fail fast instead of
 * hanging in ioredis' offline queue (the failure @fastify/rate-limit's skipOnError had).
 */
import { SlotError } from './errors'

export async function withTimeout<T> (promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${timeoutMs} ms`)), timeoutMs)
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

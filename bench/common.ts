/**
 * Shared by the orchestrator (run.ts) and the child processes (child.ts): the messages they
 * exchange, and the clock every process reads.
 */

/**
 * Wall-clock milliseconds with sub-millisecond precision, comparable across the processes of
 * one machine: each process's high-resolution clock anchored at its own time origin.
 */
export function now (): number {
  return performance.timeOrigin + performance.now()
}

export function sleep (ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(signal.reason)
      return
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    const onAbort = (): void => {
      clearTimeout(timer)
      reject(signal?.reason)
    }
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

/** Systems under test. 'floor' is not a semaphore: two PINGs per operation, the round-trip floor. */
export type SystemName = 'in-process' | 'slots' | 'slots-fair' | 'redis-semaphore' | 'seed-style' | 'floor'

export interface ContendedConfig {
  role: 'contended'
  system: SystemName
  redisUrl: string
  prefix: string
  /** Index of this process's first worker (worker ids are global across processes). */
  firstWorker: number
  workers: number
  limit: number
  holdMs: number
}

export interface UncontendedCase {
  concurrency: number
  subjects: 'distinct' | 'same'
}

export interface UncontendedConfig {
  role: 'uncontended'
  system: SystemName
  redisUrl: string
  prefix: string
  limit: number
}

/**
 * 'slots-memory': the plugin with its in-process store, what the plugin costs without Redis.
 * 'redis-semaphore': the same slot taken with redis-semaphore, released after the response.
 */
export type HttpVariant = 'bare' | 'slots' | 'slots-memory' | 'floor' | 'redis-semaphore'

export interface HttpServerConfig {
  role: 'http-server'
  variant: HttpVariant
  redisUrl: string
  prefix: string
}

export type ChildConfig = ContendedConfig | UncontendedConfig | HttpServerConfig

/** One acquire → hold → release cycle of a contended worker (times from {@link now}). */
export interface Cycle {
  worker: number
  requestedAt: number
  acquiredAt: number
  /** When the holder called release (the end of its use of the slot). */
  releasedAt: number
  /** When release() settled. */
  releaseDoneAt: number
}

/** A request still waiting when the run stopped. */
export interface PendingWait {
  worker: number
  requestedAt: number
  abortedAt: number
}

export interface ContendedResult {
  cycles: Cycle[]
  pending: PendingWait[]
  /** Redis commands this process issued (client side) between windowStart and windowEnd. */
  clientCommands: number
  /** CPU time of this process between windowStart and windowEnd, µs. */
  cpuMicros: number
  errors: string[]
}

/** One measured stretch of one uncontended case in one child. */
export interface UncontendedSample {
  /** acquire → release latencies of the operations started in the window, ms. */
  latencies: number[]
  clientCommands: number
  cpuMicros: number
}

export type ParentMessage =
  | { type: 'start', startAt: number, windowStart: number, windowEnd: number }
  | { type: 'case', run: UncontendedCase, startAt: number, windowStart: number, windowEnd: number }
  | { type: 'stop' }
  /** Asks an HTTP server for its CPU time so far (read before and after each load round). */
  | { type: 'cpu' }

export type ChildMessage =
  | { type: 'ready', port?: number }
  | { type: 'contended-result', result: ContendedResult }
  | { type: 'case-result', sample: UncontendedSample }
  | { type: 'cpu', cpuMicros: number }
  | { type: 'error', message: string }

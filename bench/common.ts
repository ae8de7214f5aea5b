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

/** A Redis Cluster's startup nodes: when given, the children connect to it instead of redisUrl. */
export type ClusterNodes = Array<{ host: string, port: number }>

/** Where and how a child's system connects; options left out keep the system's defaults. */
export interface SystemTarget {
  redisUrl: string
  clusterNodes?: ClusterNodes
  /** fastify-slots' maxWaiters (the benchmark's default: 1000). */
  maxWaiters?: number
}

export interface ContendedConfig extends SystemTarget {
  role: 'contended'
  system: SystemName
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

export interface UncontendedConfig extends SystemTarget {
  role: 'uncontended'
  system: SystemName
  prefix: string
  limit: number
}

/** The growth scenario's many-subjects child: holds one slot on each of N subjects, then lets go. */
export interface SubjectsConfig extends SystemTarget {
  role: 'subjects'
  system: 'slots'
  prefix: string
  limit: number
  /** Acquires (and releases) in flight at once: enough to batch, few enough not to swamp the process. */
  chunk: number
}

/** What one phase of the subjects child cost it: its CPU and the commands its clients sent. */
export interface PhaseCost {
  ms: number
  cpuMicros: number
  clientCommands: number
}

/**
 * 'slots-memory': the plugin with its in-process store, what the plugin costs without Redis.
 * 'redis-semaphore': the same slot taken with redis-semaphore, released after the response.
 * The pair variants (--only http-pair) take two slots per request, a user's and an account's:
 * 'slots-set' with one acquireSlots call, 'slots-pair' with two acquireSlot calls in turn,
 * 'redis-semaphore-pair' with two redis-semaphore Semaphores in turn.
 */
export type HttpVariant = 'bare' | 'slots' | 'slots-memory' | 'floor' | 'redis-semaphore' | 'slots-set' | 'slots-pair' | 'redis-semaphore-pair'

export interface HttpServerConfig {
  role: 'http-server'
  variant: HttpVariant
  redisUrl: string
  prefix: string
}

export type ChildConfig = ContendedConfig | UncontendedConfig | HttpServerConfig | SubjectsConfig

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
  /** The subjects child: acquire one slot on each of `count` subjects named `<tag>-<i>`, then release them all. */
  | { type: 'hold', count: number, tag: string }
  | { type: 'release' }

export type ChildMessage =
  | { type: 'ready', port?: number }
  | { type: 'contended-result', result: ContendedResult }
  | { type: 'case-result', sample: UncontendedSample }
  /** clientCommands: the commands its Redis clients sent so far, from the servers that count them (the pair variants). */
  | { type: 'cpu', cpuMicros: number, clientCommands?: number }
  | { type: 'held', cost: PhaseCost }
  | { type: 'released', cost: PhaseCost }
  | { type: 'error', message: string }

/**
 * `fastify.slots`: the plugin's instance-level API. Take a slot outside a request, read the
 * load of many subjects at once (what a gateway uses to pick an upstream account), subscribe
 * to events, and read in-process statistics.
 */
import type { FastifyBaseLogger } from 'fastify'
import { invalidArgument } from './errors'
import type { SlotEventMap } from './events'
import type { AcquireOptions } from './options'
import type { Slot } from './slot'
import type { SlotRequest } from './set-subjects'
import type { SlotManager } from './slot-manager'
import { withDetachedOwner } from './slot-owner'
import { StatsRecorder, type SlotStats } from './stats'
import { storeCall } from './store-call'
import type { SlotStore, SubjectLoad } from './stores/store'
import { toSubject, validateMax } from './subject'

export interface SubjectUsage extends SubjectLoad {
  id: string
}

export interface Candidate {
  id: string | number
  max: number
}

/** acquireSlot's options less those that only a request's stream uses. */
export type DetachedAcquireOptions = Omit<AcquireOptions, 'stream' | 'ping' | 'protocol'> & { signal?: AbortSignal }

const STREAM_ONLY_OPTIONS = ['stream', 'ping', 'protocol']

type Listener<K extends keyof SlotEventMap> = (...args: SlotEventMap[K]) => void

export class SlotsApi {
  private readonly recorder: StatsRecorder
  /** Reads in flight or still fresh, by type and ids: the usage cache with single-flight. */
  private readonly reads = new Map<string, Promise<SubjectUsage[]>>()

  constructor (private readonly manager: SlotManager, private readonly log: FastifyBaseLogger, private readonly usageCacheMs: number) {
    this.recorder = new StatsRecorder(manager.events)
  }

  /**
   * Settles once slots granted by other processes can reach this one (its grant subscription
   * is live); grants made before then are found by the ticket refresh instead.
   */
  get ready (): Promise<void> {
    return this.manager.grantsReady
  }

  /** The store in use. */
  get store (): SlotStore {
    return this.manager.store
  }

  /** Prefix of every member this process writes in the store. */
  get instanceId (): string {
    return this.manager.instanceId
  }

  /**
   * Takes a slot outside any request (a background job, a benchmark): released by
   * `slot.release()` or on app close. `signal` aborts the wait.
   */
  acquire (type: string, id: string | number, max: number, opts?: DetachedAcquireOptions): Promise<Slot> {
    if (opts === undefined) return withDetachedOwner(this.log, undefined, owner => this.manager.acquire(owner, type, id, max, undefined))
    const { signal, ...rest } = opts ?? {}
    const streamOnly = STREAM_ONLY_OPTIONS.find(name => Object.hasOwn(rest, name))
    if (streamOnly !== undefined) {
      return Promise.reject(invalidArgument(`acquire: option "${streamOnly}" applies only to a request's stream (request.acquireSlot); fastify.slots.acquire takes maxWaitMs, maxWaiters, fair, failFast, priority, weight and signal`))
    }
    return withDetachedOwner(this.log, signal, owner => this.manager.acquire(owner, type, id, max, rest))
  }

  /**
   * Takes a slot of every subject at once, or none, outside any request (see
   * request.acquireSlots): released by each `slot.release()` or on app close.
   */
  acquireAll (slots: readonly SlotRequest[], opts?: Omit<DetachedAcquireOptions, 'weight'>): Promise<Slot[]> {
    const { signal, ...rest } = opts ?? {}
    const streamOnly = STREAM_ONLY_OPTIONS.find(name => Object.hasOwn(rest, name))
    if (streamOnly !== undefined) {
      return Promise.reject(invalidArgument(`acquireAll: option "${streamOnly}" applies only to a request's stream (request.acquireSlots)`))
    }
    return withDetachedOwner(this.log, signal, owner => this.manager.acquireSet(owner, slots, opts === undefined ? undefined : rest))
  }

  /**
   * Live holders (in units) and waiters of many subjects of one type, with how long the oldest
   * waiter has waited and the waiters by priority class where the store reports them (both
   * shipped stores do), read in one round trip per Redis shard (expired entries never count,
   * by Redis time). Cached `usageCacheMs` in process, and concurrent identical reads share one
   * store call.
   */
  async usage (type: string, ids: ReadonlyArray<string | number>): Promise<SubjectUsage[]> {
    return await this.usageOf(type, ids, 'usage')
  }

  /** usage(), its errors naming the call the caller made. */
  private async usageOf (type: string, ids: ReadonlyArray<string | number>, caller: string): Promise<SubjectUsage[]> {
    if (!Array.isArray(ids)) throw invalidArgument(`${caller}: ids must be an array`)
    const subjects = ids.map(id => toSubject(type, id, caller))
    const store = this.manager.store
    if (store.usage === undefined) throw invalidArgument(`${caller}: this store cannot report usage (it has no usage method)`)
    const key = `${type}\n${subjects.map(s => s.tag).join('\n')}`
    const shared = this.reads.get(key)
    if (shared !== undefined) return await shared
    const load = storeCall(store.usage(subjects.map(s => s.tag), this.manager.options.priorityStepMs), this.manager.options.storeTimeoutMs)
      .then(loads => loads.map((l, i): SubjectUsage => ({ id: subjects[i].id, ...l })))
    // In flight, the read is shared (single-flight); once answered, kept usageCacheMs.
    this.reads.set(key, load)
    const forget = (): void => { if (this.reads.get(key) === load) this.reads.delete(key) }
    load.then(() => {
      if (this.usageCacheMs > 0) setTimeout(forget, this.usageCacheMs).unref()
      else forget()
    }, forget)
    return await load
  }

  /**
   * The candidate with the lowest load `(held + waiting) / max` under 100 %, ties broken by
   * order; null when all are full. A candidate with max 0 is unlimited: load 0.
   */
  async leastLoaded<C extends Candidate> (type: string, candidates: readonly C[]): Promise<C | null> {
    if (!Array.isArray(candidates)) throw invalidArgument('leastLoaded: candidates must be an array of { id, max }')
    for (const c of candidates) validateMax(c?.max, 'leastLoaded')
    const loads = await this.usageOf(type, candidates.map(c => c.id), 'leastLoaded')
    let best: C | null = null
    let bestRate = Infinity
    candidates.forEach((candidate, i) => {
      const rate = candidate.max === 0 ? 0 : (loads[i].held + loads[i].waiting) / candidate.max
      if (rate < 1 && rate < bestRate) {
        best = candidate
        bestRate = rate
      }
    })
    return best
  }

  /** Counters by outcome and a wait-time histogram, for this process. */
  stats (): SlotStats {
    const { held, waiting } = this.manager.counts
    return this.recorder.snapshot(held, waiting)
  }

  on<K extends keyof SlotEventMap> (event: K, listener: Listener<K>): this {
    this.manager.events.on(event, listener as never)
    return this
  }

  once<K extends keyof SlotEventMap> (event: K, listener: Listener<K>): this {
    this.manager.events.once(event, listener as never)
    return this
  }

  off<K extends keyof SlotEventMap> (event: K, listener: Listener<K>): this {
    this.manager.events.off(event, listener as never)
    return this
  }
}

/**
 * `--only growth`, "How cost grows": fastify-slots (Redis store) as one dimension of the load
 * grows at a time, each step reporting what one acquisition costs (server CPU, Redis CPU,
 * Redis commands, round trips) and Redis' memory:
 *   (a) processes 1 → 8 on one contended subject,    (b) subjects 1 → 100 000, uncontended,
 *   (c) waiters 50 → 5 000 on one subject,            (d) a 3-master Redis Cluster vs one Redis.
 * Windows scale with --seconds (half of it per contended step); at the default 10 s the
 * whole scenario takes about two minutes here. A part that fails is reported and skipped.
 */
import { log, type RunContext } from '../../context'
import { clusterPart, clusterUnavailable, type ClusterPart } from './cluster'
import { PROCESS_STEPS, processesStep, type ProcessesStep } from './processes'
import { SUBJECT_STEPS, subjectsPart, type SubjectsPart } from './subjects'
import { runWaitersStep, WAITER_PROCESSES, WAITER_STEPS, waitersStep, type WaitersStep } from './waiters'

/** Well above the largest waiter step, so no step is refused for a full queue. */
const MAX_WAITERS = 2 * WAITER_STEPS[WAITER_STEPS.length - 1]

export interface GrowthTimes {
  /** Measured window of each contended step (parts a, c and d), s. */
  contended: number
  /** Measured window of each uncontended load (part d), s. */
  uncontended: number
  /** How long Redis' idle CPU is read before a load (part d), s. */
  idle: number
}

export function growthTimes (seconds: number): GrowthTimes {
  return {
    contended: Math.max(1, +(seconds * 0.5).toFixed(2)),
    uncontended: Math.max(0.5, +(seconds * 0.3).toFixed(2)),
    idle: Math.max(0.5, +(seconds * 0.1).toFixed(2))
  }
}

export interface GrowthResult {
  times: GrowthTimes
  maxWaiters: number
  processes: ProcessesStep[]
  subjects: SubjectsPart | undefined
  waiters: WaitersStep[]
  cluster: ClusterPart | undefined
  /** Parts that could not run or failed, with why. */
  errors: string[]
  /** Every part ran every step: only then is the chart redrawn. */
  complete: boolean
}

export async function growth (context: RunContext): Promise<GrowthResult> {
  const times = growthTimes(context.args.seconds)
  const result: GrowthResult = { times, maxWaiters: MAX_WAITERS, processes: [], subjects: undefined, waiters: [], cluster: undefined, errors: [], complete: false }
  const part = async (name: string, fn: () => Promise<void>): Promise<void> => {
    try {
      await fn()
    } catch (err) {
      const message = `growth (${name}): ${err instanceof Error ? err.message : String(err)}`
      log(message)
      result.errors.push(message)
    }
  }
  await part('a, processes', async () => {
    for (const processes of PROCESS_STEPS) {
      log(`growth (a): ${processes} process${processes === 1 ? '' : 'es'}, one contended subject, ${times.contended} s`)
      result.processes.push(await processesStep(context, processes, times.contended, MAX_WAITERS))
    }
  })
  await part('b, subjects', async () => {
    result.subjects = await subjectsPart(context, MAX_WAITERS, subjects => log(`growth (b): ${subjects} subjects held at once, then released`))
  })
  await part('c, waiters', async () => {
    for (const workers of WAITER_STEPS) {
      // Part (a)'s 2-process step is this load at 50 workers: no need to run it twice.
      const same = result.processes.find(p => p.processes === WAITER_PROCESSES && p.run.workers === workers)
      if (same !== undefined) {
        result.waiters.push(waitersStep(workers, same.run, same.server))
        continue
      }
      log(`growth (c): ${workers} workers on one subject (${WAITER_PROCESSES} processes), ${times.contended} s`)
      result.waiters.push(await runWaitersStep(context, workers, times.contended, MAX_WAITERS))
    }
  })
  await part('d, cluster', async () => {
    const missing = clusterUnavailable()
    if (missing !== undefined) throw new Error(missing)
    const single = result.processes.find(p => p.processes === 2)
    if (single === undefined) throw new Error('needs part (a)\'s 2-process step as the single Redis\' contended load')
    result.cluster = await clusterPart(context, times, MAX_WAITERS, single, what => log(`growth (d): ${what}`))
  })
  result.complete = result.errors.length === 0 &&
    result.processes.length === PROCESS_STEPS.length && result.subjects?.steps.length === SUBJECT_STEPS.length &&
    result.waiters.length === WAITER_STEPS.length && result.cluster !== undefined
  return result
}

/**
 * Growth (a): more processes on one contended subject. The work is fixed (limit 5, 50
 * workers, hold 20 ms); only the number of processes the workers are split over grows, so
 * anything per process (connections, subscriptions, one waiting head per process) shows up.
 */
import type { RunContext } from '../../context'
import { runContended, type ContendedRun, type ServerSample } from '../contended'
import { contendedCost, type CostPerAcquisition } from './cost'

export const PROCESS_STEPS = [1, 2, 4, 8]
export const CONTENDED_LOAD = { limit: 5, workers: 50, holdMs: 20 }

export interface ProcessesStep {
  processes: number
  cost: CostPerAcquisition
  /** used_memory at the window's end minus once the processes had exited: connections and data, bytes. */
  redisMemoryBytes: number
  /** MEMORY USAGE of the subject's keys at the window's end, bytes. */
  keyBytes: number
  /** The connections' memory at the window's end, bytes: grows with processes, not with the data. */
  clientsMemoryBytes: number
  run: ContendedRun
  server: ServerSample
}

export async function processesStep (context: RunContext, processes: number, seconds: number, maxWaiters: number): Promise<ProcessesStep> {
  const { run, servers } = await runContended(context, {
    system: 'slots', processes, ...CONTENDED_LOAD, seconds, maxWaiters, prefix: `bench-${context.runId}-growth-processes-${processes}`, dumpName: `growth-processes-${processes}`
  })
  const server = servers[0]
  return {
    processes,
    cost: contendedCost(run),
    redisMemoryBytes: server.usedMemoryAtEnd - server.usedMemoryAfter,
    clientsMemoryBytes: server.clientsMemoryAtEnd,
    keyBytes: server.keyBytesAtEnd,
    run,
    server
  }
}

/**
 * Growth (c): more waiters on one subject. Limit 5, hold 20 ms, 2 processes; only the number
 * of workers grows, so what each waiting ticket costs (its refreshes, its place in the queue,
 * its memory) shows up per waiting worker.
 */
import type { RunContext } from '../../context'
import { runContended, type ContendedRun, type ServerSample } from '../contended'
import { contendedCost, type CostPerAcquisition } from './cost'
import { CONTENDED_LOAD } from './processes'

export const WAITER_STEPS = [50, 500, 5000]
export const WAITER_PROCESSES = 2

export interface WaitersStep {
  workers: number
  cost: CostPerAcquisition
  commandsPerWaiterPerSecond: number
  roundTripsPerWaiterPerSecond: number
  /** used_memory at the window's end minus once the processes had exited: connections and data, bytes. */
  redisMemoryBytes: number
  /** MEMORY USAGE of the subject's keys at the window's end, bytes. */
  keyBytes: number
  /** The connections' memory at the window's end, bytes. */
  clientsMemoryBytes: number
  run: ContendedRun
  server: ServerSample
}

export function waitersStep (workers: number, run: ContendedRun, server: ServerSample): WaitersStep {
  return {
    workers,
    cost: contendedCost(run),
    commandsPerWaiterPerSecond: run.commandsPerWaiterPerSecond,
    roundTripsPerWaiterPerSecond: run.clientCommandsPerWaiterPerSecond,
    redisMemoryBytes: server.usedMemoryAtEnd - server.usedMemoryAfter,
    clientsMemoryBytes: server.clientsMemoryAtEnd,
    keyBytes: server.keyBytesAtEnd,
    run,
    server
  }
}

export async function runWaitersStep (context: RunContext, workers: number, seconds: number, maxWaiters: number): Promise<WaitersStep> {
  const { run, servers } = await runContended(context, {
    system: 'slots', processes: WAITER_PROCESSES, ...CONTENDED_LOAD, workers, seconds, maxWaiters, prefix: `bench-${context.runId}-growth-waiters-${workers}`, dumpName: `growth-waiters-${workers}`
  })
  return waitersStep(workers, run, servers[0])
}

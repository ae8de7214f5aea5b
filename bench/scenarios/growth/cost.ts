/**
 * The one yardstick every part of the growth scenario reports, so the tables and the chart
 * can set them side by side: what one acquisition (acquire + release) costs each party.
 */
import type { ContendedRun } from '../contended'

export interface CostPerAcquisition {
  /** CPU of the processes that acquire (process.cpuUsage of the children), µs. */
  serverCpuMicros: number
  /** CPU of Redis (INFO cpu; every master of a cluster), µs. */
  redisCpuMicros: number
  /** Commands Redis ran, Lua's inner ones included (INFO commandstats). */
  redisCommands: number
  /** Commands the clients sent: round trips, a script call carrying a batch counting once. */
  roundTrips: number
}

export function contendedCost (run: ContendedRun): CostPerAcquisition {
  return {
    serverCpuMicros: run.clientCpuMicrosPerAcquisition,
    redisCpuMicros: run.redisCpuMicrosPerAcquisition,
    redisCommands: run.commandsPerAcquisition,
    roundTrips: run.clientCommandsPerAcquisition
  }
}

export function costOf (acquisitions: number, totals: { serverCpuMicros: number, redisCpuMicros: number, redisCommands: number, roundTrips: number }): CostPerAcquisition {
  const per = (n: number): number => acquisitions === 0 ? NaN : n / acquisitions
  return {
    serverCpuMicros: per(totals.serverCpuMicros),
    redisCpuMicros: per(totals.redisCpuMicros),
    redisCommands: per(totals.redisCommands),
    roundTrips: per(totals.roundTrips)
  }
}

/**
 * What every scenario is handed: the parsed arguments, the Redis it measures, and the run's
 * id (key prefixes and result file names carry it); plus the progress log and the results
 * folder they all share. Kept apart from run.ts so a scenario file never imports main().
 */
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT } from './paths'
import type { BenchRedis } from './redis-server'

export interface Args {
  seconds: number
  holds: number[]
  only: Set<string>
  redisUrl: string | undefined
  /** Also write every contended run's raw cycles to bench/results/. */
  dump: boolean
  /** Only these systems (and HTTP variants); all by default. */
  systems: Set<string> | undefined
  /** Only redraw the chart from a saved result file. */
  chartFrom: string | undefined
  /** Processes the contended workers of the Redis systems are split over. */
  processes: number
}

export interface RunContext {
  args: Args
  redis: BenchRedis
  /** The run's start time, compact (e.g. 20261206T101500): unique per run, sorts by time. */
  runId: string
}

/** Progress goes to stderr so stdout holds only the report. */
export const log = (message: string): void => { process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`) }

export function resultsDir (): string {
  const dir = join(ROOT, 'bench', 'results')
  mkdirSync(dir, { recursive: true })
  return dir
}

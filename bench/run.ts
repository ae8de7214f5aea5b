/**
 * `npm run bench [-- --seconds 10] [--holds 20,200] [--only contended,idle,uncontended,http,http-pair,growth]`
 *   `[--systems slots,redis-semaphore,...] [--processes 2] [--redis-url URL] [--dump] [--chart-from FILE]`
 *
 * Measures fastify-slots and its peers in one run, against one Redis (a private redis-server
 * on a free port unless --redis-url is given), and prints ratios: noisy shared machines move
 * absolute numbers by ±20-30 % between runs, much less within one. Writes a JSON result to
 * bench/results/, the wait-time chart to docs/benchmarks-wait.svg and the growth chart to
 * docs/benchmarks-growth.svg (--chart-from redraws them from a saved result). --seconds is the length of each contended run; the uncontended
 * cases (3 interleaved rounds of 4 % of it each) and the HTTP runs (4 rounds of 12.5 %, at least
 * 1 s; the same for the two-slot routes of http-pair) and the growth steps (scenarios/growth) scale with it. --dump also writes every
 * contended run's raw timeline to bench/results/.
 *
 * This file only reads the arguments and runs the scenarios in order; each scenario is in
 * scenarios/, the tables and targets in report.ts.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { availableParallelism, cpus, loadavg } from 'node:os'
import { join } from 'node:path'
import { drawChart, drawGrowthChart, type Chart } from './charts'
import type { SystemName } from './common'
import { log, resultsDir, type Args, type RunContext } from './context'
import { BenchRedis } from './redis-server'
import { contendedReport, httpPairReport, httpReport, idleReport, LABEL, targets, targetsReport, uncontendedReport } from './report'
import { growthChart, growthReport, growthTargets } from './report-growth'
import { growth, type GrowthResult } from './scenarios/growth'
import { contended, CONTENDED_SYSTEMS, idle, IDLE_SYSTEMS, LIMIT, WORKERS, type ContendedRun, type IdleRun } from './scenarios/contended'
import { HTTP_CONNECTIONS, HTTP_PAIR_SCENARIO, HTTP_PAIR_VARIANTS, HTTP_ROUND_SHARE, HTTP_ROUNDS, HTTP_VARIANTS, httpAll, type HttpRun } from './scenarios/http'
import { CONCURRENCIES, ROUNDS, UNCONTENDED_SYSTEMS, uncontendedAll, type UncontendedRun } from './scenarios/uncontended'

function parseArgs (argv: string[]): Args {
  const args: Args = { seconds: 10, holds: [20, 200], only: new Set(['contended', 'idle', 'uncontended', 'http', 'http-pair', 'growth']), redisUrl: undefined, dump: false, systems: undefined, chartFrom: undefined, processes: 2 }
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split('=', 2)
    const value = (): string => {
      const v = inline ?? argv[++i]
      if (v === undefined) throw new Error(`${flag} needs a value`)
      return v
    }
    if (flag === '--seconds') args.seconds = Number(value())
    else if (flag === '--holds') args.holds = value().split(',').map(Number)
    else if (flag === '--only') args.only = new Set(value().split(','))
    else if (flag === '--redis-url') args.redisUrl = value()
    else if (flag === '--dump') args.dump = true
    else if (flag === '--systems') args.systems = new Set(value().split(','))
    else if (flag === '--chart-from') args.chartFrom = value()
    else if (flag === '--processes') args.processes = Number(value())
    else if (flag === '--help' || flag === '-h') {
      console.log('npm run bench -- [--seconds 10] [--holds 20,200] [--only contended,idle,uncontended,http,http-pair,growth] [--redis-url redis://...] [--systems slots,seed-style,...] [--processes 2] [--dump] [--chart-from bench/results/<file>.json]\n' +
        '  growth ("How cost grows": processes, subjects, waiters, a 3-master cluster; fastify-slots only, not limited by --systems or --processes) takes about 2 minutes at --seconds 10')
      process.exit(0)
    } else throw new Error(`unknown argument ${argv[i]}`)
  }
  if (!(args.seconds > 0) || args.holds.some(h => !(h >= 0))) throw new Error('--seconds and --holds must be positive numbers')
  if (!Number.isInteger(args.processes) || args.processes < 1 || args.processes > WORKERS) throw new Error(`--processes must be an integer from 1 to ${WORKERS}`)
  return args
}

async function main (): Promise<void> {
  const args = parseArgs(process.argv.slice(2))
  if (args.chartFrom !== undefined) {
    const saved = JSON.parse(readFileSync(args.chartFrom, 'utf8')) as { chart?: Chart, growth?: GrowthResult, startedAt: string, args: { seconds: number } }
    const growthComplete = saved.growth?.complete === true
    if (saved.chart === undefined && !growthComplete) throw new Error(`${args.chartFrom} has no chart data (run without --holds 20, or a growth scenario that did not finish?)`)
    if (saved.chart !== undefined) console.log(`chart: ${drawChart(saved.chart)}`)
    // The growth chart is drawn from the saved measurements, so a change in how it is drawn applies to old runs too.
    if (growthComplete) console.log(`chart: ${drawGrowthChart(growthChart(saved.growth!, new Date(saved.startedAt), saved.args.seconds))}`)
    return
  }
  const startedAt = new Date()
  const runId = startedAt.toISOString().replace(/[-:]/g, '').replace(/\..*/, '')
  const redis = await BenchRedis.start(args.redisUrl)
  const context: RunContext = { args, redis, runId }
  const machine = {
    nproc: availableParallelism(),
    cpu: cpus()[0]?.model ?? 'unknown',
    node: process.version,
    redis: await redis.version(),
    ioredis: (require('ioredis/package.json') as { version: string }).version,
    redisSemaphore: (require('redis-semaphore/package.json') as { version: string }).version,
    fastify: (require('fastify/package.json') as { version: string }).version,
    loadAverageAtStart: loadavg().map(l => +l.toFixed(2)),
    privateRedis: redis.owned
  }
  log(`Redis ${machine.redis} at ${redis.url}${redis.owned ? ' (private)' : ''}; ${machine.nproc} cores, ${machine.cpu}, Node ${machine.node}`)

  // Per case and round (uncontended), per variant and round (HTTP).
  const uncontendedSeconds = Math.max(0.2, +(args.seconds * 0.04).toFixed(2))
  const httpSeconds = Math.max(1, +(args.seconds * HTTP_ROUND_SHARE).toFixed(2))
  const pick = <T extends string>(all: T[]): T[] => args.systems === undefined ? all : all.filter(x => args.systems!.has(x))
  const runs: ContendedRun[] = []
  const chartWaits = new Map<SystemName, { waits: number[], note: string }>()
  const idleRuns: IdleRun[] = []
  const unc: UncontendedRun[] = []
  const httpRuns: HttpRun[] = []
  const httpPairRuns: HttpRun[] = []
  let grown: GrowthResult | undefined
  try {
    if (args.only.has('contended')) {
      for (const hold of args.holds) {
        for (const system of pick(CONTENDED_SYSTEMS)) {
          log(`contended: ${LABEL[system]}, hold ${hold} ms, ${args.seconds} s`)
          const { run, waits } = await contended(context, system, hold)
          runs.push(run)
          if (hold === 20) {
            const note = `${run.acquisitions} done, ${run.pendingAtEnd} unfinished` + (run.starvedWorkers > 0 ? `, ${run.starvedWorkers} starved` : '')
            chartWaits.set(system, { waits, note })
          }
        }
      }
    }
    if (args.only.has('idle')) {
      for (const system of pick(IDLE_SYSTEMS)) {
        log(`idle: ${LABEL[system]}, ${args.seconds} s`)
        idleRuns.push(await idle(context, system))
      }
    }
    if (args.only.has('uncontended')) {
      log(`uncontended: ${UNCONTENDED_SYSTEMS.length} systems × ${CONCURRENCIES.length * 2} cases × ${ROUNDS} rounds of ${uncontendedSeconds} s`)
      unc.push(...await uncontendedAll(context, pick(UNCONTENDED_SYSTEMS), uncontendedSeconds, ROUNDS))
    }
    if (args.only.has('http')) {
      log(`http: ${HTTP_VARIANTS.length} routes × ${HTTP_ROUNDS} rounds of ${httpSeconds} s, ${HTTP_CONNECTIONS} connections`)
      httpRuns.push(...await httpAll(context, pick(HTTP_VARIANTS), httpSeconds, HTTP_ROUNDS))
    }
    if (args.only.has('http-pair') && pick(HTTP_PAIR_VARIANTS).length > 0) {
      log(`http-pair: ${pick(HTTP_PAIR_VARIANTS).length} two-slot routes × ${HTTP_ROUNDS} rounds of ${httpSeconds} s, ${HTTP_CONNECTIONS} connections`)
      httpPairRuns.push(...await httpAll(context, pick(HTTP_PAIR_VARIANTS), httpSeconds, HTTP_ROUNDS, HTTP_PAIR_SCENARIO))
    }
    if (args.only.has('growth')) {
      log('growth: how fastify-slots\' cost grows with processes, subjects, waiters, and on a cluster')
      grown = await growth(context)
    }
  } finally {
    await redis.stop()
  }

  const print = (s: string): void => { process.stdout.write(s + '\n') }
  print(`\nfastify-slots benchmark, ${startedAt.toISOString()}: ${machine.nproc} × ${machine.cpu}, Node ${machine.node}, Redis ${machine.redis}, ioredis ${machine.ioredis}, redis-semaphore ${machine.redisSemaphore}`)
  for (const line of contendedReport(runs, args)) print(line)
  for (const line of idleReport(idleRuns, args)) print(line)
  for (const line of uncontendedReport(unc, uncontendedSeconds)) print(line)
  for (const line of httpReport(httpRuns, httpSeconds)) print(line)
  for (const line of httpPairReport(httpPairRuns, httpSeconds)) print(line)
  if (grown !== undefined) for (const line of growthReport(grown)) print(line)
  const goals = [...targets(runs, idleRuns, unc, httpRuns), ...(grown === undefined ? [] : growthTargets(grown))]
  for (const line of targetsReport(goals)) print(line)
  const errors = runs.flatMap(r => r.errors.map(e => `${r.system}/${r.holdMs}: ${e}`))
  if (errors.length > 0) print(`\nerrors during the contended runs (first ones):\n${errors.slice(0, 10).join('\n')}`)

  const chart: Chart | undefined = chartWaits.size === 0
    ? undefined
    : {
        title: `Wait time, contended: limit ${LIMIT}, ${WORKERS} workers, hold 20 ms`,
        subtitle: `${args.seconds} s run of ${startedAt.toISOString().slice(0, 16)}Z; waits still unfinished at the end count at their length so far (also in p50/p99)`,
        series: CONTENDED_SYSTEMS.filter(s => chartWaits.has(s)).map(s => ({ system: s, note: chartWaits.get(s)!.note, waits: chartWaits.get(s)!.waits.map(w => +w.toFixed(3)) }))
      }
  const growthChartData = grown?.complete === true ? growthChart(grown, startedAt, args.seconds) : undefined
  const file = join(resultsDir(), `bench-${runId}.json`)
  writeFileSync(file, JSON.stringify({
    startedAt, args: { ...args, only: [...args.only], systems: args.systems === undefined ? undefined : [...args.systems] }, machine, contended: runs, idle: idleRuns, uncontended: unc, http: httpRuns, httpPair: httpPairRuns, growth: grown, targets: goals, chart, growthChart: growthChartData
  }, null, 2) + '\n')
  print(`\nresults: ${file}`)
  // Only a complete run replaces the chart in the docs; a partial one can be drawn later with --chart-from.
  const complete = args.systems === undefined && args.processes === 2
  if (chart !== undefined) print(complete ? `chart: ${drawChart(chart)}` : `chart not redrawn (partial run); draw it with --chart-from ${file}`)
  // The growth chart does not depend on --systems or --processes: only on every part having run.
  if (grown !== undefined) print(growthChartData !== undefined ? `chart: ${drawGrowthChart(growthChartData)}` : 'growth chart not redrawn: some part of the growth scenario did not run')
}

main().catch(err => {
  console.error(err)
  process.exit(1)
})

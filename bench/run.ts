/**
 * `npm run bench [-- --seconds 10] [--holds 20,200] [--only contended,idle,uncontended,http]`
 *   `[--systems slots,redis-semaphore,...] [--processes 2] [--redis-url URL] [--dump] [--chart-from FILE]`
 *
 * Measures fastify-slots and its peers in one run, against one Redis (a private redis-server
 * on a free port unless --redis-url is given), and prints ratios: noisy shared machines move
 * absolute numbers by ±20-30 % between runs, much less within one. Writes a JSON result to
 * bench/results/ and the wait-time chart to docs/benchmarks-wait.svg (--chart-from redraws
 * it from a saved result). --seconds is the length of each contended run; the uncontended
 * cases (3 interleaved rounds of 4 % of it each) and the HTTP runs (2 rounds of 25 %) scale
 * with it. --dump also writes every contended run's raw timeline to bench/results/.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { availableParallelism, cpus, loadavg } from 'node:os'
import { join } from 'node:path'
import autocannon from 'autocannon'
import { now, sleep, type ChildConfig, type ChildMessage, type ContendedResult, type HttpVariant, type SystemName, type UncontendedCase } from './common'
import { analyseContended, distribution, percentile, type ContendedMetrics } from './metrics'
import { BenchRedis, delta, type RedisDelta } from './redis-server'
import { waitCdfSvg } from './svg'

// ---------------------------------------------------------------------------------------------
// Parameters

interface Args {
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

function parseArgs (argv: string[]): Args {
  const args: Args = { seconds: 10, holds: [20, 200], only: new Set(['contended', 'idle', 'uncontended', 'http']), redisUrl: undefined, dump: false, systems: undefined, chartFrom: undefined, processes: 2 }
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
      console.log('npm run bench -- [--seconds 10] [--holds 20,200] [--only contended,idle,uncontended,http] [--redis-url redis://...] [--systems slots,seed-style,...] [--processes 2] [--dump] [--chart-from bench/results/<file>.json]')
      process.exit(0)
    } else throw new Error(`unknown argument ${argv[i]}`)
  }
  if (!(args.seconds > 0) || args.holds.some(h => !(h >= 0))) throw new Error('--seconds and --holds must be positive numbers')
  if (!Number.isInteger(args.processes) || args.processes < 1 || args.processes > WORKERS) throw new Error(`--processes must be an integer from 1 to ${WORKERS}`)
  return args
}

const LIMIT = 5
const WORKERS = 50
const WARMUP_MS = 1000
const UNCONTENDED_WARMUP_MS = 150
const ROUNDS = 3
const HTTP_ROUNDS = 2
const UNCONTENDED_LIMIT = 10_000
const CONCURRENCIES = [1, 16, 64]
const HTTP_CONNECTIONS = 50

const CONTENDED_SYSTEMS: SystemName[] = ['in-process', 'slots', 'slots-fair', 'redis-semaphore', 'seed-style']
const IDLE_SYSTEMS: SystemName[] = ['slots', 'slots-fair', 'redis-semaphore', 'seed-style']
/** The idle scenario's holders keep their slots for the whole run (setTimeout's limit is ~24.8 days). */
const IDLE_HOLD_MS = 86_400_000
const UNCONTENDED_SYSTEMS: SystemName[] = ['floor', 'slots', 'redis-semaphore', 'seed-style']
const HTTP_VARIANTS: HttpVariant[] = ['bare', 'slots', 'slots-memory', 'floor']

const LABEL: Record<SystemName, string> = {
  'in-process': 'in-process FIFO (ideal)',
  slots: 'fastify-slots',
  'slots-fair': 'fastify-slots fair',
  'redis-semaphore': 'redis-semaphore',
  'seed-style': 'seed-style poller',
  floor: '2×PING (floor)'
}
const COLOR: Record<SystemName, string> = {
  'in-process': '#2ca02c',
  slots: '#1f77b4',
  'slots-fair': '#9467bd',
  'redis-semaphore': '#d62728',
  'seed-style': '#ff7f0e',
  floor: '#7f7f7f'
}
const HTTP_LABEL: Record<HttpVariant, string> = {
  bare: 'bare route (no plugin)',
  slots: 'route + acquireSlot',
  'slots-memory': 'route + acquireSlot, memory store',
  floor: 'bare route + 2 PINGs'
}

const log = (message: string): void => { process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`) }

// ---------------------------------------------------------------------------------------------
// Child processes

class Child {
  private readonly process: ChildProcess
  private readonly inbox: ChildMessage[] = []
  private waiter: (() => void) | undefined
  private exitError: Error | undefined
  private gone = false
  readonly exited: Promise<void>

  constructor (config: ChildConfig) {
    this.process = fork(join(__dirname, 'child.ts'), [JSON.stringify(config)], {
      execArgv: ['-r', 'ts-node/register/transpile-only'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc']
    })
    this.process.on('message', message => {
      this.inbox.push(message as ChildMessage)
      this.waiter?.()
    })
    this.exited = new Promise(resolve => {
      this.process.once('exit', code => {
        this.gone = true
        if (code !== 0) this.exitError = new Error(`a ${config.role} child (${'system' in config ? config.system : config.variant}) exited with code ${code}`)
        this.waiter?.()
        resolve()
      })
    })
  }

  async next<T extends ChildMessage['type']> (type: T): Promise<Extract<ChildMessage, { type: T }>> {
    for (;;) {
      const message = this.inbox.shift()
      if (message?.type === 'error') throw new Error(`child failed: ${message.message}`)
      if (message?.type === type) return message as Extract<ChildMessage, { type: T }>
      if (message !== undefined) continue
      if (this.exitError !== undefined) throw this.exitError
      if (this.gone) throw new Error(`a child exited before sending '${type}'`)
      await new Promise<void>(resolve => { this.waiter = resolve })
      this.waiter = undefined
    }
  }

  send (message: unknown): void {
    this.process.send(message as object)
  }

  kill (): void {
    if (this.process.exitCode === null) this.process.kill('SIGKILL')
  }
}

/** Runs fn with the children; kills any still running however fn ends. */
async function withChildren<T> (configs: ChildConfig[], fn: (children: Child[]) => Promise<T>): Promise<T> {
  const children = configs.map(c => new Child(c))
  try {
    const result = await fn(children)
    // Let them close their connections; a child that hangs is killed below.
    let timer: NodeJS.Timeout | undefined
    await Promise.race([Promise.all(children.map(c => c.exited)), new Promise(resolve => { timer = setTimeout(resolve, 10_000) })])
    clearTimeout(timer)
    return result
  } finally {
    for (const c of children) c.kill()
  }
}

// ---------------------------------------------------------------------------------------------
// Scenarios

interface RedisCost extends RedisDelta {
  commandsPerSecond: number
  /** Commands the clients sent (round trips, counted in the children). */
  clientCommands: number
  clientCommandsPerSecond: number
}

interface ContendedRun extends Omit<ContendedMetrics, 'waitsForChart'> {
  system: SystemName
  holdMs: number
  processes: number
  workers: number
  limit: number
  seconds: number
  redis: RedisCost
  commandsPerAcquisition: number
  clientCommandsPerAcquisition: number
  commandsPerWaiterPerSecond: number
  clientCommandsPerWaiterPerSecond: number
  /** CPU per acquisition: the Redis server's, and the benchmark processes' (all of them), µs. */
  redisCpuMicrosPerAcquisition: number
  clientCpuMicrosPerAcquisition: number
  /** Wait percentiles 0, 1, ..., 100 (unfinished waits included at their length so far), ms. */
  waitPercentiles: number[]
  errors: string[]
}

let runId = ''

async function contended (redis: BenchRedis, args: Args, system: SystemName, holdMs: number): Promise<{ run: ContendedRun, waits: number[] }> {
  const seconds = args.seconds
  await redis.flushIfOwned()
  const processes = system === 'in-process' ? 1 : args.processes
  // Workers split as evenly as the count allows; ids stay global.
  const share = (i: number): number => Math.floor((WORKERS * (i + 1)) / processes) - Math.floor((WORKERS * i) / processes)
  const prefix = `bench-${runId}-contended-${holdMs}-${system}`
  const configs: ChildConfig[] = Array.from({ length: processes }, (_, i) => ({
    role: 'contended', system, redisUrl: redis.url, prefix, firstWorker: Math.floor((WORKERS * i) / processes), workers: share(i), limit: LIMIT, holdMs
  }))
  return await withChildren(configs, async children => {
    await Promise.all(children.map(c => c.next('ready')))
    const startAt = now() + 300
    const windowStart = startAt + WARMUP_MS
    const windowEnd = windowStart + seconds * 1000
    for (const c of children) c.send({ type: 'start', startAt, windowStart, windowEnd })
    await sleep(windowStart - now())
    const before = await redis.snapshot()
    await sleep(windowEnd - now())
    const after = await redis.snapshot()
    const results: ContendedResult[] = (await Promise.all(children.map(c => c.next('contended-result')))).map(m => m.result)

    const cycles = results.flatMap(r => r.cycles)
    const pending = results.flatMap(r => r.pending)
    if (args.dump) writeFileSync(join(resultsDir(), `raw-${runId}-${system}-${holdMs}.json`), JSON.stringify({ windowStart, windowEnd, cycles, pending }))
    const { waitsForChart, ...metrics } = analyseContended({ cycles, pending, windowStart, windowEnd, limit: LIMIT, workers: WORKERS })
    const cost = delta(before, after)
    const clientCommands = results.reduce((a, r) => a + r.clientCommands, 0)
    const clientCpu = results.reduce((a, r) => a + r.cpuMicros, 0)
    const perAcq = (n: number): number => metrics.acquisitions === 0 ? NaN : n / metrics.acquisitions
    const perWaiter = (n: number): number => metrics.meanWaiting === 0 ? NaN : n / seconds / metrics.meanWaiting
    const run: ContendedRun = {
      system,
      holdMs,
      processes,
      workers: WORKERS,
      limit: LIMIT,
      seconds,
      ...metrics,
      redis: { ...cost, commandsPerSecond: cost.commands / seconds, clientCommands, clientCommandsPerSecond: clientCommands / seconds },
      commandsPerAcquisition: perAcq(cost.commands),
      clientCommandsPerAcquisition: perAcq(clientCommands),
      commandsPerWaiterPerSecond: perWaiter(cost.commands),
      clientCommandsPerWaiterPerSecond: perWaiter(clientCommands),
      redisCpuMicrosPerAcquisition: perAcq(cost.cpuMicros),
      clientCpuMicrosPerAcquisition: perAcq(clientCpu),
      waitPercentiles: Array.from({ length: 101 }, (_, p) => p === 0 ? waitsForChart[0] : percentile(waitsForChart, p / 100)),
      errors: results.flatMap(r => r.errors)
    }
    return { run, waits: waitsForChart }
  })
}

/** What waiting alone costs: the limit's holders never release, everyone else waits. */
interface IdleRun {
  system: SystemName
  seconds: number
  waitingWorkers: number
  commandsPerSecond: number
  clientCommandsPerSecond: number
  commandsPerWaiterPerSecond: number
  clientCommandsPerWaiterPerSecond: number
  redisCpuMicrosPerSecond: number
}

async function idle (redis: BenchRedis, args: Args, system: SystemName): Promise<IdleRun> {
  const { run } = await contended(redis, args, system, IDLE_HOLD_MS)
  const waitingWorkers = WORKERS - LIMIT
  return {
    system,
    seconds: args.seconds,
    waitingWorkers,
    commandsPerSecond: run.redis.commandsPerSecond,
    clientCommandsPerSecond: run.redis.clientCommandsPerSecond,
    commandsPerWaiterPerSecond: run.redis.commandsPerSecond / waitingWorkers,
    clientCommandsPerWaiterPerSecond: run.redis.clientCommandsPerSecond / waitingWorkers,
    redisCpuMicrosPerSecond: run.redis.cpuMicros / args.seconds
  }
}

interface UncontendedRun extends UncontendedCase {
  system: SystemName
  rounds: number
  seconds: number
  ops: number
  opsPerSecond: number
  /** ops/s of each round, to show the spread. */
  opsPerSecondByRound: number[]
  p50Ms: number
  p99Ms: number
  /** Commands the client sent per operation. */
  clientCommandsPerOp: number
  /** Commands Redis ran per operation, those inside Lua included (INFO commandstats). */
  serverCommandsPerOp: number
  /** CPU per operation: the Redis server's, and the benchmark process's, µs. */
  redisCpuMicrosPerOp: number
  clientCpuMicrosPerOp: number
}

/**
 * Every system's child is started at once and then given the cases one at a time, rotating
 * the order of the systems each round: the machine's drift is spread over all of them.
 */
async function uncontendedAll (redis: BenchRedis, systems: SystemName[], seconds: number, rounds: number): Promise<UncontendedRun[]> {
  await redis.flushIfOwned()
  const cases: UncontendedCase[] = CONCURRENCIES.flatMap(concurrency => (['distinct', 'same'] as const).map(subjects => ({ concurrency, subjects })))
  const configs: ChildConfig[] = systems.map(system => ({
    role: 'uncontended', system, redisUrl: redis.url, prefix: `bench-${runId}-uncontended-${system}`, limit: UNCONTENDED_LIMIT
  }))
  return await withChildren(configs, async children => {
    await Promise.all(children.map(c => c.next('ready')))
    interface Acc { latencies: number[], rounds: number[], client: number, clientCpu: number, server: number, redisCpu: number }
    const acc = new Map<string, Acc>()
    for (let round = 0; round < rounds; round++) {
      for (const run of cases) {
        for (let k = 0; k < systems.length; k++) {
          const i = (k + round) % systems.length
          const startAt = now() + 20
          const windowStart = startAt + UNCONTENDED_WARMUP_MS
          const windowEnd = windowStart + seconds * 1000
          children[i].send({ type: 'case', run, startAt, windowStart, windowEnd })
          await sleep(windowStart - now())
          const before = await redis.snapshot()
          await sleep(windowEnd - now())
          const after = await redis.snapshot()
          const { sample } = await children[i].next('case-result')
          const cost = delta(before, after)
          const key = `${systems[i]}/${run.concurrency}/${run.subjects}`
          const a = acc.get(key) ?? { latencies: [], rounds: [], client: 0, clientCpu: 0, server: 0, redisCpu: 0 }
          a.latencies.push(...sample.latencies)
          a.rounds.push(sample.latencies.length / seconds)
          a.client += sample.clientCommands
          a.clientCpu += sample.cpuMicros
          a.server += cost.commands
          a.redisCpu += cost.cpuMicros
          acc.set(key, a)
        }
      }
    }
    for (const c of children) c.send({ type: 'stop' })
    return systems.flatMap(system => cases.map(run => {
      const a = acc.get(`${system}/${run.concurrency}/${run.subjects}`)!
      const ops = a.latencies.length
      const d = distribution(a.latencies)
      const perOp = (n: number): number => ops === 0 ? NaN : n / ops
      return {
        system,
        ...run,
        rounds,
        seconds: seconds * rounds,
        ops,
        opsPerSecond: ops / (seconds * rounds),
        opsPerSecondByRound: a.rounds.map(r => Math.round(r)),
        p50Ms: d.p50,
        p99Ms: d.p99,
        clientCommandsPerOp: perOp(a.client),
        serverCommandsPerOp: perOp(a.server),
        redisCpuMicrosPerOp: perOp(a.redisCpu),
        clientCpuMicrosPerOp: perOp(a.clientCpu)
      }
    }))
  })
}

interface HttpRun {
  variant: HttpVariant
  rounds: number
  seconds: number
  requests: number
  requestsPerSecond: number
  requestsPerSecondByRound: number[]
  /** Means over the rounds of autocannon's latency percentiles, ms. */
  latencyP50Ms: number
  latencyP99Ms: number
  non2xx: number
  errors: number
  redisCommandsPerRequest: number
  redisCpuMicrosPerRequest: number
}

/** The servers (one per variant) run side by side (idle but one); each round runs autocannon once against each, in rotating order. */
async function httpAll (redis: BenchRedis, variants: HttpVariant[], seconds: number, rounds: number): Promise<HttpRun[]> {
  await redis.flushIfOwned()
  const configs: ChildConfig[] = variants.map(variant => ({ role: 'http-server', variant, redisUrl: redis.url, prefix: `bench-${runId}-http` }))
  return await withChildren(configs, async children => {
    const urls = (await Promise.all(children.map(c => c.next('ready')))).map(m => `http://127.0.0.1:${m.port ?? 0}/`)
    for (const url of urls) await autocannon({ url, connections: HTTP_CONNECTIONS, duration: 1 })
    const samples = variants.map(() => [] as Array<{ result: autocannon.Result, cost: RedisDelta }>)
    for (let round = 0; round < rounds; round++) {
      for (let k = 0; k < variants.length; k++) {
        const i = (k + round) % variants.length
        const before = await redis.snapshot()
        const result = await autocannon({ url: urls[i], connections: HTTP_CONNECTIONS, duration: seconds })
        const after = await redis.snapshot()
        samples[i].push({ result, cost: delta(before, after) })
      }
    }
    for (const c of children) c.send({ type: 'stop' })
    return variants.map((variant, i) => {
      const s = samples[i]
      const sum = (fn: (x: { result: autocannon.Result, cost: RedisDelta }) => number): number => s.reduce((a, x) => a + fn(x), 0)
      const requests = sum(x => x.result.requests.total)
      const duration = sum(x => x.result.duration)
      return {
        variant,
        rounds,
        seconds: duration,
        requests,
        requestsPerSecond: requests / duration,
        requestsPerSecondByRound: s.map(x => Math.round(x.result.requests.total / x.result.duration)),
        latencyP50Ms: sum(x => x.result.latency.p50) / s.length,
        latencyP99Ms: sum(x => x.result.latency.p99) / s.length,
        non2xx: sum(x => x.result.non2xx),
        errors: sum(x => x.result.errors),
        redisCommandsPerRequest: requests === 0 ? 0 : sum(x => x.cost.commands) / requests,
        redisCpuMicrosPerRequest: requests === 0 ? 0 : sum(x => x.cost.cpuMicros) / requests
      }
    })
  })
}

function resultsDir (): string {
  const dir = join(__dirname, 'results')
  mkdirSync(dir, { recursive: true })
  return dir
}

// ---------------------------------------------------------------------------------------------
// Output

function table (header: string[], rows: Array<Array<string | number>>): string {
  const cells = [header, ...rows.map(r => r.map(String))]
  const widths = header.map((_, i) => Math.max(...cells.map(r => r[i].length)))
  const line = (r: string[]): string => r.map((c, i) => i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i])).join('  ')
  return [line(cells[0]), widths.map(w => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n')
}

const f = (n: number, digits = 1): string => Number.isFinite(n) ? n.toFixed(digits) : '-'
const pct = (n: number, digits = 1): string => Number.isFinite(n) ? `${(n * 100).toFixed(digits)} %` : '-'
const ms = (n: number): string => !Number.isFinite(n) ? '-' : n < 10 ? n.toFixed(2) : n < 1000 ? n.toFixed(0) : `${(n / 1000).toFixed(2)} s`

interface Target {
  name: string
  target: string
  value: string
  met: boolean
}

function targets (runs: ContendedRun[], idleRuns: IdleRun[], unc: UncontendedRun[], httpRuns: HttpRun[]): Target[] {
  const out: Target[] = []
  const find = (system: SystemName, hold: number): ContendedRun | undefined => runs.find(r => r.system === system && r.holdMs === hold)
  const ideal = find('in-process', 20)
  for (const system of ['slots', 'slots-fair'] as const) {
    const r = find(system, 20)
    if (r === undefined) continue
    const label = LABEL[system]
    if (ideal !== undefined) {
      const ratio = r.utilisation / ideal.utilisation
      out.push({ name: `${label}: contended 20 ms utilisation vs ideal`, target: '≥ 95 %', value: `${pct(ratio)} (${pct(r.utilisation)} vs ${pct(ideal.utilisation)})`, met: ratio >= 0.95 })
    }
    out.push({ name: `${label}: hand-off p50`, target: '≤ 5 ms', value: `${ms(r.handoff.p50)} ms`, met: r.handoff.p50 <= 5 })
    out.push({ name: `${label}: hand-off p99`, target: '≤ 50 ms', value: `${ms(r.handoff.p99)} ms`, met: r.handoff.p99 <= 50 })
    for (const hold of [20, 200]) {
      const h = find(system, hold)
      if (h === undefined) continue
      // What one acquire and one release per acquisition come to, before any waiting.
      const floor = 2 * h.acquisitionsPerSecond / h.meanWaiting
      out.push({
        name: `${label}: Redis commands / waiting worker / s (hold ${hold} ms)`,
        target: '≤ 5',
        value: `${f(h.commandsPerWaiterPerSecond)}; client-sent ${f(h.clientCommandsPerWaiterPerSecond)} (1 acquire + 1 release per acquisition alone: ${f(floor)})`,
        met: h.commandsPerWaiterPerSecond <= 5
      })
    }
    const i = idleRuns.find(r => r.system === system)
    if (i !== undefined) {
      out.push({
        name: `${label}: Redis commands / waiting worker / s, waiting alone (idle)`,
        target: '≤ 5',
        value: `${f(i.commandsPerWaiterPerSecond, 2)}; client-sent ${f(i.clientCommandsPerWaiterPerSecond, 2)}`,
        met: i.commandsPerWaiterPerSecond <= 5
      })
    }
  }
  const fair = find('slots-fair', 20)
  if (fair !== undefined) out.push({ name: `${LABEL['slots-fair']}: Jain index`, target: '≥ 0.99', value: f(fair.jain, 3), met: fair.jain >= 0.99 })
  for (const subjects of ['distinct', 'same'] as const) {
    const us = unc.find(u => u.system === 'slots' && u.concurrency === 64 && u.subjects === subjects)
    const them = unc.find(u => u.system === 'redis-semaphore' && u.concurrency === 64 && u.subjects === subjects)
    if (us === undefined || them === undefined) continue
    const ratio = us.opsPerSecond / them.opsPerSecond
    // Round k of every system ran back to back, so per-round ratios show how much drift moved it.
    const byRound = us.opsPerSecondByRound.map((n, k) => f(n / them.opsPerSecondByRound[k], 2)).join('/')
    out.push({ name: `uncontended ×64 (${subjects} subjects) vs redis-semaphore`, target: '≥ 1.30×', value: `${f(ratio, 2)}× (${f(us.opsPerSecond, 0)} vs ${f(them.opsPerSecond, 0)} ops/s; rounds ${byRound})`, met: ratio >= 1.3 })
  }
  const bare = httpRuns.find(h => h.variant === 'bare')
  const slots = httpRuns.find(h => h.variant === 'slots')
  if (bare !== undefined && slots !== undefined) {
    const ratio = slots.requestsPerSecond / bare.requestsPerSecond
    const byRound = slots.requestsPerSecondByRound.map((n, k) => pct(n / bare.requestsPerSecondByRound[k], 0)).join('/')
    out.push({ name: 'HTTP route + acquireSlot vs bare route', target: '≥ 80 %', value: `${pct(ratio)} (${f(slots.requestsPerSecond, 0)} vs ${f(bare.requestsPerSecond, 0)} req/s; rounds ${byRound})`, met: ratio >= 0.8 })
  }
  // Not targets: where the difference goes (the plugin without Redis; Redis without the plugin).
  for (const variant of ['slots-memory', 'floor'] as const) {
    const other = httpRuns.find(h => h.variant === variant)
    if (bare === undefined || other === undefined) continue
    out.push({ name: `(for comparison) HTTP ${HTTP_LABEL[variant]} vs bare route`, target: '-', value: pct(other.requestsPerSecond / bare.requestsPerSecond), met: true })
  }
  return out
}

// ---------------------------------------------------------------------------------------------

async function main (): Promise<void> {
  const args = parseArgs(process.argv.slice(2))
  if (args.chartFrom !== undefined) {
    const saved = JSON.parse(readFileSync(args.chartFrom, 'utf8')) as { chart?: Chart }
    if (saved.chart === undefined) throw new Error(`${args.chartFrom} has no chart data (run without --holds 20?)`)
    console.log(`chart: ${drawChart(saved.chart)}`)
    return
  }
  const startedAt = new Date()
  runId = startedAt.toISOString().replace(/[-:]/g, '').replace(/\..*/, '')
  const redis = await BenchRedis.start(args.redisUrl)
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
  const httpSeconds = Math.max(1, +(args.seconds / 4).toFixed(1))
  const pick = <T extends string>(all: T[]): T[] => args.systems === undefined ? all : all.filter(x => args.systems!.has(x))
  const runs: ContendedRun[] = []
  const chartWaits = new Map<SystemName, { waits: number[], note: string }>()
  const idleRuns: IdleRun[] = []
  const unc: UncontendedRun[] = []
  const httpRuns: HttpRun[] = []
  try {
    if (args.only.has('contended')) {
      for (const hold of args.holds) {
        for (const system of pick(CONTENDED_SYSTEMS)) {
          log(`contended: ${LABEL[system]}, hold ${hold} ms, ${args.seconds} s`)
          const { run, waits } = await contended(redis, args, system, hold)
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
        idleRuns.push(await idle(redis, args, system))
      }
    }
    if (args.only.has('uncontended')) {
      log(`uncontended: ${UNCONTENDED_SYSTEMS.length} systems × ${CONCURRENCIES.length * 2} cases × ${ROUNDS} rounds of ${uncontendedSeconds} s`)
      unc.push(...await uncontendedAll(redis, pick(UNCONTENDED_SYSTEMS), uncontendedSeconds, ROUNDS))
    }
    if (args.only.has('http')) {
      log(`http: ${HTTP_VARIANTS.length} routes × ${HTTP_ROUNDS} rounds of ${httpSeconds} s, ${HTTP_CONNECTIONS} connections`)
      httpRuns.push(...await httpAll(redis, pick(HTTP_VARIANTS), httpSeconds, HTTP_ROUNDS))
    }
  } finally {
    await redis.stop()
  }

  const print = (s: string): void => { process.stdout.write(s + '\n') }
  print(`\nfastify-slots benchmark, ${startedAt.toISOString()}: ${machine.nproc} × ${machine.cpu}, Node ${machine.node}, Redis ${machine.redis}, ioredis ${machine.ioredis}, redis-semaphore ${machine.redisSemaphore}`)
  for (const hold of args.holds) {
    const group = runs.filter(r => r.holdMs === hold)
    if (group.length === 0) continue
    const ideal = group.find(r => r.system === 'in-process')
    print(`\n## Contended: limit ${LIMIT}, ${WORKERS} workers (${args.processes} processes; the in-process ideal: 1), hold ${hold} ms, ${args.seconds} s`)
    print(table(
      ['system', 'acq/s', 'util', 'util/ideal', 'hand-off p50', 'p99', 'wait p50', 'p99', 'max*', 'Jain', 'max/p50', 'starved', 'cmds/s', 'sent/s', 'cmds/acq', 'sent/acq', 'cmds/waiter/s', 'sent/waiter/s', 'Redis µs/acq'],
      group.map(r => [
        LABEL[r.system], f(r.acquisitionsPerSecond), pct(r.utilisation), ideal === undefined ? '-' : pct(r.utilisation / ideal.utilisation),
        ms(r.handoff.p50), ms(r.handoff.p99), ms(r.wait.p50), ms(r.wait.p99), ms(r.waitMaxInclPendingMs), f(r.jain, 3), f(r.maxOverP50Wait, 1), r.starvedWorkers,
        f(r.redis.commandsPerSecond, 0), f(r.redis.clientCommandsPerSecond, 0), f(r.commandsPerAcquisition, 1), f(r.clientCommandsPerAcquisition, 2),
        f(r.commandsPerWaiterPerSecond, 1), f(r.clientCommandsPerWaiterPerSecond, 2), f(r.redisCpuMicrosPerAcquisition, 0)
      ])))
    print('(times in ms; max* counts the waits still unfinished at the end; cmds = every command Redis ran incl. inside Lua (INFO commandstats); sent = commands the clients sent)')
  }
  if (idleRuns.length > 0) {
    print(`\n## Idle waiting: the ${LIMIT} slots are held for the whole run, ${WORKERS - LIMIT} workers wait (${args.processes} processes), ${args.seconds} s`)
    print(table(['system', 'cmds/s', 'sent/s', 'cmds/waiter/s', 'sent/waiter/s', 'Redis CPU ms/s'],
      idleRuns.map(r => [LABEL[r.system], f(r.commandsPerSecond, 0), f(r.clientCommandsPerSecond, 0), f(r.commandsPerWaiterPerSecond, 2), f(r.clientCommandsPerWaiterPerSecond, 2), f(r.redisCpuMicrosPerSecond / 1000, 1)])))
  }
  if (unc.length > 0) {
    print(`\n## Uncontended: acquire → release loops, limit ${UNCONTENDED_LIMIT}, ${ROUNDS} interleaved rounds of ${uncontendedSeconds} s per case`)
    const rows: Array<Array<string | number>> = []
    for (const concurrency of CONCURRENCIES) {
      for (const subjects of ['distinct', 'same'] as const) {
        const rs = unc.filter(u => u.concurrency === concurrency && u.subjects === subjects)
        const floor = rs.find(u => u.system === 'floor')
        const sem = rs.find(u => u.system === 'redis-semaphore')
        for (const r of rs) {
          rows.push([`${concurrency} ${subjects}`, LABEL[r.system], f(r.opsPerSecond, 0), floor === undefined ? '-' : f(r.opsPerSecond / floor.opsPerSecond, 2),
            sem === undefined ? '-' : f(r.opsPerSecond / sem.opsPerSecond, 2), r.opsPerSecondByRound.join('/'), ms(r.p50Ms), ms(r.p99Ms), f(r.clientCommandsPerOp, 2), f(r.serverCommandsPerOp, 1),
            f(r.redisCpuMicrosPerOp, 1), f(r.clientCpuMicrosPerOp, 1)])
        }
      }
    }
    print(table(['loops', 'system', 'ops/s', 'vs floor', 'vs redis-sem', 'by round', 'p50 ms', 'p99 ms', 'sent/op', 'cmds/op', 'Redis µs/op', 'client µs/op'], rows))
  }
  if (httpRuns.length > 0) {
    const bare = httpRuns.find(h => h.variant === 'bare')
    const floor = httpRuns.find(h => h.variant === 'floor')
    print(`\n## HTTP: autocannon, ${HTTP_CONNECTIONS} connections, ${HTTP_ROUNDS} interleaved rounds of ${httpSeconds} s; GET / takes ('user', one of 100 ids, 10)`)
    print(table(['route', 'req/s', 'vs bare', 'vs 2 PINGs', 'by round', 'p50 ms', 'p99 ms', 'non-2xx', 'errors', 'Redis cmds/req', 'Redis µs/req'],
      httpRuns.map(h => [HTTP_LABEL[h.variant], f(h.requestsPerSecond, 0), bare === undefined ? '-' : pct(h.requestsPerSecond / bare.requestsPerSecond),
        floor === undefined ? '-' : pct(h.requestsPerSecond / floor.requestsPerSecond), h.requestsPerSecondByRound.join('/'),
        f(h.latencyP50Ms, 1), f(h.latencyP99Ms, 1), h.non2xx, h.errors, f(h.redisCommandsPerRequest, 1), f(h.redisCpuMicrosPerRequest, 1)])))
  }
  const goals = targets(runs, idleRuns, unc, httpRuns)
  if (goals.length > 0) {
    print('\n## Targets')
    print(table(['target', 'goal', 'measured', ''], goals.map(g => [g.name, g.target, g.value, g.target === '-' ? '' : g.met ? 'met' : 'MISSED'])))
  }
  const errors = runs.flatMap(r => r.errors.map(e => `${r.system}/${r.holdMs}: ${e}`))
  if (errors.length > 0) print(`\nerrors during the contended runs (first ones):\n${errors.slice(0, 10).join('\n')}`)

  const chart: Chart | undefined = chartWaits.size === 0
    ? undefined
    : {
        title: `Wait time, contended: limit ${LIMIT}, ${WORKERS} workers, hold 20 ms`,
        subtitle: `${args.seconds} s run of ${startedAt.toISOString().slice(0, 16)}Z; waits still unfinished at the end count at their length so far (also in p50/p99)`,
        series: CONTENDED_SYSTEMS.filter(s => chartWaits.has(s)).map(s => ({ system: s, note: chartWaits.get(s)!.note, waits: chartWaits.get(s)!.waits.map(w => +w.toFixed(3)) }))
      }
  const file = join(resultsDir(), `bench-${runId}.json`)
  writeFileSync(file, JSON.stringify({ startedAt, args: { ...args, only: [...args.only], systems: args.systems === undefined ? undefined : [...args.systems] }, machine, contended: runs, idle: idleRuns, uncontended: unc, http: httpRuns, targets: goals, chart }, null, 2) + '\n')
  print(`\nresults: ${file}`)
  // Only a complete run replaces the chart in the docs; a partial one can be drawn later with --chart-from.
  const complete = args.systems === undefined && args.processes === 2
  if (chart !== undefined) print(complete ? `chart: ${drawChart(chart)}` : `chart not redrawn (partial run); draw it with --chart-from ${file}`)
}

interface Chart {
  title: string
  subtitle: string
  series: Array<{ system: SystemName, note: string, waits: number[] }>
}

/** Writes docs/benchmarks-wait.svg; returns its path. */
function drawChart (chart: Chart): string {
  const svgFile = join(__dirname, '..', 'docs', 'benchmarks-wait.svg')
  writeFileSync(svgFile, waitCdfSvg(chart.title, chart.subtitle, chart.series.map(s => ({ name: LABEL[s.system], color: COLOR[s.system], values: s.waits, note: s.note }))))
  return svgFile
}

main().catch(err => {
  console.error(err)
  process.exit(1)
})

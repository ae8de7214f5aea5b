/**
 * Contended: LIMIT slots, WORKERS workers looping acquire → hold → release on one subject,
 * split over --processes children (the in-process ideal: one). And idle: the same with
 * holds that last the whole run, so the numbers are what waiting alone costs.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { withChildren } from '../children'
import { now, sleep, type ChildConfig, type ClusterNodes, type ContendedResult, type SystemName } from '../common'
import { resultsDir, type RunContext } from '../context'
import { analyseContended, percentile, type ContendedMetrics } from '../metrics'
import { delta, sumDeltas, type BenchRedis, type RedisDelta } from '../redis-server'

export const LIMIT = 5
export const WORKERS = 50
/** Measured only after this: connections open, scripts loaded, the queue formed. */
const WARMUP_MS = 1000

export const CONTENDED_SYSTEMS: SystemName[] = ['in-process', 'slots', 'slots-fair', 'redis-semaphore', 'seed-style']
export const IDLE_SYSTEMS: SystemName[] = ['slots', 'slots-fair', 'redis-semaphore', 'seed-style']
/** The idle scenario's holders keep their slots for the whole run (setTimeout's limit is ~24.8 days). */
const IDLE_HOLD_MS = 86_400_000

export interface RedisCost extends RedisDelta {
  commandsPerSecond: number
  /** Commands the clients sent (round trips, counted in the children). */
  clientCommands: number
  clientCommandsPerSecond: number
}

export interface ContendedRun extends Omit<ContendedMetrics, 'waitsForChart'> {
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

/** One contended run: who runs it, on which Redis, how many workers for how many slots. */
export interface ContendedSpec {
  system: SystemName
  processes: number
  workers: number
  limit: number
  holdMs: number
  seconds: number
  prefix: string
  warmupMs?: number
  maxWaiters?: number
  /** A cluster to run on instead of the bench's Redis: its startup nodes and every master, to measure each. */
  cluster?: { nodes: ClusterNodes, masters: BenchRedis[] }
  /** File name part for --dump. */
  dumpName?: string
}

/** One server's share of a run: its cost over the window, and its memory and keys. */
export interface ServerSample {
  url: string
  cost: RedisDelta
  /**
   * used_memory at the window's end and once every child had exited (their keys gone, the
   * scripts loaded): the difference is what the run's processes and data held, bytes.
   */
  usedMemoryAtEnd: number
  usedMemoryAfter: number
  /** The connections' memory (mem_clients_normal) at the window's end, bytes. */
  clientsMemoryAtEnd: number
  /** MEMORY USAGE of the run's keys near the window's end (at 90 % of it): the data alone, bytes. */
  keyBytesAtEnd: number
  /** Keys under the run's prefix once every child had exited: what nobody will ever clean up but their TTLs. */
  keysAfter: number
  /** DBSIZE, the mean of samples taken across the window. */
  keys: number
}

/** DBSIZE of every server, at `samples` evenly spread times of the window; the mean per server. */
export async function sampleKeys (servers: BenchRedis[], windowStart: number, windowEnd: number, samples = 5): Promise<number[]> {
  const sums = servers.map(() => 0)
  for (let k = 0; k < samples; k++) {
    await sleep(windowStart + ((k + 0.5) / samples) * (windowEnd - windowStart) - now())
    const sizes = await Promise.all(servers.map(s => s.dbsize()))
    sizes.forEach((n, i) => { sums[i] += n })
  }
  return sums.map(n => n / samples)
}

export async function contended (context: RunContext, system: SystemName, holdMs: number): Promise<{ run: ContendedRun, waits: number[] }> {
  const { args, runId } = context
  const processes = system === 'in-process' ? 1 : args.processes
  const { run, waits } = await runContended(context, {
    system, processes, workers: WORKERS, limit: LIMIT, holdMs, seconds: args.seconds, prefix: `bench-${runId}-contended-${holdMs}-${system}`, dumpName: `${system}-${holdMs}`
  })
  return { run, waits }
}

export async function runContended ({ redis, args, runId }: RunContext, spec: ContendedSpec): Promise<{ run: ContendedRun, waits: number[], servers: ServerSample[] }> {
  const { system, processes, workers, limit, holdMs, seconds, prefix } = spec
  const servers = spec.cluster?.masters ?? [redis]
  for (const server of servers) await server.flushIfOwned()
  // Workers split as evenly as the count allows; ids stay global.
  const share = (i: number): number => Math.floor((workers * (i + 1)) / processes) - Math.floor((workers * i) / processes)
  const configs: ChildConfig[] = Array.from({ length: processes }, (_, i) => ({
    role: 'contended',
    system,
    redisUrl: redis.url,
    clusterNodes: spec.cluster?.nodes,
    maxWaiters: spec.maxWaiters,
    prefix,
    firstWorker: Math.floor((workers * i) / processes),
    workers: share(i),
    limit,
    holdMs
  }))
  return await withChildren(configs, async children => {
    await Promise.all(children.map(c => c.next('ready')))
    const startAt = now() + 300
    const windowStart = startAt + (spec.warmupMs ?? WARMUP_MS)
    const windowEnd = windowStart + seconds * 1000
    for (const c of children) c.send({ type: 'start', startAt, windowStart, windowEnd })
    await sleep(windowStart - now())
    const before = await Promise.all(servers.map(s => s.snapshot()))
    const keys = await sampleKeys(servers, windowStart, windowEnd)
    // Inside the window (its last sample was at 90 %): right after it the waiters give up and their keys go.
    // A few MEMORY USAGE calls: their CPU in the window is negligible.
    const keyBytes = await Promise.all(servers.map(s => s.keyBytesUnder(prefix)))
    await sleep(windowEnd - now())
    const after = await Promise.all(servers.map(s => s.snapshot()))
    const results: ContendedResult[] = (await Promise.all(children.map(c => c.next('contended-result')))).map(m => m.result)

    const cycles = results.flatMap(r => r.cycles)
    const pending = results.flatMap(r => r.pending)
    if (args.dump) writeFileSync(join(resultsDir(), `raw-${runId}-${spec.dumpName ?? prefix}.json`), JSON.stringify({ windowStart, windowEnd, cycles, pending }))
    const { waitsForChart, ...metrics } = analyseContended({ cycles, pending, windowStart, windowEnd, limit, workers })
    const samples: ServerSample[] = servers.map((s, i) => ({
      url: s.url,
      cost: delta(before[i], after[i]),
      usedMemoryAtEnd: after[i].usedMemory,
      usedMemoryAfter: NaN,
      clientsMemoryAtEnd: after[i].clientsMemory,
      keyBytesAtEnd: keyBytes[i],
      keysAfter: NaN,
      keys: keys[i]
    }))
    const cost = sumDeltas(samples.map(x => x.cost))
    const clientCommands = results.reduce((a, r) => a + r.clientCommands, 0)
    const clientCpu = results.reduce((a, r) => a + r.cpuMicros, 0)
    const perAcq = (n: number): number => metrics.acquisitions === 0 ? NaN : n / metrics.acquisitions
    const perWaiter = (n: number): number => metrics.meanWaiting === 0 ? NaN : n / seconds / metrics.meanWaiting
    const run: ContendedRun = {
      system,
      holdMs,
      processes,
      workers,
      limit,
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
    return { run, waits: waitsForChart, servers: samples }
  }).then(async result => {
    // withChildren resolves once the children have exited: nothing of theirs is left but what they forgot.
    const gone = await Promise.all(servers.map(s => s.snapshot()))
    const left = await Promise.all(servers.map(s => s.countKeysUnder(prefix)))
    result.servers.forEach((sample, i) => {
      sample.usedMemoryAfter = gone[i].usedMemory
      sample.keysAfter = left[i]
    })
    return result
  })
}

/** What waiting alone costs: the limit's holders never release, everyone else waits. */
export interface IdleRun {
  system: SystemName
  seconds: number
  waitingWorkers: number
  commandsPerSecond: number
  clientCommandsPerSecond: number
  commandsPerWaiterPerSecond: number
  clientCommandsPerWaiterPerSecond: number
  redisCpuMicrosPerSecond: number
}

export async function idle (context: RunContext, system: SystemName): Promise<IdleRun> {
  const { run } = await contended(context, system, IDLE_HOLD_MS)
  const waitingWorkers = WORKERS - LIMIT
  const seconds = context.args.seconds
  return {
    system,
    seconds,
    waitingWorkers,
    commandsPerSecond: run.redis.commandsPerSecond,
    clientCommandsPerSecond: run.redis.clientCommandsPerSecond,
    commandsPerWaiterPerSecond: run.redis.commandsPerSecond / waitingWorkers,
    clientCommandsPerWaiterPerSecond: run.redis.clientCommandsPerSecond / waitingWorkers,
    redisCpuMicrosPerSecond: run.redis.cpuMicros / seconds
  }
}

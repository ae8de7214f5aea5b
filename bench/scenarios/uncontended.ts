/**
 * Uncontended: 1, 16 and 64 concurrent acquire → release loops in one process per system,
 * each loop on its own subject or all on one, far below the limit: what one acquisition
 * costs when nobody waits.
 */
import { withChildren, type Child } from '../children'
import { now, sleep, type ChildConfig, type SystemName, type UncontendedCase, type UncontendedSample } from '../common'
import type { RunContext } from '../context'
import { distribution } from '../metrics'
import { delta, type BenchRedis, type RedisDelta } from '../redis-server'
import { sampleKeys } from './contended'

/** Uncontended: no case ever reaches it. */
export const UNCONTENDED_LIMIT = 10_000
export const CONCURRENCIES = [1, 16, 64]
export const ROUNDS = 3
const UNCONTENDED_WARMUP_MS = 150
export const UNCONTENDED_SYSTEMS: SystemName[] = ['floor', 'slots', 'redis-semaphore', 'seed-style']

export interface UncontendedRun extends UncontendedCase {
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

/** One case in one child, measured on every given server (a cluster's masters, or one Redis). */
export async function runCase (child: Child, servers: BenchRedis[], run: UncontendedCase, seconds: number, countKeys = false): Promise<{ sample: UncontendedSample, costs: RedisDelta[], keys: number[] }> {
  const startAt = now() + 20
  const windowStart = startAt + UNCONTENDED_WARMUP_MS
  const windowEnd = windowStart + seconds * 1000
  child.send({ type: 'case', run, startAt, windowStart, windowEnd })
  await sleep(windowStart - now())
  const before = await Promise.all(servers.map(s => s.snapshot()))
  // Off in the main scenario: its short rounds measure nothing but the loops.
  const keys = countKeys ? await sampleKeys(servers, windowStart, windowEnd) : []
  await sleep(windowEnd - now())
  const after = await Promise.all(servers.map(s => s.snapshot()))
  const { sample } = await child.next('case-result')
  return { sample, costs: servers.map((_, i) => delta(before[i], after[i])), keys }
}

/**
 * Every system's child is started at once and then given the cases one at a time, rotating
 * the order of the systems each round: the machine's drift is spread over all of them.
 */
export async function uncontendedAll ({ redis, runId }: RunContext, systems: SystemName[], seconds: number, rounds: number): Promise<UncontendedRun[]> {
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
          const { sample, costs } = await runCase(children[i], [redis], run, seconds)
          const cost = costs[0]
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

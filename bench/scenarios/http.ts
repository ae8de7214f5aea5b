/**
 * HTTP: one Fastify server per route variant (child processes), autocannon in this process
 * against each in turn. What a route that takes a slot serves, next to a bare route, to
 * routes that pay only the plugin or only the Redis round trips, and to the same slot taken
 * with redis-semaphore. A second, separate set of routes (--only http-pair) takes two slots
 * per request: with one acquireSlots call, with two acquireSlot calls, with redis-semaphore.
 */
import autocannon from 'autocannon'
import { withChildren, type Child } from '../children'
import type { ChildConfig, HttpVariant } from '../common'
import type { RunContext } from '../context'
import { delta, type RedisDelta } from '../redis-server'

/**
 * Several short rounds rather than two long ones: each round runs every route back to back,
 * so a per-round ratio compares routes under the same background load, and the median of
 * those ratios shrugs off a round that another process disturbed.
 */
export const HTTP_ROUNDS = 4
/** Each round's length per route, as a share of --seconds. */
export const HTTP_ROUND_SHARE = 0.125
export const HTTP_CONNECTIONS = 50
export const HTTP_VARIANTS: HttpVariant[] = ['bare', 'slots', 'redis-semaphore', 'slots-memory', 'floor']
/** The routes every other route is compared with. */
export const HTTP_REFERENCES = ['bare', 'floor', 'redis-semaphore'] as const
/** Two slots per request (--only http-pair): a user's (one of 100, max 10) and its account's (one of 10, max 1000). */
export const HTTP_PAIR_VARIANTS: HttpVariant[] = ['slots-set', 'slots-pair', 'redis-semaphore-pair']
/** What the pair routes are compared with: the peer, and the plugin's two calls in turn. */
export const HTTP_PAIR_REFERENCES = ['redis-semaphore-pair', 'slots-pair'] as const
export type HttpReference = typeof HTTP_REFERENCES[number] | typeof HTTP_PAIR_REFERENCES[number]

/** Which references a set of routes is compared with, and the tag in its key prefix. */
export interface HttpScenario {
  references: readonly HttpReference[]
  tag: string
}
export const HTTP_SCENARIO: HttpScenario = { references: HTTP_REFERENCES, tag: 'http' }
export const HTTP_PAIR_SCENARIO: HttpScenario = { references: HTTP_PAIR_REFERENCES, tag: 'http-pair' }

export interface HttpRatio {
  /** All requests of this route over all of the reference's (all rounds pooled). */
  pooled: number
  /** Round k of this route over round k of the reference: they ran back to back. */
  byRound: number[]
  /** The median of byRound: what the report and the targets use. */
  median: number
}

export interface HttpRun {
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
  /** Commands the server's clients sent per request (round trips, pipelined ones each counted); only the pair variants count them. */
  clientCommandsPerRequest?: number
  redisCpuMicrosPerRequest: number
  /** The server process's CPU (process.cpuUsage in the child) per request, µs. */
  serverCpuMicrosPerRequest: number
  serverCpuMicrosPerRequestByRound: number[]
  /** Against each reference route that ran. */
  vs: Partial<Record<HttpReference, HttpRatio>>
}

interface Sample { result: autocannon.Result, cost: RedisDelta, serverCpuMicros: number, clientCommands?: number }

export function median (values: number[]): number {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

async function serverCpu (child: Child): Promise<{ cpuMicros: number, clientCommands?: number }> {
  child.send({ type: 'cpu' })
  const { cpuMicros, clientCommands } = await child.next('cpu')
  return { cpuMicros, clientCommands }
}

/** The servers (one per variant) run side by side (idle but one); each round runs autocannon once against each, in rotating order. */
export async function httpAll ({ redis, runId }: RunContext, variants: HttpVariant[], seconds: number, rounds: number, scenario: HttpScenario = HTTP_SCENARIO): Promise<HttpRun[]> {
  await redis.flushIfOwned()
  const configs: ChildConfig[] = variants.map(variant => ({ role: 'http-server', variant, redisUrl: redis.url, prefix: `bench-${runId}-${scenario.tag}` }))
  return await withChildren(configs, async children => {
    const urls = (await Promise.all(children.map(c => c.next('ready')))).map(m => `http://127.0.0.1:${m.port ?? 0}/`)
    for (const url of urls) await autocannon({ url, connections: HTTP_CONNECTIONS, duration: 1 })
    const samples = variants.map(() => [] as Sample[])
    for (let round = 0; round < rounds; round++) {
      for (let k = 0; k < variants.length; k++) {
        const i = (k + round) % variants.length
        const cpuBefore = await serverCpu(children[i])
        const before = await redis.snapshot()
        const result = await autocannon({ url: urls[i], connections: HTTP_CONNECTIONS, duration: seconds })
        const after = await redis.snapshot()
        const cpuAfter = await serverCpu(children[i])
        const clientCommands = cpuAfter.clientCommands === undefined || cpuBefore.clientCommands === undefined ? undefined : cpuAfter.clientCommands - cpuBefore.clientCommands
        samples[i].push({ result, cost: delta(before, after), serverCpuMicros: cpuAfter.cpuMicros - cpuBefore.cpuMicros, clientCommands })
      }
    }
    for (const c of children) c.send({ type: 'stop' })
    const runs = variants.map((variant, i): HttpRun => {
      const s = samples[i]
      const sum = (fn: (x: Sample) => number): number => s.reduce((a, x) => a + fn(x), 0)
      const requests = sum(x => x.result.requests.total)
      const duration = sum(x => x.result.duration)
      const perRequest = (n: number): number => requests === 0 ? 0 : n / requests
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
        redisCommandsPerRequest: perRequest(sum(x => x.cost.commands)),
        redisCpuMicrosPerRequest: perRequest(sum(x => x.cost.cpuMicros)),
        clientCommandsPerRequest: s.some(x => x.clientCommands === undefined) ? undefined : perRequest(sum(x => x.clientCommands!)),
        serverCpuMicrosPerRequest: perRequest(sum(x => x.serverCpuMicros)),
        serverCpuMicrosPerRequestByRound: s.map(x => x.result.requests.total === 0 ? NaN : +(x.serverCpuMicros / x.result.requests.total).toFixed(2)),
        vs: {}
      }
    })
    for (const run of runs) {
      for (const reference of scenario.references) {
        const ref = runs.find(r => r.variant === reference)
        if (ref === undefined) continue
        const byRound = run.requestsPerSecondByRound.map((n, k) => n / ref.requestsPerSecondByRound[k])
        run.vs[reference] = { pooled: run.requestsPerSecond / ref.requestsPerSecond, byRound: byRound.map(r => +r.toFixed(4)), median: median(byRound) }
      }
    }
    return runs
  })
}

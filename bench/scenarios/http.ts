/**
 * HTTP: one Fastify server per route variant (child processes), autocannon in this process
 * against each in turn. What a route that takes a slot serves, next to a bare route and to
 * routes that pay only the plugin or only the Redis round trips.
 */
import autocannon from 'autocannon'
import { withChildren } from '../children'
import type { ChildConfig, HttpVariant } from '../common'
import type { RunContext } from '../context'
import { delta, type RedisDelta } from '../redis-server'

export const HTTP_ROUNDS = 2
export const HTTP_CONNECTIONS = 50
export const HTTP_VARIANTS: HttpVariant[] = ['bare', 'slots', 'slots-memory', 'floor']

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
  redisCpuMicrosPerRequest: number
}

/** The servers (one per variant) run side by side (idle but one); each round runs autocannon once against each, in rotating order. */
export async function httpAll ({ redis, runId }: RunContext, variants: HttpVariant[], seconds: number, rounds: number): Promise<HttpRun[]> {
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

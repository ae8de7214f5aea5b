/**
 * Growth (d): a Redis Cluster of 3 masters against one Redis, under the same loads: 64
 * uncontended loops over distinct subjects, and one contended subject (limit 5, 50 workers
 * in 2 processes, hold 20 ms). Per master: its share of the keys, of the CPU and of the
 * commands; in total: Redis CPU per acquisition against the single server's. A subject's
 * keys share one hash tag, so a subject lives on one master: the uncontended load spreads,
 * the contended one cannot.
 */
import { freePort } from '../../../test/helpers/redis'
import { missingClusterTools, PrivateCluster } from '../../../test/helpers/cluster'
import { withChildren } from '../../children'
import { sleep, type ChildConfig, type ClusterNodes } from '../../common'
import type { RunContext } from '../../context'
import { BenchRedis, sumDeltas } from '../../redis-server'
import { runContended, type ContendedRun, type ServerSample } from '../contended'
import { runCase } from '../uncontended'
import { contendedCost, costOf, type CostPerAcquisition } from './cost'
import { CONTENDED_LOAD } from './processes'

export const MASTERS = 3
const UNCONTENDED_LOOPS = 64
const UNCONTENDED_LIMIT = 10_000

export interface ServerShare {
  url: string
  /** DBSIZE, the mean of samples across the window. */
  keys: number
  cpuMicros: number
  commands: number
  byCommand: Record<string, number>
}

export interface ClusterLoad {
  load: 'uncontended' | 'contended'
  target: 'single' | 'cluster'
  seconds: number
  acquisitions: number
  acquisitionsPerSecond: number
  cost: CostPerAcquisition
  servers: ServerShare[]
}

export interface ClusterPart {
  masters: number
  /** Redis CPU with nobody using it, µs per second: the single server, and each master (cluster bus included). */
  idleCpuMicrosPerSecond: { single: number, cluster: number[] }
  loads: ClusterLoad[]
}

/** Why the cluster part cannot run here, or undefined. */
export function clusterUnavailable (): string | undefined {
  return missingClusterTools()
}

async function idleCpu (servers: BenchRedis[], seconds: number): Promise<number[]> {
  const before = await Promise.all(servers.map(s => s.snapshot()))
  await sleep(seconds * 1000)
  const after = await Promise.all(servers.map(s => s.snapshot()))
  return servers.map((_, i) => ((after[i].cpuSeconds - before[i].cpuSeconds) * 1e6) / seconds)
}

async function uncontendedLoad (context: RunContext, target: ClusterLoad['target'], servers: BenchRedis[], clusterNodes: ClusterNodes | undefined, seconds: number): Promise<ClusterLoad> {
  for (const server of servers) await server.flushIfOwned()
  const config: ChildConfig = {
    role: 'uncontended', system: 'slots', redisUrl: context.redis.url, clusterNodes, prefix: `bench-${context.runId}-growth-${target}-uncontended`, limit: UNCONTENDED_LIMIT
  }
  return await withChildren([config], async ([child]) => {
    await child.next('ready')
    const { sample, costs, keys } = await runCase(child, servers, { concurrency: UNCONTENDED_LOOPS, subjects: 'distinct' }, seconds, true)
    child.send({ type: 'stop' })
    const total = sumDeltas(costs)
    const acquisitions = sample.latencies.length
    return {
      load: 'uncontended',
      target,
      seconds,
      acquisitions,
      acquisitionsPerSecond: acquisitions / seconds,
      cost: costOf(acquisitions, { serverCpuMicros: sample.cpuMicros, redisCpuMicros: total.cpuMicros, redisCommands: total.commands, roundTrips: sample.clientCommands }),
      servers: servers.map((s, i) => ({ url: s.url, keys: keys[i], cpuMicros: costs[i].cpuMicros, commands: costs[i].commands, byCommand: costs[i].byCommand }))
    }
  })
}

export function contendedLoad (target: ClusterLoad['target'], run: ContendedRun, servers: ServerSample[]): ClusterLoad {
  return {
    load: 'contended',
    target,
    seconds: run.seconds,
    acquisitions: run.acquisitions,
    acquisitionsPerSecond: run.acquisitionsPerSecond,
    cost: contendedCost(run),
    servers: servers.map(s => ({ url: s.url, keys: s.keys, cpuMicros: s.cost.cpuMicros, commands: s.cost.commands, byCommand: s.cost.byCommand }))
  }
}

/**
 * Runs the single server's uncontended load and both loads on a private cluster; the single
 * server's contended load is part (a)'s 2-process step, the same load, passed in.
 */
export async function clusterPart (context: RunContext, times: { uncontended: number, contended: number, idle: number }, maxWaiters: number,
  singleContended: { run: ContendedRun, server: ServerSample }, onStep: (what: string) => void): Promise<ClusterPart> {
  onStep('one Redis: idle, then 64 uncontended loops')
  const idleSingle = (await idleCpu([context.redis], times.idle))[0]
  const loads: ClusterLoad[] = [await uncontendedLoad(context, 'single', [context.redis], undefined, times.uncontended)]

  onStep(`starting a private ${MASTERS}-master cluster`)
  const ports: number[] = []
  while (ports.length < MASTERS * 2) {
    const port = await freePort()
    if (!ports.includes(port)) ports.push(port)
  }
  const cluster = new PrivateCluster(ports.slice(0, MASTERS), ports.slice(MASTERS))
  const masters: BenchRedis[] = []
  try {
    await cluster.start()
    for (const port of cluster.ports) masters.push(await BenchRedis.attachOwned(`redis://127.0.0.1:${port}`))
    onStep('cluster: idle, then 64 uncontended loops')
    const idleCluster = await idleCpu(masters, times.idle)
    loads.push(await uncontendedLoad(context, 'cluster', masters, cluster.nodes, times.uncontended))
    onStep('cluster: contended')
    const { run, servers } = await runContended(context, {
      system: 'slots', processes: 2, ...CONTENDED_LOAD, seconds: times.contended, maxWaiters, prefix: `bench-${context.runId}-growth-cluster-contended`, dumpName: 'growth-cluster-contended', cluster: { nodes: cluster.nodes, masters }
    })
    loads.push(contendedLoad('single', singleContended.run, [singleContended.server]), contendedLoad('cluster', run, servers))
    return { masters: MASTERS, idleCpuMicrosPerSecond: { single: idleSingle, cluster: idleCluster }, loads }
  } finally {
    for (const master of masters) await master.stop()
    await cluster.stop()
  }
}

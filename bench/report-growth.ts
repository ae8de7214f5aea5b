/**
 * What the growth scenario prints: one table per part, the one target it sets (no key left
 * once everyone is done), and the chart's data (drawn by charts.ts).
 */
import type { BarPanel } from './svg'
import { f, ms, pct, table, type Target } from './report'
import type { GrowthResult } from './scenarios/growth'
import type { ClusterLoad } from './scenarios/growth/cluster'
import type { CostPerAcquisition } from './scenarios/growth/cost'
import { CONTENDED_LOAD } from './scenarios/growth/processes'
import { WAITER_PROCESSES } from './scenarios/growth/waiters'

const COST_HEADER = ['server µs/acq', 'Redis µs/acq', 'Redis cmds/acq', 'round trips/acq']
const costCells = (c: CostPerAcquisition): string[] => [f(c.serverCpuMicros), f(c.redisCpuMicros), f(c.redisCommands), f(c.roundTrips, 2)]
const kb = (bytes: number): string => f(bytes / 1024, 0)
/** Rates in the thousands need no decimals. */
const rate = (n: number): string => f(n, n >= 1000 ? 0 : 1)
const share = (values: number[]): string => {
  const total = values.reduce((a, b) => a + b, 0)
  return values.map(v => total === 0 ? '-' : (100 * v / total).toFixed(0)).join('/') + ' %'
}

export function growthReport (g: GrowthResult): string[] {
  const out: string[] = []
  const load = `limit ${CONTENDED_LOAD.limit}, hold ${CONTENDED_LOAD.holdMs} ms`
  if (g.processes.length > 0) {
    out.push(`\n## How cost grows (a): processes on one contended subject (${load}, ${CONTENDED_LOAD.workers} workers split over them), ${g.times.contended} s each`)
    out.push(table(['processes', 'acq/s', 'util', 'hand-off p99', 'wait p99', ...COST_HEADER, 'Redis memory KB', 'connections KB', 'key bytes', 'keys', 'keys left'],
      g.processes.map(p => [p.processes, f(p.run.acquisitionsPerSecond), pct(p.run.utilisation), ms(p.run.handoff.p99), ms(p.run.wait.p99), ...costCells(p.cost),
        kb(p.redisMemoryBytes), kb(p.clientsMemoryBytes), p.keyBytes, f(p.server.keys, 0), p.server.keysAfter])))
    out.push('(µs and commands per acquisition = acquire + release; server = the acquiring processes\' CPU; Redis memory = used_memory at the end minus once the processes had exited, ' +
      'connections = mem_clients_normal at the end, key bytes = MEMORY USAGE of the run\'s keys near the end; keys = DBSIZE during the run; keys left = after the processes exited)')
  }
  const s = g.subjects
  if (s !== undefined) {
    out.push('\n## How cost grows (b): subjects held at once, uncontended (limit 10, one process, acquires in chunks of 500)')
    out.push(table(['subjects', 'acquire all', 'release all', 'keys held (DBSIZE)', 'Redis data held KB', 'bytes/subject', 'key bytes/subject', ...COST_HEADER, 'keys after release'],
      s.steps.map(x => [x.subjects, ms(x.acquire.client.ms), ms(x.release.client.ms), x.keysHeld, kb(x.redisMemoryHeldBytes), f(x.redisMemoryPerSubjectBytes, 0), f(x.keyBytesPerSubject, 0),
        ...costCells(x.cost), x.keysAfterRelease])))
    out.push('(times in ms; Redis data held = used_memory without the connections\' share, all held minus before; key bytes = MEMORY USAGE of the keys while held; ' +
      'the 1-subject step\'s costs are mostly Redis\' background work)')
    out.push(s.keysLeftAfterEveryoneIsDone === 0
      ? `keys left after everyone is done: 0 under ${s.prefix} (must be 0: ok)`
      : `FAILED: ${s.keysLeftAfterEveryoneIsDone} keys left under ${s.prefix} after every slot was released and the process closed (must be 0)`)
  }
  if (g.waiters.length > 0) {
    out.push(`\n## How cost grows (c): waiters on one subject (${load}, ${WAITER_PROCESSES} processes, maxWaiters ${g.maxWaiters}), ${g.times.contended} s each`)
    out.push(table(['workers', 'mean waiting', 'acq/s', 'util', 'hand-off p99', 'cmds/waiter/s', 'round trips/waiter/s', 'key KB', 'key bytes/waiter', 'Redis memory KB', ...COST_HEADER, 'keys left'],
      g.waiters.map(w => [w.workers, f(w.run.meanWaiting, 0), f(w.run.acquisitionsPerSecond), pct(w.run.utilisation), ms(w.run.handoff.p99), f(w.commandsPerWaiterPerSecond, 2),
        f(w.roundTripsPerWaiterPerSecond, 3), kb(w.keyBytes), f(w.keyBytes / w.run.meanWaiting, 0), kb(w.redisMemoryBytes), ...costCells(w.cost), w.server.keysAfter])))
    out.push('(key KB: MEMORY USAGE of the subject\'s keys near the end (90 % of the run); Redis memory: used_memory at the end minus once the processes had exited, connections included; ' +
      'the 50-worker step is (a)\'s 2-process run)')
  }
  const c = g.cluster
  if (c !== undefined) {
    out.push(`\n## How cost grows (d): a ${c.masters}-master Redis Cluster against one Redis; uncontended: 64 loops on distinct subjects, one process, ${g.times.uncontended} s; ` +
      `contended: ${load}, 50 workers, 2 processes, ${g.times.contended} s (one Redis: (a)'s run)`)
    const single = (l: ClusterLoad): ClusterLoad | undefined => c.loads.find(x => x.load === l.load && x.target === 'single')
    out.push(table(['load', 'Redis', 'acq/s', 'keys', 'keys share', 'CPU share', 'cmds share', ...COST_HEADER, 'Redis µs/acq vs one Redis'],
      c.loads.map(l => [
        l.load === 'uncontended' ? 'uncontended, 64 loops' : 'contended, 50 workers',
        l.target === 'single' ? 'one' : `cluster of ${l.servers.length}`, rate(l.acquisitionsPerSecond), l.servers.map(x => f(x.keys, 0)).join('/'),
        share(l.servers.map(x => x.keys)), share(l.servers.map(x => x.cpuMicros)), share(l.servers.map(x => x.commands)), ...costCells(l.cost),
        l.target === 'single' ? '1.00×' : `${f(l.cost.redisCpuMicros / (single(l)?.cost.redisCpuMicros ?? NaN), 2)}×`
      ])))
    out.push(`(keys: DBSIZE, the mean of 5 samples during the run, per master; shares per master; idle Redis CPU, nobody connected but the bench: one Redis ${f(c.idleCpuMicrosPerSecond.single / 1000, 2)} ms/s; masters ${c.idleCpuMicrosPerSecond.cluster.map(x => f(x / 1000, 2)).join('/')} ms/s; it is inside every Redis µs figure)`)
  }
  if (g.errors.length > 0) out.push(`\ngrowth parts that did not run:\n${g.errors.join('\n')}`)
  return out
}

export function growthTargets (g: GrowthResult): Target[] {
  const s = g.subjects
  if (s === undefined) return []
  return [{ name: 'growth (b): keys left after everyone is done', target: '0', value: String(s.keysLeftAfterEveryoneIsDone), met: s.keysLeftAfterEveryoneIsDone === 0 }]
}

export interface GrowthChart {
  title: string
  subtitle: string[]
  panels: BarPanel[]
}

/** Below this many acquisitions a step's per-acquisition cost is Redis' background work, not the step's: left out of the chart. */
const CHART_MIN_ACQUISITIONS = 100

const CPU_COLOR = '#1f77b4'
const COMMANDS_COLOR = '#ff7f0e'

/** Per part, Redis CPU µs and Redis commands per acquisition at each step. */
export function growthChart (g: GrowthResult, startedAt: Date, seconds: number): GrowthChart {
  const parts: Array<{ name: string, steps: Array<{ label: string, cost: CostPerAcquisition }> }> = [
    { name: '(a) processes', steps: g.processes.map(p => ({ label: String(p.processes), cost: p.cost })) },
    { name: '(b) subjects held', steps: (g.subjects?.steps ?? []).filter(x => x.subjects >= CHART_MIN_ACQUISITIONS).map(x => ({ label: x.subjects.toLocaleString('en-US'), cost: x.cost })) },
    { name: '(c) waiters, one subject', steps: g.waiters.map(w => ({ label: w.workers.toLocaleString('en-US'), cost: w.cost })) },
    {
      name: '(d) one Redis vs a cluster',
      steps: (g.cluster?.loads ?? []).map(l => ({ label: `${l.load === 'uncontended' ? 'unc.' : 'cont.'} ${l.target === 'single' ? 'one' : 'cluster'}`, cost: l.cost }))
    }
  ]
  return {
    title: 'How cost grows: fastify-slots, Redis cost per acquisition (acquire + release)',
    subtitle: [
      `--seconds ${seconds} run of ${startedAt.toISOString().slice(0, 16)}Z. Redis CPU: INFO cpu, Redis' idle background work included;`,
      'commands: INFO commandstats, Lua\'s inner ones included. (b) leaves out the 1-subject step (one acquisition: background work only).'
    ],
    panels: parts.flatMap(part => [
      { title: `${part.name}: Redis CPU µs / acquisition`, color: CPU_COLOR, bars: part.steps.map(x => ({ label: x.label, value: +x.cost.redisCpuMicros.toFixed(2) })) },
      { title: `${part.name}: Redis commands / acquisition`, color: COMMANDS_COLOR, bars: part.steps.map(x => ({ label: x.label, value: +x.cost.redisCommands.toFixed(2) })) }
    ])
  }
}

/**
 * What the benchmark prints: one table per scenario and the targets with their verdicts.
 * Everything here reads results; nothing measures.
 */
import type { HttpVariant, SystemName } from './common'
import type { Args } from './context'
import { LIMIT, WORKERS, type ContendedRun, type IdleRun } from './scenarios/contended'
import { HTTP_CONNECTIONS, HTTP_ROUNDS, type HttpReference, type HttpRun } from './scenarios/http'
import { CONCURRENCIES, ROUNDS, UNCONTENDED_LIMIT, type UncontendedRun } from './scenarios/uncontended'

export const LABEL: Record<SystemName, string> = {
  'in-process': 'in-process FIFO (ideal)',
  slots: 'fastify-slots',
  'slots-fair': 'fastify-slots fair',
  'redis-semaphore': 'redis-semaphore',
  'seed-style': 'seed-style poller',
  floor: '2×PING (floor)'
}
export const COLOR: Record<SystemName, string> = {
  'in-process': '#2ca02c',
  slots: '#1f77b4',
  'slots-fair': '#9467bd',
  'redis-semaphore': '#d62728',
  'seed-style': '#ff7f0e',
  floor: '#7f7f7f'
}
export const HTTP_LABEL: Record<HttpVariant, string> = {
  bare: 'bare route (no plugin)',
  slots: 'route + acquireSlot',
  'slots-memory': 'route + acquireSlot, memory store',
  floor: 'bare route + 2 PINGs',
  'redis-semaphore': 'route + redis-semaphore',
  'slots-set': 'route + acquireSlots (user, account)',
  'slots-pair': 'route + acquireSlot × 2 (user, account)',
  'redis-semaphore-pair': 'route + redis-semaphore × 2'
}

export function table (header: string[], rows: Array<Array<string | number>>): string {
  const cells = [header, ...rows.map(r => r.map(String))]
  const widths = header.map((_, i) => Math.max(...cells.map(r => r[i].length)))
  const line = (r: string[]): string => r.map((c, i) => i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i])).join('  ')
  return [line(cells[0]), widths.map(w => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n')
}

export const f = (n: number, digits = 1): string => Number.isFinite(n) ? n.toFixed(digits) : '-'
export const pct = (n: number, digits = 1): string => Number.isFinite(n) ? `${(n * 100).toFixed(digits)} %` : '-'
export const ms = (n: number): string => !Number.isFinite(n) ? '-' : n < 10 ? n.toFixed(2) : n < 1000 ? n.toFixed(0) : `${(n / 1000).toFixed(2)} s`

export function contendedReport (runs: ContendedRun[], args: Args): string[] {
  const out: string[] = []
  for (const hold of args.holds) {
    const group = runs.filter(r => r.holdMs === hold)
    if (group.length === 0) continue
    const ideal = group.find(r => r.system === 'in-process')
    out.push(`\n## Contended: limit ${LIMIT}, ${WORKERS} workers (${args.processes} processes; the in-process ideal: 1), hold ${hold} ms, ${args.seconds} s`)
    out.push(table(
      ['system', 'acq/s', 'util', 'util/ideal', 'hand-off p50', 'p99', 'wait p50', 'p99', 'max*', 'Jain', 'max/p50', 'starved', 'cmds/s', 'sent/s', 'cmds/acq', 'sent/acq', 'cmds/waiter/s', 'sent/waiter/s', 'Redis µs/acq'],
      group.map(r => [
        LABEL[r.system], f(r.acquisitionsPerSecond), pct(r.utilisation), ideal === undefined ? '-' : pct(r.utilisation / ideal.utilisation),
        ms(r.handoff.p50), ms(r.handoff.p99), ms(r.wait.p50), ms(r.wait.p99), ms(r.waitMaxInclPendingMs), f(r.jain, 3), f(r.maxOverP50Wait, 1), r.starvedWorkers,
        f(r.redis.commandsPerSecond, 0), f(r.redis.clientCommandsPerSecond, 0), f(r.commandsPerAcquisition, 1), f(r.clientCommandsPerAcquisition, 2),
        f(r.commandsPerWaiterPerSecond, 1), f(r.clientCommandsPerWaiterPerSecond, 2), f(r.redisCpuMicrosPerAcquisition, 0)
      ])))
    out.push('(times in ms; max* counts the waits still unfinished at the end; cmds = every command Redis ran incl. inside Lua (INFO commandstats); sent = commands the clients sent)')
  }
  return out
}

export function idleReport (idleRuns: IdleRun[], args: Args): string[] {
  if (idleRuns.length === 0) return []
  return [
    `\n## Idle waiting: the ${LIMIT} slots are held for the whole run, ${WORKERS - LIMIT} workers wait (${args.processes} processes), ${args.seconds} s`,
    table(['system', 'cmds/s', 'sent/s', 'cmds/waiter/s', 'sent/waiter/s', 'Redis CPU ms/s'],
      idleRuns.map(r => [LABEL[r.system], f(r.commandsPerSecond, 0), f(r.clientCommandsPerSecond, 0), f(r.commandsPerWaiterPerSecond, 2), f(r.clientCommandsPerWaiterPerSecond, 2), f(r.redisCpuMicrosPerSecond / 1000, 1)]))
  ]
}

export function uncontendedReport (unc: UncontendedRun[], uncontendedSeconds: number): string[] {
  if (unc.length === 0) return []
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
  return [
    `\n## Uncontended: acquire → release loops, limit ${UNCONTENDED_LIMIT}, ${ROUNDS} interleaved rounds of ${uncontendedSeconds} s per case`,
    table(['loops', 'system', 'ops/s', 'vs floor', 'vs redis-sem', 'by round', 'p50 ms', 'p99 ms', 'sent/op', 'cmds/op', 'Redis µs/op', 'client µs/op'], rows)
  ]
}

/** A route's req/s over a reference route's: the median per-round ratio, the pooled one in brackets. */
function ratioCell (run: HttpRun, reference: HttpReference, asPercent: boolean): string {
  const r = run.vs[reference]
  if (r === undefined) return '-'
  return asPercent ? `${pct(r.median)} (${pct(r.pooled)})` : `${f(r.median, 2)}× (${f(r.pooled, 2)})`
}

/** One ratio column of an HTTP table: its header, its reference route, and whether it reads as a percentage. */
interface RatioColumn { header: string, reference: HttpReference, asPercent: boolean }

/** An HTTP table; `sent` adds the commands the servers' clients sent per request (the pair routes count them). */
function httpTable (title: string, httpRuns: HttpRun[], ratios: RatioColumn[], sent: boolean): string[] {
  if (httpRuns.length === 0) return []
  return [
    title,
    table(['route', 'req/s', 'by round', ...ratios.map(c => c.header), 'server µs/req', 'Redis µs/req', 'Redis cmds/req', ...(sent ? ['sent/req'] : []), 'p50 ms', 'p99 ms', 'non-2xx', 'errors'],
      httpRuns.map(h => [HTTP_LABEL[h.variant], f(h.requestsPerSecond, 0), h.requestsPerSecondByRound.join('/'),
        ...ratios.map(c => ratioCell(h, c.reference, c.asPercent)),
        f(h.serverCpuMicrosPerRequest, 1), f(h.redisCpuMicrosPerRequest, 1), f(h.redisCommandsPerRequest, 1), ...(sent ? [f(h.clientCommandsPerRequest ?? NaN, 2)] : []),
        f(h.latencyP50Ms, 1), f(h.latencyP99Ms, 1), h.non2xx, h.errors])),
    '(vs X: the median of the per-round ratios, each round having run every route back to back; the ratio of all rounds pooled in brackets. ' +
      'server µs = the server process\'s CPU (process.cpuUsage); Redis µs and cmds = INFO cpu and commandstats deltas, Lua\'s inner commands included' +
      (sent ? '; sent = the commands the server\'s Redis clients sent (round trips))' : ')')
  ]
}

export function httpReport (httpRuns: HttpRun[], httpSeconds: number): string[] {
  return httpTable(
    `\n## HTTP: autocannon, ${HTTP_CONNECTIONS} connections, ${HTTP_ROUNDS} interleaved rounds of ${httpSeconds} s; GET / takes ('user', one of 100 ids, 10)`,
    httpRuns,
    [{ header: 'vs bare', reference: 'bare', asPercent: true }, { header: 'vs 2 PINGs', reference: 'floor', asPercent: true }, { header: 'vs redis-sem', reference: 'redis-semaphore', asPercent: false }],
    false)
}

/** The two-slot routes (--only http-pair); no targets. */
export function httpPairReport (httpRuns: HttpRun[], httpSeconds: number): string[] {
  return httpTable(
    `\n## HTTP, two slots per request: autocannon, ${HTTP_CONNECTIONS} connections, ${HTTP_ROUNDS} interleaved rounds of ${httpSeconds} s; GET / takes ('user', one of 100 ids, 10) and ('account', one of 10 ids, 1000)`,
    httpRuns,
    [{ header: 'vs redis-sem × 2', reference: 'redis-semaphore-pair', asPercent: false }, { header: 'vs acquireSlot × 2', reference: 'slots-pair', asPercent: false }],
    true)
}

export interface Target {
  name: string
  target: string
  value: string
  met: boolean
}

/** Every target issue 10 and its predecessors set, with the measured value and a verdict. */
export function targets (runs: ContendedRun[], idleRuns: IdleRun[], unc: UncontendedRun[], httpRuns: HttpRun[]): Target[] {
  return [...contendedTargets(runs, idleRuns), ...uncontendedTargets(unc), ...httpTargets(httpRuns, unc)]
}

function contendedTargets (runs: ContendedRun[], idleRuns: IdleRun[]): Target[] {
  const out: Target[] = []
  const find = (system: SystemName, hold: number): ContendedRun | undefined => runs.find(r => r.system === system && r.holdMs === hold)
  const ideal = find('in-process', 20)
  for (const system of ['slots', 'slots-fair'] as const) {
    const r = find(system, 20)
    if (r === undefined) continue
    const label = LABEL[system]
    if (ideal !== undefined) {
      const ratio = r.utilisation / ideal.utilisation
      out.push({ name: `${label}: contended 20 ms utilisation vs ideal`, target: '≥ 98 %', value: `${pct(ratio)} (${pct(r.utilisation)} vs ${pct(ideal.utilisation)})`, met: ratio >= 0.98 })
    }
    out.push({ name: `${label}: hand-off p50`, target: '≤ 5 ms', value: `${ms(r.handoff.p50)} ms`, met: r.handoff.p50 <= 5 })
    out.push({ name: `${label}: hand-off p99`, target: '≤ 50 ms', value: `${ms(r.handoff.p99)} ms`, met: r.handoff.p99 <= 50 })
    if (system === 'slots') out.push(...defaultModeTargets(r, ideal))
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
  return out
}

/** Issue 10's contended targets, for the default mode at a 20 ms hold. */
function defaultModeTargets (r: ContendedRun, ideal: ContendedRun | undefined): Target[] {
  const label = LABEL.slots
  const out: Target[] = [
    { name: `${label}: Redis commands / acquisition (hold 20 ms)`, target: '≤ 10', value: `${f(r.commandsPerAcquisition)}; client-sent ${f(r.clientCommandsPerAcquisition, 2)}`, met: r.commandsPerAcquisition <= 10 },
    { name: `${label}: Jain index (hold 20 ms)`, target: '≥ 0.99', value: f(r.jain, 3), met: r.jain >= 0.99 },
    { name: `${label}: starved workers (hold 20 ms)`, target: '0', value: String(r.starvedWorkers), met: r.starvedWorkers === 0 }
  ]
  if (ideal !== undefined) {
    const ratio = r.wait.p99 / ideal.wait.p99
    out.splice(1, 0, { name: `${label}: wait p99 vs ideal (hold 20 ms)`, target: '≤ 1.20×', value: `${f(ratio, 2)}× (${ms(r.wait.p99)} vs ${ms(ideal.wait.p99)} ms)`, met: ratio <= 1.2 })
  }
  return out
}

function uncontendedTargets (unc: UncontendedRun[]): Target[] {
  const out: Target[] = []
  for (const subjects of ['distinct', 'same'] as const) {
    const us = unc.find(u => u.system === 'slots' && u.concurrency === 64 && u.subjects === subjects)
    const them = unc.find(u => u.system === 'redis-semaphore' && u.concurrency === 64 && u.subjects === subjects)
    if (us === undefined || them === undefined) continue
    const ratio = us.opsPerSecond / them.opsPerSecond
    // Round k of every system ran back to back, so per-round ratios show how much drift moved it.
    const byRound = us.opsPerSecondByRound.map((n, k) => f(n / them.opsPerSecondByRound[k], 2)).join('/')
    out.push({ name: `uncontended ×64 (${subjects} subjects) vs redis-semaphore`, target: '≥ 1.30×', value: `${f(ratio, 2)}× (${f(us.opsPerSecond, 0)} vs ${f(them.opsPerSecond, 0)} ops/s; rounds ${byRound})`, met: ratio >= 1.3 })
  }
  return out
}

/** HTTP ratios are medians of per-round ratios (see scenarios/http.ts), the pooled ones beside. */
function httpTargets (httpRuns: HttpRun[], unc: UncontendedRun[]): Target[] {
  const out: Target[] = []
  const slots = httpRuns.find(h => h.variant === 'slots')
  if (slots === undefined) return out
  const versus = (reference: HttpReference, name: string, goal: number, asPercent: boolean): void => {
    const r = slots.vs[reference]
    const ref = httpRuns.find(h => h.variant === reference)
    if (r === undefined || ref === undefined) return
    const show = (x: number, digits = 1): string => asPercent ? pct(x, digits) : `${f(x, 2)}×`
    out.push({
      name,
      target: `≥ ${asPercent ? pct(goal, 0) : `${f(goal, 2)}×`}`,
      value: `${show(r.median)} median of rounds ${r.byRound.map(x => show(x, 0)).join('/')} (pooled ${show(r.pooled)}: ${f(slots.requestsPerSecond, 0)} vs ${f(ref.requestsPerSecond, 0)} req/s)`,
      met: r.median >= goal
    })
  }
  versus('bare', 'HTTP route + acquireSlot vs bare route', 0.8, true)
  versus('redis-semaphore', 'HTTP route + acquireSlot vs route + redis-semaphore', 1.3, false)
  versus('floor', 'HTTP route + acquireSlot vs bare route + 2 PINGs', 0.85, false)
  const sem = httpRuns.find(h => h.variant === 'redis-semaphore')
  if (sem !== undefined) {
    const ratio = slots.redisCpuMicrosPerRequest / sem.redisCpuMicrosPerRequest
    out.push({
      name: 'HTTP Redis CPU / request: acquireSlot vs redis-semaphore route',
      target: '≤ 0.80×',
      value: `${f(ratio, 2)}× (${f(slots.redisCpuMicrosPerRequest)} vs ${f(sem.redisCpuMicrosPerRequest)} µs)`,
      met: ratio <= 0.8
    })
  }
  // The same operation without HTTP, one loop at a time: nothing shares a script call there.
  const single = (['distinct', 'same'] as const).flatMap(subjects => {
    const u = unc.find(x => x.system === 'slots' && x.concurrency === 1 && x.subjects === subjects)
    return u === undefined ? [] : [`${subjects} ${f(u.serverCommandsPerOp)}`]
  })
  out.push({
    name: 'HTTP Redis commands / request (one uncontended acquire + release)',
    target: '≤ 6',
    value: `${f(slots.redisCommandsPerRequest)}` + (single.length === 0 ? '' : `; uncontended ×1 in-process loop, for information: ${single.join(', ')}`),
    met: slots.redisCommandsPerRequest <= 6
  })
  // Not targets: where the difference goes (the plugin without Redis; Redis without the plugin).
  for (const variant of ['slots-memory', 'floor'] as const) {
    const other = httpRuns.find(h => h.variant === variant)?.vs.bare
    if (other === undefined) continue
    out.push({ name: `(for comparison) HTTP ${HTTP_LABEL[variant]} vs bare route`, target: '-', value: `${pct(other.median)} (pooled ${pct(other.pooled)})`, met: true })
  }
  return out
}

export function targetsReport (goals: Target[]): string[] {
  if (goals.length === 0) return []
  return ['\n## Targets', table(['target', 'goal', 'measured', ''], goals.map(g => [g.name, g.target, g.value, g.target === '-' ? '' : g.met ? 'met' : 'MISSED']))]
}

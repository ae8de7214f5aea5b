/**
 * The chaos suite: three app processes (test/fixtures/chaos-app.ts) on one private
 * redis-server, hundreds of concurrent clients on a few small subjects, and on a schedule:
 * a Redis restart, a process suspended past its lease (SIGSTOP / SIGCONT), a process killed
 * while it holds slots (SIGKILL). A sampler reads every subject's live holders from Redis many
 * times a second for the whole run.
 *
 * The load mixes normal requests (one or two slots), handler errors, handler timeouts
 * (handlerTimeout answers 504 while the handler still runs), clients aborting while they wait,
 * SSE streams that wait long enough to be pinged and clients aborting mid-stream. App A and B
 * are fail-closed (B's ioredis client has no offline queue), C is fail-open.
 *
 * What is checked, each a named check of the report:
 * - the sampler never sees more live holders than max; nor, from the apps' own bookkeeping,
 *   do handlers holding a slot they believe live ever outnumber max across the processes
 *   (except while a process is suspended or Redis lost its data, where it cannot be helped);
 * - after the load: no live holder or waiter, no key left, no process holding or waiting;
 *   every request got a response or was aborted by its client (those in flight to a killed
 *   process see their connection close); statuses as expected; streams end with their last
 *   event or an error event; waiting streams were pinged; no unhandled error, no unexpected
 *   error log, nothing but log lines on stderr; every process still closes cleanly;
 * - Redis restart: fail-closed apps answer 503 within storeTimeoutMs, the fail-open app lets
 *   requests through; requests already waiting get 503 (or proceed) once the store is found
 *   down, not a 429 at maxWaitMs; real slots again within 1 s; slots are 'lost' only across a
 *   restart or a stall;
 * - SIGSTOP past the lease: the slots go to another process meanwhile; on resume the process
 *   reports them lost (event and log line), counts itself no holder, never re-takes them, and
 *   its releases leave the new holder's entries alone;
 * - kill -9: its leases and tickets end within one lease / ticket ttl (slots granted to its
 *   dead waiters meanwhile within the same lease), the survivors' slots are untouched, the
 *   survivors get the freed slots.
 *
 * `run({ seconds })` returns every check it made (name, ok, detail) and a summary; it never
 * throws for a violated invariant. Used by chaos.test.ts (short, inside `npm test`) and
 * run.ts (`npm run test:chaos -- --seconds 120`).
 */
import { spawn } from 'node:child_process'
import { openSync } from 'node:fs'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { createInterface } from 'node:readline'
import { sleep } from '../helpers/app'
import { startFixture, type AppProcess } from '../helpers/processes'
import { freePort, keysUnder, PrivateRedis } from '../helpers/redis'
import { json, send, sse, type Sent } from './http'
import { Observer } from './observer'
import { DEFAULT_BACKOFF, waitTimings } from '../../lib/options'
import { prng } from '../helpers/prng'

export interface ChaosOptions {
  /** How long the load runs (ms = seconds * 1000); scenarios repeat while a whole cycle fits. */
  seconds: number
  /** Concurrent client loops. */
  clients: number
  leaseMs: number
  storeTimeoutMs: number
  /** SSE keepalive interval of waiting streams. */
  pingMs: number
  /** handlerTimeout of /slow. */
  slowTimeoutMs: number
  /** How long Redis stays down. */
  outageMs: number
  /** How long a process stays suspended; longer than leaseMs. */
  stallMs: number
  /** Seed of the request mix. */
  seed: number
  log: (line: string) => void
}

export interface Check {
  name: string
  ok: boolean
  detail: string
}

export interface ChaosReport {
  ok: boolean
  checks: Check[]
  summary: Record<string, unknown>
}

const DEFAULTS: ChaosOptions = {
  seconds: 8,
  clients: 200,
  leaseMs: 800,
  storeTimeoutMs: 300,
  pingMs: 100,
  slowTimeoutMs: 400,
  outageMs: 1000,
  stallMs: 1500,
  seed: 1,
  log: () => {}
}

/** Subjects the load uses: few, with small max values. */
const LOAD_SUBJECTS: Record<string, number> = { 'user:a': 1, 'user:b': 2, 'user:c': 3, 'account:x': 4 }
/** Subjects of the scenarios, one per purpose. */
const SCENARIO_SUBJECTS: Record<string, number> = { 'user:stop': 1, 'user:stop-ends': 1, 'user:kill': 5, 'user:probe-A': 1, 'user:probe-B': 1, 'user:probe-C': 1 }
const SUBJECTS = { ...LOAD_SUBJECTS, ...SCENARIO_SUBJECTS }

const BACKOFF = { initialMs: 20, maxMs: 200 }
/** A client request still open after this long hangs (every wait is bounded well below it). */
const HANG_MS = 10_000
/** A cycle of the three scenarios, with the load around them, takes about this long. */
const CYCLE_MS = 6500
/** Slack for timing bounds measured by a client on a shared 2-core machine. */
const MARGIN_MS = 500
/** Slack for timing bounds measured inside an app (its event loop may lag a little under load). */
const SERVER_MARGIN_MS = 250
/** Slack for "did not hang" as a client sees it, however busy the runner is. */
const HANG_MARGIN_MS = 1500

type Role = 'A' | 'B' | 'C'
type Mode = 'fail-closed' | 'fail-open'
const ROLES: Record<Role, { mode: Mode, offlineQueue: boolean }> = {
  A: { mode: 'fail-closed', offlineQueue: true },
  B: { mode: 'fail-closed', offlineQueue: false },
  C: { mode: 'fail-open', offlineQueue: true }
}

interface Proc {
  role: Role
  mode: Mode
  generation: number
  app: AppProcess
  port: number
  pid: number
  instanceId: string
  /** JSON lines printed after the hello: 'lost' and 'unhandled' events. */
  events: Array<Record<string, unknown>>
  alive: boolean
  killedAt?: number
  /** Slots it held, fetched before it was killed (the live ones are fetched at the end). */
  timeline?: Array<[string, number, number, string, string]>
  /** Exit code and signal once it exited. */
  exit?: { code: number | null, signal: string | null }
}

type Kind = 'work' | 'fail' | 'slow' | 'abort-wait' | 'stream' | 'abort-stream'

interface Spec {
  kind: Kind
  path: string
  abortAfterMs?: number
  abortAfterDataMs?: number
}

interface Rec extends Sent {
  kind: Kind
  role: Role
  instanceId: string
  path: string
}

interface Window {
  from: number
  to: number
}

interface Outage extends Window {
  /** When the stopped server was started again (`to`: when it answered). */
  restartAt: number
  procs: Proc[]
}

class Checks {
  readonly list: Check[] = []
  constructor (private readonly log: (line: string) => void) {}

  add (name: string, ok: boolean, detail: string): boolean {
    this.list.push({ name, ok, detail })
    this.log(`${ok ? 'ok  ' : 'FAIL'} ${name}: ${detail}`)
    return ok
  }
}

function inWindows (at: number, windows: Window[]): boolean {
  return windows.some(w => at >= w.from && at <= w.to)
}

function count<T> (items: T[], key: (item: T) => string): Record<string, number> {
  const out: Record<string, number> = {}
  for (const item of items) {
    const k = key(item)
    out[k] = (out[k] ?? 0) + 1
  }
  return out
}

/** Statuses a complete response of each kind may have (503s outside outages are counted in the summary). */
const EXPECTED_STATUS: Record<Kind, number[]> = {
  work: [200, 429, 503],
  'abort-wait': [200, 429, 503],
  fail: [500, 429, 503],
  slow: [504, 429, 503],
  stream: [200, 429, 503],
  'abort-stream': [200, 429, 503]
}

export async function run (options: Partial<ChaosOptions> = {}): Promise<ChaosReport> {
  const o: ChaosOptions = { ...DEFAULTS, ...options }
  const log = o.log
  const checks = new Checks(log)
  const cleanups: Array<() => unknown> = []
  const teardown = { teardown: (fn: () => unknown) => { cleanups.push(fn) } }
  const summary: Record<string, unknown> = { options: { ...o, log: undefined } }
  try {
    await chaos(o, checks, summary, teardown)
  } catch (err) {
    checks.add('the run completed', false, err instanceof Error ? err.stack ?? err.message : String(err))
  } finally {
    for (const fn of cleanups.reverse()) {
      try {
        await fn()
      } catch {}
    }
  }
  return { ok: checks.list.every(c => c.ok), checks: checks.list, summary }
}

async function chaos (o: ChaosOptions, checks: Checks, summary: Record<string, unknown>, teardown: { teardown: (fn: () => unknown) => void }): Promise<void> {
  const log = o.log
  const rng = prng(o.seed)
  const between = (lo: number, hi: number): number => lo + Math.floor(rng() * (hi - lo + 1))
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rng() * items.length)]

  const redis = new PrivateRedis(await freePort())
  await redis.start()
  teardown.teardown(() => redis.stop())
  // Debugging aid: CHAOS_MONITOR=<file> appends every command Redis runs (MONITOR) to the
  // file, for post-mortems of a failed check. It slows Redis down.
  const monitorFile = process.env.CHAOS_MONITOR
  const startMonitor = (): void => {
    if (monitorFile === undefined || monitorFile === '') return
    const monitor = spawn('redis-cli', ['-p', String(redis.port), 'monitor'], { stdio: ['ignore', openSync(monitorFile, 'a'), 'ignore'] })
    teardown.teardown(() => { monitor.kill() })
  }
  startMonitor()
  const prefix = `chaos-${process.pid}-${Date.now().toString(36)}`
  const observer = new Observer(redis.url, prefix, SUBJECTS)
  teardown.teardown(() => observer.close())
  await observer.ready()

  const procs: Proc[] = []
  // Even a runner that dies early must not leave its apps behind (a stopped one included).
  const killAll = (): void => { for (const p of procs) if (p.app.child.exitCode === null) p.app.child.kill('SIGKILL') }
  process.once('exit', killAll)
  teardown.teardown(() => process.removeListener('exit', killAll))
  const generations: Record<Role, number> = { A: 0, B: 0, C: 0 }

  async function spawnApp (role: Role): Promise<Proc> {
    const { mode, offlineQueue } = ROLES[role]
    const generation = ++generations[role]
    const app = await startFixture(teardown, 'chaos-app.ts', {
      REDIS_URL: redis.url,
      PREFIX: prefix,
      NAME: `${role}${generation}`,
      SUBJECTS: JSON.stringify(SUBJECTS),
      LEASE_MS: String(o.leaseMs),
      STORE_TIMEOUT_MS: String(o.storeTimeoutMs),
      ON_STORE_ERROR: mode,
      PING_MS: String(o.pingMs),
      MAX_WAITERS: '30',
      BACKOFF_MS: `${BACKOFF.initialMs},${BACKOFF.maxMs}`,
      SLOW_TIMEOUT_MS: String(o.slowTimeoutMs),
      OFFLINE_QUEUE: offlineQueue ? '1' : '0'
    })
    const proc: Proc = {
      role,
      mode,
      generation,
      app,
      port: Number(app.hello.port),
      pid: Number(app.hello.pid),
      instanceId: String(app.hello.instanceId),
      events: [],
      alive: true
    }
    createInterface({ input: app.child.stdout! }).on('line', line => {
      try {
        proc.events.push(JSON.parse(line))
      } catch {
        proc.events.push({ event: 'garbage', line })
      }
    })
    app.child.once('exit', (code, signal) => {
      proc.exit = { code, signal }
      proc.alive = false
    })
    procs.push(proc)
    log(`app ${role}${generation}: pid ${proc.pid}, port ${proc.port}, instance ${proc.instanceId}, ${mode}${offlineQueue ? '' : ', no offline queue'}`)
    return proc
  }

  const live = (): Proc[] => procs.filter(p => p.alive)
  const byRole = (role: Role): Proc | undefined => live().find(p => p.role === role)

  async function statsOf (p: Proc, resetLag = false): Promise<Record<string, unknown> | undefined> {
    const res = await send(p.port, `/stats${resetLag ? '?resetLag=1' : ''}`, { hangMs: 5000 })
    return res.status === 200 ? json(res) : undefined
  }

  async function timelineOf (p: Proc): Promise<Array<[string, number, number, string, string]>> {
    const res = await send(p.port, '/timeline', { hangMs: 10_000 })
    return res.status === 200 ? JSON.parse(res.body) : []
  }

  const started = Date.now()
  await Promise.all((['A', 'B', 'C'] as Role[]).map(role => spawnApp(role)))
  log(`3 apps up in ${Date.now() - started} ms; redis ${redis.url}, prefix ${prefix}; load starts at ${Date.now()}`)

  observer.start(5)

  // ---- the load ----------------------------------------------------------------------
  const records: Rec[] = []
  const scenarioRecords: Array<Rec & { scenario: string }> = []
  const outages: Outage[] = []
  const stalls: Array<Window & { proc: Proc }> = []
  const kills: Array<{ proc: Proc, at: number }> = []
  /** Checks that wait for a scenario's long requests, awaited before the final checks. */
  const deferred: Array<Promise<void>> = []
  const load = { running: true }

  function spec (): Spec {
    const r = rng() * 100
    if (r < 38) {
      const s = pick(['user:a', 'user:b', 'user:c', 'user:b,account:x', 'user:c,account:x'])
      return { kind: 'work', path: `/work?s=${s}&hold=${between(5, 80)}&wait=${between(200, 1500)}` }
    }
    if (r < 46) return { kind: 'fail', path: `/fail?s=${pick(['user:b', 'user:c', 'account:x'])}&wait=${between(200, 1000)}` }
    if (r < 53) return { kind: 'slow', path: `/slow?s=${pick(['user:b', 'user:c', 'account:x'])}&wait=${between(100, 1000)}` }
    if (r < 65) {
      return { kind: 'abort-wait', path: `/work?s=${pick(['user:a', 'user:b'])}&hold=${between(50, 300)}&wait=1500`, abortAfterMs: between(10, 500) }
    }
    if (r < 85) {
      return { kind: 'stream', path: `/stream?s=${pick(['user:a', 'user:b', 'account:x'])}&n=${between(2, 6)}&gap=${between(5, 30)}&wait=2000` }
    }
    return {
      kind: 'abort-stream',
      path: `/stream?s=${pick(['user:a', 'user:c', 'account:x'])}&n=30&gap=20&wait=1500`,
      abortAfterDataMs: between(0, 150),
      abortAfterMs: 2500
    }
  }

  async function clientLoop (): Promise<void> {
    // Spread the first requests over the first 300 ms.
    await sleep(between(0, 300))
    while (load.running) {
      const targets = live()
      if (targets.length === 0) {
        await sleep(50)
        continue
      }
      const p = pick(targets)
      const s = spec()
      const sent = await send(p.port, s.path, { hangMs: HANG_MS, abortAfterMs: s.abortAfterMs, abortAfterDataMs: s.abortAfterDataMs })
      records.push({ ...sent, kind: s.kind, role: p.role, instanceId: p.instanceId, path: s.path })
      await sleep(sent.status === 429 || sent.status === 503 ? between(100, 400) : between(20, 150))
    }
  }

  async function scenarioSend (scenario: string, p: Proc, path: string, hangMs = HANG_MS): Promise<Rec> {
    const sent = await send(p.port, path, { hangMs })
    const rec = { ...sent, kind: 'work' as Kind, role: p.role, instanceId: p.instanceId, path, scenario }
    scenarioRecords.push(rec)
    return rec
  }

  const lag = monitorEventLoopDelay({ resolution: 10 })
  lag.enable()
  const loadStart = Date.now()
  const loadEnd = loadStart + o.seconds * 1000
  const clients = Array.from({ length: o.clients }, () => clientLoop())
  log(`load: ${o.clients} clients for ${o.seconds} s (seed ${o.seed})`)

  const eventually = async (check: () => Promise<boolean>, timeoutMs: number, stepMs = 10): Promise<number | undefined> => {
    const from = Date.now()
    for (;;) {
      try {
        if (await check()) return Date.now() - from
      } catch {}
      if (Date.now() - from > timeoutMs) return undefined
      await sleep(stepMs)
    }
  }

  // ---- scenario: Redis restarts in the middle of the load ------------------------------
  async function outage (cycle: number): Promise<void> {
    const name = `[cycle ${cycle}] redis restart`
    const procsUp = live()
    await Promise.all(procsUp.map(p => statsOf(p, true)))
    const window = { from: Date.now(), restartAt: Infinity, to: Infinity, procs: procsUp }
    outages.push(window)
    await redis.stop()
    log(`${name}: redis stopped`)
    const lastProbe = window.from + o.outageMs - o.storeTimeoutMs - 100
    const probes: Array<{ p: Proc, sent: Sent }> = []
    await Promise.all(window.procs.map(async p => {
      await sleep(50)
      while (Date.now() < lastProbe) {
        probes.push({ p, sent: await send(p.port, `/work?s=user:probe-${p.role}&hold=0&wait=0`, { hangMs: HANG_MS }) })
        await sleep(100)
      }
    }))
    await sleep(window.from + o.outageMs - Date.now())
    window.restartAt = Date.now()
    const lags = new Map(await Promise.all(window.procs.map(async p => [p, JSON.stringify((await statsOf(p, true))?.eventLoopMs)] as const)))
    await redis.start()
    window.to = Date.now()
    startMonitor()
    log(`${name}: redis restarted ${window.restartAt - window.from} ms after the stop, accepting ${window.to - window.restartAt} ms later`)

    for (const p of window.procs) {
      const mine = probes.filter(probe => probe.p === p)
      if (p.mode === 'fail-closed') {
        const bad = mine.filter(({ sent }) => !(sent.outcome === 'response' && sent.status === 503 && json(sent)?.code === 'SLOT_STORE_UNAVAILABLE'))
        const slowest = Math.max(0, ...mine.map(({ sent }) => sent.end - sent.start))
        const slowestServer = Math.max(0, ...mine.map(({ sent }) => sent.serverMs ?? Infinity))
        checks.add(`${name}: fail-closed ${p.role} answers 503 during the outage`, mine.length > 0 && bad.length === 0,
          `${mine.length} probes, ${bad.length} not 503 SLOT_STORE_UNAVAILABLE${bad.length > 0 ? ` (e.g. ${bad[0].sent.outcome} ${bad[0].sent.status} ${bad[0].sent.body.slice(0, 120)})` : ''}`)
        checks.add(`${name}: fail-closed ${p.role} answers within storeTimeoutMs`, slowestServer <= o.storeTimeoutMs + SERVER_MARGIN_MS && slowest <= o.storeTimeoutMs + MARGIN_MS,
          `slowest probe ${slowestServer} ms in the server, ${slowest} ms seen by the client (storeTimeoutMs ${o.storeTimeoutMs}; margins ${SERVER_MARGIN_MS} / ${MARGIN_MS} ms); its event loop delay during the outage ${lags.get(p)}`)
      } else {
        const bad = mine.filter(({ sent }) => !(sent.status === 200 && json(sent)?.bypassed === true))
        const slowest = Math.max(0, ...mine.map(({ sent }) => sent.end - sent.start))
        const slowestServer = Math.max(0, ...mine.map(({ sent }) => sent.serverMs ?? Infinity))
        checks.add(`${name}: fail-open ${p.role} lets requests proceed during the outage`,
          mine.length > 0 && bad.length === 0 && slowestServer <= o.storeTimeoutMs + SERVER_MARGIN_MS && slowest <= o.storeTimeoutMs + MARGIN_MS,
          `${mine.length} probes, ${bad.length} not 200 bypassed, slowest ${slowestServer} ms in the server, ${slowest} ms seen by the client; its event loop delay during the outage ${lags.get(p)}`)
      }
    }

    // Recovery: each app takes a real slot again within a second of Redis accepting connections.
    await Promise.all(window.procs.map(async p => {
      let recovered: number | undefined
      let last: Sent | undefined
      while (recovered === undefined && Date.now() - window.to < 3000) {
        last = await send(p.port, `/work?s=user:probe-${p.role}&hold=0&wait=0`, { hangMs: HANG_MS })
        if (last.status === 200 && json(last)?.bypassed === false) recovered = last.end - window.to
        else await sleep(20)
      }
      checks.add(`${name}: ${p.role} takes real slots again within 1 s`, recovered !== undefined && recovered <= 1000,
        recovered === undefined ? `not recovered within 3 s (last: ${last?.status} ${last?.body.slice(0, 120)})` : `recovered after ${recovered} ms`)
    }))
    observer.resetGap()
  }

  // ---- scenario: a process suspended longer than its lease ------------------------------
  // P holds the only slot of two subjects: user:stop with a request that outlives the
  // suspension (the renewal on resume must find the slot lost), user:stop-ends with a request
  // whose work ends while P is suspended (on resume it answers at once and releases). Another
  // process waits for both and must get them once P's leases lapse.
  async function stall (cycle: number, P: Proc, other: Proc): Promise<void> {
    const name = `[cycle ${cycle}] SIGSTOP ${P.role}`
    const cases = [
      { tag: 'user:stop', id: 'stop', hold: o.stallMs + 450, what: 'a request still running after the resume' },
      { tag: 'user:stop-ends', id: 'stop-ends', hold: 200, what: 'a request whose work ended while suspended' }
    ]
    const lostBefore = (id: string): number => P.events.filter(e => e.event === 'lost' && e.id === id).length
    const before = cases.map(c => lostBefore(c.id))
    const mineIn = (holders: Array<{ member: string }>, proc: Proc): boolean => holders.some(h => h.member.startsWith(`${proc.instanceId}:`))
    const pHeld: Array<Promise<Rec>> = []
    const otherHeld: Array<Promise<Rec>> = []
    // The subject's live holders read as soon as P's request ended.
    const afterP: Array<Promise<{ res: Rec, after: Array<{ member: string, expiry: number }> }>> = []
    for (const c of cases) {
      const held = scenarioSend(name, P, `/work?s=${c.tag}&hold=${c.hold}&wait=2000`)
      pHeld.push(held)
      afterP.push(held.then(async res => ({ res, after: await observer.liveHolders(c.tag).catch(() => []) })))
      if (await eventually(async () => mineIn(await observer.liveHolders(c.tag), P), 3000) === undefined) {
        checks.add(`${name}: ${P.role} holds ${c.tag}`, false, 'it never held the slot')
        await Promise.all(pHeld)
        return
      }
      // The other process waits for the slot, long enough to outlast the suspension.
      otherHeld.push(scenarioSend(name, other, `/work?s=${c.tag}&hold=${o.stallMs + 300}&wait=${o.stallMs + 3000}`))
    }
    await sleep(50)
    const window = { from: Date.now(), to: Infinity, proc: P }
    stalls.push(window)
    P.app.child.kill('SIGSTOP')
    log(`${name}: suspended for ${o.stallMs} ms`)
    // Watches that the suspended process's members never become live again, and never two holders.
    let pLiveAgain = 0
    let bothLive = 0
    const watching = { on: true }
    const watch = (async () => {
      while (watching.on) {
        for (const c of cases) {
          try {
            const holders = await observer.liveHolders(c.tag)
            if (holders.length > 1) bothLive++
            if (mineIn(holders, P) && window.to !== Infinity) pLiveAgain++
          } catch {}
        }
        await sleep(5)
      }
    })()
    await sleep(o.stallMs)
    for (const c of cases) {
      const holders = await observer.liveHolders(c.tag)
      checks.add(`${name}: its expired slot of ${c.tag} went to ${other.role} while it was suspended`,
        holders.length === 1 && mineIn(holders, other), `live holders just before SIGCONT: ${JSON.stringify(holders)}`)
    }
    P.app.child.kill('SIGCONT')
    window.to = Date.now()
    log(`${name}: resumed`)

    for (const [i, c] of cases.entries()) {
      const learned = await eventually(async () => lostBefore(c.id) > before[i], 1000 - (Date.now() - window.to))
      checks.add(`${name}: on resume it learns it lost ${c.tag}, ${c.what} ('lost' event)`, learned !== undefined,
        learned === undefined
          ? `no lost event for ${c.tag} within 1 s of SIGCONT; its request ended ${(await pHeld[i]).status}; its events since: ${JSON.stringify(P.events.filter(e => Number(e.at) >= window.to).map(e => ({ ...e, at: Number(e.at) - window.to })))}`
          : `lost event ${Date.now() - window.to} ms after SIGCONT`)
    }
    const stats = await statsOf(P)
    const holding = stats?.holding as Record<string, number> | undefined
    checks.add(`${name}: it no longer counts itself a holder`, stats !== undefined && cases.every(c => (holding?.[c.tag] ?? 0) === 0),
      `its own bookkeeping: ${JSON.stringify(holding)}, stats().lost ${(stats?.stats as Record<string, unknown> | undefined)?.lost}`)
    for (const [i, c] of cases.entries()) {
      // Right after P's request ended (and released what it thought it held): the other still holds.
      const { res, after } = await afterP[i]
      checks.add(`${name}: its release of ${c.tag} does not remove the new holder's entry`, after.length === 1 && mineIn(after, other),
        `its request ended ${res.outcome} ${res.status} ${res.end - window.to} ms after SIGCONT; live holders right after: ${JSON.stringify(after)}`)
    }
    const lines = P.app.stderr().split('\n')
    for (const c of cases) {
      const logged = lines.some(line => line.includes('slot lost') && line.includes(`"slotId":"${c.id}"`))
      checks.add(`${name}: it logs the loss of ${c.tag}`, logged, logged ? `a warning "slot lost" with slotId ${c.id}` : `no "slot lost" log line for slotId ${c.id}`)
    }
    // The rest is checked once the other's requests end, while the run goes on.
    deferred.push((async () => {
      const oRes = await Promise.all(otherHeld)
      watching.on = false
      await watch
      checks.add(`${name}: ${other.role} got the slots while ${P.role} was suspended`,
        oRes.every(r => r.status === 200 && Number(json(r)?.acquiredAt) < window.to),
        oRes.map((r, i) => `${cases[i].tag}: ${r.status}, acquired ${Number(json(r)?.acquiredAt) - window.from} ms after SIGSTOP`).join('; ') + ` (resumed after ${window.to - window.from} ms)`)
      checks.add(`${name}: it never re-takes a slot, never two holders`, pLiveAgain === 0 && bothLive === 0,
        `samples with ${P.role}'s member live after resume: ${pLiveAgain}; with two holders: ${bothLive}`)
    })())
  }

  // ---- scenario: kill -9 a process while it holds slots -------------------------------
  async function kill (cycle: number, V: Proc, respawn: boolean): Promise<void> {
    const name = `[cycle ${cycle}] kill -9 ${V.role}`
    const tag = 'user:kill'
    const survivors = live().filter(p => p !== V)
    // Until its tickets lapse, releases may still grant slots to its (dead) waiters, each for
    // its own claim; ticket ttl + claim = leaseMs, so everything of it ends within one lease.
    const { ticketTtlMs, claimMs } = waitTimings(o.leaseMs, { ...DEFAULT_BACKOFF, ...BACKOFF }, o.storeTimeoutMs)
    const slotsGoneBy = o.leaseMs
    const victims = [1, 2, 3].map(() => scenarioSend(name, V, `/work?s=${tag}&hold=60000&wait=2000`, 70_000))
    // The survivors hold on until well after its slots are gone, to show they were untouched.
    const kept = survivors.map(p => scenarioSend(name, p, `/work?s=${tag}&hold=${slotsGoneBy + 1000}&wait=2000`))
    const full = await eventually(async () => {
      const holders = await observer.liveHolders(tag)
      return holders.length === 3 + survivors.length && holders.filter(h => h.member.startsWith(`${V.instanceId}:`)).length === 3
    }, 3000)
    if (full === undefined) {
      checks.add(`${name}: set up`, false, `holders of ${tag}: ${JSON.stringify(await observer.liveHolders(tag))}`)
    }
    const theirs = (await observer.liveHolders(tag)).filter(h => !h.member.startsWith(`${V.instanceId}:`))
    V.timeline = await timelineOf(V)
    const atKill = await observer.membersOf(V.instanceId)
    V.app.child.kill('SIGKILL')
    const killedAt = Date.now()
    V.killedAt = killedAt
    V.alive = false
    kills.push({ proc: V, at: killedAt })
    log(`${name}: killed holding ${atKill.liveHolders.length} slots and ${atKill.liveTickets.length} tickets`)
    const latest = (entries: string[]): number => Math.max(atKill.now, ...entries.map(h => Number(h.split(' ')[2])))
    checks.add(`${name}: its leases end within one lease of the kill`, latest(atKill.liveHolders) <= atKill.now + o.leaseMs,
      `latest lease expiry ${latest(atKill.liveHolders) - atKill.now} ms after the kill (leaseMs ${o.leaseMs})`)
    checks.add(`${name}: its waiting tickets end within one ticket ttl of the kill`, latest(atKill.liveTickets) <= atKill.now + ticketTtlMs,
      `latest ticket expiry ${latest(atKill.liveTickets) - atKill.now} ms after the kill (ticket ttl ${ticketTtlMs} ms)`)
    // Survivors queue for the dead process's slots; they get them once the leases lapse.
    const takers = survivors.map(p => scenarioSend(name, p, `/work?s=${tag}&hold=100&wait=${slotsGoneBy + 2000}`))

    let holdersGone: number | undefined
    let ticketsGone: number | undefined
    let physicallyGone: number | undefined
    const deadline = Date.now() + slotsGoneBy + 2000
    while (Date.now() < deadline && (holdersGone === undefined || ticketsGone === undefined)) {
      const now = await observer.membersOf(V.instanceId)
      if (holdersGone === undefined && now.liveHolders.length === 0) holdersGone = now.now - atKill.now
      if (ticketsGone === undefined && now.liveTickets.length === 0) ticketsGone = now.now - atKill.now
      if (physicallyGone === undefined && now.present === 0) physicallyGone = now.now - atKill.now
      await sleep(10)
    }
    // Polled by Redis time; the margin is the polling's own latency on a busy machine.
    checks.add(`${name}: its slots, those granted to its dead waiters included, return within one lease`, holdersGone !== undefined && holdersGone <= slotsGoneBy + 300,
      holdersGone === undefined ? 'its holders were still live' : `no live holder of it ${holdersGone} ms after the kill (leaseMs ${o.leaseMs}; ticket ttl + claim ${ticketTtlMs + claimMs} ms)`)
    checks.add(`${name}: its waiting tickets lapse`, ticketsGone !== undefined && ticketsGone <= ticketTtlMs + 300,
      ticketsGone === undefined ? 'its tickets were still live' : `no live ticket of it ${ticketsGone} ms after the kill (ticket ttl ${ticketTtlMs} ms)`)
    // The survivors' entries are untouched: still there and live, renewed.
    await sleep(200)
    const stillThere = await observer.liveHolders(tag)
    const untouched = theirs.every(h => stillThere.some(s => s.member === h.member))
    checks.add(`${name}: the survivors' slots are untouched`, theirs.length === survivors.length && untouched,
      `${theirs.length} survivor holders before the kill, ${theirs.filter(h => stillThere.some(s => s.member === h.member)).length} still live after its slots returned`)
    summary[`kill${cycle}`] = { role: V.role, holdersGoneMs: holdersGone, ticketsGoneMs: ticketsGone, entriesGoneMs: physicallyGone ?? 'not yet (expired entries stay until purged or their key expires)' }
    deferred.push((async () => {
      const taken = await Promise.all(takers)
      const waits = taken.map(r => Number(json(r)?.waitedMs))
      checks.add(`${name}: survivors take its slots once the leases lapse`,
        taken.every(r => r.status === 200) && waits.every(w => w <= o.leaseMs + BACKOFF.maxMs + MARGIN_MS),
        `takers: ${taken.map((r, i) => `${r.status} after waiting ${waits[i]} ms`).join(', ')}`)
      const keptRes = await Promise.all(kept)
      checks.add(`${name}: the survivors' requests complete normally`, keptRes.every(r => r.status === 200),
        keptRes.map(r => `${r.role}: ${r.outcome} ${r.status}`).join(', '))
      const dead = await Promise.all(victims)
      checks.add(`${name}: its clients see the connection close`, dead.every(r => r.outcome === 'conn-error'),
        dead.map(r => `${r.outcome}${r.error === undefined ? '' : ` ${r.error}`}`).join(', '))
    })())
    if (respawn) await spawnApp(V.role)
  }

  async function scenario (name: string, fn: () => Promise<void>): Promise<void> {
    try {
      await fn()
    } catch (err) {
      checks.add(`${name}: ran`, false, err instanceof Error ? err.stack ?? err.message : String(err))
    }
  }

  // ---- the director: cycles of scenarios while the load runs ------------------------------
  let cycle = 0
  do {
    const cycleStart = Date.now()
    await sleep(cycleStart + 700 - Date.now())
    await scenario(`[cycle ${cycle}] redis restart`, () => outage(cycle))
    await sleep(300)
    const P = byRole((['B', 'A', 'C'] as Role[])[cycle % 3])
    const V = byRole((['C', 'B', 'A'] as Role[])[cycle % 3])
    // The taker must not be this cycle's kill victim: its requests may still hold then.
    const other = live().find(p => p !== P && p !== V) ?? live().find(p => p !== P)
    if (P !== undefined && other !== undefined) await scenario(`[cycle ${cycle}] SIGSTOP`, () => stall(cycle, P, other))
    await sleep(300)
    const more = Date.now() + CYCLE_MS + 3000 < loadEnd
    if (V !== undefined) await scenario(`[cycle ${cycle}] kill -9`, () => kill(cycle, V, more))
    cycle++
  } while (Date.now() + CYCLE_MS < loadEnd)
  await sleep(loadEnd - Date.now())
  load.running = false
  const stopped = Date.now()
  log(`load stopped after ${stopped - loadStart} ms; draining`)
  await Promise.all([...clients, ...deferred])
  const drained = Date.now()
  lag.disable()
  summary.runnerEventLoopLagMs = { p50: Math.round(lag.percentile(50) / 1e6), p99: Math.round(lag.percentile(99) / 1e6), max: Math.round(lag.max / 1e6) }
  log(`drained: the last client finished ${drained - stopped} ms later`)

  // ---- after the load -------------------------------------------------------------------
  // Zero live holders and waiters at once; every key gone once expired entries' keys expire.
  let lastCounts = ''
  const empty = await eventually(async () => {
    const { counts } = await observer.read()
    lastCounts = JSON.stringify([...counts].filter(([, c]) => c.held + c.waiting > 0))
    return [...counts.values()].every(c => c.held === 0 && c.waiting === 0)
  }, 2000, 20)
  checks.add('after the load: zero live holders and waiters for every subject', empty !== undefined,
    empty === undefined ? `still live: ${lastCounts}` : `all zero ${empty} ms after the last response`)
  let leftKeys: string[] = []
  const noKeys = await eventually(async () => (leftKeys = await keysUnder(observer.redis, prefix)).length === 0, o.leaseMs + 3000, 50)
  checks.add('after the load: no key left in Redis', noKeys !== undefined,
    noKeys === undefined ? `left: ${leftKeys.join(', ')}` : `none ${noKeys} ms after the drain`)
  await observer.stop()

  // Every process: holds and waits nothing, by the plugin's count and by its own.
  for (const p of live()) {
    const stats = await statsOf(p)
    const s = stats?.stats as { held: number, waiting: number, acquired: number, lost: number, pings: number } | undefined
    checks.add(`after the load: ${p.role}${p.generation} holds and waits for nothing`,
      s !== undefined && s.held === 0 && s.waiting === 0 && Object.keys(stats?.holding as object).length === 0,
      `stats().held ${s?.held}, waiting ${s?.waiting}, own bookkeeping ${JSON.stringify(stats?.holding)}; event loop delay ${JSON.stringify(stats?.eventLoopMs)}`)
    p.timeline = await timelineOf(p)
  }

  // The sampler never saw more live holders than max.
  const sampled: Record<string, string> = {}
  for (const [tag, s] of observer.subjects) {
    sampled[tag] = `${s.peak}/${s.max}`
    checks.add(`sampler: ${tag} never over max`, s.peak <= s.max && s.overs.length === 0,
      `max live holders sampled ${s.peak} (max ${s.max}), peak waiters ${s.peakWaiters}${s.overs.length > 0 ? `; over max: ${JSON.stringify(s.overs.slice(0, 3))}` : ''}`)
  }
  const runMs = drained - loadStart
  checks.add('sampler: read Redis many times a second for the whole run', observer.samples >= runMs / 1000 * 50,
    `${observer.samples} samples in ${runMs} ms (${Math.round(observer.samples / (runMs / 1000))}/s), ${observer.errors} failed reads (Redis down), longest gap outside outages ${observer.longestGapMs} ms`)
  summary.sampled = sampled
  summary.samples = observer.samples

  // Every request got a response or was aborted by its client; a killed process's in-flight
  // requests see their connection close.
  const all = [...records, ...scenarioRecords]
  const killedAt = (r: Rec): number | undefined => kills.find(k => k.proc.instanceId === r.instanceId)?.at
  const unanswered = all.filter(r => {
    if (r.outcome === 'response' || r.outcome === 'client-abort') return false
    const at = killedAt(r)
    return !(r.outcome === 'conn-error' && at !== undefined && r.start <= at && r.end >= at - 50)
  })
  checks.add('every request got a response or was aborted by its client', unanswered.length === 0,
    `${all.length} requests: ${JSON.stringify(count(all, r => r.outcome))}${unanswered.length > 0 ? `; unanswered: ${JSON.stringify(unanswered.slice(0, 5).map(r => ({ kind: r.kind, role: r.role, path: r.path, outcome: r.outcome, error: r.error, ms: r.end - r.start })))}` : ''}`)

  // Statuses are the expected ones for each kind; 503 only where the store was down (or stalled).
  const complete = records.filter(r => r.outcome === 'response')
  const unexpected = complete.filter(r => !EXPECTED_STATUS[r.kind].includes(r.status ?? 0))
  checks.add('every response has an expected status', unexpected.length === 0,
    `${complete.length} responses: ${JSON.stringify(count(complete, r => `${r.kind} ${r.status}`))}${unexpected.length > 0 ? `; unexpected: ${JSON.stringify(unexpected.slice(0, 5).map(r => ({ path: r.path, role: r.role, status: r.status, body: r.body.slice(0, 200) })))}` : ''}`)
  summary.requests = all.length
  summary.outcomes = count(records, r => `${r.kind} ${r.outcome === 'response' ? r.status : r.outcome}`)

  // Streams: every complete 200 stream ends in its done frame or an error event; waiters got pings.
  const streams = complete.filter(r => (r.kind === 'stream' || r.kind === 'abort-stream') && r.status === 200).map(r => ({ r, s: sse(r.body) }))
  const truncated = streams.filter(({ s }) => !s.done && s.errorCode === undefined)
  const pinged = streams.filter(({ s }) => s.pings > 0)
  const pingFrames = [...records.filter(r => r.kind === 'stream' || r.kind === 'abort-stream')].reduce((n, r) => n + sse(r.body).pings, 0)
  checks.add('streams end with their last event or an error event', truncated.length === 0,
    `${streams.length} complete streams, ${truncated.length} without done/error${truncated.length > 0 ? `: ${JSON.stringify(truncated.slice(0, 3).map(({ r }) => r.body.slice(-200)))}` : ''}; error events ${JSON.stringify(count(streams.filter(({ s }) => s.errorCode !== undefined), ({ s }) => s.errorCode!))}`)
  checks.add('waiting streams got SSE pings', pinged.length > 0,
    `${pinged.length} complete streams were pinged while waiting, ${pingFrames} ping frames received in all`)
  const midStream = records.filter(r => r.kind === 'abort-stream' && r.outcome === 'client-abort' && sse(r.body).data > 0).length
  const abortedWaiting = records.filter(r => r.outcome === 'client-abort' && r.body === '').length
  summary.aborts = { midStream, beforeAnyByte: abortedWaiting }

  // During each outage: requests started then to fail-closed apps got 503 within
  // storeTimeoutMs, those to the fail-open app proceeded.
  for (const [i, w] of outages.entries()) {
    // By the server's clock of arrival: a client slowed by a busy machine may deliver late.
    const arrived = (r: Rec): number => r.arrivedAt ?? r.start
    const during = records.filter(r => r.outcome === 'response' && arrived(r) >= w.from + 20 && arrived(r) <= w.restartAt - o.storeTimeoutMs - 50)
    const closed = during.filter(r => ROLES[r.role].mode === 'fail-closed')
    const closedBad = closed.filter(r => !(r.status === 503 && (r.serverMs ?? Infinity) <= o.storeTimeoutMs + SERVER_MARGIN_MS && r.end - r.start <= o.storeTimeoutMs + HANG_MARGIN_MS))
    checks.add(`outage ${i}: load requests to fail-closed apps got 503 within storeTimeoutMs`, closedBad.length === 0 && closed.length > 0,
      `${closed.length} requests arrived during the outage, slowest 503 ${Math.max(0, ...closed.map(r => r.serverMs ?? 0))} ms in the server, ${Math.max(0, ...closed.map(r => r.end - r.start))} ms seen by the client${closedBad.length > 0 ? `; not 503 in time: ${JSON.stringify(closedBad.slice(0, 5).map(r => ({ role: r.role, path: r.path, status: r.status, ms: r.end - r.start, serverMs: r.serverMs, arrivedAfterStop: arrived(r) - w.from, restartedAfter: w.restartAt - w.from })))}` : ''}`)
    const open = during.filter(r => ROLES[r.role].mode === 'fail-open')
    const openBad = open.filter(r => r.status === 503)
    checks.add(`outage ${i}: load requests to the fail-open app proceeded`, openBad.length === 0,
      `${open.length} requests: ${JSON.stringify(count(open, r => String(r.status)))}`)
    // Requests still waiting for a slot when Redis stopped: the head of each subject's queue
    // polls within backoff.maxMs and its store call fails within storeTimeoutMs, so by then
    // every waiter can know the store is down. A waiter whose own deadline (maxWaitMs) is later
    // must then get 503 (fail-open: proceed without a slot), not wait on and end in a 429.
    const knowsBy = w.from + BACKOFF.maxMs + o.storeTimeoutMs
    const waiting = records.filter(r => r.start < w.from && r.end > w.from && r.outcome === 'response')
    const failed = waiting.map(r => ({ r, code: failure(r), deadline: r.start + Number(/[?&]wait=(\d+)/.exec(r.path)?.[1] ?? 0) }))
      .filter(f => f.code !== undefined && f.code !== 'HANDLER_TIMEOUT')
    const misled = failed.filter(f => f.deadline > knowsBy + SERVER_MARGIN_MS && (
      f.code === 'SLOT_WAIT_TIMEOUT' ||
      (f.code === 'SLOT_STORE_UNAVAILABLE' && (ROLES[f.r.role].mode === 'fail-open' || f.r.end > knowsBy + MARGIN_MS))))
    summary[`outage${i}`] = {
      ms: w.restartAt - w.from,
      inFlightAtStop: waiting.length,
      failuresOfWaitersAtStop: count(failed, f => `${f.r.role} ${f.code}`)
    }
    checks.add(`outage ${i}: requests waiting when Redis stopped get 503 once the store is found down (fail-open: proceed), not a 429 at maxWaitMs`, misled.length === 0,
      `${waiting.length} requests in flight at the stop, ${failed.length} failed: ${JSON.stringify(count(failed, f => `${ROLES[f.r.role].mode} ${f.code}`))}; ` +
      `${misled.length} of them could have known by ${knowsBy - w.from} ms after the stop (backoff.maxMs + storeTimeoutMs) yet ${misled.length > 0 ? `ended so: ${JSON.stringify(count(misled, f => `${f.r.role} (${ROLES[f.r.role].mode}) ${f.code}`))}, e.g. ${JSON.stringify(misled.slice(0, 4).map(f => ({ role: f.r.role, path: f.r.path, code: f.code, deadlineAfterStop: f.deadline - w.from, endedAfterStop: f.r.end - w.from })))}` : 'none did'}`)
  }

  // 503s and bypasses outside outages and stalls: store calls that timed out under load.
  const calm = (r: Rec): boolean => !inWindows(r.start, outages.map(w => ({ from: w.from - HANG_MS, to: w.to + 1000 }))) &&
    !inWindows(r.end, outages.map(w => ({ from: w.from, to: w.to + 1000 }))) &&
    !stalls.some(s => s.proc.instanceId === r.instanceId && r.end >= s.from && r.start <= s.to + 1000)
  summary.spurious503 = complete.filter(r => r.status === 503 && calm(r)).length
  summary.spuriousBypass = complete.filter(r => r.status === 200 && json(r)?.bypassed === true && calm(r)).length

  // 'lost' only where a process stalled or Redis lost its data.
  const lost = procs.flatMap(p => p.events.filter(e => e.event === 'lost').map(e => ({ p, at: Number(e.at), tag: `${String(e.type)}:${String(e.id)}` })))
  const unexplained = lost.filter(l => !outages.some(w => l.at >= w.from && l.at <= w.to + o.leaseMs + MARGIN_MS) &&
    !stalls.some(s => s.proc === l.p && l.at >= s.from && l.at <= s.to + 1000))
  checks.add('slots are lost only across a stall or a Redis restart', unexplained.length === 0,
    `${lost.length} lost events${unexplained.length > 0 ? `; unexplained: ${JSON.stringify(unexplained.slice(0, 5).map(l => ({ app: l.p.role, tag: l.tag, at: l.at - loadStart })))}` : ''}`)

  // No over-admission where it matters: handlers holding a slot they believe live, across all
  // processes, never outnumber max (except while a process is suspended or Redis lost its data).
  const exempt: Window[] = [
    ...outages.map(w => ({ from: w.from, to: w.to + o.leaseMs + MARGIN_MS })),
    ...stalls.map(s => ({ from: s.from, to: s.to + 1000 }))
  ]
  const intervals = procs.flatMap(p => (p.timeline ?? []).map(([tag, start, end, how, member]) => ({ tag, start, end: p.killedAt !== undefined ? Math.min(end, p.killedAt) : end, how, member, app: `${p.role}${p.generation}` })))
  const overlap = overAdmission(intervals, SUBJECTS, exempt)
  for (const [tag, max] of Object.entries(SUBJECTS)) {
    const seen = overlap.get(tag)
    const evidence = (seen?.violations ?? []).slice(0, 3).map(v => ({
      at: v.at - loadStart,
      n: v.n,
      ms: v.ms,
      holders: intervals.filter(i => i.tag === tag && i.start <= v.at && i.end > v.at).map(i => `${i.app} ${i.member} ${i.start - loadStart}..${i.end - loadStart} ${i.how}`)
    }))
    checks.add(`no over-admission: ${tag}`, seen === undefined || seen.violations.length === 0,
      `peak handlers holding at once ${seen?.peak ?? 0} (max ${max}) outside stalls and outages; ${seen?.peakExempt ?? 0} within them${evidence.length > 0 ? `; over max (ms since the load started, ${seen!.violations.length} times): ${JSON.stringify(evidence)}` : ''}`)
  }
  summary.slotsHeld = intervals.length

  // No process logged an unhandled error.
  for (const p of procs) {
    const { unexpectedLines, errorsByKind, warnings } = scanLog(p.app.stderr(), p.killedAt !== undefined)
    checks.add(`${p.role}${p.generation}: no unhandled error logged`, unexpectedLines.length === 0 && !p.events.some(e => e.event === 'unhandled' || e.event === 'garbage'),
      `expected error logs ${JSON.stringify(errorsByKind)}, warnings ${JSON.stringify(warnings)}${unexpectedLines.length > 0 ? `; unexpected: ${JSON.stringify(unexpectedLines.slice(0, 5))}` : ''}`)
  }

  // A graceful close still works after all that.
  for (const p of live()) {
    const exited = new Promise<void>(resolve => p.app.child.once('exit', () => resolve()))
    p.app.child.kill('SIGTERM')
    const closed = await Promise.race([exited.then(() => true), sleep(5000).then(() => false)])
    checks.add(`${p.role}${p.generation}: closes cleanly`, closed && p.exit?.code === 0, closed ? `exit ${JSON.stringify(p.exit)}` : 'still running 5 s after SIGTERM')
  }
  const unexpectedExit = procs.filter(p => p.exit !== undefined && p.killedAt === undefined && p.exit.code !== 0)
  checks.add('no app process died on its own', unexpectedExit.length === 0,
    unexpectedExit.map(p => `${p.role}${p.generation}: ${JSON.stringify(p.exit)}`).join(', ') || `${procs.length} processes, ${kills.length} killed on purpose`)
}

/** The error code a response carries (JSON body, or an SSE error event), undefined for a success. */
function failure (r: Rec): string | undefined {
  if (r.status !== 200) return String(json(r)?.code ?? r.status)
  return r.kind === 'stream' || r.kind === 'abort-stream' ? sse(r.body).errorCode : undefined
}

/**
 * Sweeps every slot's [start, end] per subject and finds moments where more handlers held a
 * slot of the subject than its max. Ends sort before starts at the same millisecond: a slot
 * is booked only after Redis granted it and unbooked before its release is sent.
 */
export function overAdmission (intervals: Array<{ tag: string, start: number, end: number }>, maxes: Record<string, number>, exempt: Window[]): Map<string, { peak: number, peakExempt: number, violations: Array<{ at: number, n: number, ms: number }> }> {
  const byTag = new Map<string, Array<[number, number]>>()
  for (const { tag, start, end } of intervals) {
    let list = byTag.get(tag)
    if (list === undefined) byTag.set(tag, list = [])
    list.push([start, 1], [end, -1])
  }
  const out = new Map<string, { peak: number, peakExempt: number, violations: Array<{ at: number, n: number, ms: number }> }>()
  for (const [tag, points] of byTag) {
    points.sort((a, b) => a[0] - b[0] || a[1] - b[1])
    const max = maxes[tag] ?? Infinity
    const result = { peak: 0, peakExempt: 0, violations: [] as Array<{ at: number, n: number, ms: number }> }
    let n = 0
    points.forEach(([at, delta], i) => {
      n += delta
      const next = points[i + 1]?.[0] ?? at
      if (next === at && i + 1 < points.length) return
      const excused = inWindows(at, exempt) && inWindows(next, exempt)
      if (excused) result.peakExempt = Math.max(result.peakExempt, n)
      else result.peak = Math.max(result.peak, n)
      if (n > max && !excused) result.violations.push({ at, n, ms: next - at })
    })
    out.set(tag, result)
  }
  return out
}

/**
 * An app's stderr: pino JSON lines, plus CHAOS-UNHANDLED markers. Expected at error level:
 * /fail's deliberate 500 and the 503s of a store outage (Fastify logs 5xx answers). Anything
 * else at error level, any marker and any line that is not a log line is unexpected.
 */
export function scanLog (stderr: string, killed: boolean): { unexpectedLines: string[], errorsByKind: Record<string, number>, warnings: Record<string, number> } {
  const unexpectedLines: string[] = []
  const errorsByKind: Record<string, number> = {}
  const warnings: Record<string, number> = {}
  const lines = stderr.split('\n')
  // A process killed mid-write may leave a partial last line.
  if (killed) lines.pop()
  for (const line of lines) {
    if (line.trim() === '') continue
    let entry: { level?: number, msg?: string, err?: { type?: string, code?: string, message?: string } }
    try {
      entry = JSON.parse(line)
    } catch {
      unexpectedLines.push(line.slice(0, 300))
      continue
    }
    const level = entry.level ?? 0
    if (level >= 50) {
      const kind = entry.err?.message === 'chaos: handler failed'
        ? 'handler failed (500)'
        : entry.err?.type === 'SlotError' && entry.err.code === 'SLOT_STORE_UNAVAILABLE' ? 'store unavailable (503)' : undefined
      if (kind === undefined) unexpectedLines.push(line.slice(0, 500))
      else errorsByKind[kind] = (errorsByKind[kind] ?? 0) + 1
    } else if (level >= 40) {
      const msg = (entry.msg ?? '').slice(0, 60)
      warnings[msg] = (warnings[msg] ?? 0) + 1
    }
  }
  return { unexpectedLines, errorsByKind, warnings }
}

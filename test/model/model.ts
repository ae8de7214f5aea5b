/**
 * The model test: a seeded, randomized interleaving of everything a slot can go through,
 * checked against invariants kept OUTSIDE the plugin.
 *
 * Redis: four apps on one Redis (P1, P2 in this process; C1, C2 child processes), P1 and C1
 * through a FlakyProxy. Memory: three apps in this process sharing ONE MemoryStore. Apps use
 * different leaseMs, storeTimeoutMs, backoff, maxWaiters and fair; callers use mixed `max` on
 * the same subject, priority classes 1 to 3 on 30 % of calls, weights 2 to max on 25 % and
 * failFast on 20 %; invariant (a) counts units. About 20 % of calls (over a quarter of the
 * HTTP ones: request.acquireSlots has no detached form) take a set of 2 or 3 distinct subjects
 * at once, in a random order (so sets cross each other's order), each with its usual limits
 * and weights as above, a tenth of them with an extra max-0 subject; 30 % of the HTTP calls
 * release with slot.release(). Client loops (each with its own PRNG derived from the seed, so each loop's
 * sequence of operations replays exactly) send: acquire + hold + release (HTTP), client
 * aborts (the HTTP request destroyed at a random time), `fastify.slots.acquire` with an
 * AbortSignal aborted at a random time (also synchronously, and on setImmediate while the
 * first store call is on its way), short maxWaitMs. A chaos loop (its own PRNG) drops replies
 * on the proxies (ioredis reconnects and resends what was not answered), cuts all proxied
 * connections, closes and restarts an in-process app, kill -9s and respawns a child.
 *
 * Invariants:
 *  (a) whenever a handler starts running with a slot, for every limit m among the handlers of
 *      that subject running, those with a max <= m weigh at most m units, each of a set's slots
 *      counting in its own subject (the last admitted of them
 *      found the others holding: the admission rule seen from outside, sound whatever order
 *      the handlers record their starts in; records: test/fixtures/model-app.ts; a killed or
 *      closing app's holders stop counting at that moment);
 *  (b) at quiescence (every app closed gracefully): no entry of a live app left under the
 *      prefix; a killed app's entries end within their bound and every key expires; memory:
 *      usage() is 0 held / 0 waiting for every subject;
 *  (c) every call settles by maxWaitMs + margin (margin = 2 * storeTimeoutMs + 500), and a
 *      call whose client went away or whose signal aborted settles within margin of that;
 *  (d) only SlotErrors with codes SLOT_WAIT_TIMEOUT, SLOT_QUEUE_FULL, SLOT_WAIT_TOO_LONG (a
 *      fifth of the calls use failFast), SLOT_WAIT_ABORTED and SLOT_STORE_UNAVAILABLE (HTTP
 *      200, 429 or 503), no unhandled error;
 *  (i) sets are all or nothing: acquireSlots resolves to a slot of every subject asked, in its
 *      order (bypassed exactly for max 0), and no sample of the records (every 25 ms, all
 *      subjects in one step) finds a set's holder in some of its subjects only. A set that
 *      waited while holding part of its slots, or deadlocked with another set, would instead
 *      show as (a) or as calls that do not settle (c), and its leftovers as (b).
 *
 * `runModel` never throws for a violation: it returns them, each naming the seed.
 */
import type { ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { Redis } from 'ioredis'
import fastifySlots from '../../lib'
import { send } from '../chaos/http'
import { FlakyProxy } from '../helpers/flaky-proxy'
import { startFixture } from '../helpers/processes'
import { freePort, keysUnder, PrivateRedis, uniquePrefix } from '../helpers/redis'
import { MemoryRecords, recordKeys, safetyDetail, SAMPLE, setProblems, startModelApp, type AppConfig, type ModelApp, type Report } from '../fixtures/model-app'
import { prng } from '../helpers/prng'

export interface ModelOptions {
  seed: number
  /** How long the load runs. */
  seconds: number
  store: 'redis' | 'memory'
  log?: (line: string) => void
  /** Redis: the server to use (a unique prefix keeps to itself); default a private redis-server. */
  redisUrl?: string
  /** Concurrent client loops. Default 14 (redis), 10 (memory). */
  clients?: number
  /** Callers use mixed `max` on acct:m and acct:n (default true); false: one max per subject, to look past that bug. */
  mixedMax?: boolean
  /** About 20 % of calls take sets of subjects with acquireSlots (default true); false: singles only. */
  sets?: boolean
}

export interface Violation {
  invariant: string
  detail: string
  at: number
}

export interface ModelResult {
  seed: number
  store: 'redis' | 'memory'
  ok: boolean
  violations: Violation[]
  /** Not violations: lost slots, harness hiccups. */
  notes: Violation[]
  counts: Record<string, number>
  durationMs: number
  /** How to replay this run. */
  replay: string
}

/** Subjects and the `max` values callers use on each: mixed on acct:m and acct:n. */
const SUBJECTS: Record<string, number[]> = {
  'user:a': [1],
  'user:b': [2],
  'user:c': [3],
  'acct:m': [2, 3, 5],
  'acct:n': [1, 3]
}
const TAGS = Object.keys(SUBJECTS)
/** Taken only within sets, with max 0: acquireSlots answers it with a bypassed slot. */
const FREE_TAG = 'free:z'

interface Role {
  name: string
  child: boolean
  proxied: boolean
  leaseMs: number
  storeTimeoutMs: number
  backoff: { initialMs: number, maxMs: number }
  maxWaiters: number
  fair: boolean
}

const REDIS_ROLES: Role[] = [
  { name: 'P1', child: false, proxied: true, leaseMs: 4000, storeTimeoutMs: 300, backoff: { initialMs: 20, maxMs: 200 }, maxWaiters: 8, fair: false },
  { name: 'P2', child: false, proxied: false, leaseMs: 6000, storeTimeoutMs: 500, backoff: { initialMs: 50, maxMs: 400 }, maxWaiters: 20, fair: true },
  { name: 'C1', child: true, proxied: true, leaseMs: 3000, storeTimeoutMs: 400, backoff: { initialMs: 30, maxMs: 300 }, maxWaiters: 12, fair: false },
  { name: 'C2', child: true, proxied: false, leaseMs: 5000, storeTimeoutMs: 250, backoff: { initialMs: 10, maxMs: 150 }, maxWaiters: 5, fair: false }
]

const MEMORY_ROLES: Role[] = [
  { name: 'M1', child: false, proxied: false, leaseMs: 4000, storeTimeoutMs: 300, backoff: { initialMs: 20, maxMs: 200 }, maxWaiters: 8, fair: false },
  { name: 'M2', child: false, proxied: false, leaseMs: 6000, storeTimeoutMs: 500, backoff: { initialMs: 50, maxMs: 400 }, maxWaiters: 20, fair: true },
  { name: 'M3', child: false, proxied: false, leaseMs: 3000, storeTimeoutMs: 250, backoff: { initialMs: 10, maxMs: 150 }, maxWaiters: 5, fair: false }
]

const marginOf = (role: Role): number => 2 * role.storeTimeoutMs + 500
/** A waiting ticket's lifetime, as the plugin derives it (used only for the killed-app bound). */
const ticketTtlOf = (role: Role): number => 2 * (role.backoff.maxMs + role.storeTimeoutMs)

interface Handle {
  role: Role
  gen: number
  port: number
  instanceId: string
  up: boolean
  inProcess?: ModelApp
  child?: ChildProcess
  proxy?: FlakyProxy
  /** Requests sent to this generation that are still open. */
  inFlight: number
}

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

async function within<T> (promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([promise, new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`${what} took over ${ms} ms`)), ms) })])
  } finally {
    clearTimeout(timer)
  }
}

export async function runModel (options: ModelOptions): Promise<ModelResult> {
  const started = Date.now()
  const log = options.log ?? (() => {})
  const violations: Violation[] = []
  const notes: Violation[] = []
  const counts: Record<string, number> = {}
  const count = (key: string, n = 1): void => { counts[key] = (counts[key] ?? 0) + n }
  const replay = `node -r ts-node/register/transpile-only test/model/run.ts --store ${options.store} --seed ${options.seed} --seconds ${options.seconds}` +
    `${options.clients === undefined ? '' : ` --clients ${options.clients}`}${options.mixedMax === false ? ' --uniform-max' : ''}${options.sets === false ? ' --no-sets' : ''}`
  const report = (r: Report): void => {
    if (r.invariant.startsWith('note') || r.invariant === 'harness') {
      notes.push(r)
      count(r.invariant)
      return
    }
    violations.push(r)
    log(`VIOLATION (${r.invariant}) seed ${options.seed}: ${r.detail}`)
  }
  const cleanups: Array<() => unknown> = []
  const onUnhandled = (err: unknown): void => report({ invariant: 'd-error', detail: `unhandled in the model process: ${err instanceof Error ? err.stack ?? err.message : String(err)}`, at: Date.now() })
  process.on('unhandledRejection', onUnhandled)
  try {
    await model(options, report, count, log, cleanups)
  } catch (err) {
    report({ invariant: 'harness-failed', detail: err instanceof Error ? err.stack ?? err.message : String(err), at: Date.now() })
  } finally {
    for (const fn of cleanups.reverse()) {
      try {
        await fn()
      } catch {}
    }
    process.removeListener('unhandledRejection', onUnhandled)
  }
  return { seed: options.seed, store: options.store, ok: violations.length === 0, violations, notes, counts, durationMs: Date.now() - started, replay }
}

async function model (o: ModelOptions, report: (r: Report) => void, count: (key: string, n?: number) => void, log: (line: string) => void, cleanups: Array<() => unknown>): Promise<void> {
  const teardown = { teardown: (fn: () => unknown) => { cleanups.push(fn) } }
  const isRedis = o.store === 'redis'
  const roles = isRedis ? REDIS_ROLES : MEMORY_ROLES
  const prefix = uniquePrefix(`model-${o.seed}`)
  const recPrefix = `${prefix}-rec`
  const maxMargin = Math.max(...roles.map(marginOf))

  // ---- the backend -------------------------------------------------------------------
  let url = o.redisUrl ?? ''
  let control: Redis | undefined
  const proxies: FlakyProxy[] = []
  if (isRedis) {
    if (url === '') {
      const server = new PrivateRedis(await freePort())
      await server.start()
      cleanups.push(() => server.stop())
      url = server.url
    }
    const client = new Redis(url, { maxRetriesPerRequest: null })
    client.on('error', () => {})
    control = client
    cleanups.push(async () => {
      // Our records, never anything else of the server.
      const keys = recordKeys(recPrefix, TAGS).all
      await client.del(...keys)
      client.disconnect()
    })
  }
  const target = isRedis ? new URL(url) : undefined
  const memory = isRedis ? undefined : { store: new fastifySlots.MemoryStore(), records: new MemoryRecords(report) }

  // ---- the apps ----------------------------------------------------------------------
  const handles: Handle[] = []
  const killed: Array<{ instanceId: string, at: number, role: Role }> = []
  const closedInstances = new Set<string>()
  const gens: Record<string, number> = {}
  const children = new Set<ChildProcess>()
  const killChildren = (): void => { for (const c of children) if (c.exitCode === null) c.kill('SIGKILL') }
  process.once('exit', killChildren)
  cleanups.push(() => { process.removeListener('exit', killChildren); killChildren() })

  const configOf = (role: Role, gen: number, redisUrl: string | undefined): AppConfig => ({
    name: role.name,
    gen,
    redisUrl,
    prefix,
    recPrefix,
    subjects: TAGS,
    leaseMs: role.leaseMs,
    storeTimeoutMs: role.storeTimeoutMs,
    backoff: role.backoff,
    maxWaiters: role.maxWaiters,
    fair: role.fair,
    marginMs: marginOf(role)
  })

  async function startApp (role: Role, proxy: FlakyProxy | undefined): Promise<Handle> {
    const gen = gens[role.name] = (gens[role.name] ?? 0) + 1
    const redisUrl = proxy?.url ?? (isRedis ? url : undefined)
    const cfg = configOf(role, gen, redisUrl)
    const handle: Handle = { role, gen, port: 0, instanceId: '', up: false, proxy, inFlight: 0 }
    if (role.child) {
      const app = await startFixture(teardown, 'model-app.ts', { MODEL_APP: JSON.stringify(cfg) })
      children.add(app.child)
      handle.child = app.child
      handle.port = Number(app.hello.port)
      handle.instanceId = String(app.hello.instanceId)
      createInterface({ input: app.child.stdout! }).on('line', line => {
        try {
          const parsed = JSON.parse(line) as { report?: Report }
          if (parsed.report !== undefined) report(parsed.report)
        } catch {
          report({ invariant: 'harness', detail: `${role.name}.${gen} printed ${line}`, at: Date.now() })
        }
      })
      app.child.once('exit', () => { handle.up = false })
    } else {
      handle.inProcess = await startModelApp(cfg, report, memory)
      handle.port = handle.inProcess.port
      handle.instanceId = handle.inProcess.instanceId
    }
    handle.up = true
    log(`${role.name}.${gen} up: port ${handle.port}, instance ${handle.instanceId}${role.child ? `, pid ${handle.child!.pid}` : ''}${proxy === undefined ? '' : ', through a flaky proxy'}`)
    return handle
  }

  /** Graceful close of one generation (SIGTERM for a child), bounded. */
  async function closeApp (h: Handle): Promise<void> {
    h.up = false
    if (h.inProcess !== undefined) {
      await within(h.inProcess.close(), 10_000, `closing ${h.role.name}.${h.gen}`)
    } else if (h.child !== undefined && h.child.exitCode === null) {
      const exited = new Promise(resolve => h.child!.once('exit', resolve))
      h.child.kill('SIGTERM')
      await within(exited, 10_000, `closing ${h.role.name}.${h.gen}`)
    }
    closedInstances.add(h.instanceId)
  }

  // All apps start together (a child takes a second or two to compile and connect).
  handles.push(...await Promise.all(roles.map(async role => {
    let proxy: FlakyProxy | undefined
    if (role.proxied && target !== undefined) {
      const p = await FlakyProxy.start({ host: target.hostname, port: Number(target.port) })
      proxies.push(p)
      cleanups.push(() => p.close())
      proxy = p
    }
    return await startApp(role, proxy)
  })))

  // ---- the load ------------------------------------------------------------------------
  const load = { running: true }
  const loadEnd = Date.now() + o.seconds * 1000
  const clients = o.clients ?? (isRedis ? 14 : 10)

  async function clientLoop (index: number): Promise<void> {
    const rng = prng((o.seed * 7919 + index * 104729) >>> 0)
    const between = (lo: number, hi: number): number => lo + Math.floor(rng() * (hi - lo + 1))
    const pick = <T>(items: readonly T[]): T => items[Math.floor(rng() * items.length)]
    await sleep(between(0, 200))
    while (load.running && Date.now() < loadEnd) {
      // Every choice is drawn before looking at which apps are up, so the sequence replays.
      const r = rng()
      const appIndex = between(0, roles.length - 1)
      const tag = pick(TAGS)
      const maxes = SUBJECTS[tag]
      const drawn = pick(maxes)
      const max = o.mixedMax === false ? maxes[0] : drawn
      const hold = between(5, 150)
      const waitKind = rng()
      const wait = waitKind < 0.15 ? 0 : waitKind < 0.4 ? between(20, 200) : between(300, 3000)
      const fair = rng() < 0.25 ? '&fair=1' : ''
      const mw = rng() < 0.2 ? `&mw=${between(0, 4)}` : ''
      const abortPick = rng()
      const abortAfter = abortPick < 0.15 ? 0 : abortPick < 0.3 ? 1 : abortPick < 0.45 ? between(2, 6) : abortPick < 0.75 ? between(10, 400) : -1
      const clientAbort = between(0, 400)
      const pause = between(0, 60)
      const ff = rng() < 0.2 ? '&ff=1' : ''
      const pr = rng() < 0.3 ? `&pr=${between(1, 3)}` : ''
      const wt = rng() < 0.25 && max > 1 ? `&wt=${between(2, max)}` : ''
      const rel = rng() < 0.3 ? '&rel=1' : ''
      // A set: 2 or 3 distinct subjects in a random order (a partial Fisher-Yates), each with a
      // max and a weight drawn as a single's; sometimes one more subject, with max 0, anywhere.
      const setPick = rng()
      const setTags = [...TAGS]
      const setSize = between(2, 3)
      for (let i = 0; i < setSize; i++) setTags.splice(i, 0, ...setTags.splice(between(i, setTags.length - 1), 1))
      const setParts = setTags.slice(0, setSize).map(t => {
        const limits = SUBJECTS[t]
        const m = o.mixedMax === false ? limits[0] : pick(limits)
        return `${t}-${m}-${rng() < 0.25 && m > 1 ? between(2, m) : 1}`
      })
      if (rng() < 0.1) setParts.splice(between(0, setParts.length), 0, `${FREE_TAG}-0-1`)
      const isSet = o.sets !== false && r < 0.72 && setPick < 0.28
      const h = handles.find(x => x.role === roles[appIndex] && x.up) ?? handles.find(x => x.up)
      if (h === undefined) {
        await sleep(20)
        continue
      }
      const query = `s=${tag}&max=${max}&hold=${hold}&wait=${wait}${fair}${mw}${ff}${pr}${wt}`
      const setQuery = `set=${setParts.join(',')}&hold=${hold}&wait=${wait}${fair}${mw}${ff}${pr}`
      const margin = marginOf(h.role)
      let kind: string
      let path: string
      let abortAfterMs: number | undefined
      if (r < 0.55) {
        kind = isSet ? 'set-hold' : 'hold'
        path = `/hold?${isSet ? setQuery : query}${rel}`
      } else if (r < 0.72) {
        kind = isSet ? 'set-client-abort' : 'client-abort'
        path = `/hold?${isSet ? setQuery : query}${rel}`
        abortAfterMs = clientAbort
      } else {
        kind = 'detached'
        path = `/detached?${query}&abort=${abortAfter}`
      }
      // Client side (c): a generous bound on the whole exchange (the app checks the tight one).
      const hangMs = wait + hold + 2 * margin + 2000
      const gen = h.gen
      h.inFlight++
      const sent = await send(h.port, path, { hangMs, abortAfterMs })
      h.inFlight--
      const stillUp = h.up && h.gen === gen
      count(`${kind}:${sent.outcome}${sent.status === undefined ? '' : `:${sent.status}`}`)
      if (sent.outcome === 'hang') {
        report({ invariant: 'c-settle', detail: `client: ${h.role.name}.${gen} ${path} not answered within ${hangMs} ms`, at: Date.now() })
      } else if (sent.outcome === 'response') {
        const okStatuses = kind === 'detached' ? [200] : [200, 429, 503]
        // Fastify itself answers 503 to a request that reaches an app while it closes (a restart).
        const closing = sent.status === 503 && !stillUp && sent.body.includes('"Service Unavailable"') && !sent.body.includes('"code"')
        if (!okStatuses.includes(sent.status ?? 0) && !closing) {
          report({ invariant: 'd-error', detail: `client: ${h.role.name}.${gen} ${path} answered ${String(sent.status)} ${sent.body.slice(0, 300)}`, at: Date.now() })
        }
        if (kind === 'detached') {
          try {
            count(`detached-outcome:${String(JSON.parse(sent.body).outcome)}`)
          } catch {}
        }
      } else if (sent.outcome === 'conn-error' && stillUp) {
        // Not an invariant of the plugin, but an app that was up should answer.
        report({ invariant: 'note-conn-error', detail: `${h.role.name}.${gen} ${path}: ${String(sent.error)}`, at: Date.now() })
      }
      await sleep(pause)
    }
  }

  /** Drops, cuts, restarts and kills, on their own PRNG. */
  async function chaosLoop (): Promise<void> {
    const rng = prng((o.seed ^ 0x5bd1e995) >>> 0)
    const between = (lo: number, hi: number): number => lo + Math.floor(rng() * (hi - lo + 1))
    await sleep(between(200, 500))
    while (load.running && Date.now() < loadEnd) {
      const r = rng()
      const which = rng()
      const gap = between(150, 500)
      if (isRedis && r < 0.45) {
        const proxy = proxies[Math.floor(which * proxies.length)]
        const burst = rng() < 0.3 ? 3 : 1
        for (let i = 0; i < burst; i++) proxy.dropNextReply()
        count('chaos:drop-reply', burst)
      } else if (isRedis && r < 0.52) {
        for (const proxy of proxies) proxy.cutAll()
        count('chaos:cut-all')
      } else if (r < 0.72 && Date.now() + 1500 < loadEnd) {
        // Close an in-process app gracefully (its holders stop counting at preClose) and restart it.
        const candidates = handles.filter(h => h.up && h.inProcess !== undefined)
        const h = candidates[Math.floor(which * candidates.length)]
        if (h !== undefined) {
          log(`chaos: closing ${h.role.name}.${h.gen} (${h.inFlight} requests in flight)`)
          await closeApp(h)
          handles.splice(handles.indexOf(h), 1, await startApp(h.role, h.proxy))
          count('chaos:restart')
        }
      } else if (isRedis && r < 0.86 && Date.now() + 2500 < loadEnd) {
        const candidates = handles.filter(h => h.up && h.child !== undefined)
        const h = candidates[Math.floor(which * candidates.length)]
        if (h !== undefined) {
          log(`chaos: kill -9 ${h.role.name}.${h.gen} (${h.inFlight} requests in flight)`)
          h.up = false
          const exited = new Promise(resolve => h.child!.once('exit', resolve))
          h.child!.kill('SIGKILL')
          await exited
          const at = Date.now()
          killed.push({ instanceId: h.instanceId, at, role: h.role })
          // Its running holders stop counting now; an enter of it still on its way is ignored.
          // (Its slots stay held in Redis until their leases end: only the check gets weaker.)
          await control!.eval(`
            redis.call('SADD', KEYS[1], ARGV[1])
            local mark = ARGV[1] .. '#'
            for i = 2, #KEYS do
              for _, f in ipairs(redis.call('HKEYS', KEYS[i])) do
                if string.sub(f, 1, #mark) == mark then redis.call('HDEL', KEYS[i], f) end
              end
            end
            return 1`, 1 + TAGS.length, recordKeys(recPrefix, TAGS).dead, ...TAGS.map(recordKeys(recPrefix, TAGS).running), `${h.role.name}.${h.gen}`)
          handles.splice(handles.indexOf(h), 1, await startApp(h.role, h.proxy))
          count('chaos:kill')
        }
      }
      await sleep(gap)
    }
  }

  /**
   * (i) Samples every running set at once (one Lua call; in memory, one synchronous read) and
   * checks each set's holder runs in all of its subjects. On a timer, not a PRNG: it only reads.
   */
  async function sampleLoop (): Promise<void> {
    const keys = recordKeys(recPrefix, TAGS)
    const subjectOf = new Map(TAGS.map(tag => [keys.running(tag), tag]))
    // A broken holder stays broken until it exits: reported once, not on every sample.
    const reported = new Set<string>()
    while (load.running && Date.now() < loadEnd) {
      let sample: Array<[string, string, string]>
      if (memory !== undefined) {
        sample = memory.records.sample()
      } else {
        const flat = await control!.eval(SAMPLE, TAGS.length, ...TAGS.map(keys.running)) as string[]
        sample = []
        for (let i = 0; i < flat.length; i += 3) sample.push([subjectOf.get(flat[i]) ?? flat[i], flat[i + 1], flat[i + 2]])
      }
      const { problems, setHolders } = setProblems(sample)
      count('sample')
      count('sample:set-holders', setHolders)
      for (const { holder, detail } of problems) {
        if (reported.has(holder)) continue
        reported.add(holder)
        report({ invariant: 'i-set', detail: `sample: ${detail}`, at: Date.now() })
      }
      await sleep(25)
    }
  }

  log(`load: ${clients} clients for ${o.seconds} s, seed ${o.seed}, store ${o.store}, prefix ${prefix}${o.sets === false ? ', no sets' : ''}`)
  const loops = [...Array.from({ length: clients }, (_, i) => clientLoop(i)), chaosLoop(), sampleLoop()]
  await Promise.all(loops)
  load.running = false
  log(`load over; closing ${handles.length} apps`)

  // ---- quiescence ----------------------------------------------------------------------
  for (const h of handles) {
    try {
      await closeApp(h)
    } catch (err) {
      report({ invariant: 'c-settle', detail: `${h.role.name}.${h.gen} did not close: ${String(err)}`, at: Date.now() })
    }
  }
  // Cleanups the plugin issued without awaiting them (a forgotten hold) are bounded by storeTimeoutMs.
  await sleep(maxMargin)
  for (const p of proxies) {
    count('proxy:dropped', p.dropped)
    count('proxy:cut', p.cuts)
  }

  if (memory !== undefined) {
    const loads = await memory.store.usage(TAGS)
    loads.forEach((l, i) => {
      if (l.held !== 0 || l.waiting !== 0) report({ invariant: 'b-leftover', detail: `memory store: ${TAGS[i]} still has ${l.held} held, ${l.waiting} waiting after every app closed`, at: Date.now() })
    })
    for (const [tag, set] of memory.records.running) {
      if (set.size > 0) report({ invariant: 'harness', detail: `records of ${tag} not empty at the end: ${[...set.keys()].join(' ')}`, at: Date.now() })
    }
    return
  }

  const redis = control!
  const keys = recordKeys(recPrefix, TAGS)
  for (const raw of await redis.lrange(keys.violations, 0, -1)) {
    const v = JSON.parse(raw) as { subject: string, holder: string, max: number, running: number, at: number, holders: string[] }
    report({ invariant: 'a-safety', detail: safetyDetail(v.subject, v.holder, v.max, v.holders), at: v.at })
  }
  for (const tag of TAGS) {
    const left = await redis.hkeys(keys.running(tag))
    if (left.length > 0) report({ invariant: 'harness', detail: `records of ${tag} not empty at the end: ${left.join(' ')}`, at: Date.now() })
  }
  await checkLeftovers(redis, prefix, handles, closedInstances, killed, report)
}

/**
 * (b) for Redis. Entries are `<instance id>:<counter>`: an entry of an app that closed
 * gracefully is a leftover. A killed app's holders and tickets must end within their bound
 * (lease, or ticket lifetime plus a claim granted to a dead waiter) after the kill, and every
 * key must carry an expiry.
 */
async function checkLeftovers (redis: Redis, prefix: string, _handles: Handle[], closed: Set<string>, killed: Array<{ instanceId: string, at: number, role: Role }>, report: (r: Report) => void): Promise<void> {
  const killedBy = new Map(killed.map(k => [k.instanceId, k]))
  for (const key of await keysUnder(redis, prefix)) {
    const type = await redis.type(key)
    const pttl = await redis.pttl(key)
    if (pttl < 0) report({ invariant: 'b-leftover', detail: `${key} (${type}) has no expiry`, at: Date.now() })
    if (type !== 'zset') {
      report({ invariant: 'b-leftover', detail: `${key} is a ${type}`, at: Date.now() })
      continue
    }
    // Through Lua: a flat reply whatever protocol (RESP3 nests WITHSCORES pairs) the client speaks.
    const flat = await redis.eval("return redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')", 1, key) as string[]
    const [seconds, micros] = await redis.time()
    const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000)
    for (let i = 0; i < flat.length; i += 2) {
      const member = flat[i]
      const score = Number(flat[i + 1])
      const instance = member.slice(0, member.indexOf(':'))
      const k = killedBy.get(instance)
      const structure = key.slice(key.lastIndexOf(':') + 1)
      const state = structure === 'queue' ? 'queued' : score > now ? `live for ${score - now} ms more` : `lapsed ${now - score} ms ago`
      if (k === undefined) {
        report({ invariant: 'b-leftover', detail: `${key} still has ${member} (${state}) of an app that ${closed.has(instance) ? 'closed gracefully' : 'is unknown'}`, at: now })
        continue
      }
      if (structure === 'queue') continue
      const bound = k.at + Math.max(k.role.leaseMs, ticketTtlOf(k.role) + Math.min(k.role.leaseMs, ticketTtlOf(k.role))) + 500
      if (score > bound) report({ invariant: 'b-leftover', detail: `${key}: ${member} of the app killed at ${k.at} lives until ${score}, past its bound ${bound}`, at: now })
    }
  }
}

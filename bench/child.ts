/**
 * A child process of the benchmark: one share of the contended workers, the uncontended
 * loops of one system, one HTTP server (one route variant), or the growth scenario's holder
 * of many subjects. Started by run.ts with its config as JSON in
 * argv[2]; talks to it over the IPC channel (see common.ts).
 */
import { setMaxListeners } from 'node:events'
import Fastify, { type FastifyRequest } from 'fastify'
import { Redis } from 'ioredis'
import { Semaphore } from 'redis-semaphore'
import fastifySlots from '../lib'
import {
  now, sleep, type ChildMessage, type ChildConfig, type ContendedConfig, type Cycle, type HttpServerConfig,
  type ParentMessage, type PendingWait, type PhaseCost, type SubjectsConfig, type UncontendedConfig
} from './common'
import { clientCommands, createSystem, MAX_WAIT_MS, type Held } from './systems'

function send (message: ChildMessage): Promise<void> {
  return new Promise((resolve, reject) => {
    process.send!(message, undefined, {}, err => { if (err === null) resolve(); else reject(err) })
  })
}

// Every message from the parent is queued as it arrives, so none is lost between two waits.
const inbox: ParentMessage[] = []
let delivered: (() => void) | undefined
process.on('message', message => {
  inbox.push(message as ParentMessage)
  delivered?.()
})

async function nextMessage (): Promise<ParentMessage> {
  while (inbox.length === 0) await new Promise<void>(resolve => { delivered = resolve })
  delivered = undefined
  return inbox.shift()!
}

/** Resolves at wall-clock time `at` (see {@link now}). */
function at (time: number): Promise<void> {
  return sleep(Math.max(0, time - now()))
}

const cpuMicros = (): number => {
  const usage = process.cpuUsage()
  return usage.user + usage.system
}

/** Samples the client command counter and this process's CPU at the window's edges. */
function sampleWindow (windowStart: number, windowEnd: number): Promise<{ commands: number, cpuMicros: number }> {
  let commands = 0
  let cpu = 0
  return Promise.all([
    at(windowStart).then(() => {
      commands = clientCommands()
      cpu = cpuMicros()
    }),
    at(windowEnd).then(() => {
      commands = clientCommands() - commands
      cpu = cpuMicros() - cpu
    })
  ]).then(() => ({ commands, cpuMicros: cpu }))
}

/** Workers still waiting stop this long after the window, so the parent's INFO at its end sees no teardown. */
const STOP_AFTER_WINDOW_MS = 100

async function contended (config: ContendedConfig): Promise<void> {
  const system = await createSystem(config.system, config, config.prefix)
  // Load the scripts and open the connections before the clock starts.
  const warm = await system.acquire(`warm-${process.pid}`, 1000)
  await warm.release()
  await send({ type: 'ready' })
  const start = await nextMessage()
  if (start.type !== 'start') throw new Error('expected a start message')

  const cycles: Cycle[] = []
  const pending: PendingWait[] = []
  const errors: string[] = []
  const stop = new AbortController()
  // Every worker's acquire listens on it.
  setMaxListeners(0, stop.signal)
  const sampled = sampleWindow(start.windowStart, start.windowEnd)
  const stopped = at(start.windowEnd + STOP_AFTER_WINDOW_MS).then(() => stop.abort(new Error('the run is over')))

  const worker = async (id: number): Promise<void> => {
    while (now() < start.windowEnd) {
      const requestedAt = now()
      let held: Held
      try {
        held = await system.acquire('subject', config.limit, stop.signal)
      } catch (err) {
        if (stop.signal.aborted) {
          pending.push({ worker: id, requestedAt, abortedAt: now() })
          return
        }
        if (errors.length < 20) errors.push(String(err))
        continue
      }
      const acquiredAt = now()
      // The idle scenario's holders keep their slots until the run is over.
      await Promise.race([sleep(config.holdMs), stopped])
      const releasedAt = now()
      await held.release()
      cycles.push({ worker: id, requestedAt, acquiredAt, releasedAt, releaseDoneAt: now() })
    }
  }
  await at(start.startAt)
  await Promise.all(Array.from({ length: config.workers }, (_, i) => worker(config.firstWorker + i)))
  const window = await sampled
  await stopped
  await send({ type: 'contended-result', result: { cycles, pending, clientCommands: window.commands, cpuMicros: window.cpuMicros, errors } })
  await system.close()
}

/** Runs the uncontended cases the parent sends, one at a time, until it says stop. */
async function uncontended (config: UncontendedConfig): Promise<void> {
  const system = await createSystem(config.system, config, config.prefix)
  const warm = await system.acquire(`warm-${process.pid}`, config.limit)
  await warm.release()
  await send({ type: 'ready' })
  for (;;) {
    const message = await nextMessage()
    if (message.type !== 'case') break
    const { run, startAt, windowStart, windowEnd } = message
    const latencies: number[] = []
    const sampled = sampleWindow(windowStart, windowEnd)
    const loop = async (i: number): Promise<void> => {
      const subject = run.subjects === 'same' ? `${run.concurrency}-same` : `${run.concurrency}-${i}`
      while (now() < windowEnd) {
        const t0 = now()
        const held = await system.acquire(subject, config.limit)
        await held.release()
        if (t0 >= windowStart) latencies.push(now() - t0)
      }
    }
    await at(startAt)
    await Promise.all(Array.from({ length: run.concurrency }, (_, i) => loop(i)))
    const window = await sampled
    await send({ type: 'case-result', sample: { latencies, clientCommands: window.commands, cpuMicros: window.cpuMicros } })
  }
  await system.close()
}

async function httpServer (config: HttpServerConfig): Promise<void> {
  const app = Fastify({ logger: false })
  const pair = config.variant === 'slots-set' || config.variant === 'slots-pair' || config.variant === 'redis-semaphore-pair'
  // The pair variants count the commands their clients send (round trips); installed before any client exists.
  if (pair) clientCommands()
  const client = config.variant === 'bare' || config.variant === 'slots-memory' ? undefined : new Redis(config.redisUrl)
  client?.on('error', () => {})
  if (config.variant === 'slots' || config.variant === 'slots-set' || config.variant === 'slots-pair') await app.register(fastifySlots, { redis: client, prefix: config.prefix })
  if (config.variant === 'slots-memory') await app.register(fastifySlots, { store: 'memory' })
  // redis-semaphore's slots are released where fastify-slots releases: after the response is sent.
  const semaphores = new WeakMap<FastifyRequest, Semaphore>()
  const semaphorePairs = new WeakMap<FastifyRequest, Semaphore[]>()
  if (config.variant === 'redis-semaphore') {
    app.addHook('onResponse', async request => {
      const semaphore = semaphores.get(request)
      if (semaphore === undefined) return
      semaphores.delete(request)
      await semaphore.release()
    })
  }
  if (config.variant === 'redis-semaphore-pair') {
    app.addHook('onResponse', async request => {
      const held = semaphorePairs.get(request)
      if (held === undefined) return
      semaphorePairs.delete(request)
      await Promise.all(held.map(async semaphore => { await semaphore.release() }))
    })
  }
  let n = 0
  app.get('/', async (request) => {
    const id = n++ % 100
    // The pair variants' account: one of 10, ten users each.
    const account = Math.floor(id / 10)
    if (config.variant === 'slots' || config.variant === 'slots-memory') await request.acquireSlot('user', id, 10)
    else if (config.variant === 'redis-semaphore') {
      const semaphore = new Semaphore(client!, `${config.prefix}:user:${id}`, 10, { acquireTimeout: MAX_WAIT_MS })
      await semaphore.acquire()
      semaphores.set(request, semaphore)
    } else if (config.variant === 'floor') {
      await client!.ping()
      await client!.ping()
    } else if (config.variant === 'slots-set') {
      await request.acquireSlots([{ type: 'user', id, max: 10 }, { type: 'account', id: account, max: 1000 }])
    } else if (config.variant === 'slots-pair') {
      await request.acquireSlot('user', id, 10)
      await request.acquireSlot('account', account, 1000)
    } else if (config.variant === 'redis-semaphore-pair') {
      const held: Semaphore[] = []
      semaphorePairs.set(request, held)
      const user = new Semaphore(client!, `${config.prefix}:user:${id}`, 10, { acquireTimeout: MAX_WAIT_MS })
      await user.acquire()
      held.push(user)
      const acc = new Semaphore(client!, `${config.prefix}:account:${account}`, 1000, { acquireTimeout: MAX_WAIT_MS })
      await acc.acquire()
      held.push(acc)
    }
    return { ok: true }
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  await send({ type: 'ready', port: typeof address === 'object' && address !== null ? address.port : 0 })
  // The parent reads this process's CPU around each load round, until it says stop.
  for (;;) {
    const message = await nextMessage()
    if (message.type !== 'cpu') break
    await send(pair ? { type: 'cpu', cpuMicros: cpuMicros(), clientCommands: clientCommands() } : { type: 'cpu', cpuMicros: cpuMicros() })
  }
  await app.close()
  client?.disconnect()
}

/**
 * Holds one slot on each of many subjects at once, for the parent to read Redis' memory and
 * key count while they are held; then releases them all. Each phase goes in chunks of
 * concurrent calls: all at once would only measure how the process copes with a flood.
 */
async function subjects (config: SubjectsConfig): Promise<void> {
  const system = await createSystem(config.system, config, config.prefix)
  const warm = await system.acquire(`warm-${process.pid}`, config.limit)
  await warm.release()
  await send({ type: 'ready' })
  const phase = async (count: number, step: (i: number) => Promise<void>): Promise<PhaseCost> => {
    const t0 = now()
    const cpu0 = cpuMicros()
    const commands0 = clientCommands()
    for (let first = 0; first < count; first += config.chunk) {
      await Promise.all(Array.from({ length: Math.min(config.chunk, count - first) }, (_, k) => step(first + k)))
    }
    return { ms: now() - t0, cpuMicros: cpuMicros() - cpu0, clientCommands: clientCommands() - commands0 }
  }
  for (;;) {
    const hold = await nextMessage()
    if (hold.type !== 'hold') break
    const held: Held[] = new Array(hold.count)
    const acquired = await phase(hold.count, async i => { held[i] = await system.acquire(`${hold.tag}-${i}`, config.limit) })
    await send({ type: 'held', cost: acquired })
    if ((await nextMessage()).type !== 'release') throw new Error('expected a release message')
    const released = await phase(hold.count, async i => { await held[i].release() })
    await send({ type: 'released', cost: released })
  }
  await system.close()
}

async function main (): Promise<void> {
  const config = JSON.parse(process.argv[2]) as ChildConfig
  if (config.role === 'contended') await contended(config)
  else if (config.role === 'uncontended') await uncontended(config)
  else if (config.role === 'subjects') await subjects(config)
  else await httpServer(config)
}

main().then(() => process.exit(0), async (err: unknown) => {
  await send({ type: 'error', message: err instanceof Error ? err.stack ?? err.message : String(err) }).catch(() => {})
  process.exit(1)
})

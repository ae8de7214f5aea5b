/**
 * Test harness for a real Redis. `REDIS_URL` when set (tests then keep to their own key
 * prefix and never flush it); otherwise a private redis-server on a free port, stopped when
 * the test ends. Tests that stop or restart Redis always use a private server.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createServer } from 'node:net'
import { Redis, type RedisOptions } from 'ioredis'

interface Teardown { teardown: (fn: () => unknown) => void }

/** Why a private redis-server could not start, and the two ways out. */
function noRedisServer (): string {
  const why = process.env.REDIS_URL !== undefined && process.env.REDIS_URL !== ''
    ? 'No redis-server binary: REDIS_URL is set, but this test needs a private redis-server (it stops, restarts or configures Redis). '
    : 'No Redis for the tests: set REDIS_URL (e.g. REDIS_URL=redis://127.0.0.1:6379), which serves the tests that share a server, and '
  return why + 'install redis-server (Debian: apt-get install redis-server), or run `bash .ci/run`, which installs ' +
    'redis-server when it is missing, starts one and runs the tests.'
}

export function hasRedisServer (): boolean {
  return spawnSync('redis-server', ['--version']).status === 0
}

export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0))
    })
  })
}

/** A redis-server this test owns: it may stop, restart and flush it. */
export class PrivateRedis {
  private child: ChildProcess | undefined

  constructor (readonly port: number, private readonly extraArgs: string[] = []) {}

  get url (): string {
    return `redis://127.0.0.1:${this.port}`
  }

  async start (): Promise<void> {
    if (!hasRedisServer()) throw new Error(noRedisServer())
    const child = spawn('redis-server', [
      '--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--daemonize', 'no', ...this.extraArgs
    ], { stdio: 'ignore' })
    this.child = child
    // Even a test process that dies early (a tap timeout) must not leave its server behind.
    const killOnExit = (): void => { child.kill('SIGKILL') }
    process.once('exit', killOnExit)
    child.once('exit', () => process.removeListener('exit', killOnExit))
    const deadline = Date.now() + 5000
    for (;;) {
      const probe = new Redis(this.port, '127.0.0.1', { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 })
      probe.on('error', () => {})
      try {
        await probe.connect()
        await probe.ping()
        return
      } catch (err) {
        if (child.exitCode !== null || Date.now() > deadline) throw new Error(`redis-server on port ${this.port} did not start: ${String(err)}`)
        await new Promise(resolve => setTimeout(resolve, 25))
      } finally {
        probe.disconnect()
      }
    }
  }

  async stop (): Promise<void> {
    const child = this.child
    this.child = undefined
    if (child === undefined || child.exitCode !== null) return
    const exited = new Promise(resolve => child.once('exit', resolve))
    child.kill('SIGKILL')
    await exited
  }
}

export async function startPrivateRedis (t: Teardown, extraArgs: string[] = []): Promise<PrivateRedis> {
  const server = new PrivateRedis(await freePort(), extraArgs)
  await server.start()
  t.teardown(() => server.stop())
  return server
}

/** The Redis this test talks to: REDIS_URL, or a private server for this test. */
export async function redisUrl (t: Teardown): Promise<string> {
  const url = process.env.REDIS_URL
  if (url !== undefined && url !== '') return url
  return (await startPrivateRedis(t)).url
}

/** A client the test closes when it ends. */
export function client (t: Teardown, url: string, options: RedisOptions = {}): Redis {
  const redis = new Redis(url, options)
  // A private server may stop before this client does; its reconnect errors are expected.
  redis.on('error', () => {})
  t.teardown(() => redis.disconnect())
  return redis
}

/** A key prefix no other test (or run) shares. */
export function uniquePrefix (name: string): string {
  return `test-${name}-${randomBytes(4).toString('hex')}`
}

/** Every key under the prefix (SCAN, never KEYS on a shared server). */
export async function keysUnder (redis: Redis, prefix: string): Promise<string[]> {
  const keys: string[] = []
  let cursor = '0'
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000)
    cursor = next
    keys.push(...batch)
  } while (cursor !== '0')
  return keys.sort()
}

/**
 * The keys under the prefix once the store had its chance to remove them: a release goes out
 * with the store's next batch, just after the response that ended the request. Waits up to
 * `withinMs` for none to be left, then answers what is left (so a test still sees a leak).
 */
export async function keysLeft (redis: Redis, prefix: string, withinMs = 1000): Promise<string[]> {
  const deadline = Date.now() + withinMs
  for (;;) {
    const keys = await keysUnder(redis, prefix)
    if (keys.length === 0 || Date.now() >= deadline) return keys
    await new Promise(resolve => setTimeout(resolve, 5))
  }
}

/** Live holders of a subject, counted the way the store counts them (expired ones excluded). */
export async function holders (redis: Redis, prefix: string, tag: string): Promise<number> {
  const time = await redis.time()
  const now = Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000)
  return await redis.zcount(`${prefix}:{${tag}}:holders`, `(${now}`, '+inf')
}

export async function waiters (redis: Redis, prefix: string, tag: string): Promise<number> {
  const time = await redis.time()
  const now = Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000)
  return await redis.zcount(`${prefix}:{${tag}}:tickets`, `(${now}`, '+inf')
}

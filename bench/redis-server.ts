/**
 * The Redis the benchmark talks to: by default a private redis-server on a free port, so its
 * INFO commandstats count only the benchmark's commands (and it may be flushed between
 * scenarios). With --redis-url, an existing server: never flushed, keys under a unique prefix.
 */
import { Redis } from 'ioredis'
import { freePort, PrivateRedis } from '../test/helpers/redis'

export { freePort }

export class BenchRedis {
  /** The parent's own connection, for INFO. */
  readonly admin: Redis

  private constructor (readonly url: string, private readonly server?: PrivateRedis) {
    this.admin = new Redis(url, { lazyConnect: true })
    this.admin.on('error', () => {})
  }

  /** Whether the benchmark started this server (and so may flush it). */
  get owned (): boolean {
    return this.server !== undefined
  }

  static async start (url?: string): Promise<BenchRedis> {
    if (url !== undefined) {
      const redis = new BenchRedis(url)
      await redis.admin.connect()
      return redis
    }
    // The test harness' private server: a free port, no persistence, killed on exit.
    const server = new PrivateRedis(await freePort())
    await server.start()
    const redis = new BenchRedis(server.url, server)
    await redis.admin.connect()
    return redis
  }

  async version (): Promise<string> {
    const info = await this.admin.info('server')
    return /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown'
  }

  /** Calls per command (INFO commandstats) and CPU seconds used (INFO cpu) since the server started. */
  async snapshot (): Promise<RedisSnapshot> {
    const info = await this.admin.info('all')
    const commands = new Map<string, number>()
    for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) commands.set(match[1], Number(match[2]))
    const cpu = (name: string): number => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0)
    return { commands, cpuSeconds: cpu('used_cpu_user') + cpu('used_cpu_sys') }
  }

  /** Empties the private server between scenarios; refuses on a server we did not start. */
  async flushIfOwned (): Promise<void> {
    if (this.owned) await this.admin.flushall()
  }

  async stop (): Promise<void> {
    this.admin.disconnect()
    await this.server?.stop()
  }
}

export interface RedisSnapshot {
  commands: Map<string, number>
  cpuSeconds: number
}

export interface RedisDelta {
  /** Calls per command between the snapshots, without the parent's own INFO calls. */
  byCommand: Record<string, number>
  /** Every command Redis ran, including those run inside Lua scripts. */
  commands: number
  /** CPU time the Redis process used, µs. */
  cpuMicros: number
}

export function delta (before: RedisSnapshot, after: RedisSnapshot): RedisDelta {
  const byCommand: Record<string, number> = {}
  for (const [name, calls] of after.commands) {
    if (name === 'info' || name === 'flushall') continue
    const d = calls - (before.commands.get(name) ?? 0)
    if (d > 0) byCommand[name] = d
  }
  return {
    byCommand,
    commands: Object.values(byCommand).reduce((a, b) => a + b, 0),
    cpuMicros: Math.round((after.cpuSeconds - before.cpuSeconds) * 1e6)
  }
}

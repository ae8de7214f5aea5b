/**
 * The Redis the benchmark talks to: by default a private redis-server on a free port, so its
 * INFO commandstats count only the benchmark's commands (and it may be flushed between
 * scenarios). With --redis-url, an existing server: never flushed, keys under a unique prefix.
 */
import { Redis } from 'ioredis'
import { freePort, keysUnder, PrivateRedis } from '../test/helpers/redis'

export { freePort }

export class BenchRedis {
  /** The parent's own connection, for INFO. */
  readonly admin: Redis

  private constructor (readonly url: string, private readonly server?: PrivateRedis, private readonly startedElsewhere = false) {
    this.admin = new Redis(url, { lazyConnect: true })
    this.admin.on('error', () => {})
  }

  /** Whether the benchmark started this server (and so may flush it). */
  get owned (): boolean {
    return this.server !== undefined || this.startedElsewhere
  }

  /**
   * A server the benchmark started by other means (a master of its private cluster): it may
   * be flushed, but stop() only disconnects; whoever started it stops it.
   */
  static async attachOwned (url: string): Promise<BenchRedis> {
    const redis = new BenchRedis(url, undefined, true)
    await redis.admin.connect()
    return redis
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

  /**
   * Calls per command (INFO commandstats) and CPU seconds used (INFO cpu) since the server
   * started, and the memory it uses now (INFO memory).
   */
  async snapshot (): Promise<RedisSnapshot> {
    const info = await this.admin.info('all')
    const commands = new Map<string, number>()
    for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) commands.set(match[1], Number(match[2]))
    const field = (name: string): number => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0)
    return { commands, cpuSeconds: field('used_cpu_user') + field('used_cpu_sys'), usedMemory: field('used_memory'), clientsMemory: field('mem_clients_normal') }
  }

  /** Keys in the server's database (every key: only ours on a private server). */
  async dbsize (): Promise<number> {
    return await this.admin.dbsize()
  }

  /** Keys under the prefix (SCAN: right on a shared server too, and never blocks it). */
  async countKeysUnder (prefix: string): Promise<number> {
    return (await keysUnder(this.admin, prefix)).length
  }

  /**
   * Bytes the keys under the prefix take (MEMORY USAGE, every element counted): the data
   * alone, without the noise in used_memory (connections' buffers, script state).
   */
  async keyBytesUnder (prefix: string): Promise<number> {
    const keys = await keysUnder(this.admin, prefix)
    let bytes = 0
    // A thousand at a time: 100,000 held subjects must not mean 100,000 commands in flight.
    for (let i = 0; i < keys.length; i += 1000) {
      const sizes = await Promise.all(keys.slice(i, i + 1000).map(key => this.admin.call('MEMORY', 'USAGE', key, 'SAMPLES', '0') as Promise<number | null>))
      bytes += sizes.reduce<number>((a, n) => a + (n ?? 0), 0)
    }
    return bytes
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
  /** INFO memory used_memory, bytes. */
  usedMemory: number
  /** INFO memory mem_clients_normal: the connections' buffers and state, part of usedMemory, bytes. */
  clientsMemory: number
}

/**
 * used_memory without the connections' share (which comes and goes with processes and load).
 * Still moves by some 10-50 KB between two readings with nothing changed, and grows by a few
 * hundred KB the first time the scripts run: a difference means something only when it is
 * much larger, or measured against a reading taken after the scripts ran.
 */
export function dataMemory (snapshot: RedisSnapshot): number {
  return snapshot.usedMemory - snapshot.clientsMemory
}

export interface RedisDelta {
  /** Calls per command between the snapshots, without the parent's own INFO, DBSIZE and SCAN calls. */
  byCommand: Record<string, number>
  /** Every command Redis ran, including those run inside Lua scripts. */
  commands: number
  /** CPU time the Redis process used, µs. */
  cpuMicros: number
}

/** What the parent itself sends to look at the server: not part of what is measured. */
const PARENT_COMMANDS = new Set(['info', 'flushall', 'dbsize', 'scan', 'memory'])

export function delta (before: RedisSnapshot, after: RedisSnapshot): RedisDelta {
  const byCommand: Record<string, number> = {}
  for (const [name, calls] of after.commands) {
    // Redis 7 counts subcommands apart: 'memory|usage'.
    if (PARENT_COMMANDS.has(name.split('|')[0])) continue
    const d = calls - (before.commands.get(name) ?? 0)
    if (d > 0) byCommand[name] = d
  }
  return {
    byCommand,
    commands: Object.values(byCommand).reduce((a, b) => a + b, 0),
    cpuMicros: Math.round((after.cpuSeconds - before.cpuSeconds) * 1e6)
  }
}

/** Several servers' deltas as one (the masters of a cluster). */
export function sumDeltas (deltas: RedisDelta[]): RedisDelta {
  const byCommand: Record<string, number> = {}
  for (const d of deltas) {
    for (const [name, calls] of Object.entries(d.byCommand)) byCommand[name] = (byCommand[name] ?? 0) + calls
  }
  return {
    byCommand,
    commands: deltas.reduce((a, d) => a + d.commands, 0),
    cpuMicros: deltas.reduce((a, d) => a + d.cpuMicros, 0)
  }
}

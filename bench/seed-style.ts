/**
 * The seed's model, written from its description (see ../shared/docs/anchors.md): one Redis
 * sorted set per subject, member = a per-request id, score = Redis TIME. One Lua script
 * acquires: purge members older than the TTL; a member already present is refreshed; else
 * ZADD + EXPIRE when ZCARD < max. Release is ZREM of the exact member. A waiting request
 * tries at once, then retries after 100 ms, ×1.5 each time up to 2 s, every delay jittered
 * by ±20 % and clamped to [100 ms, 2 s]: every retry is a fresh race, no queue.
 *
 * Left out: the seed's per-user wait counter (INCR + TTL, refusing beyond limit + 20 waiters),
 * which would refuse most of the contended benchmark's 50 workers instead of letting them wait.
 */
import type { Redis } from 'ioredis'
import { randomBytes } from 'node:crypto'
import { sleep } from './common'

const ACQUIRE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - ttl)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], now, ARGV[1])
  return 1
end
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now, ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ttl)
  return 1
end
return 0
`

interface SeedCommands {
  seedStyleAcquire (key: string, member: string, max: number, ttlMs: number): Promise<number>
}

export interface SeedStyleOptions {
  prefix: string
  /** Slot TTL; the seed's is 15-30 min and never renewed. */
  ttlMs?: number
  maxWaitMs?: number
  initialMs?: number
  multiplier?: number
  maxMs?: number
  jitter?: number
}

export class SeedStyleSemaphore {
  private readonly client: Redis & SeedCommands
  private readonly processId = randomBytes(6).toString('base64url')
  private counter = 0
  private readonly o: Required<SeedStyleOptions>

  constructor (client: Redis, options: SeedStyleOptions) {
    client.defineCommand('seedStyleAcquire', { numberOfKeys: 1, lua: ACQUIRE })
    this.client = client as Redis & SeedCommands
    this.o = { ttlMs: 15 * 60_000, maxWaitMs: 30_000, initialMs: 100, multiplier: 1.5, maxMs: 2000, jitter: 0.2, ...options }
  }

  async acquire (subject: string, max: number, signal?: AbortSignal): Promise<() => Promise<void>> {
    const key = `${this.o.prefix}:concurrency:${subject}`
    const member = `${this.processId}-${++this.counter}`
    const deadline = Date.now() + this.o.maxWaitMs
    let base = 0
    for (;;) {
      const got = Number(await this.client.seedStyleAcquire(key, member, max, this.o.ttlMs))
      if (got === 1) {
        return async () => { await this.client.zrem(key, member) }
      }
      if (Date.now() >= deadline) throw new Error('seed-style: wait timeout')
      base = base === 0 ? this.o.initialMs : Math.min(base * this.o.multiplier, this.o.maxMs)
      const factor = 1 - this.o.jitter + Math.random() * 2 * this.o.jitter
      const delay = Math.min(this.o.maxMs, Math.max(this.o.initialMs, base * factor))
      await sleep(Math.min(delay, Math.max(0, deadline - Date.now())), signal)
    }
  }
}

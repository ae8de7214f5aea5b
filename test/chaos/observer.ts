/**
 * What the chaos suite reads from Redis, on its own connection: every subject's live holders
 * and waiters in one atomic script (the sampler, many times a second for the whole run), and
 * the live entries of one instance (a killed or suspended process).
 */
import { Redis } from 'ioredis'
import { sleep } from '../helpers/app'

/** Lua: Redis time in ms, then per subject live holders, live waiters, and when over its max the live holders with scores. */
const SAMPLE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = { now }
for i = 1, #ARGV do
  local holders, tickets = KEYS[2 * i - 1], KEYS[2 * i]
  local held = redis.call('ZCOUNT', holders, '(' .. now, '+inf')
  out[#out + 1] = held
  out[#out + 1] = redis.call('ZCOUNT', tickets, '(' .. now, '+inf')
  if held > tonumber(ARGV[i]) then
    out[#out + 1] = redis.call('ZRANGEBYSCORE', holders, '(' .. now, '+inf', 'WITHSCORES')
  else
    out[#out + 1] = {}
  end
end
return out
`

/**
 * Lua: Redis time, then the live holders and live tickets (each as '<key> <member> <expiry>')
 * and the number of holder entries, live or expired, whose member starts with ARGV[1].
 */
const MEMBERS_OF = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local prefix = ARGV[1]
local liveHolders, liveTickets, present = {}, {}, 0
for i = 1, #KEYS, 2 do
  local entries = redis.call('ZRANGE', KEYS[i], 0, -1, 'WITHSCORES')
  for j = 1, #entries, 2 do
    if string.sub(entries[j], 1, #prefix) == prefix then
      present = present + 1
      if tonumber(entries[j + 1]) > now then liveHolders[#liveHolders + 1] = KEYS[i] .. ' ' .. entries[j] .. ' ' .. entries[j + 1] end
    end
  end
  local tickets = redis.call('ZRANGEBYSCORE', KEYS[i + 1], '(' .. now, '+inf', 'WITHSCORES')
  for j = 1, #tickets, 2 do
    if string.sub(tickets[j], 1, #prefix) == prefix then liveTickets[#liveTickets + 1] = KEYS[i + 1] .. ' ' .. tickets[j] .. ' ' .. tickets[j + 1] end
  end
end
return { now, liveHolders, liveTickets, present }
`

export interface SubjectSample {
  max: number
  /** Highest live holder count seen. */
  peak: number
  peakWaiters: number
  /** Samples over max, with the live holders (member and lease expiry) read in the same script. */
  overs: Array<{ at: number, held: number, members: string[] }>
}

export interface MembersOf {
  now: number
  /** '<key> <member> <lease expiry>' */
  liveHolders: string[]
  /** '<key> <member> <ticket expiry>' */
  liveTickets: string[]
  /** Holder entries of the instance still in Redis, live or expired. */
  present: number
}

export class Observer {
  readonly redis: Redis
  private readonly tags: string[]
  private readonly keys: string[]
  private readonly maxes: string[]
  private running = false
  private loop: Promise<void> | undefined
  samples = 0
  errors = 0
  /** The longest time without a successful sample, outside Redis outages as well (ms). */
  longestGapMs = 0
  readonly subjects: Map<string, SubjectSample>

  constructor (url: string, readonly prefix: string, subjects: Record<string, number>) {
    // Fails at once while Redis is down (the sampler records the gap), reconnects every 20 ms.
    this.redis = new Redis(url, { enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => 20 })
    this.redis.on('error', () => {})
    this.tags = Object.keys(subjects)
    this.keys = this.tags.flatMap(tag => [`${prefix}:{${tag}}:holders`, `${prefix}:{${tag}}:tickets`])
    this.maxes = this.tags.map(tag => String(subjects[tag]))
    this.subjects = new Map(this.tags.map(tag => [tag, { max: subjects[tag], peak: 0, peakWaiters: 0, overs: [] }]))
  }

  async ready (): Promise<void> {
    for (let i = 0; this.redis.status !== 'ready'; i++) {
      if (i > 500) throw new Error('the observer could not connect to Redis')
      await sleep(10)
    }
  }

  /** One atomic read of every subject: Redis time, then per tag live holders and waiters. */
  async read (): Promise<{ now: number, counts: Map<string, { held: number, waiting: number, members: string[] }> }> {
    const reply = await this.redis.eval(SAMPLE, this.keys.length, ...this.keys, ...this.maxes) as unknown[]
    const counts = new Map<string, { held: number, waiting: number, members: string[] }>()
    this.tags.forEach((tag, i) => {
      const members = reply[3 + 3 * i] as string[]
      const pairs: string[] = []
      for (let j = 0; j < members.length; j += 2) pairs.push(`${members[j]}@${members[j + 1]}`)
      counts.set(tag, { held: Number(reply[1 + 3 * i]), waiting: Number(reply[2 + 3 * i]), members: pairs })
    })
    return { now: Number(reply[0]), counts }
  }

  /** Starts sampling every `everyMs` until stop(). */
  start (everyMs = 5): void {
    this.running = true
    let last = Date.now()
    this.loop = (async () => {
      while (this.running) {
        try {
          const { now, counts } = await this.read()
          this.samples++
          const at = Date.now()
          this.longestGapMs = Math.max(this.longestGapMs, at - last)
          last = at
          for (const [tag, { held, waiting, members }] of counts) {
            const subject = this.subjects.get(tag)!
            subject.peak = Math.max(subject.peak, held)
            subject.peakWaiters = Math.max(subject.peakWaiters, waiting)
            if (held > subject.max && subject.overs.length < 20) subject.overs.push({ at: now, held, members })
          }
        } catch {
          this.errors++
          await sleep(20)
          continue
        }
        await sleep(everyMs)
      }
    })()
  }

  async stop (): Promise<void> {
    this.running = false
    await this.loop
  }

  /** Resets the gap measure (after an outage, when the gap is expected). */
  resetGap (): void {
    this.longestGapMs = 0
  }

  /** The live holders and tickets of one instance across every subject, and its holder entries still present. */
  async membersOf (instanceId: string): Promise<MembersOf> {
    const reply = await this.redis.eval(MEMBERS_OF, this.keys.length, ...this.keys, `${instanceId}:`) as [number, string[], string[], number]
    return { now: Number(reply[0]), liveHolders: reply[1], liveTickets: reply[2], present: Number(reply[3]) }
  }

  /** Live holder members (with expiry) of one subject. */
  async liveHolders (tag: string): Promise<Array<{ member: string, expiry: number }>> {
    const [seconds, micros] = await this.redis.time()
    const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000)
    const flat = await this.redis.zrangebyscore(`${this.prefix}:{${tag}}:holders`, `(${now}`, '+inf', 'WITHSCORES')
    const out: Array<{ member: string, expiry: number }> = []
    for (let i = 0; i < flat.length; i += 2) out.push({ member: flat[i], expiry: Number(flat[i + 1]) })
    return out
  }

  async redisNow (): Promise<number> {
    const [seconds, micros] = await this.redis.time()
    return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000)
  }

  close (): void {
    this.redis.disconnect()
  }
}

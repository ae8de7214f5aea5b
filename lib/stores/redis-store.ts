/**
 * The distributed store: per subject one sorted set of holders and one of waiting tickets,
 * changed only by Lua scripts (run by EVALSHA through ioredis' defineCommand) so every
 * check-and-insert is atomic and holders never exceed `max`. Works with a single Redis or an
 * ioredis Cluster: a script touches only the keys it is given, all under one hash tag.
 */
import type { AcquireOutcome, Hold, SlotStore, TryAcquireArgs } from './store'
import { TRY_ACQUIRE } from './scripts/try-acquire'
import { RENEW } from './scripts/renew'

type Reply = Promise<number>
type PipelineResult = Array<[Error | null, unknown]> | null

interface ScriptCommands {
  fastifySlotsTryAcquire (holders: string, waiters: string, member: string, max: number, leaseMs: number, maxWaiters: number, ticketTtlMs: number): Reply
  fastifySlotsRenew (holders: string, member: string, leaseMs: number): Reply
}

interface Pipeline extends ScriptCommands {
  exec (): Promise<PipelineResult>
}

/** The part of an ioredis `Redis` or `Cluster` client the store uses. */
export interface RedisClientLike {
  defineCommand (name: string, definition: { numberOfKeys: number, lua: string }): void
  zrem (key: string, ...members: string[]): Promise<number>
  pipeline (): unknown
  readonly isCluster?: boolean
}

export interface RedisStoreOptions {
  client: RedisClientLike
  /** Key prefix; keys are `<prefix>:{<tag>}:holders` and `<prefix>:{<tag>}:waiters`. */
  prefix: string
}

export class RedisStore implements SlotStore {
  readonly prefix: string
  private readonly client: RedisClientLike & ScriptCommands

  constructor ({ client, prefix }: RedisStoreOptions) {
    this.prefix = prefix
    const scripted = client as RedisClientLike & Partial<ScriptCommands>
    // defineCommand is idempotent per client, but a shared client needs it only once.
    if (typeof scripted.fastifySlotsTryAcquire !== 'function') {
      client.defineCommand('fastifySlotsTryAcquire', { numberOfKeys: 2, lua: TRY_ACQUIRE })
      client.defineCommand('fastifySlotsRenew', { numberOfKeys: 1, lua: RENEW })
    }
    this.client = scripted as RedisClientLike & ScriptCommands
  }

  holdersKey (tag: string): string {
    return `${this.prefix}:{${tag}}:holders`
  }

  waitersKey (tag: string): string {
    return `${this.prefix}:{${tag}}:waiters`
  }

  async tryAcquire ({ tag, member, max, leaseMs, maxWaiters, ticketTtlMs }: TryAcquireArgs): Promise<AcquireOutcome> {
    const outcome = await this.client.fastifySlotsTryAcquire(
      this.holdersKey(tag), this.waitersKey(tag), member, max, leaseMs, maxWaiters, ticketTtlMs)
    return Number(outcome) as AcquireOutcome
  }

  async release ({ tag, member }: Hold): Promise<void> {
    await this.client.zrem(this.holdersKey(tag), member)
  }

  async leaveQueue ({ tag, member }: Hold): Promise<void> {
    await this.client.zrem(this.waitersKey(tag), member)
  }

  async renew (holds: readonly Hold[], leaseMs: number): Promise<boolean[]> {
    if (holds.length === 0) return []
    if (this.client.isCluster === true) {
      // A Cluster pipeline must stay within one node; holds spread over shards go one by one
      // (ioredis still sends those issued in the same tick together per node).
      const replies = await Promise.all(holds.map(h => this.client.fastifySlotsRenew(this.holdersKey(h.tag), h.member, leaseMs)))
      return replies.map(r => Number(r) === 1)
    }
    const pipeline = this.client.pipeline() as Pipeline
    for (const h of holds) pipeline.fastifySlotsRenew(this.holdersKey(h.tag), h.member, leaseMs)
    const results = await pipeline.exec()
    if (results === null) throw new Error('renew pipeline was discarded')
    return results.map(([err, reply]) => {
      if (err !== null) throw err
      return Number(reply) === 1
    })
  }
}

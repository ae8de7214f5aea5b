/**
 * The distributed store: per subject a sorted set of holders, one of waiting tickets and one
 * of arrival order (fair mode), changed only by Lua scripts (run by EVALSHA through ioredis'
 * defineCommand) so every check-and-insert is atomic and holders never exceed `max`. Works
 * with a single Redis or an ioredis Cluster: a script touches only the keys it is given, all
 * under the subject's hash tag.
 */
import type { AcquireOutcome, Hold, ReleaseWatch, SlotStore, TryAcquireArgs } from './store'
import { ReleaseSubscriber, type SubscriberLike } from './release-subscriber'
import { TRY_ACQUIRE } from './scripts/try-acquire'
import { RENEW } from './scripts/renew'
import { LEAVE_QUEUE, RELEASE } from './scripts/release'

type Reply = Promise<number>
type PipelineResult = Array<[Error | null, unknown]> | null

interface ScriptCommands {
  fastifySlotsTryAcquire (holders: string, tickets: string, queue: string, member: string, max: number, leaseMs: number, maxWaiters: number, ticketTtlMs: number, fair: number, ahead: number): Reply
  fastifySlotsRenew (key: string, member: string, ttlMs: number): Reply
  fastifySlotsRelease (holders: string, tickets: string, member: string, channel: string, sharded: number): Reply
  fastifySlotsLeaveQueue (tickets: string, queue: string, member: string): Reply
}

interface Pipeline extends ScriptCommands {
  exec (): Promise<PipelineResult>
}

/** The part of an ioredis `Redis` or `Cluster` client the store uses. */
export interface RedisClientLike {
  defineCommand (name: string, definition: { numberOfKeys: number, lua: string }): void
  pipeline (): unknown
  duplicate (): unknown
  readonly isCluster?: boolean
}

export interface RedisStoreOptions {
  client: RedisClientLike
  /** Key prefix; a subject's keys are `<prefix>:{<tag>}:<holders|waiters|queue>` (waiters: the tickets). */
  prefix: string
  /** Wake waiters in other processes through pub/sub on release. Default true. */
  wakeups?: boolean
}

const SCRIPTS: Array<[keyof ScriptCommands, number, string]> = [
  ['fastifySlotsTryAcquire', 3, TRY_ACQUIRE],
  ['fastifySlotsRenew', 1, RENEW],
  ['fastifySlotsRelease', 2, RELEASE],
  ['fastifySlotsLeaveQueue', 2, LEAVE_QUEUE]
]

export class RedisStore implements SlotStore {
  readonly prefix: string
  private readonly client: RedisClientLike & ScriptCommands
  private readonly subscriber: ReleaseSubscriber | undefined
  /** Sharded pub/sub on a single server; ioredis Cluster subscribers need classic pub/sub. */
  private readonly sharded: number

  constructor ({ client, prefix, wakeups = true }: RedisStoreOptions) {
    this.prefix = prefix
    const scripted = client as RedisClientLike & Partial<ScriptCommands>
    for (const [name, numberOfKeys, lua] of SCRIPTS) {
      // defineCommand is idempotent per client, but a shared client needs it only once.
      if (typeof scripted[name] !== 'function') client.defineCommand(name, { numberOfKeys, lua })
    }
    this.client = scripted as RedisClientLike & ScriptCommands
    this.sharded = client.isCluster === true ? 0 : 1
    this.subscriber = wakeups
      ? new ReleaseSubscriber(() => client.duplicate() as SubscriberLike, this.sharded === 1)
      : undefined
  }

  key (tag: string, structure: 'holders' | 'waiters' | 'queue'): string {
    return `${this.prefix}:{${tag}}:${structure}`
  }

  channel (tag: string): string {
    return `${this.prefix}:{${tag}}:released`
  }

  async tryAcquire ({ tag, member, max, leaseMs, maxWaiters, ticketTtlMs, fair, ahead }: TryAcquireArgs): Promise<AcquireOutcome> {
    const outcome = await this.client.fastifySlotsTryAcquire(
      this.key(tag, 'holders'), this.key(tag, 'waiters'), this.key(tag, 'queue'),
      member, max, leaseMs, maxWaiters, ticketTtlMs, fair === true ? 1 : 0, ahead ?? 0)
    return Number(outcome) as AcquireOutcome
  }

  async release ({ tag, member }: Hold): Promise<void> {
    await this.client.fastifySlotsRelease(this.key(tag, 'holders'), this.key(tag, 'waiters'), member, this.channel(tag), this.sharded)
  }

  async leaveQueue ({ tag, member }: Hold): Promise<void> {
    await this.client.fastifySlotsLeaveQueue(this.key(tag, 'waiters'), this.key(tag, 'queue'), member)
  }

  async renew (holds: readonly Hold[], leaseMs: number): Promise<boolean[]> {
    return await this.renewAll(holds, 'holders', leaseMs)
  }

  async refreshTickets (holds: readonly Hold[], ticketTtlMs: number): Promise<void> {
    await this.renewAll(holds, 'waiters', ticketTtlMs)
  }

  watch (tag: string, onRelease: () => void): ReleaseWatch {
    if (this.subscriber === undefined) return { ready: Promise.resolve(), stop: () => {} }
    return this.subscriber.watch(this.channel(tag), onRelease)
  }

  close (): void {
    this.subscriber?.close()
  }

  /** Runs the renew script for every hold in one round trip. */
  private async renewAll (holds: readonly Hold[], structure: 'holders' | 'waiters', ttlMs: number): Promise<boolean[]> {
    if (holds.length === 0) return []
    if (this.client.isCluster === true) {
      // A Cluster pipeline must stay within one node; holds spread over shards go one by one
      // (ioredis still sends those issued in the same tick together per node).
      const replies = await Promise.all(holds.map(h => this.client.fastifySlotsRenew(this.key(h.tag, structure), h.member, ttlMs)))
      return replies.map(r => Number(r) === 1)
    }
    const pipeline = this.client.pipeline() as Pipeline
    for (const h of holds) pipeline.fastifySlotsRenew(this.key(h.tag, structure), h.member, ttlMs)
    const results = await pipeline.exec()
    if (results === null) throw new Error('renew pipeline was discarded')
    return results.map(([err, reply]) => {
      if (err !== null) throw err
      return Number(reply) === 1
    })
  }
}

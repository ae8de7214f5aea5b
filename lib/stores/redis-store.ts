/**
 * The distributed store: per subject a sorted set of holders, one of waiting tickets and one
 * of arrival order (fair mode), changed only by Lua scripts (run by EVALSHA through ioredis'
 * defineCommand) so every check-and-insert is atomic and holders never exceed `max`. Works
 * with a single Redis or an ioredis Cluster: a script touches only the keys it is given, all
 * under the subject's hash tag.
 */
import type { AcquireOutcome, Hold, ReleaseWatch, SlotStore, SubjectLoad, TryAcquireArgs } from './store'
import { ReleaseSubscriber, type SubscriberLike } from './release-subscriber'
import { TRY_ACQUIRE } from './scripts/try-acquire'
import { RENEW } from './scripts/renew'
import { LEAVE_QUEUE, RELEASE } from './scripts/release'
import { COUNT_LIVE } from './scripts/count-live'

type Reply = Promise<number>
type PipelineResult = Array<[Error | null, unknown]> | null

interface ScriptCommands {
  fastifySlotsTryAcquire (holders: string, tickets: string, queue: string, member: string, max: number, leaseMs: number, maxWaiters: number, ticketTtlMs: number, fair: number, ahead: number): Reply
  fastifySlotsRenew (key: string, member: string, ttlMs: number): Reply
  fastifySlotsRelease (holders: string, tickets: string, member: string, channel: string, sharded: number): Reply
  fastifySlotsLeaveQueue (tickets: string, queue: string, member: string): Reply
  fastifySlotsCountLive (holders: string, tickets: string): Promise<[number, number]>
}

interface Pipeline extends ScriptCommands {
  exec (): Promise<PipelineResult>
}

/** The part of an ioredis `Redis` or `Cluster` client the store uses. */
export interface RedisClientLike {
  defineCommand (name: string, definition: { numberOfKeys: number, lua: string }): void
  pipeline (): unknown
  duplicate (...args: unknown[]): unknown
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
  ['fastifySlotsLeaveQueue', 2, LEAVE_QUEUE],
  ['fastifySlotsCountLive', 2, COUNT_LIVE]
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
      // The subscriber queues its SUBSCRIBEs until connected, even when the main client fails
      // fast with enableOfflineQueue: false, or its first subscriptions would be lost.
      ? new ReleaseSubscriber(() => (client.isCluster === true
        ? client.duplicate(undefined, { enableOfflineQueue: true })
        : client.duplicate({ enableOfflineQueue: true })) as SubscriberLike, this.sharded === 1)
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

  async release ({ tag, member }: Hold): Promise<boolean> {
    return Number(await this.client.fastifySlotsRelease(this.key(tag, 'holders'), this.key(tag, 'waiters'), member, this.channel(tag), this.sharded)) === 1
  }

  async leaveQueue ({ tag, member }: Hold): Promise<void> {
    await this.client.fastifySlotsLeaveQueue(this.key(tag, 'waiters'), this.key(tag, 'queue'), member)
  }

  async renew (holds: readonly Hold[], leaseMs: number): Promise<boolean[]> {
    const replies = await this.batch(holds, (c, h) => c.fastifySlotsRenew(this.key(h.tag, 'holders'), h.member, leaseMs))
    return replies.map(r => Number(r) === 1)
  }

  async refreshTickets (holds: readonly Hold[], ticketTtlMs: number): Promise<void> {
    await this.batch(holds, (c, h) => c.fastifySlotsRenew(this.key(h.tag, 'waiters'), h.member, ticketTtlMs))
  }

  async usage (tags: readonly string[]): Promise<SubjectLoad[]> {
    const replies = await this.batch(tags, (c, tag) => c.fastifySlotsCountLive(this.key(tag, 'holders'), this.key(tag, 'waiters')))
    return replies.map(reply => {
      const [held, waiting] = reply as [number, number]
      return { held: Number(held), waiting: Number(waiting) }
    })
  }

  watch (tag: string, onRelease: () => void): ReleaseWatch {
    if (this.subscriber === undefined) return { ready: Promise.resolve(), stop: () => {} }
    return this.subscriber.watch(this.channel(tag), onRelease)
  }

  close (): void {
    this.subscriber?.close()
  }

  /** One script call per item, all in one round trip: a pipeline, or per node on a Cluster. */
  private async batch<T> (items: readonly T[], call: (commands: ScriptCommands, item: T) => Promise<unknown>): Promise<unknown[]> {
    if (items.length === 0) return []
    if (this.client.isCluster === true) {
      // A Cluster pipeline must stay within one slot; ioredis sends commands issued in the same
      // tick to each node together.
      return await Promise.all(items.map(item => call(this.client, item)))
    }
    const pipeline = this.client.pipeline() as Pipeline
    for (const item of items) call(pipeline, item)
    const results = await pipeline.exec()
    if (results === null) throw new Error('the pipeline was discarded')
    return results.map(([err, reply]) => {
      if (err !== null) throw err
      return reply
    })
  }
}

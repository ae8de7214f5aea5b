/**
 * The distributed store: per subject a sorted set of holders, one of waiting tickets and one
 * of arrival order, changed only by one Lua script (run by EVALSHA through ioredis'
 * defineCommand) so every check-and-insert is atomic and holders never exceed `max`. The
 * operations a process issues in one tick travel together in one call of that script. Works
 * with a single Redis or an ioredis Cluster: a script touches only the keys it is given, all
 * under one subject's hash tag.
 */
import { memberInstance, type AcquireOutcome, type GrantListener, type GrantSubscription, type Hold, type ReleaseArgs, type SlotStore, type SubjectLoad, type TryAcquireArgs } from './store'
import { GrantSubscriber, type SubscriberLike } from './grant-subscriber'
import { ScriptBatcher, type BatchArg, type SubjectKeys } from './script-batcher'
import { RUN_BATCH } from './scripts/run-batch'

interface BatchCommand {
  fastifySlotsBatch (...numKeysKeysAndArgs: BatchArg[]): Promise<unknown>
}

/** The part of an ioredis `Redis` or `Cluster` client the store uses. */
export interface RedisClientLike {
  defineCommand (name: string, definition: { numberOfKeys?: number, lua: string }): void
  duplicate (...args: unknown[]): unknown
  readonly isCluster?: boolean
}

export interface RedisStoreOptions {
  client: RedisClientLike
  /** Key prefix; a subject's keys are `<prefix>:{<tag>}:<holders|waiters|queue>` (waiters: the tickets). */
  prefix: string
  /** Hand slots to waiters in other processes through pub/sub on release. Default true. */
  wakeups?: boolean
}

export class RedisStore implements SlotStore {
  readonly prefix: string
  private readonly client: RedisClientLike & BatchCommand
  private readonly batcher: ScriptBatcher
  private readonly subscriber: GrantSubscriber | undefined
  private readonly grantListeners = new Map<string, GrantListener>()
  /** Sharded pub/sub on a single server; ioredis Cluster subscribers need classic pub/sub. */
  private readonly sharded: boolean

  constructor ({ client, prefix, wakeups = true }: RedisStoreOptions) {
    this.prefix = prefix
    const scripted = client as RedisClientLike & Partial<BatchCommand>
    // A shared client needs the command defined only once. No numberOfKeys: a batch's key count varies.
    if (typeof scripted.fastifySlotsBatch !== 'function') client.defineCommand('fastifySlotsBatch', { lua: RUN_BATCH })
    this.client = scripted as RedisClientLike & BatchCommand
    const cluster = client.isCluster === true
    this.sharded = !cluster
    this.batcher = new ScriptBatcher((keys, args) => this.client.fastifySlotsBatch(keys.length, ...keys, this.grantChannelPrefix, this.sharded && this.subscriber?.isSharded !== false ? 1 : 0, ...args), cluster)
    this.subscriber = wakeups
      // The subscriber queues its SUBSCRIBEs until connected, even when the main client fails
      // fast with enableOfflineQueue: false, or its first subscriptions would be lost.
      ? new GrantSubscriber(() => (cluster
        ? client.duplicate(undefined, { enableOfflineQueue: true })
        : client.duplicate({ enableOfflineQueue: true })) as SubscriberLike, this.sharded)
      : undefined
  }

  key (tag: string, structure: 'holders' | 'waiters' | 'queue'): string {
    return `${this.prefix}:{${tag}}:${structure}`
  }

  /** Where slots granted to an instance's waiters are announced. */
  grantChannel (instanceId: string): string {
    return this.grantChannelPrefix + instanceId
  }

  private get grantChannelPrefix (): string {
    return `${this.prefix}:grants:`
  }

  async tryAcquire ({ tag, member, max, leaseMs, maxWaiters, ticketTtlMs, fair, ahead, queued }: TryAcquireArgs): Promise<AcquireOutcome> {
    const reply = await this.run(tag, ['a', member, max, leaseMs, maxWaiters, ticketTtlMs, fair === true ? 1 : 0, ahead ?? 0, queued === false ? 0 : 1])
    return Number(reply) as AcquireOutcome
  }

  async release ({ tag, member, max, leaseMs, claimMs }: ReleaseArgs): Promise<boolean> {
    const reply = await this.run(tag, ['r', member, max ?? 0, leaseMs ?? 0, claimMs ?? 0]) as unknown[]
    // Slots granted to waiters of the releasing instance come back in the reply.
    if (reply.length > 1) {
      const listener = this.grantListeners.get(memberInstance(member))
      for (let i = 1; i < reply.length; i++) listener?.(String(reply[i]), false)
    }
    return Number(reply[0]) === 1
  }

  async leaveQueue ({ tag, member }: Hold): Promise<void> {
    await this.run(tag, ['l', member])
  }

  async renew (holds: readonly Hold[], leaseMs: number): Promise<boolean[]> {
    return await Promise.all(holds.map(async ({ tag, member }) => Number(await this.run(tag, ['h', member, leaseMs])) === 1))
  }

  async refreshTickets (holds: readonly Hold[], ticketTtlMs: number): Promise<boolean[]> {
    return await Promise.all(holds.map(async ({ tag, member }) => Number(await this.run(tag, ['t', member, ticketTtlMs])) === 1))
  }

  async usage (tags: readonly string[]): Promise<SubjectLoad[]> {
    return await Promise.all(tags.map(async tag => {
      const [held, waiting] = await this.run(tag, ['c']) as [number, number]
      return { held: Number(held), waiting: Number(waiting) }
    }))
  }

  onGrant (instanceId: string, listener: GrantListener): GrantSubscription {
    this.grantListeners.set(instanceId, listener)
    const subscription = this.subscriber?.listen(this.grantChannel(instanceId), member => listener(member, true))
    return {
      ready: subscription?.ready ?? Promise.resolve(),
      stop: () => {
        if (this.grantListeners.get(instanceId) === listener) this.grantListeners.delete(instanceId)
        subscription?.stop()
      }
    }
  }

  close (): void {
    this.subscriber?.close()
  }

  private run (tag: string, args: readonly BatchArg[]): Promise<unknown> {
    const keys: SubjectKeys = [this.key(tag, 'holders'), this.key(tag, 'waiters'), this.key(tag, 'queue')]
    return this.batcher.run(tag, keys, args)
  }
}

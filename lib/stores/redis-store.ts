/**
 * The distributed store: per subject a sorted set of holders, one of waiting tickets and one
 * of arrival order, changed only by one Lua script (run by EVALSHA through ioredis'
 * defineCommand) so every check-and-insert is atomic and nobody is admitted beyond its own
 * `max` (see store.ts for the admission rule). The operations a process issues in one tick
 * travel together in one call of that script. Works with a single Redis or an ioredis
 * Cluster: a script touches only the keys it is given, all under one subject's hash tag.
 */
import {
  AcquireOutcome, parseMember, type AcquireSetArgs, precedenceUs, STRICT_PRIORITY_STEP_MS, type GrantListener, type GrantSubscription, type MemberRef, type ReleaseArgs, type ReleaseOutcome,
  type SlotStore, type SubjectLoad, type TryAcquireAnswer, type TryAcquireArgs
} from './store'
import { GrantSubscriber, type SubscriberLike } from './grant-subscriber'
import { ScriptBatcher } from './script-batcher'
import { BatchCaller, type RedisClientLike } from './batch-caller'
import { encodeOperation, type OperationArgs, type OperationName } from './scripts/operations'

export type { RedisClientLike }

export interface RedisStoreOptions {
  client: RedisClientLike
  /**
   * Key prefix; a subject's keys are `<prefix>:{<tag>}:<holders|tickets|queue>`, or with a
   * hashTag `<prefix>:{<hash tag>}:<tag>:<holders|tickets|queue>`.
   */
  prefix: string
  /**
   * Redis Cluster: the hash tag of a subject's keys (a function of the subject only, the same
   * on every instance), so subjects taken together by acquireSet share a shard. Undefined
   * (the default, or as its answer): the subject's own tag.
   */
  hashTag?: (type: string, id: string) => string | undefined
  /** Tell other processes of the slots granted to their waiters through pub/sub. Default true. */
  wakeups?: boolean
}

export class RedisStore implements SlotStore {
  readonly prefix: string
  private readonly caller: BatchCaller
  private readonly batcher: ScriptBatcher
  private readonly subscriber: GrantSubscriber | undefined
  private readonly grantListeners = new Map<string, GrantListener>()
  /** Sharded pub/sub on a single server; ioredis Cluster subscribers need classic pub/sub. */
  private readonly sharded: boolean
  private readonly cluster: boolean
  private readonly hashTag: RedisStoreOptions['hashTag']

  constructor ({ client, prefix, wakeups = true, hashTag }: RedisStoreOptions) {
    if (hashTag !== undefined && typeof hashTag !== 'function') throw new TypeError('fastify-slots: RedisStore hashTag must be a function (type, id) => string | undefined')
    this.prefix = prefix
    this.hashTag = hashTag
    this.caller = new BatchCaller(client)
    const cluster = client.isCluster === true
    this.cluster = cluster
    this.sharded = !cluster
    this.batcher = new ScriptBatcher((keys, args) => this.caller.send(keys, [this.grantChannelPrefix, this.sharded && this.subscriber?.isSharded !== false ? 1 : 0, ...args]), cluster)
    this.subscriber = wakeups
      // The subscriber queues its SUBSCRIBEs until connected, even when the main client fails
      // fast with enableOfflineQueue: false, or its first subscriptions would be lost.
      ? new GrantSubscriber(() => (cluster
        ? client.duplicate(undefined, { enableOfflineQueue: true })
        : client.duplicate({ enableOfflineQueue: true })) as SubscriberLike, this.sharded)
      : undefined
  }

  key (tag: string, structure: 'holders' | 'tickets' | 'queue'): string {
    return `${this.keyBase(tag)}:${structure}`
  }

  /** What a subject's three keys share (the hashTag function runs once per subject an operation names). */
  private keyBase (tag: string): string {
    const group = this.groupOf(tag)
    return group === undefined ? `${this.prefix}:{${tag}}` : `${this.prefix}:{${group}}:${tag}`
  }

  /** The keys an operation on the subject runs on: holders, tickets, queue. */
  private subjectKeys (tag: string): [string, string, string] {
    const base = this.keyBase(tag)
    return [`${base}:holders`, `${base}:tickets`, `${base}:queue`]
  }

  /** The subject's hash tag when the hashTag option gives one (encoded: no brace can end it early). */
  private groupOf (tag: string): string | undefined {
    if (this.hashTag === undefined) return undefined
    const colon = tag.indexOf(':')
    const group = this.hashTag(tag.slice(0, colon), decodeURIComponent(tag.slice(colon + 1)))
    if (group !== undefined && typeof group !== 'string') throw new TypeError(`fastify-slots: hashTag must return a string or undefined, got ${typeof group}`)
    return group === undefined ? undefined : encodeURIComponent(group)
  }

  /** On a Cluster, subjects under one hash tag; a single server takes any set in one step. */
  groupsOf (tags: readonly string[]): number[][] | undefined {
    if (!this.cluster) return undefined
    const groups = new Map<string, number[]>()
    tags.forEach((tag, i) => {
      const group = this.groupOf(tag) ?? tag
      const indexes = groups.get(group)
      if (indexes === undefined) groups.set(group, [i])
      else indexes.push(i)
    })
    return groups.size === 1 ? undefined : [...groups.values()]
  }

  /** Where slots granted to an instance's waiters are announced. */
  grantChannel (instanceId: string): string {
    return this.grantChannelPrefix + instanceId
  }

  private get grantChannelPrefix (): string {
    return `${this.prefix}:grants:`
  }

  async tryAcquire (args: TryAcquireArgs): Promise<TryAcquireAnswer> {
    const reply = await this.run('tryAcquire', args.tag, attemptArgs(args))
    // A ticket comes with its place in line: { 0, ahead }.
    if (Array.isArray(reply)) return { outcome: AcquireOutcome.Full, ahead: Number(reply[1]) }
    return Number(reply) as AcquireOutcome
  }

  async poll (args: TryAcquireArgs): Promise<AcquireOutcome> {
    const reply = await this.run<'poll'>('poll', args.tag, attemptArgs(args)) as unknown[]
    this.reportGrants(args, reply)
    return Number(reply[0]) as AcquireOutcome
  }

  async acquireSet ({ members, first, leaseMs, maxWaiters, ticketTtlMs, fair, priority, priorityStepMs }: AcquireSetArgs): Promise<TryAcquireAnswer> {
    const keys: string[] = []
    const args: Array<string | number> = ['S', members.length, first ? 1 : 0, leaseMs, maxWaiters, ticketTtlMs, fair === true ? 1 : 0, precedenceUs(priority, priorityStepMs)]
    for (const { tag, member, max, ahead } of members) {
      keys.push(...this.subjectKeys(tag))
      args.push(member, max, ahead ?? 0)
    }
    const reply = await this.batcher.run(members[0].tag, keys, args)
    if (!Array.isArray(reply)) return Number(reply) as AcquireOutcome
    if (first) return { outcome: AcquireOutcome.Full, ahead: Number(reply[1]) }
    // { outcome, then subject index (from 1), member of each waiter of ours it granted or told }.
    const listener = this.grantListeners.get(parseMember(members[0].member).instance)
    for (let i = 1; i + 1 < reply.length; i += 2) listener?.({ tag: members[Number(reply[i]) - 1].tag, member: String(reply[i + 1]) }, false)
    return Number(reply[0]) as AcquireOutcome
  }

  async release ({ tag, member, leaseMs, mayHaveLapsed }: ReleaseArgs): Promise<ReleaseOutcome> {
    const reply = await this.run('release', tag, { member, lease: leaseMs ?? 0, check: mayHaveLapsed === true ? 1 : 0 }) as unknown[]
    this.reportGrants({ tag, member }, reply)
    return Number(reply[0]) as ReleaseOutcome
  }

  async abandon ({ tag, member, leaseMs }: ReleaseArgs): Promise<void> {
    this.reportGrants({ tag, member }, await this.run('abandon', tag, { member, lease: leaseMs ?? 0 }) as unknown[])
  }

  async renew (refs: readonly MemberRef[], leaseMs: number): Promise<boolean[]> {
    return await Promise.all(refs.map(async ({ tag, member }) => Number(await this.run('renew', tag, { member, ttl: leaseMs })) === 1))
  }

  async refreshTickets (refs: readonly MemberRef[], ticketTtlMs: number): Promise<boolean[]> {
    return await Promise.all(refs.map(async ({ tag, member }) => Number(await this.run('refreshTicket', tag, { member, ttl: ticketTtlMs })) === 1))
  }

  async usage (tags: readonly string[], priorityStepMs = STRICT_PRIORITY_STEP_MS): Promise<SubjectLoad[]> {
    return await Promise.all(tags.map(async tag => {
      const reply = (await this.run('countLive', tag, { step: priorityStepMs }) as unknown[]).map(Number)
      const load: SubjectLoad = { held: reply[0], waiting: reply[1] }
      // -1: lapsed tickets at the queue's head hid the oldest live one from a bounded read.
      if (reply[2] >= 0) load.oldestWaitMs = reply[2]
      // -1: too many waiters to count by class in one call.
      if (reply[3] !== -1) load.waitingByPriority = byClass(load.waiting, reply.slice(3))
      return load
    }))
  }

  onGrant (instanceId: string, listener: GrantListener): GrantSubscription {
    this.grantListeners.set(instanceId, listener)
    const subscription = this.subscriber?.listen(this.grantChannel(instanceId), message => {
      const [member, tag] = message.split('\n')
      if (tag !== undefined) listener({ tag, member }, true)
    })
    return {
      ready: subscription?.ready ?? Promise.resolve(),
      stop: () => {
        if (this.grantListeners.get(instanceId) === listener) this.grantListeners.delete(instanceId)
        subscription?.stop()
      }
    }
  }

  flush (): void {
    this.batcher.flush()
  }

  close (): void {
    this.subscriber?.close()
  }

  /** Slots granted to waiters of the caller's instance come back after the outcome. */
  private reportGrants (caller: MemberRef, reply: unknown[]): void {
    if (reply.length < 2) return
    const listener = this.grantListeners.get(parseMember(caller.member).instance)
    for (let i = 1; i < reply.length; i++) listener?.({ tag: caller.tag, member: String(reply[i]) }, false)
  }

  private run<N extends OperationName> (name: N, tag: string, args: OperationArgs<N>): Promise<unknown> {
    return this.batcher.run(tag, this.subjectKeys(tag), encodeOperation(name, args))
  }
}

/** { class: count } from the classes above 0 as pairs; class 0 is the rest. */
function byClass (waiting: number, pairs: number[]): Record<number, number> {
  const counts: Record<number, number> = {}
  let above = 0
  for (let i = 0; i < pairs.length; i += 2) {
    counts[pairs[i]] = pairs[i + 1]
    above += pairs[i + 1]
  }
  if (waiting > above) counts[0] = waiting - above
  return counts
}

function attemptArgs ({ member, max, leaseMs, maxWaiters, ticketTtlMs, fair, ahead, priority, priorityStepMs }: TryAcquireArgs): OperationArgs<'tryAcquire'> {
  return { member, max, lease: leaseMs, maxWaiters, ticketTtl: ticketTtlMs, fair: fair === true ? 1 : 0, ahead: ahead ?? 0, precedence: precedenceUs(priority, priorityStepMs) }
}

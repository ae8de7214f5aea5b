/**
 * The SlotStore contract: one suite, run against every store the plugin ships (and against a
 * Redis Cluster by test/cluster.test.ts). Each case gets a fresh store (a fresh key prefix for
 * Redis) and talks to it only through the interface.
 *
 * Members are real member names (memberName): a ticket carries its own max and claim, and a
 * grant admits it only while the live holders are fewer than that max. `m('a:w1', 3)` is the
 * member 'w1' of instance 'a' with max 3; a name without an instance belongs to instance 't'.
 */
import { randomBytes } from 'node:crypto'
import { eventually, sleep } from './app'
import {
  AcquireOutcome, isAcquired, memberName, outcomeOf, ReleaseOutcome, type AcquireSetArgs, type MemberRef, type SlotStore, type TryAcquireArgs
} from '../../lib/stores/store'
import type { RedisStore } from '../../lib/stores/redis-store'

type Test = tap.Test

/** The commands seedLapsedRedisTickets sends (an ioredis Redis or Cluster). */
interface RedisLike {
  time: () => Promise<unknown[]>
  zadd: (key: string, ...scoresAndMembers: Array<string | number>) => Promise<unknown>
}

export interface Backend {
  store: SlotStore
  /** Another store on the same backing data (another client for Redis), for concurrency. */
  peer: () => SlotStore
  /**
   * Puts `members` in the subject's queue as tickets that have already lapsed (but are not yet
   * purged), ahead of any ticket taken later. Optional: the test that needs it passes without.
   */
  seedLapsedTickets?: (tag: string, members: readonly string[]) => Promise<void>
}

export type Factory = (t: Test) => Promise<Backend>

const { Acquired, AcquiredWithRoom, Full, QueueFull } = AcquireOutcome
const { Released, Lapsed, Gone } = ReleaseOutcome

const DEFAULT_CLAIM_MS = 3000
const counters = new Map<string, number>()

/**
 * The member name of the short name `name` ('<instance>:<name>' or just '<name>', instance
 * 't') with its own `max` and claim: the same arguments always give the same member.
 */
export function m (name: string, max = 1, claimMs = DEFAULT_CLAIM_MS, priority = 0, weight = 1): string {
  const colon = name.indexOf(':')
  const instance = colon < 0 ? 't' : name.slice(0, colon)
  const key = `${name}/${max}/${claimMs}`
  let counter = counters.get(key)
  if (counter === undefined) {
    counter = counters.size + 1
    counters.set(key, counter)
  }
  return memberName(instance, counter, max, claimMs, priority, weight)
}

/** The member `name` of weight `weight` (and its own max). */
function mw (name: string, max: number, weight: number): string {
  return m(name, max, DEFAULT_CLAIM_MS, 0, weight)
}

/** Both acquired outcomes as one (whether room is left is tested on its own). */
function held (outcome: AcquireOutcome): AcquireOutcome {
  return outcome === AcquiredWithRoom ? Acquired : outcome
}

type ArgOverrides = Partial<Omit<TryAcquireArgs, 'tag' | 'member'>> & { claimMs?: number }

/**
 * The arguments for member `name` (built by {@link m} from its max and claim). Defaults keep a
 * test's holders and tickets alive well past its end.
 */
function args (tag: string, name: string, { claimMs, ...overrides }: ArgOverrides = {}): TryAcquireArgs {
  const max = overrides.max ?? 1
  return { tag, member: m(name, max, claimMs, overrides.priority), max, leaseMs: 10_000, maxWaiters: 10, ticketTtlMs: 10_000, ...overrides }
}

/** A set's member `name` in one subject (its own max and weight), like {@link m}. */
function ms (name: string, max: number, weight = 1): string {
  const base = m(`set/${name}`, max, DEFAULT_CLAIM_MS, 0, weight)
  const at = base.indexOf(':', base.indexOf(':') + 1)
  return `${base.slice(0, at)}.s${base.slice(at)}`.replace(/^[^:]*:/, 't:')
}

/** Two fresh subjects of max 1, each made full by its holder 'h': what a set then waits for. */
async function twoFullSubjects (t: Test, store: SlotStore): Promise<[string, string]> {
  const tags: [string, string] = [newTag(), newTag()]
  for (const tag of tags) t.ok(isAcquired(outcomeOf(await store.tryAcquire(args(tag, 'h')))), `${tag} is full`)
  return tags
}

/** A set named `name` over `subjects` ([tag, max, weight?]): its first try, or (first false) its retry. */
function setArgs (name: string, subjects: ReadonlyArray<readonly [string, number, number?]>, first: boolean, more: Partial<AcquireSetArgs> = {}): AcquireSetArgs {
  return {
    members: subjects.map(([tag, max, weight = 1]) => ({ tag, member: ms(`${name}@${tag}`, max, weight), max })),
    first,
    leaseMs: 10_000,
    maxWaiters: 10,
    ticketTtlMs: 10_000,
    ...more
  }
}

function ref (tag: string, name: string, max = 1, claimMs = DEFAULT_CLAIM_MS, priority = 0): MemberRef {
  return { tag, member: m(name, max, claimMs, priority) }
}

function newTag (): string {
  return `user:${randomBytes(4).toString('hex')}`
}

/**
 * True when the subject has no free slot under `max`. Uses a fresh member with ticketTtlMs 0,
 * so when the subject is full nothing is written; when it is not, the probe takes the slot
 * (and the calling assertion fails anyway).
 */
async function isFull (store: SlotStore, tag: string, max: number): Promise<boolean> {
  const probe = `probe-${randomBytes(4).toString('hex')}`
  return await store.tryAcquire(args(tag, probe, { max, ticketTtlMs: 0 })) === Full
}

/** Live holders and tickets of one subject (every shipped store has usage). */
async function load (store: SlotStore, tag: string): Promise<{ held: number, waiting: number }> {
  const [{ held, waiting }] = await store.usage!([tag])
  return { held, waiting }
}

/** A store whose tryAcquire answers the bare outcome. */
type OutcomeStore = Omit<SlotStore, 'tryAcquire'> & { tryAcquire: (args: TryAcquireArgs) => Promise<AcquireOutcome> }

/**
 * The store as the cases see it: tryAcquire's answer as its bare outcome (a ticket's place in
 * line, which a store may add, is checked by its own case on the store itself).
 */
function outcomesOnly (store: SlotStore): OutcomeStore {
  return new Proxy(store, {
    get (target, property) {
      if (property === 'tryAcquire') return async (a: TryAcquireArgs) => outcomeOf(await target.tryAcquire(a))
      const value = Reflect.get(target, property)
      return typeof value === 'function' ? value.bind(target) : value
    }
  }) as unknown as OutcomeStore
}

/**
 * Records the grants a store announces to `instanceId` (member and whether it is a claim),
 * once they can arrive; the subscription stops and the store closes when the test ends.
 */
async function recordGrants (t: Test, store: SlotStore, instanceId: string): Promise<Array<[string, boolean]>> {
  const grants: Array<[string, boolean]> = []
  const subscription = store.onGrant!(instanceId, ({ member }, claimed) => grants.push([member, claimed]))
  t.teardown(async () => {
    subscription.stop()
    await store.close?.()
  })
  await subscription.ready
  return grants
}

/**
 * Writes lapsed tickets straight into a subject's `tickets` and `queue` sets (ZADD in chunks):
 * expired a minute ago by Redis time, queued before anything taken from now on.
 */
export async function seedLapsedRedisTickets (redis: RedisLike, store: RedisStore, tag: string, members: readonly string[]): Promise<void> {
  const [seconds] = await redis.time()
  const expired = Number(seconds) * 1000 - 60_000
  for (let i = 0; i < members.length; i += 1000) {
    const chunk = members.slice(i, i + 1000)
    await redis.zadd(store.key(tag, 'tickets'), ...chunk.flatMap(member => [expired, member]))
    await redis.zadd(store.key(tag, 'queue'), ...chunk.flatMap((member, j) => [i + j + 1, member]))
  }
}

export function contract (t: Test, backend: Factory, { only, except }: { only?: RegExp, except?: RegExp } = {}): void {
  // A backend that runs only some cases (a Cluster: the set cases need subjects on one shard).
  const test = (name: string, fn: (t: Test) => Promise<unknown>): void => {
    if ((only === undefined || only.test(name)) && (except === undefined || !except.test(name))) t.test(name, fn)
  }

  const factory = async (t: Test): Promise<Omit<Backend, 'store' | 'peer'> & { store: OutcomeStore, raw: SlotStore, peer: () => OutcomeStore }> => {
    const b = await backend(t)
    return { ...b, raw: b.store, store: outcomesOnly(b.store), peer: () => outcomesOnly(b.peer()) }
  }

  test('acquires up to max, then answers Full', async t => {
    const { store } = await factory(t)
    const tag = newTag()
    for (const name of ['a', 'b', 'c']) {
      t.equal(held(await store.tryAcquire(args(tag, name, { max: 3 }))), Acquired, `${name} acquires`)
    }
    t.equal(held(await store.tryAcquire(args(tag, 'd', { max: 3 }))), Full, 'the 4th waits')
    t.equal(held(await store.tryAcquire(args(tag, 'e', { max: 3 }))), Full, 'and so does the 5th')
    // Subjects are independent.
    t.equal(held(await store.tryAcquire(args(newTag(), 'd', { max: 3 }))), Acquired, 'another subject is free')
  })

  test('ticketTtlMs 0: full answers Full without queueing', async t => {
    const { store } = await factory(t)
    const tag = newTag()
    t.equal(held(await store.tryAcquire(args(tag, 'h'))), Acquired)
    t.equal(held(await store.tryAcquire(args(tag, 'x', { ticketTtlMs: 0, maxWaiters: 1 }))), Full, 'full, not queued')
    // With room for one ticket, 'w' takes it: 'x' did not.
    t.equal(held(await store.tryAcquire(args(tag, 'w', { maxWaiters: 1 }))), Full, 'the single queue place was still free')
    t.equal(held(await store.tryAcquire(args(tag, 'z', { maxWaiters: 1 }))), QueueFull, 'and now it is taken')
    t.equal(held(await store.tryAcquire(args(tag, 'x', { ticketTtlMs: 0, maxWaiters: 1 }))), Full,
      'ticketTtlMs 0 never reports QueueFull: it does not ask for a place')
  })

  test('re-acquire by a holder refreshes its lease and takes no second slot', async t => {
    const { store } = await factory(t)
    const tag = newTag()
    t.equal(held(await store.tryAcquire(args(tag, 'a', { max: 2 }))), Acquired)
    t.equal(held(await store.tryAcquire(args(tag, 'a', { max: 2 }))), Acquired, 'again: still Acquired')
    t.equal(held(await store.tryAcquire(args(tag, 'b', { max: 2 }))), Acquired, 'the second slot is still free')
    t.equal(held(await store.tryAcquire(args(tag, 'c', { max: 2 }))), Full, 'a and b hold both slots')
    t.equal(held(await store.tryAcquire(args(tag, 'a', { max: 2 }))), Acquired, 'a holder re-acquires even when full')

    // The refresh extends the lease: 'r' holds 200 ms, re-acquires at ~100 ms for 400 ms,
    // and still holds at ~300 ms, past its first expiry.
    const tag2 = newTag()
    t.equal(held(await store.tryAcquire(args(tag2, 'r', { leaseMs: 200 }))), Acquired)
    await sleep(100)
    t.equal(held(await store.tryAcquire(args(tag2, 'r', { leaseMs: 400 }))), Acquired)
    await sleep(200)
    t.ok(await isFull(store, tag2, 1), 'the refreshed lease outlived the first one')
  })

  test('tryAcquire run twice (a resent command) finds its own slot or ticket', async t => {
    const { store } = await factory(t)
    const tag = newTag()
    const first = await store.tryAcquire(args(tag, 'a'))
    const second = await store.tryAcquire(args(tag, 'a'))
    t.ok(isAcquired(first) && isAcquired(second), `max 1, free: acquired both times (${first}, ${second})`)
    t.same(await load(store, tag), { held: 1, waiting: 0 }, 'one slot held, no ticket')

    const tag2 = newTag()
    t.equal(await store.tryAcquire(args(tag2, 'a', { max: 3 })), AcquiredWithRoom)
    t.equal(await store.tryAcquire(args(tag2, 'a', { max: 3 })), AcquiredWithRoom, 'max 3: the resend still sees two free slots')
    t.same(await load(store, tag2), { held: 1, waiting: 0 }, 'one slot held')

    // Full, maxWaiters 0: QueueFull both times, and nothing queued.
    const tag3 = newTag()
    t.equal(held(await store.tryAcquire(args(tag3, 'h'))), Acquired)
    t.equal(await store.tryAcquire(args(tag3, 'w', { maxWaiters: 0 })), QueueFull, 'maxWaiters 0: no ticket')
    t.equal(await store.tryAcquire(args(tag3, 'w', { maxWaiters: 0 })), QueueFull, 'again: no ticket')
    t.same(await load(store, tag3), { held: 1, waiting: 0 })

    // Full, maxWaiters 1: Full with a ticket, and the resend does not count its own ticket.
    t.equal(await store.tryAcquire(args(tag3, 'w', { maxWaiters: 1 })), Full, 'maxWaiters 1: a ticket')
    t.equal(await store.tryAcquire(args(tag3, 'w', { maxWaiters: 1 })), Full, 'resent: Full again, not QueueFull')
    t.same(await load(store, tag3), { held: 1, waiting: 1 }, 'the same single ticket')
    t.equal(await store.tryAcquire(args(tag3, 'x', { maxWaiters: 1 })), QueueFull, "another member counts w's ticket")
  })

  test('a resent tryAcquire that finds room: its stale ticket is never granted and goes with its release', async t => {
    const { store } = await factory(t)
    const tag = newTag()
    t.equal(held(await store.tryAcquire(args(tag, 'h', { max: 2, leaseMs: 150 }))), Acquired)
    t.equal(held(await store.tryAcquire(args(tag, 'g', { max: 2 }))), Acquired)
    t.equal(await store.tryAcquire(args(tag, 'w', { max: 2 })), Full, 'w takes a ticket')
    t.equal(await store.tryAcquire(args(tag, 'v', { max: 2 })), Full, 'v queues behind it')
    await sleep(250)
    // h's lease lapsed with no grant pass: the resent try finds the room itself.
    t.ok(isAcquired(await store.tryAcquire(args(tag, 'w', { max: 2 }))), 'the resend acquires')
    t.equal(await store.release(ref(tag, 'g', 2)), Released, 'a release runs a grant pass')
    t.same(await store.renew([ref(tag, 'v', 2)], 10_000), [true], "the freed slot went to v: w's stale ticket was not granted again")
    t.same(await load(store, tag), { held: 2, waiting: 0 }, 'and it is gone')
    t.equal(await store.release(ref(tag, 'w', 2)), Released)
    t.same(await load(store, tag), { held: 1, waiting: 0 }, 'its release does not grant its own slot back to it')
  })

  test('release answers Released, then Gone; Lapsed for an expired lease', async t => {
    const { store } = await factory(t)
    const tag = newTag()
    t.equal(held(await store.tryAcquire(args(tag, 'a'))), Acquired)
    t.equal(held(await store.tryAcquire(args(tag, 'b', { ticketTtlMs: 0 }))), Full)
    t.equal(await store.release(ref(tag, 'a')), Released, 'a live slot')
    t.equal(held(await store.tryAcquire(args(tag, 'b', { ticketTtlMs: 0 }))), Acquired, 'the freed slot goes to b')

    // Releasing twice (a resent release), an unknown member or on an unknown subject changes nothing.
    t.equal(await store.release(ref(tag, 'a')), Gone, 'released already')
    t.equal(await store.release(ref(tag, 'nobody')), Gone)
    t.equal(await store.release(ref(newTag(), 'nobody')), Gone)
    t.ok(await isFull(store, tag, 1), 'b still holds the slot')

    // A lapsed entry still there (the long holder keeps the subject alive, nothing purged it).
    const tag2 = newTag()
    t.equal(held(await store.tryAcquire(args(tag2, 'long', { max: 2 }))), Acquired)
    t.equal(held(await store.tryAcquire(args(tag2, 'short', { max: 2, leaseMs: 100 }))), Acquired)
    await sleep(200)
    t.equal(await store.release({ ...ref(tag2, 'short', 2), mayHaveLapsed: true }), Lapsed, 'its lease had lapsed (the caller asks: its clock says it may have)')
    t.equal(await store.release({ ...ref(tag2, 'short', 2), mayHaveLapsed: true }), Gone, 'and then it is gone')
    t.equal(await store.release(ref(tag2, 'long', 2)), Released)
  })

  test('a release the caller does not ask to check removes the entry, lapsed or not', async t => {
    const { store } = await factory(t)
    const tag = newTag()
    t.equal(held(await store.tryAcquire(args(tag, 'long', { max: 2 }))), Acquired)
    t.equal(held(await store.tryAcquire(args(tag, 'short', { max: 2, leaseMs: 100 }))), Acquired)
    await sleep(200)
    t.ok(([Released, Lapsed] as number[]).includes(await store.release(ref(tag, 'short', 2))), 'removed: Released (a store may skip the check) or Lapsed')
    t.equal(await store.release(ref(tag, 'short', 2)), Gone, 'and then it is gone')
    t.equal(held(await store.tryAcquire(args(tag, 'b', { max: 2, ticketTtlMs: 0 }))), Acquired, 'its place is free')
  })

  test('an expired lease frees its slot', async t => {
    const { store } = await factory(t)
    const tag = newTag()
    t.equal(held(await store.tryAcquire(args(tag, 'a', { leaseMs: 150 }))), Acquired)
    t.equal(held(await store.tryAcquire(args(tag, 'b', { ticketTtlMs: 0 }))), Full, 'a holds it for now')
    await sleep(250)
    t.equal(held(await store.tryAcquire(args(tag, 'b', { ticketTtlMs: 0 }))), Acquired, 'a expired: b gets the slot')
  })

  test('renew extends a live lease', async t => {
    const { store } = await factory(t)
    const tag = newTag()
    t.equal(held(await store.tryAcquire(args(tag, 'a', { leaseMs: 300 }))), Acquired)
    await sleep(200)
    t.same(await store.renew([ref(tag, 'a')], 300), [true], 'live: renewed')
    await sleep(200)
    // ~400 ms: past the first lease, inside the renewed one.
    t.ok(await isFull(store, tag, 1), 'a still holds the slot')
    t.same(await store.renew([ref(tag, 'a')], 300), [true], 'and can renew again')
  })

  test('renew returns false for a member that never held or expired, and does not re-add it', async t => {
    const { store } = await factory(t)
    const tag = newTag()
    t.same(await store.renew([ref(tag, 'ghost')], 1000), [false], 'unknown subject')
    t.equal(held(await store.tryAcquire(args(tag, 'long', { max: 2, leaseMs: 10_000 }))), Acquired)
    t.same(await store.renew([ref(tag, 'ghost')], 1000), [false], 'known subject, never held')

    t.equal(held(await store.tryAcquire(args(tag, 'short', { max: 2, leaseMs: 100 }))), Acquired)
    await sleep(200)
    t.same(await store.renew([ref(tag, 'short', 2)], 10_000), [false], 'expired: not renewed')
    t.same(await store.renew([ref(tag, 'short', 2)], 10_000), [false], 'still not (it was not re-added)')
    t.equal(held(await store.tryAcquire(args(tag, 'c', { max: 2, ticketTtlMs: 0 }))), Acquired, 'the expired slot is free')
    t.equal(held(await store.tryAcquire(args(tag, 'd', { max: 2, ticketTtlMs: 0 }))), Full, 'long and c hold both slots')
    t.same(await store.renew([ref(tag, 'ghost')], 1000), [false], 'renew does not add a new holder either')
    t.equal(held(await store.tryAcquire(args(tag, 'd', { max: 3, ticketTtlMs: 0 }))), Acquired, 'only two holders: long and c')
  })

  test('renew of several holds answers one boolean each, in order', async t => {
    const { store } = await factory(t)
    const tagA = newTag()
    const tagB = newTag()
    t.equal(held(await store.tryAcquire(args(tagA, 'a1', { max: 3 }))), Acquired)
    t.equal(held(await store.tryAcquire(args(tagA, 'a2', { max: 3, leaseMs: 100 }))), Acquired)
    t.equal(held(await store.tryAcquire(args(tagB, 'b1'))), Acquired)
    await sleep(200)
    t.same(await store.renew([
      ref(tagA, 'a2', 3),
      ref(tagB, 'b1'),
      ref(tagA, 'nobody'),
      ref(tagA, 'a1', 3),
      ref(newTag(), 'a1', 3)
    ], 5000), [false, true, false, true, false])
    t.same(await store.renew([], 5000), [], 'no holds, no answers')
  })

  test('a ticket is answered with the live tickets ahead of it; a resent try keeps its place', async t => {
    const { raw } = await factory(t)
    const tag = newTag()
    t.ok(isAcquired(outcomeOf(await raw.tryAcquire(args(tag, 'h')))))
    t.same(await raw.tryAcquire(args(tag, 'w1')), { outcome: Full, ahead: 0 }, 'first in line')
    t.same(await raw.tryAcquire(args(tag, 'w2', { ticketTtlMs: 150 })), { outcome: Full, ahead: 1 })
    t.same(await raw.tryAcquire(args(tag, 'w3')), { outcome: Full, ahead: 2 })
    t.same(await raw.tryAcquire(args(tag, 'w2', { ticketTtlMs: 150 })), { outcome: Full, ahead: 1 }, 'resent: the same place')
    await sleep(250)
    t.same(await raw.tryAcquire(args(tag, 'w4')), { outcome: Full, ahead: 2 }, "w2's lapsed ticket is not counted")
    t.equal(await raw.tryAcquire(args(tag, 'x', { ticketTtlMs: 0 })), Full, 'without a ticket: a bare Full')
    t.equal(await raw.tryAcquire(args(tag, 'y', { maxWaiters: 3 })), QueueFull)
  })

  test('priority classes: higher classes are granted first, in arrival order within a class, whoever releases', async t => {
    const { raw, store, peer } = await factory(t)
    const granter = peer()
    const grants = await recordGrants(t, store as SlotStore, 'a')
    const tag = newTag()
    t.ok(isAcquired(await granter.tryAcquire(args(tag, 'b:h'))))
    const line: Array<[string, number, number]> = [['a:w0a', 0, 0], ['a:w1a', 1, 0], ['a:w0b', 0, 2], ['a:w2', 2, 0], ['a:w1b', 1, 2]]
    for (const [name, priority, ahead] of line) {
      t.same(await raw.tryAcquire(args(tag, name, { priority })), { outcome: Full, ahead }, `${name} (class ${priority}) has ${ahead} ahead`)
    }
    const [usage] = await raw.usage!([tag])
    t.same(usage.waitingByPriority, { 0: 2, 1: 2, 2: 1 }, 'usage counts the waiters by class')
    // Each release hands the one slot to the next in line.
    const order = ['a:w2', 'a:w1a', 'a:w1b', 'a:w0a', 'a:w0b']
    t.equal(await granter.release({ ...ref(tag, 'b:h'), leaseMs: 10_000 }), Released)
    for (let i = 0; i < order.length; i++) {
      await eventually(() => grants.length === i + 1)
      const priority = line.find(([name]) => name === order[i])![1]
      t.equal(grants[i][0], m(order[i], 1, DEFAULT_CLAIM_MS, priority), `grant ${i + 1}: ${order[i]}`)
      // Released by its own instance, whose listener hears of the next grant to it.
      t.equal(await store.release({ ...ref(tag, order[i], 1, DEFAULT_CLAIM_MS, priority), leaseMs: 10_000 }), Released)
    }
    t.same(await load(store as SlotStore, tag), { held: 0, waiting: 0 })
  })

  test('priorityStepMs: a lower class is passed only by arrivals less than the class difference × step after it', async t => {
    const { raw } = await factory(t)
    const tag = newTag()
    const step = { priorityStepMs: 100 }
    t.ok(isAcquired(outcomeOf(await raw.tryAcquire(args(tag, 'h')))))
    t.same(await raw.tryAcquire(args(tag, 'w0', step)), { outcome: Full, ahead: 0 })
    await sleep(150)
    t.same(await raw.tryAcquire(args(tag, 'w1', { ...step, priority: 1 })), { outcome: Full, ahead: 1 }, 'class 1, 150 ms later: behind it')
    t.same(await raw.tryAcquire(args(tag, 'w2', { ...step, priority: 2 })), { outcome: Full, ahead: 0 }, 'class 2, 150 ms later: ahead of it')
    const [usage] = await raw.usage!([tag], 100)
    t.ok(usage.oldestWaitMs! >= 140, `the oldest waiter is w0, though third in line (${String(usage.oldestWaitMs)} ms)`)
  })

  test('fair mode counts only the tickets placed before a newcomer of a higher class', async t => {
    const { store } = await factory(t)
    const tag = newTag()
    t.ok(isAcquired(await store.tryAcquire(args(tag, 'h1', { max: 2, leaseMs: 150 }))))
    t.ok(isAcquired(await store.tryAcquire(args(tag, 'h2', { max: 2 }))))
    t.equal(await store.tryAcquire(args(tag, 'w0', { max: 2, fair: true })), Full)
    await sleep(250)
    // h1's lease lapsed with no grant pass: one slot is free, and w0 waits for it.
    t.equal(await store.tryAcquire(args(tag, 'n0', { max: 2, fair: true, ticketTtlMs: 0 })), Full, 'class 0: w0 is ahead')
    t.ok(isAcquired(await store.tryAcquire(args(tag, 'n1', { max: 2, fair: true, priority: 1 }))), 'class 1: nobody is ahead')
  })

  test('weights: a member counts its weight toward max, in usage too; every unit renews, lapses and goes back with it', async t => {
    const { store } = await factory(t)
    const tag = newTag()
    const heavy = (name: string, weight: number, more: ArgOverrides = {}): TryAcquireArgs => ({ ...args(tag, name, { max: 4, ...more }), member: mw(name, 4, weight) })
    t.equal(await store.tryAcquire(heavy('h3', 3, { leaseMs: 200 })), AcquiredWithRoom, '3 of 4 units')
    t.same(await load(store as SlotStore, tag), { held: 3, waiting: 0 }, 'usage counts units')
    // A resend finds its own units counted: it keeps them (and does not tell whether room is left).
    t.equal(held(await store.tryAcquire(heavy('h3', 3, { leaseMs: 200 }))), Acquired, 'resent: still held')
    t.same(await load(store as SlotStore, tag), { held: 3, waiting: 0 }, 'no unit taken twice')
    t.equal(await store.tryAcquire(heavy('w2', 2, { ticketTtlMs: 0 })), Full, '3 + 2 > 4')
    t.equal(await store.tryAcquire(heavy('one', 1)), Acquired, '3 + 1 = 4: now full')
    t.same(await store.renew([{ tag, member: mw('h3', 4, 3) }], 300), [true])
    await sleep(250)
    t.ok(await isFull(store, tag, 4), 'the renewal kept all three units past the first lease')
    await sleep(150)
    t.same(await load(store as SlotStore, tag), { held: 1, waiting: 0 }, 'then all three lapsed together')
    t.equal(await store.tryAcquire(heavy('h3b', 3)), Acquired, 'and are free again')
    t.equal(await store.release({ tag, member: mw('h3b', 4, 3) }), Released)
    t.same(await load(store as SlotStore, tag), { held: 1, waiting: 0 }, 'a release gives back every unit')
  })

  test('weights: grants admit the head only when its weight fits; nobody behind it is granted before it', async t => {
    const { store } = await factory(t)
    const tag = newTag()
    const heavy = (name: string, weight: number, more: ArgOverrides = {}): TryAcquireArgs => ({ ...args(tag, name, { max: 3, ...more }), member: mw(name, 3, weight) })
    t.equal(await store.tryAcquire(heavy('h1', 1)), AcquiredWithRoom)
    t.equal(await store.tryAcquire(heavy('h2', 1)), AcquiredWithRoom)
    t.equal(await store.tryAcquire(heavy('w2', 2, { fair: true })), Full, 'two units wanted, one free')
    t.equal(await store.tryAcquire(heavy('w1', 1, { fair: true })), Full, 'fair: one free unit, but w2 is ahead')
    t.equal(await store.poll(heavy('w1', 1)), Full, 'a grant pass does not skip the head for the one that fits')
    t.equal(await store.release({ tag, member: mw('h1', 3, 1) }), Released)
    t.equal(await store.poll(heavy('w1', 1)), Full, 'two free: the head takes both')
    t.same(await store.renew([{ tag, member: mw('w2', 3, 2) }], 10_000), [true], 'w2 holds')
    t.same(await load(store as SlotStore, tag), { held: 3, waiting: 1 })
    t.equal(await store.release({ tag, member: mw('h2', 3, 1) }), Released)
    t.equal(await store.poll(heavy('w1', 1)), Acquired, 'then w1')
  })

  test('weights, fair mode: a light newcomer counts the units of the tickets ahead, not how many they are', async t => {
    const { store } = await factory(t)
    const tag = newTag()
    const heavy = (name: string, weight: number, more: ArgOverrides = {}): TryAcquireArgs => ({ ...args(tag, name, { max: 4, ...more }), member: mw(name, 4, weight) })
    t.ok(isAcquired(await store.tryAcquire(heavy('h1', 1))))
    t.ok(isAcquired(await store.tryAcquire(heavy('h2', 1))))
    t.equal(await store.tryAcquire(heavy('w3', 3, { fair: true })), Full)
    t.equal(await store.tryAcquire(heavy('n1', 1, { fair: true, ticketTtlMs: 0 })), Full, 'two units free, but the three of w3 are ahead')
    t.equal(await store.tryAcquire(heavy('b1', 1, { ahead: 3 })), Full, 'without fair: the units its own process leaves for earlier waiters')
    t.ok(isAcquired(await store.tryAcquire(heavy('b2', 1, { ahead: 1 }))), 'with one unit ahead, one is left for it')
  })

  test('sets: all or nothing; a waiting set holds nothing, and a release that makes room tells it to retry', async t => {
    const { raw: store } = await factory(t)
    const user = newTag()
    const account = newTag()
    const grants = await recordGrants(t, store, 't')
    t.equal(held(outcomeOf(await store.tryAcquire(args(user, 'u1', { max: 3 })))), Acquired)
    t.equal(held(outcomeOf(await store.tryAcquire({ ...args(account, 'a1', { max: 2 }), member: mw('a1', 2, 2) }))), Acquired, 'the account is full (one holder of weight 2)')
    const set = (first: boolean): AcquireSetArgs => setArgs('s', [[user, 3], [account, 2, 2]], first)
    t.same(await store.acquireSet!(set(true)), { outcome: Full, ahead: 0 }, 'the account is full: the set takes nothing')
    t.same(await load(store, user), { held: 1, waiting: 1 }, 'its user slot is not taken, only a ticket')
    t.same(await load(store, account), { held: 2, waiting: 1 })
    t.equal(held(outcomeOf(await store.tryAcquire(args(user, 'u2', { max: 3 })))), Acquired, 'the user\'s other requests still get slots')
    t.equal(outcomeOf(await store.acquireSet!(set(false))), Full, 'a retry while the account is full takes nothing either')
    t.same(await load(store, user), { held: 2, waiting: 1 })
    t.equal(await store.release({ tag: account, member: mw('a1', 2, 2) }), Released)
    await eventually(() => grants.some(([member]) => member === ms(`s@${account}`, 2, 2)))
    t.pass('the release told the set to retry')
    t.same(await load(store, account), { held: 0, waiting: 1 }, 'and granted it nothing: it cannot see the other subject')
    t.equal(outcomeOf(await store.acquireSet!(set(false))), Acquired, 'the retry takes both')
    t.same([await load(store, user), await load(store, account)], [{ held: 3, waiting: 0 }, { held: 2, waiting: 0 }], 'every slot, with its weight; no ticket left')
    t.equal(outcomeOf(await store.acquireSet!(set(false))), Acquired, 'run twice, it keeps what it has')
    t.same([await load(store, user), await load(store, account)], [{ held: 3, waiting: 0 }, { held: 2, waiting: 0 }], 'nothing taken twice')
    t.equal(await store.release({ tag: account, member: ms(`s@${account}`, 2, 2) }), Released, 'each slot is released on its own')
    t.same(await load(store, account), { held: 0, waiting: 0 }, 'every unit of it')
  })

  test('sets: a set keeps no room where it fits while another subject is full; it waits in line where it does not fit', async t => {
    const { raw: store } = await factory(t)
    const [user, account] = await twoFullSubjects(t, store)
    const set = (first: boolean): AcquireSetArgs => setArgs('s', [[user, 1], [account, 1]], first)
    t.same(await store.acquireSet!(set(true)), { outcome: Full, ahead: 0 })
    t.equal(outcomeOf(await store.tryAcquire(args(user, 'w'))), Full, 'w queues behind the set on the user')
    t.equal(await store.release({ ...ref(user, 'h'), leaseMs: 10_000 }), Released)
    t.equal(await store.poll(args(user, 'w')), Full, 'the set is first in line on the user: its room is kept until it retries')
    t.equal(outcomeOf(await store.acquireSet!(set(false))), Full, 'the account is still full')
    t.equal(await store.poll(args(user, 'w')), Acquired, 'so the set stepped aside on the user, and w got the slot')
    t.equal(await store.release({ ...ref(account, 'h'), leaseMs: 10_000 }), Released)
    t.equal(outcomeOf(await store.acquireSet!(set(false))), Full, 'now the user is full (w)')
    t.equal(held(outcomeOf(await store.tryAcquire(args(account, 'x', { ticketTtlMs: 0 })))), Acquired, 'and the set keeps no room on the account either')
    t.equal(await store.release({ ...ref(account, 'x'), leaseMs: 10_000 }), Released)
    t.equal(await store.release({ ...ref(user, 'w'), leaseMs: 10_000 }), Released)
    t.equal(outcomeOf(await store.acquireSet!(set(false))), Acquired, 'both free: the set takes both')
  })

  test('sets: two sets of the same subjects taken in opposite orders both get through (no deadlock)', async t => {
    const { raw: store } = await factory(t)
    const [a, b] = await twoFullSubjects(t, store)
    const x = (first: boolean): AcquireSetArgs => setArgs('x', [[a, 1], [b, 1]], first)
    const y = (first: boolean): AcquireSetArgs => setArgs('y', [[b, 1], [a, 1]], first)
    t.equal(outcomeOf(await store.acquireSet!(x(true))), Full)
    t.equal(outcomeOf(await store.acquireSet!(y(true))), Full)
    t.equal(await store.release({ ...ref(a, 'h'), leaseMs: 10_000 }), Released)
    t.same([outcomeOf(await store.acquireSet!(y(false))), outcomeOf(await store.acquireSet!(x(false)))], [Full, Full], 'b is still held')
    t.equal(await store.release({ ...ref(b, 'h'), leaseMs: 10_000 }), Released)
    t.equal(outcomeOf(await store.acquireSet!(y(false))), Full, 'x came first: y does not pass it')
    t.equal(outcomeOf(await store.acquireSet!(x(false))), Acquired, 'x takes both')
    t.equal(outcomeOf(await store.acquireSet!(y(false))), Full)
    for (const tag of [a, b]) t.equal(await store.release({ tag, member: ms(`x@${tag}`, 1) }), Released)
    t.equal(outcomeOf(await store.acquireSet!(y(false))), Acquired, 'then y')
  })

  test('sets: a set of a higher priority class waits ahead of an earlier one of a lower class, in every subject', async t => {
    const { raw: store } = await factory(t)
    const [a, b] = await twoFullSubjects(t, store)
    const low = (first: boolean): AcquireSetArgs => setArgs('low', [[a, 1], [b, 1]], first)
    const high = (first: boolean): AcquireSetArgs => setArgs('high', [[b, 1], [a, 1]], first, { priority: 2 })
    t.same(await store.acquireSet!(low(true)), { outcome: Full, ahead: 0 })
    t.same(await store.acquireSet!(high(true)), { outcome: Full, ahead: 0 }, 'placed ahead of the earlier, lower set')
    for (const tag of [a, b]) t.equal(await store.release({ ...ref(tag, 'h'), leaseMs: 10_000 }), Released)
    t.equal(outcomeOf(await store.acquireSet!(low(false))), Full, 'the lower set does not pass it')
    t.equal(outcomeOf(await store.acquireSet!(high(false))), Acquired)
  })

  test('sets: a set gets a ticket in every queue or in none (maxWaiters), and lapsed tickets queue again', async t => {
    const { raw: store } = await factory(t)
    const [a, b] = await twoFullSubjects(t, store)
    t.equal(outcomeOf(await store.tryAcquire(args(b, 'wb', { maxWaiters: 1 }))), Full, 'one waiter on b')
    t.equal(await store.acquireSet!(setArgs('s', [[a, 1], [b, 1]], true, { maxWaiters: 1 })), QueueFull, 'no place on b: no ticket anywhere')
    t.same([await load(store, a), await load(store, b)], [{ held: 1, waiting: 0 }, { held: 1, waiting: 1 }])
    t.equal(await store.acquireSet!(setArgs('s', [[a, 1], [b, 1]], true, { ticketTtlMs: 0 })), Full, 'without ticketTtl it takes nothing and queues nowhere')
    t.same([await load(store, a), await load(store, b)], [{ held: 1, waiting: 0 }, { held: 1, waiting: 1 }])
    t.same(await store.acquireSet!(setArgs('l', [[a, 1], [b, 1]], true, { ticketTtlMs: 100 })), { outcome: Full, ahead: 1 }, 'one waiter ahead on b')
    await sleep(150)
    t.same([await load(store, a), await load(store, b)], [{ held: 1, waiting: 0 }, { held: 1, waiting: 1 }], 'its tickets lapsed')
    t.equal(outcomeOf(await store.acquireSet!(setArgs('l', [[a, 1], [b, 1]], false))), Full, 'a retry queues it again')
    t.same([await load(store, a), await load(store, b)], [{ held: 1, waiting: 1 }, { held: 1, waiting: 2 }], 'in every queue')
  })

  test('sets: a first try admits only when every subject has room for its weight, the way a single first try would', async t => {
    const { raw: store } = await factory(t)
    const a = newTag()
    const b = newTag()
    t.equal(await store.acquireSet!(setArgs('s1', [[a, 3, 2], [b, 2]], true)), AcquiredWithRoom, 'room left in both')
    t.equal(await store.acquireSet!(setArgs('s2', [[a, 3], [b, 2]], true)), Acquired, 'both full now')
    t.same([await load(store, a), await load(store, b)], [{ held: 3, waiting: 0 }, { held: 2, waiting: 0 }])
    t.equal(await store.release({ tag: b, member: ms(`s1@${b}`, 2) }), Released)
    t.equal(outcomeOf(await store.acquireSet!(setArgs('s3', [[a, 3], [b, 2]], true, { ticketTtlMs: 0 }))), Full, 'room on b, none on a: nothing taken')
    t.same([await load(store, a), await load(store, b)], [{ held: 3, waiting: 0 }, { held: 1, waiting: 0 }])
    t.equal(await store.acquireSet!(setArgs('s4', [[b, 2], [a, 4]], true, { ticketTtlMs: 0 })), Acquired, 'a larger max of its own on a: admitted')
  })

  test('the wait queue is bounded by maxWaiters', async t => {
    const { store } = await factory(t)
    const tag = newTag()
    const q = (name: string): Promise<AcquireOutcome> => store.tryAcquire(args(tag, name, { maxWaiters: 3 }))
    t.equal(held(await q('h')), Acquired)
    t.equal(held(await q('w1')), Full)
    t.equal(held(await q('w2')), Full)
    t.equal(held(await q('w3')), Full)
    t.equal(held(await q('w4')), QueueFull, 'the 4th distinct waiter is refused')
    t.equal(held(await q('w2')), Full, 'an already queued member refreshes its ticket')
    t.equal(held(await q('w4')), QueueFull, 'w4 was not queued by its refused attempt')
    // A larger bound on a later call lets more in (the bound is per call).
    t.equal(held(await store.tryAcquire(args(tag, 'w4', { maxWaiters: 4 }))), Full)
    t.equal(held(await store.tryAcquire(args(tag, 'w5', { maxWaiters: 4 }))), QueueFull)
  })

  test('waiting tickets expire after ticketTtlMs', async t => {
    const { store } = await factory(t)
    const tag = newTag()
    t.equal(held(await store.tryAcquire(args(tag, 'h'))), Acquired)
    t.equal(held(await store.tryAcquire(args(tag, 'w1', { maxWaiters: 1, ticketTtlMs: 150 }))), Full)
    t.equal(held(await store.tryAcquire(args(tag, 'w2', { maxWaiters: 1 }))), QueueFull, 'w1 holds the only place')
    await sleep(250)
    t.equal(held(await store.tryAcquire(args(tag, 'w2', { maxWaiters: 1 }))), Full, "w1's ticket expired")
    t.equal(held(await store.tryAcquire(args(tag, 'w1', { maxWaiters: 1 }))), QueueFull, 'w1 lost its place')
  })

  test('abandon frees a queue place and is a no-op when absent', async t => {
    const { store } = await factory(t)
    const tag = newTag()
    t.equal(held(await store.tryAcquire(args(tag, 'h'))), Acquired)
    t.equal(held(await store.tryAcquire(args(tag, 'w1', { maxWaiters: 1 }))), Full)
    t.equal(held(await store.tryAcquire(args(tag, 'w2', { maxWaiters: 1 }))), QueueFull)
    await store.abandon(ref(tag, 'w1'))
    t.equal(held(await store.tryAcquire(args(tag, 'w2', { maxWaiters: 1 }))), Full, 'w2 takes the freed place')

    await store.abandon(ref(tag, 'w1'))
    await store.abandon(ref(tag, 'nobody'))
    await store.abandon(ref(newTag(), 'nobody'))
    t.ok(await isFull(store, tag, 1), 'h still holds the slot')
    t.equal(held(await store.tryAcquire(args(tag, 'w3', { maxWaiters: 1 }))), QueueFull, "w2's ticket is still there")
    t.same(await store.refreshTickets([ref(tag, 'w1'), ref(tag, 'w2')], 10_000), [false, true])
  })

  test("abandon gives back the member's slot too, and grants it", async t => {
    const { store } = await factory(t)
    const tag = newTag()
    t.equal(held(await store.tryAcquire(args(tag, 'h'))), Acquired)
    t.equal(await store.tryAcquire(args(tag, 'w')), Full)
    await store.abandon({ ...ref(tag, 'h'), leaseMs: 10_000 })
    t.same(await store.renew([ref(tag, 'h')], 10_000), [false], "the abandoning member's slot is gone")
    t.equal(await store.poll(args(tag, 'w')), Acquired, 'it went to the waiting ticket')
    t.same(await load(store, tag), { held: 1, waiting: 0 })
  })

  test('abandon removes a ticket and a just-granted slot together, and hands that slot to the next ticket', async t => {
    const { store } = await factory(t)
    if (store.onGrant === undefined) return t.pass('this store does not grant')
    const tag = newTag()
    const recorded = await recordGrants(t, store, 'a')
    const grants = (): string[] => recorded.map(([member]) => member)
    t.equal(held(await store.tryAcquire(args(tag, 'a:h'))), Acquired)
    t.equal(await store.tryAcquire(args(tag, 'a:w1')), Full)
    t.equal(await store.tryAcquire(args(tag, 'a:w2')), Full)
    t.equal(await store.release({ ...ref(tag, 'a:h'), leaseMs: 10_000 }), Released)
    t.same(grants(), [m('a:w1')], 'the slot went to a:w1')
    // a:w1 stopped waiting before it learnt of the grant: it abandons.
    await store.abandon({ ...ref(tag, 'a:w1'), leaseMs: 10_000 })
    t.same(grants(), [m('a:w1'), m('a:w2')], 'the slot a:w1 was granted went on to a:w2 in the same step')
    t.same(await store.renew([ref(tag, 'a:w1')], 10_000), [false], 'a:w1 holds nothing')
    t.same(await store.refreshTickets([ref(tag, 'a:w1')], 10_000), [false], 'and has no ticket')
    t.same(await store.renew([ref(tag, 'a:w2')], 10_000), [true], 'a:w2 holds the slot')
    t.same(await load(store, tag), { held: 1, waiting: 0 })
  })

  test('a grant removes the member\'s ticket', async t => {
    const { store } = await factory(t)
    const tag = newTag()
    t.equal(held(await store.tryAcquire(args(tag, 'h'))), Acquired)
    t.equal(held(await store.tryAcquire(args(tag, 'w1', { maxWaiters: 1 }))), Full, 'w1 queues')
    t.equal(await store.release({ ...ref(tag, 'h'), leaseMs: 10_000 }), Released)
    t.equal(held(await store.tryAcquire(args(tag, 'w1', { maxWaiters: 1 }))), Acquired, 'w1 got the slot')
    t.equal(held(await store.tryAcquire(args(tag, 'w2', { maxWaiters: 1 }))), Full, "w1's ticket is gone: its place is free")
    t.equal(held(await store.tryAcquire(args(tag, 'w3', { maxWaiters: 1 }))), QueueFull)
  })

  test('holders with different leases coexist', async t => {
    const { store } = await factory(t)
    const tag = newTag()
    t.equal(held(await store.tryAcquire(args(tag, 'long', { max: 2, leaseMs: 10_000 }))), Acquired)
    t.equal(held(await store.tryAcquire(args(tag, 'short', { max: 2, leaseMs: 100 }))), Acquired)
    t.ok(await isFull(store, tag, 2), 'both hold a slot')
    await sleep(200)
    t.equal(held(await store.tryAcquire(args(tag, 'x', { max: 2, ticketTtlMs: 0 }))), Acquired, "short's slot is free")
    t.equal(held(await store.tryAcquire(args(tag, 'y', { max: 2, ticketTtlMs: 0 }))), Full, 'long still holds the other')
    t.same(await store.renew([ref(tag, 'long', 2), ref(tag, 'short', 2)], 10_000), [true, false])

    // The other way round: a long lease taken after a short one outlives it.
    const tag2 = newTag()
    t.equal(held(await store.tryAcquire(args(tag2, 'short', { max: 2, leaseMs: 100 }))), Acquired)
    t.equal(held(await store.tryAcquire(args(tag2, 'long', { max: 2, leaseMs: 10_000 }))), Acquired)
    await sleep(200)
    t.equal(held(await store.tryAcquire(args(tag2, 'x', { max: 2, ticketTtlMs: 0 }))), Acquired)
    t.equal(held(await store.tryAcquire(args(tag2, 'y', { max: 2, ticketTtlMs: 0 }))), Full, 'long outlived short')
  })

  test('an acquire says whether room is left', async t => {
    const { store } = await factory(t)
    const tag = newTag()
    t.equal(await store.tryAcquire(args(tag, 'a', { max: 3 })), AcquiredWithRoom, '1 of 3')
    t.equal(await store.tryAcquire(args(tag, 'b', { max: 3 })), AcquiredWithRoom, '2 of 3')
    t.equal(await store.tryAcquire(args(tag, 'c', { max: 3 })), Acquired, '3 of 3: now full')
    t.equal(await store.tryAcquire(args(tag, 'a', { max: 3 })), Acquired, 'a refresh of a full subject')
    // Expired leases are purged before the answer: a lapsed holder does not hide the room.
    const tag2 = newTag()
    t.equal(await store.tryAcquire(args(tag2, 'short', { max: 2, leaseMs: 100 })), AcquiredWithRoom)
    await sleep(200)
    t.equal(await store.tryAcquire(args(tag2, 'a', { max: 2 })), AcquiredWithRoom, 'the lapsed lease does not count: room is left')
    t.equal(await store.tryAcquire(args(tag2, 'b', { max: 2 })), Acquired, 'now full')
  })

  test('a holder\'s refresh says whether room is left', async t => {
    const { store } = await factory(t)
    const tag = newTag()
    t.equal(held(await store.tryAcquire(args(tag, 'a', { max: 3 }))), Acquired)
    t.equal(held(await store.tryAcquire(args(tag, 'b', { max: 3 }))), Acquired)
    t.equal(await store.tryAcquire(args(tag, 'a', { max: 3 })), AcquiredWithRoom, 'a refresh with a free slot')
  })

  test('ahead: slots left for earlier waiters are not taken', async t => {
    const { store } = await factory(t)
    const tag = newTag()
    t.equal(held(await store.tryAcquire(args(tag, 'a', { max: 3 }))), Acquired)
    t.equal(await store.tryAcquire(args(tag, 'n', { max: 3, ahead: 2 })), Full, 'two free slots, two ahead: wait')
    t.equal(held(await store.tryAcquire(args(tag, 'n2', { max: 3, ahead: 1 }))), Acquired, 'one ahead leaves one for n2')
  })

  test('fair mode: newcomers queue behind live tickets, and polls grant the oldest first, across callers', async t => {
    const backend = await factory(t)
    const [s1, s2] = [backend.store, backend.peer()]
    const tag = newTag()
    const fair = (store: OutcomeStore, name: string, leaseMs = 10_000): Promise<AcquireOutcome> =>
      store.tryAcquire(args(tag, name, { max: 2, fair: true, leaseMs }))
    const poll = (store: OutcomeStore, name: string): Promise<AcquireOutcome> => store.poll(args(tag, name, { max: 2, fair: true }))
    t.equal(held(await fair(s1, 'h1', 150)), Acquired)
    t.equal(held(await fair(s2, 'h2')), Acquired)
    t.equal(await fair(s1, 'w1'), Full)
    t.equal(await fair(s2, 'w2'), Full)
    t.equal(await fair(s1, 'w3'), Full)
    await sleep(250)
    // h1's lease lapsed: a slot is free, but no grant pass has run yet.
    t.equal(await fair(s2, 'late'), Full, 'a newcomer queues behind the tickets')
    t.equal(await fair(s1, 'w3'), Full, 'w3 (resent) is not the oldest')
    t.equal(await poll(s1, 'w3'), Full, "w3's poll grants the slot, but to the oldest ticket")
    t.equal(await poll(s2, 'w2'), Full, 'w2 is not the oldest either')
    t.equal(await poll(s1, 'w1'), Acquired, 'w1 was granted the slot')
    t.equal(await s2.release(ref(tag, 'h2', 2)), Released)
    t.equal(await poll(s2, 'w2'), Acquired, 'the next release went to the next oldest')
    await s1.abandon(ref(tag, 'w3', 2))
    t.equal(await s1.release(ref(tag, 'w1', 2)), Released)
    t.equal(await poll(s2, 'late'), Acquired, 'a ticket that was abandoned is skipped')
  })

  test('a lapsed ticket neither blocks a grant nor counts ahead in fair mode', async t => {
    const { store } = await factory(t)
    const tag = newTag()
    const fair = (name: string, ticketTtlMs = 10_000): Promise<AcquireOutcome> =>
      store.tryAcquire(args(tag, name, { fair: true, ticketTtlMs }))
    t.equal(held(await fair('h')), Acquired)
    t.equal(await fair('dead', 100), Full)
    t.equal(await fair('alive'), Full)
    await sleep(200)
    t.equal(await store.release(ref(tag, 'h')), Released)
    t.equal(await store.poll(args(tag, 'alive', { fair: true })), Acquired, 'the lapsed head was skipped: alive got the slot')

    const tag2 = newTag()
    t.equal(held(await store.tryAcquire(args(tag2, 'h', { fair: true, leaseMs: 150 }))), Acquired)
    t.equal(await store.tryAcquire(args(tag2, 'dead', { fair: true, ticketTtlMs: 100 })), Full)
    await sleep(250)
    t.equal(held(await store.tryAcquire(args(tag2, 'n', { fair: true }))), Acquired, 'no live ticket ahead of a newcomer')
  })

  test('refreshTickets keeps live tickets, not lapsed ones', async t => {
    const { store } = await factory(t)
    const tag = newTag()
    t.equal(held(await store.tryAcquire(args(tag, 'h'))), Acquired)
    t.equal(await store.tryAcquire(args(tag, 'w1', { ticketTtlMs: 300, maxWaiters: 2 })), Full)
    t.equal(await store.tryAcquire(args(tag, 'w2', { ticketTtlMs: 100, maxWaiters: 2 })), Full)
    await sleep(150)
    t.same(await store.refreshTickets([ref(tag, 'w1'), ref(tag, 'w2'), ref(tag, 'nobody')], 1000), [true, false, false])
    t.same(await store.refreshTickets([ref(tag, 'w2')], 1000), [false], 'a lapsed ticket stays lapsed')
    await sleep(250)
    // w1 (refreshed while alive) still holds a place; w2 lapsed before the refresh and is gone.
    t.equal(await store.tryAcquire(args(tag, 'n1', { maxWaiters: 2 })), Full, 'one place was free')
    t.equal(await store.tryAcquire(args(tag, 'n2', { maxWaiters: 2 })), QueueFull, 'and only one: w1 is still queued')
  })

  test('a ticket refreshed after it lapsed has left the queue: its poll re-queues it at the back', async t => {
    const { store } = await factory(t)
    const tag = newTag()
    t.equal(held(await store.tryAcquire(args(tag, 'h'))), Acquired)
    t.equal(await store.tryAcquire(args(tag, 'w1', { ticketTtlMs: 100 })), Full)
    t.equal(await store.tryAcquire(args(tag, 'w2')), Full)
    await sleep(200)
    t.same(await store.refreshTickets([ref(tag, 'w1')], 10_000), [false], 'lapsed: false')
    t.same(await load(store, tag), { held: 1, waiting: 1 }, 'only w2 waits')
    t.equal(await store.poll(args(tag, 'w1')), Full, 'w1 polls: a new ticket, at the back')
    t.equal(await store.release(ref(tag, 'h')), Released)
    t.equal(await store.poll(args(tag, 'w1')), Full, 'the slot went to w2, ahead of w1 now')
    t.equal(await store.poll(args(tag, 'w2')), Acquired)
  })

  test('poll: a member granted earlier answers Acquired; grants to its instance are reported', async t => {
    const { store } = await factory(t)
    const tag = newTag()
    const grants = store.onGrant === undefined ? undefined : await recordGrants(t, store, 'p')
    t.equal(held(await store.tryAcquire(args(tag, 'x:h'))), Acquired)
    t.equal(await store.tryAcquire(args(tag, 'p:w')), Full)
    t.equal(await store.release({ ...ref(tag, 'x:h'), leaseMs: 10_000 }), Released)
    t.equal(await store.poll(args(tag, 'p:w')), Acquired, 'granted by the release: its poll finds the slot')
    t.equal(await store.poll(args(tag, 'p:w')), Acquired, 'and again')
    t.same(await load(store, tag), { held: 1, waiting: 0 })

    // Two holders' leases lapse; p:w2's poll grants both slots, p:w1's (older) included.
    const tag2 = newTag()
    t.equal(held(await store.tryAcquire(args(tag2, 'x:h1', { max: 2, leaseMs: 150 }))), Acquired)
    t.equal(held(await store.tryAcquire(args(tag2, 'x:h2', { max: 2, leaseMs: 150 }))), Acquired)
    t.equal(await store.tryAcquire(args(tag2, 'p:w1', { max: 2 })), Full)
    t.equal(await store.tryAcquire(args(tag2, 'p:w2', { max: 2 })), Full)
    t.equal(await store.tryAcquire(args(tag2, 'p:w3', { max: 2 })), Full)
    await sleep(250)
    t.equal(await store.poll(args(tag2, 'p:w2', { max: 2 })), Acquired, 'p:w2 is granted')
    if (grants !== undefined) {
      t.ok(grants.some(([member, claimed]) => member === m('p:w1', 2) && !claimed), "the grant to p:w1 is reported to the poller's instance, with a full lease")
      t.notOk(grants.some(([member]) => member === m('p:w3', 2)), 'p:w3 is not granted')
    }
    t.same(await store.renew([ref(tag2, 'p:w1', 2)], 10_000), [true], 'p:w1 holds a slot')
    t.equal(await store.poll(args(tag2, 'p:w3', { max: 2 })), Full, 'p:w3 still waits')
  })

  test('grants admit a ticket only below its own max, in arrival order, never skipping it', async t => {
    const { store } = await factory(t)
    const tag = newTag()
    const holders = Array.from({ length: 10 }, (_, i) => `h${i}`)
    for (const name of holders) t.ok(isAcquired(await store.tryAcquire(args(tag, name, { max: 10 }))), `${name} holds (max 10)`)
    t.equal(await store.tryAcquire(args(tag, 'w3', { max: 3 })), Full, 'w3 (max 3) queues first')
    t.equal(await store.tryAcquire(args(tag, 'w10', { max: 10 })), Full, 'w10 (max 10) behind it')
    // Releases by max-10 holders down to 5 holders, and one more at 5.
    for (const name of holders.slice(4).reverse()) t.equal(await store.release({ ...ref(tag, name, 10), leaseMs: 10_000 }), Released)
    t.same(await load(store, tag), { held: 4, waiting: 2 }, 'nobody was granted: w3 has 4 holders, at least its max 3')
    t.equal(await store.poll(args(tag, 'w10', { max: 10 })), Full, "w10's poll does not skip w3 either")
    t.equal(await store.poll(args(tag, 'w3', { max: 3 })), Full, 'nor does w3 get in above its max')
    t.same(await store.refreshTickets([ref(tag, 'w3', 3), ref(tag, 'w10', 10)], 10_000), [true, true], 'both still wait')
    t.equal(await store.release({ ...ref(tag, 'h3', 10), leaseMs: 10_000 }), Released)
    t.same(await load(store, tag), { held: 3, waiting: 2 }, '3 holders: still not below 3')
    t.equal(await store.release({ ...ref(tag, 'h2', 10), leaseMs: 10_000 }), Released)
    t.same(await load(store, tag), { held: 4, waiting: 0 }, '2 holders: w3 gets in, then w10 behind it')
    t.equal(await store.poll(args(tag, 'w3', { max: 3 })), Acquired)
    t.equal(await store.poll(args(tag, 'w10', { max: 10 })), Acquired)
  })

  test('a ticket whose member name carries no max is never granted, and is dropped by a grant pass', async t => {
    const { store } = await factory(t)
    const tag = newTag()
    t.equal(held(await store.tryAcquire(args(tag, 'h'))), Acquired)
    t.equal(await store.tryAcquire({ ...args(tag, 'x'), member: 'not-a-member-name' }), Full)
    t.equal(await store.tryAcquire(args(tag, 'w')), Full)
    t.equal(await store.release(ref(tag, 'h')), Released)
    t.same(await store.refreshTickets([{ tag, member: 'not-a-member-name' }], 10_000), [false], 'it left the queue')
    t.equal(await store.poll(args(tag, 'w')), Acquired, 'the ticket behind it got the slot')
  })

  test('50 concurrent acquires with max 5: exactly 5 acquire', async t => {
    const backend = await factory(t)
    const stores = [backend.store, ...Array.from({ length: 4 }, () => backend.peer())]
    const tag = newTag()
    const outcomes = await Promise.all(Array.from({ length: 50 }, (_, i) =>
      stores[i % stores.length].tryAcquire(args(tag, `m${i}`, { max: 5, maxWaiters: 10 }))))
    const count = (o: AcquireOutcome): number => outcomes.filter(x => held(x) === o).length
    t.equal(count(Acquired), 5, 'exactly max acquire')
    t.equal(count(Full), 10, 'exactly maxWaiters queue')
    t.equal(count(QueueFull), 35, 'the rest are refused')
    t.ok(await isFull(backend.store, tag, 5), 'all 5 slots are held')
    t.equal(held(await backend.store.tryAcquire(args(tag, 'late', { max: 6, ticketTtlMs: 0 }))), Acquired, 'but no more than 5')
  })

  test('a release grants the freed slot to the oldest live ticket, whichever instance it belongs to', async t => {
    const { store, peer } = await factory(t)
    const other = peer()
    if (store.onGrant === undefined || other.onGrant === undefined) return t.pass('this store does not grant')
    const tag = newTag()
    const [mine, theirs] = await Promise.all([recordGrants(t, store, 'a'), recordGrants(t, other, 'b')])
    // a's grants, then b's.
    const grants = (): Array<[string, boolean]> => [...mine, ...theirs]
    const release = (name: string): Promise<ReleaseOutcome> => store.release({ ...ref(tag, name), leaseMs: 10_000 })

    t.equal(held(await store.tryAcquire(args(tag, 'a:h'))), Acquired)
    t.equal(await store.tryAcquire(args(tag, 'a:w1')), Full)
    t.equal(await other.tryAcquire(args(tag, 'b:w2')), Full)
    t.equal(await store.tryAcquire(args(tag, 'a:w3')), Full)
    await store.abandon(ref(tag, 'a:w3'))

    t.equal(await release('a:h'), Released, 'the holder releases')
    t.same(grants(), [[m('a:w1'), false]], "the oldest ticket, the releasing instance's own, gets the slot with a full lease")
    t.ok(await isFull(store, tag, 1), 'the slot is taken again in the same step: nobody can barge in')
    t.same(await store.refreshTickets([ref(tag, 'a:w1'), ref(tag, 'b:w2')], 10_000), [false, true], "a:w1's ticket left with the grant")
    t.equal(await store.tryAcquire(args(tag, 'a:w1')), Acquired, 'a:w1 holds it: a try of its own answers Acquired')

    t.equal(await release('a:w1'), Released)
    await eventually(() => grants().length === 2)
    t.same(grants()[1], [m('b:w2'), true], "another instance's waiter gets it as a claim, announced to that instance")
    t.same(await other.renew([ref(tag, 'b:w2')], 10_000), [true], 'b confirms the claim by renewing it')
    t.ok(await isFull(store, tag, 1))

    t.equal(await other.release(ref(tag, 'b:w2')), Released, 'nobody waits any more: this release grants nothing')
    t.equal(await store.tryAcquire(args(tag, 'a:w3')), Acquired, 'a:w3 left the queue: its next try is a fresh one')
    t.equal(await release('a:w3'), Released)
    await sleep(50)
    t.equal(grants().length, 2, 'nobody was left to grant to')
  })

  test('grants skip lapsed tickets, fill every free slot, and lapse after their claim', async t => {
    const { store } = await factory(t)
    if (store.onGrant === undefined) return t.pass('this store does not grant')
    const tag = newTag()
    const recorded = await recordGrants(t, store, 'c')
    const grants = (): string[] => recorded.map(([member]) => member)
    t.equal(held(await store.tryAcquire(args(tag, 'c:h1', { max: 3 }))), Acquired)
    t.equal(held(await store.tryAcquire(args(tag, 'c:h2', { max: 3, leaseMs: 150 }))), Acquired)
    t.equal(held(await store.tryAcquire(args(tag, 'c:h3', { max: 3 }))), Acquired)
    t.equal(await store.tryAcquire(args(tag, 'c:gone', { max: 3, ticketTtlMs: 100 })), Full)
    t.equal(await store.tryAcquire(args(tag, 'c:w1', { max: 3 })), Full)
    t.equal(await store.tryAcquire(args(tag, 'c:w2', { max: 3 })), Full)
    t.equal(await store.tryAcquire(args(tag, 'c:w3', { max: 3 })), Full)
    await sleep(250)
    // One release, and c:h2's lapsed lease: two free slots go out at once.
    t.equal(await store.release({ ...ref(tag, 'c:h1', 3), leaseMs: 10_000 }), Released)
    t.same(grants(), [m('c:w1', 3), m('c:w2', 3)], 'the lapsed ticket is skipped; c:w1 and c:w2 fill the room')
    t.ok(await isFull(store, tag, 3))
    t.same(await store.refreshTickets([ref(tag, 'c:w3', 3)], 10_000), [true], 'c:w3 still waits')

    // Claims: granted by another instance's release, they lapse unless renewed.
    const tag2 = newTag()
    t.equal(held(await store.tryAcquire(args(tag2, 'x:h'))), Acquired)
    t.equal(await store.tryAcquire(args(tag2, 'c:w', { claimMs: 150 })), Full)
    t.equal(await store.release({ ...ref(tag2, 'x:h'), leaseMs: 10_000 }), Released)
    await eventually(() => grants().includes(m('c:w', 1, 150)))
    t.ok(await isFull(store, tag2, 1), 'c:w holds the claim')
    await sleep(250)
    t.same(await store.renew([ref(tag2, 'c:w', 1, 150)], 10_000), [false], 'an unconfirmed claim lapses')
    t.equal(held(await store.tryAcquire(args(tag2, 'y:n'))), Acquired, 'and the slot is free again')
  })

  test('a ticket kept alive by refreshes keeps its place past its first lifetime, and is granted', async t => {
    const { store } = await factory(t)
    if (store.onGrant === undefined) return t.pass('this store does not grant')
    const tag = newTag()
    const grants = await recordGrants(t, store, 'd')
    t.equal(held(await store.tryAcquire(args(tag, 'd:h'))), Acquired)
    t.equal(await store.tryAcquire(args(tag, 'd:w', { ticketTtlMs: 150 })), Full)
    // Five refreshes, 100 ms apart: 500 ms, over three ticket lifetimes.
    for (let i = 0; i < 5; i++) {
      await sleep(100)
      t.same(await store.refreshTickets([ref(tag, 'd:w')], 150), [true], `refresh ${i + 1}`)
    }
    t.equal(await store.release({ ...ref(tag, 'd:h'), leaseMs: 10_000 }), Released)
    t.same(grants, [[m('d:w'), false]], 'the long waiter still had its place, and got the slot')
  })

  test('20,000 lapsed tickets ahead of a live one: grants still reach it within a bounded number of calls, none fails', async t => {
    const backend = await factory(t)
    const { store } = backend
    if (backend.seedLapsedTickets === undefined) return t.pass('this backend cannot seed lapsed tickets')
    const tag = newTag()
    t.equal(held(await store.tryAcquire(args(tag, 'h'))), Acquired)
    await backend.seedLapsedTickets(tag, Array.from({ length: 20_000 }, (_, i) => m(`lapsed${i}`)))
    t.equal(await store.tryAcquire(args(tag, 'w', { maxWaiters: 1 })), Full, 'the lapsed tickets do not count against maxWaiters')
    t.equal(await store.tryAcquire(args(tag, 'f', { fair: true, ticketTtlMs: 0 })), Full, 'a fair try counts only live tickets (no error)')
    t.same(await load(store as SlotStore, tag), { held: 1, waiting: 1 }, 'usage counts only the live ticket')
    t.same(await store.refreshTickets([ref(tag, 'w'), ref(tag, 'lapsed7')], 10_000), [true, false])
    await store.abandon(ref(tag, 'lapsed8'))

    t.equal(await store.release({ ...ref(tag, 'h'), leaseMs: 10_000 }), Released)
    let calls = 1
    let outcome = await store.poll(args(tag, 'w', { maxWaiters: 1 }))
    while (outcome !== Acquired && calls < 40) {
      calls++
      outcome = await store.poll(args(tag, 'w', { maxWaiters: 1 }))
    }
    t.equal(outcome, Acquired, `the live ticket was granted after ${calls} grant passes`)
    t.ok(calls <= 25, 'each pass purges a bounded chunk: 20,000 lapsed tickets take about 20 passes')
    t.same(await load(store, tag), { held: 1, waiting: 0 })
    t.equal(await store.release(ref(tag, 'w')), Released)
  })

  test('a subject with max 10000 acquires and releases', async t => {
    const { store } = await factory(t)
    const tag = newTag()
    const max = 10_000
    const names = Array.from({ length: max }, (_, i) => `big${i}`)
    const outcomes = await Promise.all(names.map(name => store.tryAcquire(args(tag, name, { max }))))
    t.equal(outcomes.filter(isAcquired).length, max, '10,000 acquire')
    t.equal(outcomes.filter(o => o === Acquired).length, 1, 'exactly one of them filled the subject')
    t.equal(await store.tryAcquire(args(tag, 'w', { max })), Full, 'the next one waits')
    t.equal(await store.release({ ...ref(tag, 'big0', max), leaseMs: 10_000 }), Released)
    t.equal(await store.poll(args(tag, 'w', { max })), Acquired, 'a release hands its slot to the ticket')
    const released = await Promise.all([...names.slice(1), 'w'].map(name => store.release(ref(tag, name, max))))
    t.equal(released.filter(o => o === Released).length, max, 'every slot is released')
    t.same(await load(store, tag), { held: 0, waiting: 0 })
  })
}

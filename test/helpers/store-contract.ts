/**
 * The SlotStore contract: one suite, run against every store the plugin ships (and against a
 * Redis Cluster by test/cluster.test.ts). Each case gets a fresh store (a fresh key prefix for
 * Redis) and talks to it only through the interface.
 */
import { randomBytes } from 'node:crypto'
import { eventually, sleep } from './app'
import { AcquireOutcome, type SlotStore, type TryAcquireArgs } from '../../lib/stores/store'

type Test = tap.Test

export interface Backend {
  store: SlotStore
  /** Another store on the same backing data (another client for Redis), for concurrency. */
  peer: () => SlotStore
}

export type Factory = (t: Test) => Promise<Backend>

const { Acquired, AcquiredWithRoom, Waiting, QueueFull } = AcquireOutcome

/** Both acquired outcomes as one (whether room is left is tested on its own). */
function held (outcome: AcquireOutcome): AcquireOutcome {
  return outcome === AcquiredWithRoom ? Acquired : outcome
}

/** Defaults that keep a test's holders and tickets alive well past its end. */
function args (tag: string, member: string, overrides: Partial<TryAcquireArgs> = {}): TryAcquireArgs {
  return { tag, member, max: 1, leaseMs: 10_000, maxWaiters: 10, ticketTtlMs: 10_000, ...overrides }
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
  return await store.tryAcquire(args(tag, probe, { max, ticketTtlMs: 0 })) === Waiting
}

/**
 * Records the grants a store announces to `instanceId` (member and whether it is a claim),
 * once they can arrive; the subscription stops and the store closes when the test ends.
 */
async function recordGrants (t: Test, store: SlotStore, instanceId: string): Promise<Array<[string, boolean]>> {
  const grants: Array<[string, boolean]> = []
  const subscription = store.onGrant!(instanceId, (member, claimed) => grants.push([member, claimed]))
  t.teardown(async () => {
    subscription.stop()
    await store.close?.()
  })
  await subscription.ready
  return grants
}

export function contract (t: Test, factory: Factory): void {
  t.test('acquires up to max, then answers Waiting', async t => {
    const { store } = await factory(t)
    const tag = newTag()
    for (const m of ['a', 'b', 'c']) {
      t.equal(held(await store.tryAcquire(args(tag, m, { max: 3 }))), Acquired, `${m} acquires`)
    }
    t.equal(held(await store.tryAcquire(args(tag, 'd', { max: 3 }))), Waiting, 'the 4th waits')
    t.equal(held(await store.tryAcquire(args(tag, 'e', { max: 3 }))), Waiting, 'and so does the 5th')
    // Subjects are independent.
    t.equal(held(await store.tryAcquire(args(newTag(), 'd', { max: 3 }))), Acquired, 'another subject is free')
  })

  t.test('ticketTtlMs 0: full answers Waiting without queueing', async t => {
    const { store } = await factory(t)
    const tag = newTag()
    t.equal(held(await store.tryAcquire(args(tag, 'h'))), Acquired)
    t.equal(held(await store.tryAcquire(args(tag, 'x', { ticketTtlMs: 0, maxWaiters: 1 }))), Waiting, 'full, not queued')
    // With room for one ticket, 'w' takes it: 'x' did not.
    t.equal(held(await store.tryAcquire(args(tag, 'w', { maxWaiters: 1 }))), Waiting, 'the single queue place was still free')
    t.equal(held(await store.tryAcquire(args(tag, 'z', { maxWaiters: 1 }))), QueueFull, 'and now it is taken')
    t.equal(held(await store.tryAcquire(args(tag, 'x', { ticketTtlMs: 0, maxWaiters: 1 }))), Waiting,
      'ticketTtlMs 0 never reports QueueFull: it does not ask for a place')
  })

  t.test('re-acquire by a holder refreshes its lease and takes no second slot', async t => {
    const { store } = await factory(t)
    const tag = newTag()
    t.equal(held(await store.tryAcquire(args(tag, 'a', { max: 2 }))), Acquired)
    t.equal(held(await store.tryAcquire(args(tag, 'a', { max: 2 }))), Acquired, 'again: still Acquired')
    t.equal(held(await store.tryAcquire(args(tag, 'b', { max: 2 }))), Acquired, 'the second slot is still free')
    t.equal(held(await store.tryAcquire(args(tag, 'c', { max: 2 }))), Waiting, 'a and b hold both slots')
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

  t.test('release frees a slot and is a no-op when absent', async t => {
    const { store } = await factory(t)
    const tag = newTag()
    t.equal(held(await store.tryAcquire(args(tag, 'a'))), Acquired)
    t.equal(held(await store.tryAcquire(args(tag, 'b', { ticketTtlMs: 0 }))), Waiting)
    await store.release({ tag, member: 'a' })
    t.equal(held(await store.tryAcquire(args(tag, 'b', { ticketTtlMs: 0 }))), Acquired, 'the freed slot goes to b')

    // Releasing an unknown member, twice, or on an unknown subject changes nothing.
    await store.release({ tag, member: 'a' })
    await store.release({ tag, member: 'nobody' })
    await store.release({ tag: newTag(), member: 'nobody' })
    t.ok(await isFull(store, tag, 1), 'b still holds the slot')
  })

  t.test('an expired lease frees its slot', async t => {
    const { store } = await factory(t)
    const tag = newTag()
    t.equal(held(await store.tryAcquire(args(tag, 'a', { leaseMs: 150 }))), Acquired)
    t.equal(held(await store.tryAcquire(args(tag, 'b', { ticketTtlMs: 0 }))), Waiting, 'a holds it for now')
    await sleep(250)
    t.equal(held(await store.tryAcquire(args(tag, 'b', { ticketTtlMs: 0 }))), Acquired, 'a expired: b gets the slot')
  })

  t.test('renew extends a live lease', async t => {
    const { store } = await factory(t)
    const tag = newTag()
    t.equal(held(await store.tryAcquire(args(tag, 'a', { leaseMs: 300 }))), Acquired)
    await sleep(200)
    t.same(await store.renew([{ tag, member: 'a' }], 300), [true], 'live: renewed')
    await sleep(200)
    // ~400 ms: past the first lease, inside the renewed one.
    t.ok(await isFull(store, tag, 1), 'a still holds the slot')
    t.same(await store.renew([{ tag, member: 'a' }], 300), [true], 'and can renew again')
  })

  t.test('renew returns false for a member that never held or expired, and does not re-add it', async t => {
    const { store } = await factory(t)
    const tag = newTag()
    t.same(await store.renew([{ tag, member: 'ghost' }], 1000), [false], 'unknown subject')
    t.equal(held(await store.tryAcquire(args(tag, 'long', { max: 2, leaseMs: 10_000 }))), Acquired)
    t.same(await store.renew([{ tag, member: 'ghost' }], 1000), [false], 'known subject, never held')

    t.equal(held(await store.tryAcquire(args(tag, 'short', { max: 2, leaseMs: 100 }))), Acquired)
    await sleep(200)
    t.same(await store.renew([{ tag, member: 'short' }], 10_000), [false], 'expired: not renewed')
    t.same(await store.renew([{ tag, member: 'short' }], 10_000), [false], 'still not (it was not re-added)')
    t.equal(held(await store.tryAcquire(args(tag, 'c', { max: 2, ticketTtlMs: 0 }))), Acquired, 'the expired slot is free')
    t.equal(held(await store.tryAcquire(args(tag, 'd', { max: 2, ticketTtlMs: 0 }))), Waiting, 'long and c hold both slots')
    t.same(await store.renew([{ tag, member: 'ghost' }], 1000), [false], 'renew does not add a new holder either')
    t.equal(held(await store.tryAcquire(args(tag, 'd', { max: 3, ticketTtlMs: 0 }))), Acquired, 'only two holders: long and c')
  })

  t.test('renew of several holds answers one boolean each, in order', async t => {
    const { store } = await factory(t)
    const tagA = newTag()
    const tagB = newTag()
    t.equal(held(await store.tryAcquire(args(tagA, 'a1', { max: 3 }))), Acquired)
    t.equal(held(await store.tryAcquire(args(tagA, 'a2', { max: 3, leaseMs: 100 }))), Acquired)
    t.equal(held(await store.tryAcquire(args(tagB, 'b1'))), Acquired)
    await sleep(200)
    t.same(await store.renew([
      { tag: tagA, member: 'a2' },
      { tag: tagB, member: 'b1' },
      { tag: tagA, member: 'nobody' },
      { tag: tagA, member: 'a1' },
      { tag: newTag(), member: 'a1' }
    ], 5000), [false, true, false, true, false])
    t.same(await store.renew([], 5000), [], 'no holds, no answers')
  })

  t.test('the wait queue is bounded by maxWaiters', async t => {
    const { store } = await factory(t)
    const tag = newTag()
    const q = (member: string): Promise<AcquireOutcome> => store.tryAcquire(args(tag, member, { maxWaiters: 3 }))
    t.equal(held(await q('h')), Acquired)
    t.equal(held(await q('w1')), Waiting)
    t.equal(held(await q('w2')), Waiting)
    t.equal(held(await q('w3')), Waiting)
    t.equal(held(await q('w4')), QueueFull, 'the 4th distinct waiter is refused')
    t.equal(held(await q('w2')), Waiting, 'an already queued member refreshes its ticket')
    t.equal(held(await q('w4')), QueueFull, 'w4 was not queued by its refused attempt')
    // A larger bound on a later call lets more in (the bound is per call).
    t.equal(held(await store.tryAcquire(args(tag, 'w4', { maxWaiters: 4 }))), Waiting)
    t.equal(held(await store.tryAcquire(args(tag, 'w5', { maxWaiters: 4 }))), QueueFull)
  })

  t.test('waiting tickets expire after ticketTtlMs', async t => {
    const { store } = await factory(t)
    const tag = newTag()
    t.equal(held(await store.tryAcquire(args(tag, 'h'))), Acquired)
    t.equal(held(await store.tryAcquire(args(tag, 'w1', { maxWaiters: 1, ticketTtlMs: 150 }))), Waiting)
    t.equal(held(await store.tryAcquire(args(tag, 'w2', { maxWaiters: 1 }))), QueueFull, 'w1 holds the only place')
    await sleep(250)
    t.equal(held(await store.tryAcquire(args(tag, 'w2', { maxWaiters: 1 }))), Waiting, "w1's ticket expired")
    t.equal(held(await store.tryAcquire(args(tag, 'w1', { maxWaiters: 1 }))), QueueFull, 'w1 lost its place')
  })

  t.test('leaveQueue frees a queue place and is a no-op when absent', async t => {
    const { store } = await factory(t)
    const tag = newTag()
    t.equal(held(await store.tryAcquire(args(tag, 'h'))), Acquired)
    t.equal(held(await store.tryAcquire(args(tag, 'w1', { maxWaiters: 1 }))), Waiting)
    t.equal(held(await store.tryAcquire(args(tag, 'w2', { maxWaiters: 1 }))), QueueFull)
    await store.leaveQueue({ tag, member: 'w1' })
    t.equal(held(await store.tryAcquire(args(tag, 'w2', { maxWaiters: 1 }))), Waiting, 'w2 takes the freed place')

    await store.leaveQueue({ tag, member: 'w1' })
    await store.leaveQueue({ tag, member: 'nobody' })
    await store.leaveQueue({ tag: newTag(), member: 'nobody' })
    // leaveQueue leaves holders alone, even when named.
    await store.leaveQueue({ tag, member: 'h' })
    t.ok(await isFull(store, tag, 1), 'h still holds the slot')
    t.equal(held(await store.tryAcquire(args(tag, 'w3', { maxWaiters: 1 }))), QueueFull, "w2's ticket is still there")
  })

  t.test("acquiring removes the member's own ticket", async t => {
    const { store } = await factory(t)
    const tag = newTag()
    t.equal(held(await store.tryAcquire(args(tag, 'h'))), Acquired)
    t.equal(held(await store.tryAcquire(args(tag, 'w1', { maxWaiters: 1 }))), Waiting, 'w1 queues')
    await store.release({ tag, member: 'h' })
    t.equal(held(await store.tryAcquire(args(tag, 'w1', { maxWaiters: 1 }))), Acquired, 'w1 gets the slot')
    t.equal(held(await store.tryAcquire(args(tag, 'w2', { maxWaiters: 1 }))), Waiting, "w1's ticket is gone: its place is free")
    t.equal(held(await store.tryAcquire(args(tag, 'w3', { maxWaiters: 1 }))), QueueFull)
  })

  t.test('holders with different leases coexist', async t => {
    const { store } = await factory(t)
    const tag = newTag()
    t.equal(held(await store.tryAcquire(args(tag, 'long', { max: 2, leaseMs: 10_000 }))), Acquired)
    t.equal(held(await store.tryAcquire(args(tag, 'short', { max: 2, leaseMs: 100 }))), Acquired)
    t.ok(await isFull(store, tag, 2), 'both hold a slot')
    await sleep(200)
    t.equal(held(await store.tryAcquire(args(tag, 'x', { max: 2, ticketTtlMs: 0 }))), Acquired, "short's slot is free")
    t.equal(held(await store.tryAcquire(args(tag, 'y', { max: 2, ticketTtlMs: 0 }))), Waiting, 'long still holds the other')
    t.same(await store.renew([{ tag, member: 'long' }, { tag, member: 'short' }], 10_000), [true, false])

    // The other way round: a long lease taken after a short one outlives it.
    const tag2 = newTag()
    t.equal(held(await store.tryAcquire(args(tag2, 'short', { max: 2, leaseMs: 100 }))), Acquired)
    t.equal(held(await store.tryAcquire(args(tag2, 'long', { max: 2, leaseMs: 10_000 }))), Acquired)
    await sleep(200)
    t.equal(held(await store.tryAcquire(args(tag2, 'x', { max: 2, ticketTtlMs: 0 }))), Acquired)
    t.equal(held(await store.tryAcquire(args(tag2, 'y', { max: 2, ticketTtlMs: 0 }))), Waiting, 'long outlived short')
  })

  t.test('an acquire says whether room is left', async t => {
    const { store } = await factory(t)
    const tag = newTag()
    t.equal(await store.tryAcquire(args(tag, 'a', { max: 3 })), AcquiredWithRoom, '1 of 3')
    t.equal(await store.tryAcquire(args(tag, 'b', { max: 3 })), AcquiredWithRoom, '2 of 3')
    t.equal(await store.tryAcquire(args(tag, 'c', { max: 3 })), Acquired, '3 of 3: now full')
    t.equal(await store.tryAcquire(args(tag, 'a', { max: 3 })), Acquired, 'a refresh of a full subject')
    await store.release({ tag, member: 'c' })
    t.equal(await store.tryAcquire(args(tag, 'a', { max: 3 })), AcquiredWithRoom, 'a refresh with a free slot')
  })

  t.test('ahead: slots left for earlier waiters are not taken', async t => {
    const { store } = await factory(t)
    const tag = newTag()
    t.equal(held(await store.tryAcquire(args(tag, 'a', { max: 3 }))), Acquired)
    t.equal(await store.tryAcquire(args(tag, 'n', { max: 3, ahead: 2 })), Waiting, 'two free slots, two ahead: wait')
    t.equal(held(await store.tryAcquire(args(tag, 'n', { max: 3, ahead: 1 }))), Acquired, 'one ahead leaves one for n')
  })

  t.test('fair mode serves tickets oldest first, across callers', async t => {
    const backend = await factory(t)
    const [s1, s2] = [backend.store, backend.peer()]
    const tag = newTag()
    const fair = (store: SlotStore, member: string): Promise<AcquireOutcome> =>
      store.tryAcquire(args(tag, member, { max: 2, fair: true }))
    t.equal(held(await fair(s1, 'h1')), Acquired)
    t.equal(held(await fair(s2, 'h2')), Acquired)
    t.equal(await fair(s1, 'w1'), Waiting)
    t.equal(await fair(s2, 'w2'), Waiting)
    t.equal(await fair(s1, 'w3'), Waiting)
    await s1.release({ tag, member: 'h1' })
    t.equal(await fair(s2, 'late'), Waiting, 'a newcomer queues behind the tickets')
    t.equal(await fair(s1, 'w3'), Waiting, 'w3 is not the oldest')
    t.equal(await fair(s2, 'w2'), Waiting, 'nor is w2')
    t.equal(held(await fair(s1, 'w1')), Acquired, 'the oldest ticket gets the slot')
    await s2.release({ tag, member: 'h2' })
    t.equal(held(await fair(s2, 'w2')), Acquired, 'then the next oldest')
    await s1.leaveQueue({ tag, member: 'w3' })
    await s1.release({ tag, member: 'w1' })
    t.equal(held(await fair(s2, 'late')), Acquired, 'a ticket that left no longer counts ahead')
  })

  t.test('fair mode: an expired ticket does not hold up the line', async t => {
    const { store } = await factory(t)
    const tag = newTag()
    const fair = (member: string, ticketTtlMs = 10_000): Promise<AcquireOutcome> =>
      store.tryAcquire(args(tag, member, { fair: true, ticketTtlMs }))
    t.equal(held(await fair('h')), Acquired)
    t.equal(await fair('dead', 100), Waiting)
    t.equal(await fair('alive'), Waiting)
    await store.release({ tag, member: 'h' })
    t.equal(await fair('alive'), Waiting, 'the older ticket goes first while it lives')
    await sleep(200)
    t.equal(held(await fair('alive')), Acquired, 'once it lapsed, the next one gets the slot')
  })

  t.test('refreshTickets keeps live tickets, not lapsed ones', async t => {
    const { store } = await factory(t)
    const tag = newTag()
    t.equal(held(await store.tryAcquire(args(tag, 'h'))), Acquired)
    t.equal(await store.tryAcquire(args(tag, 'w1', { ticketTtlMs: 300, maxWaiters: 2 })), Waiting)
    t.equal(await store.tryAcquire(args(tag, 'w2', { ticketTtlMs: 100, maxWaiters: 2 })), Waiting)
    await sleep(150)
    await store.refreshTickets([{ tag, member: 'w1' }, { tag, member: 'w2' }], 1000)
    await sleep(250)
    // w1 (refreshed while alive) still holds a place; w2 lapsed before the refresh and is gone.
    t.equal(await store.tryAcquire(args(tag, 'n1', { maxWaiters: 2 })), Waiting, 'one place was free')
    t.equal(await store.tryAcquire(args(tag, 'n2', { maxWaiters: 2 })), QueueFull, 'and only one: w1 is still queued')
  })

  t.test('50 concurrent acquires with max 5: exactly 5 acquire', async t => {
    const backend = await factory(t)
    const stores = [backend.store, ...Array.from({ length: 4 }, () => backend.peer())]
    const tag = newTag()
    const outcomes = await Promise.all(Array.from({ length: 50 }, (_, i) =>
      stores[i % stores.length].tryAcquire(args(tag, `m${i}`, { max: 5, maxWaiters: 10 }))))
    const count = (o: AcquireOutcome): number => outcomes.filter(x => held(x) === o).length
    t.equal(count(Acquired), 5, 'exactly max acquire')
    t.equal(count(Waiting), 10, 'exactly maxWaiters queue')
    t.equal(count(QueueFull), 35, 'the rest are refused')
    t.ok(await isFull(backend.store, tag, 5), 'all 5 slots are held')
    t.equal(held(await backend.store.tryAcquire(args(tag, 'late', { max: 6, ticketTtlMs: 0 }))), Acquired, 'but no more than 5')
  })

  t.test('a release grants the freed slot to the oldest live ticket, whichever instance it belongs to', async t => {
    const { store, peer } = await factory(t)
    const other = peer()
    if (store.onGrant === undefined || other.onGrant === undefined) return t.pass('this store does not grant')
    const tag = newTag()
    const [mine, theirs] = await Promise.all([recordGrants(t, store, 'a'), recordGrants(t, other, 'b')])
    // a's grants, then b's.
    const grants = (): Array<[string, boolean]> => [...mine, ...theirs]
    const release = (member: string, max = 1): Promise<boolean | void> => store.release({ tag, member, max, leaseMs: 10_000, claimMs: 3000 })

    t.equal(held(await store.tryAcquire(args(tag, 'a:h', { queued: false }))), Acquired)
    t.equal(await store.tryAcquire(args(tag, 'a:w1', { queued: false })), Waiting)
    t.equal(await other.tryAcquire(args(tag, 'b:w2', { queued: false })), Waiting)
    t.equal(await store.tryAcquire(args(tag, 'a:w3', { queued: false })), Waiting)
    await store.leaveQueue({ tag, member: 'a:w3' })

    t.equal(await release('a:h'), true, 'the holder releases')
    t.same(grants(), [['a:w1', false]], "the oldest ticket, the releasing instance's own, gets the slot with a full lease")
    t.ok(await isFull(store, tag, 1), 'the slot is taken again in the same step: nobody can barge in')
    t.same(await store.refreshTickets([{ tag, member: 'a:w1' }, { tag, member: 'b:w2' }], 10_000), [false, true], "a:w1's ticket left with the grant")
    t.equal(await store.tryAcquire(args(tag, 'a:w1')), Acquired, 'a:w1 holds it: a try of its own answers Acquired')

    t.equal(await release('a:w1'), true)
    await eventually(() => grants().length === 2)
    t.same(grants()[1], ['b:w2', true], "another instance's waiter gets it as a claim, announced to that instance")
    t.same(await other.renew([{ tag, member: 'b:w2' }], 10_000), [true], 'b confirms the claim by renewing it')
    t.ok(await isFull(store, tag, 1))

    t.equal(await other.release({ tag, member: 'b:w2' }), true, 'a release without max grants nothing')
    t.equal(grants().length, 2)
    t.equal(await store.tryAcquire(args(tag, 'a:w3')), Acquired, 'a:w3 left the queue: its next try is a fresh one')
    t.equal(await release('a:w3'), true)
    await sleep(50)
    t.equal(grants().length, 2, 'nobody is left to grant to')
  })

  t.test('grants skip lapsed tickets, fill every free slot, and lapse after their claim', async t => {
    const { store } = await factory(t)
    if (store.onGrant === undefined) return t.pass('this store does not grant')
    const tag = newTag()
    const recorded = await recordGrants(t, store, 'c')
    const grants = (): string[] => recorded.map(([member]) => member)
    t.equal(held(await store.tryAcquire(args(tag, 'c:h1', { max: 2 }))), Acquired)
    t.equal(held(await store.tryAcquire(args(tag, 'c:h2', { max: 2 }))), Acquired)
    t.equal(await store.tryAcquire(args(tag, 'c:gone', { max: 2, ticketTtlMs: 100 })), Waiting)
    t.equal(await store.tryAcquire(args(tag, 'c:w1', { max: 2 })), Waiting)
    t.equal(await store.tryAcquire(args(tag, 'c:w2', { max: 2 })), Waiting)
    await sleep(200)
    // A release with a larger max than before: both freed places go out at once.
    t.equal(await store.release({ tag, member: 'c:h1', max: 3, leaseMs: 10_000, claimMs: 150 }), true)
    t.same(grants(), ['c:w1', 'c:w2'], 'the lapsed ticket is skipped; c:w1 and c:w2 fill the room (max 3)')
    t.ok(await isFull(store, tag, 3))

    // Claims: granted by another instance's release, they lapse unless renewed.
    const tag2 = newTag()
    t.equal(held(await store.tryAcquire(args(tag2, 'x:h'))), Acquired)
    t.equal(await store.tryAcquire(args(tag2, 'c:w')), Waiting)
    t.equal(await store.release({ tag: tag2, member: 'x:h', max: 1, leaseMs: 10_000, claimMs: 150 }), true)
    await eventually(() => grants().includes('c:w'))
    t.ok(await isFull(store, tag2, 1), 'c:w holds the claim')
    await sleep(250)
    t.same(await store.renew([{ tag: tag2, member: 'c:w' }], 10_000), [false], 'an unconfirmed claim lapses')
    t.equal(held(await store.tryAcquire(args(tag2, 'y:n'))), Acquired, 'and the slot is free again')
  })

  t.test('a ticket kept alive by refreshes keeps its place past its first lifetime, and is granted', async t => {
    const { store } = await factory(t)
    if (store.onGrant === undefined) return t.pass('this store does not grant')
    const tag = newTag()
    const grants = await recordGrants(t, store, 'd')
    t.equal(held(await store.tryAcquire(args(tag, 'd:h'))), Acquired)
    t.equal(await store.tryAcquire(args(tag, 'd:w', { ticketTtlMs: 150, queued: false })), Waiting)
    // Five refreshes, 100 ms apart: 500 ms, over three ticket lifetimes.
    for (let i = 0; i < 5; i++) {
      await sleep(100)
      t.same(await store.refreshTickets([{ tag, member: 'd:w' }], 150), [true], `refresh ${i + 1}`)
    }
    t.equal(await store.release({ tag, member: 'd:h', max: 1, leaseMs: 10_000, claimMs: 3000 }), true)
    t.same(grants, [['d:w', false]], 'the long waiter still had its place, and got the slot')
  })
}

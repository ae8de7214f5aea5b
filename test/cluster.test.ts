/**
 * fastify-slots on a real 3-master Redis Cluster (started here with redis-server and
 * redis-cli --cluster create), through an ioredis Cluster client: the store contract, a
 * concurrency run through Fastify, where subjects' keys land, cross-app wake-ups over pub/sub,
 * and that the scripts touch only the keys they are given (no CROSSSLOT, no MOVED, no errors).
 */
import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import { Redis, type Cluster, type RedisOptions } from 'ioredis'
import fastifySlots from '../lib'
import { RedisStore } from '../lib/stores/redis-store'
import { AcquireOutcome, ReleaseOutcome, type MemberRef } from '../lib/stores/store'
import { uniquePrefix } from './helpers/redis'
import { eventually, sleep } from './helpers/app'
import { contract, m, seedLapsedRedisTickets } from './helpers/store-contract'
import {
  clusterClient, clusterHolders, clusterKeysUnder, deleteKeysUnder, missingClusterTools,
  slotMasters, startPrivateCluster, type PrivateCluster
} from './helpers/cluster'

type Test = tap.Test
interface Teardown { teardown: (fn: () => unknown) => void }

const { Acquired, AcquiredWithRoom, Full, QueueFull } = AcquireOutcome
const STRUCTURES = ['holders', 'tickets', 'queue'] as const

/** A Fastify app with fastify-slots on the given options (a Cluster as `redis`), closed after the test. */
async function clusterApp (t: Teardown, options: fastifySlots.FastifySlotsOptions): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(fastifySlots, options)
  t.teardown(() => app.close())
  return app
}

/** A plain (non-cluster) connection to one node, to look at what that node alone holds. */
function nodeClient (t: Teardown, port: number, options: RedisOptions = {}): Redis {
  const redis = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 0, ...options })
  redis.on('error', () => {})
  t.teardown(() => redis.disconnect())
  return redis
}

/** Samples the live holder count of each subject until stopped; returns the maximum per tag. */
function sampleHolders (client: Cluster, prefix: string, tags: string[]): { stop: () => Promise<{ max: Map<string, number>, samples: number }> } {
  const sampling = { running: true }
  const max = new Map(tags.map(tag => [tag, 0]))
  let samples = 0
  const loop = (async () => {
    while (sampling.running) {
      const counts = await Promise.all(tags.map(tag => clusterHolders(client, prefix, tag)))
      counts.forEach((count, i) => max.set(tags[i], Math.max(max.get(tags[i])!, count)))
      samples++
      await sleep(2)
    }
  })()
  return { stop: async () => { sampling.running = false; await loop; return { max, samples } } }
}

function key (prefix: string, tag: string, structure: string): string {
  return `${prefix}:{${tag}}:${structure}`
}

/** The master (`host:port`) serving each subject's holders key. */
async function mastersOf (client: Cluster, prefix: string, tags: string[]): Promise<string[]> {
  const masterOf = await slotMasters(client)
  return await Promise.all(tags.map(async tag => masterOf(await client.cluster('KEYSLOT', key(prefix, tag, 'holders')))))
}

/** `count` subject tags `<type>:<base><n>` on distinct masters (one per master with count = masters). */
async function tagsOnDistinctMasters (client: Cluster, prefix: string, type: string, base: string, count: number): Promise<string[]> {
  const masterOf = await slotMasters(client)
  const picked = new Map<string, string>()
  for (let n = 0; picked.size < count && n < 1000; n++) {
    const tag = `${type}:${base}${n}`
    const master = masterOf(await client.cluster('KEYSLOT', key(prefix, tag, 'holders')))
    if (!picked.has(master)) picked.set(master, tag)
  }
  return [...picked.values()]
}

function clusterSuite (t: Test, cluster: PrivateCluster): void {
  t.test('the store contract over a Cluster client', async t => {
    const redis = clusterClient(t, cluster)
    const prefixes: string[] = []
    t.teardown(async () => {
      for (const prefix of prefixes) await deleteKeysUnder(redis, prefix)
    })
    const backend = (hashTag?: () => string) => async (t: Test) => {
      const prefix = uniquePrefix('cluster-contract')
      prefixes.push(prefix)
      const stores: RedisStore[] = []
      t.teardown(() => { for (const store of stores) store.close() })
      const store = (client: Cluster): RedisStore => {
        const created = new RedisStore({ client, prefix, hashTag })
        stores.push(created)
        return created
      }
      const main = store(redis)
      return {
        store: main,
        peer: () => store(clusterClient(t, cluster)),
        seedLapsedTickets: hashTag === undefined ? (tag: string, members: readonly string[]) => seedLapsedRedisTickets(redis, main, tag, members) : undefined
      }
    }
    // Every subject under its own hash tag, spread over the shards; a set's subjects must share one.
    contract(t, backend(), { except: /^sets:/ })
    t.test('sets, with every subject under one hash tag', async t => {
      contract(t, backend(() => 'contract'), { only: /^sets:/ })
    })
  })

  t.test('concurrent requests through Fastify on a Cluster never exceed max and all complete', async t => {
    const redis = clusterClient(t, cluster)
    const sampler = clusterClient(t, cluster)
    const prefix = uniquePrefix('cluster-concurrency')
    const app = await clusterApp(t, { redis, prefix, maxWaiters: 100, backoff: { initialMs: 10, maxMs: 100 } })
    const inFlight = new Map<string, number>()
    const peak = new Map<string, number>()
    app.get<{ Params: { id: string }, Querystring: { max: string } }>('/work/:id', async (request) => {
      const { id } = request.params
      const slot = await request.acquireSlot('user', id, Number(request.query.max))
      inFlight.set(id, (inFlight.get(id) ?? 0) + 1)
      peak.set(id, Math.max(peak.get(id) ?? 0, inFlight.get(id)!))
      await sleep(15)
      inFlight.set(id, inFlight.get(id)! - 1)
      return { waitedMs: slot.waitedMs }
    })
    const base = await app.listen({ port: 0, host: '127.0.0.1' })

    t.test('one subject: 40 requests, max 3', async t => {
      const sampling = sampleHolders(sampler, prefix, ['user:u1'])
      const responses = await Promise.all(Array.from({ length: 40 }, () => fetch(`${base}/work/u1?max=3`)))
      const { max, samples } = await sampling.stop()
      t.same(responses.map(r => r.status), Array(40).fill(200), 'every request completed')
      t.ok(samples > 10, `sampled the cluster ${samples} times`)
      t.ok(max.get('user:u1')! <= 3, `the cluster never held more than 3 (max sampled ${max.get('user:u1')})`)
      t.equal(max.get('user:u1'), 3, 'and the limit was actually reached')
      t.equal(peak.get('u1'), 3, 'handlers in flight peaked at exactly 3')
      await eventually(async () => (await clusterKeysUnder(redis, prefix)).length === 0)
      t.same(await clusterKeysUnder(redis, prefix), [], 'no holder or waiter is left')
    })

    t.test('six subjects on all three shards in parallel: 15 requests each, max 2', async t => {
      const tags = [
        ...await tagsOnDistinctMasters(redis, prefix, 'user', 'a', 3),
        ...await tagsOnDistinctMasters(redis, prefix, 'user', 'b', 3)
      ]
      t.equal(new Set(await mastersOf(redis, prefix, tags)).size, 3, 'the subjects live on all three masters')
      const ids = tags.map(tag => tag.slice('user:'.length))
      const sampling = sampleHolders(sampler, prefix, tags)
      const responses = await Promise.all(ids.flatMap(id => Array.from({ length: 15 }, () => fetch(`${base}/work/${id}?max=2`))))
      const { max } = await sampling.stop()
      t.same(responses.map(r => r.status), Array(ids.length * 15).fill(200), 'every request completed')
      for (const [i, tag] of tags.entries()) {
        t.ok(max.get(tag)! <= 2, `${tag}: never more than 2 holders (max sampled ${max.get(tag)})`)
        t.equal(max.get(tag), 2, `${tag}: the limit was reached`)
        t.equal(peak.get(ids[i]), 2, `${tag}: handlers in flight peaked at exactly 2`)
      }
      await eventually(async () => (await clusterKeysUnder(redis, prefix)).length === 0)
      t.same(await clusterKeysUnder(redis, prefix), [], 'no holder or waiter is left')
    })
  })

  t.test('different subjects land on different shards; one subject stays in one slot', async t => {
    const redis = clusterClient(t, cluster)
    const prefix = uniquePrefix('cluster-shards')
    const store = new RedisStore({ client: redis, prefix })
    t.teardown(() => store.close())
    const masterOf = await slotMasters(redis)
    const nodes = new Map(cluster.ports.map(port => [`127.0.0.1:${port}`, nodeClient(t, port)]))
    const tags = Array.from({ length: 30 }, (_, i) => `user:s${i}`)

    const placement = await Promise.all(tags.map(async tag => {
      const slots = await Promise.all(STRUCTURES.map(s => key(prefix, tag, s))
        .map(k => redis.cluster('KEYSLOT', k)))
      return { tag, slots, master: masterOf(slots[0]) }
    }))
    for (const { tag, slots } of placement) {
      t.equal(new Set(slots).size, 1, `${tag}: holders, tickets and queue share slot ${slots[0]}`)
    }
    const perMaster = new Map<string, number>()
    for (const { master } of placement) perMaster.set(master, (perMaster.get(master) ?? 0) + 1)
    t.comment(`30 subjects over the masters: ${JSON.stringify(Object.fromEntries(perMaster))}`)
    t.ok(perMaster.size >= 2, 'at least two masters are used')
    t.equal(perMaster.size, 3, 'all three masters are used')

    // Write all three structures of every subject through the store, then look at the nodes
    // themselves: each subject's keys are all on its master, and the other masters refuse them.
    for (const tag of tags) {
      t.equal(await store.tryAcquire({ tag, member: m('h'), max: 1, leaseMs: 10_000, maxWaiters: 5, ticketTtlMs: 10_000 }), Acquired)
      t.same(await store.tryAcquire({ tag, member: m('w'), max: 1, leaseMs: 10_000, maxWaiters: 5, ticketTtlMs: 10_000 }), { outcome: Full, ahead: 0 })
    }
    let misplaced = 0
    for (const { tag, master } of placement) {
      const keys = STRUCTURES.map(s => key(prefix, tag, s))
      if (await nodes.get(master)!.exists(...keys) !== 3) misplaced++
      for (const [address, node] of nodes) {
        if (address === master) continue
        await t.rejects(node.exists(keys[0]), /MOVED/, `${tag}: ${address} does not serve it`)
      }
    }
    t.equal(misplaced, 0, "every subject's holders, tickets and queue are all on its master")
    for (const tag of tags) {
      await store.abandon({ tag, member: m('w') })
      t.equal(await store.release({ tag, member: m('h') }), ReleaseOutcome.Released)
    }
    t.same(await clusterKeysUnder(redis, prefix), [], 'release and abandon removed every key')
  })

  t.test('a release in one app grants the slot to a waiter in another app through pub/sub on the cluster', async t => {
    const prefix = uniquePrefix('cluster-wakeup')
    const backoff = { initialMs: 5000, maxMs: 5000 }
    const appA = await clusterApp(t, { redis: clusterClient(t, cluster), prefix, backoff })
    const appB = await clusterApp(t, { redis: clusterClient(t, cluster), prefix, backoff })
    appA.get<{ Params: { id: string } }>('/hold/:id', async (request) => {
      await request.acquireSlot('user', request.params.id, 1)
      await sleep(200)
      return 'held'
    })
    appB.get<{ Params: { id: string } }>('/get/:id', async (request) => {
      const slot = await request.acquireSlot('user', request.params.id, 1)
      return { waitedMs: slot.waitedMs }
    })
    const [baseA, baseB] = await Promise.all([appA.listen({ port: 0, host: '127.0.0.1' }), appB.listen({ port: 0, host: '127.0.0.1' })])

    const redis = clusterClient(t, cluster)
    // 'user:w' as asked, plus subjects on the other masters: grants published from every
    // shard, so at least two of them must cross the cluster bus to reach B's subscriber.
    const tags = ['user:w', ...await tagsOnDistinctMasters(redis, prefix, 'user', 'w', 3)]
    const masters = await mastersOf(redis, prefix, tags)
    const spread = tags.filter((_, i) => masters.indexOf(masters[i]) === i)
    t.equal(spread.length, 3, `subjects on all three masters: ${spread.join(', ')}`)

    // An onlooker on the grant channels, to see the grants the release script publishes.
    const onlooker = clusterClient(t, cluster)
    const published: string[] = []
    onlooker.on('pmessage', (_pattern: string, channel: string) => published.push(channel))
    await onlooker.psubscribe(`${prefix}:grants:*`)

    const results = await Promise.all(spread.map(async tag => {
      const id = tag.slice('user:'.length)
      const holding = fetch(`${baseA}/hold/${id}`)
      await eventually(async () => await clusterHolders(redis, prefix, tag) === 1)
      const started = Date.now()
      const res = await fetch(`${baseB}/get/${id}`)
      const elapsed = Date.now() - started
      const body = await res.json() as { waitedMs: number }
      return { tag, status: res.status, holding: (await holding).status, waitedMs: body.waitedMs, elapsed }
    }))
    for (const { tag, status, holding, waitedMs, elapsed } of results) {
      t.equal(holding, 200, `${tag}: A's request completed`)
      t.equal(status, 200, `${tag}: B got the slot`)
      t.ok(waitedMs < 2000, `${tag}: B waited ${waitedMs} ms (${elapsed} ms end to end), well before its 5000 ms backoff`)
      t.ok(waitedMs >= 50, `${tag}: and it did wait for A (${waitedMs} ms)`)
    }
    t.ok(published.length >= spread.length, `a grant per subject was published to B's instance channel (${published.length})`)
    t.equal(new Set(published).size, 1, `all on one channel, B's: ${[...new Set(published)].join(', ')}`)
    await eventually(async () => (await clusterKeysUnder(redis, prefix)).length === 0)
    t.same(await clusterKeysUnder(redis, prefix), [], 'no holder or waiter is left')
  })

  t.test('acquireSlots with a shared hashTag: one step on one shard, and a release in another app tells the waiting set to retry', async t => {
    const prefix = uniquePrefix('cluster-sets')
    const hashTag = (type: string, id: string): string | undefined => type === 'user' ? `gw:${id}` : type === 'account' ? 'gw:alice' : undefined
    const backoff = { initialMs: 5000, maxMs: 5000 }
    const appA = await clusterApp(t, { redis: clusterClient(t, cluster), prefix, backoff, hashTag })
    const appB = await clusterApp(t, { redis: clusterClient(t, cluster), prefix, backoff, hashTag })
    appA.get('/hold', async request => {
      await request.acquireSlot('account', 'a1', 1)
      await sleep(200)
      return 'held'
    })
    const redis = clusterClient(t, cluster)
    appB.get('/set', async request => {
      const slots = await request.acquireSlots([{ type: 'user', id: 'alice', max: 2 }, { type: 'account', id: 'a1', max: 1 }])
      // Read while the slots are held: their keys exist until the request ends.
      return { waitedMs: slots[0].waitedMs, keys: await clusterKeysUnder(redis, prefix) }
    })
    // Some subjects under the shared tag, one not: two groups, and each slot still comes back
    // in its place (the grouped ones are taken first).
    appB.get('/mixed', async request => {
      const slots = await request.acquireSlots([{ type: 'user', id: 'alice', max: 2 }, { type: 'job', id: 'j', max: 1 }, { type: 'account', id: 'a2', max: 1 }])
      return slots.map(s => `${s.type}:${s.id}`)
    })
    t.same((await appB.inject('/mixed')).json(), ['user:alice', 'job:j', 'account:a2'], 'slots in the order asked')
    const holding = appA.inject('/hold')
    await eventually(async () => (await appA.slots.usage('account', ['a1']))[0].held === 1)
    const answer = await appB.inject('/set')
    t.equal((await holding).body, 'held')
    t.equal(answer.statusCode, 200)
    const { waitedMs, keys } = answer.json() as { waitedMs: number, keys: string[] }
    t.ok(waitedMs >= 50 && waitedMs < 2000, `B waited for A (${waitedMs} ms), told by A's release, not by its 5000 ms backoff`)
    t.ok(keys.length > 0 && keys.every(k => k.startsWith(`${prefix}:{gw%3Aalice}:`)), `every key under the shared hash tag: ${keys.join(', ')}`)
    t.equal(new Set(await Promise.all(keys.map(k => redis.cluster('KEYSLOT', k)))).size, 1, 'so in one slot')
    await eventually(async () => (await clusterKeysUnder(redis, prefix)).length === 0)
  })

  t.test('acquireSlots across shards (no shared hashTag): never holds one slot while waiting for another, never over max, all complete', async t => {
    const redis = clusterClient(t, cluster)
    const prefix = uniquePrefix('cluster-sets-across')
    const [user, account] = await tagsOnDistinctMasters(redis, prefix, 'user', 'x', 2)
    const ids = [user, account].map(tag => tag.slice('user:'.length))
    const app = await clusterApp(t, { redis, prefix, maxWaiters: 100, backoff: { initialMs: 10, maxMs: 50 } })
    let release = (): void => {}
    app.get('/hold', async request => {
      await request.acquireSlot('user', ids[1], 1)
      await new Promise<void>(resolve => { release = resolve })
      return 'held'
    })
    const inFlight = [0, 0]
    let over = 0
    app.get('/set', async request => {
      await request.acquireSlots([{ type: 'user', id: ids[0], max: 2 }, { type: 'user', id: ids[1], max: 1 }])
      inFlight[0]++
      inFlight[1]++
      over = Math.max(over, inFlight[0] - 2, inFlight[1] - 1)
      await sleep(5)
      inFlight[0]--
      inFlight[1]--
      return 'both'
    })
    const holding = app.inject('/hold')
    await eventually(async () => await clusterHolders(redis, prefix, account) === 1)
    const waiter = app.inject('/set')
    await eventually(async () => (await app.slots.usage('user', [ids[1]]))[0].waiting === 1)
    const samples = []
    for (let i = 0; i < 40; i++) {
      samples.push(await clusterHolders(redis, prefix, user))
      await sleep(5)
    }
    t.same([...new Set(samples)], [0], `while it waits for ${account}, it holds no slot of ${user} (${samples.length} samples)`)
    release()
    t.equal((await waiter).body, 'both')
    t.equal((await holding).body, 'held')
    const answers = await Promise.all(Array.from({ length: 30 }, () => app.inject('/set')))
    t.same(answers.filter(r => r.body !== 'both').map(r => r.body), [], '30 concurrent sets complete')
    t.equal(over, 0, 'neither subject was ever over its max')
    await eventually(async () => (await clusterKeysUnder(redis, prefix)).length === 0)
  })

  t.test('every store method over all shards: right answers, no CROSSSLOT/MOVED/other error, only the given keys touched', async t => {
    // Every connection here skips CLIENT SETINFO, which Redis 7.0 answers with an error (it came
    // in 7.2) and would blur the error count below. ioredis' Cluster subscriber connection does
    // not take that option: the peer's is opened (by its grant subscription) before the count starts.
    const quiet = { disableClientInfo: true }
    const redis = clusterClient(t, cluster, { redisOptions: quiet })
    const prefix = uniquePrefix('cluster-keys')
    const tags = [
      ...await tagsOnDistinctMasters(redis, prefix, 'user', 'k', 3),
      ...await tagsOnDistinctMasters(redis, prefix, 'account', 'k', 3)
    ]
    t.equal(new Set(await mastersOf(redis, prefix, tags)).size, 3, 'the subjects live on all three masters')
    const masterOf = await slotMasters(redis)

    const store = new RedisStore({ client: redis, prefix })
    const peer = new RedisStore({ client: clusterClient(t, cluster, { redisOptions: quiet }), prefix })
    t.teardown(() => { store.close(); peer.close() })
    // The peer's waiters are instance 'b'; grants to them arrive on its grant channel.
    const granted = new Map<string, number>()
    const grants = peer.onGrant('b', ({ member }, claimed) => {
      t.ok(claimed, 'a grant to another instance is a claim')
      granted.set(member, (granted.get(member) ?? 0) + 1)
    })
    await grants.ready

    // Every key any command writes, per node, from keyspace notifications (MONITOR-free).
    const touched: Array<{ node: string, key: string, event: string }> = []
    const nodes = cluster.ports.map(port => ({ address: `127.0.0.1:${port}`, admin: nodeClient(t, port, quiet), events: nodeClient(t, port, quiet) }))
    for (const { address, admin, events } of nodes) {
      await admin.config('SET', 'notify-keyspace-events', 'KA')
      t.teardown(() => admin.config('SET', 'notify-keyspace-events', '').catch(() => {}))
      events.on('pmessage', (_pattern: string, channel: string, event: string) => {
        touched.push({ node: address, key: channel.slice('__keyspace@0__:'.length), event })
      })
      await events.psubscribe('__keyspace@0__:*')
      await admin.config('RESETSTAT')
    }

    // Members are m(name, 2): every one of them has max 2.
    const args = (tag: string, name: string, fair = false): Parameters<RedisStore['tryAcquire']>[0] =>
      ({ tag, member: m(name, 2), max: 2, leaseMs: 10_000, maxWaiters: 2, ticketTtlMs: 10_000, fair })
    const ref = (tag: string, name: string): MemberRef => ({ tag, member: m(name, 2) })
    const each = <T>(fn: (tag: string) => Promise<T>): Promise<T[]> => Promise.all(tags.map(fn))
    const all = (outcome: unknown): unknown[] => Array(tags.length).fill(outcome)

    // tryAcquire: every outcome, fair and not, on all subjects at once (all shards in flight).
    t.same(await each(tag => store.tryAcquire(args(tag, 'a:h1'))), all(AcquiredWithRoom), 'tryAcquire: acquired with room')
    t.same(await each(tag => peer.tryAcquire(args(tag, 'b:h2'))), all(Acquired), 'tryAcquire: acquired, now full')
    t.same(await each(tag => peer.tryAcquire(args(tag, 'b:w1', true))), all({ outcome: Full, ahead: 0 }), 'tryAcquire (fair): waiting, first in line')
    t.same(await each(tag => store.tryAcquire(args(tag, 'a:w2', true))), all({ outcome: Full, ahead: 1 }), 'tryAcquire (fair): waiting behind w1')
    t.same(await each(tag => store.tryAcquire(args(tag, 'a:w3', true))), all(QueueFull), 'tryAcquire (fair): queue full')
    t.same(await each(tag => store.tryAcquire({ ...args(tag, 'p'), ticketTtlMs: 0 })), all(Full), 'tryAcquire (ticketTtlMs 0): full')
    t.same(await each(tag => store.tryAcquire({ ...args(tag, 'n'), ahead: 1 })), all(QueueFull), 'tryAcquire (ahead): full')

    // renew and refreshTickets: one call spanning every shard.
    const holds = (name: string): MemberRef[] => tags.map(tag => ref(tag, name))
    t.same(await store.renew([...holds('a:h1'), ...holds('b:h2'), ...holds('ghost')], 10_000),
      [...all(true), ...all(true), ...all(false)], 'renew across shards: one answer per hold, in order')
    t.same(await peer.renew([], 10_000), [], 'renew of nothing')
    t.same(await store.refreshTickets([...holds('b:w1'), ...holds('a:w2'), ...holds('ghost')], 10_000),
      [...all(true), ...all(true), ...all(false)], 'refreshTickets across shards')
    if (store.usage !== undefined) {
      t.same((await store.usage(tags)).map(({ held, waiting }) => ({ held, waiting })), all({ held: 2, waiting: 2 }), 'usage across shards')
    }

    // abandon frees a place; a release grants the slot to the peer's waiter of every subject.
    await each(tag => store.abandon(ref(tag, 'a:w2')))
    t.same(await each(tag => store.tryAcquire(args(tag, 'a:w3', true))), all({ outcome: Full, ahead: 1 }), 'abandon freed a place (behind w1)')
    t.same(await each(tag => store.poll(args(tag, 'a:w3', true))), all(Full), 'poll: still full, nothing granted')
    await each(tag => store.abandon(ref(tag, 'a:w3')))
    await each(tag => store.abandon(ref(tag, 'nobody')))
    t.same(await each(tag => store.release({ ...ref(tag, 'a:h1'), leaseMs: 10_000 })), all(ReleaseOutcome.Released), 'release')
    await eventually(() => granted.get(m('b:w1', 2)) === tags.length, 2000)
    t.same([...granted], [[m('b:w1', 2), tags.length]], 'each release granted its slot to b:w1, announced from every shard')
    grants.stop()
    t.same(await each(tag => peer.poll(args(tag, 'b:w1', true))), all(Acquired), 'poll: the waiter holds the granted slot')
    t.same(await each(tag => peer.tryAcquire(args(tag, 'b:w1', true))), all(Acquired), 'and so does its try')
    t.same(await each(tag => store.release(ref(tag, 'nobody'))), all(ReleaseOutcome.Gone), 'release of nobody: Gone')
    t.same(await each(tag => peer.release(ref(tag, 'b:h2'))), all(ReleaseOutcome.Released))
    await each(tag => peer.abandon(ref(tag, 'b:w1')))
    t.same(await clusterKeysUnder(redis, prefix), [], 'every key is gone')

    // No node answered any command with an error (ioredis' EVALSHA → NOSCRIPT → EVAL
    // fallback aside): no CROSSSLOT, no MOVED/ASK, no script touching a non-local key.
    for (const { address, admin } of nodes) {
      const errors = (await admin.info('errorstats')).split(/\r?\n/)
        .filter(line => line.startsWith('errorstat_') && !line.startsWith('errorstat_NOSCRIPT:'))
      t.same(errors, [], `${address}: no error replies`)
    }

    // Every key written was one of a subject's own keys, written on the master serving its slot.
    await sleep(100)
    const expected = new Set(tags.flatMap(tag => STRUCTURES.map(s => key(prefix, tag, s))))
    const strays = touched.filter(({ key }) => !expected.has(key))
    t.same(strays, [], 'no script wrote a key it was not given')
    const written = new Set(touched.map(({ key }) => key))
    t.same([...written].sort(), [...expected].sort(), 'holders, tickets and queue of every subject were written')
    const wrongNode: string[] = []
    for (const { node, key: k } of touched) {
      if (masterOf(await redis.cluster('KEYSLOT', k)) !== node) wrongNode.push(`${k} on ${node}`)
    }
    t.same(wrongNode, [], 'each write happened on the master serving the key')
  })
}

const missing = missingClusterTools()
if (missing !== undefined) {
  t.skip(`fastify-slots on a 3-master Redis Cluster: skipped, ${missing}`, async () => {})
} else {
  t.test('fastify-slots on a 3-master Redis Cluster', async t => {
    const cluster = await startPrivateCluster(t)
    t.comment(`cluster on 127.0.0.1 ports ${cluster.ports.join(', ')}`)
    clusterSuite(t, cluster)
  })
}

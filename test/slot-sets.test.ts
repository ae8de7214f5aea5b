/**
 * All-or-nothing slots of several subjects (request.acquireSlots, route config.slots) through
 * real requests: a request waiting for a busy account holds none of its user's slots; no
 * subject is ever over its max whatever the mix of sets, orders and apps; sets taking the same
 * subjects in opposite orders all complete; bad input writes nothing.
 */
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { MemoryStore, type SlotStore } from '../lib'
import { client, keysLeft, keysUnder, redisUrl, uniquePrefix } from './helpers/redis'
import { eventually, leaveAfter, sleep, slotsApp } from './helpers/app'

type Backend = 'memory' | 'redis'
interface Teardown { teardown: (fn: () => unknown) => void }

/** `count` apps on one store (two Redis clients: two instances; or one shared memory store). */
async function apps (t: Teardown, backend: Backend, count: number, options: Record<string, unknown> = {}): Promise<{ apps: FastifyInstance[], prefix: string, keys: () => Promise<string[]> }> {
  const prefix = uniquePrefix('sets')
  const url = backend === 'redis' ? await redisUrl(t) : ''
  const memory: SlotStore = new MemoryStore()
  const built: FastifyInstance[] = []
  for (let i = 0; i < count; i++) {
    const store = backend === 'redis' ? { redis: client(t, url), prefix } : { store: memory }
    built.push(await slotsApp(t, { ...store, backoff: { initialMs: 10, maxMs: 40 }, maxWaiters: 1000, ...options }))
  }
  const keys = async (): Promise<string[]> => backend === 'redis' ? await keysLeft(client(t, url), prefix) : []
  return { apps: built, prefix, keys }
}

const held = async (app: FastifyInstance, type: string, id: string): Promise<number> => (await app.slots.usage(type, [id]))[0].held
const waiting = async (app: FastifyInstance, type: string, id: string): Promise<number> => (await app.slots.usage(type, [id]))[0].waiting

for (const backend of ['memory', 'redis'] as const) {
  t.test(`no hold-and-wait: while a request waits for its account, it holds none of its user's slots (${backend})`, async t => {
    const { apps: [a, b], keys } = await apps(t, backend, 2)
    const gates = new Map<string, () => void>()
    for (const app of [a, b]) {
      app.get<{ Querystring: { account: string, name: string } }>('/chat', async request => {
        const slots = await request.acquireSlots([{ type: 'user', id: 'u', max: 2 }, { type: 'account', id: request.query.account, max: 1 }])
        await new Promise<void>(resolve => gates.set(request.query.name, resolve))
        return slots.map(s => `${s.type}:${s.id}`)
      })
    }
    const first = a.inject('/chat?account=busy&name=first')
    await eventually(() => gates.has('first'))
    const second = b.inject('/chat?account=busy&name=second')
    await eventually(async () => await waiting(a, 'account', 'busy') === 1)
    t.equal(await held(a, 'user', 'u'), 1, 'the waiting request holds no user slot')
    t.equal(b.slots.stats().waiting, 1, 'stats count the waiting set once')
    const third = b.inject('/chat?account=free&name=third')
    await eventually(() => gates.has('third'))
    t.pass('so the user\'s request for another account got the second user slot at once')
    t.equal(await held(a, 'user', 'u'), 2)
    gates.get('first')!()
    await eventually(() => gates.has('second'), 3000)
    t.same([await held(a, 'user', 'u'), await held(a, 'account', 'busy')], [2, 1], 'the waiter took both slots once the account freed')
    gates.get('second')!()
    gates.get('third')!()
    const answers = await Promise.all([first, second, third])
    t.same(answers.map(r => r.json()), [['user:u', 'account:busy'], ['user:u', 'account:busy'], ['user:u', 'account:free']], 'slots come back in the order asked')
    t.same([await held(a, 'user', 'u'), await held(a, 'account', 'busy'), await held(a, 'account', 'free')], [0, 0, 0], 'all released with their requests')
    t.same(await keys(), [])
  })

  t.test(`no subject is ever over its max, and sets taken in opposite orders all complete (${backend})`, async t => {
    const { apps: pair, keys } = await apps(t, backend, 2)
    const MAX: Record<string, number> = { 'user:1': 2, 'user:2': 2, 'account:a': 1, 'account:b': 2, 'account:c': 1 }
    const inFlight = new Map<string, number>()
    let peakOver = 0
    for (const app of pair) {
      app.get<{ Querystring: { s: string, hold: string } }>('/set', async request => {
        const subjects = request.query.s.split(',').map(name => {
          const [type, id, weight] = name.split(':')
          return { type, id, max: MAX[`${type}:${id}`], weight: Number(weight ?? 1) }
        })
        const slots = await request.acquireSlots(subjects, { maxWaitMs: 20_000 })
        for (const { type, id, weight, max } of subjects) {
          const units = (inFlight.get(`${type}:${id}`) ?? 0) + weight
          inFlight.set(`${type}:${id}`, units)
          peakOver = Math.max(peakOver, units - max)
        }
        await sleep(Number(request.query.hold))
        for (const { type, id, weight } of subjects) inFlight.set(`${type}:${id}`, (inFlight.get(`${type}:${id}`) ?? 0) - weight)
        return slots.length
      })
    }
    // Every pair of a user and an account, in both orders, and triples, weights up to 2 where max allows.
    const shapes = [
      'user:1,account:a', 'account:a,user:1', 'user:2,account:a', 'account:b,user:2:2', 'user:1,account:b,account:c',
      'account:c,account:b:2,user:1', 'user:2,user:1', 'user:1,user:2:2', 'account:c,user:2', 'account:a,account:c'
    ]
    const requests = Array.from({ length: 80 }, (_, i) => pair[i % 2].inject(`/set?s=${shapes[(i * 7) % shapes.length]}&hold=${2 + (i * 13) % 15}`))
    const answers = await Promise.all(requests)
    t.same(answers.filter(r => r.statusCode !== 200).map(r => r.body), [], 'all 80 complete: no deadlock')
    t.equal(peakOver, 0, 'no subject ever had more units in flight than its max')
    for (const [name] of Object.entries(MAX)) {
      const [type, id] = name.split(':')
      t.same(await pair[0].slots.usage(type, [id]), [{ id, held: 0, waiting: 0, oldestWaitMs: 0, waitingByPriority: {} }], `${name} is left empty`)
    }
    t.same(await keys(), [])
  })

  t.test(`a set that times out or whose client leaves holds nothing and leaves no ticket (${backend})`, async t => {
    const { apps: [app], keys } = await apps(t, backend, 1)
    let release = (): void => {}
    app.get('/hold', async request => {
      await request.acquireSlot('account', 'x', 1)
      await new Promise<void>(resolve => { release = resolve })
      return 'held'
    })
    app.get<{ Querystring: { wait: string } }>('/both', async request => {
      await request.acquireSlots([{ type: 'user', id: 'v', max: 1 }, { type: 'account', id: 'x', max: 1 }], { maxWaitMs: Number(request.query.wait) })
      return 'both'
    })
    const holding = app.inject('/hold')
    await eventually(async () => await held(app, 'account', 'x') === 1)
    const timedOut = await app.inject('/both?wait=100')
    t.equal(timedOut.statusCode, 429)
    t.equal(timedOut.json().code, 'SLOT_WAIT_TIMEOUT')
    await leaveAfter(app, '/both?wait=5000', 100)
    await eventually(async () => await waiting(app, 'account', 'x') === 0 && await waiting(app, 'user', 'v') === 0)
    t.same([await held(app, 'user', 'v'), await held(app, 'account', 'x')], [0, 1], 'no user slot taken, the account still held by /hold')
    release()
    t.equal((await holding).body, 'held')
    t.equal((await app.inject('/both?wait=100')).body, 'both', 'and both are free afterwards')
    t.same(await keys(), [])
  })

  t.test(`route config.slots take all their slots at once, under the strictest options of the entries (${backend})`, async t => {
    const { apps: [app] } = await apps(t, backend, 1)
    let release = (): void => {}
    app.get('/hold', async request => {
      await request.acquireSlot('account', 'r', 1)
      await new Promise<void>(resolve => { release = resolve })
      return 'held'
    })
    app.get('/route', {
      config: { slots: [{ type: 'user', id: 'w', max: 1, maxWaitMs: 5000 }, { type: 'account', id: (request) => String(request.headers['x-account']), max: 1, maxWaitMs: 3000 }] }
    }, async () => 'route')
    const holding = app.inject('/hold')
    await eventually(async () => await held(app, 'account', 'r') === 1)
    const waiter = app.inject({ url: '/route', headers: { 'x-account': 'r' } })
    await eventually(async () => await waiting(app, 'account', 'r') === 1)
    t.equal(await held(app, 'user', 'w'), 0, 'the route holds no user slot while its account is busy')
    t.equal((await app.inject({ url: '/route', headers: { 'x-account': 'other' } })).body, 'route', 'another account\'s request of the user gets through')
    release()
    t.equal((await waiter).body, 'route')
    t.equal((await holding).body, 'held')
  })
}

t.test('acquireSlots refuses bad input with a clear error and writes nothing', async t => {
  const { apps: [app], keys } = await apps(t, 'redis', 1)
  const cases: Array<[unknown, unknown, RegExp]> = [
    [[], undefined, /acquireSlots: slots must be a non-empty array/],
    ['user', undefined, /acquireSlots: slots must be a non-empty array/],
    [[{ type: 'user', id: 1, max: 1 }, null], undefined, /acquireSlots: slots\[1\] must be an object/],
    [[{ type: 'user', id: 1, max: 1 }, { type: 'user', id: '1', max: 2 }], undefined, /slots\[1\]: user 1 is already in the set/],
    [[{ type: 'user', id: 1, max: 1 }, { type: 'a:b', id: 1, max: 1 }], undefined, /slots\[1\]: type may contain only/],
    [[{ type: 'user', id: 1, max: 1 }, { type: 'acct', id: 1, max: -1 }], undefined, /slots\[1\]: max must be a non-negative/],
    [[{ type: 'user', id: 1, max: 1 }, { type: 'acct', id: 1, max: 2, weight: 3 }], undefined, /slots\[1\]: weight must be an integer from 1 to 2/],
    [[{ type: 'user', id: 1, max: 1 }, { type: 'acct', id: 1, max: 2, wieght: 1 }], undefined, /slots\[1\] has an unknown field "wieght"/],
    [[{ type: 'user', id: 1, max: 1 }, { type: 'acct', id: 1, max: 2 }], { weight: 2 }, /option "weight" is per subject/],
    [[{ type: 'user', id: 1, max: 1 }, { type: 'acct', id: 1, max: 2 }], { maxWaitMs: -1 }, /option "maxWaitMs" must be/],
    [[{ type: 'user', id: 1, max: 1 }, { type: 'acct', id: 1, max: 2 }], { stream: true, bogus: 1 }, /is not an option/]
  ]
  app.post<{ Body: { slots: unknown, opts: unknown } }>('/bad', async request => {
    try {
      await request.acquireSlots(request.body.slots as never, request.body.opts as never)
      return 'taken'
    } catch (err) {
      return { code: (err as { code: string }).code, message: (err as Error).message }
    }
  })
  for (const [slots, opts, message] of cases) {
    const answer = (await app.inject({ method: 'POST', url: '/bad', payload: { slots, opts } })).json()
    t.equal(answer.code, 'SLOT_INVALID_ARGUMENT', message.source)
    t.match(answer.message, message)
  }
  t.same(await keysUnder(client(t, await redisUrl(t)), (app.slots.store as unknown as { prefix: string }).prefix), [], 'no key was written')
  t.same(await keys(), [])
})

t.test('acquireSlots: a subject with max 0 is a bypassed slot, one limited subject is a plain acquire', async t => {
  const app = await slotsApp(t, { store: new MemoryStore() })
  app.get('/mixed', async request => {
    const slots = await request.acquireSlots([{ type: 'user', id: 1, max: 0 }, { type: 'account', id: 1, max: 1, weight: 1 }])
    return slots.map(s => [s.type, s.bypassed])
  })
  t.same((await app.inject('/mixed')).json(), [['user', true], ['account', false]])
  t.equal(await held(app, 'account', '1'), 0)
})

t.test('fastify.slots.acquireAll takes a set outside a request; its signal aborts the wait and leaves nothing', async t => {
  const { apps: [app], keys } = await apps(t, 'redis', 1)
  const job = await app.slots.acquireAll([{ type: 'user', id: 'job', max: 1 }, { type: 'account', id: 'j', max: 1 }])
  t.same(job.map(s => `${s.type}:${s.id}`), ['user:job', 'account:j'])
  const controller = new AbortController()
  const waiting = app.slots.acquireAll([{ type: 'account', id: 'j', max: 1 }, { type: 'user', id: 'job2', max: 1 }], { signal: controller.signal })
  await eventually(async () => (await app.slots.usage('account', ['j']))[0].waiting === 1)
  controller.abort()
  await t.rejects(waiting, { code: 'SLOT_WAIT_ABORTED' })
  await t.rejects(app.slots.acquireAll([{ type: 'user', id: 1, max: 1 }, { type: 'acct', id: 1, max: 1 }], { stream: true } as never), { code: 'SLOT_INVALID_ARGUMENT' })
  await Promise.all(job.map(s => s.release()))
  await eventually(async () => (await keys()).length === 0)
  t.same(await keys(), [])
})

t.test('fail-open: a set whose store fails bypasses each of its subjects under its own type and id', async t => {
  class FailingSets extends MemoryStore {
    override async acquireSet (): Promise<never> {
      throw new Error('store down')
    }
  }
  const app = await slotsApp(t, { store: new FailingSets(), onStoreError: 'fail-open' })
  app.get('/set', async request => {
    // weight: undefined is no weight (the option is per subject): accepted.
    const slots = await request.acquireSlots([{ type: 'user', id: 1, max: 1 }, { type: 'free', id: 2, max: 0 }, { type: 'account', id: 'a', max: 1 }], { weight: undefined } as never)
    return slots.map(s => [`${s.type}:${s.id}`, s.bypassed])
  })
  t.same((await app.inject('/set')).json(), [['user:1', true], ['free:2', true], ['account:a', true]])
})

t.test('a streaming set is kept alive with pings while it waits, then streams once it holds every slot', async t => {
  const app = await slotsApp(t, { store: new MemoryStore(), ping: { intervalMs: 30 } })
  app.get('/hold', async request => {
    await request.acquireSlot('account', 's', 1)
    await sleep(200)
    return 'held'
  })
  app.get('/stream', async (request, reply) => {
    const slots = await request.acquireSlots([{ type: 'user', id: 's', max: 1 }, { type: 'account', id: 's', max: 1 }], { stream: true })
    if (!request.slotStreamStarted) return 'not streamed'
    reply.raw.end(`data: ${slots.map(s => `${s.type}:${s.id}`).join(' ')}\n\n`)
  })
  const holding = app.inject('/hold')
  await eventually(async () => await held(app, 'account', 's') === 1)
  const res = await app.inject('/stream')
  t.match(res.headers['content-type'], /^text\/event-stream/)
  const frames = res.body.split('\n\n').filter(Boolean)
  t.ok(frames.length >= 3, `pings while it waited (${frames.length - 1})`)
  t.same(new Set(frames.slice(0, -1)), new Set([': ping']), 'only pings before its slots')
  t.equal(frames.at(-1), 'data: user:s account:s', 'then the handler\'s data, with both slots')
  t.equal((await holding).body, 'held')
})

/**
 * Two apps on one Redis with a hashTag; app `a` has `/hold?id=` holding account `id` for
 * `holdMs`, for a waiter in `b` to wait behind.
 */
async function hashTagApps (t: Teardown, name: string, options: Record<string, unknown>, holdMs: number): Promise<{ a: FastifyInstance, b: FastifyInstance, url: string, prefix: string }> {
  const url = await redisUrl(t)
  const prefix = uniquePrefix(name)
  const a = await slotsApp(t, { prefix, ...options, redis: client(t, url) })
  const b = await slotsApp(t, { prefix, ...options, redis: client(t, url) })
  a.get<{ Querystring: { id: string } }>('/hold', async request => {
    await request.acquireSlot('account', request.query.id, 1)
    await sleep(holdMs)
    return 'held'
  })
  return { a, b, url, prefix }
}

t.test('hashTag on a single Redis: keys under the shared tag, and a release in another app still tells the waiting set', async t => {
  const { a, b, url, prefix } = await hashTagApps(t, 'sets-tag', { backoff: { initialMs: 5000, maxMs: 5000 }, hashTag: (type: string) => type === 'job' ? undefined : 'gw' }, 150)
  b.get('/set', async request => {
    const slots = await request.acquireSlots([{ type: 'user', id: 'h', max: 1 }, { type: 'account', id: 'h', max: 1 }])
    return { waitedMs: slots[1].waitedMs, keys: await keysUnder(client(t, url), prefix) }
  })
  const holding = a.inject('/hold?id=h')
  await eventually(async () => await held(a, 'account', 'h') === 1)
  const { waitedMs, keys } = (await b.inject('/set')).json() as { waitedMs: number, keys: string[] }
  t.ok(waitedMs >= 50 && waitedMs < 2000, `it waited for the other app's release (${waitedMs} ms), not for its 5 s backoff`)
  t.same(keys.sort(), [`${prefix}:{gw}:account:h:holders`, `${prefix}:{gw}:user:h:holders`])
  t.equal((await holding).body, 'held')
  t.same(await keysLeft(client(t, url), prefix), [])
})

t.test('hashTag: a grant message names the subject, not the shared hash tag (what a give-back of an unwanted grant needs)', async t => {
  const { a, b, url, prefix } = await hashTagApps(t, 'sets-grant-tag', { hashTag: () => 'gw' }, 100)
  b.get('/wait', async request => {
    await request.acquireSlot('account', 'g', 1)
    return 'granted'
  })
  const onlooker = client(t, url)
  const messages: string[] = []
  onlooker.on('smessage', (_channel: string, message: string) => messages.push(message))
  await onlooker.ssubscribe(`${prefix}:grants:${b.slots.instanceId}`)
  const holding = a.inject('/hold?id=g')
  await eventually(async () => await held(a, 'account', 'g') === 1)
  t.equal((await b.inject('/wait')).body, 'granted')
  t.equal((await holding).body, 'held')
  await eventually(() => messages.length > 0)
  t.same(messages.map(m => m.split('\n')[1]), ['account:g'])
})

/**
 * Priority classes through real requests: waiters of a higher class are served first, in
 * arrival order within a class, whichever app they wait in and whichever app releases.
 */
import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import fastifySlots, { MemoryStore } from '../lib'
import { client, keysLeft, redisUrl, uniquePrefix } from './helpers/redis'
import { eventually, sleep } from './helpers/app'

type Options = Omit<fastifySlots.FastifySlotsOptions, 'redis'> & { redis?: ReturnType<typeof client> }

/** An app whose GET /take?name=&p=&hold= takes account:a (max 1) in class p, records when it got it, and holds it. */
async function app (t: tap.Test, options: Options, served: string[]): Promise<FastifyInstance> {
  const instance = Fastify()
  await instance.register(fastifySlots, options as fastifySlots.FastifySlotsOptions)
  t.teardown(() => instance.close())
  instance.get<{ Querystring: { name: string, p?: string, hold?: string } }>('/take', async request => {
    await request.acquireSlot('account', 'a', 1, { priority: Number(request.query.p ?? 0) })
    served.push(request.query.name)
    await sleep(Number(request.query.hold ?? 20))
    return 'ok'
  })
  return instance
}

for (const store of ['memory', 'redis'] as const) {
  t.test(`waiters are served highest class first, in arrival order within a class, across apps (${store})`, async t => {
    const prefix = uniquePrefix('priorities')
    const url = store === 'redis' ? await redisUrl(t) : undefined
    const shared = new MemoryStore()
    const options = (): Options => url === undefined ? { store: shared } : { redis: client(t, url), prefix }
    const served: string[] = []
    const [one, two] = [await app(t, options(), served), await app(t, options(), served)]
    const queued: Array<[number, number | null]> = []
    for (const a of [one, two]) a.slots.on('queued', ({ priority, position }) => queued.push([priority, position]))
    const waiting = async (): Promise<number> => (await one.slots.usage('account', ['a']))[0].waiting

    const requests = [one.inject('/take?name=holder&hold=150')]
    await eventually(() => served.length === 1)
    const line: Array<[FastifyInstance, string, number]> = [[two, 'low', 0], [one, 'high', 2], [two, 'mid', 1], [one, 'high2', 2]]
    for (const [i, [a, name, p]] of line.entries()) {
      requests.push(a.inject(`/take?name=${name}&p=${p}`))
      await eventually(async () => await waiting() === i + 1)
    }
    t.same((await one.slots.usage('account', ['a']))[0].waitingByPriority, { 0: 1, 1: 1, 2: 2 })
    t.same(queued, [[0, 1], [2, 1], [1, 2], [2, 2]], 'each was told its place on arrival')
    for (const res of await Promise.all(requests)) t.equal(res.statusCode, 200)
    t.same(served, ['holder', 'high', 'high2', 'mid', 'low'])
    if (url !== undefined) t.same(await keysLeft(client(t, url), prefix), [])
  })
}

t.test('route config.slots takes a priority, or a function of the request', async t => {
  const served: string[] = []
  const instance = Fastify()
  await instance.register(fastifySlots)
  t.teardown(() => instance.close())
  instance.get<{ Querystring: { name: string, hold?: string } }>('/tiered', {
    config: { slots: [{ type: 'account', id: 'a', max: 1, priority: request => request.headers['x-tier'] === 'pro' ? 5 : 0 }] }
  }, async request => {
    served.push(request.query.name)
    await sleep(Number(request.query.hold ?? 10))
    return 'ok'
  })
  const waiting = async (): Promise<number> => (await instance.slots.usage('account', ['a']))[0].waiting
  const requests = [instance.inject('/tiered?name=holder&hold=100')]
  await eventually(() => served.length === 1)
  requests.push(instance.inject('/tiered?name=free'))
  await eventually(async () => await waiting() === 1)
  requests.push(instance.inject({ url: '/tiered?name=pro', headers: { 'x-tier': 'pro' } }))
  await eventually(async () => await waiting() === 2)
  t.same((await instance.slots.usage('account', ['a']))[0].waitingByPriority, { 0: 1, 5: 1 })
  await Promise.all(requests)
  t.same(served, ['holder', 'pro', 'free'])
})

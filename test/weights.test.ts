/**
 * Weighted slots through real requests: a request of weight k counts k units toward max, so
 * the units in flight never exceed it, whatever the mix; a heavy waiter is not starved by
 * light ones behind it.
 */
import t from 'tap'
import { MemoryStore } from '../lib'
import { client, keysLeft, redisUrl, uniquePrefix } from './helpers/redis'
import { eventually, sleep, slotsApp } from './helpers/app'

const MAX = 4

for (const store of ['memory', 'redis'] as const) {
  t.test(`units in flight never exceed max, whatever the weights, and every request completes (${store})`, async t => {
    const prefix = uniquePrefix('weights')
    const redis = store === 'redis' ? client(t, await redisUrl(t)) : undefined
    const app = await slotsApp(t, { ...(redis === undefined ? { store: new MemoryStore() } : { redis, prefix }), maxWaiters: 100, backoff: { initialMs: 10, maxMs: 50 } })
    let units = 0
    let peak = 0
    app.get<{ Querystring: { w: string } }>('/w', async request => {
      const weight = Number(request.query.w)
      await request.acquireSlot('account', 'a', MAX, { weight })
      units += weight
      peak = Math.max(peak, units)
      await sleep(5 + (weight * 7) % 20)
      units -= weight
      return 'ok'
    })
    const weights = Array.from({ length: 60 }, (_, i) => 1 + (i * 7) % MAX)
    const answers = await Promise.all(weights.map(w => app.inject(`/w?w=${w}`)))
    t.same(answers.filter(r => r.statusCode !== 200).map(r => r.body), [], 'all 60 complete')
    t.ok(peak <= MAX, `at most ${MAX} units in flight (peak ${peak})`)
    t.equal(peak, MAX, 'and the limit was reached')
    t.same((await app.slots.usage('account', ['a']))[0].held, 0)
    if (redis !== undefined) t.same(await keysLeft(redis, prefix), [])
  })
}

t.test('a heavy waiter is served before lighter ones that came after it; route weight as a function', async t => {
  const app = await slotsApp(t, { store: new MemoryStore() })
  const served: string[] = []
  app.get<{ Querystring: { name: string, hold?: string } }>('/job', {
    config: { slots: [{ type: 'account', id: 'a', max: MAX, weight: request => request.headers['x-batch'] === '1' ? 3 : 1 }] }
  }, async request => {
    served.push(request.query.name)
    await sleep(Number(request.query.hold ?? 10))
    return 'ok'
  })
  const waiting = async (): Promise<number> => (await app.slots.usage('account', ['a']))[0].waiting
  const requests = [app.inject('/job?name=a&hold=100'), app.inject('/job?name=b&hold=100')]
  await eventually(() => served.length === 2)
  t.equal((await app.slots.usage('account', ['a']))[0].held, 2, 'two units held')
  requests.push(app.inject({ url: '/job?name=batch', headers: { 'x-batch': '1' } }))
  await eventually(async () => await waiting() === 1)
  // Two units are free, but the batch wants three: the light requests behind it wait too.
  requests.push(app.inject('/job?name=c'), app.inject('/job?name=d'))
  await eventually(async () => await waiting() === 3)
  t.same(served, ['a', 'b'])
  await Promise.all(requests)
  t.same(served, ['a', 'b', 'batch', 'c', 'd'])
})

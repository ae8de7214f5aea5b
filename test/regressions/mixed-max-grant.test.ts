/**
 * Finding 1: a release filled the subject up to the RELEASER's max, so a waiter that asked
 * for max 3 was admitted as the 5th holder. Each admission must respect the admitted
 * member's own max, on both stores, and across instances rolling a limit change.
 */
import t from 'tap'
import { MemoryStore } from '../../lib'
import type { Slot } from '../../lib/slot'
import { client, holders, keysLeft, redisUrl, uniquePrefix } from '../helpers/redis'
import { sleep, slotsApp } from '../helpers/app'

for (const kind of ['redis', 'memory'] as const) {
  t.test(`${kind}: a release by a max-10 holder never admits a waiter beyond its own max 3`, async t => {
    const prefix = uniquePrefix('mixed-max')
    const options = kind === 'redis'
      ? { redis: client(t, await redisUrl(t)), prefix }
      : { store: new MemoryStore() }
    const app = await slotsApp(t, options)
    const big: Slot[] = []
    for (let i = 0; i < 5; i++) big.push(await app.slots.acquire('user', 'mixed', 10))
    let small: Slot | undefined
    const waiting = app.slots.acquire('user', 'mixed', 3, { maxWaitMs: 10_000 }).then(slot => { small = slot })
    await sleep(50)
    await big.pop()!.release()
    await sleep(300)
    t.equal(small, undefined, 'with 4 holders the max-3 waiter still waits')
    t.equal((await app.slots.usage('user', ['mixed']))[0].held, 4)
    await big.pop()!.release()
    await sleep(100)
    t.equal(small, undefined, 'with 3 holders too')
    await big.pop()!.release()
    await waiting
    t.ok(small !== undefined, 'below 3 holders it is admitted')
    t.equal((await app.slots.usage('user', ['mixed']))[0].held, 3, 'as the 3rd holder')
    await Promise.all([...big, small!].map(slot => slot.release()))
  })
}

t.test('a limit rolled out 10 → 3 and 3 → 10 across two instances never runs a request beyond its own max', async t => {
  const url = await redisUrl(t)
  const prefix = uniquePrefix('mixed-roll')
  const apps = [
    await slotsApp(t, { redis: client(t, url), prefix, backoff: { initialMs: 5, maxMs: 20 } }),
    await slotsApp(t, { redis: client(t, url), prefix, backoff: { initialMs: 5, maxMs: 20 } })
  ]
  // Each member is admitted only while fewer than its own max hold, so at every moment, for
  // every limit m, at most m of the requests running with a max <= m run (whatever order
  // they were admitted in; a handler runs only while its slot is held).
  const running = new Map<number, number>([[3, 0], [10, 0]])
  const violations: string[] = []
  for (const [i, app] of apps.entries()) {
    app.get('/:max', async (request) => {
      const max = Number((request.params as { max: string }).max)
      await request.acquireSlot('account', 'roll', max, { maxWaitMs: 20_000, maxWaiters: 1000 })
      running.set(max, running.get(max)! + 1)
      for (const m of running.keys()) {
        const atMostM = [...running].filter(([limit]) => limit <= m).reduce((sum, [, n]) => sum + n, 0)
        if (atMostM > m) violations.push(`instance ${i}: ${atMostM} requests with max <= ${m} running`)
      }
      await sleep(5 + Math.floor(Math.random() * 15))
      running.set(max, running.get(max)! - 1)
      return 'ok'
    })
    await app.ready()
  }
  // Phase 1: instance 0 still runs max 10 while instance 1 already runs max 3; phase 2 the reverse.
  for (const [oldMax, newMax] of [[10, 3], [3, 10]]) {
    const requests = []
    for (let i = 0; i < 60; i++) requests.push(apps[0].inject(`/${oldMax}`), apps[1].inject(`/${newMax}`))
    const codes = (await Promise.all(requests)).map(res => res.statusCode)
    t.same(codes.filter(code => code !== 200), [], `${oldMax} → ${newMax}: every request completed`)
  }
  t.same(violations, [], 'no request ran while more than its own max ran')
  const redis = client(t, url)
  t.equal(await holders(redis, prefix, 'account:roll'), 0)
  t.same(await keysLeft(redis, prefix), [], 'nothing left')
})

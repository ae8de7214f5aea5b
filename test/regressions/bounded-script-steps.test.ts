/**
 * Finding 5: a grant or fair try unpacked every lapsed ticket at once: past ~8,000 of them
 * (a crashed process's waiters) every fair try answered 503 "too many results to unpack" and
 * grants stopped. Purges and grant passes now work in bounded chunks.
 */
import t from 'tap'
import { RedisStore } from '../../lib'
import { memberName, outcomeOf } from '../../lib/stores/store'
import { client, redisUrl, uniquePrefix } from '../helpers/redis'
import { slotsApp } from '../helpers/app'

t.test('a subject with 20,000 lapsed tickets keeps admitting, in fair mode too', async t => {
  const url = await redisUrl(t)
  const redis = client(t, url)
  const prefix = uniquePrefix('lapsed-20k')
  const tag = 'user:crowd'
  const [seconds] = await redis.time()
  const past = Number(seconds) * 1000 - 60_000
  for (let chunk = 0; chunk < 20; chunk++) {
    const tickets: Array<string | number> = []
    const queue: Array<string | number> = []
    for (let i = 0; i < 1000; i++) {
      const member = memberName('dead', chunk * 1000 + i, 1, 1000)
      tickets.push(past, member)
      queue.push(chunk * 1000 + i, member)
    }
    await redis.zadd(`${prefix}:{${tag}}:tickets`, ...tickets)
    await redis.zadd(`${prefix}:{${tag}}:queue`, ...queue)
  }
  await redis.pexpire(`${prefix}:{${tag}}:tickets`, 60_000)
  await redis.pexpire(`${prefix}:{${tag}}:queue`, 60_000)
  const app = await slotsApp(t, { store: new RedisStore({ client: client(t, url), prefix }), fair: true })
  const first = await app.slots.acquire('user', 'crowd', 1)
  const waiting = app.slots.acquire('user', 'crowd', 1, { maxWaitMs: 10_000 })
  await first.release()
  const second = await waiting
  t.pass('a fair acquire, a wait and a grant through 20,000 lapsed tickets')
  await second.release()
  for (let i = 0; i < 25; i++) (await app.slots.acquire('user', 'crowd', 1)).release()
  await new Promise(resolve => setTimeout(resolve, 50))
  t.ok(await redis.zcard(`${prefix}:{${tag}}:queue`) < 20_000, 'the lapsed tickets are being purged, a chunk at a time')
})

t.test('a subject with max 10000: 10,000 leases lapse under 9,000 waiters, and grants go out in bounded passes', async t => {
  const url = await redisUrl(t)
  const redis = client(t, url)
  const prefix = uniquePrefix('max-10k')
  const tag = 'user:wide'
  const store = new RedisStore({ client: client(t, url), prefix, wakeups: false })
  t.teardown(() => store.close())
  const [seconds, micros] = await redis.time()
  const soon = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000) + 3000
  const holders: Array<string | number> = []
  for (let i = 0; i < 10_000; i++) holders.push(soon, memberName('gone', i, 10_000, 1000))
  await redis.zadd(`${prefix}:{${tag}}:holders`, ...holders)
  const base = { tag, max: 10_000, leaseMs: 60_000, maxWaiters: 10_000, ticketTtlMs: 60_000 }
  const waiters = Array.from({ length: 9000 }, (_, i) => memberName('w', i, 10_000, 60_000))
  const queued = await Promise.all(waiters.map(member => store.tryAcquire({ ...base, member })))
  t.same(queued.filter(answer => outcomeOf(answer) !== 0), [], 'the 9,000 waiters queue behind 10,000 holders')
  t.same(queued.map(answer => typeof answer === 'object' ? answer.ahead : -1), waiters.map((_, i) => i), 'each in its place')
  const [nowS, nowUs] = await redis.time()
  await new Promise(resolve => setTimeout(resolve, soon - (Number(nowS) * 1000 + Math.floor(Number(nowUs) / 1000)) + 50)) // every lease lapsed
  const polled = await store.poll({ ...base, member: waiters[0] })
  t.equal(polled, 1, 'a poll through 10,000 lapsed leases answers (no unpack overflow): the head holds')
  t.equal(await redis.zcount(`${prefix}:{${tag}}:holders`, '-inf', '+inf'), 50, 'one grant pass granted a bounded 50')
  for (let i = 0; i < 200 && await redis.zcard(`${prefix}:{${tag}}:queue`) > 0; i++) await store.poll({ ...base, member: waiters[8999] })
  t.equal(await redis.zcard(`${prefix}:{${tag}}:queue`), 0, 'further passes granted every waiter')
  t.equal(await redis.zcard(`${prefix}:{${tag}}:holders`), 9000)
  await redis.del(`${prefix}:{${tag}}:holders`, `${prefix}:{${tag}}:tickets`, `${prefix}:{${tag}}:queue`)
})

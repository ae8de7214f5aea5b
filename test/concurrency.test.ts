import t from 'tap'
import { client, holders, keysLeft, redisUrl, uniquePrefix } from './helpers/redis'
import { eventually, sleep, slotsApp } from './helpers/app'
import { startFixture } from './helpers/processes'

/** Samples the subject's holder count in Redis every few ms until stopped; returns the maximum. */
function sampleHolders (redis: Parameters<typeof holders>[0], prefix: string, tag: string): { stop: () => Promise<{ max: number, samples: number }> } {
  const sampling = { running: true }
  let max = 0
  let samples = 0
  const loop = (async () => {
    while (sampling.running) {
      max = Math.max(max, await holders(redis, prefix, tag))
      samples++
      await sleep(2)
    }
  })()
  return { stop: async () => { sampling.running = false; await loop; return { max, samples } } }
}

t.test('concurrent requests through listen never exceed max and all complete', async t => {
  const url = await redisUrl(t)
  const redis = client(t, url)
  const sampler = client(t, url)
  const prefix = uniquePrefix('concurrency')
  const app = await slotsApp(t, { redis, prefix, maxWaiters: 100, backoff: { initialMs: 10, maxMs: 100 } })
  let inFlight = 0
  let peak = 0
  app.get('/work', async (request) => {
    const slot = await request.acquireSlot('user', 'u1', 3)
    inFlight++
    peak = Math.max(peak, inFlight)
    await sleep(15)
    inFlight--
    return { waitedMs: slot.waitedMs }
  })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const sampling = sampleHolders(sampler, prefix, 'user:u1')
  const responses = await Promise.all(Array.from({ length: 40 }, () => fetch(`${base}/work`)))
  const { max, samples } = await sampling.stop()
  t.same(responses.map(r => r.status), Array(40).fill(200), 'every request completed')
  t.ok(samples > 10, `sampled Redis ${samples} times`)
  t.ok(max <= 3, `Redis never held more than 3 (max sampled ${max})`)
  t.equal(max, 3, 'and the limit was actually reached')
  t.equal(peak, 3, 'handlers in flight peaked at exactly 3')
  t.same(await keysLeft(redis, prefix), [], 'no holder or waiter is left')
})

t.test('two processes sharing one Redis never exceed max together', async t => {
  const url = await redisUrl(t)
  const sampler = client(t, url)
  const prefix = uniquePrefix('cross')
  const env = { REDIS_URL: url, PREFIX: prefix, MAX: '4', HOLD_MS: '20' }
  const apps = await Promise.all([startFixture(t, 'slots-server.ts', env), startFixture(t, 'slots-server.ts', env)])
  const sampling = sampleHolders(sampler, prefix, 'user:shared')
  const responses = await Promise.all(Array.from({ length: 60 }, (_, i) =>
    fetch(`http://127.0.0.1:${String(apps[i % 2].hello.port)}/work`)))
  const { max } = await sampling.stop()
  t.same(responses.map(r => r.status), Array(60).fill(200), 'every request completed')
  t.ok(max <= 4, `Redis never held more than 4 across both processes (max sampled ${max})`)
  t.equal(max, 4, 'and the limit was reached')
  t.same(await keysLeft(sampler, prefix), [], 'no holder or waiter is left')
})

t.test('a wait that runs out answers 429 SLOT_WAIT_TIMEOUT with Retry-After', async t => {
  const url = await redisUrl(t)
  const redis = client(t, url)
  const prefix = uniquePrefix('timeout')
  const app = await slotsApp(t, { redis, prefix, maxWaitMs: 200, backoff: { initialMs: 20, maxMs: 50 } })
  let letGo = (): void => {}
  const held = new Promise<void>(resolve => { letGo = resolve })
  app.get('/hold', async (request) => {
    await request.acquireSlot('user', 7, 1)
    await held
    return 'done'
  })
  app.get('/try', async (request) => {
    await request.acquireSlot('user', 7, 1)
    return 'got it'
  })
  const holding = app.inject('/hold')
  await eventually(async () => await holders(redis, prefix, 'user:7') === 1)
  const started = Date.now()
  const res = await app.inject('/try')
  const waited = Date.now() - started
  t.equal(res.statusCode, 429)
  t.equal(res.json().code, 'SLOT_WAIT_TIMEOUT')
  t.equal(res.headers['retry-after'], '1')
  t.ok(waited >= 190, `it waited the whole maxWaitMs (${waited} ms)`)
  t.notMatch(res.json().message, /7/, 'the id is not echoed to the client')
  letGo()
  t.equal((await holding).statusCode, 200)
  // The holder's release goes out with the store's next batch, just after its response.
  t.same(await keysLeft(redis, prefix), [], 'the waiter left the queue and the holder released')
})

t.test('a full wait queue answers 429 SLOT_QUEUE_FULL at once', async t => {
  const url = await redisUrl(t)
  const redis = client(t, url)
  const prefix = uniquePrefix('queuefull')
  const app = await slotsApp(t, { redis, prefix, maxWaiters: 1, maxWaitMs: 5000 })
  let letGo = (): void => {}
  const held = new Promise<void>(resolve => { letGo = resolve })
  app.get('/hold', async (request) => {
    await request.acquireSlot('account', 'a', 1)
    await held
    return 'held'
  })
  const holding = app.inject('/hold')
  await eventually(async () => await holders(redis, prefix, 'account:a') === 1)
  const waiting = app.inject('/hold')
  await eventually(async () => await redis.zcard(`${prefix}:{account:a}:tickets`) === 1)
  const started = Date.now()
  const res = await app.inject('/hold')
  t.equal(res.statusCode, 429)
  t.equal(res.json().code, 'SLOT_QUEUE_FULL')
  t.ok(res.headers['retry-after'], 'with Retry-After')
  t.ok(Date.now() - started < 1000, 'refused without waiting')
  letGo()
  t.same([(await holding).statusCode, (await waiting).statusCode], [200, 200], 'the holder and the one waiter both complete')
  t.same(await keysLeft(redis, prefix), [])
})

import t from 'tap'
import { spawn } from 'node:child_process'
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { client, holders, keysLeft, redisUrl, uniquePrefix } from './helpers/redis'
import { eventually, sleep, slotsApp } from './helpers/app'

interface Got {
  status: number
  headers: IncomingHttpHeaders
  body: string
}

/** A GET over real HTTP, read to the end. */
function get (app: FastifyInstance, path: string): Promise<Got> {
  const { port } = app.server.address() as AddressInfo
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, method: 'GET', agent: false }, res => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { body += chunk })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

/** Calls `sample` every `everyMs` until stopped; returns every value seen, with when it was read. */
function sampler (sample: () => Promise<number>, everyMs = 50): { stop: () => Promise<Array<{ at: number, value: number }>> } {
  const values: Array<{ at: number, value: number }> = []
  const state = { stopped: false }
  const loop = (async () => {
    while (!state.stopped) {
      const value = await sample()
      values.push({ at: Date.now(), value })
      await sleep(everyMs)
    }
  })()
  return {
    stop: async () => {
      state.stopped = true
      await loop
      return values
    }
  }
}

t.test('a slot held for several leases is renewed and never lost', async t => {
  const url = await redisUrl(t)
  const redis = client(t, url)
  const prefix = uniquePrefix('lease')
  const tag = 'user:r'
  const app = await slotsApp(t, { redis, prefix, leaseMs: 300 })
  let heldFor = 0
  app.get('/stream', async (request, reply) => {
    const slot = await request.acquireSlot('user', 'r', 1, { stream: true })
    const started = Date.now()
    reply.hijack()
    reply.raw.writeHead(200, { 'content-type': 'text/event-stream' })
    for (let i = 0; i < 12; i++) {
      reply.raw.write(`data: ${i}\n\n`)
      await sleep(100)
    }
    heldFor = Date.now() - started
    reply.raw.end(`data: waited ${slot.waitedMs}\n\n`)
  })
  app.get('/try', async (request) => {
    await request.acquireSlot('user', 'r', 1, { maxWaitMs: 0 })
    return { acquired: true }
  })
  await app.listen({ port: 0, host: '127.0.0.1' })

  const stream = get(app, '/stream')
  await eventually(async () => await holders(redis, prefix, tag) === 1)
  const held = Date.now()
  const samples = sampler(() => holders(redis, prefix, tag))
  // Past the first lease, the second and the third: only renewals keep the slot taken.
  const competitors: Got[] = []
  for (const at of [400, 800, 1100]) {
    await sleep(at - (Date.now() - held))
    competitors.push(await get(app, '/try'))
  }
  const res = await stream
  // The slot is released after the response ended: every sample read before that must see it.
  const ended = Date.now()
  const values = await samples.stop()

  t.equal(res.status, 200)
  t.match(res.body, /data: 11\n\n/, 'the stream wrote all its data')
  t.ok(heldFor >= 1150, `the slot was held for 4 leases (${heldFor} ms)`)
  const during = values.filter(v => v.at < ended).map(v => v.value)
  t.ok(during.length >= 15, `sampled often enough while held (${during.length} samples)`)
  t.same(during.filter(v => v !== 1), [], 'holders was 1 at every sample while the stream held the slot')
  t.same(competitors.map(c => c.status), [429, 429, 429], 'the slot was never free for another request')
  t.equal(competitors[0]?.headers['retry-after'] !== undefined, true, 'the 429 carries Retry-After')
  await eventually(async () => await holders(redis, prefix, tag) === 0)
  t.same(await keysLeft(redis, prefix), [], 'nothing is left once the stream ended')
})

t.test('the slot of a killed holder comes back after its lease', async t => {
  const url = await redisUrl(t)
  const redis = client(t, url)
  const prefix = uniquePrefix('lease-kill')
  const tag = 'user:k'

  // Under tap every child gets `--import` of tap's coverage hooks (re-added to NODE_OPTIONS on
  // spawn), and with any --import Node 20 loads the entry point as ESM, which refuses a .ts
  // file. So the fixture is required from -e: CommonJS, where ts-node's -r hook applies.
  const fixture = join(__dirname, 'fixtures', 'holder.ts')
  const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', '-e', `require(${JSON.stringify(fixture)})`], {
    env: { ...process.env, REDIS_URL: url, PREFIX: prefix },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const exited = new Promise<void>(resolve => child.once('exit', () => resolve()))
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited
  })
  let stderr = ''
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (chunk: string) => { stderr += chunk })
  const held = await new Promise<boolean>(resolve => {
    let out = ''
    const timer = setTimeout(() => resolve(false), 10_000)
    child.stdout.setEncoding('utf8')
    child.stdout.on('data', (chunk: string) => {
      out += chunk
      if (out.includes('held\n')) {
        clearTimeout(timer)
        resolve(true)
      }
    })
    child.once('exit', () => {
      clearTimeout(timer)
      resolve(false)
    })
  })
  t.ok(held, `the child holds the slot${stderr === '' ? '' : `: ${stderr}`}`)
  if (!held) return
  t.equal(await holders(redis, prefix, tag), 1, 'the child holds the only slot')
  // A few renewals happen before the kill (every leaseMs / 3 = 166 ms).
  await sleep(400)
  t.equal(await holders(redis, prefix, tag), 1, 'the child\'s lease is renewed')

  child.kill('SIGKILL')
  await exited
  t.equal(await holders(redis, prefix, tag), 1, 'right after the kill the dead holder still counts')

  const app = await slotsApp(t, { redis, prefix, leaseMs: 500 })
  app.get('/', async (request) => {
    const slot = await request.acquireSlot('user', 'k', 1, { maxWaitMs: 3000 })
    return { waitedMs: slot.waitedMs, bypassed: slot.bypassed }
  })
  const samples = sampler(() => holders(redis, prefix, tag), 20)
  const res = await app.inject('/')
  const values = await samples.stop()

  t.equal(res.statusCode, 200, `the slot came back within maxWaitMs: ${res.body}`)
  const body = res.json() as { waitedMs: number, bypassed: boolean }
  t.equal(body.bypassed, false)
  t.ok(body.waitedMs > 0, `it had to wait for the lease to lapse (${body.waitedMs} ms)`)
  t.ok(body.waitedMs <= 1500, `it got the slot within lease + backoff (${body.waitedMs} ms)`)
  t.ok(values.length >= 5, `sampled while waiting (${values.length} samples)`)
  t.same(values.filter(v => v.value > 1), [], 'never more than one holder')
  await eventually(async () => await holders(redis, prefix, tag) === 0)
  t.same(await keysLeft(redis, prefix), [])
})

t.test('every slot a request holds is renewed, and all are released at the end', async t => {
  const url = await redisUrl(t)
  const redis = client(t, url)
  const prefix = uniquePrefix('lease-multi')
  const app = await slotsApp(t, { redis, prefix, leaseMs: 300 })
  let letGo: () => void = () => {}
  const done = new Promise<void>(resolve => { letGo = resolve })
  app.get('/both', async (request) => {
    await request.acquireSlot('user', 'a', 1)
    await request.acquireSlot('org', 'b', 1)
    await done
    return { held: 2 }
  })
  app.get('/user', async (request) => {
    await request.acquireSlot('user', 'a', 1, { maxWaitMs: 0 })
    return { acquired: true }
  })
  app.get('/org', async (request) => {
    await request.acquireSlot('org', 'b', 1, { maxWaitMs: 0 })
    return { acquired: true }
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => letGo())

  const both = get(app, '/both')
  await eventually(async () => await holders(redis, prefix, 'user:a') === 1 && await holders(redis, prefix, 'org:b') === 1)
  const samples = sampler(async () => await holders(redis, prefix, 'user:a') * 10 + await holders(redis, prefix, 'org:b'))
  await sleep(500)
  const [user1, org1] = await Promise.all([get(app, '/user'), get(app, '/org')])
  await sleep(500)
  const [user2, org2] = await Promise.all([get(app, '/user'), get(app, '/org')])
  const values = await samples.stop()
  letGo()
  const res = await both

  t.equal(res.status, 200)
  t.ok(values.length >= 15, `sampled often enough (${values.length} samples)`)
  t.same(values.filter(v => v.value !== 11), [], 'both subjects had one holder at every sample, past 3 leases')
  t.same([user1.status, org1.status, user2.status, org2.status], [429, 429, 429, 429], 'neither slot was ever free')
  await eventually(async () => await holders(redis, prefix, 'user:a') === 0 && await holders(redis, prefix, 'org:b') === 0)
  t.same(await keysLeft(redis, prefix), [], 'both slots were released')
})

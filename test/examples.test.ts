import { spawn } from 'node:child_process'
import { request } from 'node:http'
import { join } from 'node:path'
import t from 'tap'
import { buildGateway } from '../docs/examples/gateway'
import { freePort, redisUrl } from './helpers/redis'

const headers = { 'x-api-key': 'key-bob', 'content-type': 'application/json' }

for (const store of ['memory', 'redis'] as const) {
  t.test(`the demo gateway answers and streams (${store} store)`, async t => {
    const app = await buildGateway({ redisUrl: store === 'redis' ? await redisUrl(t) : undefined, tokenMs: 5, pingMs: 20 })
    t.teardown(() => app.close())

    const plain = await app.inject({ method: 'POST', url: '/v1/messages', headers, payload: { tokens: 2 } })
    t.equal(plain.statusCode, 200)
    t.same(plain.json().content, [{ type: 'text', text: 'token1 token2' }], 'an Anthropic message')

    t.equal((await app.inject({ method: 'POST', url: '/v1/messages', headers: { 'x-api-key': 'nope' }, payload: {} })).statusCode, 401)

    // bob may have one request in flight: the second stream waits, gets pings, then its tokens.
    const [first, second] = await Promise.all([
      app.inject({ method: 'POST', url: '/v1/messages', headers, payload: { stream: true, tokens: 10 } }),
      app.inject({ method: 'POST', url: '/v1/messages', headers, payload: { stream: true, tokens: 2 } })
    ])
    for (const res of [first, second]) {
      t.equal(res.statusCode, 200)
      t.match(res.headers['content-type'], /^text\/event-stream/)
      t.match(res.body, /"type":"message_stop"/)
    }
    const pinged = [first, second].find(res => res.body.includes('event: ping\ndata: {"type":"ping"}'))
    t.ok(pinged, 'the waiting stream got Anthropic pings before its tokens')
    t.ok(pinged!.body.indexOf('ping') < pinged!.body.indexOf('token1'))
    t.match(second.body, /event: content_block_delta\ndata: \{"type":"content_block_delta","index":0,"delta":\{"type":"text_delta","text":"token1"\}\}/)

    // Without waiting: a 429 at once, with Retry-After.
    const holding = app.inject({ method: 'POST', url: '/v1/messages', headers, payload: { tokens: 10 } })
    await new Promise(resolve => setTimeout(resolve, 20))
    const refused = await app.inject({ method: 'POST', url: '/v1/messages', headers: { ...headers, 'x-no-wait': '1' }, payload: {} })
    t.equal(refused.statusCode, 429)
    t.ok(refused.headers['retry-after'], 'with Retry-After')
    await holding
  })
}

t.test('npm start: the demo prints its curl lines, and closes on SIGTERM giving its slots back', async t => {
  const port = await freePort()
  const fixture = join(__dirname, 'fixtures', 'gateway-main.ts')
  const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', '-e', `require(${JSON.stringify(fixture)})`], {
    env: { ...process.env, PORT: String(port), REDIS_URL: '' }, // the memory store
    stdio: ['ignore', 'pipe', 'pipe']
  })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  const exited = new Promise<number | null>(resolve => child.once('exit', code => resolve(code)))
  let out = ''
  child.stdout.setEncoding('utf8')
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no banner: ${out}`)), 15_000)
    child.stdout.on('data', (chunk: string) => {
      out += chunk
      if (out.includes('x-no-wait')) { clearTimeout(timer); resolve() }
    })
  })
  t.match(out, `PORT=${port}`, 'it says which PORT it listens on')
  t.match(out, /curl -iN .*key-bob/, 'a curl line with -i for the waiting stream')
  t.match(out, /curl -i -H "x-no-wait: 1"/, 'and one for a 429 with its Retry-After')
  // A request in flight holds a slot when the signal comes: close waits for it, then exits 0.
  // (A client without keep-alive: an idle keep-alive connection would hold close() up.)
  const inFlight = new Promise<number | undefined>((resolve, reject) => {
    const req = request({ port, host: '127.0.0.1', path: '/v1/messages', method: 'POST', agent: false, headers: { 'x-api-key': 'key-alice', 'content-type': 'application/json' } }, res => {
      res.resume()
      res.on('end', () => resolve(res.statusCode))
    })
    req.on('error', reject)
    req.end('{"tokens":2}')
  })
  await new Promise(resolve => setTimeout(resolve, 100))
  child.kill('SIGTERM')
  t.equal(await inFlight, 200, 'the request in flight completed')
  t.equal(await exited, 0, 'exited cleanly on SIGTERM')
})

import t from 'tap'
import { buildGateway } from '../docs/examples/gateway'
import { redisUrl } from './helpers/redis'

const headers = { 'x-api-key': 'key-bob', 'content-type': 'application/json' }

for (const store of ['memory', 'redis'] as const) {
  t.test(`the demo gateway answers and streams (${store} store)`, async t => {
    const app = await buildGateway({ redisUrl: store === 'redis' ? await redisUrl(t) : undefined, tokenMs: 5, pingMs: 20 })
    t.teardown(() => app.close())

    const plain = await app.inject({ method: 'POST', url: '/v1/messages', headers, payload: { tokens: 2 } })
    t.equal(plain.statusCode, 200)
    t.same(plain.json(), { content: 'token1 token2' })

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
    const pinged = [first, second].find(res => res.body.includes('data: {"type": "ping"}'))
    t.ok(pinged, 'the waiting stream got Anthropic pings before its tokens')
    t.ok(pinged!.body.indexOf('ping') < pinged!.body.indexOf('token1'))
  })
}

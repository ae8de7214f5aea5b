/**
 * Found by the model test once store calls were batched per event-loop turn: an app that closes
 * its own Redis client in an onClose hook (registered after fastify-slots, so it runs first)
 * lost the releases of requests that finished during close, and the give-backs of the waits
 * close aborted, which were still waiting for the turn's batch when the client closed. Their
 * slots stayed held until their leases lapsed. Once the app begins to close, every store call
 * now goes out as it is made.
 */
import { get } from 'node:http'
import t from 'tap'
import Fastify from 'fastify'
import fastifySlots from '../../lib'
import { client, keysLeft, redisUrl, uniquePrefix } from '../helpers/redis'
import { eventually, sleep } from '../helpers/app'

/** The status of a GET on a connection of its own (Connection: close), so close() does not wait for an idle keep-alive. */
function status (url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    get(url, { agent: false }, res => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
    }).on('error', reject)
  })
}

t.test('a request that finishes during close, and a wait that close aborts, leave nothing behind when the app closes its client in onClose', async t => {
  const url = await redisUrl(t)
  const admin = client(t, url)
  const prefix = uniquePrefix('close-client')
  for (let round = 0; round < 5; round++) {
    const redis = client(t, url)
    const app = Fastify()
    await app.register(fastifySlots, { redis, prefix, leaseMs: 60_000 })
    let finish = (): void => {}
    const holding = new Promise<void>(resolve => { finish = resolve })
    app.get('/hold', async request => {
      await request.acquireSlot('user', 'closing', 1)
      await holding
      return 'done'
    })
    app.get('/wait', async request => {
      await request.acquireSlot('user', 'closing', 1)
      return 'got it'
    })
    // The app's own cleanup, registered after the plugin: onClose hooks run last-added first.
    app.addHook('onClose', async () => { redis.disconnect() })
    const base = await app.listen({ port: 0, host: '127.0.0.1' })
    const held = status(`${base}/hold`)
    await eventually(async () => await admin.zcard(`${prefix}:{user:closing}:holders`) === 1)
    const waited = status(`${base}/wait`)
    await eventually(async () => await admin.zcard(`${prefix}:{user:closing}:tickets`) === 1)

    const closed = app.close()
    await sleep(20)
    finish()
    await closed
    t.same([await held, await waited], [200, 503], `round ${round}: the holder finished, the waiter was refused`)
    t.same(await keysLeft(admin, prefix), [], `round ${round}: the release and the give-back reached Redis before the client closed`)
  }
})

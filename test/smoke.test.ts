import t from 'tap'
import { client, holders, keysLeft, redisUrl, uniquePrefix } from './helpers/redis'
import { slotsApp } from './helpers/app'

t.test('a route takes and releases a slot', async t => {
  const url = await redisUrl(t)
  const redis = client(t, url)
  const prefix = uniquePrefix('smoke')
  const app = await slotsApp(t, { redis, prefix })
  let during = -1
  app.get('/', async (request) => {
    const slot = await request.acquireSlot('user', 42, 3)
    during = await holders(redis, prefix, 'user:42')
    return { waited: slot.waitedMs, bypassed: slot.bypassed }
  })
  const res = await app.inject('/')
  t.equal(res.statusCode, 200)
  t.equal(during, 1)
  t.same(await keysLeft(redis, prefix), [])
})

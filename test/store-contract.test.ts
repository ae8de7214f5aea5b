/**
 * The SlotStore contract (test/helpers/store-contract.ts) against every store the plugin ships.
 * Each case gets a fresh store (a fresh key prefix for Redis) and talks to it only through the interface.
 */
import t from 'tap'
import { client, keysUnder, redisUrl, uniquePrefix } from './helpers/redis'
import { contract } from './helpers/store-contract'
import { RedisStore } from '../lib/stores/redis-store'
import { MemoryStore } from '../lib/stores/memory-store'

t.test('RedisStore', async t => {
  const url = await redisUrl(t)
  const redis = client(t, url)
  const prefixes: string[] = []
  t.teardown(async () => {
    for (const prefix of prefixes) {
      const keys = await keysUnder(redis, prefix)
      if (keys.length > 0) await redis.del(...keys)
    }
  })
  contract(t, async t => {
    const prefix = uniquePrefix('contract')
    prefixes.push(prefix)
    return {
      store: new RedisStore({ client: redis, prefix }),
      peer: () => new RedisStore({ client: client(t, url), prefix })
    }
  })
})

t.test('MemoryStore', async t => {
  contract(t, async () => {
    const store = new MemoryStore()
    return { store, peer: () => store }
  })
})

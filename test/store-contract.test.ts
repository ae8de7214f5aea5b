/**
 * The SlotStore contract (test/helpers/store-contract.ts) against every store the plugin ships.
 * Each case gets a fresh store (a fresh key prefix for Redis) and talks to it only through the interface.
 */
import t from 'tap'
import { client, keysUnder, redisUrl, uniquePrefix } from './helpers/redis'
import { contract, seedLapsedRedisTickets } from './helpers/store-contract'
import { RedisStore } from '../lib/stores/redis-store'
import { MemoryStore } from '../lib/stores/memory-store'
import { parseMember } from '../lib/stores/store'

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
    const store = new RedisStore({ client: redis, prefix })
    t.teardown(() => store.close())
    return {
      store,
      peer: () => {
        const peer = new RedisStore({ client: client(t, url), prefix })
        t.teardown(() => peer.close())
        return peer
      },
      seedLapsedTickets: (tag, members) => seedLapsedRedisTickets(redis, store, tag, members)
    }
  })
})

t.test('MemoryStore', async t => {
  contract(t, async () => {
    // A clock that can be set back, to take tickets that have lapsed by the time it is reset.
    let skew = 0
    const store = new MemoryStore({ now: () => Date.now() + skew })
    return {
      store,
      peer: () => store,
      seedLapsedTickets: async (tag, members) => {
        skew = -600_000
        try {
          for (const member of members) {
            const max = parseMember(member).max
            await store.tryAcquire({ tag, member, max, leaseMs: 1000, maxWaiters: members.length, ticketTtlMs: 1000 })
          }
        } finally {
          skew = 0
        }
      }
    }
  })
})

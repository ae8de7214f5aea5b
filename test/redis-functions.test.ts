/**
 * The batch goes out as an FCALL of a Redis Function loaded once per server, and falls back
 * to the EVALSHA script where the server cannot have functions. Both forms run the same code,
 * so the store behaves the same either way; these tests pin the loading and the fallback.
 */
import t from 'tap'
import { Redis } from 'ioredis'
import { client, startPrivateRedis } from './helpers/redis'
import { RedisStore } from '../lib/stores/redis-store'
import { AcquireOutcome, ReleaseOutcome, type TryAcquireArgs } from '../lib/stores/store'
import { BATCH_FUNCTION } from '../lib/stores/scripts/run-batch'
import { m } from './helpers/store-contract'

const args = (member: string): TryAcquireArgs => ({ tag: 'user:1', member: m(member), max: 1, leaseMs: 10_000, maxWaiters: 10, ticketTtlMs: 5_000 })

async function calls (redis: Redis): Promise<Record<string, number>> {
  const stats = await redis.info('commandstats')
  const count = (name: string): number => Number(new RegExp(`cmdstat_${name}:calls=(\\d+)`).exec(stats)?.[1] ?? 0)
  return { fcall: count('fcall'), evalsha: count('evalsha'), eval: count('eval'), load: count('function\\|load') }
}

t.test('batches are FCALLs of a function loaded once per server, and loaded again after a restart without persistence', async t => {
  const server = await startPrivateRedis(t)
  const admin = client(t, server.url)
  const store = new RedisStore({ client: client(t, server.url), prefix: 'fn', wakeups: false })
  t.equal(await store.tryAcquire(args('a')), AcquireOutcome.Acquired)
  t.equal(await store.release({ tag: 'user:1', member: m('a') }), ReleaseOutcome.Released)
  const first = await calls(admin)
  t.equal(first.load, 1, 'the library was loaded once')
  t.equal(first.evalsha + first.eval, 0, 'no script was run')
  t.equal(first.fcall, 3, 'the first FCALL found no function; it and the release ran after the load')
  t.match(JSON.stringify(await admin.call('FUNCTION', 'LIST')), BATCH_FUNCTION, 'the function is named after its code')

  // What a restart of a server without persistence leaves: no functions.
  await admin.call('FUNCTION', 'FLUSH')
  t.equal(await store.tryAcquire(args('b')), AcquireOutcome.Acquired, 'the call after the flush still succeeds')
  t.equal((await calls(admin)).load, 2, 'after loading the library again')
})

t.test('two versions of the plugin on one server each keep their own library', async t => {
  const server = await startPrivateRedis(t)
  const admin = client(t, server.url)
  await admin.call('FUNCTION', 'LOAD', "#!lua name=fastify_slots_0000000000000000\nredis.register_function('fastify_slots_batch_0000000000000000', function () return 1 end)\n")
  const store = new RedisStore({ client: client(t, server.url), prefix: 'fn', wakeups: false })
  t.equal(await store.tryAcquire(args('a')), AcquireOutcome.Acquired)
  const libraries = (await admin.call('FUNCTION', 'LIST')) as unknown[]
  t.equal(libraries.length, 2, "the other version's library is left alone")
})

t.test('a user whose ACL denies functions gets the EVALSHA script, with the same behaviour', async t => {
  const server = await startPrivateRedis(t)
  const admin = client(t, server.url)
  await admin.call('ACL', 'SETUSER', 'scripts-only', 'on', '>secret', '~*', '&*', '+@all', '-fcall', '-function')
  const redis = client(t, server.url, { username: 'scripts-only', password: 'secret' })
  const store = new RedisStore({ client: redis, prefix: 'acl', wakeups: false })
  t.equal(await store.tryAcquire(args('a')), AcquireOutcome.Acquired)
  t.same(await store.tryAcquire(args('b')), { outcome: AcquireOutcome.Full, ahead: 0 }, 'the limit holds through the script')
  t.equal(await store.release({ tag: 'user:1', member: m('a') }), ReleaseOutcome.Released)
  t.equal(await store.poll(args('b')), AcquireOutcome.Acquired, 'the release granted the waiter')
  const after = await calls(admin)
  t.ok(after.evalsha + after.eval >= 4, 'the calls ran as scripts')
  t.equal(after.load, 0, 'no library was loaded')
})

t.test('a client without a generic call() uses the script', async t => {
  const server = await startPrivateRedis(t)
  const redis = client(t, server.url)
  const withoutCall = new Proxy(redis, { get: (target, key, receiver) => key === 'call' ? undefined : Reflect.get(target, key, receiver) })
  const store = new RedisStore({ client: withoutCall, prefix: 'nocall', wakeups: false })
  t.equal(await store.tryAcquire(args('a')), AcquireOutcome.Acquired)
  t.equal((await calls(client(t, server.url))).fcall, 0)
})

t.test('a server that still has no function right after loading it fails the call instead of looping', async t => {
  const server = await startPrivateRedis(t)
  const redis = client(t, server.url)
  let fcalls = 0
  // FUNCTION LOAD goes through; every FCALL answers as if the library were missing.
  const forgetful = new Proxy(redis, {
    get: (target, key, receiver) => key === 'call'
      ? async (command: string, ...rest: Array<string | number>) => {
        if (command === 'FCALL') {
          fcalls++
          throw new Error('ERR Function not found')
        }
        return await target.call(command, ...rest)
      }
      : Reflect.get(target, key, receiver)
  })
  const store = new RedisStore({ client: forgetful, prefix: 'forgetful', wakeups: false })
  await t.rejects(store.tryAcquire(args('a')), /Function not found/)
  t.equal(fcalls, 2, 'one call, one load, one more call, then the error')
})

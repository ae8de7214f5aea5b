/**
 * A short fixed-seed run of the model test (test/model/model.ts) on both stores: the memory
 * store (three apps sharing one MemoryStore) and Redis (REDIS_URL when set, under a unique
 * prefix; else a private redis-server), about 15 s in all. Any violation fails with the seed
 * and the command that replays it. About a fifth of the calls take sets (acquireSlots): the
 * run also fails if none was admitted, since (i) would then have checked nothing. The long
 * run: test/model/run.ts.
 */
import t from 'tap'
import { runModel, type ModelResult } from './model'
import { hasRedisServer } from '../helpers/redis'

const SEED = 20240611

function check (t: tap.Test, result: ModelResult): void {
  t.comment(`${result.store}, seed ${result.seed}: ${(result.durationMs / 1000).toFixed(1)} s, ${JSON.stringify(result.counts)}`)
  for (const note of result.notes.slice(0, 10)) t.comment(`note (${note.invariant}): ${note.detail}`)
  t.same(result.violations.map(v => `(${v.invariant}) ${v.detail}`), [],
    `no invariant violated with seed ${result.seed} (${result.store}); replay: ${result.replay}`)
  t.ok((result.counts['sample:set-holders'] ?? 0) > 0, `sets were admitted and sampled (${result.store})`)
}

t.test('model: memory store, three apps sharing one MemoryStore', async t => {
  check(t, await runModel({ seed: SEED, seconds: 2, store: 'memory', log: line => t.comment(line) }))
})

t.test('model: Redis, four apps (two child processes, two through a flaky proxy)', {
  skip: (process.env.REDIS_URL ?? '') === '' && !hasRedisServer() ? 'no REDIS_URL and no redis-server on PATH' : false
}, async t => {
  check(t, await runModel({ seed: SEED, seconds: 4, store: 'redis', redisUrl: process.env.REDIS_URL, log: line => t.comment(line) }))
})

import { once } from 'node:events'
import { createInterface } from 'node:readline'
import t from 'tap'
import { client, keysLeft, redisUrl, uniquePrefix } from './helpers/redis'
import { startFixture } from './helpers/processes'

t.test('app.close() with holders and waiters: waiters get 503, slots are released, the process exits by itself', async t => {
  const url = await redisUrl(t)
  const redis = client(t, url)
  const prefix = uniquePrefix('shutdown')
  const app = await startFixture(t, 'shutdown-app.ts', { REDIS_URL: url, PREFIX: prefix })
  const lines = createInterface({ input: app.child.stdout! })
  const [line] = await once(lines, 'line') as [string]
  const report = JSON.parse(line) as { statuses: number[], closed: number }
  t.same(report.statuses, [200, 200, 503, 503], 'the two holders finish, the two waiters are told 503')
  t.ok(report.closed < 5000, `close() completed in ${report.closed} ms`)
  const exit = once(app.child, 'exit')
  const timer = setTimeout(() => app.child.kill('SIGKILL'), 10_000)
  const [code, signal] = await exit as [number | null, string | null]
  clearTimeout(timer)
  t.equal(signal, null, 'it was not killed: nothing kept it alive')
  t.equal(code, 0)
  t.equal(app.stderr(), '', 'and it logged no error')
  t.same(await keysLeft(redis, prefix), [], 'no holder or waiter is left in Redis')
})

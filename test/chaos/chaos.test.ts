/**
 * The short chaos run inside `npm test`: every scenario once (Redis restart, SIGSTOP past the
 * lease, kill -9), three app processes, 200 clients; the load runs as long as one cycle of the
 * scenarios takes (about 9 s). The long run: `npm run test:chaos`.
 */
import t from 'tap'
import { run } from './chaos'

t.test('chaos: three processes, one Redis, restarts, stalls and kills under load', async t => {
  const report = await run({ seconds: 5, clients: 200, log: line => t.comment(line) })
  for (const check of report.checks) t.ok(check.ok, `${check.name}: ${check.detail}`)
  t.comment(JSON.stringify(report.summary))
})

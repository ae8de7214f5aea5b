/**
 * The long chaos run: `npm run test:chaos -- --seconds 120 [--clients 300] [--seed 7]`
 * (also --leaseMs, --storeTimeoutMs, --pingMs, --slowTimeoutMs, --outageMs, --stallMs).
 * The scenarios (Redis restart, SIGSTOP, kill -9 and a replacement process) repeat while the
 * load runs. Prints every check and a summary; exits 1 when any invariant was violated.
 * CHAOS_MONITOR=<file> records every Redis command for a post-mortem.
 */
import { run, type ChaosOptions } from './chaos'

function parse (argv: string[]): Partial<ChaosOptions> {
  const options: Partial<ChaosOptions> = {}
  const numeric = new Set(['seconds', 'clients', 'seed', 'leaseMs', 'storeTimeoutMs', 'pingMs', 'slowTimeoutMs', 'outageMs', 'stallMs'])
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i].replace(/^--/, '')
    const value = Number(argv[i + 1])
    if (!numeric.has(name) || !Number.isFinite(value)) {
      throw new Error(`usage: npm run test:chaos -- [--seconds N] [--clients N] [--seed N] [--${[...numeric].slice(3).join(' N] [--')} N]; got ${argv[i]}`)
    }
    (options as Record<string, number>)[name] = value
    i++
  }
  return options
}

async function main (): Promise<void> {
  const options = { seconds: 60, clients: 300, seed: Date.now() % 100_000, ...parse(process.argv.slice(2)) }
  const started = Date.now()
  const report = await run({ ...options, log: line => process.stdout.write(`${new Date().toISOString().slice(11, 23)} ${line}\n`) })
  process.stdout.write(`\nsummary ${JSON.stringify(report.summary, null, 2)}\n`)
  const failed = report.checks.filter(c => !c.ok)
  process.stdout.write(`\n${report.checks.length - failed.length}/${report.checks.length} checks passed in ${Math.round((Date.now() - started) / 1000)} s\n`)
  for (const check of failed) process.stdout.write(`FAIL ${check.name}: ${check.detail}\n`)
  process.exit(failed.length === 0 ? 0 : 1)
}

main().catch(err => {
  console.error(err)
  process.exit(1)
})

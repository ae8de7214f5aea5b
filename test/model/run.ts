/**
 * The model test from the command line:
 *
 *   node -r ts-node/register/transpile-only test/model/run.ts --seconds 30 --seed 7 [--store redis|memory|both] [--clients N] [--uniform-max] [--no-sets] [--quiet]
 *
 * --uniform-max: one max per subject (mixed max over-admits on the current lib and would
 * hide everything else). --no-sets: singles only (no acquireSlots), to tell a violation of
 * sets from one of singles.
 *
 * Redis: REDIS_URL when set (the run keeps to a unique key prefix and never flushes), else a
 * private redis-server. Prints every violation with the seed that reproduces it and a summary;
 * exits 1 when any invariant was violated.
 */
import { runModel, type ModelResult } from './model'

interface Args {
  seconds: number
  seed: number
  store: 'redis' | 'memory' | 'both'
  clients?: number
  quiet: boolean
  uniformMax: boolean
  noSets: boolean
}

function parse (argv: string[]): Args {
  const args: Args = { seconds: 20, seed: Date.now() % 100_000, store: 'both', quiet: false, uniformMax: false, noSets: false }
  const usage = 'usage: run.ts [--seconds N] [--seed N] [--store redis|memory|both] [--clients N] [--quiet] [--uniform-max] [--no-sets]'
  const flags = { '--quiet': 'quiet', '--uniform-max': 'uniformMax', '--no-sets': 'noSets' } as const
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i]
    const value = argv[i + 1]
    if (Object.hasOwn(flags, name)) {
      args[flags[name as keyof typeof flags]] = true
      continue
    }
    if (name === '--store' && (value === 'redis' || value === 'memory' || value === 'both')) args.store = value
    else if ((name === '--seconds' || name === '--seed' || name === '--clients') && Number.isFinite(Number(value))) args[name.slice(2) as 'seconds' | 'seed' | 'clients'] = Number(value)
    else throw new Error(`${usage}; got ${name}`)
    i++
  }
  return args
}

function print (result: ModelResult): void {
  const out = (line: string): void => { process.stdout.write(line + '\n') }
  out(`\n== ${result.store}, seed ${result.seed}: ${result.violations.length} violation(s) in ${(result.durationMs / 1000).toFixed(1)} s`)
  out(`counts ${JSON.stringify(result.counts)}`)
  const byInvariant: Record<string, number> = {}
  for (const v of result.violations) byInvariant[v.invariant] = (byInvariant[v.invariant] ?? 0) + 1
  if (result.violations.length > 0) out(`violations by invariant ${JSON.stringify(byInvariant)}`)
  for (const v of result.violations) out(`VIOLATION (${v.invariant}) seed ${result.seed}: ${v.detail}`)
  for (const n of result.notes.slice(0, 20)) out(`note (${n.invariant}): ${n.detail}`)
  if (result.notes.length > 20) out(`... ${result.notes.length - 20} more notes`)
  if (!result.ok) out(`replay: ${result.replay}`)
}

async function main (): Promise<void> {
  const args = parse(process.argv.slice(2))
  const stores: Array<'redis' | 'memory'> = args.store === 'both' ? ['memory', 'redis'] : [args.store]
  const log = args.quiet ? undefined : (line: string) => process.stdout.write(`${new Date().toISOString().slice(11, 23)} ${line}\n`)
  let ok = true
  for (const store of stores) {
    const result = await runModel({ seed: args.seed, seconds: args.seconds, store, clients: args.clients, mixedMax: !args.uniformMax, sets: !args.noSets, redisUrl: process.env.REDIS_URL, log })
    print(result)
    ok &&= result.ok
  }
  process.exit(ok ? 0 : 1)
}

main().catch(err => {
  console.error(err)
  process.exit(2)
})

/**
 * Where the benchmark reads and writes, whether it runs from its TypeScript sources (through
 * ts-node) or compiled (`npm run bench` compiles it with the plugin into .bench-build/, so the
 * plugin is measured as users run it: plain JavaScript, without ts-node's compiler in the heap
 * or its side effects, such as loading node:domain, which slows every EventEmitter).
 */
import { join } from 'node:path'

const compiled = !__filename.endsWith('.ts')

/** The repository's root. */
export const ROOT = compiled ? join(__dirname, '..', '..') : join(__dirname, '..')

/** The child process script, and how to start it. */
export const CHILD = {
  script: join(__dirname, compiled ? 'child.js' : 'child.ts'),
  execArgv: compiled ? [] : ['-r', 'ts-node/register/transpile-only']
}

/**
 * The package as a user installs it: `npm pack` (which builds dist/ from scratch), then
 * throwaway consumers, each in a fresh temp dir with the tarball and fastify installed:
 *
 *   (a) TypeScript, `module`/`moduleResolution: nodenext`, `strict`, ESM: type-checked with
 *       this repo's tsc, then run;
 *   (b) TypeScript, `moduleResolution: bundler`: type-checked, then run (and `node10`:
 *       type-checked);
 *   (c) CommonJS `.cjs` with `require`;
 *   (d) native ESM `.mjs` with named imports.
 *
 * Each imports exactly the names docs/options.md "Exported names" shows, registers the plugin
 * on a Fastify app (memory store), takes a slot with `fastify.slots.acquire` and releases it,
 * and prints `ok`. The tarball's contents are checked too: no source maps pointing at
 * unshipped sources, every README link into docs/ shipped.
 */
import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const ROOT = join(__dirname, '..', '..')
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc')

// npm pack builds, then every consumer runs npm install (from the npm cache when it can).
t.setTimeout(240_000)

interface Run { code: number, stdout: string, output: string }

function run (cmd: string, args: string[], cwd: string): Promise<Run> {
  return new Promise(resolve => {
    execFile(cmd, args, { cwd, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, NODE_OPTIONS: '' } }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1
      resolve({ code, stdout, output: `$ ${cmd} ${args.join(' ')} (in ${cwd})\n${stdout}${stderr}` })
    })
  })
}

const version = (name: string): string =>
  JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version

/** The names the "Exported names" block of docs/options.md shows: values and types. */
function documentedNames (): { values: string[], types: string[] } {
  const options = readFileSync(join(ROOT, 'docs', 'options.md'), 'utf8')
  const block = /## Exported names\s+```text\n([\s\S]*?)\n```/.exec(options)?.[1]
  if (block === undefined) throw new Error('docs/options.md has no "Exported names" code block')
  const imported = /import fastifySlots, \{([^}]*)\}\s*from 'fastify-slots'/.exec(block)?.[1]
  if (imported === undefined) throw new Error('the "Exported names" block has no `import fastifySlots, { ... } from \'fastify-slots\'`')
  const typeText = block.split('\n').filter(line => line.startsWith('//')).map(line => line.replace(/^\/\/\s*(types:)?/, ''))
    .join(' ').replace(/\(.*$/, '')
  const names = (text: string): string[] => text.split(',').map(s => s.trim()).filter(s => s !== '')
  const values = names(imported)
  const types = names(typeText)
  for (const name of [...values, ...types]) {
    if (!/^[A-Za-z_$][\w$]*$/.test(name)) throw new Error(`cannot read the name ${JSON.stringify(name)} in the "Exported names" block`)
  }
  return { values, types }
}

const { values, types } = documentedNames()

/** Asserts each imported value exists and works, takes and releases a slot, prints ok. */
function body (indent: string, extra: string[] = []): string {
  return [
    `const exported: Record<string, unknown> = { ${values.join(', ')} }`,
    'for (const [name, value] of Object.entries(exported)) {',
    '  if (value === undefined || value === null) throw new Error(name + \' is \' + String(value))',
    '}',
    'if (typeof fastifySlots !== \'function\') throw new Error(\'the default export is not the plugin\')',
    ...extra,
    'const app = Fastify()',
    'await app.register(fastifySlots, { store: \'memory\' })',
    'const slot = await app.slots.acquire(\'user\', 1, 2)',
    'if (slot.bypassed || slot.id !== \'1\') throw new Error(\'unexpected slot \' + JSON.stringify(slot))',
    'const usage = await app.slots.usage(\'user\', [1])',
    'if (usage[0].held !== 1) throw new Error(\'held \' + usage[0].held + \', expected 1\')',
    'await slot.release()',
    'if ((await app.slots.usage(\'user\', [1]))[0].held !== 0) throw new Error(\'the slot was not released\')',
    'await app.close()',
    'console.log(\'ok\')'
  ].map(line => indent + line).join('\n')
}

const untyped = (code: string): string => code.replace(/: Record<string, unknown>/g, '')

/**
 * TypeScript source for nodenext, bundler and node10. `fastifySlots.<Name>` types resolve
 * through a default import only where it is `module.exports` itself (nodenext); elsewhere the
 * default import is the namespace's `default` member, a value.
 */
const tsSource = (typesOnDefault: boolean): string => `import Fastify from 'fastify'
import fastifySlots, { ${values.join(', ')} } from 'fastify-slots'
import type { ${types.join(', ')} } from 'fastify-slots'

// Every documented type, used once.
export type Documented = [${types.join(', ')}]
${typesOnDefault ? `export type DocumentedOnDefault = [${types.map(n => `fastifySlots.${n}`).join(', ')}]\n` : ''}
async function main (): Promise<void> {
  const options: FastifySlotsOptions = { store: 'memory' }
  void options
${body('  ')}
}

main().catch((err: unknown) => {
  console.error(err)
  process.exitCode = 1
})
`

const mjsSource = `import Fastify from 'fastify'
import { createRequire } from 'node:module'
import * as namespace from 'fastify-slots'
import fastifySlots, { ${values.join(', ')}, fastifySlots as named } from 'fastify-slots'

${untyped(body('', [
  'if (named !== fastifySlots) throw new Error(\'the named export fastifySlots is not the default export\')',
  '// ESM and CommonJS see the same names and the same instances (one build, no dual-package hazard).',
  'const cjs = createRequire(import.meta.url)(\'fastify-slots\')',
  'if (cjs !== fastifySlots) throw new Error(\'require() and import see different modules\')',
  'const esmNames = Object.keys(namespace).sort().join(\',\')',
  'const cjsNames = Object.keys(cjs).sort().join(\',\')',
  'if (esmNames !== cjsNames) throw new Error(\'ESM exports \' + esmNames + \', CommonJS \' + cjsNames)',
  'for (const name of Object.keys(cjs)) if (namespace[name] !== cjs[name]) throw new Error(name + \' differs between ESM and CommonJS\')'
]))}
`

const cjsSource = `'use strict'
const Fastify = require('fastify')
const fastifySlots = require('fastify-slots')
const { ${values.join(', ')} } = fastifySlots

async function main () {
${untyped(body('  ', [
  'if (fastifySlots.default !== fastifySlots || fastifySlots.fastifySlots !== fastifySlots) throw new Error(\'default / fastifySlots are not the plugin\')'
]))}
}

main().catch(err => {
  console.error(err)
  process.exitCode = 1
})
`

const tsconfig = (compilerOptions: Record<string, unknown>): string => JSON.stringify({
  compilerOptions: { target: 'ES2022', strict: true, types: ['node'], ...compilerOptions },
  files: ['index.ts']
}, null, 2)

let work: string
let tarball: string
let packed: string[]

t.before(async () => {
  work = mkdtempSync(join(tmpdir(), 'fastify-slots-package-'))
  const pack = await run('npm', ['pack', '--json', '--pack-destination', work], ROOT)
  if (pack.code !== 0) throw new Error(`npm pack failed\n${pack.output}`)
  const info = JSON.parse(pack.stdout.slice(pack.stdout.lastIndexOf('\n[') + 1))[0]
  tarball = join(work, info.filename)
  packed = info.files.map((f: { path: string }) => f.path)
})
t.teardown(() => rmSync(work, { recursive: true, force: true }))

t.test('the tarball', async t => {
  t.ok(types.length >= 10 && values.length >= 9, `docs/options.md shows ${values.length} values and ${types.length} types`)
  for (const file of ['dist/index.js', 'dist/index.mjs', 'dist/index.d.ts', 'package.json', 'README.md', 'LICENSE']) {
    t.ok(packed.includes(file), `${file} is shipped`)
  }
  t.same(packed.filter(f => f.endsWith('.map')), [], 'no source maps (they would point at unshipped lib/*.ts)')
  t.same(packed.filter(f => /^(lib|test|bench|\.ci)\//.test(f)), [], 'no sources, tests, benchmarks or CI files')
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
  const links = [...readme.matchAll(/\]\((docs\/[^)#\s]+)/g)].map(m => m[1])
  t.ok(links.length > 0, 'the README links into docs/')
  for (const link of new Set(links)) t.ok(packed.includes(link), `README link ${link} is shipped`)
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'))
  for (const target of [pkg.main, pkg.types, pkg.exports['.'].types, pkg.exports['.'].import, pkg.exports['.'].require]) {
    t.ok(packed.includes(target.replace(/^\.\//, '')), `${target} (package.json) is shipped`)
  }
})

interface Consumer {
  name: string
  packageJson: Record<string, unknown>
  deps: string[]
  files: Record<string, string>
  steps: Array<[string, string[]]>
}

const consumers: Consumer[] = [
  {
    name: 'typescript-nodenext',
    packageJson: { type: 'module' },
    deps: [`@types/node@${version('@types/node')}`],
    files: { 'index.ts': tsSource(true), 'tsconfig.json': tsconfig({ module: 'nodenext', moduleResolution: 'nodenext', outDir: 'out' }) },
    steps: [['node', [TSC, '-p', '.']], ['node', ['out/index.js']]]
  },
  {
    name: 'typescript-bundler',
    packageJson: { type: 'module' },
    deps: [`@types/node@${version('@types/node')}`],
    files: {
      'index.ts': tsSource(false),
      'tsconfig.node10.json': tsconfig({ module: 'commonjs', moduleResolution: 'node10', esModuleInterop: true, noEmit: true }),
      // What a bundler sees; the emitted ESM has no relative imports, so Node runs it as well.
      'tsconfig.json': tsconfig({ module: 'esnext', moduleResolution: 'bundler', outDir: 'out' })
    },
    steps: [['node', [TSC, '-p', 'tsconfig.node10.json']], ['node', [TSC, '-p', '.']], ['node', ['out/index.js']]]
  },
  {
    name: 'commonjs',
    packageJson: {},
    deps: [],
    files: { 'index.cjs': cjsSource },
    steps: [['node', ['index.cjs']]]
  },
  {
    name: 'esm',
    packageJson: {},
    deps: [],
    files: { 'index.mjs': mjsSource },
    steps: [['node', ['index.mjs']]]
  }
]

/** Installs the tarball and fastify in a fresh dir, writes the files, runs the steps. */
async function runConsumer (consumer: Consumer): Promise<{ ok: boolean, log: string }> {
  const dir = join(work, consumer.name)
  mkdirSync(dir)
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `consumer-${consumer.name}`, private: true, ...consumer.packageJson }, null, 2))
  for (const [file, text] of Object.entries(consumer.files)) writeFileSync(join(dir, file), text)
  const log: string[] = []
  const steps: Array<[string, string[]]> = [
    ['npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--no-package-lock', tarball, `fastify@${version('fastify')}`, ...consumer.deps]],
    ...consumer.steps
  ]
  let last = ''
  for (const [cmd, args] of steps) {
    const step = await run(cmd, args, dir)
    log.push(step.output)
    if (step.code !== 0) return { ok: false, log: `${cmd} ${args.join(' ')} exited with ${step.code}\n${log.join('\n')}` }
    last = step.stdout
  }
  return { ok: /(^|\n)ok\n$/.test(last), log: `the last step did not print ok\n${log.join('\n')}` }
}

// The consumers install and run side by side; each subtest reports its own.
const results = new Map<string, Promise<{ ok: boolean, log: string }>>()
t.before(() => {
  for (const consumer of consumers) results.set(consumer.name, runConsumer(consumer))
})

for (const consumer of consumers) {
  t.test(`consumer: ${consumer.name}`, async t => {
    const result = await results.get(consumer.name)!
    if (result.ok) t.pass('installs, imports the documented names, takes and releases a slot, prints ok')
    else t.fail(result.log)
  })
}

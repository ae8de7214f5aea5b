/**
 * The docs cannot drift from tested code: every ```ts block in docs/*.md is verbatim code
 * from the docs/examples file it names, every example file is run here (or by
 * test/examples.test.ts), and every relative link in the docs resolves. Then each example
 * is run: against the memory store and a real Redis where it takes a store, asserting what
 * the docs say it does.
 */
import t from 'tap'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import type { Cluster } from 'ioredis'
import fastifySlots, { protocols } from '../lib'
import { resolveOptions } from '../lib/options'
import { client, keysUnder, redisUrl, startPrivateRedis, uniquePrefix } from './helpers/redis'
import { clusterKeysUnder, missingClusterTools, startPrivateCluster } from './helpers/cluster'
import { eventually, sleep } from './helpers/app'
import { parseSse } from './helpers/sse'
import * as quickStart from '../docs/examples/quick-start'
import * as routeConfig from '../docs/examples/route-config'
import * as optionsExample from '../docs/examples/options'
import * as lifecycle from '../docs/examples/lifecycle'
import * as sseProtocols from '../docs/examples/sse-protocols'
import * as streamErrorFrame from '../docs/examples/stream-error-frame'
import * as pickAccount from '../docs/examples/pick-account'
import * as prometheus from '../docs/examples/prometheus'
import * as redisClients from '../docs/examples/redis-clients'
import * as honestWaiting from '../docs/examples/honest-waiting'
import * as priorities from '../docs/examples/priorities'
import * as weights from '../docs/examples/weights'
import * as slotSets from '../docs/examples/slot-sets'

type Test = tap.Test

const ROOT = join(__dirname, '..')
const DOCS = join(ROOT, 'docs')
const EXAMPLES = join(DOCS, 'examples')

const markdownFiles = (): string[] => readdirSync(DOCS).filter(f => f.endsWith('.md')).sort()
const exampleFiles = (): string[] => readdirSync(EXAMPLES).filter(f => f.endsWith('.ts')).sort()

interface CodeBlock { doc: string, line: number, lang: string, code: string, intro: string }

/** Fenced code blocks of a markdown file, with the last non-empty line before each. */
function codeBlocks (doc: string, text: string): CodeBlock[] {
  const lines = text.split('\n')
  const blocks: CodeBlock[] = []
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)\s*$/.exec(lines[i])
    if (open === null) continue
    let end = i + 1
    while (end < lines.length && lines[end] !== '```') end++
    let before = i - 1
    while (before >= 0 && lines[before].trim() === '') before--
    blocks.push({ doc, line: i + 1, lang: open[1], code: lines.slice(i + 1, end).join('\n') + '\n', intro: before >= 0 ? lines[before] : '' })
    i = end
  }
  return blocks
}

t.test('docs and README: every ts block is verbatim code from the docs/examples file it names', async t => {
  const blocks = [
    ...markdownFiles().flatMap(doc => codeBlocks(doc, readFileSync(join(DOCS, doc), 'utf8'))),
    ...codeBlocks('README.md', readFileSync(join(ROOT, 'README.md'), 'utf8'))
  ]
  const tsBlocks = blocks.filter(b => ['ts', 'typescript'].includes(b.lang))
  t.ok(tsBlocks.length >= 10, `${tsBlocks.length} ts blocks in the docs`)
  for (const block of tsBlocks) {
    const where = `${block.doc}:${block.line}`
    // The line before the block links the file it quotes: "From [...](examples/NAME.ts):".
    const named = [...block.intro.matchAll(/\((?:docs\/)?examples\/([\w.-]+\.ts)(?:#[^)]*)?\)/g)].pop()?.[1]
    if (named === undefined) {
      t.fail(`${where}: the line before a ts block must link the docs/examples file it quotes`)
      continue
    }
    const file = join(EXAMPLES, named)
    if (!existsSync(file)) {
      t.fail(`${where}: docs/examples/${named} does not exist`)
      continue
    }
    t.ok(readFileSync(file, 'utf8').includes(block.code), `${where} is verbatim from docs/examples/${named}`)
  }
})

t.test('docs: every example is documented and run by a test', async t => {
  const docs = markdownFiles().map(doc => readFileSync(join(DOCS, doc), 'utf8')).join('\n')
  const tests = readdirSync(join(ROOT, 'test')).filter(f => f.endsWith('.test.ts'))
    .map(f => readFileSync(join(ROOT, 'test', f), 'utf8')).join('\n')
  for (const file of exampleFiles()) {
    const name = file.replace(/\.ts$/, '')
    t.ok(docs.includes(`examples/${file}`), `docs/examples/${file} is linked from the docs`)
    t.ok(tests.includes(`from '../docs/examples/${name}'`), `docs/examples/${file} is imported by a test`)
  }
})

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens. */
function anchors (markdown: string): Set<string> {
  const seen = new Set<string>()
  let fenced = false
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced
    const heading = fenced ? null : /^#{1,6}\s+(.*)$/.exec(line)
    if (heading === null) continue
    const slug = heading[1].trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-')
    let unique = slug
    for (let n = 1; seen.has(unique); n++) unique = `${slug}-${n}`
    seen.add(unique)
  }
  return seen
}

t.test('docs: relative links and their anchors resolve', async t => {
  for (const doc of markdownFiles()) {
    const text = readFileSync(join(DOCS, doc), 'utf8').replace(/^```[\s\S]*?^```$/gm, '')
    for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/i.test(target)) continue
      const [path, anchor] = target.split('#')
      const file = path === '' ? join(DOCS, doc) : join(DOCS, path)
      if (!existsSync(file)) {
        t.fail(`${doc}: link to ${target}: no such file`)
        continue
      }
      if (anchor !== undefined && file.endsWith('.md')) {
        t.ok(anchors(readFileSync(file, 'utf8')).has(anchor), `${doc}: link to ${target}: the anchor exists`)
      }
    }
  }
})

t.test('docs: the frames sse.md shows are what each protocol writes', async t => {
  const blocks = codeBlocks('sse.md', readFileSync(join(DOCS, 'sse.md'), 'utf8'))
  const error = new fastifySlots.SlotError('SLOT_WAIT_TIMEOUT', 'concurrency limit reached for user: no slot freed within 30000 ms')
  // The Responses frame carries a fresh id and time: compare it with those blanked out.
  const blank = (frame: string): string => frame.replace(/"id":"resp_slot_[0-9a-z]+"/g, '"id":"ID"').replace(/"created_at":\d+/g, '"created_at":0')
  for (const [name, protocol] of Object.entries(protocols)) {
    const block = blocks.find(b => b.intro.startsWith(`**${name}**`))
    if (block === undefined) {
      t.fail(`sse.md shows no frames for ${name}`)
      continue
    }
    t.equal(blank(block.code), blank(`${protocol.ping}${protocol.errorFrame(error)}`), `${name}: a ping, then the error frame`)
  }
})

// ---------------------------------------------------------------------------------------
// The examples, run.

const STORES = ['memory', 'redis'] as const
type StoreKind = typeof STORES[number]

/** What an example built on @fastify/redis needs for one store kind: a URL and a fresh prefix. */
async function storeFor (t: Test, store: StoreKind, name: string): Promise<{ redisUrl?: string, prefix: string }> {
  const prefix = uniquePrefix(`docs-${name}`)
  return store === 'redis' ? { redisUrl: await redisUrl(t), prefix } : { prefix }
}

/**
 * Closes the app when the test ends (if the test did not already), and returns `finish`,
 * which closes it now and checks nothing of it is left in Redis.
 */
function closing (t: Test, app: FastifyInstance, redis?: { url: string, prefix: string }): () => Promise<void> {
  let closed: Promise<undefined> | undefined
  const close = (): Promise<undefined> => (closed ??= app.close())
  t.teardown(close)
  return async () => {
    await close()
    if (redis !== undefined) t.same(await keysUnder(client(t, redis.url), redis.prefix), [], 'no key left in Redis')
  }
}

/** The SSE frames of a body: each ends in a blank line. */
const frames = (body: string): string[] => body.split('\n\n').filter(f => f !== '').map(f => `${f}\n\n`)

for (const store of STORES) {
  t.test(`quick-start.ts: limits per user, waits, and answers 429 with Retry-After (${store})`, async t => {
    const { redisUrl, prefix } = await storeFor(t, store, 'quick')
    const post = (app: FastifyInstance): Promise<LightMyRequestResponse> =>
      app.inject({ method: 'POST', url: '/v1/messages', headers: { 'x-user-id': 'alice' } })

    const app = await quickStart.buildApp({ redisUrl, slots: { prefix }, upstreamMs: 100 })
    const finish = closing(t, app, redisUrl === undefined ? undefined : { url: redisUrl, prefix })
    t.equal((await app.inject({ method: 'POST', url: '/v1/messages' })).statusCode, 401)
    const one = await post(app)
    t.equal(one.statusCode, 200)
    t.same(one.json(), { user: 'alice', waitedMs: one.json().waitedMs })
    // Four at once with a limit of 3: the fourth waits for a slot, then succeeds.
    const four = await Promise.all([1, 2, 3, 4].map(() => post(app)))
    t.same(four.map(r => r.statusCode), [200, 200, 200, 200])
    const waited = Math.max(...four.map(r => r.json().waitedMs as number))
    t.ok(waited >= 50, `one request waited for a slot (${waited} ms)`)

    // With maxWaitMs 50 the fourth gives up: 429, Retry-After, and the SlotError as JSON.
    const impatient = await quickStart.buildApp({ redisUrl, slots: { prefix, maxWaitMs: 50 }, upstreamMs: 300 })
    const finishImpatient = closing(t, impatient)
    const answers = await Promise.all([1, 2, 3, 4].map(() => post(impatient)))
    t.same(answers.map(r => r.statusCode).sort(), [200, 200, 200, 429])
    const refused = answers.find(r => r.statusCode === 429)!
    t.equal(refused.headers['retry-after'], '2')
    t.same(refused.json(), {
      statusCode: 429,
      code: 'SLOT_WAIT_TIMEOUT',
      error: 'Too Many Requests',
      message: 'concurrency limit reached for user: no slot freed within 50 ms'
    })
    await finishImpatient()
    await finish()
  })

  t.test(`route-config.ts: config.slots takes the caller's limit before the handler (${store})`, async t => {
    const { redisUrl, prefix } = await storeFor(t, store, 'route')
    const app = await routeConfig.buildApp({ redisUrl, slots: { prefix, maxWaitMs: 100 }, upstreamMs: 300 })
    const finish = closing(t, app, redisUrl === undefined ? undefined : { url: redisUrl, prefix })
    const post = (key: string): Promise<LightMyRequestResponse> =>
      app.inject({ method: 'POST', url: '/v1/messages', headers: { 'x-api-key': key } })
    t.equal((await post('nope')).statusCode, 401)
    // alice's limit is 2: of three at once, one waits 100 ms and gets 429.
    const alice = await Promise.all([1, 2, 3].map(() => post('key-alice')))
    t.same(alice.map(r => r.statusCode).sort(), [200, 200, 429])
    t.same(alice.find(r => r.statusCode === 200)!.json(), { user: 'alice' })
    t.equal(alice.find(r => r.statusCode === 429)!.json().code, 'SLOT_WAIT_TIMEOUT')
    // bob's limit is 1.
    const bob = await Promise.all([1, 2].map(() => post('key-bob')))
    t.same(bob.map(r => r.statusCode).sort(), [200, 429])
    await finish()
  })

  t.test(`pick-account.ts: the least loaded account, then the first one's queue when all are full (${store})`, async t => {
    const { redisUrl, prefix } = await storeFor(t, store, 'pick')
    const app = await pickAccount.buildApp({ redisUrl, slots: { prefix, backoff: { initialMs: 20, maxMs: 50 } }, upstreamMs: 10 })
    const finish = closing(t, app, redisUrl === undefined ? undefined : { url: redisUrl, prefix })
    const post = async (): Promise<string> => {
      const res = await app.inject({ method: 'POST', url: '/v1/messages', headers: { 'x-user-id': 'alice' } })
      t.equal(res.statusCode, 200)
      return res.json().account
    }
    t.same((await app.inject('/accounts')).json(), [
      { id: 'acct-1', held: 0, waiting: 0, oldestWaitMs: 0, waitingByPriority: {} },
      { id: 'acct-2', held: 0, waiting: 0, oldestWaitMs: 0, waitingByPriority: {} }
    ])
    t.equal(await post(), 'acct-1', 'both idle: the first')

    // acct-1 at 1 of 2 (50 %), acct-2 idle: acct-2.
    const first = await app.slots.acquire('account', 'acct-1', 2)
    t.equal(await post(), 'acct-2')
    // acct-1 full, acct-2 at 2 of 4: acct-2 again.
    const second = await app.slots.acquire('account', 'acct-1', 2)
    const others = await Promise.all([1, 2].map(() => app.slots.acquire('account', 'acct-2', 4)))
    t.equal(await post(), 'acct-2')
    // Both full: the request queues for acct-1 and gets the slot released there.
    others.push(...await Promise.all([1, 2].map(() => app.slots.acquire('account', 'acct-2', 4))))
    const queued = post()
    await eventually(async () => (await app.inject('/accounts')).json()[0].waiting === 1)
    t.match((await app.inject('/accounts')).json(), [
      { id: 'acct-1', held: 2, waiting: 1, oldestWaitMs: Number },
      { id: 'acct-2', held: 4, waiting: 0, oldestWaitMs: 0, waitingByPriority: {} }
    ])
    await first.release()
    t.equal(await queued, 'acct-1')
    await Promise.all([second, ...others].map(slot => slot.release()))
    await finish()
  })

  t.test(`honest-waiting.ts: a waiting stream is told its place, a hopeless wait is refused at once with Retry-After (${store})`, async t => {
    const { redisUrl, prefix } = await storeFor(t, store, 'honest')
    const honest = await honestWaiting.buildApp({ ...(redisUrl === undefined ? {} : { redis: client(t, redisUrl), prefix }), maxWaitMs: 1000 }, 50)
    const finish = closing(t, honest, redisUrl === undefined ? undefined : { url: redisUrl, prefix })
    const queued: Array<number | null> = []
    honest.slots.on('queued', ({ position }) => queued.push(position))
    const post = (payload: object): Promise<LightMyRequestResponse> => honest.inject({ method: 'POST', url: '/v1/chat/completions', payload })
    const waiting = async (): Promise<number> => (await honest.inject('/accounts')).json()[0].waiting

    // Holds of ~450 ms seen (the third request waited for one): a place takes ~225 ms with 2 slots.
    t.same((await Promise.all([1, 2, 3].map(() => post({ upstreamMs: 450 })))).map(r => r.statusCode), [200, 200, 200])
    t.same(queued, [1])

    const holding = [post({ upstreamMs: 500 }), post({ upstreamMs: 500 })]
    await eventually(async () => (await honest.inject('/accounts')).json()[0].held === honestWaiting.ACCOUNT_LIMIT)
    const streamed = post({ stream: true, upstreamMs: 0 })
    const behind: Array<Promise<LightMyRequestResponse>> = []
    await eventually(async () => await waiting() === 1)
    for (let place = 2; place <= 4; place++) {
      behind.push(post({ upstreamMs: 0 }))
      await eventually(async () => await waiting() === place)
    }
    t.match((await honest.inject('/accounts')).json(), [{ id: 'acct-1', held: 2, waiting: 4, oldestWaitMs: Number }])
    // Place 4 was expected in ~900 ms and queued; place 5, ~1.1 s, is more than the 1 s it may wait.
    const refused = await post({})
    t.equal(refused.statusCode, 429)
    t.equal(refused.headers['retry-after'], '2', 'when place 5 is expected to come up')
    t.match(refused.json(), { error: { type: 'rate_limit_error', code: 'rate_limit_exceeded', message: /expected for place 5 in line/ } })
    t.same(queued, [1, 1, 2, 3, 4], 'the refused request never queued')

    const stream = await streamed
    t.match(stream.body, /^: waiting 0 s, place 1 in line, about 1 s expected\n\n/, 'the stream is told its place')
    t.match(stream.body, /data: \[DONE\]\n\n$/)
    t.same((await Promise.all([...holding, ...behind])).map(r => r.statusCode), [200, 200, 200, 200, 200])
    await finish()
  })

  t.test(`priorities.ts: pro requests wait ahead of free ones; /queue counts each class (${store})`, async t => {
    const { redisUrl, prefix } = await storeFor(t, store, 'prio')
    const app = await priorities.buildApp(redisUrl === undefined ? {} : { redis: client(t, redisUrl), prefix })
    const finish = closing(t, app, redisUrl === undefined ? undefined : { url: redisUrl, prefix })
    const done: string[] = []
    const post = (name: string, plan?: string): Promise<void> => app.inject({ method: 'POST', url: '/v1/messages', headers: plan === undefined ? {} : { 'x-plan': plan } })
      .then(res => { t.equal(res.statusCode, 200); done.push(name) })
    const waiting = async (): Promise<number> => Object.values((await app.inject('/queue')).json() as Record<string, number>).reduce((a, b) => a + b, 0)
    const requests = [post('busy1'), post('busy2')]
    await eventually(async () => (await app.slots.usage('account', ['acct-1']))[0].held === 2)
    for (const [i, [name, plan]] of ([['free1', undefined], ['free2', undefined], ['pro1', 'pro']] as const).entries()) {
      requests.push(post(name, plan))
      await eventually(async () => await waiting() === i + 1)
    }
    t.same((await app.inject('/queue')).json(), { 0: 2, 1: 1 })
    await Promise.all(requests)
    t.same(done.slice(2), ['pro1', 'free1', 'free2'], 'the pro request went first, then the free ones in order')
    await finish()
  })

  t.test(`weights.ts: a long-context request counts its units; held counts units (${store})`, async t => {
    const { redisUrl, prefix } = await storeFor(t, store, 'weights')
    const app = await weights.buildApp(redisUrl === undefined ? {} : { redis: client(t, redisUrl), prefix })
    const finish = closing(t, app, redisUrl === undefined ? undefined : { url: redisUrl, prefix })
    t.same([1000, 32_000, 32_001, 128_000, 1_000_000].map(weights.weightOf), [1, 1, 2, 4, 8])
    const post = (contextTokens: number): Promise<LightMyRequestResponse> => app.inject({ method: 'POST', url: '/v1/messages', payload: { contextTokens } })
    const long = post(128_000)
    const short = post(1000)
    await eventually(async () => (await app.inject('/account')).json().held === 5)
    // 5 of 8 units held: a 4-unit request waits; the units it needs free with the long one.
    const second = post(100_000)
    await eventually(async () => (await app.inject('/account')).json().waiting === 1)
    t.same([(await long).json().weight, (await short).json().weight], [4, 1])
    const res = await second
    t.equal(res.json().weight, 4)
    t.ok(res.json().waitedMs >= 20, `it waited for the units (${String(res.json().waitedMs)} ms)`)
    await finish()
  })

  t.test(`slot-sets.ts: a request waiting for a busy account holds no user slot; it gets both once the account frees (${store})`, async t => {
    const { redisUrl, prefix } = await storeFor(t, store, 'sets')
    const app = await slotSets.buildApp(redisUrl === undefined ? {} : { redis: client(t, redisUrl), prefix }, 200)
    const finish = closing(t, app, redisUrl === undefined ? undefined : { url: redisUrl, prefix })
    const post = (account: string): Promise<LightMyRequestResponse> => app.inject({ method: 'POST', url: '/v1/messages', headers: { 'x-user-id': 'alice' }, payload: { account } })
    const load = async (type: string, id: string): Promise<{ held: number, waiting: number }> => {
      const [{ held, waiting }] = await app.slots.usage(type, [id])
      return { held, waiting }
    }
    // The account's two slots busy (with alice's own requests), a third request for it waits...
    const busy = [post('acct-1'), post('acct-1')]
    await eventually(async () => (await load('account', 'acct-1')).held === 2)
    const third = post('acct-1')
    await eventually(async () => (await load('account', 'acct-1')).waiting === 1)
    t.same(await load('user', 'alice'), { held: 2, waiting: 1 }, 'holding none of alice\'s three user slots')
    // ...so her request to another account gets the last one at once.
    const other = await post('acct-2')
    t.equal(other.statusCode, 200)
    t.ok(other.json().waitedMs < 100, `acct-2 was not held up (${String(other.json().waitedMs)} ms)`)
    const answers = await Promise.all([...busy, third])
    t.same(answers.map(r => r.statusCode), [200, 200, 200])
    t.ok(answers[2].json().waitedMs >= 100, `the third waited for acct-1 (${String(answers[2].json().waitedMs)} ms)`)
    const batch = await Promise.all([1, 2].map(() => app.inject({ method: 'POST', url: '/v1/batch', headers: { 'x-user-id': 'bob' } })))
    t.same(batch.map(r => r.body), ['done', 'done'], 'the route form: weight 2 of 2, so one at a time')
    await finish()
  })

  t.test(`prometheus.ts: /metrics shows counters by outcome, the wait histogram and held/waiting (${store})`, async t => {
    const { redisUrl, prefix } = await storeFor(t, store, 'prom')
    const app = await prometheus.buildApp({ redisUrl, slots: { prefix, backoff: { initialMs: 20, maxMs: 50 } } })
    const finish = closing(t, app, redisUrl === undefined ? undefined : { url: redisUrl, prefix })
    const metrics = async (): Promise<string> => {
      const res = await app.inject('/metrics')
      t.equal(res.statusCode, 200)
      t.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/)
      return res.body
    }
    const initial = await metrics()
    for (const name of ['acquisitions_total', 'wait_seconds', 'released_total', 'lost_total', 'store_errors_total', 'pings_total', 'held', 'waiting']) {
      t.match(initial, `# TYPE fastify_slots_${name} `, `fastify_slots_${name} is exported`)
    }
    t.match(initial, /^fastify_slots_held 0$/m)
    t.match(initial, /^fastify_slots_waiting 0$/m)

    // One slot held outside any request; a request for the same user waits behind it.
    const held = await app.slots.acquire('user', 'alice', 1)
    const waiting = app.inject({ method: 'POST', url: '/v1/messages', headers: { 'x-user-id': 'alice' } })
    await eventually(() => app.slots.stats().waiting === 1)
    const during = await metrics()
    t.match(during, /^fastify_slots_held 1$/m)
    t.match(during, /^fastify_slots_waiting 1$/m)
    await t.rejects(app.slots.acquire('user', 'alice', 1, { maxWaitMs: 0 }), { code: 'SLOT_WAIT_TIMEOUT' })
    await held.release()
    t.equal((await waiting).statusCode, 200)
    await eventually(() => app.slots.stats().released === 2) // the release runs as the response ends

    const after = await metrics()
    t.match(after, /^fastify_slots_acquisitions_total\{type="user",outcome="acquired"\} 2$/m)
    t.match(after, /^fastify_slots_acquisitions_total\{type="user",outcome="SLOT_WAIT_TIMEOUT"\} 1$/m)
    t.match(after, /^fastify_slots_released_total\{type="user"\} 2$/m)
    t.match(after, /^fastify_slots_wait_seconds_count\{type="user"\} 2$/m)
    t.match(after, /^fastify_slots_wait_seconds_bucket\{le="\+Inf",type="user"\} 2$/m)
    t.match(after, /^fastify_slots_wait_seconds_bucket\{le="0\.5",type="user"\} [12]$/m, 'the free slot was taken within half a second')
    t.match(after, /^fastify_slots_held 0$/m)
    t.match(after, /^fastify_slots_waiting 0$/m)
    const stats = app.slots.stats()
    t.equal(stats.acquired, 2, 'the counters agree with stats()')
    t.equal(stats.rejected.SLOT_WAIT_TIMEOUT, 1)
    await finish()
  })
}

t.test('options.ts: the options spelled out are exactly the defaults', async t => {
  t.same(resolveOptions(optionsExample.defaults), resolveOptions({}))
  t.equal(optionsExample.defaults.streamErrorFrame, protocols.generic.errorFrame)
})

t.test('options.ts: per-call options (maxWaiters, fair, openai-chat stream) take effect', async t => {
  const app = await optionsExample.buildApp()
  t.teardown(() => app.close())
  const post = (stream: boolean): Promise<LightMyRequestResponse> =>
    app.inject({ method: 'POST', url: '/v1/chat/completions', headers: { 'x-user-id': 'u' }, payload: { stream } })
  t.same((await post(false)).json(), { object: 'chat.completion', choices: [] })
  const streamed = await post(true)
  t.match(streamed.headers['content-type'], /^text\/event-stream/)
  t.equal(streamed.body, 'data: [DONE]\n\n')

  // The user's 3 slots held: 5 requests may wait (maxWaiters: 5), a sixth is refused at once.
  const held = await Promise.all([1, 2, 3].map(() => app.slots.acquire('user', 'u', 3)))
  const waiting = [1, 2, 3, 4, 5].map(() => post(false))
  await eventually(() => app.slots.stats().waiting === 5)
  const sixth = await post(false)
  t.equal(sixth.statusCode, 429)
  // The call's openai-chat protocol shapes the JSON error too.
  t.same(sixth.json(), { error: { message: 'concurrency limit reached for user, and too many requests are already waiting', type: 'rate_limit_error', param: null, code: 'rate_limit_exceeded' } })
  await Promise.all(held.map(slot => slot.release()))
  t.same((await Promise.all(waiting)).map(r => r.statusCode), [200, 200, 200, 200, 200])
})

t.test('lifecycle.ts: release() gives the slot back early; a job releases its own and stops on abort', async t => {
  for (const store of STORES) {
    await t.test(store, async t => {
      const prefix = uniquePrefix('docs-life')
      const url = store === 'redis' ? await redisUrl(t) : undefined
      const slots = url === undefined ? {} : { redis: client(t, url), prefix }
      const app = await lifecycle.buildApp({ slots, upstreamMs: 30, postProcessMs: 300 })
      const finish = closing(t, app, url === undefined ? undefined : { url, prefix })
      const usage = async (): Promise<number> => (await app.slots.usage('account', ['acct-1']))[0].held

      const summary = app.inject({ method: 'POST', url: '/v1/summaries' })
      await eventually(async () => await usage() === 1)
      await eventually(async () => await usage() === 0, 200)
      t.equal(app.slots.stats().held, 0, 'the slot is back while the request post-processes')
      t.equal((await summary).statusCode, 200)

      // Two jobs fill the account (max 2); a third waits and its signal stops the wait.
      const release: Array<() => void> = []
      const work = (): Promise<void> => new Promise(resolve => release.push(resolve))
      const jobs = [lifecycle.runJob(app, work), lifecycle.runJob(app, work)]
      await eventually(() => release.length === 2)
      const controller = new AbortController()
      const third = lifecycle.runJob(app, work, controller.signal)
      await eventually(() => app.slots.stats().waiting === 1)
      controller.abort()
      await t.rejects(third, { code: 'SLOT_WAIT_ABORTED', statusCode: 499 })
      // A request waits for a job's slot.
      const request = app.inject({ method: 'POST', url: '/v1/summaries' })
      await sleep(50)
      release.forEach(done => done())
      await Promise.all(jobs)
      const answered = await request
      t.equal(answered.statusCode, 200)
      t.ok(answered.json().waitedMs >= 40, `the request waited for a job (${answered.json().waitedMs} ms)`)
      t.equal(app.slots.stats().held, 0, 'the jobs released their slots')
      await finish()
    })
  }
})

t.test('sse-protocols.ts: each protocol\'s pings and error frame, and the handler\'s stream after a wait', async t => {
  const app = await sseProtocols.buildApp({ ping: { intervalMs: 40 }, maxWaitMs: 150, backoff: { initialMs: 20, maxMs: 20 } })
  t.teardown(() => app.close())
  const message = 'concurrency limit reached for user: no slot freed within 150 ms'
  const post = (url: string, stream: boolean): Promise<LightMyRequestResponse> =>
    app.inject({ method: 'POST', url, headers: { 'x-user-id': 'u' }, payload: { stream } })
  /** Holds the user's 2 slots; `free` releases one. */
  const fill = async (): Promise<{ free: () => Promise<void>, done: () => Promise<void> }> => {
    const slots = await Promise.all([1, 2].map(() => app.slots.acquire('user', 'u', 2)))
    return { free: () => slots[0].release(), done: async () => { await Promise.all(slots.map(s => s.release())) } }
  }
  const cases = [
    {
      url: '/v1/messages',
      ping: 'event: ping\ndata: {"type":"ping"}\n\n',
      json: { type: 'error', error: { type: 'rate_limit_error', message } },
      error: `event: error\ndata: {"type":"error","error":{"type":"rate_limit_error","message":"${message}"}}\n\n`,
      data: ['event: content_block_delta\ndata: {"type":"content_block_delta","delta":{"type":"text_delta","text":"Hello"}}\n\n', 'event: message_stop\ndata: {"type":"message_stop"}\n\n']
    },
    {
      url: '/v1/chat/completions',
      ping: ': ping\n\n',
      json: { error: { message, type: 'rate_limit_error', param: null, code: 'rate_limit_exceeded' } },
      error: `data: {"error":{"message":"${message}","type":"rate_limit_error","param":null,"code":"rate_limit_exceeded"}}\n\n`,
      data: ['data: {"object":"chat.completion.chunk","choices":[{"delta":{"content":"Hello"}}]}\n\n', 'data: [DONE]\n\n']
    },
    {
      url: '/v1/responses',
      ping: ': ping\n\n',
      json: { error: { message, type: 'rate_limit_error', param: null, code: 'rate_limit_exceeded' } },
      error: [
        /^event: response\.created\ndata: \{"type":"response\.created","sequence_number":0,"response":\{"id":"resp_slot_[0-9a-z]+","object":"response","created_at":\d+,"status":"in_progress","error":null,"incomplete_details":null,"output":\[\]\}\}\n\n$/,
        new RegExp(`^event: response\\.failed\\ndata: \\{"type":"response\\.failed","sequence_number":1,"response":\\{"id":"resp_slot_[0-9a-z]+","object":"response","created_at":\\d+,"status":"failed","error":\\{"code":"rate_limit_exceeded","message":"${message}"\\},"incomplete_details":null,"output":\\[\\]\\}\\}\\n\\n$`)
      ],
      data: ['event: response.output_text.delta\ndata: {"type":"response.output_text.delta","delta":"Hello"}\n\n', 'event: response.completed\ndata: {"type":"response.completed"}\n\n']
    }
  ]
  for (const c of cases) {
    await t.test(c.url, async t => {
      // A free slot: no wait, no ping; the handler's frames only.
      const quick = await post(c.url, true)
      t.equal(quick.statusCode, 200)
      t.same(frames(quick.body), c.data)
      t.equal((await post(c.url, false)).statusCode, 200)

      // Full, not streaming: a plain 429.
      let full = await fill()
      const plain = await post(c.url, false)
      t.equal(plain.statusCode, 429)
      t.equal(plain.headers['retry-after'], '1')
      t.same(plain.json(), c.json, 'the protocol\'s JSON error')

      // Full, streaming: committed as SSE after one interval, pinged, then the error frame.
      const failed = await post(c.url, true)
      t.equal(failed.statusCode, 200)
      t.match(failed.headers['content-type'], /^text\/event-stream/)
      t.equal(failed.headers['x-accel-buffering'], 'no')
      const got = frames(failed.body)
      const errorFrames = [c.error].flat()
      const last = got.splice(got.length - errorFrames.length)
      t.ok(got.length >= 2, `${got.length} pings before the error`)
      t.same(got, Array(got.length).fill(c.ping), 'only pings before the error')
      errorFrames.forEach((expected, i) => typeof expected === 'string' ? t.equal(last[i], expected) : t.match(last[i], expected))
      t.equal(parseSse(failed.body).events.filter(e => e.event !== 'ping').length, errorFrames.length, 'the error is the only event besides pings')
      await full.done()

      // Full, streaming, and a slot frees after a few pings: the handler's frames follow them.
      full = await fill()
      const waited = post(c.url, true)
      await sleep(100)
      await full.free()
      const body = frames((await waited).body)
      const pings = body.length - c.data.length
      t.ok(pings >= 1, `${pings} pings, then the stream`)
      t.same(body, [...Array(pings).fill(c.ping), ...c.data])
      await full.done()
    })
  }
})

t.test('stream-error-frame.ts: a custom keepalive and error frame', async t => {
  const app = await streamErrorFrame.buildApp({ pingMs: 40, slots: { maxWaitMs: 150 } })
  t.teardown(() => app.close())
  const held = await app.slots.acquire('user', 'u', 1)
  const res = await app.inject({ url: '/events', headers: { 'x-user-id': 'u' } })
  await held.release()
  t.equal(res.statusCode, 200)
  const got = frames(res.body)
  const last = got.pop()!
  t.ok(got.length >= 2)
  t.same(got, Array(got.length).fill('event: keepalive\ndata: {}\n\n'))
  const [event] = parseSse(last).events
  t.equal(event.event, 'failed')
  t.same(JSON.parse(event.data), {
    status: 429,
    code: 'SLOT_WAIT_TIMEOUT',
    message: 'concurrency limit reached for user: no slot freed within 150 ms',
    requestId: JSON.parse(event.data).requestId
  })
  t.match(JSON.parse(event.data).requestId, /^req-/)
  t.equal((await app.inject({ url: '/events', headers: { 'x-user-id': 'u' } })).body, 'event: done\ndata: {}\n\n')
})

t.test('redis-clients.ts: a single Redis: works, answers 503 at once while Redis is down, recovers', async t => {
  const server = await startPrivateRedis(t)
  const redis = redisClients.createRedis(server.url)
  redis.on('error', () => {}) // reconnect errors while the server is down are expected
  const prefix = uniquePrefix('docs-clients')
  const app = await redisClients.buildApp(redis, { prefix })
  t.teardown(() => app.close())
  const post = (): Promise<LightMyRequestResponse> =>
    app.inject({ method: 'POST', url: '/v1/messages', headers: { 'x-user-id': 'alice' } })
  t.same((await post()).json(), { bypassed: false })

  await server.stop()
  await eventually(() => redis.status !== 'ready')
  const started = Date.now()
  const down = await post()
  const elapsed = Date.now() - started
  t.equal(down.statusCode, 503)
  t.equal(down.json().code, 'SLOT_STORE_UNAVAILABLE')
  t.ok(elapsed < 250, `without the offline queue the 503 comes at once, not after storeTimeoutMs (${elapsed} ms)`)

  await server.start()
  await eventually(async () => (await post()).statusCode === 200, 8000, 50)
  t.same((await post()).json(), { bypassed: false })
  t.same(await keysUnder(client(t, server.url), prefix), [])
})

t.test('redis-clients.ts: two processes on one Redis: a release wakes the other process\'s waiter', async t => {
  const url = await redisUrl(t)
  const prefix = uniquePrefix('docs-wake')
  // A slow backoff, so only a pub/sub wake-up can hand the slot over quickly.
  const slow = { prefix, backoff: { initialMs: 2000, maxMs: 2000 }, maxWaitMs: 10_000 }
  const a = await redisClients.buildApp(redisClients.createRedis(url), slow)
  t.teardown(() => a.close())
  const b = await redisClients.buildApp(redisClients.createRedis(url), slow)
  t.teardown(() => b.close())
  const held = await a.slots.acquire('user', 'alice', 1)
  const waiting = b.slots.acquire('user', 'alice', 1)
  await sleep(100)
  await held.release()
  const slot = await waiting
  t.ok(slot.waitedMs < 1000, `the waiter in the other process got the slot ${slot.waitedMs} ms after asking`)
  await slot.release()
})

const missingCluster = missingClusterTools()
t.test('redis-clients.ts: a Redis Cluster', { skip: missingCluster }, async t => {
  const cluster = await startPrivateCluster(t)
  const prefix = uniquePrefix('docs-cluster')
  const app = await redisClients.buildApp(redisClients.createCluster(cluster.nodes), { prefix })
  t.teardown(() => app.close())
  const redis = app.redis as unknown as Cluster
  const held = await app.slots.acquire('user', 'alice', 3)
  t.same(await clusterKeysUnder(redis, prefix), [`${prefix}:{user:alice}:holders`], 'a subject\'s keys carry its hash tag')
  const answers = await Promise.all(['alice', 'bob', 'carol', 'dave'].map(user =>
    app.inject({ method: 'POST', url: '/v1/messages', headers: { 'x-user-id': user } })))
  t.same(answers.map(r => r.json()), Array(4).fill({ bypassed: false }))
  await held.release()
  t.same(await clusterKeysUnder(redis, prefix), [])
})

t.test('the plugin\'s exports the docs rely on', async t => {
  t.equal(typeof fastifySlots.SlotError, 'function')
  t.same(Object.keys(fastifySlots.protocols), ['generic', 'anthropic', 'openai-chat', 'openai-responses'])
  t.equal(fastifySlots.pingFrames.comment, protocols.generic.ping)
})

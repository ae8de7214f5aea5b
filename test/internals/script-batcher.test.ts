/**
 * ScriptBatcher: the operations issued in one tick go out as batches of at most 8 (per
 * subject on a Cluster), in order, and each settles with its own reply. A fake send records
 * every batch and answers it; no Redis.
 */
import t from 'tap'
import { ScriptBatcher } from '../../lib/stores/script-batcher'
import type { BatchArg, SubjectKeys } from '../../lib/stores/script-batcher'

interface SentBatch {
  keys: BatchArg[]
  args: BatchArg[]
}

type Answer = (batch: SentBatch, index: number) => Promise<unknown>

/** A send that records its batches; by default each operation's reply is its first arg × 10. */
function fakeSend (answer: Answer = async batch => batch.args.filter((_, i) => i % 2 === 0).map(a => Number(a) * 10)) {
  const batches: SentBatch[] = []
  const send = (keys: BatchArg[], args: BatchArg[]): Promise<unknown> => {
    const batch = { keys, args }
    batches.push(batch)
    return answer(batch, batches.length - 1)
  }
  return { batches, send }
}

const keysOf = (tag: string): SubjectKeys => [`p:{${tag}}:holders`, `p:{${tag}}:tickets`, `p:{${tag}}:queue`]

/** Lets process.nextTick callbacks and promise continuations run. */
const settle = () => new Promise(resolve => setImmediate(resolve))

/** Issues n operations on `tag` in this tick; operation i has args [i, 'op-i']. */
function issue (batcher: ScriptBatcher, n: number, tag: (i: number) => string = () => 'a', from = 0): Array<Promise<unknown>> {
  const results: Array<Promise<unknown>> = []
  for (let i = from; i < from + n; i++) results.push(batcher.run(tag(i), keysOf(tag(i)), [i, `op-${i}`]))
  return results
}

t.test('one operation: sent once the turn of the event loop is over, with its keys and args, settles with its reply', async t => {
  const { batches, send } = fakeSend()
  const batcher = new ScriptBatcher(send, false)
  const result = batcher.run('a', keysOf('a'), [7, 'op-7'])
  t.equal(batches.length, 0, 'nothing is sent synchronously')
  await new Promise<void>(resolve => process.nextTick(resolve))
  t.equal(batches.length, 0, 'not yet on the next tick: operations of later I/O callbacks of this turn may still join')
  await new Promise<void>(resolve => setImmediate(resolve))
  t.equal(batches.length, 1, 'sent at setImmediate')
  t.same(batches[0], { keys: keysOf('a'), args: [7, 'op-7'] })
  t.equal(await result, 70)
})

t.test('n operations in one tick make ceil(n / 8) sends, in order, one reply each', async t => {
  for (const n of [1, 2, 7, 8, 9, 15, 16, 17, 25]) {
    const { batches, send } = fakeSend()
    const batcher = new ScriptBatcher(send, false)
    const results = issue(batcher, n)
    const replies = await Promise.all(results)
    t.equal(batches.length, Math.ceil(n / 8), `${n} operations: ${Math.ceil(n / 8)} sends`)
    t.ok(batches.every(b => b.keys.length / 3 <= 8), `${n} operations: no batch above 8`)
    t.same(batches.map(b => b.keys.length / 3), batches.map((_, i) => Math.min(8, n - i * 8)), `${n} operations: full batches first`)
    const allArgs = batches.flatMap(b => b.args)
    t.same(allArgs, Array.from({ length: n }, (_, i) => [i, `op-${i}`]).flat(), `${n} operations: args in issue order`)
    t.same(batches.flatMap(b => b.keys), Array.from({ length: n }, () => keysOf('a')).flat(), `${n} operations: three keys each`)
    t.same(replies, Array.from({ length: n }, (_, i) => i * 10), `${n} operations: each its own reply`)
  }
})

t.test('a batch of 8 goes out at once, without waiting for the end of the tick', async t => {
  const { batches, send } = fakeSend()
  const batcher = new ScriptBatcher(send, false)
  const first = issue(batcher, 8)
  t.equal(batches.length, 1, 'the 8th operation sends the batch synchronously')
  const rest = issue(batcher, 3, undefined, 8)
  t.equal(batches.length, 1, 'the next operations wait for the tick')
  t.same(await Promise.all([...first, ...rest]), Array.from({ length: 11 }, (_, i) => i * 10))
  t.equal(batches.length, 2)
  t.same(batches[1].args, [8, 'op-8', 9, 'op-9', 10, 'op-10'])
})

t.test('operations of different ticks go in different batches', async t => {
  const { batches, send } = fakeSend()
  const batcher = new ScriptBatcher(send, false)
  const a = issue(batcher, 2)
  await settle()
  const b = issue(batcher, 3, undefined, 2)
  await settle()
  const c = issue(batcher, 1, undefined, 5)
  t.same(await Promise.all([...a, ...b, ...c]), [0, 10, 20, 30, 40, 50])
  t.same(batches.map(x => x.keys.length / 3), [2, 3, 1])
})

t.test('operations carry any number of args, flattened in order', async t => {
  const { batches, send } = fakeSend(async () => [1, 2, 3])
  const batcher = new ScriptBatcher(send, false)
  const results = [
    batcher.run('a', keysOf('a'), []),
    batcher.run('b', keysOf('b'), ['x', 1, 'y']),
    batcher.run('c', keysOf('c'), [2])
  ]
  t.same(await Promise.all(results), [1, 2, 3])
  t.same(batches, [{ keys: [...keysOf('a'), ...keysOf('b'), ...keysOf('c')], args: ['x', 1, 'y', 2] }])
})

t.test('perSubject: one batch per subject, each holding only its own keys', async t => {
  const { batches, send } = fakeSend()
  const batcher = new ScriptBatcher(send, true)
  // 30 operations interleaved over three subjects: 0 a, 1 b, 2 c, 3 a, ...
  const tags = ['a', 'b', 'c']
  const results = issue(batcher, 30, i => tags[i % 3])
  t.equal(batches.length, 0, 'no eager send on a Cluster, even past 8 operations')
  const replies = await Promise.all(results)
  t.same(replies, Array.from({ length: 30 }, (_, i) => i * 10), 'each operation its own reply')
  // 10 per subject: a batch of 8 and one of 2 each, in first-seen subject order.
  t.same(batches.map(b => b.keys.length / 3), [8, 2, 8, 2, 8, 2])
  for (const batch of batches) {
    const tag = /\{(.)\}/.exec(String(batch.keys[0]))?.[1] ?? '?'
    t.ok(batch.keys.every(k => String(k).includes(`{${tag}}`)), `a batch of ${tag} holds only ${tag}'s keys`)
    const ids = batch.args.filter((_, i) => i % 2 === 0).map(Number)
    t.ok(ids.every(id => tags[id % 3] === tag), `a batch of ${tag} holds only ${tag}'s operations`)
    t.same(ids, [...ids].sort((x, y) => x - y), `a batch of ${tag} keeps issue order`)
  }
  t.same(batches.map(b => /\{(.)\}/.exec(String(b.keys[0]))?.[1]), ['a', 'a', 'b', 'b', 'c', 'c'])
})

t.test('not perSubject: subjects share batches', async t => {
  const { batches, send } = fakeSend()
  const batcher = new ScriptBatcher(send, false)
  await Promise.all(issue(batcher, 6, i => ['a', 'b', 'c'][i % 3]))
  t.equal(batches.length, 1, 'one batch for three subjects')
  t.same(batches[0].args, [0, 'op-0', 1, 'op-1', 2, 'op-2', 3, 'op-3', 4, 'op-4', 5, 'op-5'])
})

t.test('an error string rejects only its own operation', async t => {
  const { send } = fakeSend(async () => [0, 'ERR holder limit', null, ['granted', 3], 'other failure', { ok: true }])
  const batcher = new ScriptBatcher(send, false)
  const results = await Promise.allSettled(issue(batcher, 6))
  t.same(results.map(r => r.status), ['fulfilled', 'rejected', 'fulfilled', 'fulfilled', 'rejected', 'fulfilled'])
  t.same(results.map(r => r.status === 'fulfilled' ? r.value : undefined), [0, undefined, null, ['granted', 3], undefined, { ok: true }],
    'the others settle with their own replies, whatever their type')
  const reasons = results.map(r => r.status === 'rejected' ? r.reason : undefined)
  t.type(reasons[1], Error)
  t.equal((reasons[1] as Error).message, 'ERR holder limit')
  t.equal((reasons[4] as Error).message, 'other failure')
})

t.test('a wrong reply count rejects every operation of that batch, and only of that batch', async t => {
  for (const wrong of [[1, 2], [1, 2, 3, 4, 5, 6, 7, 8, 9], [], 'OK', null, 42]) {
    const { send } = fakeSend(async (batch, index) => index === 0 ? wrong : [900, 901])
    const batcher = new ScriptBatcher(send, false)
    const results = await Promise.allSettled(issue(batcher, 10))
    const label = JSON.stringify(wrong)
    t.ok(results.slice(0, 8).every(r => r.status === 'rejected'), `${label}: all 8 of the first batch reject`)
    const reasons = new Set(results.slice(0, 8).map(r => r.status === 'rejected' ? r.reason : undefined))
    t.equal(reasons.size, 1, `${label}: with one error`)
    const [err] = reasons as Set<Error>
    t.match(err.message, /replies for 8 operations/, `${label}: the error names the counts`)
    t.same(results.slice(8).map(r => r.status === 'fulfilled' ? r.value : r.reason), [900, 901], `${label}: the second batch is unaffected`)
  }
})

t.test('a failed send rejects every operation of that batch with its error', async t => {
  const boom = new Error('connection lost')
  const { batches, send } = fakeSend(async (batch, index) => { if (index === 1) throw boom; return Array.from({ length: batch.keys.length / 3 }, () => 1) })
  const batcher = new ScriptBatcher(send, true)
  const results = await Promise.allSettled(issue(batcher, 4, i => i < 2 ? 'a' : 'b'))
  t.equal(batches.length, 2)
  t.same(results.map(r => r.status), ['fulfilled', 'fulfilled', 'rejected', 'rejected'])
  t.equal((results[2] as PromiseRejectedResult).reason, boom, 'the send error itself')
  t.equal((results[3] as PromiseRejectedResult).reason, boom)
})

t.test('replies may arrive out of order across batches', async t => {
  const gates: Array<() => void> = []
  const { send } = fakeSend(batch => new Promise(resolve => {
    gates.push(() => resolve(batch.args.filter((_, i) => i % 2 === 0).map(a => Number(a) * 10)))
  }))
  const batcher = new ScriptBatcher(send, false)
  const results = issue(batcher, 12)
  await settle()
  t.equal(gates.length, 2)
  const order: number[] = []
  results.forEach((p, i) => { p.then(() => order.push(i), () => {}) })
  gates[1]()
  await settle()
  t.same(order, [8, 9, 10, 11], 'the second batch settles first')
  gates[0]()
  t.same(await Promise.all(results), Array.from({ length: 12 }, (_, i) => i * 10))
})

t.test('flush sends what is pending at once, and every later operation as it is issued (the app is closing)', async t => {
  const { batches, send } = fakeSend()
  const batcher = new ScriptBatcher(send, false)
  const first = issue(batcher, 3)
  t.equal(batches.length, 0, 'batched while the app runs')
  batcher.flush()
  t.equal(batches.length, 1, 'flush sends the pending three together')
  const later = batcher.run('a', keysOf('a'), [9, 'op-9'])
  t.equal(batches.length, 2, 'an operation issued afterwards goes out synchronously')
  t.same(await Promise.all([...first, later]), [0, 10, 20, 90])
  await settle()
  t.equal(batches.length, 2, 'nothing is sent twice')
})

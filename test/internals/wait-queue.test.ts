/**
 * SubjectQueue, the wait scheduler of one subject in one process: only the head polls, on the
 * backoff schedule; a wake makes it poll now (a wake during a poll is kept for the next
 * sleep); a new head polls at once only when the store does not grant; a failing poll fails
 * every waiter; the queue says when it empties. A fake clock stands for time.
 */
import t from 'tap'
import { Acquisition } from '../../lib/acquisition'
import type { CallSettings } from '../../lib/options'
import { SubjectQueue } from '../../lib/wait-queue'

interface Timer { due: number, fn: () => void, id: number }

/** Replaces setTimeout/clearTimeout for the test: `advance` fires what is due, in order. */
function fakeClock (t: tap.Test): { advance: (ms: number) => Promise<void>, now: () => number } {
  const real = { setTimeout: globalThis.setTimeout, clearTimeout: globalThis.clearTimeout }
  let now = 0
  let nextId = 1
  const timers: Timer[] = []
  globalThis.setTimeout = ((fn: () => void, ms = 0) => {
    const timer = { due: now + ms, fn, id: nextId++ }
    timers.push(timer)
    return { ref: () => timer, unref: () => timer, [Symbol.toPrimitive]: () => timer.id, timer }
  }) as unknown as typeof setTimeout
  globalThis.clearTimeout = ((handle: { timer?: Timer } | undefined) => {
    const index = handle?.timer === undefined ? -1 : timers.indexOf(handle.timer)
    if (index !== -1) timers.splice(index, 1)
  }) as typeof clearTimeout
  t.teardown(() => Object.assign(globalThis, real))
  const flush = async (): Promise<void> => { for (let i = 0; i < 10; i++) await new Promise(resolve => setImmediate(resolve)) }
  return {
    now: () => now,
    advance: async (ms: number) => {
      const end = now + ms
      await flush()
      for (;;) {
        timers.sort((a, b) => a.due - b.due || a.id - b.id)
        const timer = timers[0]
        if (timer === undefined || timer.due > end) break
        timers.shift()
        now = timer.due
        timer.fn()
        await flush()
      }
      now = end
    }
  }
}

const SETTINGS = { maxWaitMs: 60_000 } as CallSettings
const BACKOFF = { initialMs: 100, multiplier: 2, maxMs: 400, jitter: 0 }

function setup (t: tap.Test, options: { granted?: boolean, poll?: (a: Acquisition) => Promise<void> } = {}) {
  const clock = fakeClock(t)
  const polls: Array<{ at: number, member: string }> = []
  let emptied = 0
  const queue: SubjectQueue = new SubjectQueue({
    backoff: BACKOFF,
    granted: options.granted ?? true,
    poll: async a => {
      polls.push({ at: clock.now(), member: a.ref.member })
      await options.poll?.(a)
    },
    emptied: () => { emptied++ }
  })
  const waiter = (member: string): Acquisition => {
    const a = new Acquisition({ type: 'user', id: '1', tag: 'user:1' }, { log: undefined as never, ended: false, addWait () {}, removeWait () {}, hold () {} },
      SETTINGS, { tag: 'user:1', member, max: 1, leaseMs: 1000, maxWaiters: 10, ticketTtlMs: 1000 }, clock.now(), settled => queue.remove(settled), (code, message) => new Error(`${code} ${message}`) as never)
    return a
  }
  return { clock, queue, polls, waiter, emptied: () => emptied }
}

t.test('only the head polls, on the backoff schedule', async t => {
  const { clock, queue, polls, waiter } = setup(t)
  queue.add(waiter('a'))
  queue.add(waiter('b'))
  await clock.advance(1500)
  t.same(polls.map(p => `${p.at} ${p.member}`), ['100 a', '300 a', '700 a', '1100 a', '1500 a'], '100, ×2, capped at 400; b never polls behind a')
})

t.test('when the head settles, the next one polls on, and the queue says when it empties', async t => {
  const { clock, queue, polls, waiter, emptied } = setup(t)
  const [a, b] = [waiter('a'), waiter('b')]
  queue.add(a)
  queue.add(b)
  await clock.advance(100)
  a.succeed()
  await clock.advance(200)
  t.same(polls.map(p => p.member), ['a', 'b'])
  b.fail(new Error('timeout'))
  await clock.advance(1000)
  t.equal(polls.length, 2, 'no polls once empty')
  t.equal(emptied(), 1)
  t.equal(queue.length, 0)
})

t.test('a wake makes the head poll now; a wake during a poll is kept for the next sleep', async t => {
  let release: () => void = () => {}
  let slow = false
  const { clock, queue, polls, waiter } = setup(t, { poll: async () => { if (slow) await new Promise<void>(resolve => { release = resolve }) } })
  queue.add(waiter('a'))
  await clock.advance(50)
  queue.wake()
  await clock.advance(0)
  t.same(polls.map(p => p.at), [50], 'woken at 50 instead of 100')
  slow = true
  queue.wake()
  await clock.advance(0)
  t.same(polls.map(p => p.at), [50, 50], 'polls again now')
  queue.wake() // arrives while that poll is on its way
  slow = false
  release()
  await clock.advance(0)
  t.same(polls.map(p => p.at), [50, 50, 50], 'and the kept wake skips the next sleep')
})

t.test('a removed head: the new head polls at once only when the store does not grant', async t => {
  for (const granted of [true, false]) {
    const { clock, queue, polls, waiter } = setup(t, { granted })
    const a = waiter('a')
    queue.add(a)
    queue.add(waiter('b'))
    await clock.advance(100)
    a.fail(new Error('gone'))
    await clock.advance(10)
    t.same(polls.map(p => `${p.at} ${p.member}`), granted ? ['100 a'] : ['100 a', '100 b'], `granted: ${String(granted)}`)
  }
})

t.test('a failing poll fails every waiter of the subject at once', async t => {
  const { clock, queue, waiter, emptied } = setup(t, { poll: async () => { throw new Error('store down') } })
  const waiters = [waiter('a'), waiter('b'), waiter('c')]
  const outcomes = waiters.map(a => a.result.then(() => 'acquired', (err: Error) => err.message))
  for (const a of waiters) queue.add(a)
  await clock.advance(100)
  t.same(await Promise.all(outcomes), ['store down', 'store down', 'store down'])
  t.equal(emptied(), 1)
})

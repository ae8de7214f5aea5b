/**
 * GrantSubscriber: one lazy connection shared by every channel; sharded SSUBSCRIBE that
 * falls back to classic SUBSCRIBE only when the server has no such command; a failed
 * subscribe retried every second until it succeeds or its listener stops; messages delivered
 * by channel; stop and close. A fake connection and a fake setTimeout stand for Redis and
 * the clock: every case is deterministic and none waits for real time.
 */
import t from 'tap'
import { GrantSubscriber } from '../../lib/stores/grant-subscriber'
import type { SubscriberLike } from '../../lib/stores/grant-subscriber'

type Command = 'subscribe' | 'unsubscribe' | 'ssubscribe' | 'sunsubscribe'
/** What the next call of a command does: fail with this error, or answer this promise. */
type Outcome = Error | Promise<unknown>
type Listener = (...args: any[]) => void

class FakeConnection implements SubscriberLike {
  readonly calls: string[] = []
  readonly listeners = new Map<string, Listener[]>()
  readonly script = new Map<Command, Outcome[]>()
  disconnects = 0
  ssubscribe?: (channel: string) => Promise<unknown>
  sunsubscribe?: (channel: string) => Promise<unknown>

  constructor (hasSharded = true) {
    if (hasSharded) {
      this.ssubscribe = channel => this.call('ssubscribe', channel)
      this.sunsubscribe = channel => this.call('sunsubscribe', channel)
    }
  }

  /** The next `times` calls of `command` do `outcome`. */
  will (command: Command, outcome: Outcome, times = 1): void {
    const queue = this.script.get(command) ?? []
    for (let i = 0; i < times; i++) queue.push(outcome)
    this.script.set(command, queue)
  }

  on (event: string, listener: Listener): this {
    this.listeners.set(event, [...(this.listeners.get(event) ?? []), listener])
    return this
  }

  emit (event: string, ...args: unknown[]): void {
    for (const listener of this.listeners.get(event) ?? []) listener(...args)
  }

  subscribe (channel: string): Promise<unknown> { return this.call('subscribe', channel) }
  unsubscribe (channel: string): Promise<unknown> { return this.call('unsubscribe', channel) }
  disconnect (): void { this.disconnects++ }

  private call (command: Command, channel: string): Promise<unknown> {
    this.calls.push(`${command} ${channel}`)
    const outcome = this.script.get(command)?.shift()
    if (outcome instanceof Error) return Promise.reject(outcome)
    return outcome ?? Promise.resolve(1)
  }
}

/** A subscriber over fake connections: `connections` lists every connection it opened. */
function subscriberOf (sharded: boolean, make: () => FakeConnection = () => new FakeConnection()) {
  const connections: FakeConnection[] = []
  const subscriber = new GrantSubscriber(() => {
    const connection = make()
    connections.push(connection)
    return connection
  }, sharded)
  return { subscriber, connections }
}

interface FakeTimer { ms: number | undefined, callback: () => void, unref: boolean, fired: boolean }

/** Replaces setTimeout for the rest of the test: timers run only when fired by hand. */
function fakeClock (t: tap.Test) {
  const timers: FakeTimer[] = []
  const real = globalThis.setTimeout
  const fake = (callback: () => void, ms?: number) => {
    const timer: FakeTimer = { ms, callback, unref: false, fired: false }
    timers.push(timer)
    return { unref () { timer.unref = true; return this }, ref () { return this }, hasRef: () => !timer.unref }
  }
  globalThis.setTimeout = fake as unknown as typeof setTimeout
  t.teardown(() => { globalThis.setTimeout = real })
  return {
    timers,
    pending: () => timers.filter(timer => !timer.fired),
    /** Fires every pending timer (as if their time had come), then lets the promises run. */
    async tick (): Promise<void> {
      for (const timer of timers.filter(x => !x.fired)) {
        timer.fired = true
        timer.callback()
      }
      await settle()
    }
  }
}

/** Lets every pending promise continuation run (setImmediate is not faked). */
const settle = () => new Promise(resolve => setImmediate(resolve))

/** Whether a promise has settled by now. */
async function settled (promise: Promise<unknown>): Promise<boolean> {
  let done = false
  promise.then(() => { done = true }, () => { done = true })
  await settle()
  return done
}

const UNKNOWN = new Error("ERR unknown command 'ssubscribe', with args beginning with: 'grants:1'")
const DROPPED = new Error('Connection is closed.')

t.test('one connection, opened on the first listen, listening for message, smessage and error', async t => {
  const { subscriber, connections } = subscriberOf(true)
  t.equal(connections.length, 0, 'nothing connects before a listen')
  const a = subscriber.listen('grants:a', () => {})
  t.equal(connections.length, 1, 'the first listen connects')
  const b = subscriber.listen('grants:b', () => {})
  await Promise.all([a.ready, b.ready])
  t.equal(connections.length, 1, 'the second listen shares the connection')
  const [connection] = connections
  t.same([...connection.listeners.keys()].sort(), ['error', 'message', 'smessage'])
  t.ok([...connection.listeners.values()].every(l => l.length === 1), 'each registered once')
  t.doesNotThrow(() => connection.emit('error', new Error('ECONNRESET')), 'connection errors are swallowed')
})

t.test('sharded: SSUBSCRIBE, and ready waits for it', async t => {
  let answer: (value: unknown) => void = () => {}
  const connection = new FakeConnection()
  connection.will('ssubscribe', new Promise(resolve => { answer = resolve }))
  const sub = new GrantSubscriber(() => connection, true)
  const { ready } = sub.listen('grants:1', () => {})
  t.same(connection.calls, ['ssubscribe grants:1'], 'SSUBSCRIBE, not SUBSCRIBE')
  t.notOk(await settled(ready), 'ready waits for the SSUBSCRIBE reply')
  answer(1)
  t.ok(await settled(ready), 'ready once subscribed')
  t.equal(sub.isSharded, true)
})

t.test('classic SUBSCRIBE when not sharded, or when the connection has no SSUBSCRIBE', async t => {
  const classic = subscriberOf(false)
  await classic.subscriber.listen('grants:1', () => {}).ready
  t.same(classic.connections[0].calls, ['subscribe grants:1'], 'sharded: false')
  t.equal(classic.subscriber.isSharded, false)

  const old = subscriberOf(true, () => new FakeConnection(false))
  await old.subscriber.listen('grants:1', () => {}).ready
  t.same(old.connections[0].calls, ['subscribe grants:1'], 'no ssubscribe method')
  old.subscriber.listen('grants:2', () => {}).stop()
  t.same(old.connections[0].calls.slice(1), ['subscribe grants:2', 'unsubscribe grants:2'], 'nor sunsubscribe')
})

t.test("'unknown command' switches to classic SUBSCRIBE for good", async t => {
  const clock = fakeClock(t)
  const connection = new FakeConnection()
  connection.will('ssubscribe', UNKNOWN)
  const sub = new GrantSubscriber(() => connection, true)
  t.equal(sub.isSharded, true, 'sharded until told otherwise')
  const a = sub.listen('grants:a', () => {})
  t.ok(await settled(a.ready), 'ready without a retry')
  t.same(connection.calls, ['ssubscribe grants:a', 'subscribe grants:a'], 'the same channel, at once, classic')
  t.equal(sub.isSharded, false)
  t.equal(clock.timers.length, 0, 'no retry timer')
  await sub.listen('grants:b', () => {}).ready
  t.same(connection.calls.slice(2), ['subscribe grants:b'], 'later listens go classic directly')
  a.stop()
  t.same(connection.calls.slice(3), ['unsubscribe grants:a'], 'and stop with UNSUBSCRIBE')

  const other = subscriberOf(true)
  await other.subscriber.listen('grants:a', () => {}).ready
  t.equal(other.subscriber.isSharded, true, 'another subscriber keeps its own mode')

  const shouting = new FakeConnection()
  shouting.will('ssubscribe', new Error('ERR Unknown Command SSUBSCRIBE'))
  const sub2 = new GrantSubscriber(() => shouting, true)
  await sub2.listen('grants:c', () => {}).ready
  t.equal(sub2.isSharded, false, 'the match is case-insensitive')
})

t.test('another SSUBSCRIBE failure stays sharded and retries every second until it succeeds', async t => {
  const clock = fakeClock(t)
  const connection = new FakeConnection()
  connection.will('ssubscribe', DROPPED, 3)
  const sub = new GrantSubscriber(() => connection, true)
  const { ready } = sub.listen('grants:1', () => {})
  await settle()
  t.same(connection.calls, ['ssubscribe grants:1'], 'no classic fallback on a connection error')
  t.equal(sub.isSharded, true, 'still sharded')
  t.equal(clock.pending().length, 1, 'one retry timer')
  t.equal(clock.pending()[0].ms, 1000, 'of one second')
  t.equal(clock.pending()[0].unref, true, 'that does not hold the process open')
  t.notOk(await settled(ready), 'not ready while failing')

  for (let attempt = 2; attempt <= 3; attempt++) {
    await clock.tick()
    t.equal(connection.calls.length, attempt, `attempt ${attempt} after the timer`)
    t.equal(clock.pending().length, 1, `attempt ${attempt} failed: one more timer`)
    t.notOk(await settled(ready))
  }
  await clock.tick()
  t.same(connection.calls, Array(4).fill('ssubscribe grants:1'), 'the 4th attempt, still sharded')
  t.ok(await settled(ready), 'ready once it succeeds')
  t.equal(clock.pending().length, 0, 'no retry after success')
  t.equal(clock.timers.length, 3, 'one timer per failure')
  t.equal(sub.isSharded, true)
})

t.test('a failed classic SUBSCRIBE is retried the same way', async t => {
  const clock = fakeClock(t)
  const connection = new FakeConnection(false)
  connection.will('subscribe', DROPPED)
  const sub = new GrantSubscriber(() => connection, false)
  const { ready } = sub.listen('grants:1', () => {})
  await settle()
  t.same(connection.calls, ['subscribe grants:1'])
  t.notOk(await settled(ready))
  t.same(clock.pending().map(x => x.ms), [1000])
  await clock.tick()
  t.same(connection.calls, ['subscribe grants:1', 'subscribe grants:1'])
  t.ok(await settled(ready))
})

t.test('no retry once the listener stopped, or was replaced, or the subscriber closed', async t => {
  const clock = fakeClock(t)
  const connection = new FakeConnection()
  connection.will('ssubscribe', DROPPED, 100)
  const sub = new GrantSubscriber(() => connection, true)

  const stopped = sub.listen('grants:stopped', () => {})
  await settle()
  stopped.stop()
  await clock.tick()
  t.same(connection.calls, ['ssubscribe grants:stopped', 'sunsubscribe grants:stopped'], 'stopped: no retry')
  t.ok(await settled(stopped.ready), 'its ready settles')
  t.equal(clock.pending().length, 0, 'and no timer is left')

  connection.calls.length = 0
  const old = sub.listen('grants:replaced', () => {})
  await settle()
  old.stop()
  connection.script.set('ssubscribe', [DROPPED])
  const replacement = sub.listen('grants:replaced', () => {})
  await settle()
  t.equal(clock.pending().length, 2, 'the old and the new listener each wait to retry')
  await clock.tick()
  t.same(connection.calls, ['ssubscribe grants:replaced', 'sunsubscribe grants:replaced', 'ssubscribe grants:replaced', 'ssubscribe grants:replaced'],
    'only the new listener retries')
  t.ok(await settled(old.ready), 'the old ready settles')
  t.ok(await settled(replacement.ready), 'the new one subscribed')

  connection.calls.length = 0
  connection.script.set('ssubscribe', [DROPPED])
  const closed = sub.listen('grants:closed', () => {})
  await settle()
  sub.close()
  await clock.tick()
  t.same(connection.calls, ['ssubscribe grants:closed'], 'closed: no retry')
  t.ok(await settled(closed.ready))
})

t.test('messages go to the listener of their channel', async t => {
  const { subscriber, connections } = subscriberOf(true)
  const got: string[] = []
  const a = subscriber.listen('grants:a', m => got.push(`a ${m}`))
  subscriber.listen('grants:b', m => got.push(`b ${m}`))
  const [connection] = connections
  connection.emit('smessage', 'grants:a', 'm1')
  connection.emit('smessage', 'grants:b', 'm2')
  connection.emit('message', 'grants:a', 'm3')
  t.doesNotThrow(() => connection.emit('smessage', 'grants:nobody', 'm4'), 'a channel without listener is ignored')
  t.same(got, ['a m1', 'b m2', 'a m3'], 'by channel, from sharded and classic messages alike')
  a.stop()
  connection.emit('smessage', 'grants:a', 'm5')
  connection.emit('smessage', 'grants:b', 'm6')
  t.same(got.slice(3), ['b m6'], 'not after stop; the others still are')
})

t.test('a channel takes one listener at a time', async t => {
  const { subscriber, connections } = subscriberOf(true)
  const first = subscriber.listen('grants:1', () => {})
  t.throws(() => subscriber.listen('grants:1', () => {}), /grants:1 already has a listener/)
  t.same(connections[0].calls, ['ssubscribe grants:1'], 'the refused listen subscribes nothing')
  first.stop()
  const got: string[] = []
  subscriber.listen('grants:1', m => got.push(m))
  connections[0].emit('smessage', 'grants:1', 'hello')
  t.same(got, ['hello'], 'listening again after stop')
})

t.test('stop unsubscribes once, the way it subscribed, and a stale stop does nothing', async t => {
  const { subscriber, connections } = subscriberOf(true)
  const first = subscriber.listen('grants:1', () => {})
  await first.ready
  const [connection] = connections
  first.stop()
  first.stop()
  t.same(connection.calls, ['ssubscribe grants:1', 'sunsubscribe grants:1'], 'one SUNSUBSCRIBE')

  const got: string[] = []
  await subscriber.listen('grants:1', m => got.push(m)).ready
  first.stop()
  t.same(connection.calls.slice(2), ['ssubscribe grants:1'], 'the old stop does not unsubscribe the new listener')
  connection.emit('smessage', 'grants:1', 'still here')
  t.same(got, ['still here'], 'nor remove it')

  connection.will('sunsubscribe', DROPPED)
  const failing = subscriber.listen('grants:2', () => {})
  await failing.ready
  t.doesNotThrow(() => failing.stop())
  await settle() // an unhandled rejection here would fail the test
  t.same(connection.calls.slice(-1), ['sunsubscribe grants:2'], 'a failed unsubscribe is swallowed')
})

t.test('close disconnects, drops every listener, and the next listen reconnects', async t => {
  const { subscriber, connections } = subscriberOf(true)
  t.doesNotThrow(() => subscriber.close(), 'close before any connection')
  const got: string[] = []
  const a = subscriber.listen('grants:a', m => got.push(m))
  await a.ready
  const [first] = connections
  subscriber.close()
  t.equal(first.disconnects, 1, 'disconnected')
  first.emit('smessage', 'grants:a', 'late')
  t.same(got, [], 'no delivery after close')
  a.stop()
  t.same(first.calls, ['ssubscribe grants:a'], 'a stop after close sends nothing')

  subscriber.listen('grants:a', m => got.push(m))
  t.equal(connections.length, 2, 'a new connection')
  t.same(connections[1].calls, ['ssubscribe grants:a'], 'the channel can be listened again')
  connections[1].emit('smessage', 'grants:a', 'again')
  t.same(got, ['again'])
  subscriber.close()
  subscriber.close()
  t.equal(connections[1].disconnects, 1, 'closing twice disconnects once')
})

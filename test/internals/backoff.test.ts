/**
 * nextDelay, the retry schedule of a waiting request: the first delay, growth by the
 * multiplier, the clamp to [initialMs, maxMs] and the jitter bounds. The random source is
 * injected, so every case is exact.
 */
import t from 'tap'
import { nextDelay } from '../../lib/backoff'
import type { BackoffOptions } from '../../lib/options'

const NO_JITTER: BackoffOptions = { initialMs: 100, multiplier: 2, maxMs: 1000, jitter: 0 }
const JITTER: BackoffOptions = { initialMs: 100, multiplier: 2, maxMs: 10_000, jitter: 0.25 }
const fixed = (value: number) => () => value

t.test('the first delay is initialMs', async t => {
  t.equal(nextDelay(0, NO_JITTER, fixed(0.5)), 100, 'previous 0')
  t.equal(nextDelay(-5, NO_JITTER, fixed(0.5)), 100, 'a negative previous counts as the first')
  t.equal(nextDelay(0, { ...NO_JITTER, initialMs: 37 }, fixed(0.9)), 37, 'whatever initialMs is')
  // random() = 0.5 is a factor of exactly 1, whatever the jitter.
  t.equal(nextDelay(0, { ...JITTER, initialMs: 400 }, fixed(0.5)), 400, 'jitter centred on initialMs')
})

t.test('each delay is the previous one times the multiplier, up to maxMs', async t => {
  const delays: number[] = []
  let previous = 0
  for (let i = 0; i < 7; i++) {
    previous = nextDelay(previous, NO_JITTER, fixed(0.5))
    delays.push(previous)
  }
  t.same(delays, [100, 200, 400, 800, 1000, 1000, 1000])
  t.equal(nextDelay(300, { ...NO_JITTER, multiplier: 1.5 }, fixed(0.5)), 450, 'a fractional multiplier')
  t.equal(nextDelay(250, { ...NO_JITTER, multiplier: 1 }, fixed(0.5)), 250, 'multiplier 1 keeps the delay')
})

t.test('every delay is clamped to [initialMs, maxMs]', async t => {
  t.equal(nextDelay(999_999, NO_JITTER, fixed(0.5)), 1000, 'a huge previous delay is capped at maxMs')
  t.equal(nextDelay(10, NO_JITTER, fixed(0.5)), 100, 'a growth below initialMs is raised to initialMs')
  // Jitter never escapes the clamp either.
  t.equal(nextDelay(0, JITTER, fixed(0)), 100, 'jitter down from initialMs stays at initialMs')
  t.equal(nextDelay(10_000, JITTER, fixed(1)), 10_000, 'jitter up from maxMs stays at maxMs')
  t.equal(nextDelay(9000, { ...JITTER, multiplier: 1 }, fixed(1)), 10_000, 'jitter up near maxMs is capped')
  const wide = { initialMs: 50, multiplier: 3, maxMs: 700, jitter: 0.9 }
  let previous = 0
  for (let i = 0; i < 200; i++) {
    const random = (i * 37 % 101) / 100
    previous = nextDelay(previous, wide, () => random)
    if (previous < wide.initialMs || previous > wide.maxMs) t.fail(`delay ${previous} out of [50, 700]`)
  }
  t.pass('200 jittered delays stayed within [initialMs, maxMs]')
})

t.test('jitter spreads a delay over [1 - jitter, 1 + jitter] times its base', async t => {
  // Base 400 (previous 200 × 2), jitter 0.25: [300, 500].
  t.equal(nextDelay(200, JITTER, fixed(0)), 300, 'random() = 0 is the lower bound')
  t.equal(nextDelay(200, JITTER, fixed(1)), 500, 'random() = 1 is the upper bound')
  t.equal(nextDelay(200, JITTER, fixed(0.5)), 400, 'random() = 0.5 is the base')
  t.equal(nextDelay(200, JITTER, fixed(0.75)), 450, 'linear in between')
  t.equal(nextDelay(0, { ...JITTER, initialMs: 1000 }, fixed(1)), 1250, 'the first delay is jittered too, upwards')
  t.equal(nextDelay(0, { ...JITTER, initialMs: 1000 }, fixed(0)), 1000, '...but not below initialMs')
  t.equal(nextDelay(201, { ...JITTER, jitter: 0 }, fixed(0)), 402, 'jitter 0 ignores random()')
  t.equal(nextDelay(101, { ...JITTER, multiplier: 1 }, fixed(0.3)), 100, '101 × 0.9 = 91 is raised to initialMs')
  t.equal(nextDelay(333, { ...JITTER, multiplier: 1 }, fixed(0.3)), 300, '333 × 0.9 = 299.7 rounds to 300')
})

t.test('random() is called once per delay, Math.random by default', async t => {
  let calls = 0
  nextDelay(200, JITTER, () => { calls++; return 0.5 })
  t.equal(calls, 1, 'one draw per delay')

  const original = Math.random
  t.teardown(() => { Math.random = original })
  Math.random = () => 1
  t.equal(nextDelay(200, JITTER), 500, 'the default source is Math.random')
  Math.random = () => 0
  t.equal(nextDelay(200, JITTER), 300)
  Math.random = original
})

/**
 * Logs people can run on: a limit reached or a client gone is logged by Fastify at info, with
 * its code, subject and wait and without a stack trace into the plugin; a stream that failed
 * after its 200 was committed is logged with the code that ended it.
 */
import { Writable } from 'node:stream'
import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import fastifySlots from '../lib'
import { sleep } from './helpers/app'

interface LogLine { level: number, msg: string, err?: Record<string, unknown> }

async function loggedApp (t: tap.Test): Promise<{ app: FastifyInstance, lines: LogLine[] }> {
  const lines: LogLine[] = []
  const stream = new Writable({ write (chunk, _encoding, done) { lines.push(JSON.parse(String(chunk))); done() } })
  const app = Fastify({ logger: { level: 'info', stream } }) as unknown as FastifyInstance
  await app.register(fastifySlots, { maxWaitMs: 100, ping: { intervalMs: 20 } })
  t.teardown(() => app.close())
  return { app, lines }
}

t.test('a 429 is logged at info with code, subject and wait, and no stack trace', async t => {
  const { app, lines } = await loggedApp(t)
  app.get('/', async (request) => {
    await request.acquireSlot('user', 'logged', 1)
    await sleep(300)
    return 'ok'
  })
  const holding = app.inject('/')
  await sleep(20)
  const res = await app.inject('/')
  t.equal(res.statusCode, 429)
  await holding
  const line = lines.find(l => l.err?.code === 'SLOT_WAIT_TIMEOUT')
  t.ok(line, 'the rejection is logged')
  t.equal(line?.level, 30, 'at info')
  t.equal(line?.err?.slotType, 'user')
  t.equal(line?.err?.slotId, 'logged')
  t.ok(typeof line?.err?.waitedMs === 'number' && line.err.waitedMs >= 90, `with the wait: ${String(line?.err?.waitedMs)} ms`)
  t.notOk(String(line?.err?.stack).includes('\n'), `one line, no stack trace: ${String(line?.err?.stack)}`)
})

t.test('a stream that failed after its 200 was committed is logged with the code that ended it', async t => {
  const { app, lines } = await loggedApp(t)
  app.get('/', async (request, reply) => {
    await request.acquireSlot('user', 'streamed', 1, { stream: true }).catch(() => {})
    if (!request.slotStreamStarted) {
      await sleep(300)
      return 'ok'
    }
    return reply
  })
  const holding = app.inject('/')
  await sleep(20)
  const res = await app.inject('/')
  t.equal(res.statusCode, 200, 'the stream was committed while it waited')
  await holding
  const line = lines.find(l => l.msg.includes('committed stream ended with SLOT_WAIT_TIMEOUT'))
  t.ok(line, 'its failure is logged')
  t.equal(line?.err?.code, 'SLOT_WAIT_TIMEOUT')
})

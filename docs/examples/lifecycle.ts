/**
 * Slots whose life is not just "the request": given back early with `slot.release()`, and
 * taken outside any request with `fastify.slots.acquire` (a background job), where the
 * caller releases and an AbortSignal stops the wait.
 */
import Fastify, { type FastifyInstance } from 'fastify'
import fastifySlots from '../../lib'

const ACCOUNT = { id: 'acct-1', max: 2 }

export interface LifecycleOptions {
  slots?: fastifySlots.FastifySlotsOptions
  /** How long the pretend upstream call and the local post-processing take. */
  upstreamMs?: number
  postProcessMs?: number
}

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

export async function buildApp ({ slots = {}, upstreamMs = 50, postProcessMs = 50 }: LifecycleOptions = {}): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(fastifySlots, slots)

  app.post('/v1/summaries', async (request) => {
    const slot = await request.acquireSlot('account', ACCOUNT.id, ACCOUNT.max)
    await sleep(upstreamMs) // the upstream call: this is what the account limit protects
    // The upstream is done: give the account's slot to the next request now, not after
    // post-processing. Idempotent: the automatic release at the end finds nothing to do.
    await slot.release()
    await sleep(postProcessMs)
    return { waitedMs: slot.waitedMs }
  })
  return app
}

/**
 * A background job that shares the account's limit with the requests. Outside a request
 * nothing ends the slot for you: release it in `finally` (app.close() releases leftovers).
 */
export async function runJob (app: FastifyInstance, work: () => Promise<void>, signal?: AbortSignal): Promise<void> {
  const slot = await app.slots.acquire('account', ACCOUNT.id, ACCOUNT.max, { maxWaitMs: 60_000, signal })
  try {
    await work()
  } finally {
    await slot.release()
  }
}

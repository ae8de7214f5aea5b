/** Building blocks for tests that run real requests. */
import Fastify, { type FastifyInstance } from 'fastify'
import type { Redis } from 'ioredis'
import fastifySlots from '../../lib'

interface Teardown { teardown: (fn: () => unknown) => void }

export const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

/** A Fastify app with fastify-slots on the given client (or the memory store), closed after the test. */
export async function slotsApp (t: Teardown, options: fastifySlots.FastifySlotsOptions & { redis?: Redis } = {}): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(fastifySlots, options)
  t.teardown(() => app.close())
  return app
}

/** Polls `check` until it returns true or `timeoutMs` passes; returns the elapsed ms or throws. */
export async function eventually (check: () => Promise<boolean> | boolean, timeoutMs = 2000, stepMs = 5): Promise<number> {
  const started = Date.now()
  for (;;) {
    if (await check()) return Date.now() - started
    if (Date.now() - started > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms`)
    await sleep(stepMs)
  }
}

/** Sends a request (GET unless `init` says otherwise) over a real connection and goes away after `afterMs`, as a client that gives up. */
export async function leaveAfter (app: FastifyInstance, path: string, afterMs: number, init: RequestInit = {}): Promise<void> {
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  const controller = new AbortController()
  const request = fetch(url + path, { ...init, signal: controller.signal }).catch(() => {})
  await sleep(afterMs)
  controller.abort()
  await request
}

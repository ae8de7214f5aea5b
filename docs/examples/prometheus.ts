/**
 * Prometheus metrics for fastify-slots with prom-client: counters by outcome and a wait-time
 * histogram fed by `fastify.slots` events, gauges of held and waiting read from `stats()`
 * at scrape time. Labels carry the subject type, never the id (one series per user would
 * explode the metric's cardinality).
 */
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyRedis from '@fastify/redis'
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import fastifySlots from '../../lib'

export function registerSlotsMetrics (app: FastifyInstance, registry: Registry): void {
  const registers = [registry]
  const acquisitions = new Counter({
    name: 'fastify_slots_acquisitions_total',
    help: 'acquireSlot calls that ended, by subject type and outcome (acquired, or the SlotError code)',
    labelNames: ['type', 'outcome'] as const,
    registers
  })
  const waitSeconds = new Histogram({
    name: 'fastify_slots_wait_seconds',
    help: 'Time from acquireSlot to holding the slot',
    labelNames: ['type'] as const,
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30], // the bounds stats() uses
    registers
  })
  const released = new Counter({ name: 'fastify_slots_released_total', help: 'Slots given back', labelNames: ['type'] as const, registers })
  const lost = new Counter({ name: 'fastify_slots_lost_total', help: 'Slots whose lease lapsed before renewal', labelNames: ['type'] as const, registers })
  const storeErrors = new Counter({ name: 'fastify_slots_store_errors_total', help: 'Failed or timed-out store calls', labelNames: ['operation'] as const, registers })
  const pings = new Counter({ name: 'fastify_slots_pings_total', help: 'Keepalive frames written to waiting streams', labelNames: ['type'] as const, registers })
  const held: Gauge = new Gauge({
    name: 'fastify_slots_held',
    help: 'Slots this process holds now',
    registers,
    collect () { held.set(app.slots.stats().held) }
  })
  const waiting: Gauge = new Gauge({
    name: 'fastify_slots_waiting',
    help: 'Requests of this process waiting for a slot now',
    registers,
    collect () { waiting.set(app.slots.stats().waiting) }
  })

  app.slots.on('acquired', ({ type, waitedMs }) => {
    acquisitions.inc({ type, outcome: 'acquired' })
    waitSeconds.observe({ type }, waitedMs / 1000)
  })
  app.slots.on('rejected', ({ type, code }) => acquisitions.inc({ type, outcome: code }))
  app.slots.on('released', ({ type }) => released.inc({ type }))
  app.slots.on('lost', ({ type }) => lost.inc({ type }))
  app.slots.on('storeError', ({ operation }) => storeErrors.inc({ operation }))
  app.slots.on('ping', ({ type }) => pings.inc({ type }))
}

export interface MetricsAppOptions {
  redisUrl?: string
  slots?: fastifySlots.FastifySlotsOptions
  upstreamMs?: number
}

export async function buildApp ({ redisUrl, slots = {}, upstreamMs = 50 }: MetricsAppOptions = {}): Promise<FastifyInstance> {
  const app = Fastify()
  if (redisUrl !== undefined) await app.register(fastifyRedis, { url: redisUrl })
  await app.register(fastifySlots, slots)

  // A registry of its own, not prom-client's global one: two apps in one process (tests)
  // must not register the same metric names twice.
  const registry = new Registry()
  registerSlotsMetrics(app, registry)
  app.get('/metrics', async (_request, reply) => {
    return reply.type(registry.contentType).send(await registry.metrics())
  })

  app.post('/v1/messages', async (request) => {
    await request.acquireSlot('user', String(request.headers['x-user-id']), 1)
    await new Promise(resolve => setTimeout(resolve, upstreamMs))
    return { ok: true }
  })
  return app
}

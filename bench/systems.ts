/**
 * Every system under test behind one small interface, each built the way its users would:
 * fastify-slots through a Fastify app, redis-semaphore's Semaphore with its defaults (10 ms
 * polling) on an ioredis client, the seed-style poller, the in-process FIFO, and the floor.
 * One ioredis 6 connection per process for every Redis system (fastify-slots adds the
 * subscriber connection it duplicates for wake-ups).
 */
import Fastify, { type FastifyInstance } from 'fastify'
import { Cluster, Redis } from 'ioredis'
import { Semaphore } from 'redis-semaphore'
import fastifySlots from '../lib'
import type { SystemName, SystemTarget } from './common'
import { FifoSemaphore } from './fifo'
import { SeedStyleSemaphore } from './seed-style'

/** The wait fastify-slots is given in the benchmark (and the peers, for the same runs). */
export const MAX_WAIT_MS = 60_000

export interface Held {
  release (): Promise<void> | void
}

export interface BenchSystem {
  acquire (subject: string, limit: number, signal?: AbortSignal): Promise<Held>
  close (): Promise<void>
}

let commands = 0
let counting = false

/**
 * Counts every command any ioredis client in this process sends (pipelined ones included):
 * the round trips a system costs, as opposed to the commands its Lua scripts run inside Redis.
 */
export function clientCommands (): number {
  if (!counting) {
    counting = true
    const proto = Redis.prototype as unknown as { sendCommand: (...args: unknown[]) => unknown }
    const send = proto.sendCommand
    proto.sendCommand = function (this: unknown, ...args: unknown[]): unknown {
      commands++
      return send.apply(this, args)
    }
  }
  return commands
}

function connect (url: string): Redis {
  const client = new Redis(url)
  client.on('error', () => {})
  return client
}

/** fastify-slots' client: a Cluster client when the target is a cluster (only fastify-slots runs on one here). */
function connectSlots (target: SystemTarget): Redis | Cluster {
  if (target.clusterNodes === undefined) return connect(target.redisUrl)
  const client = new Cluster(target.clusterNodes)
  client.on('error', () => {})
  return client
}

export async function createSystem (name: SystemName, target: SystemTarget, prefix: string): Promise<BenchSystem> {
  clientCommands()
  const redisUrl = target.redisUrl
  if (target.clusterNodes !== undefined && name !== 'slots' && name !== 'slots-fair') throw new Error(`${name} does not run on a Redis Cluster in this benchmark`)
  switch (name) {
    case 'in-process': {
      const fifo = new FifoSemaphore()
      return {
        acquire: async (subject, limit, signal) => ({ release: await fifo.acquire(subject, limit, signal) }),
        close: async () => {}
      }
    }
    case 'slots':
    case 'slots-fair': {
      const client = connectSlots(target)
      const app: FastifyInstance = Fastify({ logger: false })
      await app.register(fastifySlots, { redis: client, prefix })
      await app.ready()
      const fair = name === 'slots-fair'
      const maxWaiters = target.maxWaiters ?? 1000
      return {
        acquire: (subject, limit, signal) => app.slots.acquire('bench', subject, limit, { maxWaitMs: MAX_WAIT_MS, maxWaiters, fair, signal }),
        close: async () => {
          await app.close()
          client.disconnect()
        }
      }
    }
    case 'redis-semaphore': {
      const client = connect(redisUrl)
      return {
        acquire: async (subject, limit, signal) => {
          const semaphore = new Semaphore(client, `${prefix}:${subject}`, limit, { acquireTimeout: MAX_WAIT_MS })
          await semaphore.acquire(signal)
          return semaphore
        },
        close: async () => { client.disconnect() }
      }
    }
    case 'seed-style': {
      const client = connect(redisUrl)
      const seed = new SeedStyleSemaphore(client, { prefix, maxWaitMs: MAX_WAIT_MS })
      return {
        acquire: async (subject, limit, signal) => ({ release: await seed.acquire(subject, limit, signal) }),
        close: async () => { client.disconnect() }
      }
    }
    case 'floor': {
      const client = connect(redisUrl)
      return {
        acquire: async () => {
          await client.ping()
          return { release: async () => { await client.ping() } }
        },
        close: async () => { client.disconnect() }
      }
    }
  }
}

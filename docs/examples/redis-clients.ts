/**
 * The ioredis clients to give fastify-slots in production, on a single Redis and on a Redis
 * Cluster. Why each setting: docs/deployment.md.
 */
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyRedis from '@fastify/redis'
import { Cluster, Redis } from 'ioredis'
import fastifySlots from '../../lib'

/** A single Redis (or a primary behind Sentinel: same options). */
export function createRedis (url: string): Redis {
  return new Redis(url, {
    // While disconnected, fail commands at once instead of queueing them: a request gets its
    // 503 (or its fail-open pass) right away, and no stale command replays on reconnect.
    enableOfflineQueue: false,
    // A command caught in a dropped connection is resent if the next reconnect works, and
    // fails otherwise (the default, 20 reconnects, keeps it in memory far longer).
    maxRetriesPerRequest: 1,
    // Above storeTimeoutMs, which already bounds every slot call: this one catches the
    // app's other commands on the same client.
    commandTimeout: 2000
  })
}

/** A Redis Cluster: a subject's keys share a hash tag, so each script runs on one shard. */
export function createCluster (nodes: Array<{ host: string, port: number }>): Cluster {
  return new Cluster(nodes, {
    enableOfflineQueue: false,
    scaleReads: 'master', // scripts write: never send them to replicas
    redisOptions: { maxRetriesPerRequest: 1, commandTimeout: 2000 }
  })
}

export async function buildApp (client: Redis | Cluster, slots: fastifySlots.FastifySlotsOptions = {}): Promise<FastifyInstance> {
  const app = Fastify()
  // @fastify/redis waits until the client is ready, so no request meets a client that is
  // still connecting (which, without the offline queue, would fail). It quits it on close.
  await app.register(fastifyRedis, { client, closeClient: true })
  await app.register(fastifySlots, {
    storeTimeoutMs: 500, // the longest a request waits on a slow or dead Redis
    onStoreError: 'fail-closed', // 503 while Redis is unreachable
    leaseMs: 30_000, // a crashed process's slots come back within 30 s
    ...slots
  })

  app.post('/v1/messages', async (request) => {
    const slot = await request.acquireSlot('user', String(request.headers['x-user-id']), 3)
    return { bypassed: slot.bypassed }
  })
  return app
}

/**
 * Growth (b): more subjects, nobody waiting. One process holds one slot on each of N
 * distinct subjects at once (limit 10), so Redis' memory per subject and its key count can be
 * read while they are all held; then it releases them all, and every key must be gone: a
 * subject nobody holds or waits for must cost Redis nothing.
 */
import { withChildren } from '../../children'
import type { PhaseCost } from '../../common'
import type { RunContext } from '../../context'
import { dataMemory, delta, type RedisDelta } from '../../redis-server'
import { costOf, type CostPerAcquisition } from './cost'

export const SUBJECT_STEPS = [1, 10_000, 100_000]
const SUBJECT_LIMIT = 10
/** Acquires in flight at once: far more than a batch (8), few enough to keep the process responsive. */
const CHUNK = 500

export interface SubjectsStep {
  subjects: number
  /** Acquire + release of one subject. */
  cost: CostPerAcquisition
  acquire: { client: PhaseCost, redis: RedisDelta }
  release: { client: PhaseCost, redis: RedisDelta }
  /** Data memory (used_memory without the connections) with every slot held minus before the first acquire, bytes. */
  redisMemoryHeldBytes: number
  redisMemoryPerSubjectBytes: number
  /** MEMORY USAGE of the keys while held, per subject: the data alone. */
  keyBytesPerSubject: number
  /** DBSIZE with every slot held (every key of the server: only ours on a private one). */
  keysHeld: number
  /** Keys under the part's prefix right after this step's releases (the process still running). */
  keysAfterRelease: number
}

export interface SubjectsPart {
  prefix: string
  steps: SubjectsStep[]
  /** Keys under the part's prefix once every release is done and the process has closed. Must be 0. */
  keysLeftAfterEveryoneIsDone: number
}

export async function subjectsPart ({ redis, runId }: RunContext, maxWaiters: number, onStep: (subjects: number) => void): Promise<SubjectsPart> {
  await redis.flushIfOwned()
  const prefix = `bench-${runId}-growth-subjects`
  const steps: SubjectsStep[] = []
  await withChildren([{ role: 'subjects', system: 'slots', redisUrl: redis.url, prefix, limit: SUBJECT_LIMIT, chunk: CHUNK, maxWaiters }], async ([child]) => {
    await child.next('ready')
    for (const subjects of SUBJECT_STEPS) {
      onStep(subjects)
      const base = await redis.snapshot()
      child.send({ type: 'hold', count: subjects, tag: `n${subjects}` })
      const held = (await child.next('held')).cost
      const holding = await redis.snapshot()
      const keysHeld = await redis.dbsize()
      const keyBytes = await redis.keyBytesUnder(prefix)
      // Counting the keys cost Redis CPU too: the release phase is measured from here.
      const releasing = await redis.snapshot()
      child.send({ type: 'release' })
      const released = (await child.next('released')).cost
      const end = await redis.snapshot()
      const acquireRedis = delta(base, holding)
      const releaseRedis = delta(releasing, end)
      const memory = dataMemory(holding) - dataMemory(base)
      steps.push({
        subjects,
        cost: costOf(subjects, {
          serverCpuMicros: held.cpuMicros + released.cpuMicros,
          redisCpuMicros: acquireRedis.cpuMicros + releaseRedis.cpuMicros,
          redisCommands: acquireRedis.commands + releaseRedis.commands,
          roundTrips: held.clientCommands + released.clientCommands
        }),
        acquire: { client: held, redis: acquireRedis },
        release: { client: released, redis: releaseRedis },
        redisMemoryHeldBytes: memory,
        redisMemoryPerSubjectBytes: memory / subjects,
        keyBytesPerSubject: keyBytes / subjects,
        keysHeld,
        keysAfterRelease: await redis.countKeysUnder(prefix)
      })
    }
    child.send({ type: 'stop' })
  })
  // withChildren returns once the child has exited: whatever is left now, nobody will clean up.
  return { prefix, steps, keysLeftAfterEveryoneIsDone: await redis.countKeysUnder(prefix) }
}

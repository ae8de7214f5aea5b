/**
 * Test harness for a real Redis Cluster: private redis-servers with `--cluster-enabled yes` on
 * free loopback ports (client and bus port both picked free, so no port + 10000 clash), joined
 * by `redis-cli --cluster create`, stopped when the test ends (and when the process exits).
 */
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Cluster, Redis, type ClusterOptions } from 'ioredis'
import { freePort, hasRedisServer, keysUnder, PrivateRedis } from './redis'
import { sleep } from './app'

interface Teardown { teardown: (fn: () => unknown) => void }

/** Why the cluster tests cannot run here, or undefined when they can. */
export function missingClusterTools (): string | undefined {
  const missing = [
    hasRedisServer() ? undefined : 'redis-server',
    spawnSync('redis-cli', ['--version']).status === 0 ? undefined : 'redis-cli'
  ].filter(tool => tool !== undefined)
  if (missing.length === 0) return undefined
  return `Redis Cluster tests need ${missing.join(' and ')} on PATH (Debian: apt-get install redis-server redis-tools) ` +
    'to start a private 3-master cluster'
}

/** A 3-master (by default) cluster this test owns, on 127.0.0.1. */
export class PrivateCluster {
  readonly dir: string
  private readonly servers: PrivateRedis[] = []

  constructor (readonly ports: number[], busPorts: number[]) {
    this.dir = mkdtempSync(join(tmpdir(), 'fastify-slots-cluster-'))
    const dir = this.dir
    const removeDir = (): void => { rmSync(dir, { recursive: true, force: true }) }
    process.once('exit', removeDir)
    for (const [i, port] of ports.entries()) {
      this.servers.push(new PrivateRedis(port, [
        '--cluster-enabled', 'yes',
        '--cluster-config-file', join(this.dir, `nodes-${port}.conf`),
        '--cluster-port', String(busPorts[i]),
        '--cluster-node-timeout', '5000',
        '--dir', this.dir
      ]))
    }
  }

  /** Startup nodes for an ioredis Cluster. */
  get nodes (): Array<{ host: string, port: number }> {
    return this.ports.map(port => ({ host: '127.0.0.1', port }))
  }

  async start (): Promise<void> {
    await Promise.all(this.servers.map(server => server.start()))
    await createCluster(this.ports)
    await this.waitUntilOk()
  }

  async stop (): Promise<void> {
    await Promise.all(this.servers.map(server => server.stop()))
    rmSync(this.dir, { recursive: true, force: true })
  }

  /** Until every node says cluster_state:ok, knows every node and sees all 16384 slots served. */
  private async waitUntilOk (timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    const probes = this.ports.map(port => {
      const probe = new Redis(port, '127.0.0.1', { retryStrategy: () => null, maxRetriesPerRequest: 0 })
      probe.on('error', () => {})
      return probe
    })
    try {
      let last = ''
      for (;;) {
        const infos = await Promise.all(probes.map(probe => probe.cluster('INFO')))
        const ok = infos.every(info => /cluster_state:ok/.test(info) &&
          /cluster_slots_ok:16384/.test(info) &&
          new RegExp(`cluster_known_nodes:${this.ports.length}\\b`).test(info))
        if (ok) return
        last = infos.join('\n')
        if (Date.now() > deadline) throw new Error(`the cluster on ports ${this.ports.join(', ')} did not reach cluster_state:ok:\n${last}`)
        await sleep(50)
      }
    } finally {
      for (const probe of probes) probe.disconnect()
    }
  }
}

async function createCluster (ports: number[]): Promise<void> {
  const args = ['--cluster', 'create', ...ports.map(port => `127.0.0.1:${port}`), '--cluster-replicas', '0', '--cluster-yes']
  const child = spawn('redis-cli', args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', chunk => { output += String(chunk) })
  child.stderr.on('data', chunk => { output += String(chunk) })
  const killOnExit = (): void => { child.kill('SIGKILL') }
  process.once('exit', killOnExit)
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000)
  const code = await new Promise<number | null>(resolve => child.once('exit', resolve))
  clearTimeout(timer)
  process.removeListener('exit', killOnExit)
  if (code !== 0 || !/All 16384 slots covered/.test(output)) {
    throw new Error(`redis-cli ${args.join(' ')} failed (exit ${String(code)}):\n${output}`)
  }
}

/** Starts a private cluster of `masters` masters, stopped when the test ends. */
export async function startPrivateCluster (t: Teardown, masters = 3): Promise<PrivateCluster> {
  const ports: number[] = []
  while (ports.length < masters * 2) {
    const port = await freePort()
    if (!ports.includes(port)) ports.push(port)
  }
  const cluster = new PrivateCluster(ports.slice(0, masters), ports.slice(masters))
  t.teardown(() => cluster.stop())
  await cluster.start()
  return cluster
}

/** An ioredis Cluster client the test disconnects when it ends. */
export function clusterClient (t: Teardown, cluster: PrivateCluster, options: ClusterOptions = {}): Cluster {
  const client = new Cluster(cluster.nodes, options)
  // The servers may stop before this client does; its reconnect errors are expected.
  client.on('error', () => {})
  t.teardown(() => client.disconnect())
  return client
}

/** Every key under the prefix on every master (SCAN per node: a Cluster SCAN sees one node). */
export async function clusterKeysUnder (client: Cluster, prefix: string): Promise<string[]> {
  const keys: string[] = []
  for (const node of client.nodes('master')) keys.push(...await keysUnder(node, prefix))
  return keys.sort()
}

export async function deleteKeysUnder (client: Cluster, prefix: string): Promise<void> {
  // One DEL per key: keys of different subjects live in different slots.
  for (const key of await clusterKeysUnder(client, prefix)) await client.del(key)
}

/** Redis time in ms, the clock the scripts use. */
async function redisNow (client: Cluster): Promise<number> {
  const [seconds, micros] = await client.time()
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000)
}

/** Live holders of a subject, counted the way the store counts them (expired ones excluded). */
export async function clusterHolders (client: Cluster, prefix: string, tag: string): Promise<number> {
  return await client.zcount(`${prefix}:{${tag}}:holders`, `(${await redisNow(client)}`, '+inf')
}

/** slot → the `host:port` of the master serving it, from CLUSTER SLOTS. */
export async function slotMasters (client: Cluster): Promise<(slot: number) => string> {
  const ranges = await client.cluster('SLOTS')
  return (slot: number): string => {
    const range = ranges.find(([start, end]) => slot >= start && slot <= end)
    if (range === undefined) throw new Error(`no master serves slot ${slot}`)
    return `${range[2][0]}:${range[2][1]}`
  }
}

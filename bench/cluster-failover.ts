/**
 * `node -r ts-node/register/transpile-only bench/cluster-failover.ts [--full-coverage yes|no]`
 *
 * What a Redis Cluster failover does to requests: a private 3-master + 3-replica cluster
 * (`cluster-node-timeout 1000`), the app of docs/examples/redis-clients.ts on it
 * (storeTimeoutMs 500, fail-closed), 20 users per shard each sending one request after
 * another, then kill -9 of one master 3 s in. Prints, per shard, the 503s and the time from
 * the kill until requests succeed again. Needs redis-server and redis-cli on PATH.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { freePort } from '../test/helpers/redis'
import { buildApp, createCluster } from '../docs/examples/redis-clients'

const KILL_AT_MS = 3000
const RUN_MS = 12_000
const USERS_PER_SHARD = 20
const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

interface Answer { shard: number, started: number, status: number }

async function main (): Promise<void> {
  const flag = process.argv.indexOf('--full-coverage')
  const fullCoverage = flag === -1 ? 'yes' : process.argv[flag + 1]
  const dir = mkdtempSync(join(tmpdir(), 'fastify-slots-failover-'))
  const ports: number[] = []
  while (ports.length < 12) {
    const port = await freePort()
    if (!ports.includes(port)) ports.push(port)
  }
  const nodes = ports.slice(0, 6)
  const servers: ChildProcess[] = nodes.map((port, i) => spawn('redis-server', [
    '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`),
    '--cluster-port', String(ports[6 + i]), '--cluster-node-timeout', '1000',
    '--cluster-require-full-coverage', fullCoverage, '--dir', dir
  ], { stdio: 'ignore' }))
  process.once('exit', () => {
    for (const server of servers) server.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  })
  await sleep(500)
  const created = spawnSync('redis-cli', ['--cluster', 'create', ...nodes.map(p => `127.0.0.1:${p}`), '--cluster-replicas', '1', '--cluster-yes'], { encoding: 'utf8' })
  if (!/All 16384 slots covered/.test(created.stdout)) throw new Error(created.stdout + created.stderr)
  const probes = nodes.map(port => {
    const probe = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 0, retryStrategy: () => null })
    probe.on('error', () => {})
    return probe
  })
  // Every node sees the cluster ok, and every replica is in sync.
  for (;;) {
    const infos = await Promise.all(probes.map(p => p.cluster('INFO') as Promise<string>))
    const replicas = (await Promise.all(probes.map(p => p.info('replication')))).filter(r => /role:slave/.test(r))
    if (infos.every(i => /cluster_state:ok/.test(i)) && replicas.length === 3 && replicas.every(r => /master_link_status:up/.test(r))) break
    await sleep(100)
  }

  const client = createCluster([{ host: '127.0.0.1', port: nodes[0] }])
  client.on('error', () => {})
  const app = await buildApp(client, { prefix: 'failover' })
  const ranges = await client.cluster('SLOTS') as unknown as Array<[number, number, [string, number]]>
  const masterOf = (slot: number): number => ranges.find(([start, end]) => slot >= start && slot <= end)![2][1]
  const masters = [...new Set(ranges.map(range => range[2][1]))].sort((a, b) => a - b)
  const victim = masters[0]
  const users: Array<{ id: string, shard: number }> = []
  for (let i = 0; users.length < USERS_PER_SHARD * masters.length; i++) {
    const shard = masterOf(Number(await client.cluster('KEYSLOT', `{user:u${i}}`)))
    if (users.filter(u => u.shard === shard).length < USERS_PER_SHARD) users.push({ id: `u${i}`, shard })
  }

  const t0 = Date.now()
  const answers: Answer[] = []
  const state = { stop: false }
  const loops = users.map(async user => {
    while (!state.stop) {
      const started = Date.now() - t0
      const res = await app.inject({ method: 'POST', url: '/v1/messages', headers: { 'x-user-id': user.id } })
      answers.push({ shard: user.shard, started, status: res.statusCode })
      await sleep(20)
    }
  })
  await sleep(KILL_AT_MS)
  servers[nodes.indexOf(victim)].kill('SIGKILL')
  const killedAt = Date.now() - t0
  await sleep(RUN_MS - KILL_AT_MS)
  state.stop = true
  await Promise.all(loops)

  console.log(`cluster-require-full-coverage ${fullCoverage}: killed master ${victim} at ${killedAt} ms`)
  for (const shard of masters) {
    const mine = answers.filter(a => a.shard === shard)
    const failed = mine.filter(a => a.status !== 200)
    const name = shard === victim ? 'failed shard' : `other shard (${shard})`
    if (failed.length === 0) {
      console.log(`  ${name}: ${mine.length} requests, no 503`)
      continue
    }
    const first = Math.min(...failed.map(a => a.started))
    const last = Math.max(...failed.map(a => a.started))
    const recovered = Math.min(...mine.filter(a => a.status === 200 && a.started > last).map(a => a.started))
    console.log(`  ${name}: ${mine.length} requests, ${failed.length} answered ${[...new Set(failed.map(a => a.status))].join('/')}; ` +
      `failing from ${((first - killedAt) / 1000).toFixed(2)} s to ${((recovered - killedAt) / 1000).toFixed(2)} s after the kill`)
  }
  await app.close().catch(() => {})
  for (const probe of probes) probe.disconnect()
  process.exit(0)
}

main().catch(err => {
  console.error(err)
  process.exit(1)
})

/**
 * A small TCP proxy between Redis clients and a Redis server, for tests that need a connection
 * to fail at the worst moment. `dropNextReply()` swallows the next chunk Redis sends back on
 * one connection (whichever answers first) and then destroys that client connection: the
 * commands were executed by Redis but their replies never arrive, so ioredis reconnects and
 * RESENDS them (autoResendUnfulfilledCommands). A store whose scripts are not idempotent then
 * runs an operation twice. `cutAll()` destroys every connection at once.
 */
import { createServer, connect, type Server, type Socket } from 'node:net'
import { freePort } from './redis'

interface Pair {
  client: Socket
  upstream: Socket
}

export class FlakyProxy {
  private readonly pairs = new Set<Pair>()
  private readonly server: Server
  /** Replies still to swallow (each one cuts the connection it hit). */
  private drops = 0
  /** Replies swallowed, and connections this proxy cut (by a drop or cutAll), for reports. */
  dropped = 0
  cuts = 0

  private constructor (readonly port: number, private readonly target: { host: string, port: number }) {
    this.server = createServer(client => this.accept(client))
  }

  /** A proxy on a free loopback port forwarding to `target`. */
  static async start (target: { host: string, port: number }): Promise<FlakyProxy> {
    const proxy = new FlakyProxy(await freePort(), target)
    await new Promise<void>((resolve, reject) => {
      proxy.server.once('error', reject)
      proxy.server.listen(proxy.port, '127.0.0.1', () => resolve())
    })
    return proxy
  }

  get url (): string {
    return `redis://127.0.0.1:${this.port}`
  }

  /** Open client connections. */
  get connections (): number {
    return this.pairs.size
  }

  /** The next reply chunk from Redis on any connection is swallowed and that connection cut. */
  dropNextReply (): void {
    this.drops++
  }

  /** Destroys every open connection (both sides); clients reconnect and resend. */
  cutAll (): void {
    for (const pair of [...this.pairs]) this.cut(pair, true)
  }

  async close (): Promise<void> {
    this.drops = 0
    this.cutAll()
    await new Promise<void>(resolve => this.server.close(() => resolve()))
  }

  private accept (client: Socket): void {
    const upstream = connect(this.target.port, this.target.host)
    const pair: Pair = { client, upstream }
    this.pairs.add(pair)
    client.setNoDelay(true)
    upstream.setNoDelay(true)
    // Client → Redis is forwarded untouched.
    client.on('data', chunk => { if (!upstream.destroyed) upstream.write(chunk) })
    // Redis → client: forwarded, unless a drop is armed; then swallowed and the client cut.
    upstream.on('data', chunk => {
      if (client.destroyed) return
      if (this.drops > 0) {
        this.drops--
        this.dropped++
        this.cut(pair, true)
        return
      }
      client.write(chunk)
    })
    const end = (): void => this.cut(pair)
    client.on('close', end)
    upstream.on('close', end)
    // Resets are the point of this proxy; nothing to report.
    client.on('error', () => {})
    upstream.on('error', () => {})
  }

  private cut (pair: Pair, forced = false): void {
    if (!this.pairs.delete(pair)) return
    if (forced) this.cuts++
    pair.client.destroy()
    pair.upstream.destroy()
  }
}

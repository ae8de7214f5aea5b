/**
 * Cross-process grants: a slot released in one process is handed to a waiter of another by
 * a message on the waiter's instance channel. One subscriber connection per store (duplicated
 * from the main client on first use), shared by every subject: one channel per instance,
 * subscribed once, so waiting costs no SUBSCRIBE/UNSUBSCRIBE per subject and a release wakes
 * only the process it grants to. Messages can be lost (reconnects, a subscription still on its
 * way); the waiting-ticket refresh notices a ticket that was granted, and the queue head's
 * backoff polls remain the safety net.
 */
import type { GrantSubscription } from './store'

/** The part of an ioredis connection in subscriber mode this file uses. */
export interface SubscriberLike {
  on (event: 'message' | 'smessage', listener: (channel: string, message: string) => void): unknown
  on (event: 'error', listener: (err: Error) => void): unknown
  subscribe (channel: string): Promise<unknown>
  unsubscribe (channel: string): Promise<unknown>
  ssubscribe? (channel: string): Promise<unknown>
  sunsubscribe? (channel: string): Promise<unknown>
  disconnect (): void
}

const RETRY_MS = 1000

export class GrantSubscriber {
  private connection: SubscriberLike | undefined
  private readonly listeners = new Map<string, (message: string) => void>()
  /** Sharded until the server says it has no SSUBSCRIBE (Redis < 7); then classic for good. */
  private sharded: boolean

  constructor (private readonly connect: () => SubscriberLike, sharded: boolean) {
    this.sharded = sharded
  }

  get isSharded (): boolean {
    return this.sharded
  }

  listen (channel: string, onMessage: (message: string) => void): GrantSubscription {
    if (this.listeners.has(channel)) throw new Error(`fastify-slots: ${channel} already has a listener`)
    this.listeners.set(channel, onMessage)
    const ready = this.subscribeUntilDone(channel, onMessage)
    return {
      ready,
      stop: () => {
        if (this.listeners.get(channel) !== onMessage) return
        this.listeners.delete(channel)
        this.unsubscribe(channel)
      }
    }
  }

  close (): void {
    this.listeners.clear()
    this.connection?.disconnect()
    this.connection = undefined
  }

  private subscriber (): SubscriberLike {
    if (this.connection === undefined) {
      const connection = this.connect()
      const deliver = (channel: string, message: string): void => {
        this.listeners.get(channel)?.(message)
      }
      connection.on('message', deliver)
      connection.on('smessage', deliver)
      // Errors surface as missed grants, which the safety nets cover; ioredis reconnects by itself.
      connection.on('error', () => {})
      this.connection = connection
    }
    return this.connection
  }

  /**
   * ioredis re-subscribes after a reconnect only to channels whose SUBSCRIBE succeeded: one
   * that failed (the connection dropped first) is retried here until it succeeds or stops.
   */
  private async subscribeUntilDone (channel: string, onMessage: (message: string) => void): Promise<void> {
    for (;;) {
      try {
        return await this.subscribe(channel)
      } catch {
        await new Promise(resolve => setTimeout(resolve, RETRY_MS).unref())
        if (this.listeners.get(channel) !== onMessage) return
      }
    }
  }

  private async subscribe (channel: string): Promise<void> {
    const connection = this.subscriber()
    if (this.sharded && connection.ssubscribe !== undefined) {
      try {
        await connection.ssubscribe(channel)
        return
      } catch (err) {
        // Only a server without sharded pub/sub (Redis < 7) switches this process to classic;
        // a connection error must not, or it would listen where releases do not publish.
        if (!/unknown command/i.test(String((err as Error)?.message))) throw err
        this.sharded = false
      }
    }
    await connection.subscribe(channel)
  }

  private unsubscribe (channel: string): void {
    const connection = this.connection
    if (connection === undefined) return
    const done = this.sharded && connection.sunsubscribe !== undefined
      ? connection.sunsubscribe(channel)
      : connection.unsubscribe(channel)
    done.catch(() => {})
  }
}

/**
 * Cross-process wake-ups: one subscriber connection per store (duplicated from the main
 * client on first use), shared by every subject, subscribed only to the channels of subjects
 * this process has waiters for. Messages can be lost (reconnects, a subscription still on its
 * way), which is why waiters keep polling on the backoff schedule as a safety net.
 */
import type { ReleaseWatch } from './store'

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

export class ReleaseSubscriber {
  private connection: SubscriberLike | undefined
  private readonly listeners = new Map<string, Set<() => void>>()
  /** Sharded until the server says it has no SSUBSCRIBE (Redis < 7); then classic for good. */
  private sharded: boolean

  constructor (private readonly connect: () => SubscriberLike, sharded: boolean) {
    this.sharded = sharded
  }

  watch (channel: string, onRelease: () => void): ReleaseWatch {
    let set = this.listeners.get(channel)
    let ready: Promise<void> = Promise.resolve()
    if (set === undefined) {
      set = new Set()
      this.listeners.set(channel, set)
      ready = this.subscribe(channel)
    }
    set.add(onRelease)
    const listeners = set
    return {
      ready,
      stop: () => {
        listeners.delete(onRelease)
        if (listeners.size > 0 || this.listeners.get(channel) !== listeners) return
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
      const deliver = (channel: string): void => {
        for (const listener of this.listeners.get(channel) ?? []) listener()
      }
      connection.on('message', deliver)
      connection.on('smessage', deliver)
      // Errors surface as missed wake-ups, which polling covers; ioredis reconnects by itself.
      connection.on('error', () => {})
      this.connection = connection
    }
    return this.connection
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

/**
 * Sends a batch to Redis: as an FCALL of the batch function where the server has Redis
 * Functions (the library is loaded once per server, so Redis does not rebuild the helpers on
 * every call), else as the EVALSHA script. The function is loaded on first use and again on
 * any server that answers it is missing (a restart without persistence, a new shard). A
 * server without functions (before Redis 7, or an ACL that denies them) makes the caller use
 * the script from then on.
 */
import { BATCH_FUNCTION, BATCH_LIBRARY, RUN_BATCH } from './scripts/run-batch'

type BatchArg = string | number

/** The part of an ioredis `Redis` or `Cluster` client the store uses. */
export interface RedisClientLike {
  defineCommand (name: string, definition: { numberOfKeys?: number, lua: string }): void
  duplicate (...args: unknown[]): unknown
  /** ioredis' generic command call; without it batches go out as the script. */
  call? (command: string, ...args: Array<string | number>): Promise<unknown>
  readonly isCluster?: boolean
}

interface Callable {
  call (command: string, ...args: BatchArg[]): Promise<unknown>
  nodes? (role: 'master'): Callable[]
  fastifySlotsBatch (...numKeysKeysAndArgs: BatchArg[]): Promise<unknown>
}

const MISSING = /function not found/i
const UNSUPPORTED = /unknown command|unknown subcommand|NOPERM/i
const LOADED_ALREADY = /already exists/i

export class BatchCaller {
  private readonly client: Callable
  private functions: boolean
  private loading: Promise<void> | undefined

  constructor (client: RedisClientLike) {
    const scripted = client as RedisClientLike & Partial<Callable>
    // A shared client needs the command defined only once. No numberOfKeys: a batch's key count varies.
    if (typeof scripted.fastifySlotsBatch !== 'function') client.defineCommand('fastifySlotsBatch', { lua: RUN_BATCH })
    this.client = scripted as unknown as Callable
    this.functions = typeof client.call === 'function'
  }

  async send (keys: BatchArg[], args: BatchArg[], loaded = false): Promise<unknown> {
    if (!this.functions) return await this.client.fastifySlotsBatch(keys.length, ...keys, ...args)
    try {
      return await this.client.call('FCALL', BATCH_FUNCTION, keys.length, ...keys, ...args)
    } catch (err) {
      const message = (err as Error).message ?? ''
      // The call did not run: loading the library (or falling back) and sending it again is
      // safe. Once: a server still missing it right after a load fails the call, not a loop.
      if (UNSUPPORTED.test(message)) this.functions = false
      else if (MISSING.test(message) && !loaded) await this.load()
      else throw err
      return await this.send(keys, args, true)
    }
  }

  /** Loads the library on every master (once at a time); one that cannot have it switches to the script. */
  private load (): Promise<void> {
    this.loading ??= (async () => {
      const nodes = typeof this.client.nodes === 'function' ? this.client.nodes('master') : [this.client]
      await Promise.all(nodes.map(async node => {
        try {
          await node.call('FUNCTION', 'LOAD', BATCH_LIBRARY)
        } catch (err) {
          const message = (err as Error).message ?? ''
          if (UNSUPPORTED.test(message)) this.functions = false
          else if (!LOADED_ALREADY.test(message)) throw err
        }
      }))
    })().finally(() => { this.loading = undefined })
    return this.loading
  }
}

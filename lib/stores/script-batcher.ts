/**
 * Coalesces the store operations issued in one turn of the event loop (every request's
 * acquire, release and renewal that reached the store while Node handled the I/O of that turn)
 * into one call of the batch: one write, one script call and one reply instead of one of each
 * per operation. An HTTP server handles many requests per turn under load, so this is most of
 * what a slot costs there; with one operation in flight it adds nothing but a setImmediate.
 * On a Cluster a script may only touch one hash slot, so operations are grouped per subject.
 */
export type BatchArg = string | number

/** The keys an operation runs on: holders, tickets, queue of its subject (of each, for a set). */
export type SubjectKeys = readonly string[]

interface PendingOperation {
  tag: string
  keys: SubjectKeys
  args: readonly BatchArg[]
  resolve: (reply: unknown) => void
  reject: (err: Error) => void
}

export type SendBatch = (keys: BatchArg[], args: BatchArg[]) => Promise<unknown>

/**
 * A batch goes out as soon as it has this many operations, without waiting for the turn to
 * end: Redis starts on it while this process is still issuing (or reading the replies of)
 * the rest, so the two work in parallel instead of taking turns. Measured with 16 and 64
 * concurrent acquire/release loops when batches were cut per tick (docs/benchmarks.md, an
 * earlier version of it): one batch per tick, 63k ops/s at 64;
 * 4 → 78-83k at 16, 86k at 64; 8 → 64-71k at 16, 101-111k at 64; 16 → 44-46k at 16 (the
 * loops fall into step with whole batches), 104-113k at 64.
 */
const MAX_OPERATIONS = 8

export class ScriptBatcher {
  private pending: PendingOperation[] = []
  private scheduled = false
  private draining = false

  constructor (private readonly send: SendBatch, private readonly perSubject: boolean) {}

  /**
   * Queues one operation for this turn's batch; settles with its own reply. On a Cluster,
   * operations are batched by `tag`: a set's operation gives one of its subjects' (they share
   * a hash slot).
   */
  run (tag: string, keys: SubjectKeys, args: readonly BatchArg[]): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.pending.push({ tag, keys, args, resolve, reject })
      if (this.draining) {
        this.sendPending()
      } else if (this.pending.length >= MAX_OPERATIONS && !this.perSubject) {
        this.sendBatch(this.pending)
        this.pending = []
      } else if (!this.scheduled) {
        this.scheduled = true
        // Not process.nextTick: that flushes after every I/O callback, so each request's
        // operation went out alone; setImmediate runs once the turn's I/O is handled.
        setImmediate(() => {
          this.scheduled = false
          this.sendPending()
        })
      }
    })
  }

  /**
   * Sends what is pending now, and every later operation as soon as it is issued: called as the
   * app closes (see SlotStore.flush), when what matters is that each give-back is on the wire
   * before an onClose hook of the app closes the client, not how few calls carry them.
   */
  flush (): void {
    this.draining = true
    this.sendPending()
  }

  private sendPending (): void {
    if (this.pending.length === 0) return
    const operations = this.pending
    this.pending = []
    if (!this.perSubject) return this.sendInBatches(operations)
    const bySubject = new Map<string, PendingOperation[]>()
    for (const operation of operations) {
      const group = bySubject.get(operation.tag)
      if (group === undefined) bySubject.set(operation.tag, [operation])
      else group.push(operation)
    }
    for (const group of bySubject.values()) this.sendInBatches(group)
  }

  private sendInBatches (operations: PendingOperation[]): void {
    for (let i = 0; i < operations.length; i += MAX_OPERATIONS) this.sendBatch(operations.slice(i, i + MAX_OPERATIONS))
  }

  private sendBatch (operations: PendingOperation[]): void {
    const keys: BatchArg[] = []
    const args: BatchArg[] = []
    for (const operation of operations) {
      for (const key of operation.keys) keys.push(key)
      for (const arg of operation.args) args.push(arg)
    }
    this.send(keys, args).then(replies => {
      if (!Array.isArray(replies) || replies.length !== operations.length) {
        const err = new Error(`fastify-slots: the batch script answered ${Array.isArray(replies) ? replies.length : typeof replies} replies for ${operations.length} operations`)
        for (const operation of operations) operation.reject(err)
        return
      }
      for (let i = 0; i < operations.length; i++) {
        const reply: unknown = replies[i]
        // A failed operation answers its error message; the others in the batch still ran.
        if (typeof reply === 'string') operations[i].reject(new Error(reply))
        else operations[i].resolve(reply)
      }
    }, (err: Error) => {
      for (const operation of operations) operation.reject(err)
    })
  }
}

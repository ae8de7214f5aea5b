/**
 * Per-request bookkeeping: the slots a request holds and the waits it runs, and the hooks on
 * every way a request can end. Fastify's onResponse does not run when the client aborts, so
 * the raw 'close' events are watched too; whichever comes first releases, the rest find
 * nothing left to do.
 */
import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify'
import { describe, type SlotError } from './errors'
import { isPingFrame, type PingFrame, type PingOptions, type StreamErrorFrame, type WaitProgress } from './options'
import { pingFrames } from './protocols'
import type { Abortable, SlotOwner } from './slot-owner'
import type { HeldSlot } from './slot'
import { SseWriter } from './sse-writer'

export class RequestSlots implements SlotOwner {
  private readonly slots = new Set<HeldSlot>()
  private readonly waits = new Set<Abortable>()
  /** The response is over (finished or the client went away): no more slots for this request. */
  ended = false
  readonly log: FastifyBaseLogger
  /** False while route `config.slots` are taken in a preHandler (see SseWriter). */
  hijackOnStream = true
  /** Set once a streaming wait needs keepalives. */
  sse: SseWriter | undefined

  constructor (readonly request: FastifyRequest, readonly reply: FastifyReply) {
    this.log = request.log
    const res = reply.raw
    // The first acquireSlot may come after the client already left: its 'close' is gone.
    if (res.destroyed || res.writableFinished) {
      this.ended = true
      return
    }
    res.once('close', () => this.end())
    // IncomingMessage 'close' also fires when a body has been read, so only a destroyed
    // socket means the client is gone.
    request.raw.once('close', () => {
      if (request.raw.socket?.destroyed === true) this.end()
    })
  }

  addWait (wait: Abortable): void {
    this.waits.add(wait)
  }

  removeWait (wait: Abortable): void {
    this.waits.delete(wait)
  }

  hold (slot: HeldSlot): void {
    this.slots.add(slot)
  }

  /** Pings the waiting stream every interval, committing it as SSE on the first one. */
  keepAlive (ping: PingOptions, progress: () => WaitProgress, onPing: () => void, onBroken: () => void): () => void {
    this.sse ??= new SseWriter(this.request, this.reply, () => this.hijackOnStream)
    const sse = this.sse
    const timer = setInterval(() => {
      if (!sse.write(this.frameOf(ping.frame, progress), onBroken)) return onBroken()
      onPing()
    }, ping.intervalMs)
    return () => clearInterval(timer)
  }

  /**
   * The frame to write now. One a function builds is checked like a configured one: a function
   * that throws or builds something else is a bug, logged, and the client still gets a
   * keepalive (an SSE comment, which every client ignores).
   */
  private frameOf (frame: PingFrame, progress: () => WaitProgress): string {
    if (typeof frame === 'string') return frame
    let built: unknown
    try {
      built = frame(progress())
    } catch (err) {
      built = err
    }
    if (isPingFrame(built)) return built
    this.log.error({ err: built instanceof Error ? built : undefined, frame: built instanceof Error ? undefined : describe(built) },
      'fastify-slots: ping.frame must return a string of at most 4096 characters ending in a blank line; wrote an SSE comment instead')
    return pingFrames.comment
  }

  failStream (error: SlotError, frame: StreamErrorFrame): void {
    if (this.sse?.started === true) this.sse.fail(error, frame(error, this.request))
  }

  /** Ends the request's slot life: aborts its waits and releases its slots. */
  end (): void {
    if (this.ended) return
    this.ended = true
    for (const wait of [...this.waits]) wait.abort('SLOT_WAIT_ABORTED', 'the client closed the request while waiting for a slot')
    this.releaseAll()
  }

  releaseAll (): void {
    for (const slot of this.slots) slot.release()
    this.slots.clear()
  }
}

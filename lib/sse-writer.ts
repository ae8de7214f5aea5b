/**
 * The SSE keepalive writer. A streaming request that waits for a slot longer than one ping
 * interval gets its response committed as an event stream on the raw reply (Fastify's reply
 * is hijacked: after the first byte, reply.send() can no longer work), then one keepalive
 * frame per interval. If acquisition fails after that, the error goes into the stream.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { SlotError } from './errors'

const SSE_HEADERS = {
  'content-type': 'text/event-stream',
  'cache-control': 'no-cache',
  // Tells nginx not to buffer the stream, or the pings never reach the client.
  'x-accel-buffering': 'no'
}

export class SseWriter {
  started = false

  /**
   * @param hijack Whether committing hijacks the reply. A stream committed during a
   * preHandler (route `config.slots`) must not be hijacked, or Fastify skips the handler
   * that continues it; the committed headers keep Fastify from sending anything itself.
   */
  constructor (private readonly request: FastifyRequest, private readonly reply: FastifyReply, private readonly hijack: () => boolean) {}

  /** Commits the response (once) and writes `frame`; false when the raw stream can no longer be written. */
  write (frame: string, onError: (err: Error) => void): boolean {
    const raw = this.reply.raw
    if (raw.destroyed || raw.writableEnded) return false
    if (!this.started) this.commit()
    raw.write(frame, err => { if (err != null) onError(err) })
    return true
  }

  /** Writes the error event and ends the response; marks the error as streamed. */
  fail (error: SlotError, frame: string): void {
    error.streamed = true
    const raw = this.reply.raw
    if (!raw.destroyed && !raw.writableEnded) raw.end(frame)
  }

  private commit (): void {
    this.started = true
    this.request.slotStreamStarted = true
    // The route may have committed the stream itself before waiting: only add the frames.
    if (this.reply.raw.headersSent) return
    const headers: Record<string, string | number | string[]> = {}
    for (const [name, value] of Object.entries(this.reply.getHeaders())) {
      if (value !== undefined) headers[name.toLowerCase()] = value
    }
    Object.assign(headers, SSE_HEADERS)
    // Connection-specific headers are forbidden in HTTP/2.
    if (this.request.raw.httpVersionMajor < 2) headers.connection = 'keep-alive'
    delete headers['content-length']
    if (this.hijack()) this.reply.hijack()
    this.reply.raw.writeHead(200, headers)
  }
}

/** The chaos suite's HTTP client: one request per connection, every way it can end told apart. */
import { request as httpRequest } from 'node:http'

/**
 * How a request ended: a complete response; aborted by this client on purpose; a connection
 * error (expected only from a process the suite killed); or no end at all within `hangMs`.
 */
export type Outcome = 'response' | 'client-abort' | 'conn-error' | 'hang'

export interface SendOptions {
  /** Destroy the request this long after sending it (a client that gives up). */
  abortAfterMs?: number
  /** Destroy the request this long after the first `data:` event arrived (mid-stream). */
  abortAfterDataMs?: number
  /** A request still open after this long is a hang: destroyed and reported. */
  hangMs: number
}

export interface Sent {
  outcome: Outcome
  status?: number
  body: string
  error?: string
  start: number
  end: number
  /** When the server got the request (its x-chaos-at header; same clock). */
  arrivedAt?: number
  /** How long the server took to answer (its x-chaos-ms header; not on streams). */
  serverMs?: number
}

export function send (port: number, path: string, options: SendOptions): Promise<Sent> {
  return new Promise(resolve => {
    const start = Date.now()
    let body = ''
    let status: number | undefined
    let serverMs: number | undefined
    let arrivedAt: number | undefined
    let settled = false
    let abortTimer: NodeJS.Timeout | undefined
    const finish = (outcome: Outcome, error?: string): void => {
      if (settled) return
      settled = true
      clearTimeout(abortTimer)
      clearTimeout(hangTimer)
      resolve({ outcome, status, body, error, start, end: Date.now(), arrivedAt, serverMs })
    }
    const req = httpRequest({ host: '127.0.0.1', port, path, method: 'GET', agent: false }, res => {
      status = res.statusCode
      const header = (name: string): number | undefined => {
        const value = res.headers[name]
        return typeof value === 'string' ? Number(value) : undefined
      }
      serverMs = header('x-chaos-ms')
      arrivedAt = header('x-chaos-at')
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        const first = !body.includes('data: ')
        body += chunk
        if (first && options.abortAfterDataMs !== undefined && body.includes('data: ')) {
          clearTimeout(abortTimer)
          abortTimer = setTimeout(abort, options.abortAfterDataMs)
        }
      })
      res.on('end', () => finish('response'))
      res.on('close', () => { if (!res.complete) finish('conn-error', 'the response closed before its end') })
      res.on('error', () => {})
    })
    const abort = (): void => {
      finish('client-abort')
      req.destroy()
    }
    req.on('error', (err: NodeJS.ErrnoException) => finish('conn-error', err.code ?? err.message))
    if (options.abortAfterMs !== undefined) abortTimer = setTimeout(abort, options.abortAfterMs)
    const hangTimer = setTimeout(() => {
      finish('hang')
      req.destroy()
    }, options.hangMs)
    req.end()
  })
}

/** The JSON body of a response, or undefined. */
export function json (sent: Sent): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(sent.body)
    return typeof value === 'object' && value !== null ? value as Record<string, unknown> : undefined
  } catch {
    return undefined
  }
}

/** What an SSE body held: data events, ping frames, the final `done` frame, an error event's code. */
export function sse (body: string): { data: number, pings: number, done: boolean, bypassed: boolean, errorCode?: string } {
  let data = 0
  let pings = 0
  let done = false
  let bypassed = false
  let errorCode: string | undefined
  for (const frame of body.split('\n\n')) {
    if (frame === ': ping') pings++
    else if (frame.startsWith('event: error\n')) {
      const match = /"code":"([A-Z_]+)"/.exec(frame)
      errorCode = match?.[1] ?? 'unknown'
    } else if (frame.startsWith('data: {"done":true')) {
      done = true
      bypassed = frame.includes('"bypassed":true')
    } else if (frame.startsWith('data: ')) data++
  }
  return { data, pings, done, bypassed, errorCode }
}

/** An SSE parser that follows the WHATWG event-stream rules the way browser and SDK clients do. */
export interface SseEvent {
  /** The event type ('message' when the frame names none). */
  event: string
  data: string
}

export interface ParsedStream {
  events: SseEvent[]
  /** Comment lines (`: ...`), which clients ignore. */
  comments: string[]
}

export function parseSse (body: string): ParsedStream {
  const events: SseEvent[] = []
  const comments: string[] = []
  let event = ''
  let data: string[] = []
  for (const line of body.split(/\r\n|\r|\n/)) {
    if (line === '') {
      // Dispatch: an event with no data line is dropped, as the spec says.
      if (data.length > 0) events.push({ event: event === '' ? 'message' : event, data: data.join('\n') })
      event = ''
      data = []
      continue
    }
    if (line.startsWith(':')) {
      comments.push(line.slice(1).trim())
      continue
    }
    const colon = line.indexOf(':')
    const field = colon === -1 ? line : line.slice(0, colon)
    const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '')
    if (field === 'event') event = value
    else if (field === 'data') data.push(value)
  }
  return { events, comments }
}

/**
 * The ideal peer: a counting semaphore in one process, strict FIFO, no network. A release
 * hands its slot straight to the oldest waiter (the holder count never dips), so the hand-off
 * costs one promise resolution.
 */
interface Waiter {
  grant: () => void
  refuse: (reason: unknown) => void
}

class FifoSubject {
  held = 0
  readonly waiters: Waiter[] = []
}

export class FifoSemaphore {
  private readonly subjects = new Map<string, FifoSubject>()

  acquire (subject: string, limit: number, signal?: AbortSignal): Promise<() => void> {
    let s = this.subjects.get(subject)
    if (s === undefined) {
      s = new FifoSubject()
      this.subjects.set(subject, s)
    }
    const state = s
    const release = (): void => this.release(state)
    if (state.held < limit && state.waiters.length === 0) {
      state.held++
      return Promise.resolve(release)
    }
    return new Promise((resolve, reject) => {
      if (signal?.aborted === true) {
        reject(signal.reason)
        return
      }
      const waiter: Waiter = {
        grant: () => {
          signal?.removeEventListener('abort', onAbort)
          resolve(release)
        },
        refuse: reject
      }
      const onAbort = (): void => {
        const i = state.waiters.indexOf(waiter)
        if (i !== -1) state.waiters.splice(i, 1)
        reject(signal?.reason)
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      state.waiters.push(waiter)
    })
  }

  private release (state: FifoSubject): void {
    const next = state.waiters.shift()
    if (next === undefined) state.held--
    else next.grant()
  }
}

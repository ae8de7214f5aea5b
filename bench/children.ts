/**
 * The benchmark's child processes (child.ts), seen from the parent: each scenario starts
 * its children with withChildren, waits for their messages with next(), and can rely on
 * none of them outliving it, however the scenario ends.
 */
import { fork, type ChildProcess } from 'node:child_process'
import type { ChildConfig, ChildMessage } from './common'
import { CHILD } from './paths'

export class Child {
  private readonly process: ChildProcess
  private readonly inbox: ChildMessage[] = []
  private waiter: (() => void) | undefined
  private exitError: Error | undefined
  private gone = false
  readonly exited: Promise<void>

  constructor (config: ChildConfig) {
    this.process = fork(CHILD.script, [JSON.stringify(config)], {
      execArgv: CHILD.execArgv,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc']
    })
    this.process.on('message', message => {
      this.inbox.push(message as ChildMessage)
      this.waiter?.()
    })
    this.exited = new Promise(resolve => {
      this.process.once('exit', code => {
        this.gone = true
        if (code !== 0) this.exitError = new Error(`a ${config.role} child (${'system' in config ? config.system : config.variant}) exited with code ${code}`)
        this.waiter?.()
        resolve()
      })
    })
  }

  /** The next message of this type; messages of other types that came first are dropped. */
  async next<T extends ChildMessage['type']> (type: T): Promise<Extract<ChildMessage, { type: T }>> {
    for (;;) {
      const message = this.inbox.shift()
      if (message?.type === 'error') throw new Error(`child failed: ${message.message}`)
      if (message?.type === type) return message as Extract<ChildMessage, { type: T }>
      if (message !== undefined) continue
      if (this.exitError !== undefined) throw this.exitError
      if (this.gone) throw new Error(`a child exited before sending '${type}'`)
      await new Promise<void>(resolve => { this.waiter = resolve })
      this.waiter = undefined
    }
  }

  send (message: unknown): void {
    this.process.send(message as object)
  }

  kill (): void {
    if (this.process.exitCode === null) this.process.kill('SIGKILL')
  }
}

/** Runs fn with the children; kills any still running however fn ends. */
export async function withChildren<T> (configs: ChildConfig[], fn: (children: Child[]) => Promise<T>): Promise<T> {
  const children = configs.map(c => new Child(c))
  try {
    const result = await fn(children)
    // Let them close their connections; a child that hangs is killed below.
    let timer: NodeJS.Timeout | undefined
    await Promise.race([Promise.all(children.map(c => c.exited)), new Promise(resolve => { timer = setTimeout(resolve, 10_000) })])
    clearTimeout(timer)
    return result
  } finally {
    for (const c of children) c.kill()
  }
}

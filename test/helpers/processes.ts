/** Child processes running test/fixtures apps, killed when the test ends. */
import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { createInterface } from 'node:readline'

interface Teardown { teardown: (fn: () => unknown) => void }

export interface AppProcess {
  child: ChildProcess
  /** The first JSON line the fixture printed (e.g. `{ port }`). */
  hello: Record<string, unknown>
  stderr: () => string
}

export async function startFixture (t: Teardown, fixture: string, env: Record<string, string>): Promise<AppProcess> {
  const child = spawn(process.execPath, [join(__dirname, '..', 'fixtures', 'run-ts.js'), join(__dirname, '..', 'fixtures', fixture)], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stderr = ''
  child.stderr?.on('data', chunk => { stderr += String(chunk) })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  const lines = createInterface({ input: child.stdout! })
  const hello = await new Promise<Record<string, unknown>>((resolve, reject) => {
    lines.once('line', line => resolve(JSON.parse(line)))
    child.once('exit', code => reject(new Error(`fixture ${fixture} exited with ${code}: ${stderr}`)))
  })
  return { child, hello, stderr: () => stderr }
}

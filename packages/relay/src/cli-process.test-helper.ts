// The relay CLI as a child process for tests: spawned with `node`, ready once it printed its
// listening line, stopped with SIGTERM. Every wait is bounded; only this child is signalled.
import { spawn } from 'node:child_process'

export const CLI_READY_MS_MAX = 20_000

export interface CliProcess {
  /** `http://<host>:<port>` from the listening line. */
  readonly httpUrl: string
  /** `ws://<host>:<port>/sync` */
  readonly wsUrl: string
  /** What the process wrote to stderr so far. */
  log(): string
  /** SIGTERM, then resolves with the exit code. */
  stop(): Promise<number | null>
}

/** Runs `node <script> ...args` and resolves once it listens; rejects if it exits first. */
export async function startCliProcess(
  script: string,
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<CliProcess> {
  const child = spawn(process.execPath, [script, ...args], {
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let err = ''
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()))
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)))
  const httpUrl = await new Promise<string>((ready, fail) => {
    let out = ''
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      fail(new Error(`relay did not start in ${CLI_READY_MS_MAX} ms: ${err}`))
    }, CLI_READY_MS_MAX)
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      const m = /ledgerline relay listening on (http:\/\/\S+)/.exec(out)
      if (m !== null) {
        clearTimeout(timer)
        ready(m[1] as string)
      }
    })
    void exited.then((code) => {
      clearTimeout(timer)
      fail(new Error(`relay exited ${String(code)} before it was ready: ${err}`))
    })
  })
  return {
    httpUrl,
    wsUrl: `${httpUrl.replace(/^http/, 'ws')}/sync`,
    log: () => err,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      return await exited
    },
  }
}

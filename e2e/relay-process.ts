/**
 * Starts and stops the relay CLI as a child process for the browser tests: the same command
 * as `npm start`, on a free port, with a fresh data directory and a fixed development secret
 * (so tokens stay valid across a restart, as with a configured production relay). With
 * `upstream`, the same command as `npm run start:hub` starts for the store hub: `--upstream`
 * head office, its hub token from head office's development issuer (`demo/scripts/hub-token.mjs`
 * as `--upstream-token-command`), the same secret to check the registers' tokens offline.
 *
 * Invariants:
 * 1. Only the process this module started is ever signalled, by its pid.
 * 2. `start` resolves only after the relay printed its "listening" line, with the real port.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

export const ROOT = fileURLToPath(new URL('..', import.meta.url))
const CLI = 'packages/relay/dist/cli.js'
const STATIC = 'demo/dist'
const SCHEMA = 'demo/src/schema.ts'
const READY_MS_MAX = 20_000
const HUB_TOKEN = 'demo/scripts/hub-token.mjs'

export interface RelayProcess {
  readonly port: number
  /** `http://localhost:<port>`: a secure context, so the service worker registers. */
  readonly baseURL: string
  readonly dataDir: string
  readonly pid: number
  /** What the relay wrote to stderr (for failure messages). */
  log(): string
  /** Kills the process with `signal` and waits for it to exit. */
  kill(signal: NodeJS.Signals): Promise<void>
}

export async function startRelay(options: {
  dataDir: string
  port?: number
  secret: string
  /** Browser Origins allowed besides same-origin pages (a store hub's page, for head office). */
  allowedOrigins?: readonly string[]
  /** Run as a store hub in front of head office's `httpURL` (`http://127.0.0.1:<port>`). */
  upstream?: { readonly httpURL: string }
}): Promise<RelayProcess> {
  for (const file of [CLI, `${STATIC}/index.html`, SCHEMA, HUB_TOKEN]) {
    if (!existsSync(`${ROOT}${file}`)) {
      throw new Error(`${file} is missing: run \`npm run build\` before \`npm run e2e\``)
    }
  }
  const args = [CLI, '--port', String(options.port ?? 0), '--data', options.dataDir, '--dev']
  args.push('--static', STATIC, '--schema', SCHEMA)
  if (options.allowedOrigins !== undefined) {
    args.push('--allowed-origins', options.allowedOrigins.join(','))
  }
  if (options.upstream !== undefined) {
    const hq = new URL(options.upstream.httpURL)
    args.push('--upstream', `ws://${hq.host}/sync`)
    const command = `"${process.execPath}" ${HUB_TOKEN} ${hq.origin}`
    args.push('--upstream-token-command', command)
  }
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, LEDGERLINE_SECRET: options.secret },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stderr = ''
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-8000)
  })
  const port = await new Promise<number>((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`relay did not start within ${READY_MS_MAX} ms:\n${out}\n${stderr}`))
    }, READY_MS_MAX)
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      const m = /ledgerline relay listening on http:\/\/[^\s:]+:(\d+)/.exec(out)
      if (m !== null) {
        clearTimeout(timer)
        resolve(Number(m[1]))
      }
    })
    child.on('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`relay exited with ${code} before it was ready:\n${out}\n${stderr}`))
    })
  })
  return {
    port,
    baseURL: `http://localhost:${port}`,
    dataDir: options.dataDir,
    pid: child.pid ?? -1,
    log: () => stderr,
    kill: (signal) => killChild(child, signal),
  }
}

function killChild(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    child.once('exit', () => resolve())
    child.kill(signal)
  })
}

// Goal: issue 13 case 9 — configuration mistakes fail at start with a clear message (the CLI
// exits with code 2) instead of stalling every client later: an `--allowed-origins` entry without
// a scheme (on 3a8bfae dropped silently, so every browser then gets 403), an HS256 secret shorter
// than 32 bytes (a 5-byte one is accepted), and limits that contradict the protocol's. (A relay
// `pushEntriesMax` below the client's batch size is the client's half: the relay advertises its
// limits in `welcome`, see packages/client/src/welcome-limits.test.ts.)
// Method: the CLI spawned on a temp data directory (it must exit, not print "listening"), and
// `createRelay` directly (it must reject with `RelayError` kind `config`).
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { FRAME_BYTES_MAX, PAGE_ENTRIES_MAX, PUSH_ENTRIES_MAX } from '@ledgerline/protocol'
import { SECRET } from './edges.test-helper.ts'
import { createRelay, RelayError } from './index.ts'
import type { RelayLimits, RelayOptions } from './index.ts'

const CLI = resolve(dirname(fileURLToPath(import.meta.url)), '../dist/cli.js')
const dir = mkdtempSync(join(tmpdir(), 'll-config-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('issue 13 case 9: config checked at start', () => {
  it('exits 2 naming an --allowed-origins entry without a scheme', async () => {
    const run = await runCli(['--allowed-origins', 'https://ok.example,pos.example.com'], SECRET)
    expect(run.outcome).toBe('exit 2')
    expect(run.stderr).toContain('pos.example.com')
  })

  it('exits 2 for an HS256 secret under 32 bytes', async () => {
    const run = await runCli([], 'abcde')
    expect(run.outcome).toBe('exit 2')
    expect(run.stderr).toMatch(/secret/i)
    expect(run.stderr).toContain('32')
  })

  it('refuses the same mistakes in createRelay with RelayError kind config', async () => {
    expect(await startFails({ allowedOrigins: ['pos.example.com'] })).toBe('config')
    expect(await startFails({ auth: { secret: 'abcde' } })).toBe('config')
  })

  it.each<[string, Partial<RelayLimits>]>([
    ['pushEntriesMax 0', { pushEntriesMax: 0 }],
    ['pushEntriesMax over PUSH_ENTRIES_MAX', { pushEntriesMax: PUSH_ENTRIES_MAX + 1 }],
    ['pageEntriesMax over PAGE_ENTRIES_MAX', { pageEntriesMax: PAGE_ENTRIES_MAX + 1 }],
    ['pageBytesMax over FRAME_BYTES_MAX', { pageBytesMax: 2 * FRAME_BYTES_MAX }],
  ])('refuses limits that contradict the protocol: %s', async (_name, limits) => {
    expect(await startFails({ limits })).toBe('config')
  })
})

/** Starts a relay with `options` over a working base; the RelayError kind, or 'started'. */
async function startFails(options: Partial<RelayOptions>): Promise<string> {
  const dataDir = mkdtempSync(join(dir, 'relay-'))
  try {
    const relay = await createRelay({
      port: 0,
      dataDir,
      auth: { secret: SECRET },
      logLevel: 'silent',
      ...options,
    })
    await relay.close()
    return 'started'
  } catch (error) {
    return error instanceof RelayError ? error.kind : `threw ${String(error)}`
  } finally {
    rmSync(dataDir, { recursive: true, force: true })
  }
}

/** Runs the CLI until it exits or says it listens (then it is stopped): 'exit N' or 'listening'. */
function runCli(args: string[], secret: string): Promise<{ outcome: string; stderr: string }> {
  const dataDir = mkdtempSync(join(dir, 'cli-'))
  const child = spawn(process.execPath, [CLI, '--port', '0', '--data', dataDir, ...args], {
    env: { PATH: process.env.PATH ?? '', LEDGERLINE_SECRET: secret },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()))
  return new Promise((resolve) => {
    const timer = setTimeout(() => stop('no answer in 15 s'), 15_000)
    const stop = (outcome: string) => {
      clearTimeout(timer)
      if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL')
      resolve({ outcome, stderr })
    }
    child.stdout?.on('data', (d: Buffer) => {
      if (d.toString().includes('listening')) stop('listening')
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      resolve({ outcome: `exit ${String(code)}`, stderr })
    })
  })
}

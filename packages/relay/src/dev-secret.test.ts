// Goal: a `--dev` relay without a key keeps its token secret in `<data>/dev-secret` (mode 0600),
// so a token from `/dev/token` still opens a session after the relay restarts on the same
// directory, and a relay on another directory refuses it; a secret file others may read, or one
// that holds no secret, stops the relay with a `config` error instead of being replaced.
// Method: loadDevSecret directly for the file's rules; two real CLI processes one after the
// other on one data directory (and a third on another), a wire client saying hello with the
// first one's token.
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import type { CliProcess } from './cli-process.test-helper.ts'
import { startCliProcess } from './cli-process.test-helper.ts'
import { DEV_SECRET_FILE, loadDevSecret } from './dev-secret.ts'
import { openClient } from './wire-client.test-helper.ts'

const CLI = resolve(dirname(fileURLToPath(import.meta.url)), '../dist/cli.js')
const dir = mkdtempSync(join(tmpdir(), 'll-dev-secret-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('loadDevSecret', () => {
  it('makes the secret once, mode 0600, and reads it back after', () => {
    const data = join(dir, 'unit')
    const first = loadDevSecret(data)
    expect(first.created).toBe(true)
    expect(first.secret).toMatch(/^[A-Za-z0-9_-]{43}$/)
    const file = join(data, DEV_SECRET_FILE)
    expect(statSync(file).mode & 0o777).toBe(0o600)
    expect(readFileSync(file, 'utf8').trim()).toBe(first.secret)
    expect(loadDevSecret(data)).toEqual({ secret: first.secret, created: false })
  })

  it('refuses a file others may read, or one without a secret, and leaves it as it is', () => {
    const data = join(dir, 'unit-bad')
    const { secret } = loadDevSecret(data)
    const file = join(data, DEV_SECRET_FILE)
    chmodSync(file, 0o644)
    expect(() => loadDevSecret(data)).toThrow(
      expect.objectContaining({
        name: 'RelayError',
        kind: 'config',
        message: expect.stringContaining(`${file} may be read by others (mode 644)`),
      }),
    )
    chmodSync(file, 0o600)
    expect(loadDevSecret(data).secret).toBe(secret)
    writeFileSync(file, 'not a secret\n', { mode: 0o600 })
    expect(() => loadDevSecret(data)).toThrow(
      expect.objectContaining({ kind: 'config', message: expect.stringContaining('dev secret') }),
    )
    expect(readFileSync(file, 'utf8')).toBe('not a secret\n')
  })
})

describe('a --dev relay restarted on its data directory', () => {
  it('accepts the tokens it handed out before the restart', async () => {
    const data = join(dir, 'restart')
    const first = await startDevRelay(data)
    let token: string
    try {
      const res = await fetch(`${first.httpUrl}/dev/token?tenant=acme&sub=till-1`)
      token = ((await res.json()) as { token: string }).token
      expect(await helloType(first.wsUrl, token)).toBe('welcome')
    } finally {
      expect(await first.stop()).toBe(0)
    }
    const second = await startDevRelay(data)
    try {
      expect(await helloType(second.wsUrl, token)).toBe('welcome')
      expect(second.log()).toContain(`uses the token secret in ${join(data, DEV_SECRET_FILE)}`)
    } finally {
      expect(await second.stop()).toBe(0)
    }
    // The test can fail: a relay with another directory has another secret.
    const other = await startDevRelay(join(dir, 'other'))
    try {
      expect(await helloType(other.wsUrl, token)).toBe('error')
    } finally {
      expect(await other.stop()).toBe(0)
    }
  })
})

async function helloType(url: string, token: string): Promise<string> {
  const client = await openClient(url)
  try {
    return (await client.hello(token)).type
  } finally {
    client.close()
  }
}

/** A real CLI process with --dev and no key. */
async function startDevRelay(data: string): Promise<CliProcess> {
  const env = { ...process.env }
  delete env.LEDGERLINE_SECRET
  const args = ['--port', '0', '--data', data, '--dev', '--log-level', 'error']
  return await startCliProcess(CLI, args, { env })
}

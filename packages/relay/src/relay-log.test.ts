// Goal: issue 21 — a relay run as a service writes structured JSON logs only, one line per event
// with stable field names an operator can alert on: start-up (version, store, partitions, limits,
// origins), ready, connections opened and closed (tenant, sub, clientId, reason), shutdown begun
// and done; `--version` prints the package's version; `--log-format pretty` is for a terminal.
// Method: the built CLI as a child process (as systemd runs it), a dev relay at `info`, one
// client that says hello and pushes, one that is refused; then SIGTERM. Every line of stdout and
// stderr must parse as JSON (on 5705503 the `--dev` warning is plain text, printed twice).
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { openClient } from './wire-client.test-helper.ts'

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url))
const VERSION = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string
  }
).version
const READY_MS_MAX = 20_000
const dir = mkdtempSync(join(tmpdir(), 'll-relay-log-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

interface LogLine {
  readonly level: number
  readonly time: number
  readonly event?: string
  readonly msg?: string
  readonly [field: string]: unknown
}

describe('the relay CLI logs JSON lines only', () => {
  it('writes start-up, ready, connection, and shutdown events, each line JSON', async () => {
    const run = await runRelay([
      '--dev',
      '--log-level',
      'info',
      '--allowed-origins',
      'https://pos.example',
    ])
    const res = await fetch(`${run.httpUrl}/dev/token?tenant=acme&sub=till-1`)
    const { token } = (await res.json()) as { token: string }
    const till = await openClient(run.wsUrl)
    expect(await till.hello(token)).toMatchObject({ type: 'welcome' })
    till.send({ type: 'push', batch: 1, entries: [till.entry('order/o1', 'order.line', {})] })
    await till.next((m) => m.type === 'ack')
    till.close()
    await till.closed
    const stranger = await openClient(run.wsUrl)
    expect(await stranger.hello('not-a-token')).toMatchObject({
      type: 'error',
      kind: 'unauthorized',
    })
    await stranger.closed
    const { code, stdout, stderr } = await run.stop()
    expect(code).toBe(0)

    const lines = parseLines(stdout, 'stdout').concat(parseLines(stderr, 'stderr'))
    const events = lines.map((l) => l.event)
    for (const line of lines) {
      expect(typeof line.level).toBe('number')
      expect(typeof line.time).toBe('number')
      expect({ event: typeof line.event, line }).toMatchObject({ event: 'string' })
    }
    const start = only(lines, 'start')
    expect(start).toMatchObject({
      version: VERSION,
      store: 'sqlite',
      partitions: 16,
      allowedOrigins: ['https://pos.example'],
      dev: true,
    })
    expect(start.limits).toMatchObject({ connectionsMax: expect.any(Number) })
    expect(only(lines, 'ready')).toMatchObject({
      version: VERSION,
      store: 'sqlite',
      url: expect.stringMatching(/^ws:\/\/127\.0\.0\.1:\d+\/sync$/),
      log: { id: expect.any(String), generation: 1 },
    })
    // The warning about --dev comes once, as JSON (it came twice, once plain, on 5705503).
    expect(lines.filter((l) => l.event === 'dev_mode')).toHaveLength(1)
    expect(only(lines, 'connection_opened')).toMatchObject({
      tenant: 'acme',
      sub: 'till-1',
      clientId: till.clientId,
    })
    const closed = lines.filter((l) => l.event === 'connection_closed')
    expect(closed).toContainEqual(
      expect.objectContaining({
        tenant: 'acme',
        sub: 'till-1',
        clientId: till.clientId,
        reason: 'client_closed',
      }),
    )
    expect(closed).toContainEqual(
      expect.objectContaining({ reason: 'unauthorized', clientId: stranger.clientId }),
    )
    expect(events.indexOf('shutdown_begun')).toBeGreaterThan(events.indexOf('ready'))
    expect(events.indexOf('shutdown_done')).toBeGreaterThan(events.indexOf('shutdown_begun'))
  }, 60_000)

  it('exits 2 with a JSON line for a configuration mistake', () => {
    const out = spawnSync(process.execPath, [CLI, '--port', 'http'], {
      encoding: 'utf8',
      timeout: 20_000,
    })
    expect(out.status).toBe(2)
    const [line] = parseLines(out.stderr, 'stderr')
    expect(line).toMatchObject({ event: 'config_error', msg: expect.stringContaining('--port') })
  })

  it('prints its version with --version', () => {
    const out = spawnSync(process.execPath, [CLI, '--version'], {
      encoding: 'utf8',
      timeout: 20_000,
    })
    expect(out.status).toBe(0)
    expect(out.stdout.trim()).toBe(VERSION)
  })

  it('formats the same events for a terminal with --log-format pretty', async () => {
    const run = await runRelay(['--dev', '--log-level', 'info', '--log-format', 'pretty'])
    const { code, stdout, stderr } = await run.stop()
    expect(code).toBe(0)
    // One line per event, not JSON: time, level, event, message, then the fields.
    expect(stdout).toMatch(
      /^\d\d:\d\d:\d\d\.\d{3} INFO  ready .*url=ws:\/\/127\.0\.0\.1:\d+\/sync/m,
    )
    expect(stderr).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO  start .*version=/m)
    expect(stderr).toMatch(/^\d\d:\d\d:\d\d\.\d{3} WARN  dev_mode /m)
    for (const line of `${stdout}${stderr}`.split('\n').filter((l) => l !== '')) {
      expect(() => JSON.parse(line)).toThrow(SyntaxError)
    }
  }, 60_000)
})

function parseLines(text: string, stream: string): LogLine[] {
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      try {
        return JSON.parse(l) as LogLine
      } catch {
        throw new Error(`a ${stream} line is not JSON: ${l}`)
      }
    })
}

function only(lines: readonly LogLine[], event: string): LogLine {
  const found = lines.filter((l) => l.event === event)
  expect(found, `one '${event}' line`).toHaveLength(1)
  return found[0] as LogLine
}

let runs = 0

/** The CLI on a fresh data directory; ready once its ready line is out (any format). */
async function runRelay(args: readonly string[]) {
  const data = join(dir, `data-${++runs}`)
  const child = spawn(process.execPath, [CLI, '--port', '0', '--data', data, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)))
  const httpUrl = await new Promise<string>((ready, fail) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      fail(new Error(`relay did not start in ${READY_MS_MAX} ms: ${stderr}`))
    }, READY_MS_MAX)
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString()
      const m = /listening on (http:\/\/[^\s"]+)/.exec(stdout)
      if (m !== null) {
        clearTimeout(timer)
        ready(m[1] as string)
      }
    })
    void exited.then((code) => {
      clearTimeout(timer)
      fail(new Error(`relay exited ${String(code)} before it was ready: ${stderr}`))
    })
  })
  return {
    httpUrl,
    wsUrl: `${httpUrl.replace(/^http/, 'ws')}/sync`,
    async stop() {
      child.kill('SIGTERM')
      const code = await exited
      return { code, stdout, stderr }
    },
  }
}

// Goal: the CLI's contract: every option documented in --help, flags over environment variables,
// a clear error for a bad schema module, and the `bump-generation` command.
// Method: parseCliArgs and loadSchemaModule directly; one spawned CLI for the exit path.
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { HELP, loadSchemaModule, parseCliArgs } from './cli.ts'
import { RelayError } from './relay-error.ts'

const CLI = resolve(dirname(fileURLToPath(import.meta.url)), '../dist/cli.js')
const dir = mkdtempSync(join(tmpdir(), 'll-cli-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('ledgerline-relay CLI', () => {
  it('documents every flag and its variable in --help', () => {
    // Method: each flag parseCliArgs accepts appears in HELP with its variable.
    const flags: [string, string][] = [
      ['--host', 'LEDGERLINE_HOST'],
      ['--port', 'LEDGERLINE_PORT'],
      ['--data', 'LEDGERLINE_DATA'],
      ['--schema', 'LEDGERLINE_SCHEMA'],
      ['--partitions', 'LEDGERLINE_PARTITIONS'],
      ['--store', 'LEDGERLINE_STORE'],
      ['--database-url', 'LEDGERLINE_DATABASE_URL'],
      ['--secret', 'LEDGERLINE_SECRET'],
      ['--public-key-file', 'LEDGERLINE_PUBLIC_KEY_FILE'],
      ['--jwks-file', 'LEDGERLINE_JWKS_FILE'],
      ['--issuer', 'LEDGERLINE_ISSUER'],
      ['--audience', 'LEDGERLINE_AUDIENCE'],
      ['--allowed-origins', 'LEDGERLINE_ALLOWED_ORIGINS'],
      ['--static', 'LEDGERLINE_STATIC'],
      ['--dev', 'LEDGERLINE_DEV'],
      ['--log-level', 'LEDGERLINE_LOG_LEVEL'],
      ['--log-format', 'LEDGERLINE_LOG_FORMAT'],
      ['--version', ''],
      ['--help', ''],
    ]
    for (const [flag, variable] of flags) {
      expect(HELP).toContain(flag)
      expect(HELP).toContain(variable)
    }
    const out = spawnSync(process.execPath, [CLI, '--help'], { encoding: 'utf8', timeout: 20_000 })
    expect(out.status).toBe(0)
    expect(out.stdout).toBe(HELP)
  })

  it('reads flags and variables, a flag winning', () => {
    const config = parseCliArgs(
      ['--port', '0', '--allowed-origins', 'https://a.example, https://b.example'],
      {
        LEDGERLINE_PORT: '9999',
        LEDGERLINE_DATA: '/srv/data',
        LEDGERLINE_DEV: '1',
        LEDGERLINE_SECRET: 's3cret',
      },
    )
    expect(config.relay).toMatchObject({
      port: 0,
      dataDir: '/srv/data',
      dev: true,
      allowedOrigins: ['https://a.example', 'https://b.example'],
      auth: { secret: 's3cret' },
      logLevel: 'info',
    })
    expect(config.store).toBe('sqlite')
    expect(() => parseCliArgs(['--port', 'http'], {})).toThrow(RelayError)
    expect(() => parseCliArgs(['--nope'], {})).toThrow(RelayError)
    expect(() => parseCliArgs(['--store', 'mongo'], {})).toThrow(
      '--store must be sqlite or postgres',
    )
  })

  it('takes one upstream URL, or a list for a backup hub (the primary hub, then head office)', () => {
    const one = parseCliArgs(['--upstream', 'ws://hq/sync'], { LEDGERLINE_UPSTREAM_TOKEN: 't' })
    expect(one.relay.upstream?.url).toBe('ws://hq/sync')
    const list = parseCliArgs(['--upstream', 'ws://hub-1/sync, ws://hq/sync'], {
      LEDGERLINE_UPSTREAM_TOKEN: 't',
    })
    expect(list.relay.upstream?.url).toEqual(['ws://hub-1/sync', 'ws://hq/sync'])
    expect(() => parseCliArgs(['--upstream', ','], { LEDGERLINE_UPSTREAM_TOKEN: 't' })).toThrow(
      RelayError,
    )
  })

  it('loads a schema module by path and refuses one without a schema', async () => {
    // Method: a module that exports something else, and one that does not exist.
    writeFileSync(join(dir, 'not-a-schema.mjs'), 'export default { types: [] }\n')
    const bad = await loadSchemaModule('./not-a-schema.mjs', dir).catch((e: unknown) => e)
    expect(bad).toBeInstanceOf(RelayError)
    expect((bad as RelayError).message).toContain('must default-export a schema')
    const missing = await loadSchemaModule('./missing.mjs', dir).catch((e: unknown) => e)
    expect((missing as RelayError).kind).toBe('schema_module')
  })

  it('exits 2 with a clear message for a bad schema module', () => {
    writeFileSync(join(dir, 'empty.mjs'), 'export const nothing = 1\n')
    const schema = spawnSync(
      process.execPath,
      [CLI, '--port', '0', '--data', join(dir, 'data'), '--dev', '--schema', './empty.mjs'],
      { cwd: dir, encoding: 'utf8', timeout: 20_000 },
    )
    expect(schema.status).toBe(2)
    expect(schema.stderr).toContain('schema module ./empty.mjs must default-export a schema')
    expect(schema.stdout).toBe('')
  })

  it('refuses a second relay on the same data directory, and restarts after a SIGKILL', async () => {
    // Goal: issue 13 case 16: one relay per data directory, and a crash never blocks a restart.
    // Method: two real CLI processes on one --data: the second exits with code 2 and a message
    // naming the directory and the first one's pid; the first is SIGKILLed (no cleanup runs)
    // and a new relay on the same directory starts.
    const data = join(dir, 'locked-data')
    const first = await startCli(data)
    try {
      const second = spawnSync(process.execPath, [CLI, ...cliArgs(data)], {
        encoding: 'utf8',
        timeout: 20_000,
      })
      expect(second.status).toBe(2)
      expect(second.stderr).toContain(data)
      expect(second.stderr).toContain(`pid ${first.pid}`)
    } finally {
      first.kill('SIGKILL')
      await new Promise((done) => first.once('exit', done))
    }
    const again = await startCli(data)
    again.kill('SIGTERM')
    expect(await new Promise((done) => again.once('exit', (code) => done(code)))).toBe(0)
  })

  it('bump-generation refuses a directory without a log, and one a relay runs on', async () => {
    // Goal: an operator's mistake after a restore is told, not papered over: no log is made
    // where none was, and a running relay's log is not changed under it (exit 2 both times).
    const empty = join(dir, 'no-log')
    mkdirSync(empty)
    const none = spawnSync(process.execPath, [CLI, 'bump-generation', '--data', empty], {
      encoding: 'utf8',
      timeout: 20_000,
    })
    expect(none.status).toBe(2)
    expect(none.stderr).toContain('no Ledgerline log')
    expect(existsSync(join(empty, 'log.sqlite'))).toBe(false)

    const data = join(dir, 'bump-running')
    const relay = await startCli(data)
    try {
      const busy = spawnSync(process.execPath, [CLI, 'bump-generation', '--data', data], {
        encoding: 'utf8',
        timeout: 20_000,
      })
      expect(busy.status).toBe(2)
      expect(busy.stderr).toContain(`pid ${relay.pid}`)
    } finally {
      relay.kill('SIGKILL')
      await new Promise((done) => relay.once('exit', done))
    }
  })

  it('bump-generation raises the generation of a stopped relay’s log, once per run', async () => {
    const data = join(dir, 'bump')
    const relay = await startCli(data)
    relay.kill('SIGTERM')
    await new Promise((done) => relay.once('exit', done))
    const generations = [1, 2].map(() => {
      const run = spawnSync(process.execPath, [CLI, 'bump-generation', '--data', data], {
        encoding: 'utf8',
        timeout: 20_000,
      })
      expect(`${run.status} ${run.stderr}`).toBe('0 ')
      return /generation (\d+)/.exec(run.stdout)?.[1]
    })
    expect(generations).toEqual(['2', '3'])
  })
})

function cliArgs(data: string): string[] {
  return ['--port', '0', '--data', data, '--secret', 'cli-test-secret-cli-test-secret-0123']
}

/** Starts the CLI on `data` and resolves once it printed its listening line. */
async function startCli(data: string) {
  const child = spawn(process.execPath, [CLI, ...cliArgs(data)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()))
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`relay did not start: ${err}`)), 20_000)
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      if (out.includes('listening on')) {
        clearTimeout(timer)
        resolve()
      }
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`relay exited ${String(code)}: ${err}`))
    })
  })
  return child
}

// Goal: `ledgerline-relay bump-generation` raises a log's generation, as an operator runs it
// after restoring a backup (issue 12 case 4), on SQLite and PostgreSQL; it refuses to run beside
// a relay on the same data directory and never makes a log where there is none.
// Method: the built CLI as a child process (as an operator runs it) on logs made by the stores;
// the identity is read back through the store.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { createPostgresFixture } from '@ledgerline/testkit'
import { createPostgresStore } from './postgres-store.ts'
import { createRelay } from './relay.ts'
import { createSqliteStore, SQLITE_LOG_FILE } from './sqlite-store.ts'

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url))
const dirs: string[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

function cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const out = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    timeout: 30_000,
    env: { PATH: process.env.PATH ?? '' },
  })
  return { status: out.status, stdout: out.stdout, stderr: out.stderr }
}

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'll-cli-admin-'))
  dirs.push(dir)
  return dir
}

describe('ledgerline-relay bump-generation on SQLite', () => {
  it('raises the generation of the log in --data, keeps its id, and says so', async () => {
    const dir = tempDir()
    const file = join(dir, SQLITE_LOG_FILE)
    const store = await createSqliteStore({ file })
    const before = await store.identity()
    await store.close()
    const run = cli('bump-generation', '--data', dir)
    expect(run.stderr).toBe('')
    expect(run.status).toBe(0)
    expect(run.stdout).toContain(`${before.id} is now at generation 2`)
    expect(cli('bump-generation', '--data', dir).status).toBe(0)
    const after = await createSqliteStore({ file })
    expect(await after.identity()).toEqual({ id: before.id, generation: 3 })
    await after.close()
  })

  it('exits 2 beside a relay on the directory, on a directory without a log, and without --data', async () => {
    const dir = tempDir()
    const relay = await createRelay({
      port: 0,
      dataDir: dir,
      auth: { secret: 'cli-admin-secret-0123456789abcdef-0123' },
      logLevel: 'silent',
    })
    try {
      const before = await relay.store.identity()
      const locked = cli('bump-generation', '--data', dir)
      expect(locked.status).toBe(2)
      expect(locked.stderr).toContain('in use by another relay')
      expect(await relay.store.identity()).toEqual(before)
    } finally {
      await relay.close()
    }
    const empty = tempDir()
    const missing = cli('bump-generation', '--data', empty)
    expect(missing.status).toBe(2)
    expect(missing.stderr).toContain('no Ledgerline log')
    expect(cli('bump-generation').status).toBe(2)
    expect(cli('bump-generation', '--data', empty, '--bogus').status).toBe(2)
  })
})

const postgres = createPostgresFixture('bump')
afterAll(() => postgres.stop())

describe.skipIf(postgres.skipReason !== undefined)(
  `ledgerline-relay bump-generation on PostgreSQL${postgres.skipNote}`,
  () => {
    it('raises the generation through --database-url while a store stays open', async () => {
      const url = await postgres.database('bump')
      const store = await createPostgresStore({ url })
      try {
        const before = await store.identity()
        const run = cli('bump-generation', '--store', 'postgres', '--database-url', url)
        expect(run.stderr).toBe('')
        expect(run.status).toBe(0)
        // A running relay's store sees it at the next read (it reads at every hello).
        expect(await store.identity()).toEqual({ id: before.id, generation: 2 })
      } finally {
        await store.close()
      }
      expect(cli('bump-generation', '--store', 'postgres').status).toBe(2)
    })
  },
)

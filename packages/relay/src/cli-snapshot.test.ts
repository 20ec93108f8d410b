// Goal: `ledgerline-relay snapshot` snapshots a log written before ledger snapshots (every
// ledger entity at least LEDGER_SNAPSHOT_ENTRIES_EVERY versions past its snapshot), writes
// nothing the second time, and exits 2 without a log or a schema.
// Method: the built CLI as a child process on a SQLite log made by the store without the
// policy; the snapshot is read back through the store.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, expect, it } from 'vitest'
import { foldKey } from '@ledgerline/core'
import { CONTRACT_SCHEMA } from '@ledgerline/testkit'
import { LEDGER_SNAPSHOT_ENTRIES_EVERY } from './limits.ts'
import { createSqliteStore, SQLITE_LOG_FILE } from './sqlite-store.ts'

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url))
const TESTKIT = fileURLToPath(new URL('../../testkit/dist/index.js', import.meta.url))
const dirs: string[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

function cli(...args: string[]) {
  const out = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    timeout: 30_000,
    env: { PATH: process.env.PATH ?? '' },
  })
  return { status: out.status, stdout: out.stdout, stderr: out.stderr }
}

it('snapshots an old log once, and refuses without a log or a schema', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'll-cli-snap-'))
  dirs.push(dir)
  const schemaFile = join(dir, 'schema.mjs')
  writeFileSync(
    schemaFile,
    `export { CONTRACT_SCHEMA as default } from ${JSON.stringify(TESTKIT)}\n`,
  )
  const file = join(dir, SQLITE_LOG_FILE)
  const store = await createSqliteStore({ file, schema: CONTRACT_SCHEMA })
  const c = 'e'.repeat(32)
  const versions = LEDGER_SNAPSHOT_ENTRIES_EVERY + 3
  for (let i = 1; i <= versions + 2; i++) {
    const at = 1_700_000_000_000 + i
    const entity = i <= versions ? 'stock/a' : 'stock/b'
    await store.append('acme', [
      {
        entry: {
          id: `${c}-${i}`,
          tenant: 'acme',
          entity,
          kind: 'stock.moved',
          data: { qty: 2 },
          intent: 'fact',
          clientId: c,
          clientSeq: i,
          hlc: `${String(at).padStart(15, '0')}:00000:${c}`,
          occurredAt: at,
        },
      },
    ])
  }
  await store.close()
  const first = cli('snapshot', '--data', dir, '--schema', schemaFile)
  expect(first.stderr).toBe('')
  expect(first.status).toBe(0)
  expect(first.stdout).toContain('written 1,')
  expect(cli('snapshot', '--data', dir, '--schema', schemaFile).stdout).toContain('written 0,')
  const reopened = await createSqliteStore({ file, schema: CONTRACT_SCHEMA })
  const key = foldKey(CONTRACT_SCHEMA.typeOf('stock/a'))
  expect(await reopened.snapshot('acme', 'stock/a', key)).toMatchObject({
    version: versions,
    state: { onHand: 2 * versions },
  })
  expect(await reopened.snapshot('acme', 'stock/b', key)).toBeUndefined()
  await reopened.close()
  expect(cli('snapshot', '--data', join(dir, 'none'), '--schema', schemaFile).status).toBe(2)
  expect(cli('snapshot', '--data', dir).status).toBe(2)
})

// Goal: a SQLite log written in layout 5 (the layout before ledger snapshots) opens in this
// build: migration 6 adds the snapshot table, every entry reads as before, and snapshots are
// kept and used. Method: write a log, take it back to exactly layout 5 (drop the table, set
// user_version 5), reopen, compare reads, snapshot, reopen again and fold from it.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterEach, expect, it } from 'vitest'
import { foldKey } from '@ledgerline/core'
import type { StoredEntry } from '@ledgerline/core'
import type { LogStore } from '@ledgerline/log'
import { CONTRACT_SCHEMA } from '@ledgerline/testkit'
import { SQLITE_SCHEMA_VERSION } from './sqlite-migrations.ts'
import { createSqliteStore } from './sqlite-store.ts'

const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

it('migrates a layout-5 log to layout 6 and keeps and uses snapshots there', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'll-snap-'))
  dirs.push(dir)
  const file = join(dir, 'log.sqlite')
  const first = await createSqliteStore({ file, schema: CONTRACT_SCHEMA, partitions: 4 })
  const id = '0'.repeat(31) + '1'
  for (let seq = 1; seq <= 5; seq++) {
    const at = 1_700_000_000_000 + seq
    await first.append('acme', [
      {
        entry: {
          id: `${id}-${seq}`,
          tenant: 'acme',
          entity: 'stock/a',
          kind: 'stock.moved',
          data: { qty: 1 },
          intent: 'fact',
          clientId: id,
          clientSeq: seq,
          hlc: `${String(at).padStart(15, '0')}:00000:${id}`,
          occurredAt: at,
        },
      },
    ])
  }
  const before = await readAll(first, 'acme')
  await first.close()
  const db = new Database(file)
  // As layout 5 was: no snapshots, nor retention marks (migration 7) and kept rows (8).
  db.exec(
    'DROP TABLE ledger_snapshots; DROP TABLE retention_entities; DROP TABLE retention_partitions;' +
      ' DROP TABLE retention_dropped',
  )
  db.pragma('user_version = 5')
  db.close()

  const migrated = await createSqliteStore({ file, schema: CONTRACT_SCHEMA })
  const check = new Database(file, { readonly: true })
  expect(check.pragma('user_version', { simple: true })).toBe(SQLITE_SCHEMA_VERSION)
  check.close()
  expect(await readAll(migrated, 'acme')).toEqual(before)
  const last = before.at(-1)
  if (last === undefined) throw new Error('no entries')
  const key = foldKey(CONTRACT_SCHEMA.typeOf('stock/a'))
  // A planted state (the real one is 5 on hand) shows the next fold starts from it.
  const planted = { ...last, foldKey: key, state: { onHand: 50 } }
  const snapshot = {
    entity: planted.entity,
    foldKey: key,
    version: planted.version,
    partition: planted.partition,
    offset: planted.offset,
    committedAt: planted.committedAt,
    state: planted.state,
  }
  expect(await migrated.putSnapshot('acme', snapshot)).toEqual({ _tag: 'written' })
  await migrated.close()
  const reopened = await createSqliteStore({ file, schema: CONTRACT_SCHEMA })
  const at = 1_700_000_000_100
  const [sold] = await reopened.append('acme', [
    {
      entry: {
        id: `${id}-6`,
        tenant: 'acme',
        entity: 'stock/a',
        kind: 'stock.moved',
        data: { qty: -20 },
        intent: 'fact',
        clientId: id,
        clientSeq: 6,
        hlc: `${String(at).padStart(15, '0')}:00000:${id}`,
        occurredAt: at,
      },
    },
  ])
  // On the real state (5) selling 20 is corrected; on the snapshot's 50 it is not.
  expect(sold).toMatchObject({ status: 'appended', version: 6, corrections: [] })
  await reopened.close()
})

async function readAll(store: LogStore, tenant: string): Promise<StoredEntry[]> {
  const out: StoredEntry[] = []
  for (let p = 0; p < store.partitions; p++) {
    out.push(...(await store.readPartition(tenant, p, 0, 1_000)).entries)
  }
  return out
}

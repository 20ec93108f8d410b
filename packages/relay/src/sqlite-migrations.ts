/**
 * The SQLite log file's layout: durability pragmas asserted on open, the numbered migrations
 * (`PRAGMA user_version`), and the partition count fixed at creation.
 *
 * Invariants:
 * 1. A file is used only in WAL mode with synchronous=FULL (or stricter), read back after being
 *    set; otherwise `RelayError('durability')`.
 * 2. Migrations run in order, each in its own immediate transaction with its version bump; a
 *    file made by a newer Ledgerline is refused (`RelayError('store_version')`).
 * 3. Migration 2's triggers refuse any update or delete of entries and refusals (guarantee 6).
 */
import type Database from 'better-sqlite3'
import { checkPartitions, PARTITIONS_DEFAULT } from '@ledgerline/core'
import { SQLITE_BUSY_TIMEOUT_MS, SQLITE_CACHE_KIB } from './limits.ts'
import { RelayError } from './relay-error.ts'

/** The schema version this build writes (`PRAGMA user_version`). */
export const SQLITE_SCHEMA_VERSION = 2

export function assertDurable(db: Database.Database): void {
  db.pragma(`busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`)
  const mode = db.pragma('journal_mode = WAL', { simple: true })
  db.pragma('synchronous = FULL')
  const sync = db.pragma('synchronous', { simple: true })
  // 2 = FULL (3 = EXTRA is stricter and also fine).
  if (String(mode).toLowerCase() !== 'wal' || typeof sync !== 'number' || sync < 2) {
    throw new RelayError(
      'durability',
      `SQLite log must use WAL with synchronous=FULL, got journal_mode=${String(mode)} synchronous=${String(sync)}`,
    )
  }
  db.pragma('foreign_keys = ON')
  // Negative: a size in KiB rather than a page count.
  db.pragma(`cache_size = -${SQLITE_CACHE_KIB}`)
}

export function migrate(db: Database.Database): void {
  const version = db.pragma('user_version', { simple: true }) as number
  if (version > SQLITE_SCHEMA_VERSION) {
    throw new RelayError(
      'store_version',
      `SQLite log has schema version ${version}; this Ledgerline knows up to ${SQLITE_SCHEMA_VERSION}`,
    )
  }
  const steps: readonly string[] = [
    // 0 → 1: the first layout.
    `
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
    CREATE TABLE entries (
      partition INTEGER NOT NULL,
      "offset" INTEGER NOT NULL,
      tenant TEXT NOT NULL,
      id TEXT NOT NULL,
      entity TEXT NOT NULL,
      version INTEGER NOT NULL,
      corrects TEXT,
      committed_at INTEGER NOT NULL,
      body BLOB NOT NULL,
      PRIMARY KEY (partition, "offset"),
      UNIQUE (tenant, id),
      UNIQUE (tenant, entity, version)
    ) STRICT;
    CREATE INDEX entries_tenant_partition ON entries (tenant, partition, "offset");
    CREATE INDEX entries_corrects ON entries (tenant, corrects) WHERE corrects IS NOT NULL;
    CREATE TABLE refusals (
      tenant TEXT NOT NULL,
      id TEXT NOT NULL,
      code TEXT NOT NULL,
      reason TEXT NOT NULL,
      head INTEGER NOT NULL,
      PRIMARY KEY (tenant, id)
    ) STRICT;
    CREATE TABLE clients (
      tenant TEXT NOT NULL,
      client_id TEXT NOT NULL,
      high INTEGER NOT NULL,
      PRIMARY KEY (tenant, client_id)
    ) STRICT;
    CREATE TABLE partition_heads (partition INTEGER PRIMARY KEY, head INTEGER NOT NULL) STRICT;
    `,
    // 1 → 2: history is never rewritten (guarantee 6). The store only inserts entries and
    // refusals; these triggers make any update or delete fail loudly, whoever attempts it.
    `
    CREATE TRIGGER entries_append_only_update BEFORE UPDATE ON entries
      BEGIN SELECT RAISE(ABORT, 'Ledgerline entries are append-only'); END;
    CREATE TRIGGER entries_append_only_delete BEFORE DELETE ON entries
      BEGIN SELECT RAISE(ABORT, 'Ledgerline entries are append-only'); END;
    CREATE TRIGGER refusals_append_only_update BEFORE UPDATE ON refusals
      BEGIN SELECT RAISE(ABORT, 'Ledgerline refusals are append-only'); END;
    CREATE TRIGGER refusals_append_only_delete BEFORE DELETE ON refusals
      BEGIN SELECT RAISE(ABORT, 'Ledgerline refusals are append-only'); END;
    `,
  ]
  for (let v = version; v < SQLITE_SCHEMA_VERSION; v++) {
    db.transaction(() => {
      db.exec(steps[v] as string)
      db.pragma(`user_version = ${v + 1}`)
    }).immediate()
  }
}

export function initPartitions(db: Database.Database, requested: number | undefined): number {
  return db
    .transaction(() => {
      const row = db.prepare(`SELECT value FROM meta WHERE key = 'partitions'`).get() as
        | { value: string }
        | undefined
      if (row !== undefined) return checkPartitions(Number(row.value))
      const partitions = checkPartitions(requested ?? PARTITIONS_DEFAULT)
      db.prepare(`INSERT INTO meta (key, value) VALUES ('partitions', ?)`).run(String(partitions))
      const insert = db.prepare(`INSERT INTO partition_heads (partition, head) VALUES (?, 0)`)
      for (let p = 0; p < partitions; p++) insert.run(p)
      return partitions
    })
    .immediate()
}

/**
 * The SQLite log file's layout: durability pragmas asserted on open, the numbered migrations
 * (`PRAGMA user_version`), and what is fixed at creation (the partition count, the log's id).
 *
 * Invariants:
 * 1. A file is used only in WAL mode with synchronous=FULL (or stricter), read back after being
 *    set; otherwise `RelayError('durability')`.
 * 2. Migrations run in order, each in its own immediate transaction with its version bump; a
 *    file made by a newer Ledgerline is refused (`RelayError('store_version')`).
 * 3. Migration 2's triggers refuse any update or delete of entries and refusals (guarantee 6).
 *    Migration 3 lifts the update trigger of entries only inside its own transaction, to fill
 *    the new `digest` column, and puts it back before it commits.
 * 4. Migration 3 gives every stored client entry the digest of its body (`entryDigest` of the
 *    entry as the client sent it), so a resend after the upgrade is told from another entry
 *    under the same id; refusals of older builds kept no body and keep no digest.
 * 5. `meta` holds `partitions`, `log_id` and `generation`, each written once by the first open
 *    (an existing log gets its id when it is first opened by a build that has identities), and
 *    `opened_at`, rewritten by every open (`sqlite-store.ts` invariant 11).
 * 6. Migration 4 rewrites the entries and clients into the lean layout (`sqlite-lean-layout.ts`,
 *    which says which query needs each index); refusals, deferrals, partition heads and meta
 *    keep their tables.
 * 7. Migration 5 adds `origins`: one row (tenant ref, origin, position) per entry that carries
 *    an `origin` (moved by restore recovery), for the planner's lookup of copies. A table of its
 *    own rather than a column of `entries`: only moved entries have an origin (a restore's work,
 *    rare), so every other entry pays nothing, not even a NULL column; no older entry has one,
 *    so nothing is filled. Append-only like the entries it points at.
 * 8. Migration 6 adds `ledger_snapshots` (`sqlite-snapshots.ts`): derived state beside the log,
 *    empty until the relay's snapshot pass fills it; no entry is touched.
 * 9. Migration 7 adds the retention marks (`sqlite-retention.ts`), empty until an operator's
 *    `retention drop`; no entry is touched. That drop is the one transaction that lifts the
 *    entries' delete trigger, and puts it back before it commits (as migration 3 did with the
 *    update trigger).
 * 10. Migration 8 adds `retention_dropped` (`sqlite-retention.ts` invariant 4): one row per
 *    entry a retention drop removed, with its positions and digests but no body, so a resend
 *    of it is answered `duplicate` as before the drop. Empty until a drop; a log a drop of
 *    migration 7's build already cut keeps no row for what that drop took (those resends are
 *    still never appended twice: their clientSeqs are used up, and they get `id_conflict`).
 */
import type Database from 'better-sqlite3'
import {
  checkPartitions,
  entryDigest,
  PARTITIONS_DEFAULT,
  SERVER_CLIENT_ID,
} from '@ledgerline/core'
import type { Hash, RandomSource } from '@ledgerline/core'
import { createLogId, LOG_GENERATION_FIRST } from '@ledgerline/log'
import type { LogIdentity } from '@ledgerline/protocol'
import { decodeEntryBody } from './entry-body.ts'
import { SQLITE_BUSY_TIMEOUT_MS, SQLITE_CACHE_KIB, SQLITE_MIGRATION_PAGE_ROWS } from './limits.ts'
import { RelayError } from './relay-error.ts'
import { leanLayout } from './sqlite-lean-layout.ts'
import { SQLITE_DROPPED_LAYOUT, SQLITE_RETENTION_LAYOUT } from './sqlite-retention.ts'
import { SQLITE_SNAPSHOTS_LAYOUT } from './sqlite-snapshots.ts'

/** The schema version this build writes (`PRAGMA user_version`). */
export const SQLITE_SCHEMA_VERSION = 8

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

/**
 * Applies the missing migrations; `upTo` stops early (tests that make a log as an older build
 * did). `hash` computes the digests of migration 3.
 *
 * @example
 * migrate(db, sha256Node)
 */
export function migrate(
  db: Database.Database,
  hash: Hash,
  upTo: number = SQLITE_SCHEMA_VERSION,
): void {
  const version = db.pragma('user_version', { simple: true }) as number
  if (version > SQLITE_SCHEMA_VERSION) {
    throw new RelayError(
      'store_version',
      `SQLite log has schema version ${version}; this Ledgerline knows up to ${SQLITE_SCHEMA_VERSION}`,
    )
  }
  const steps: readonly (string | ((db: Database.Database) => void))[] = [
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
    // 2 → 3: exactly once at the edges. Digests beside ids (entries, refusals, deferrals),
    // clientIds bound to subjects, deferrals (decided again when resent).
    (db) => {
      db.exec(`
        DROP TRIGGER entries_append_only_update;
        ALTER TABLE entries ADD COLUMN digest BLOB;
        ALTER TABLE refusals ADD COLUMN digest BLOB;
        ALTER TABLE clients ADD COLUMN subject TEXT;
        CREATE TABLE deferrals (
          tenant TEXT NOT NULL,
          id TEXT NOT NULL,
          code TEXT NOT NULL,
          reason TEXT NOT NULL,
          digest BLOB NOT NULL,
          PRIMARY KEY (tenant, id)
        ) STRICT;
      `)
      fillDigests(db, hash)
      db.exec(`
        CREATE TRIGGER entries_append_only_update BEFORE UPDATE ON entries
          BEGIN SELECT RAISE(ABORT, 'Ledgerline entries are append-only'); END;
      `)
    },
    // 3 → 4: the lean layout (issue 16): interned names, entity heads, integer keys only.
    leanLayout,
    // 4 → 5: entries moved by restore recovery, by their origin (issue 14; invariant 7).
    `
      CREATE TABLE origins (
        tenant INTEGER NOT NULL,
        origin TEXT NOT NULL,
        partition INTEGER NOT NULL,
        "offset" INTEGER NOT NULL,
        PRIMARY KEY (tenant, origin, partition, "offset")
      ) STRICT, WITHOUT ROWID;
      CREATE TRIGGER origins_append_only_update BEFORE UPDATE ON origins
        BEGIN SELECT RAISE(ABORT, 'Ledgerline entries are append-only'); END;
      CREATE TRIGGER origins_append_only_delete BEFORE DELETE ON origins
        BEGIN SELECT RAISE(ABORT, 'Ledgerline entries are append-only'); END;
    `,
    // 5 → 6: ledger snapshots beside the log (issue 17; invariant 8).
    SQLITE_SNAPSHOTS_LAYOUT,
    // 6 → 7: retention marks (issue 17; invariant 9).
    SQLITE_RETENTION_LAYOUT,
    // 7 → 8: what is kept of a dropped entry, to answer its resend (issue 17; invariant 10).
    SQLITE_DROPPED_LAYOUT,
  ]
  for (let v = version; v < Math.min(upTo, SQLITE_SCHEMA_VERSION); v++) {
    db.transaction(() => {
      const step = steps[v] as string | ((db: Database.Database) => void)
      if (typeof step === 'string') db.exec(step)
      else step(db)
      db.pragma(`user_version = ${v + 1}`)
    }).immediate()
  }
}

/**
 * The log's identity, made on the first open that has none (invariant 5).
 *
 * @example
 * initIdentity(db, (b) => randomFillSync(b)) // { id: 'q3Jx…', generation: 1 }
 */
export function initIdentity(db: Database.Database, random: RandomSource): LogIdentity {
  return db
    .transaction(() => {
      const found = readIdentity(db)
      if (found !== undefined) return found
      const id = createLogId(random)
      const insert = db.prepare(`INSERT INTO meta (key, value) VALUES (?, ?)`)
      insert.run('log_id', id)
      insert.run('generation', String(LOG_GENERATION_FIRST))
      return { id, generation: LOG_GENERATION_FIRST }
    })
    .immediate()
}

/** The identity in `meta`, or `undefined` before `initIdentity`. */
export function readIdentity(db: Database.Database): LogIdentity | undefined {
  const rows = db
    .prepare(`SELECT key, value FROM meta WHERE key IN ('log_id', 'generation')`)
    .all() as { key: string; value: string }[]
  const id = rows.find((r) => r.key === 'log_id')?.value
  const generation = Number(rows.find((r) => r.key === 'generation')?.value)
  if (id === undefined || !Number.isSafeInteger(generation)) return undefined
  return { id, generation }
}

/**
 * Invariant 5: the time of this open, in `meta.opened_at`. Committed on its own, it is the first
 * commit of the connection that runs it (`sqlite-store.ts` invariant 11 says why that matters).
 */
export function writeOpenedAt(db: Database.Database, at: number): void {
  db.prepare(
    `INSERT INTO meta (key, value) VALUES ('opened_at', ?)
     ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
  ).run(String(at))
}

/** Raises the generation by one, in an immediate transaction; the new identity. */
export function bumpGeneration(db: Database.Database): LogIdentity {
  return db
    .transaction(() => {
      db.prepare(
        `UPDATE meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE key = 'generation'`,
      ).run()
      const identity = readIdentity(db)
      if (identity === undefined) throw new RelayError('store_failed', 'the log has no identity')
      return identity
    })
    .immediate()
}

/**
 * Invariant 4: the digest of every stored client entry, read from its body, a page of rows at a
 * time (a statement cannot run while another one's rows are iterated).
 */
function fillDigests(db: Database.Database, hash: Hash): void {
  const page = db.prepare(
    `SELECT rowid, body FROM entries WHERE rowid > ? ORDER BY rowid LIMIT ${SQLITE_MIGRATION_PAGE_ROWS}`,
  )
  const set = db.prepare(`UPDATE entries SET digest = ? WHERE rowid = ?`)
  let after = 0
  for (;;) {
    const rows = page.all(after) as { rowid: number; body: Buffer }[]
    for (const row of rows) {
      const entry = decodeEntryBody(row.body)
      if (entry.clientId !== SERVER_CLIENT_ID) set.run(entryDigest(entry, hash), row.rowid)
      after = row.rowid
    }
    if (rows.length < SQLITE_MIGRATION_PAGE_ROWS) return
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

/**
 * The SQLite log's retention (`log-retention.ts`): migration 7's two small tables of marks, and
 * the statements `sqlite-store.ts` answers `firstKept`, `partitionsFirstKept`, `readHistory` and
 * `dropHistory` with.
 *
 *   retention_entities    (entity ref, first_kept)           one row per entity dropped from
 *   retention_partitions  (tenant ref, partition, first_kept) one row per (tenant, partition)
 *   retention_dropped     (tenant ref, partition, offset, …)  one row per dropped entry (8)
 *
 * Invariants:
 * 1. A drop runs in one immediate transaction: the delete trigger of `entries` (migration 2,
 *    put back by migration 4) is dropped at its start and created again before it commits, so
 *    the log refuses every other delete, whoever attempts it, before and after; a refusal or a
 *    failure rolls the trigger back with everything else.
 * 2. Each cut is checked (`checkCut`) against the rows inside that transaction before any row is
 *    deleted; the rows deleted are exactly the cut's versions, found by the
 *    `entries_entity_version` index.
 * 3. Marks only rise (`max` in the upsert). `ledger_snapshots`, `entities` (the heads),
 *    `log_ids`, `origins`, refusals, deferrals and clients are not touched: an id of a dropped
 *    entry stays used up, its `log_ids` / `origins` rows name a position no read of entries
 *    finds, and that `retention_dropped` holds.
 * 4. Exactly once across a drop (`log-retention.ts` invariant 5; migration 8): each dropped
 *    entry leaves a row in `retention_dropped`, written in the drop's transaction from the row
 *    it replaces, with what the planner's lookups answer a resend with and nothing else: its
 *    position, entity ref, version, `committed_at`, the (client, client_seq) key exactly as the
 *    entry had it (so it is found by id the same way, `sqlite-reads.ts` invariant 9), the
 *    owner's client ref and both digests of a client entry (`digest` for a resend, the
 *    `recoveryDigest` for a moved copy), and the kind of an entry made by the log (a
 *    correction's reference in an ack names it). No body. About 125 bytes a dropped entry
 *    (two 32-byte digests, small integers, the key's index entry; measured 123 with pages on
 *    20,000 sales whose bodies were 285 bytes each); an entry of the log has no digests but
 *    its kind. Append-only, like the entries it stands for.
 */
import type Database from 'better-sqlite3'
import { recoveryDigest } from '@ledgerline/core'
import type { Hash } from '@ledgerline/core'
import { checkCut } from '@ledgerline/log'
import type { RetentionCut, RetentionDrop } from '@ledgerline/log'
import { decodeEntryBody } from './entry-body.ts'

/** Migration 7: the marks (invariant 3). */
export const SQLITE_RETENTION_LAYOUT = `
  CREATE TABLE retention_entities (
    entity INTEGER PRIMARY KEY,
    first_kept INTEGER NOT NULL
  ) STRICT;
  CREATE TABLE retention_partitions (
    tenant INTEGER NOT NULL,
    partition INTEGER NOT NULL,
    first_kept INTEGER NOT NULL,
    PRIMARY KEY (tenant, partition)
  ) STRICT, WITHOUT ROWID;
`

/** Migration 8: what is kept of each dropped entry (invariant 4). */
export const SQLITE_DROPPED_LAYOUT = `
  CREATE TABLE retention_dropped (
    tenant INTEGER NOT NULL,
    partition INTEGER NOT NULL,
    "offset" INTEGER NOT NULL,
    entity INTEGER NOT NULL,
    version INTEGER NOT NULL,
    client INTEGER,
    client_seq INTEGER,
    owner INTEGER,
    committed_at INTEGER NOT NULL,
    digest BLOB,
    recovery BLOB,
    kind TEXT,
    PRIMARY KEY (tenant, partition, "offset")
  ) STRICT, WITHOUT ROWID;
  CREATE UNIQUE INDEX retention_dropped_client_seq ON retention_dropped (client, client_seq)
    WHERE client IS NOT NULL;
  CREATE TRIGGER retention_dropped_append_only_update BEFORE UPDATE ON retention_dropped
    BEGIN SELECT RAISE(ABORT, 'Ledgerline entries are append-only'); END;
  CREATE TRIGGER retention_dropped_append_only_delete BEFORE DELETE ON retention_dropped
    BEGIN SELECT RAISE(ABORT, 'Ledgerline entries are append-only'); END;
`

const DELETE_TRIGGER = `
  CREATE TRIGGER entries_append_only_delete BEFORE DELETE ON entries
    BEGIN SELECT RAISE(ABORT, 'Ledgerline entries are append-only'); END;
`

export interface SqliteRetention {
  /** Whether `retention_dropped` holds a row (invariant 4): read at open, set by a drop. */
  anyDropped(): boolean
  firstKept(tenant: string, entity: string): number
  partitionsFirstKept(tenant: string, partitions: number): number[]
  drop(cuts: readonly RetentionCut[]): RetentionDrop
}

/**
 * @example
 * const retention = createSqliteRetention(db, nodeSha256)
 * retention.firstKept('acme', 'stock/s1') // 1: nothing dropped
 */
export function createSqliteRetention(db: Database.Database, hash: Hash): SqliteRetention {
  const tenantRef = `(SELECT ref FROM tenants WHERE name = ?)`
  const sql = {
    firstKept: db.prepare(
      `SELECT r.first_kept FROM entities n JOIN retention_entities r ON r.entity = n.ref
       WHERE n.tenant = ${tenantRef} AND n.name = ?`,
    ),
    partitions: db.prepare(
      `SELECT partition, first_kept FROM retention_partitions WHERE tenant = ${tenantRef}`,
    ),
    entity: db.prepare(
      `SELECT n.ref, n.tenant, n.version, coalesce(r.first_kept, 1) AS first_kept
       FROM entities n LEFT JOIN retention_entities r ON r.entity = n.ref
       WHERE n.tenant = ${tenantRef} AND n.name = ?`,
    ),
    snapshot: db.prepare(
      `SELECT version FROM ledger_snapshots WHERE tenant = ? AND entity = ? AND fold_key = ?`,
    ),
    offsets: db.prepare(
      `SELECT partition, "offset" FROM entries WHERE entity = ? AND version BETWEEN ? AND ?
       ORDER BY version`,
    ),
    doomed: db.prepare(
      `SELECT tenant, partition, "offset", entity, version, client, client_seq, committed_at,
         digest, body FROM entries WHERE entity = ? AND version BETWEEN ? AND ? ORDER BY version`,
    ),
    keep: db.prepare(
      `INSERT INTO retention_dropped (tenant, partition, "offset", entity, version, client,
         client_seq, owner, committed_at, digest, recovery, kind)
       VALUES (?, ?, ?, ?, ?, ?, ?,
         (SELECT ref FROM clients WHERE tenant = ? AND client_id = ?), ?, ?, ?, ?)`,
    ),
    delete: db.prepare(`DELETE FROM entries WHERE entity = ? AND version BETWEEN ? AND ?`),
    markEntity: db.prepare(
      `INSERT INTO retention_entities (entity, first_kept) VALUES (?, ?)
       ON CONFLICT (entity) DO UPDATE SET first_kept = max(first_kept, excluded.first_kept)`,
    ),
    markPartition: db.prepare(
      `INSERT INTO retention_partitions (tenant, partition, first_kept) VALUES (?, ?, ?)
       ON CONFLICT (tenant, partition) DO UPDATE SET
         first_kept = max(first_kept, excluded.first_kept)`,
    ),
  }
  interface DoomedRow {
    tenant: number
    partition: number
    offset: number
    entity: number
    version: number
    client: number | null
    client_seq: number | null
    committed_at: number
    digest: Buffer | null
    body: Buffer
  }
  interface EntityRow {
    ref: number
    tenant: number
    version: number
    first_kept: number
  }
  // One relay per data directory, and a drop runs with it stopped or through it: read once.
  let anyDropped = db.prepare(`SELECT 1 FROM retention_dropped LIMIT 1`).get() !== undefined
  const drop = db.transaction((cuts: readonly RetentionCut[]): RetentionDrop => {
    const found: { cut: RetentionCut; row: EntityRow; partition: number }[] = []
    // Invariant 2: every cut checked before anything is deleted.
    for (const cut of cuts) {
      const row = sql.entity.get(cut.tenant, cut.entity) as EntityRow | undefined
      const rows = (row === undefined ? [] : sql.offsets.all(row.ref, cut.from, cut.through)) as {
        partition: number
        offset: number
      }[]
      const snapshot =
        row === undefined
          ? undefined
          : (sql.snapshot.get(row.tenant, row.ref, cut.foldKey) as { version: number } | undefined)
      const refusal = checkCut(cut, {
        firstKept: row?.first_kept ?? 1,
        head: row?.version ?? 0,
        snapshotVersion: snapshot?.version,
        offsets: rows.map((r) => r.offset),
      })
      if (refusal !== undefined) return refusal
      found.push({ cut, row: row as EntityRow, partition: rows[0]?.partition ?? 0 })
    }
    // Invariant 1: the one place the delete trigger is lifted, inside this transaction.
    db.exec('DROP TRIGGER entries_append_only_delete')
    let entries = 0
    for (const { cut, row, partition } of found) {
      // Invariant 4: what a resend is answered with stays, written before the row goes.
      for (const d of sql.doomed.all(row.ref, cut.from, cut.through) as DoomedRow[]) {
        const entry = decodeEntryBody(d.body)
        const own = d.digest !== null
        sql.keep.run(
          d.tenant,
          d.partition,
          d.offset,
          d.entity,
          d.version,
          d.client,
          d.client_seq,
          d.tenant,
          own ? entry.clientId : null,
          d.committed_at,
          d.digest,
          own ? recoveryDigest(entry, hash) : null,
          own ? null : entry.kind,
        )
      }
      entries += sql.delete.run(row.ref, cut.from, cut.through).changes
      sql.markEntity.run(row.ref, cut.through + 1)
      sql.markPartition.run(row.tenant, partition, Math.max(...cut.offsets) + 1)
    }
    db.exec(DELETE_TRIGGER)
    return { _tag: 'dropped', entries, entities: found.length }
  })
  return {
    firstKept(tenant, entity) {
      const row = sql.firstKept.get(tenant, entity) as { first_kept: number } | undefined
      return row?.first_kept ?? 1
    },
    partitionsFirstKept(tenant, partitions) {
      const kept = Array.from({ length: partitions }, () => 1)
      for (const r of sql.partitions.all(tenant) as { partition: number; first_kept: number }[]) {
        kept[r.partition] = r.first_kept
      }
      return kept
    },
    anyDropped: () => anyDropped,
    drop(cuts) {
      const outcome = drop.immediate(cuts)
      if (outcome._tag === 'dropped' && outcome.entries > 0) anyDropped = true
      return outcome
    },
  }
}

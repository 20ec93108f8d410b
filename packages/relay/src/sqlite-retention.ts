/**
 * The SQLite log's retention (`log-retention.ts`): migration 7's two small tables of marks, and
 * the statements `sqlite-store.ts` answers `firstKept`, `partitionsFirstKept`, `readHistory` and
 * `dropHistory` with.
 *
 *   retention_entities    (entity ref, first_kept)           one row per entity dropped from
 *   retention_partitions  (tenant ref, partition, first_kept) one row per (tenant, partition)
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
 *    entry stays used up, its `log_ids` / `origins` rows name a position no read finds.
 */
import type Database from 'better-sqlite3'
import { checkCut } from '@ledgerline/log'
import type { RetentionCut, RetentionDrop } from '@ledgerline/log'

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

const DELETE_TRIGGER = `
  CREATE TRIGGER entries_append_only_delete BEFORE DELETE ON entries
    BEGIN SELECT RAISE(ABORT, 'Ledgerline entries are append-only'); END;
`

export interface SqliteRetention {
  firstKept(tenant: string, entity: string): number
  partitionsFirstKept(tenant: string, partitions: number): number[]
  drop(cuts: readonly RetentionCut[]): RetentionDrop
}

/**
 * @example
 * const retention = createSqliteRetention(db)
 * retention.firstKept('acme', 'stock/s1') // 1: nothing dropped
 */
export function createSqliteRetention(db: Database.Database): SqliteRetention {
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
  interface EntityRow {
    ref: number
    tenant: number
    version: number
    first_kept: number
  }
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
    drop: (cuts) => drop.immediate(cuts),
  }
}

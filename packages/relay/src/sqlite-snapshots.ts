/**
 * The SQLite log's ledger snapshots (`log-store.ts` guarantees 14–15): the `ledger_snapshots`
 * table of migration 6, and the statements `sqlite-store.ts` answers `putSnapshot`, `snapshot`,
 * `snapshotsInScope` and `entities` with.
 *
 * Terms: rows are keyed by (tenant ref, entity ref, fold key), refs as in `sqlite-refs.ts`.
 *
 * Invariants:
 * 1. One row per entity and fold key, replaced only by a higher version (the upsert's `WHERE`):
 *    a snapshot pass that raced another never moves a row back.
 * 2. A snapshot names an entity the log holds, at a version it has reached; anything else is a
 *    caller's bug (`RelayError('store_failed')`), nothing written.
 * 3. The state is MessagePack (as bodies are, `entry-body.ts`), at most
 *    `SNAPSHOT_STATE_BYTES_MAX` bytes encoded; a larger one is `skipped`, never written.
 * 5. Puts that arrive together share one transaction (`putMany`, one fsync): the store gathers
 *    them for a turn of the event loop, as the group commit does appends.
 * 4. `snapshotsInScope` pages by (entity ref, fold key) and reads at most
 *    `SNAPSHOT_SCAN_ROWS_MAX` rows a call; the table is derived data, so no trigger keeps it
 *    append-only (retention may drop entries under it, never it).
 * 6. `entitySpans` pages a tenant's entity rows by name (the `(tenant, name)` unique index),
 *    at most `limit` rows a call, each with its first entry found by `entries_entity_version`
 *    (one index lookup, never a scan of the ledger).
 */
import type Database from 'better-sqlite3'
import { checkSnapshotState } from '@ledgerline/log'
import type { EntitySpanPage, LoggedEntity, SnapshotPage, SnapshotPut } from '@ledgerline/log'
import type { LedgerSnapshot } from '@ledgerline/protocol'
import { RelayError } from './relay-error.ts'
import { encodeState, SnapshotScan, snapshotOf, spanPageOf } from './snapshot-rows.ts'
import type { SnapshotRow, SpanRow } from './snapshot-rows.ts'

/** Migration 6: the table (invariant 1). */
export const SQLITE_SNAPSHOTS_LAYOUT = `
  CREATE TABLE ledger_snapshots (
    tenant INTEGER NOT NULL,
    entity INTEGER NOT NULL,
    fold_key TEXT NOT NULL,
    version INTEGER NOT NULL,
    partition INTEGER NOT NULL,
    "offset" INTEGER NOT NULL,
    committed_at INTEGER NOT NULL,
    state BLOB NOT NULL,
    PRIMARY KEY (tenant, entity, fold_key)
  ) STRICT, WITHOUT ROWID;
`

interface SqliteSnapshotRow extends SnapshotRow {
  ref: number
}

export interface SqliteSnapshots {
  put(tenant: string, snapshot: LedgerSnapshot): SnapshotPut
  /**
   * Several puts in one transaction (one fsync); one outcome or error per put, in order. A put
   * with `encoded` was checked and encoded by `prepareSnapshotPut` already (its `state` is not
   * read): what the writer thread is handed.
   */
  putMany(
    puts: readonly {
      tenant: string
      snapshot: LedgerSnapshot
      encoded?: Uint8Array | undefined
    }[],
  ): (SnapshotPut | Error)[]
  get(tenant: string, entity: string, foldKey: string): LedgerSnapshot | undefined
  inScope(
    tenant: string,
    patterns: readonly string[],
    foldKeys: readonly string[],
    after: string | undefined,
    limit: number,
  ): SnapshotPage
  spans(
    tenant: string,
    patterns: readonly string[],
    after: string | undefined,
    limit: number,
  ): EntitySpanPage
  entities(
    after: string | undefined,
    limit: number,
  ): {
    entities: LoggedEntity[]
    next: string | undefined
  }
}

/**
 * A snapshot's state checked (guarantee 14 of `log-store.ts`) and encoded as the table keeps it;
 * the outcome `skipped` when it is not written.
 *
 * @example
 * const prepared = prepareSnapshotPut(snapshot) // Uint8Array, or { _tag: 'skipped', … }
 */
export function prepareSnapshotPut(snapshot: LedgerSnapshot): SnapshotPut | Uint8Array {
  let bytes: Uint8Array | undefined
  const checked = checkSnapshotState(snapshot.state, (d) => (bytes = encodeState(d)).length)
  return '_tag' in checked ? checked : (bytes as Uint8Array)
}

/**
 * @example
 * const snapshots = createSqliteSnapshots(db)
 * snapshots.get('acme', 'stock/s1:espresso', 'stock@1')
 */
export function createSqliteSnapshots(db: Database.Database): SqliteSnapshots {
  const tenantRef = `(SELECT ref FROM tenants WHERE name = ?)`
  const columns = `s.entity AS ref, n.name AS entity, s.fold_key, s.version, s.partition,
    s."offset", s.committed_at, s.state`
  const sql = {
    entity: db.prepare(
      `SELECT ref, tenant, version FROM entities WHERE tenant = ${tenantRef} AND name = ?`,
    ),
    upsert: db.prepare(
      `INSERT INTO ledger_snapshots
         (tenant, entity, fold_key, version, partition, "offset", committed_at, state)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (tenant, entity, fold_key) DO UPDATE SET
         version = excluded.version, partition = excluded.partition,
         "offset" = excluded."offset", committed_at = excluded.committed_at,
         state = excluded.state
       WHERE excluded.version > ledger_snapshots.version`,
    ),
    kept: db.prepare(
      `SELECT version FROM ledger_snapshots WHERE tenant = ? AND entity = ? AND fold_key = ?`,
    ),
    // From the entity's row to the snapshot's key (an index lookup each, never a scan).
    get: db.prepare(
      `SELECT ${columns} FROM entities n
       JOIN ledger_snapshots s ON s.tenant = n.tenant AND s.entity = n.ref AND s.fold_key = ?
       WHERE n.tenant = ${tenantRef} AND n.name = ?`,
    ),
    page: db.prepare(
      `SELECT ${columns} FROM ledger_snapshots s JOIN entities n ON n.ref = s.entity
       WHERE s.tenant = ${tenantRef} AND (s.entity, s.fold_key) > (?, ?)
       ORDER BY s.entity, s.fold_key LIMIT ?`,
    ),
    // Invariant 6: the first entry by (entity, version), then its row by rowid.
    spans: db.prepare(
      `SELECT n.name AS entity, n.version, n."offset" AS last_offset, f.partition,
         f."offset" AS first_offset
       FROM entities n JOIN entries f ON f.rowid =
         (SELECT rowid FROM entries WHERE entity = n.ref ORDER BY version LIMIT 1)
       WHERE n.tenant = ${tenantRef} AND n.name > ? ORDER BY n.name LIMIT ?`,
    ),
    entities: db.prepare(
      `SELECT n.ref, t.name AS tenant, n.name AS entity, n.version FROM entities n
       JOIN tenants t ON t.ref = n.tenant WHERE n.ref > ? ORDER BY n.ref LIMIT ?`,
    ),
  }
  const writeOne = (tenant: string, s: LedgerSnapshot, state: Uint8Array): SnapshotPut => {
    const e = sql.entity.get(tenant, s.entity) as
      | { ref: number; tenant: number; version: number }
      | undefined
    // Invariant 2.
    if (e === undefined || s.version > e.version || s.version < 1) {
      throw new RelayError(
        'store_failed',
        `snapshot of ${s.entity} at version ${s.version}: the log has ${e?.version ?? 0}`,
      )
    }
    const run = sql.upsert.run(
      e.tenant,
      e.ref,
      s.foldKey,
      s.version,
      s.partition,
      s.offset,
      s.committedAt,
      state,
    )
    if (run.changes > 0) return { _tag: 'written' } as const
    const kept = sql.kept.get(e.tenant, e.ref, s.foldKey) as { version: number }
    return { _tag: 'stale', kept: kept.version } as const
  }
  const write = db.transaction(writeOne)
  const prepare = prepareSnapshotPut
  const writeMany = db.transaction(
    (
      puts: readonly {
        tenant: string
        snapshot: LedgerSnapshot
        encoded?: Uint8Array | undefined
      }[],
    ) =>
      puts.map(({ tenant, snapshot, encoded }) => {
        const prepared = encoded ?? prepare(snapshot)
        if (!(prepared instanceof Uint8Array)) return prepared
        try {
          return writeOne(tenant, snapshot, prepared)
        } catch (error) {
          // Invariant 2 refuses this one; the others of the transaction still go in.
          if (error instanceof RelayError) return error
          throw error
        }
      }),
  )
  return {
    put(tenant, snapshot) {
      const prepared = prepare(snapshot)
      if (!(prepared instanceof Uint8Array)) return prepared
      return write.immediate(tenant, snapshot, prepared)
    },
    putMany: (puts) => writeMany.immediate(puts),
    get(tenant, entity, foldKey) {
      const row = sql.get.get(foldKey, tenant, entity) as SqliteSnapshotRow | undefined
      return row === undefined ? undefined : snapshotOf(row)
    },
    inScope(tenant, patterns, foldKeys, after, limit) {
      const scan = new SnapshotScan<SqliteSnapshotRow>(patterns, foldKeys, after, limit, (r) => [
        String(r.ref),
        r.fold_key,
      ])
      for (let want = scan.want(); want > 0; want = scan.want()) {
        const [ref, key] = scan.cursor
        scan.take(sql.page.all(tenant, Number(ref), key, want) as SqliteSnapshotRow[])
      }
      return scan.page()
    },
    spans(tenant, patterns, after, limit) {
      return spanPageOf(sql.spans.all(tenant, after ?? '', limit) as SpanRow[], patterns, limit)
    },
    entities(after, limit) {
      const rows = sql.entities.all(Number(after ?? 0), limit + 1) as (LoggedEntity & {
        ref: number
      })[]
      const page = rows.slice(0, limit)
      return {
        entities: page.map((r) => ({ tenant: r.tenant, entity: r.entity, version: r.version })),
        next: rows.length > limit ? String(page.at(-1)?.ref) : undefined,
      }
    },
  }
}

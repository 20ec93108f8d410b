/**
 * The PostgreSQL log's ledger snapshots (`log-store.ts` guarantees 14–15): the
 * `ledgerline_snapshots` table of migration 5 and the statements `postgres-store.ts` answers
 * `putSnapshot`, `snapshot`, `snapshotsInScope` and `entities` with, as `sqlite-snapshots.ts`
 * does for SQLite (same invariants 1–4, there).
 *
 * Invariants (beyond those of `sqlite-snapshots.ts`):
 * 1. The upsert names the entity's head in the same statement (a CTE), so a snapshot past the
 *    head is never written, whatever relay races it.
 * 2. A planner's miss reads the snapshots of every missed entity of a group in one statement,
 *    each under its type's own fold key (`takeSnapshots`).
 * 3. `entitySpans` walks the tenant's entity names by the `(tenant, entity, version)` unique
 *    index one name at a time (a recursive CTE, at most `limit` names a call), and finds each
 *    one's first and last entry by the same index: two lookups an entity, never its ledger.
 */
import type pg from 'pg'
import type { Pool, PoolClient } from 'pg'
import { checkSnapshotState } from '@ledgerline/log'
import type { EntitySpanPage, LoggedEntity, SnapshotPage, SnapshotPut } from '@ledgerline/log'
import type { LedgerSnapshot } from '@ledgerline/protocol'
import { q } from './postgres-sql.ts'
import { RelayError } from './relay-error.ts'
import { cursorParts, encodeState, SnapshotScan, snapshotOf, spanPageOf } from './snapshot-rows.ts'
import type { SnapshotRow, SpanRow } from './snapshot-rows.ts'

/** Migration 5's SQL. */
export const PG_SNAPSHOTS_LAYOUT = `
  create table ledgerline_snapshots (
    tenant text not null,
    entity text not null,
    fold_key text not null,
    version bigint not null,
    partition int not null,
    "offset" bigint not null,
    committed_at bigint not null,
    state bytea not null,
    primary key (tenant, entity, fold_key)
  );
`

interface PgSnapshotRow extends SnapshotRow, pg.QueryResultRow {}

const COLUMNS = `entity, fold_key, version, partition, "offset", committed_at, state`

const PUT_SQL = `with head as (
    select max(version) as version from ledgerline_entries where tenant = $1 and entity = $2
  ), put as (
    insert into ledgerline_snapshots
      (tenant, entity, fold_key, version, partition, "offset", committed_at, state)
    select $1, $2, $3, $4, $5, $6, $7, $8 from head where head.version >= $4
    on conflict (tenant, entity, fold_key) do update set
      version = excluded.version, partition = excluded.partition, "offset" = excluded."offset",
      committed_at = excluded.committed_at, state = excluded.state
    where excluded.version > ledgerline_snapshots.version
    returning 1
  )
  select (select count(*) from put)::int as written, (select version from head) as head,
    (select version from ledgerline_snapshots
      where tenant = $1 and entity = $2 and fold_key = $3) as kept`

const GET_SQL = `select ${COLUMNS} from ledgerline_snapshots
  where tenant = $1 and entity = $2 and fold_key = $3`

const PAGE_SQL = `select ${COLUMNS} from ledgerline_snapshots
  where tenant = $1 and (entity, fold_key) > ($2, $3) order by entity, fold_key limit $4`

const MANY_SQL = `select s.tenant, ${COLUMNS.split(', ')
  .map((c) => `s.${c}`)
  .join(', ')}
  from unnest($1::text[], $2::text[], $3::text[]) u(tenant, entity, fold_key)
  join ledgerline_snapshots s
    on s.tenant = u.tenant and s.entity = u.entity and s.fold_key = u.fold_key`

// Invariant 3: the next name after the last one, as often as the page asks.
const SPANS_SQL = `with recursive names(entity) as (
    (select entity from ledgerline_entries where tenant = $1 and entity > $2
      order by entity limit 1)
    union all
    select (select e.entity from ledgerline_entries e where e.tenant = $1 and e.entity > n.entity
      order by e.entity limit 1)
    from names n where n.entity is not null
  )
  select n.entity, f.partition, f."offset" as first_offset, h.version, h."offset" as last_offset
  from (select entity from names where entity is not null limit $3) n
  cross join lateral (select partition, "offset" from ledgerline_entries
    where tenant = $1 and entity = n.entity order by version limit 1) f
  cross join lateral (select version, "offset" from ledgerline_entries
    where tenant = $1 and entity = n.entity order by version desc limit 1) h
  order by n.entity`

interface PgSpanRow extends SpanRow, pg.QueryResultRow {}

const ENTITIES_SQL = `select distinct on (tenant, entity) tenant, entity, version
  from ledgerline_entries where (tenant, entity) > ($1, $2)
  order by tenant, entity, version desc limit $3`

/**
 * @example
 * await putSnapshot(pool, 'acme', snapshot) // { _tag: 'written' }
 */
export async function putSnapshot(
  pool: Pool,
  tenant: string,
  s: LedgerSnapshot,
): Promise<SnapshotPut> {
  let bytes: Uint8Array | undefined
  const checked = checkSnapshotState(s.state, (d) => (bytes = encodeState(d)).length)
  if ('_tag' in checked) return checked
  const { rows } = await q<{ written: number; head: number | null; kept: number | null }>(
    pool,
    PUT_SQL,
    [
      tenant,
      s.entity,
      s.foldKey,
      s.version,
      s.partition,
      s.offset,
      s.committedAt,
      Buffer.from(bytes as Uint8Array),
    ],
  )
  const row = rows[0]
  if (row === undefined || row.head === null || row.head < s.version || s.version < 1) {
    throw new RelayError(
      'store_failed',
      `snapshot of ${s.entity} at version ${s.version}: the log has ${row?.head ?? 0}`,
    )
  }
  return row.written > 0 ? { _tag: 'written' } : { _tag: 'stale', kept: row.kept ?? 0 }
}

export async function getSnapshot(
  runner: Pool | PoolClient,
  tenant: string,
  entity: string,
  foldKey: string,
): Promise<LedgerSnapshot | undefined> {
  const { rows } = await q<PgSnapshotRow>(runner, GET_SQL, [tenant, entity, foldKey])
  return rows[0] === undefined ? undefined : snapshotOf(rows[0])
}

/** Snapshots of `wanted` (tenant, entity, fold key), keyed `tenant\0entity` (invariant 2). */
export async function takeSnapshots(
  runner: Pool | PoolClient,
  wanted: readonly { tenant: string; entity: string; foldKey: string }[],
): Promise<Map<string, LedgerSnapshot>> {
  const out = new Map<string, LedgerSnapshot>()
  if (wanted.length === 0) return out
  const { rows } = await q<PgSnapshotRow & { tenant: string }>(runner, MANY_SQL, [
    wanted.map((w) => w.tenant),
    wanted.map((w) => w.entity),
    wanted.map((w) => w.foldKey),
  ])
  for (const row of rows) out.set(`${row.tenant}\u0000${row.entity}`, snapshotOf(row))
  return out
}

export async function snapshotsInScope(
  pool: Pool,
  tenant: string,
  patterns: readonly string[],
  foldKeys: readonly string[],
  after: string | undefined,
  limit: number,
): Promise<SnapshotPage> {
  const scan = new SnapshotScan<PgSnapshotRow>(patterns, foldKeys, after, limit, (r) => [
    r.entity,
    r.fold_key,
  ])
  for (let want = scan.want(); want > 0; want = scan.want()) {
    const [entity, key] = scan.cursor
    scan.take((await q<PgSnapshotRow>(pool, PAGE_SQL, [tenant, entity, key, want])).rows)
  }
  return scan.page()
}

export async function entitySpans(
  pool: Pool,
  tenant: string,
  patterns: readonly string[],
  after: string | undefined,
  limit: number,
): Promise<EntitySpanPage> {
  const { rows } = await q<PgSpanRow>(pool, SPANS_SQL, [tenant, after ?? '', limit])
  return spanPageOf(rows, patterns, limit)
}

export async function entitiesPage(
  pool: Pool,
  after: string | undefined,
  limit: number,
): Promise<{ entities: LoggedEntity[]; next: string | undefined }> {
  const [tenant, entity] = cursorParts(after)
  const { rows } = await q<LoggedEntity & pg.QueryResultRow>(pool, ENTITIES_SQL, [
    tenant,
    entity,
    limit + 1,
  ])
  const page = rows.slice(0, limit)
  const last = page.at(-1)
  return {
    entities: page.map((r) => ({ tenant: r.tenant, entity: r.entity, version: r.version })),
    next:
      rows.length > limit && last !== undefined ? `${last.tenant}\u0000${last.entity}` : undefined,
  }
}

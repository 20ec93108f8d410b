/**
 * The PostgreSQL log's retention (`log-retention.ts`), as `sqlite-retention.ts` does for SQLite:
 * migration 6's two small tables of marks and the statements `postgres-store.ts` answers
 * `firstKept`, `partitionsFirstKept`, `readHistory` and `dropHistory` with.
 *
 * Invariants (beyond those of `sqlite-retention.ts`, which hold here too):
 * 1. The drop's transaction first disables the entries' append-only trigger (migration 2), which
 *    takes the table's exclusive lock: appends and reads of every relay wait for the drop, and
 *    the checks, deletes and marks see a log nobody else moves. It enables the trigger again
 *    before it commits; a refusal or a failure rolls back, trigger included.
 * 2. `readHistory` reads the mark and the entries in one statement (one snapshot), so a drop
 *    committed meanwhile is never a short read.
 * 3. Exactly once across a drop (`log-retention.ts` invariant 5; step 7): each dropped entry
 *    leaves a row in `ledgerline_retention_dropped`, written in the drop's transaction from the
 *    row it replaces, keyed like the entries by (tenant, id): its entity, positions, `seq`
 *    (commit order), and for a client entry its clientId and both digests (`digest` for a
 *    resend, the `recoveryDigest` for a moved copy), for an entry of the log its kind and
 *    `corrects` (a correction's reference in an ack). No body: an estimated 150 to 200 bytes a dropped entry
 *    here (the id and entity as text, two 32-byte digests, the primary key's index entry).
 *    `postgres-sql.ts` reads it after `ledgerline_entries` in the planner's lookups.
 */
import type pg from 'pg'
import type { Pool, PoolClient } from 'pg'
import { recoveryDigest } from '@ledgerline/core'
import type { Hash } from '@ledgerline/core'
import { checkCut, droppedMessage, LogStoreError } from '@ledgerline/log'
import { decodeEntryBody } from './entry-body.ts'
import type { HistoryRead, RetentionCut, RetentionDrop } from '@ledgerline/log'
import { toStored } from './postgres-rows.ts'
import { connect, ENTRY_COLUMNS, q } from './postgres-sql.ts'
import type { EntryRow } from './postgres-sql.ts'

/** Migration 6's SQL: the marks. */
export const PG_RETENTION_LAYOUT = `
  create table ledgerline_retention_entities (
    tenant text not null,
    entity text not null,
    first_kept bigint not null,
    primary key (tenant, entity)
  );
  create table ledgerline_retention_partitions (
    tenant text not null,
    partition int not null,
    first_kept bigint not null,
    primary key (tenant, partition)
  );
`

/** Step 7's SQL: what is kept of each dropped entry (invariant 3). */
export const PG_DROPPED_LAYOUT = `
  create table ledgerline_retention_dropped (
    tenant text not null,
    id text not null,
    entity text not null,
    partition int not null,
    "offset" bigint not null,
    version bigint not null,
    committed_at bigint not null,
    seq bigint not null,
    client_id text,
    corrects text,
    kind text,
    digest bytea,
    recovery bytea,
    primary key (tenant, id)
  );
  create index ledgerline_retention_dropped_corrects
    on ledgerline_retention_dropped (tenant, corrects, seq) where corrects is not null;
  create trigger ledgerline_retention_dropped_append_only
    before update or delete on ledgerline_retention_dropped
    for each row execute function ledgerline_append_only();
  create trigger ledgerline_retention_dropped_no_truncate
    before truncate on ledgerline_retention_dropped
    for each statement execute function ledgerline_append_only();
`

/** Invariant 3: the rows about to go, with what JS computes of their bodies. */
const DOOMED_SQL = `select id, digest is not null as own, body from ledgerline_entries
  where tenant = $1 and entity = $2 and version between $3 and $4`

const KEEP_SQL = `insert into ledgerline_retention_dropped (tenant, id, entity, partition,
    "offset", version, committed_at, seq, client_id, corrects, kind, digest, recovery)
  select e.tenant, e.id, e.entity, e.partition, e."offset", e.version, e.committed_at, e.seq,
    u.client_id, case when e.digest is null then e.corrects end, u.kind, e.digest, u.recovery
  from unnest($3::text[], $4::text[], $5::text[], $6::bytea[]) u(id, client_id, kind, recovery)
  join ledgerline_entries e on e.tenant = $1 and e.entity = $2 and e.id = u.id`

const FIRST_KEPT = `coalesce((select first_kept from ledgerline_retention_entities
  where tenant = $1 and entity = $2), 1)`

/** Invariant 2. */
const READ_HISTORY_SQL = `with kept as (select ${FIRST_KEPT} as first_kept)
  select kept.first_kept, e.* from kept left join lateral (
    select ${ENTRY_COLUMNS} from ledgerline_entries
    where tenant = $1 and entity = $2 and version >= $3 and $3 >= kept.first_kept
    order by version limit $4
  ) e on true`

/** The entity's head, first kept version and snapshot under the fold key, in one row. */
const CUT_STATE_SQL = `select
    coalesce((select max(version) from ledgerline_entries where tenant = $1 and entity = $2), 0)
      as head,
    ${FIRST_KEPT} as first_kept,
    (select version from ledgerline_snapshots where tenant = $1 and entity = $2 and fold_key = $3)
      as snapshot`

const CUT_OFFSETS_SQL = `select partition, "offset" from ledgerline_entries
  where tenant = $1 and entity = $2 and version between $3 and $4 order by version`

export async function readHistory(
  pool: Pool | PoolClient,
  tenant: string,
  entity: string,
  fromVersion: number,
  limit: number,
): Promise<HistoryRead> {
  const { rows } = await q<Partial<EntryRow> & { first_kept: number }>(pool, READ_HISTORY_SQL, [
    tenant,
    entity,
    fromVersion,
    limit,
  ])
  const firstKept = rows[0]?.first_kept ?? 1
  if (fromVersion < firstKept) return { _tag: 'dropped', firstKept }
  const entries = rows.filter((r) => r.body !== null && r.body !== undefined) as EntryRow[]
  return { _tag: 'entries', entries: entries.map(toStored) }
}

/** `readEntity` of a log with retention: below the first kept version rejects (typed). */
export async function readKept(
  pool: Pool,
  tenant: string,
  entity: string,
  fromVersion: number,
  limit: number,
) {
  const read = await readHistory(pool, tenant, entity, fromVersion, limit)
  if (read._tag === 'entries') return read.entries
  throw new LogStoreError('history_dropped', droppedMessage(entity, fromVersion, read.firstKept))
}

export async function firstKept(pool: Pool, tenant: string, entity: string): Promise<number> {
  const { rows } = await q<{ first_kept: number }>(pool, `select ${FIRST_KEPT} as first_kept`, [
    tenant,
    entity,
  ])
  return rows[0]?.first_kept ?? 1
}

export async function partitionsFirstKept(
  pool: Pool,
  tenant: string,
  partitions: number,
): Promise<number[]> {
  const { rows } = await q<{ partition: number; first_kept: number }>(
    pool,
    'select partition, first_kept from ledgerline_retention_partitions where tenant = $1',
    [tenant],
  )
  const kept = Array.from({ length: partitions }, () => 1)
  for (const r of rows) kept[r.partition] = r.first_kept
  return kept
}

/** Every cut in one transaction, or none (`log-retention.ts` invariant 1; invariant 1 here). */
export async function dropHistory(
  pool: Pool,
  cuts: readonly RetentionCut[],
  hash: Hash,
): Promise<RetentionDrop> {
  const client = await connect(pool)
  try {
    await client.query('begin')
    await client.query(
      'alter table ledgerline_entries disable trigger ledgerline_entries_append_only',
    )
    const found: { cut: RetentionCut; partition: number }[] = []
    for (const cut of cuts) {
      const state = await q<{ head: number; first_kept: number; snapshot: number | null }>(
        client,
        CUT_STATE_SQL,
        [cut.tenant, cut.entity, cut.foldKey],
      )
      const at = await q<{ partition: number; offset: number } & pg.QueryResultRow>(
        client,
        CUT_OFFSETS_SQL,
        [cut.tenant, cut.entity, cut.from, cut.through],
      )
      const row = state.rows[0]
      const refusal = checkCut(cut, {
        firstKept: row?.first_kept ?? 1,
        head: row?.head ?? 0,
        snapshotVersion: row?.snapshot ?? undefined,
        offsets: at.rows.map((r) => r.offset),
      })
      if (refusal !== undefined) {
        await client.query('rollback')
        return refusal
      }
      found.push({ cut, partition: at.rows[0]?.partition ?? 0 })
    }
    let entries = 0
    for (const { cut, partition } of found) {
      // Invariant 3: what a resend is answered with stays, written before the rows go.
      const doomed = await q<{ id: string; own: boolean; body: Buffer }>(client, DOOMED_SQL, [
        cut.tenant,
        cut.entity,
        cut.from,
        cut.through,
      ])
      const rows = doomed.rows.map((r) => ({ ...r, entry: decodeEntryBody(r.body) }))
      await client.query(KEEP_SQL, [
        cut.tenant,
        cut.entity,
        rows.map((r) => r.id),
        rows.map((r) => (r.own ? r.entry.clientId : null)),
        rows.map((r) => (r.own ? null : r.entry.kind)),
        rows.map((r) => (r.own ? Buffer.from(recoveryDigest(r.entry, hash)) : null)),
      ])
      const deleted = await client.query(
        `delete from ledgerline_entries where tenant = $1 and entity = $2
           and version between $3 and $4`,
        [cut.tenant, cut.entity, cut.from, cut.through],
      )
      entries += deleted.rowCount ?? 0
      await client.query(
        `insert into ledgerline_retention_entities (tenant, entity, first_kept) values ($1, $2, $3)
         on conflict (tenant, entity) do update
           set first_kept = greatest(ledgerline_retention_entities.first_kept, excluded.first_kept)`,
        [cut.tenant, cut.entity, cut.through + 1],
      )
      await client.query(
        `insert into ledgerline_retention_partitions (tenant, partition, first_kept)
         values ($1, $2, $3)
         on conflict (tenant, partition) do update set first_kept =
           greatest(ledgerline_retention_partitions.first_kept, excluded.first_kept)`,
        [cut.tenant, partition, Math.max(...cut.offsets) + 1],
      )
    }
    await client.query(
      'alter table ledgerline_entries enable trigger ledgerline_entries_append_only',
    )
    await client.query('commit')
    return { _tag: 'dropped', entries, entities: found.length }
  } catch (error) {
    await client.query('rollback').catch(() => undefined)
    throw error
  } finally {
    client.release()
  }
}

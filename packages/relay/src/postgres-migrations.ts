/**
 * Versioned schema migrations of the PostgreSQL server log, run on start.
 *
 * Terms: a *migration* is one numbered step of plain SQL; `ledgerline_migrations` records the
 * steps a database has applied.
 *
 * Invariants:
 * 1. Steps are applied in order, each at most once; applied steps are never edited (a change
 *    is a new step).
 * 2. All of it runs in one transaction under a transaction-level advisory lock, so relays that
 *    start at once apply each step once and wait for each other; DDL in PostgreSQL is
 *    transactional, so a failed start leaves the schema as it was.
 * 3. A database migrated by a newer Ledgerline (a step this build does not know) is refused
 *    with `RelayError('store_version')`, never written.
 * 4. The partition count is written once, by the first relay, with one head row per partition;
 *    later starts read it and ignore their own `partitions` option.
 * 5. Plain SQL and no extensions, so Postgres-compatible engines can try it; the one exception
 *    is step 2's trigger function, in PL/pgSQL (built into PostgreSQL), because guarantee 6 must
 *    hold whoever connects and only a trigger can refuse an update loudly.
 */
import type { PoolClient } from 'pg'
import { checkPartitions, PARTITIONS_DEFAULT } from '@ledgerline/core'
import { RelayError } from './relay-error.ts'

/** Key of the advisory lock that serializes migrations (the ASCII of "ledgerln"). */
export const PG_MIGRATION_LOCK_KEY = '7306934024493051502'

/** The steps, in order; `version` is the index + 1. */
export const PG_MIGRATIONS: readonly { readonly name: string; readonly sql: string }[] = [
  {
    name: 'first layout: entries, refusals, clients, partition heads',
    sql: `
      create table ledgerline_log (
        id int primary key check (id = 1),
        partitions int not null check (partitions between 1 and 1024),
        created_at timestamptz not null default now()
      );
      create table ledgerline_partition_heads (
        partition int primary key,
        head bigint not null
      );
      create table ledgerline_entries (
        partition int not null,
        "offset" bigint not null,
        tenant text not null,
        id text not null,
        entity text not null,
        version bigint not null,
        corrects text,
        committed_at bigint not null,
        body bytea not null,
        seq bigint generated always as identity,
        primary key (partition, "offset"),
        unique (tenant, entity, version),
        unique (tenant, id)
      );
      create index ledgerline_entries_tenant_partition
        on ledgerline_entries (tenant, partition, "offset");
      create index ledgerline_entries_corrects
        on ledgerline_entries (tenant, corrects, seq) where corrects is not null;
      create table ledgerline_refusals (
        tenant text not null,
        id text not null,
        code text not null,
        reason text not null,
        head bigint not null,
        primary key (tenant, id)
      );
      create table ledgerline_clients (
        tenant text not null,
        client_id text not null,
        high bigint not null,
        primary key (tenant, client_id)
      );
    `,
  },
  {
    name: 'history is never rewritten: entries and refusals refuse update, delete and truncate',
    // Guarantee 6 whoever connects, as SQLite's triggers of its schema version 2. PL/pgSQL is
    // built into PostgreSQL (no extension); a plain SQL function cannot raise an error.
    sql: `
      create function ledgerline_append_only() returns trigger language plpgsql as $fn$
      begin
        raise exception 'Ledgerline % are append-only', tg_table_name
          using errcode = 'object_not_in_prerequisite_state';
      end
      $fn$;
      create trigger ledgerline_entries_append_only
        before update or delete on ledgerline_entries
        for each row execute function ledgerline_append_only();
      create trigger ledgerline_entries_no_truncate
        before truncate on ledgerline_entries
        for each statement execute function ledgerline_append_only();
      create trigger ledgerline_refusals_append_only
        before update or delete on ledgerline_refusals
        for each row execute function ledgerline_append_only();
      create trigger ledgerline_refusals_no_truncate
        before truncate on ledgerline_refusals
        for each statement execute function ledgerline_append_only();
    `,
  },
]

/**
 * Applies the missing migrations and fixes the partition count; returns the log's partitions.
 *
 * @example
 * const partitions = await migratePostgres(client, 16)
 */
export async function migratePostgres(
  client: PoolClient,
  requestedPartitions: number | undefined,
): Promise<number> {
  await client.query('begin')
  try {
    await client.query(`select pg_advisory_xact_lock(${PG_MIGRATION_LOCK_KEY})`)
    await client.query(`
      create table if not exists ledgerline_migrations (
        version int primary key,
        name text not null,
        applied_at timestamptz not null default now()
      )`)
    const { rows } = await client.query<{ version: number | null }>(
      'select max(version) as version from ledgerline_migrations',
    )
    const applied = rows[0]?.version ?? 0
    if (applied > PG_MIGRATIONS.length) {
      throw new RelayError(
        'store_version',
        `PostgreSQL log has schema version ${applied}; this Ledgerline knows up to ${PG_MIGRATIONS.length}`,
      )
    }
    for (let v = applied; v < PG_MIGRATIONS.length; v++) {
      const step = PG_MIGRATIONS[v] as (typeof PG_MIGRATIONS)[number]
      await client.query(step.sql)
      await client.query('insert into ledgerline_migrations (version, name) values ($1, $2)', [
        v + 1,
        step.name,
      ])
    }
    const log = await client.query<{ partitions: number }>(
      'select partitions from ledgerline_log where id = 1',
    )
    let partitions = log.rows[0]?.partitions
    if (partitions === undefined) {
      partitions = checkPartitions(requestedPartitions ?? PARTITIONS_DEFAULT)
      await client.query('insert into ledgerline_log (id, partitions) values (1, $1)', [partitions])
      await client.query(
        `insert into ledgerline_partition_heads (partition, head)
         select p, 0 from generate_series(0, $1::int - 1) as p`,
        [partitions],
      )
    }
    await client.query('commit')
    return checkPartitions(partitions)
  } catch (error) {
    await client.query('rollback').catch(() => undefined)
    throw error
  }
}

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
 * 6. Step 3 gives every stored client entry the digest of its body (`entryDigest` of the entry
 *    as its client sent it), computed here (SQL cannot decode MessagePack), a page of rows at a
 *    time; the update trigger of entries is disabled for that inside the migration's
 *    transaction only. Refusals of older builds kept no body and keep no digest.
 * 7. The log's identity (`log_id`, `generation`) lives in the one `ledgerline_log` row: the id is
 *    made by the first start that has none, the generation starts at 1.
 * 8. Step 6 adds the retention marks, empty until an operator's `retention drop`, which is the
 *    one transaction that disables the entries' append-only trigger (and enables it before it
 *    commits).
 */
import type { PoolClient } from 'pg'
import {
  checkPartitions,
  digestHex,
  entryDigest,
  PARTITIONS_DEFAULT,
  SERVER_CLIENT_ID,
} from '@ledgerline/core'
import type { Hash, RandomSource } from '@ledgerline/core'
import { createLogId } from '@ledgerline/log'
import { decodeEntryBody } from './entry-body.ts'
import { PG_MIGRATION_PAGE_ROWS } from './postgres-limits.ts'
import { PG_DROPPED_LAYOUT, PG_RETENTION_LAYOUT } from './postgres-retention.ts'
import { PG_SNAPSHOTS_LAYOUT } from './postgres-snapshots.ts'
import { RelayError } from './relay-error.ts'

/** Key of the advisory lock that serializes migrations (the ASCII of "ledgerln"). */
export const PG_MIGRATION_LOCK_KEY = '7306934024493051502'

/** One step: plain SQL, or a function for what SQL cannot do (invariant 6). */
export type PgMigration =
  | { readonly name: string; readonly sql: string }
  | { readonly name: string; readonly run: (client: PoolClient, hash: Hash) => Promise<void> }

/** The steps, in order; `version` is the index + 1. */
export const PG_MIGRATIONS: readonly PgMigration[] = [
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
  {
    name: 'exactly once at the edges: digests, clientIds bound to subjects, deferrals, log identity',
    async run(client, hash) {
      await client.query(`
        alter table ledgerline_entries add column digest bytea;
        alter table ledgerline_refusals add column digest bytea;
        alter table ledgerline_clients add column subject text;
        create table ledgerline_deferrals (
          tenant text not null,
          id text not null,
          code text not null,
          reason text not null,
          digest bytea not null,
          primary key (tenant, id)
        );
        alter table ledgerline_log
          add column log_id text,
          add column generation int not null default 1 check (generation >= 1);
        alter table ledgerline_entries disable trigger ledgerline_entries_append_only;
      `)
      await fillDigests(client, hash)
      await client.query(
        'alter table ledgerline_entries enable trigger ledgerline_entries_append_only',
      )
    },
  },
  {
    // Issue 14: one row per entry that carries an `origin` (moved by restore recovery), for the
    // planner's lookup of copies. A table of its own, not a column and index of entries: only
    // moved entries have an origin (rare), so no other entry pays for it; no older entry has
    // one, so nothing is filled.
    name: 'entries moved by restore recovery, by their origin',
    sql: `
      create table ledgerline_origins (
        tenant text not null,
        origin text not null,
        id text not null,
        primary key (tenant, origin, id)
      );
      create trigger ledgerline_origins_append_only
        before update or delete on ledgerline_origins
        for each row execute function ledgerline_append_only();
      create trigger ledgerline_origins_no_truncate
        before truncate on ledgerline_origins
        for each statement execute function ledgerline_append_only();
    `,
  },
  {
    // Issue 17: ledger snapshots beside the log, derived and recomputable (no trigger: the
    // relay replaces a row by a newer one; `postgres-snapshots.ts`).
    name: 'ledger snapshots beside the log',
    sql: PG_SNAPSHOTS_LAYOUT,
  },
  {
    // Issue 17: retention marks (`postgres-retention.ts`). No trigger is changed here: the
    // operator's `retention drop` is the one transaction that disables the entries' append-only
    // trigger, and enables it again before it commits (as step 3 did to fill digests).
    name: 'retention marks: first kept versions and offsets',
    sql: PG_RETENTION_LAYOUT,
  },
  {
    // Issue 17: what is kept of a dropped entry, so its resend is answered as before the drop
    // (`postgres-retention.ts` invariant 3). Empty until a drop; what a drop of step 6's build
    // took keeps no row (its resends are `id_conflict`, still never appended twice).
    name: 'retention: what a resend of a dropped entry is answered with',
    sql: PG_DROPPED_LAYOUT,
  },
]

/** The schema version this build writes. */
export const PG_SCHEMA_VERSION = PG_MIGRATIONS.length

export interface PgMigrateOptions {
  /** SHA-256 for the digests of step 3. */
  readonly hash: Hash
  /** Randomness for a new log's id. */
  readonly random: RandomSource
  /** Stop after this step (tests that make a log as an older build did). */
  readonly upTo?: number | undefined
}

/**
 * Applies the missing migrations and fixes the partition count; returns the log's partitions.
 *
 * @example
 * const partitions = await migratePostgres(client, 16)
 */
export async function migratePostgres(
  client: PoolClient,
  requestedPartitions: number | undefined,
  options: PgMigrateOptions,
): Promise<number> {
  const upTo = Math.min(options.upTo ?? PG_MIGRATIONS.length, PG_MIGRATIONS.length)
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
    for (let v = applied; v < upTo; v++) {
      const step = PG_MIGRATIONS[v] as PgMigration
      if ('sql' in step) await client.query(step.sql)
      else await step.run(client, options.hash)
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
    if (upTo >= 3) {
      await client.query('update ledgerline_log set log_id = $1 where id = 1 and log_id is null', [
        createLogId(options.random),
      ])
    }
    await client.query('commit')
    return checkPartitions(partitions)
  } catch (error) {
    await client.query('rollback').catch(() => undefined)
    throw error
  }
}

/** Invariant 6: digests of stored client entries, read from their bodies a page at a time. */
async function fillDigests(client: PoolClient, hash: Hash): Promise<void> {
  let after: [number, string] = [-1, '0']
  for (;;) {
    // Offsets as text: int8 must not lose precision on the way (they are far below 2^53, but
    // this pool's type parsers are the caller's).
    const { rows } = await client.query<{ partition: number; offset: string; body: Buffer }>(
      `select partition, "offset"::text as "offset", body from ledgerline_entries
       where (partition, "offset") > ($1, $2::bigint) order by partition, "offset" limit $3`,
      [after[0], after[1], PG_MIGRATION_PAGE_ROWS],
    )
    const partitions: number[] = []
    const offsets: string[] = []
    const digests: string[] = []
    for (const row of rows) {
      const entry = decodeEntryBody(row.body)
      after = [row.partition, row.offset]
      if (entry.clientId === SERVER_CLIENT_ID) continue
      partitions.push(row.partition)
      offsets.push(row.offset)
      digests.push(digestHex(entryDigest(entry, hash)))
    }
    if (partitions.length > 0) {
      await client.query(
        `update ledgerline_entries e set digest = decode(u.digest, 'hex')
         from unnest($1::int[], $2::bigint[], $3::text[]) u(partition, "offset", digest)
         where e.partition = u.partition and e."offset" = u."offset"`,
        [partitions, offsets, digests],
      )
    }
    if (rows.length < PG_MIGRATION_PAGE_ROWS) return
  }
}

/**
 * The SQL text of the PostgreSQL server log (`postgres-store.ts`), with the few helpers that send
 * it: every statement the store runs is here, so the store itself reads as the algorithm.
 *
 * Invariants:
 * 1. The statements of the append path are named, so each connection parses and plans them
 *    once; a name is bound to its text, so a changed statement gets a new name (`_v2`).
 * 2. Array parameters are PostgreSQL array literals built here (`textArray`, `intArray`), with
 *    every element quoted or checked, never text pasted into a statement.
 * 3. int8 columns are read as JavaScript numbers (`PG_TYPES`): offsets and versions stay far
 *    below 2^53.
 */
import pg from 'pg'
import type { Pool, PoolClient } from 'pg'
import type { DeferralCode } from '@ledgerline/core'
import type { RefusalCode } from '@ledgerline/log'
import type { LogIdentity } from '@ledgerline/protocol'
import { PG_COMMIT_CHANNEL } from './postgres-commit-feed.ts'
import { PG_POOL_CONNECTIONS_MAX, PG_STATEMENT_TIMEOUT_MS } from './postgres-limits.ts'
import { RelayError } from './relay-error.ts'

/** An entry row as the store reads it (positions in columns, the rest in `body`). */
export interface EntryRow {
  tenant: string
  partition: number
  offset: number
  version: number
  committed_at: number
  body: Buffer
  corrects?: string | null
}

export const PG_TYPES = { getTypeParser: int8AsNumber } as unknown as pg.CustomTypesConfig

// The statements of the append path are named, so each connection parses and plans them once.
// A name is bound to its text: a changed statement needs a new name (`_v2`).

export const LOCK_SQL = `select partition, head from ledgerline_partition_heads
  where partition = any($1::int[]) order by partition for update`

export const WRITE_SQL = `with e as (
  insert into ledgerline_entries
    (partition, "offset", tenant, id, entity, version, corrects, committed_at, body, digest)
  select u.partition, u."offset", u.tenant, u.id, u.entity, u.version, u.corrects,
    u.committed_at, substring($9::bytea from u.body_start for u.body_length),
    decode(u.digest, 'hex')
  from unnest($1::int[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::bigint[],
              $7::text[], $8::bigint[], $21::int[], $22::int[], $23::text[])
    u(partition, "offset", tenant, id, entity, version, corrects, committed_at,
      body_start, body_length, digest)
), r as (
  insert into ledgerline_refusals (tenant, id, code, reason, head, digest)
  select u.tenant, u.id, u.code, u.reason, u.head, decode(u.digest, 'hex')
  from unnest($10::text[], $11::text[], $12::text[], $13::text[], $14::bigint[], $24::text[])
    u(tenant, id, code, reason, head, digest)
), d as (
  insert into ledgerline_deferrals (tenant, id, code, reason, digest)
  select u.tenant, u.id, u.code, u.reason, decode(u.digest, 'hex')
  from unnest($25::text[], $26::text[], $27::text[], $28::text[], $29::text[])
    u(tenant, id, code, reason, digest)
), c as (
  insert into ledgerline_clients (tenant, client_id, high, subject)
  select * from unnest($15::text[], $16::text[], $17::bigint[], $30::text[])
  on conflict (tenant, client_id)
    do update set high = greatest(ledgerline_clients.high, excluded.high),
      subject = coalesce(ledgerline_clients.subject, excluded.subject)
), o as (
  insert into ledgerline_origins (tenant, origin, id)
  select * from unnest($31::text[], $32::text[], $33::text[])
  on conflict do nothing
), p as (
  update ledgerline_partition_heads h set head = u.head
  from unnest($18::int[], $19::bigint[]) u(partition, head)
  where h.partition = u.partition
)
select pg_notify('${PG_COMMIT_CHANNEL}', $20) where $20 <> ''`

/**
 * The client entries that are `origin` itself or carry it (`ledgerline_origins`), in commit
 * order: what a moved entry may be a copy of.
 */
export function originalsQuery(pairs: readonly (readonly [string, string])[]): pg.QueryConfig {
  return {
    name: 'ledgerline_originals_v4',
    // Two joins, each on a unique index ((tenant, id) of the entries, the origins' primary key),
    // not one join on `id = origin or id in (…)`: PostgreSQL cannot use an index for that OR
    // and scanned the whole log for every group (appends through a relay fell to a few a
    // second on a log of some 100,000 entries). The same two for entries an operator dropped
    // (`postgres-retention.ts` invariant 3): no body, their clientId and recovery digest.
    text: `with r as (select * from unnest($1::text[], $2::text[]) u(tenant, origin)),
      m as (
        select r.origin as key, e.seq, e.tenant, e.partition, e."offset", e.version,
          e.committed_at, e.body, e.digest, null as id, null as client_id, null::bytea as recovery
        from r join ledgerline_entries e on e.tenant = r.tenant and e.id = r.origin
        union
        select r.origin as key, e.seq, e.tenant, e.partition, e."offset", e.version,
          e.committed_at, e.body, e.digest, null, null, null
        from r join ledgerline_origins o on o.tenant = r.tenant and o.origin = r.origin
          join ledgerline_entries e on e.tenant = o.tenant and e.id = o.id
        union
        select r.origin, d.seq, d.tenant, d.partition, d."offset", d.version, d.committed_at,
          null, d.digest, d.id, d.client_id, d.recovery
        from r join ledgerline_retention_dropped d on d.tenant = r.tenant and d.id = r.origin
        union
        select r.origin, d.seq, d.tenant, d.partition, d."offset", d.version, d.committed_at,
          null, d.digest, d.id, d.client_id, d.recovery
        from r join ledgerline_origins o on o.tenant = r.tenant and o.origin = r.origin
          join ledgerline_retention_dropped d on d.tenant = o.tenant and d.id = o.id
      )
      select key, tenant, partition, "offset", version, committed_at, body, id, client_id,
        recovery
      from m where digest is not null
      order by seq`,
    values: pairValues(pairs),
    types: PG_TYPES,
  }
}

/** (tenant, id, clientId, clientSeq) of an item whose earlier result may be needed. */
export type Candidate = readonly [string, string, string, number]

export interface GroupKeys {
  readonly clients: [string, string][]
  readonly entities: [string, string][]
  readonly candidates: Candidate[]
  /** (tenant, id) that client entries' `corrects` name: the planner checks them. */
  readonly corrects: [string, string][]
  /** (tenant, origin or own id) of every client item: the planner looks for copies. */
  readonly origins: [string, string][]
}

export type HeadRow = {
  tenant: string
  entity: string
  version: number | null
  offset: number | null
}
/** A recorded entry (`found`, no body) or one of the log's corrections of it (with body). */
export type PreviousRow = Omit<EntryRow, 'body'> & {
  kind: 'found' | 'correction'
  id: string
  entity: string
  digest: Buffer | null
  body: Buffer | null
  /** The kind of a dropped correction, which has no body (`postgres-retention.ts` inv. 3). */
  entry_kind?: string | null | undefined
}
export type RefusedRow = {
  tenant: string
  id: string
  /** `unknown_type` in logs of an older Ledgerline. */
  code: RefusalCode
  reason: string
  head: number
  digest: Buffer | null
}
export type DeferredRow = { tenant: string; id: string; code: DeferralCode; digest: Buffer }

export function clientsQuery(pairs: readonly (readonly [string, string])[]): pg.QueryConfig {
  return {
    name: 'ledgerline_clients_v2',
    text: `select c.tenant, c.client_id, c.high, c.subject from ledgerline_clients c
      join unnest($1::text[], $2::text[]) u(tenant, client_id)
        on c.tenant = u.tenant and c.client_id = u.client_id`,
    values: [textArray(pairs.map((p) => p[0])), textArray(pairs.map((p) => p[1]))],
    types: PG_TYPES,
  }
}

/**
 * Entries holding one of the ids (without bodies), and the log's corrections of them (with
 * bodies, for their kinds): rows whose `corrects` names the id and whose own id derives from it,
 * so a client entry that names the id is never one (`postgres-store.ts` invariant 10).
 */
export function previousQuery(pairs: readonly (readonly [string, string])[]): pg.QueryConfig {
  return {
    name: 'ledgerline_previous_v3',
    // Entries an operator dropped are found the same way in `ledgerline_retention_dropped`
    // (`postgres-retention.ts` invariant 3), with their kinds in a column for want of a body.
    text: `with r as (select * from unnest($1::text[], $2::text[]) u(tenant, id)), f as (
        select e.tenant, e.id, e.entity, e.partition, e."offset", e.version, e.committed_at,
          e.digest, e.seq
        from ledgerline_entries e join r on e.tenant = r.tenant and e.id = r.id
        union all
        select d.tenant, d.id, d.entity, d.partition, d."offset", d.version, d.committed_at,
          d.digest, d.seq
        from ledgerline_retention_dropped d join r on d.tenant = r.tenant and d.id = r.id
      )
      select 'found' as kind, f.id, f.entity, f.tenant, f.partition, f."offset", f.version,
        f.committed_at, f.digest, null::bytea as body, null as corrects, null as entry_kind,
        f.seq
      from f
      union all
      select 'correction', x.id, x.entity, x.tenant, x.partition, x."offset", x.version,
        x.committed_at, null, x.body, x.corrects, null, x.seq
      from ledgerline_entries x join f on x.tenant = f.tenant and x.corrects = f.id
        and left(x.id, length(f.id) + 1) = f.id || '~'
      union all
      select 'correction', x.id, x.entity, x.tenant, x.partition, x."offset", x.version,
        x.committed_at, null, null, x.corrects, x.kind, x.seq
      from ledgerline_retention_dropped x join f on x.tenant = f.tenant and x.corrects = f.id
        and left(x.id, length(f.id) + 1) = f.id || '~'
      order by seq`,
    values: pairValues(pairs),
    types: PG_TYPES,
  }
}

/** Refusals recorded for one of the ids. */
export function refusedQuery(pairs: readonly (readonly [string, string])[]): pg.QueryConfig {
  return {
    name: 'ledgerline_refused_v2',
    text: `with r as (select * from unnest($1::text[], $2::text[]) u(tenant, id))
      select f.tenant, f.id, f.code, f.reason, f.head, f.digest
      from ledgerline_refusals f join r on f.tenant = r.tenant and f.id = r.id`,
    values: pairValues(pairs),
    types: PG_TYPES,
  }
}

/** Deferrals recorded for one of the ids. */
export function deferredQuery(pairs: readonly (readonly [string, string])[]): pg.QueryConfig {
  return {
    name: 'ledgerline_deferred_v1',
    text: `with r as (select * from unnest($1::text[], $2::text[]) u(tenant, id))
      select f.tenant, f.id, f.code, f.digest
      from ledgerline_deferrals f join r on f.tenant = r.tenant and f.id = r.id`,
    values: pairValues(pairs),
    types: PG_TYPES,
  }
}

export function pairValues(pairs: readonly (readonly [string, string])[]): string[] {
  return [textArray(pairs.map((p) => p[0])), textArray(pairs.map((p) => p[1]))]
}

/** Each entity's last version and offset (null for an empty ledger). */
export function headsQuery(pairs: readonly (readonly [string, string])[]): pg.QueryConfig {
  return {
    name: 'ledgerline_heads_v1',
    text: `select u.tenant, u.entity, h.version, h."offset"
      from unnest($1::text[], $2::text[]) u(tenant, entity)
      left join lateral (
        select e.version, e."offset" from ledgerline_entries e
        where e.tenant = u.tenant and e.entity = u.entity
        order by e.version desc limit 1
      ) h on true`,
    values: [textArray(pairs.map((p) => p[0])), textArray(pairs.map((p) => p[1]))],
    types: PG_TYPES,
  }
}

/**
 * Sends `queries` on one connection. On a pipelining connection (the store's own pool) they
 * go out together and cost one round trip; PostgreSQL still runs them one after another, each
 * statement with its own snapshot. Otherwise (a pool the caller made) one at a time. Throws
 * the first failure: in a transaction the statements after it fail only because it did.
 */
export async function pipeline(client: PoolClient, queries: readonly pg.QueryConfig[]) {
  type Result = pg.QueryResult | pg.QueryResult[]
  if (!client.pipeline) {
    const results: Result[] = []
    for (const query of queries) results.push((await client.query(query)) as Result)
    return results
  }
  const settled = await Promise.allSettled(
    queries.map((query) => client.query(query) as Promise<Result>),
  )
  const results: Result[] = []
  for (const s of settled) {
    if (s.status === 'rejected') throw s.reason
    results.push(s.value)
  }
  return results
}

// Array parameters as PostgreSQL array literals, built here rather than by `pg`, which escapes
// every element with two regular expressions: on the append path that was a fifth of the
// relay's CPU per entry. Elements are quoted (so NULL, empty strings and spaces are safe) and
// backslashes and double quotes escaped, as in
// https://www.postgresql.org/docs/current/arrays.html#ARRAYS-IO

/** `{"a","b",NULL}` for text[]. */
export function textArray(values: readonly (string | null)[]): string {
  let out = '{'
  for (let i = 0; i < values.length; i++) {
    if (i > 0) out += ','
    const v = values[i]
    if (v === null || v === undefined) out += 'NULL'
    else if (NEEDS_ESCAPE.test(v)) out += `"${v.replace(/[\\"]/g, '\\$&')}"`
    else out += `"${v}"`
  }
  return `${out}}`
}

export const NEEDS_ESCAPE = /[\\"]/

/** `{1,2,3}` for int[] and bigint[]; every element a safe integer. */
export function intArray(values: readonly number[]): string {
  for (const v of values) {
    if (!Number.isSafeInteger(v)) throw new Error(`Ledgerline bug: ${String(v)} is not an integer`)
  }
  return `{${values.join(',')}}`
}

export function rowsOf<R>(result: pg.QueryResult | pg.QueryResult[] | undefined): R[] {
  if (result === undefined || Array.isArray(result)) {
    throw new Error('Ledgerline bug: expected the result of one statement')
  }
  return result.rows as R[]
}

export const ENTRY_COLUMNS = `tenant, partition, "offset", version, committed_at, body`
export const ENTRY_COLUMNS_E = `e.tenant, e.partition, e."offset", e.version, e.committed_at, e.body`

/**
 * Runs one query with int8 read as numbers, also on a pool the caller made (whose type parsers
 * we must not change for its other users).
 */
export async function q<R extends pg.QueryResultRow>(
  runner: Pool | PoolClient,
  text: string,
  values: unknown[] = [],
): Promise<pg.QueryResult<R>> {
  return runner.query<R>({ text, values, types: PG_TYPES })
}

/** int8 (oid 20) as a JavaScript number: offsets and versions stay far below 2^53. */
export function int8AsNumber(oid: number, format?: 'text' | 'binary') {
  if (oid === 20) return (value: string) => Number(value)
  // oxlint-disable-next-line typescript/no-explicit-any
  return (pg.types.getTypeParser as (oid: number, format?: any) => any)(oid, format)
}

export async function connect(pool: Pool): Promise<PoolClient> {
  try {
    return await pool.connect()
  } catch (error) {
    throw new RelayError('store_failed', `cannot connect to PostgreSQL: ${messageOf(error)}`, {
      cause: error,
    })
  }
}

export async function assertDurable(client: PoolClient): Promise<void> {
  const { rows } = await q<{ fsync: string; sync: string }>(
    client,
    `select current_setting('fsync') as fsync, current_setting('synchronous_commit') as sync`,
  )
  const row = rows[0]
  if (row === undefined || row.fsync !== 'on' || row.sync === 'off') {
    throw new RelayError(
      'durability',
      `PostgreSQL log must fsync commits, got fsync=${String(row?.fsync)} synchronous_commit=${String(row?.sync)}`,
    )
  }
}

export async function readHeads(pool: Pool, partitions: number): Promise<number[]> {
  const { rows } = await q<{ partition: number; head: number }>(
    pool,
    'select partition, head from ledgerline_partition_heads',
  )
  const heads = Array.from({ length: partitions }, () => 0)
  for (const r of rows) heads[r.partition] = r.head
  return heads
}

/** One page of an entity's ledger after each `after` version, up to `upto`, for folding. */
export const FOLD_PAGE_SQL = `select e.entity, e.tenant, e.partition, e."offset", e.version,
    e.committed_at, e.body
  from unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[]) u(tenant, entity, after, upto)
  join lateral (
    select * from ledgerline_entries x
    where x.tenant = u.tenant and x.entity = u.entity
      and x.version > u.after and x.version <= u.upto
    order by x.version limit $5
  ) e on true
  order by e.tenant, e.entity, e.version`

/** A partition page and the partition's head, in one statement (one snapshot). */
export const READ_PARTITION_SQL = `select h.head, e.tenant, e.partition, e."offset", e.version,
    e.committed_at, e.body
  from ledgerline_partition_heads h
  left join lateral (
    select * from ledgerline_entries x
    where x.tenant = $1 and x.partition = $2 and x."offset" > $3
    order by x."offset" limit $4
  ) e on true
  where h.partition = $2`

export const READ_ENTITY_SQL = `select ${ENTRY_COLUMNS} from ledgerline_entries
  where tenant = $1 and entity = $2 and version >= $3 order by version limit $4`

export const ENTITY_HEAD_SQL = `select version, "offset" from ledgerline_entries
  where tenant = $1 and entity = $2 order by version desc limit 1`

export const CLIENT_SQL =
  'select high, subject from ledgerline_clients where tenant = $1 and client_id = $2'

export const IDENTITY_SQL = 'select log_id as id, generation from ledgerline_log where id = 1'

export const BUMP_GENERATION_SQL = `update ledgerline_log set generation = generation + 1
  where id = 1 returning log_id as id, generation`

/** The identity in a result of `IDENTITY_SQL` or `BUMP_GENERATION_SQL`. */
export function identityOf(
  rows: readonly { id: string | null; generation: number }[],
): LogIdentity {
  const row = rows[0]
  if (row === undefined || row.id === null) {
    throw new RelayError('store_failed', 'the PostgreSQL log has no identity')
  }
  return { id: row.id, generation: row.generation }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

/** A failure worth trying again from the start (invariant 6). */
export function isPassing(error: unknown): boolean {
  const code = (error as { code?: unknown }).code
  if (typeof code === 'string') {
    // serialization_failure, deadlock_detected, unique_violation (a racing relay's insert),
    // lock_not_available (lock_timeout), admin/crash shutdown, cannot_connect_now, connection.
    if (['40001', '40P01', '23505', '55P03', '57P01', '57P02', '57P03'].includes(code)) return true
    if (code.startsWith('08')) return true
  }
  return isConnectionError(error)
}

export function isConnectionError(error: unknown): boolean {
  const e = error as { code?: unknown; message?: unknown }
  if (typeof e.code === 'string' && (e.code.startsWith('08') || e.code.startsWith('57P'))) {
    return true
  }
  if (typeof e.code === 'string' && ['ECONNREFUSED', 'ECONNRESET', 'EPIPE'].includes(e.code)) {
    return true
  }
  const message = typeof e.message === 'string' ? e.message : ''
  return /Connection terminated|connection.*closed|not queryable/i.test(message)
}

export function asStoreError(error: unknown): unknown {
  if (error instanceof RelayError) return error
  return new RelayError('store_failed', `append failed: ${messageOf(error)}`, { cause: error })
}

/** The store's own pool: numbers for int8, bounded statements, pipelined round trips. */
export function createPool(url: string): Pool {
  return new pg.Pool({
    connectionString: url,
    max: PG_POOL_CONNECTIONS_MAX,
    types: PG_TYPES,
    statement_timeout: PG_STATEMENT_TIMEOUT_MS,
    // The statements of one group step are sent together (one round trip).
    pipeline: true,
  })
}

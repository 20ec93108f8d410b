/**
 * Writes a stream of `LogRecord`s (`log-copy.ts`) into an empty PostgreSQL log, and reads a
 * PostgreSQL log back as records: the PostgreSQL side of `migrate-sqlite`.
 *
 *   records ─► check empty ─► migrate tables ─► BEGIN ─► lock tables ─► insert pages
 *                                                 │ identity, partition heads
 *                                                 │ read everything back ─► digests equal?
 *                                                 ▼ yes: COMMIT   no: ROLLBACK, refuse
 *
 * Invariants:
 * 1. Only into an empty log: a database whose Ledgerline tables hold any entry, refusal,
 *    deferral, client or origin is refused (`RelayError('config')`) before anything is written, and
 *    checked again under the tables' locks; so is one whose partition count differs.
 * 2. All of the copy is one transaction, under `share row exclusive` locks of the log's tables
 *    (a relay that starts meanwhile waits for it): it is all there or none of it is.
 * 3. Rows are copied, never recomputed: ids, positions, versions, `corrects`, `committedAt`,
 *    bodies byte for byte, digests, refusals, deferrals, clients (high-water marks and subjects),
 *    the index of origins, partition heads, and the log's identity (same id, same generation, so clients see the same
 *    log and keep their cursors). Entries are inserted in commit order, so `seq` (the order in
 *    which corrections are found) follows the source's.
 * 4. Before the commit the copy is read back in the same transaction and its digest compared
 *    with the source's (counts and a digest per partition, the commit order, each table); any
 *    difference rolls everything back.
 */
import pg from 'pg'
import type { PoolClient } from 'pg'
import { SQLITE_EXPORT_PAGE_ROWS } from './limits.ts'
import { createLogDigest, diffSummaries } from './log-copy.ts'
import type { LogRecord, LogSummary } from './log-copy.ts'
import { nodeRandom, nodeSha256 } from './node-crypto.ts'
import { migratePostgres } from './postgres-migrations.ts'
import { PG_TYPES } from './postgres-sql.ts'
import { RelayError } from './relay-error.ts'

/** What was copied, and the digest both sides agreed on. */
export interface ImportSummary {
  readonly entries: number
  readonly refusals: number
  readonly deferrals: number
  readonly clients: number
  readonly origins: number
  readonly summary: LogSummary
}

/**
 * Copies `records` into the empty PostgreSQL log at `url` (invariants 1–4).
 *
 * @example
 * const copied = await importIntoPostgres(url, exportSqliteLog('data/log.sqlite'))
 * copied.entries // 12_345
 */
export async function importIntoPostgres(
  url: string,
  records: AsyncIterable<LogRecord>,
): Promise<ImportSummary> {
  const pool = new pg.Pool({ connectionString: url, max: 1 })
  // A pool error (a connection dropped while idle) must not crash the process.
  pool.on('error', () => undefined)
  try {
    const client = await pool.connect()
    try {
      return await copyInto(client, records)
    } finally {
      client.release()
    }
  } finally {
    await pool.end()
  }
}

/**
 * Reads the PostgreSQL log `client` is connected to as records, in the order of `log-copy.ts`
 * (entries by `seq`), a page at a time.
 *
 * @example
 * for await (const record of readPostgresLog(client)) digest.add(record)
 */
export async function* readPostgresLog(client: PoolClient): AsyncGenerator<LogRecord> {
  const log = await client.query<{ partitions: number; log_id: string; generation: number }>(
    'select partitions, log_id, generation from ledgerline_log where id = 1',
  )
  const row = log.rows[0]
  if (row === undefined) throw new RelayError('store_failed', 'the PostgreSQL log has no log row')
  yield {
    _tag: 'log',
    partitions: row.partitions,
    identity: { id: row.log_id, generation: row.generation },
  }
  let after = 0
  for (;;) {
    const page = await query<PgEntryRow>(
      client,
      `select seq, partition, "offset", tenant, id, entity, version, corrects, committed_at, body,
         digest from ledgerline_entries where seq > $1 order by seq limit $2`,
      [after, SQLITE_EXPORT_PAGE_ROWS],
    )
    for (const r of page) {
      yield {
        _tag: 'entry',
        tenant: r.tenant,
        partition: r.partition,
        offset: r.offset,
        id: r.id,
        entity: r.entity,
        version: r.version,
        corrects: r.corrects,
        committedAt: r.committed_at,
        body: r.body,
        digest: r.digest,
      }
      after = r.seq
    }
    if (page.length < SQLITE_EXPORT_PAGE_ROWS) break
  }
  // The other tables are small beside the entries; keyed pages keep memory bounded anyway.
  for await (const r of keyed<PgRefusalRow>(
    client,
    'ledgerline_refusals',
    'tenant, id, code, reason, head, digest',
  )) {
    yield { _tag: 'refusal', ...r }
  }
  for await (const r of keyed<PgDeferralRow>(
    client,
    'ledgerline_deferrals',
    'tenant, id, code, reason, digest',
  )) {
    yield { _tag: 'deferral', ...r }
  }
  for await (const r of keyed<PgClientRow>(
    client,
    'ledgerline_clients',
    'tenant, client_id as id, high, subject',
  )) {
    yield { _tag: 'client', tenant: r.tenant, clientId: r.id, high: r.high, subject: r.subject }
  }
  for await (const r of keyed<PgOriginRow>(client, 'ledgerline_origins', 'tenant, origin, id')) {
    yield { _tag: 'origin', tenant: r.tenant, origin: r.origin, id: r.id }
  }
  const heads = await query<{ partition: number; head: number }>(
    client,
    'select partition, head from ledgerline_partition_heads order by partition',
    [],
  )
  for (const h of heads) yield { _tag: 'partition_head', partition: h.partition, head: h.head }
}

// ---------------------------------------------------------------------------------------------

const TABLES = [
  'ledgerline_entries',
  'ledgerline_refusals',
  'ledgerline_deferrals',
  'ledgerline_clients',
  'ledgerline_origins',
]

async function copyInto(
  client: PoolClient,
  records: AsyncIterable<LogRecord>,
): Promise<ImportSummary> {
  const source = createLogDigest()
  const iterator = records[Symbol.asyncIterator]()
  const first = await iterator.next()
  if (first.done === true || first.value._tag !== 'log') {
    throw new RelayError('store_failed', 'the source log did not start with its identity')
  }
  const log = first.value
  source.add(log)
  await refuseNonEmpty(client, log.partitions)
  // Creates the tables of an empty database (its own transaction), as a relay's first start does.
  await migratePostgres(client, log.partitions, { hash: nodeSha256, random: nodeRandom })
  await client.query('begin')
  try {
    await client.query(
      `lock table ${TABLES.join(', ')}, ledgerline_log in share row exclusive mode`,
    )
    await refuseNonEmpty(client, log.partitions)
    const counts = { entries: 0, refusals: 0, deferrals: 0, clients: 0, origins: 0 }
    const pending: LogRecord[] = []
    const flush = async () => {
      if (pending.length === 0) return
      await insertPage(client, pending)
      pending.length = 0
    }
    const heads: [number, number][] = []
    for (let next = await iterator.next(); next.done !== true; next = await iterator.next()) {
      const record = next.value
      source.add(record)
      if (record._tag === 'partition_head') {
        heads.push([record.partition, record.head])
        continue
      }
      if (record._tag === 'log') throw new RelayError('store_failed', 'a second log record')
      counts[TALLY[record._tag]]++
      // Pages of one kind (invariant 3: entries stay in commit order).
      if (pending.length > 0 && pending[0]?._tag !== record._tag) await flush()
      pending.push(record)
      if (pending.length >= SQLITE_EXPORT_PAGE_ROWS) await flush()
    }
    await flush()
    await client.query(
      `update ledgerline_partition_heads h set head = u.head
       from unnest($1::int[], $2::bigint[]) u(partition, head) where h.partition = u.partition`,
      [heads.map((h) => h[0]), heads.map((h) => h[1])],
    )
    await client.query('update ledgerline_log set log_id = $1, generation = $2 where id = 1', [
      log.identity.id,
      log.identity.generation,
    ])
    // Invariant 4: read back what this transaction wrote, compare, then commit.
    const copy = createLogDigest()
    for await (const record of readPostgresLog(client)) copy.add(record)
    const expected = source.summary()
    const differences = diffSummaries(expected, copy.summary())
    if (differences.length > 0) {
      throw new RelayError(
        'store_failed',
        `the copy differs from the SQLite log, nothing was kept: ${differences.slice(0, 3).join('; ')}`,
      )
    }
    await client.query('commit')
    return { ...counts, summary: expected }
  } catch (error) {
    await client.query('rollback').catch(() => undefined)
    throw error
  }
}

const TALLY = {
  entry: 'entries',
  refusal: 'refusals',
  deferral: 'deferrals',
  client: 'clients',
  origin: 'origins',
} as const

/** Invariant 1. Tables that do not exist yet are empty. */
async function refuseNonEmpty(client: PoolClient, partitions: number): Promise<void> {
  const exists = await client.query<{ t: string | null }>(
    `select to_regclass('ledgerline_log')::text as t`,
  )
  if (exists.rows[0]?.t === null) return
  const held: string[] = []
  for (const table of TABLES) {
    const rows = await query<{ n: number }>(
      client,
      `select count(*)::int as n from (select 1 from ${table} limit 1) t`,
      [],
    ).catch(() => [{ n: 0 }])
    if ((rows[0]?.n ?? 0) > 0) held.push(table)
  }
  if (held.length > 0) {
    throw new RelayError(
      'config',
      `the PostgreSQL database is not empty (${held.join(', ')} hold rows); migrate into a new database`,
    )
  }
  const log = await query<{ partitions: number }>(
    client,
    'select partitions from ledgerline_log where id = 1',
    [],
  )
  const found = log[0]?.partitions
  if (found !== undefined && found !== partitions) {
    throw new RelayError(
      'config',
      `the PostgreSQL log was created with ${found} partitions, the SQLite log has ${partitions}; ` +
        'migrate into a new database',
    )
  }
}

/** One multi-row insert of records of one kind. */
async function insertPage(client: PoolClient, page: readonly LogRecord[]): Promise<void> {
  const kind = page[0]?._tag
  const col = <T extends LogRecord, V>(pick: (r: T) => V) => page.map((r) => pick(r as T))
  type E = Extract<LogRecord, { _tag: 'entry' }>
  type R = Extract<LogRecord, { _tag: 'refusal' }>
  type D = Extract<LogRecord, { _tag: 'deferral' }>
  type C = Extract<LogRecord, { _tag: 'client' }>
  type O = Extract<LogRecord, { _tag: 'origin' }>
  if (kind === 'entry') {
    // One statement per page; `ordinality` keeps the page's order, so `seq` follows it.
    await client.query(
      `insert into ledgerline_entries
         (partition, "offset", tenant, id, entity, version, corrects, committed_at, body, digest)
       select partition, "offset", tenant, id, entity, version, corrects, committed_at, body, digest
       from unnest($1::int[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::bigint[],
                   $7::text[], $8::bigint[], $9::bytea[], $10::bytea[])
         with ordinality u(partition, "offset", tenant, id, entity, version, corrects,
                           committed_at, body, digest, n)
       order by n`,
      [
        col((r: E) => r.partition),
        col((r: E) => r.offset),
        col((r: E) => r.tenant),
        col((r: E) => r.id),
        col((r: E) => r.entity),
        col((r: E) => r.version),
        col((r: E) => r.corrects),
        col((r: E) => r.committedAt),
        col((r: E) => Buffer.from(r.body)),
        col((r: E) => (r.digest === null ? null : Buffer.from(r.digest))),
      ],
    )
  } else if (kind === 'refusal') {
    await client.query(
      `insert into ledgerline_refusals (tenant, id, code, reason, head, digest)
       select * from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[],
                            $6::bytea[])`,
      [
        col((r: R) => r.tenant),
        col((r: R) => r.id),
        col((r: R) => r.code),
        col((r: R) => r.reason),
        col((r: R) => r.head),
        col((r: R) => (r.digest === null ? null : Buffer.from(r.digest))),
      ],
    )
  } else if (kind === 'deferral') {
    await client.query(
      `insert into ledgerline_deferrals (tenant, id, code, reason, digest)
       select * from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bytea[])`,
      [
        col((r: D) => r.tenant),
        col((r: D) => r.id),
        col((r: D) => r.code),
        col((r: D) => r.reason),
        col((r: D) => Buffer.from(r.digest)),
      ],
    )
  } else if (kind === 'client') {
    await client.query(
      `insert into ledgerline_clients (tenant, client_id, high, subject)
       select * from unnest($1::text[], $2::text[], $3::bigint[], $4::text[])`,
      [
        col((r: C) => r.tenant),
        col((r: C) => r.clientId),
        col((r: C) => r.high),
        col((r: C) => r.subject),
      ],
    )
  } else if (kind === 'origin') {
    await client.query(
      `insert into ledgerline_origins (tenant, origin, id)
       select * from unnest($1::text[], $2::text[], $3::text[])`,
      [col((r: O) => r.tenant), col((r: O) => r.origin), col((r: O) => r.id)],
    )
  }
}

interface PgEntryRow {
  seq: number
  partition: number
  offset: number
  tenant: string
  id: string
  entity: string
  version: number
  corrects: string | null
  committed_at: number
  body: Buffer
  digest: Buffer | null
}
interface PgRefusalRow {
  tenant: string
  id: string
  code: string
  reason: string
  head: number
  digest: Buffer | null
}
interface PgDeferralRow {
  tenant: string
  id: string
  code: string
  reason: string
  digest: Buffer
}
interface PgOriginRow {
  tenant: string
  origin: string
  id: string
}
interface PgClientRow {
  tenant: string
  id: string
  high: number
  subject: string | null
}

async function query<T extends pg.QueryResultRow>(
  client: PoolClient,
  text: string,
  values: readonly unknown[],
): Promise<T[]> {
  return (await client.query<T>({ text, values: [...values], types: PG_TYPES })).rows
}

/** The rows of a table keyed by (tenant, id), a page at a time in key order. */
async function* keyed<T extends { tenant: string; id: string }>(
  client: PoolClient,
  table: string,
  columns: string,
): AsyncGenerator<T> {
  const key = table === 'ledgerline_clients' ? 'client_id' : 'id'
  let after: [string, string] | undefined
  for (;;) {
    const page = await query<T>(
      client,
      `select ${columns} from ${table}
       where $1::text is null or (tenant, ${key}) > ($1, $2) order by tenant, ${key} limit $3`,
      [after?.[0] ?? null, after?.[1] ?? null, SQLITE_EXPORT_PAGE_ROWS],
    )
    yield* page
    const last = page.at(-1)
    if (last === undefined || page.length < SQLITE_EXPORT_PAGE_ROWS) return
    after = [last.tenant, last.id]
  }
}

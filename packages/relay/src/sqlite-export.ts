/**
 * Everything a SQLite log holds, as `LogRecord`s (`log-copy.ts`): what `migrate-sqlite` copies
 * into PostgreSQL. The one module that reads the SQLite layout for a copy: a change of the
 * layout (`sqlite-migrations.ts`) changes the statements here, and the round trip test
 * (`migrate-sqlite.test.ts`) says whether the copy still holds everything.
 *
 * Invariants:
 * 1. One read transaction from the first record to the last: the records are one snapshot of
 *    the file even if something writes it meanwhile (`migrate-sqlite` also holds the data
 *    directory's lock, so nothing does).
 * 2. Records come in the order of `log-copy.ts` invariant 1: the `log` record, entries by
 *    rowid (commit order), refusals, deferrals, clients, origins, partition heads.
 * 3. Memory stays bounded: rows are read a page of `SQLITE_EXPORT_PAGE_ROWS` at a time.
 * 4. A file of a schema version this build does not know is refused (`store_version`); an older
 *    one is read as it is only if it is at the current version (open it with a relay, or
 *    `createSqliteStore`, first: that migrates it).
 * 5. A log an operator dropped history from (`retention drop`) is refused (`config`) before the
 *    first record: its retention marks and the snapshots under them are not part of a copy.
 */
import Database from 'better-sqlite3'
import { SQLITE_EXPORT_PAGE_ROWS } from './limits.ts'
import type { LogRecord } from './log-copy.ts'
import { RelayError } from './relay-error.ts'
import type { NamedEntryRow } from './sqlite-lean-layout.ts'
import { readIdentity, SQLITE_SCHEMA_VERSION } from './sqlite-migrations.ts'

/**
 * Reads the SQLite log at `file` as records (invariants 1–3).
 *
 * @example
 * for await (const record of exportSqliteLog('data/log.sqlite')) if (record._tag === 'entry') n++
 */
export async function* exportSqliteLog(file: string): AsyncGenerator<LogRecord> {
  let db: Database.Database
  try {
    db = new Database(file, { fileMustExist: true })
  } catch (error) {
    throw new RelayError('config', `cannot open the SQLite log ${file}`, { cause: error })
  }
  try {
    const version = db.pragma('user_version', { simple: true }) as number
    if (version !== SQLITE_SCHEMA_VERSION) {
      throw new RelayError(
        'store_version',
        `${file} has schema version ${version}; this build exports version ${SQLITE_SCHEMA_VERSION}` +
          (version < SQLITE_SCHEMA_VERSION ? ' (start a relay on it once to migrate it)' : ''),
      )
    }
    db.exec('BEGIN')
    try {
      yield* records(db, file)
    } finally {
      db.exec('COMMIT')
    }
  } finally {
    db.close()
  }
}

// ---------------------------------------------------------------------------------------------

function* records(db: Database.Database, file: string): Generator<LogRecord> {
  const identity = readIdentity(db)
  const partitions = db.prepare(`SELECT value FROM meta WHERE key = 'partitions'`).get() as
    | { value: string }
    | undefined
  if (identity === undefined || partitions === undefined) {
    throw new RelayError('config', `${file} is not a Ledgerline log (no identity or partitions)`)
  }
  // Invariant 5: the copy has no records for retention's marks, and the snapshots below them
  // can no longer be folded again from the log; copying such a log would be a silent gap.
  const marks = db.prepare('SELECT count(*) AS n FROM retention_entities').get() as { n: number }
  if (marks.n > 0) {
    throw new RelayError(
      'config',
      `${file} has dropped history (retention: ${marks.n} entities); migrate-sqlite copies only a ` +
        'log that holds its whole history',
    )
  }
  yield { _tag: 'log', partitions: Number(partitions.value), identity }
  // Layout 4 (`sqlite-lean-layout.ts`): names are interned; a client entry's id is
  // `<clientId>-<clientSeq>`, an entry of the log has its id (and `corrects`) in `log_ids`.
  const entries = db.prepare(
    `SELECT e.rowid, e.partition, e."offset", t.name AS tenant,
       coalesce(l.id, c.client_id || '-' || e.client_seq) AS id, n.name AS entity, e.version,
       l.corrects, e.committed_at, e.body, e.digest
     FROM entries e
     JOIN tenants t ON t.ref = e.tenant
     JOIN entities n ON n.ref = e.entity
     LEFT JOIN clients c ON c.ref = e.client
     LEFT JOIN log_ids l ON l.tenant = e.tenant AND l.partition = e.partition
       AND l."offset" = e."offset"
     WHERE e.rowid > ? ORDER BY e.rowid LIMIT ${SQLITE_EXPORT_PAGE_ROWS}`,
  )
  for (const row of paged<NamedEntryRow>((after) => entries.all(after) as NamedEntryRow[])) {
    yield {
      _tag: 'entry',
      tenant: row.tenant,
      partition: row.partition,
      offset: row.offset,
      id: row.id,
      entity: row.entity,
      version: row.version,
      corrects: row.corrects,
      committedAt: row.committed_at,
      body: row.body,
      digest: row.digest,
    }
  }
  const refusals = db.prepare(
    `SELECT rowid, tenant, id, code, reason, head, digest FROM refusals WHERE rowid > ?
     ORDER BY rowid LIMIT ${SQLITE_EXPORT_PAGE_ROWS}`,
  )
  for (const r of paged<RefusalRow>((after) => refusals.all(after) as RefusalRow[])) {
    const { rowid: _rowid, ...rest } = r
    yield { _tag: 'refusal', ...rest }
  }
  const deferrals = db.prepare(
    `SELECT rowid, tenant, id, code, reason, digest FROM deferrals WHERE rowid > ?
     ORDER BY rowid LIMIT ${SQLITE_EXPORT_PAGE_ROWS}`,
  )
  for (const d of paged<DeferralRow>((after) => deferrals.all(after) as DeferralRow[])) {
    const { rowid: _rowid, ...rest } = d
    yield { _tag: 'deferral', ...rest }
  }
  const clients = db.prepare(
    `SELECT c.rowid, t.name AS tenant, c.client_id, c.high, c.subject
     FROM clients c JOIN tenants t ON t.ref = c.tenant WHERE c.rowid > ?
     ORDER BY c.rowid LIMIT ${SQLITE_EXPORT_PAGE_ROWS}`,
  )
  for (const c of paged<ClientRow>((after) => clients.all(after) as ClientRow[])) {
    yield {
      _tag: 'client',
      tenant: c.tenant,
      clientId: c.client_id,
      high: c.high,
      subject: c.subject,
    }
  }
  // `origins` keys an entry by position; the copy names it by id, as PostgreSQL keeps it. A
  // table without rowid: paged by its key.
  const origins = db.prepare(
    `SELECT o.tenant AS ref, t.name AS tenant, o.origin, o.partition, o."offset",
       c.client_id || '-' || e.client_seq AS id
     FROM origins o
     JOIN tenants t ON t.ref = o.tenant
     JOIN entries e ON e.tenant = o.tenant AND e.partition = o.partition AND e."offset" = o."offset"
     JOIN clients c ON c.ref = e.client
     WHERE (o.tenant, o.origin, o.partition, o."offset") > (?, ?, ?, ?)
     ORDER BY o.tenant, o.origin, o.partition, o."offset" LIMIT ${SQLITE_EXPORT_PAGE_ROWS}`,
  )
  let after: OriginRow | undefined
  for (;;) {
    const rows = origins.all(
      after?.ref ?? -1,
      after?.origin ?? '',
      after?.partition ?? -1,
      after?.offset ?? -1,
    ) as OriginRow[]
    for (const o of rows) yield { _tag: 'origin', tenant: o.tenant, origin: o.origin, id: o.id }
    after = rows.at(-1)
    if (after === undefined || rows.length < SQLITE_EXPORT_PAGE_ROWS) break
  }
  const heads = db.prepare(`SELECT partition, head FROM partition_heads ORDER BY partition`)
  for (const h of heads.all() as { partition: number; head: number }[]) {
    yield { _tag: 'partition_head', partition: h.partition, head: h.head }
  }
}

interface RefusalRow {
  rowid: number
  tenant: string
  id: string
  code: string
  reason: string
  head: number
  digest: Buffer | null
}
interface DeferralRow {
  rowid: number
  tenant: string
  id: string
  code: string
  reason: string
  digest: Buffer
}
interface OriginRow {
  ref: number
  tenant: string
  origin: string
  partition: number
  offset: number
  id: string
}
interface ClientRow {
  rowid: number
  tenant: string
  client_id: string
  high: number
  subject: string | null
}

/** Invariant 3: pages by rowid until a short page. */
function* paged<T extends { rowid: number }>(page: (after: number) => T[]): Generator<T> {
  let after = 0
  for (;;) {
    const rows = page(after)
    yield* rows
    const last = rows.at(-1)
    if (last === undefined || rows.length < SQLITE_EXPORT_PAGE_ROWS) return
    after = last.rowid
  }
}

/**
 * The embedded server log: a `LogStore` on one SQLite file (`better-sqlite3`), the default of a
 * single relay. It only stores: the decisions are `planGroup` and the group commit is
 * `createGroupCommit`, both of `@ledgerline/log`. See `log-store.ts` there for the guarantees
 * every store keeps; this file says how SQLite keeps its part.
 *
 * Terms: a *group* is the `append` calls the group commit hands over at once; its *plan* is
 * what the planner decided against this file's lookups, inside the group's transaction.
 *
 *   append() ─► createGroupCommit ─(defer)─► group ─► BEGIN IMMEDIATE
 *                                                       │ planGroup (lookups: prepared reads)
 *                                                       │ insert the plan's rows
 *                                                       │ COMMIT (WAL fsync, synchronous=FULL)
 *                                                       ▼
 *                         states remembered ─► each call resolved ─► onCommit listeners
 *
 * Invariants:
 * 1. The file is opened in WAL mode with synchronous=FULL, read back and asserted; otherwise
 *    opening throws `RelayError('durability')`. A commit is therefore fsynced before any promise
 *    resolves (guarantee 2 of `log-store.ts`).
 * 2. A group is planned and written in one `BEGIN IMMEDIATE` transaction, whose reads are the
 *    plan's lookups, so every decision is made against the file as it is under the write lock.
 *    A failed group is committed again call by call by the group commit; a failed call wrote
 *    nothing.
 * 3. Offsets come from the `partition_heads` row updated in the same transaction as the entries,
 *    so they are gap-free and in commit order; the key `(tenant, partition, offset)` and
 *    `unique (entity, version)` make a reused offset or version fail the transaction instead of
 *    being written. Versions come from the entity's head row (`entities`), updated in the same
 *    transaction to the newest entry's version and offset.
 * 4. Entity states are trusted only at the ledger's version read in the same transaction;
 *    otherwise the ledger is folded forward from the newest cached state. A rolled-back
 *    transaction leaves the cache untouched (only committed plans are remembered).
 * 5. Bodies are MessagePack (`entry-body.ts`); bodies a v8 build wrote still read.
 * 6. Entries and refusals are never updated or deleted: triggers refuse it (guarantee 6).
 * 7. One relay process writes one data directory at a time (`data-dir-lock.ts`); several relays
 *    share a PostgreSQL log instead.
 * 8. Digests (`digest` columns, migration 3) are kept for client entries, refusals and
 *    deferrals; `log_ids.corrects` is written for the log's own corrections only, so finding
 *    the corrections an ack lists never reads a client's entry (a client's `corrects` stays in
 *    its body). Rows of older builds are told apart by the id: a log correction of X has an id
 *    that starts with `X~`, and `isLogCorrection` has the last word.
 * 9. Layout 4 (`sqlite-lean-layout.ts`): tenants, entities and clientIds are interned
 *    (`sqlite-refs.ts`). A client entry is stored under (client, client_seq) and found by its
 *    id `<clientId>-<clientSeq>`; an entry of the log (no clientSeq) also gets a `log_ids` row.
 *    A new push reads no entry: the client's high-water mark tells it from a resend.
 *
 * Measured (relay bench, 10 connections, same run): see the README's Performance section; the
 * layouts compared while choosing are in `sqlite-lean-layout.ts`.
 */
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import Database from 'better-sqlite3'
import { entryId, isLogCorrection, SERVER_CLIENT_ID } from '@ledgerline/core'
import type { DeferralCode, Hash, Schema, StoredEntry } from '@ledgerline/core'
import {
  ENTITY_STATES_MAX,
  correctionRef,
  createCommitListeners,
  createEntityStates,
  createGroupCommit,
  groupCommitOptionsOf,
  foldForward,
  joinKey,
  planGroup,
  splitKey,
} from '@ledgerline/log'
import type {
  AppendResult,
  ClientRecord,
  CommitOutcome,
  EntityHead,
  GroupCommit,
  LogStore,
  LogStoreOptions,
  AppendItem,
  Plan,
  PlanCall,
  PlanHead,
  PlanLookups,
  Pusher,
  RefusalCode,
} from '@ledgerline/log'
import type { LogIdentity } from '@ledgerline/protocol'
import { encodeEntryBody, storedEntryOf } from './entry-body.ts'
import { digestBuffer, nodeRandom, nodeSha256 } from './node-crypto.ts'
import {
  assertDurable,
  bumpGeneration,
  initIdentity,
  initPartitions,
  migrate,
  readIdentity,
} from './sqlite-migrations.ts'
import { RelayError } from './relay-error.ts'
import { createSqliteRefs, refKey } from './sqlite-refs.ts'
import type { SqliteRefs } from './sqlite-refs.ts'
import { nodeDefer } from './timers.ts'

/** The log file's name in a relay's data directory (`<dataDir>/log.sqlite`). */
export const SQLITE_LOG_FILE = 'log.sqlite'

export interface SqliteStoreOptions extends LogStoreOptions {
  /** Path of the log file; its directory is made when missing. */
  readonly file: string
  /** Entity states kept in memory; defaults to `ENTITY_STATES_MAX`. */
  readonly entityStatesMax?: number | undefined
  /**
   * Test-only: handed the open file once it is ready, so a simulation can play a crash (close
   * it under the store) or copy it at a commit boundary. Production never sets it.
   */
  readonly onOpened?: ((db: Database.Database) => void) | undefined
  /** Test-only: plants a bug so the simulation proves its checkers see it. */
  readonly bugs?: SqliteStoreBugs | undefined
}

/** Ways to break the store on purpose; production never sets them. */
export interface SqliteStoreBugs {
  /**
   * Ack before durable: a group's results are returned while its transaction is still open;
   * its COMMIT runs when the next group starts, so a crash in between loses what was acked.
   */
  readonly ackBeforeCommit?: boolean | undefined
  /** Dedupe by id alone: a resend with other content is `duplicate`, not `id_conflict`. */
  readonly ignoreDigests?: boolean | undefined
}

/**
 * Opens (or creates) the SQLite server log at `file`.
 *
 * @example
 * const store = await createSqliteStore({ file: 'data/log.sqlite', schema })
 * const [result] = await store.append('acme', [{ entry }])
 * await store.close()
 */
export async function createSqliteStore(options: SqliteStoreOptions): Promise<LogStore> {
  mkdirSync(dirname(options.file), { recursive: true })
  let db: Database.Database
  try {
    db = new Database(options.file)
  } catch (error) {
    throw new RelayError('store_failed', `cannot open SQLite log ${options.file}`, {
      cause: error,
    })
  }
  try {
    assertDurable(db)
    migrate(db, options.hash ?? nodeSha256)
    const partitions = initPartitions(db, options.partitions)
    initIdentity(db, options.random ?? nodeRandom)
    const store = new SqliteStore(db, partitions, options)
    options.onOpened?.(db)
    return store
  } catch (error) {
    db.close()
    throw error
  }
}

// ---------------------------------------------------------------------------------------------

interface EntryRow {
  partition: number
  offset: number
  version: number
  committed_at: number
  body: Buffer
}

class SqliteStore implements LogStore {
  readonly partitions: number
  readonly #db: Database.Database
  readonly #schema: Schema | undefined
  readonly #now: () => number
  readonly #states
  readonly #listeners = createCommitListeners()
  readonly #commits: GroupCommit
  readonly #sql: ReturnType<typeof prepare>
  readonly #lookups: PlanLookups
  readonly #bugs: SqliteStoreBugs | undefined
  readonly #hash: Hash
  readonly #refs: SqliteRefs
  #closed = false

  constructor(db: Database.Database, partitions: number, options: SqliteStoreOptions) {
    this.#db = db
    this.partitions = partitions
    this.#schema = options.schema
    this.#now = options.now ?? Date.now
    this.#hash = options.hash ?? nodeSha256
    this.#states = createEntityStates(options.entityStatesMax ?? ENTITY_STATES_MAX)
    this.#sql = prepare(db)
    this.#refs = createSqliteRefs(db)
    this.#lookups = this.#makeLookups()
    this.#bugs = options.bugs
    this.#commits = createGroupCommit({
      commit: (group) => this.#commit(group),
      onCommitted: (touched) => this.#listeners.tell(touched),
      ...groupCommitOptionsOf(options, nodeDefer),
    })
  }

  append(
    tenant: string,
    items: readonly AppendItem[],
    pusher?: Pusher | undefined,
  ): Promise<AppendResult[]> {
    return this.#commits.append(tenant, items, pusher)
  }

  readPartition(
    tenant: string,
    partition: number,
    afterOffset: number,
    limit: number,
  ): Promise<{ entries: StoredEntry[]; throughOffset: number }> {
    return this.#read(() => {
      const head = (this.#sql.partitionHead.get(partition) as { head: number } | undefined)?.head
      const rows = this.#sql.readPartition.all(tenant, partition, afterOffset, limit) as EntryRow[]
      const entries = rows.map(toStored)
      const last = entries.at(-1)
      const throughOffset =
        entries.length >= limit && last !== undefined
          ? last.offset
          : Math.max(afterOffset, head ?? 0)
      return { entries, throughOffset }
    })
  }

  readEntity(
    tenant: string,
    entity: string,
    fromVersion: number,
    limit: number,
  ): Promise<StoredEntry[]> {
    return this.#read(() =>
      (this.#sql.readEntity.all(tenant, entity, fromVersion, limit) as EntryRow[]).map(toStored),
    )
  }

  head(tenant: string, entity: string): Promise<EntityHead> {
    return this.#read(() => {
      const row = this.#sql.entityHead.get(tenant, entity) as EntityHead | undefined
      return row ?? { version: 0, offset: 0 }
    })
  }

  client(tenant: string, clientId: string): Promise<ClientRecord> {
    return this.#read(() => this.#lookups.client(tenant, clientId) as ClientRecord)
  }

  identity(): Promise<LogIdentity> {
    return this.#read(() => {
      const identity = readIdentity(this.#db)
      if (identity === undefined) throw new Error('the log has no identity')
      return identity
    })
  }

  async bumpGeneration(): Promise<LogIdentity> {
    if (this.#closed) throw new RelayError('store_closed', 'the log is closed')
    return bumpGeneration(this.#db)
  }

  partitionHeads(): Promise<number[]> {
    return this.#read(() => {
      const heads = Array.from({ length: this.partitions }, () => 0)
      for (const row of this.#sql.partitionHeads.all() as { partition: number; head: number }[]) {
        heads[row.partition] = row.head
      }
      return heads
    })
  }

  onCommit(listener: (partitions: readonly number[]) => void): () => void {
    return this.#listeners.add(listener)
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    // Appends already accepted are finished first (guarantee 9).
    await this.#commits.close()
    this.#listeners.clear()
    this.#db.close()
  }

  // -- one group, one transaction (invariant 2) -----------------------------------------------

  #commit(group: readonly PlanCall[]): CommitOutcome {
    const committedAt = this.#now()
    try {
      const plan = this.#immediate(
        this.#db.transaction(() => {
          const p = planGroup(
            {
              schema: this.#schema,
              partitions: this.partitions,
              committedAt,
              lookups: this.#lookups,
              hash: this.#hash,
              ignoreDigests: this.#bugs?.ignoreDigests,
            },
            group,
          )
          this.#writeClients(p.clients)
          this.#writeEntries(p.entries, committedAt)
          for (const r of p.refusals) {
            const digest = r.digest === null ? null : digestBuffer(r.digest)
            this.#sql.insertRefusal.run(r.tenant, r.id, r.code, r.reason, r.head, digest)
          }
          for (const d of p.deferrals) {
            this.#sql.insertDeferral.run(d.tenant, d.id, d.code, d.reason, digestBuffer(d.digest))
          }
          for (const [partition, head] of p.partitionHeads) {
            this.#sql.setPartitionHead.run(head, partition)
          }
          return p
        }),
      )
      // Committed (and fsynced): only now does the cache learn the plan's states and refs.
      // A plain log keeps no states: it folds nothing.
      this.#refs.committed()
      if (this.#schema !== undefined) this.#states.remember(plan.heads)
      return { results: plan.results, touched: plan.touched }
    } catch (error) {
      this.#refs.rolledBack()
      if (error instanceof RelayError) throw error
      throw new RelayError('store_failed', `append failed: ${messageOf(error)}`, { cause: error })
    }
  }

  /** Runs `tx` in a `BEGIN IMMEDIATE` transaction (and commits it, unless `bugs` says not yet). */
  #immediate<T>(tx: Database.Transaction<() => T>): T {
    if (this.#bugs?.ackBeforeCommit !== true) return tx.immediate()
    const db = this.#db
    if (db.inTransaction) db.exec('COMMIT')
    db.exec('BEGIN IMMEDIATE')
    try {
      // Inside an open transaction, better-sqlite3 runs `tx` as a savepoint: nothing is durable.
      return tx()
    } catch (error) {
      db.exec('ROLLBACK')
      throw error
    }
  }

  /** Client records first: the entries name their clients by ref. */
  #writeClients(clients: ReadonlyMap<string, ClientRecord>): void {
    const sql = this.#sql
    for (const [key, client] of clients) {
      const [tenant, clientId] = splitKey(key)
      const t = this.#tenantRef(tenant)
      const ref = this.#refs.clients.find(refKey(t, clientId), t, clientId)
      // The first subject stays: a binding is never changed (the planner checked it).
      if (ref !== undefined) sql.updateClient.run(client.high, client.subject, ref)
      else {
        const made = sql.insertClient.run(t, clientId, client.high, client.subject)
        this.#refs.clients.made(refKey(t, clientId), Number(made.lastInsertRowid))
      }
    }
  }

  #writeEntries(entries: Plan['entries'], committedAt: number): void {
    const sql = this.#sql
    const heads = new Map<number, StoredEntry>()
    for (const { tenant, stored, source, digest } of entries) {
      const t = this.#tenantRef(tenant)
      const entity = this.#entityRef(t, stored.entity)
      // Invariant 9: a client entry under its clientSeq, an entry of the log under its id.
      const byClient =
        stored.clientId !== SERVER_CLIENT_ID &&
        stored.id === entryId(stored.clientId, stored.clientSeq)
      const client = byClient ? this.#clientRef(t, stored.clientId) : null
      sql.insertEntry.run(
        t,
        stored.partition,
        stored.offset,
        entity,
        stored.version,
        client,
        client === null ? null : stored.clientSeq,
        committedAt,
        encodeEntryBody(source),
        digest === null ? null : digestBuffer(digest),
      )
      if (client === null) {
        // Invariant 8: the column names what a log correction corrects, nothing else.
        const corrects = isLogCorrection(stored) ? (stored.corrects as string) : null
        sql.insertLogId.run(t, stored.id, stored.partition, stored.offset, corrects)
      }
      heads.set(entity, stored)
    }
    for (const [entity, stored] of heads) {
      sql.setEntityHead.run(stored.version, stored.offset, entity)
    }
  }

  #tenantRef(tenant: string): number {
    const found = this.#refs.tenants.find(tenant, tenant)
    if (found !== undefined) return found
    const ref = Number(this.#sql.insertTenant.run(tenant).lastInsertRowid)
    this.#refs.tenants.made(tenant, ref)
    return ref
  }

  #entityRef(tenant: number, entity: string): number {
    const key = refKey(tenant, entity)
    const found = this.#refs.entities.find(key, tenant, entity)
    if (found !== undefined) return found
    const ref = Number(this.#sql.insertEntity.run(tenant, entity).lastInsertRowid)
    this.#refs.entities.made(key, ref)
    return ref
  }

  /** A client entry's client has a record: the plan raised its high-water mark to the entry. */
  #clientRef(tenant: number, clientId: string): number {
    const ref = this.#refs.clients.find(refKey(tenant, clientId), tenant, clientId)
    if (ref === undefined) throw new Error(`Ledgerline bug: no client record for ${clientId}`)
    return ref
  }

  /** What was recorded under an entry id: a client entry by its clientSeq, else by `log_ids`. */
  #entryById(tenant: number, id: string): EntryByIdRow | undefined {
    const parsed = clientSeqOf(id)
    if (parsed !== undefined) {
      const client = this.#refs.clients.find(
        refKey(tenant, parsed.clientId),
        tenant,
        parsed.clientId,
      )
      if (client !== undefined) {
        const row = this.#sql.entryByClientSeq.get(client, parsed.clientSeq) as
          | EntryByIdRow
          | undefined
        if (row !== undefined) return row
      }
    }
    return this.#sql.entryByLogId.get(tenant, id) as EntryByIdRow | undefined
  }

  /** The planner's view of the file, read inside the group's transaction. */
  #makeLookups(): PlanLookups {
    const sql = this.#sql
    return {
      client: (tenant, clientId) => {
        const row = sql.client.get(tenant, clientId) as ClientRecord | undefined
        return row ?? { high: 0, subject: null }
      },
      previous: (tenant, id) => {
        const t = this.#refs.tenants.find(tenant, tenant)
        const row = t === undefined ? undefined : this.#entryById(t, id)
        if (t !== undefined && row !== undefined) {
          // The log's corrections of it (invariant 8): never a client entry that names it.
          const corrections = (sql.correctionsOf.all(t, id, id.length + 1, `${id}~`) as EntryRow[])
            .map(toStored)
            .filter(isLogCorrection)
            .map(correctionRef)
          return {
            _tag: 'entry',
            entity: row.entity,
            digest: row.digest,
            result: {
              id,
              status: 'appended',
              version: row.version,
              partition: row.partition,
              offset: row.offset,
              committedAt: row.committed_at,
              corrections,
            },
          }
        }
        const refusal = sql.refusalById.get(tenant, id) as
          | { code: RefusalCode; reason: string; head: number; digest: Buffer | null }
          | undefined
        if (refusal !== undefined) {
          const { digest, ...rest } = refusal
          return { _tag: 'refusal', digest, result: { id, status: 'refused', ...rest } }
        }
        const deferral = sql.deferralById.get(tenant, id) as
          | { code: DeferralCode; digest: Buffer }
          | undefined
        if (deferral === undefined) return null
        return { _tag: 'deferral', digest: deferral.digest, code: deferral.code }
      },
      entityHead: (tenant, entity) => this.#entityHead(tenant, entity),
      partitionHead: (partition) =>
        (sql.partitionHead.get(partition) as { head: number } | undefined)?.head ?? 0,
    }
  }

  /** The head with its state: cached at this version, or folded forward (invariant 4). */
  #entityHead(tenant: string, entity: string): PlanHead {
    const row = this.#sql.entityHead.get(tenant, entity) as EntityHead | undefined
    const version = row?.version ?? 0
    const offset = row?.offset ?? 0
    const type = this.#schema?.find(entity)
    // A plain log (or an unknown type, which decide() refuses) needs no state.
    if (type === undefined) return { version, offset, state: null }
    const key = joinKey(tenant, entity)
    const cached = this.#states.get(key, version)
    if (cached !== undefined && cached.version === version) return cached
    const from = cached ?? { version: 0, offset: 0, state: type.initial }
    const rows = this.#sql.readEntity.iterate(tenant, entity, from.version + 1, -1)
    const folded = foldForward(type, from, mapRows(rows as Iterable<EntryRow>))
    if (folded.version !== version) {
      throw new RelayError(
        'store_failed',
        `ledger of ${entity} has ${folded.version} entries, head says ${version}`,
      )
    }
    return folded
  }

  #read<T>(fn: () => T): Promise<T> {
    if (this.#closed && !this.#db.open) {
      return Promise.reject(new RelayError('store_closed', 'the log is closed'))
    }
    try {
      // One read transaction: a page and the head it is measured against come from one snapshot.
      return Promise.resolve(this.#db.transaction(fn).deferred())
    } catch (error) {
      return Promise.reject(
        new RelayError('store_failed', `read failed: ${messageOf(error)}`, { cause: error }),
      )
    }
  }
}

// ---------------------------------------------------------------------------------------------

function prepare(db: Database.Database) {
  const columns = `partition, "offset", version, committed_at, body`
  const tenantRef = `(SELECT ref FROM tenants WHERE name = ?)`
  return {
    insertEntry: db.prepare(
      `INSERT INTO entries (tenant, partition, "offset", entity, version, client, client_seq,
         committed_at, body, digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    insertLogId: db.prepare(
      `INSERT INTO log_ids (tenant, id, partition, "offset", corrects) VALUES (?, ?, ?, ?, ?)`,
    ),
    insertTenant: db.prepare(`INSERT INTO tenants (name) VALUES (?)`),
    insertEntity: db.prepare(
      `INSERT INTO entities (tenant, name, version, "offset") VALUES (?, ?, 0, 0)`,
    ),
    setEntityHead: db.prepare(`UPDATE entities SET version = ?, "offset" = ? WHERE ref = ?`),
    insertRefusal: db.prepare(
      `INSERT INTO refusals (tenant, id, code, reason, head, digest) VALUES (?, ?, ?, ?, ?, ?)`,
    ),
    insertDeferral: db.prepare(
      `INSERT INTO deferrals (tenant, id, code, reason, digest) VALUES (?, ?, ?, ?, ?)`,
    ),
    insertClient: db.prepare(
      `INSERT INTO clients (tenant, client_id, high, subject) VALUES (?, ?, ?, ?)`,
    ),
    updateClient: db.prepare(
      `UPDATE clients SET high = max(high, ?), subject = coalesce(subject, ?) WHERE ref = ?`,
    ),
    setPartitionHead: db.prepare(`UPDATE partition_heads SET head = ? WHERE partition = ?`),
    partitionHead: db.prepare(`SELECT head FROM partition_heads WHERE partition = ?`),
    partitionHeads: db.prepare(`SELECT partition, head FROM partition_heads`),
    client: db.prepare(
      `SELECT high, subject FROM clients WHERE tenant = ${tenantRef} AND client_id = ?`,
    ),
    entryByClientSeq: db.prepare(
      `SELECT e.partition, e."offset", e.version, e.committed_at, n.name AS entity, e.digest
       FROM entries e JOIN entities n ON n.ref = e.entity WHERE e.client = ? AND e.client_seq = ?`,
    ),
    entryByLogId: db.prepare(
      `SELECT e.partition, e."offset", e.version, e.committed_at, n.name AS entity, e.digest
       FROM log_ids l
       JOIN entries e ON e.tenant = l.tenant AND e.partition = l.partition
         AND e."offset" = l."offset"
       JOIN entities n ON n.ref = e.entity
       WHERE l.tenant = ? AND l.id = ?`,
    ),
    refusalById: db.prepare(
      `SELECT code, reason, head, digest FROM refusals WHERE tenant = ? AND id = ?`,
    ),
    deferralById: db.prepare(`SELECT code, digest FROM deferrals WHERE tenant = ? AND id = ?`),
    correctionsOf: db.prepare(
      `SELECT e.partition, e."offset", e.version, e.committed_at, e.body
       FROM log_ids l
       JOIN entries e ON e.tenant = l.tenant AND e.partition = l.partition
         AND e."offset" = l."offset"
       WHERE l.tenant = ? AND l.corrects = ? AND substr(l.id, 1, ?) = ?
       ORDER BY l.rowid`,
    ),
    entityHead: db.prepare(
      `SELECT version, "offset" AS "offset" FROM entities
       WHERE tenant = ${tenantRef} AND name = ?`,
    ),
    readEntity: db.prepare(
      `SELECT ${columns} FROM entries
       WHERE entity = (SELECT ref FROM entities WHERE tenant = ${tenantRef} AND name = ?)
         AND version >= ?
       ORDER BY version LIMIT ?`,
    ),
    readPartition: db.prepare(
      `SELECT ${columns} FROM entries WHERE tenant = ${tenantRef} AND partition = ? AND "offset" > ?
       ORDER BY "offset" LIMIT ?`,
    ),
  }
}

interface EntryByIdRow extends Omit<EntryRow, 'body'> {
  entity: string
  digest: Buffer | null
}

/** `<clientId>-<clientSeq>` split, or `undefined` when `id` is not a client entry's id. */
function clientSeqOf(id: string): { clientId: string; clientSeq: number } | undefined {
  const dash = id.lastIndexOf('-')
  if (dash <= 0) return undefined
  const digits = id.slice(dash + 1)
  if (!/^[1-9][0-9]{0,15}$/.test(digits)) return undefined
  const clientSeq = Number(digits)
  if (!Number.isSafeInteger(clientSeq)) return undefined
  return { clientId: id.slice(0, dash), clientSeq }
}

const toStored: (row: EntryRow) => StoredEntry = storedEntryOf

function* mapRows(rows: Iterable<EntryRow>): Iterable<StoredEntry> {
  for (const row of rows) yield toStored(row)
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

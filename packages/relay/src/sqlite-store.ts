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
 *    so they are gap-free and in commit order; `unique (partition, offset)` and
 *    `unique (tenant, entity, version)` make a wrong offset or version fail the transaction
 *    instead of being written.
 * 4. Entity states are trusted only at the ledger's version read in the same transaction;
 *    otherwise the ledger is folded forward from the newest cached state. A rolled-back
 *    transaction leaves the cache untouched (only committed plans are remembered).
 * 5. Bodies are MessagePack (`entry-body.ts`); bodies a v8 build wrote still read.
 * 6. Entries and refusals are never updated or deleted: triggers refuse it (guarantee 6).
 * 7. One relay process writes one data directory at a time (`data-dir-lock.ts`); several relays
 *    share a PostgreSQL log instead.
 * 8. Digests (`digest` columns, migration 3) are kept for client entries, refusals and
 *    deferrals; the `corrects` column is written for the log's own corrections only, so finding
 *    the corrections an ack lists never reads a client's entry (a client's `corrects` stays in
 *    its body). Rows of older builds are told apart by the id: a log correction of X has an id
 *    that starts with `X~`, and `isLogCorrection` has the last word.
 */
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import Database from 'better-sqlite3'
import { isLogCorrection } from '@ledgerline/core'
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
  #closed = false

  constructor(db: Database.Database, partitions: number, options: SqliteStoreOptions) {
    this.#db = db
    this.partitions = partitions
    this.#schema = options.schema
    this.#now = options.now ?? Date.now
    this.#hash = options.hash ?? nodeSha256
    this.#states = createEntityStates(options.entityStatesMax ?? ENTITY_STATES_MAX)
    this.#sql = prepare(db)
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
          for (const { tenant, stored, source, digest } of p.entries) {
            this.#sql.insertEntry.run(
              stored.partition,
              stored.offset,
              tenant,
              stored.id,
              stored.entity,
              stored.version,
              // Invariant 8: the column names what a log correction corrects, nothing else.
              isLogCorrection(stored) ? (stored.corrects as string) : null,
              committedAt,
              encodeEntryBody(source),
              digest === null ? null : digestBuffer(digest),
            )
          }
          for (const r of p.refusals) {
            const digest = r.digest === null ? null : digestBuffer(r.digest)
            this.#sql.insertRefusal.run(r.tenant, r.id, r.code, r.reason, r.head, digest)
          }
          for (const d of p.deferrals) {
            this.#sql.insertDeferral.run(d.tenant, d.id, d.code, d.reason, digestBuffer(d.digest))
          }
          for (const [key, client] of p.clients) {
            const [tenant, clientId] = splitKey(key)
            this.#sql.upsertClient.run(tenant, clientId, client.high, client.subject)
          }
          for (const [partition, head] of p.partitionHeads) {
            this.#sql.setPartitionHead.run(head, partition)
          }
          return p
        }),
      )
      // Committed (and fsynced): only now does the cache learn the plan's states.
      // A plain log keeps no states: it folds nothing.
      if (this.#schema !== undefined) this.#states.remember(plan.heads)
      return { results: plan.results, touched: plan.touched }
    } catch (error) {
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

  /** The planner's view of the file, read inside the group's transaction. */
  #makeLookups(): PlanLookups {
    const sql = this.#sql
    return {
      client: (tenant, clientId) => {
        const row = sql.client.get(tenant, clientId) as ClientRecord | undefined
        return row ?? { high: 0, subject: null }
      },
      previous: (tenant, id) => {
        const row = sql.entryById.get(tenant, id) as
          | (Omit<EntryRow, 'body'> & { entity: string; digest: Buffer | null })
          | undefined
        if (row !== undefined) {
          // The log's corrections of it (invariant 8): never a client entry that names it.
          const corrections = (
            sql.correctionsOf.all(tenant, id, id.length + 1, `${id}~`) as EntryRow[]
          )
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
  return {
    insertEntry: db.prepare(
      `INSERT INTO entries
         (partition, "offset", tenant, id, entity, version, corrects, committed_at, body, digest)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    insertRefusal: db.prepare(
      `INSERT INTO refusals (tenant, id, code, reason, head, digest) VALUES (?, ?, ?, ?, ?, ?)`,
    ),
    insertDeferral: db.prepare(
      `INSERT INTO deferrals (tenant, id, code, reason, digest) VALUES (?, ?, ?, ?, ?)`,
    ),
    // The first subject stays: a binding is never changed (the planner checked it).
    upsertClient: db.prepare(
      `INSERT INTO clients (tenant, client_id, high, subject) VALUES (?, ?, ?, ?)
       ON CONFLICT (tenant, client_id) DO UPDATE SET high = max(high, excluded.high),
         subject = coalesce(subject, excluded.subject)`,
    ),
    setPartitionHead: db.prepare(`UPDATE partition_heads SET head = ? WHERE partition = ?`),
    partitionHead: db.prepare(`SELECT head FROM partition_heads WHERE partition = ?`),
    partitionHeads: db.prepare(`SELECT partition, head FROM partition_heads`),
    client: db.prepare(`SELECT high, subject FROM clients WHERE tenant = ? AND client_id = ?`),
    entryById: db.prepare(
      `SELECT partition, "offset", version, committed_at, entity, digest FROM entries
       WHERE tenant = ? AND id = ?`,
    ),
    refusalById: db.prepare(
      `SELECT code, reason, head, digest FROM refusals WHERE tenant = ? AND id = ?`,
    ),
    deferralById: db.prepare(`SELECT code, digest FROM deferrals WHERE tenant = ? AND id = ?`),
    correctionsOf: db.prepare(
      `SELECT ${columns} FROM entries WHERE tenant = ? AND corrects = ? AND substr(id, 1, ?) = ?
       ORDER BY rowid`,
    ),
    entityHead: db.prepare(
      `SELECT version, "offset" AS "offset" FROM entries WHERE tenant = ? AND entity = ?
       ORDER BY version DESC LIMIT 1`,
    ),
    readEntity: db.prepare(
      `SELECT ${columns} FROM entries WHERE tenant = ? AND entity = ? AND version >= ?
       ORDER BY version LIMIT ?`,
    ),
    readPartition: db.prepare(
      `SELECT ${columns} FROM entries WHERE tenant = ? AND partition = ? AND "offset" > ?
       ORDER BY "offset" LIMIT ?`,
    ),
  }
}

const toStored: (row: EntryRow) => StoredEntry = storedEntryOf

function* mapRows(rows: Iterable<EntryRow>): Iterable<StoredEntry> {
  for (const row of rows) yield toStored(row)
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

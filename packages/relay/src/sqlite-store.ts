/**
 * The embedded server log: a `LogStore` on one SQLite file (`better-sqlite3`), the default of a
 * single relay. It only stores: the decisions are `planGroup` and the group commit is
 * `createGroupCommit`, both of `@ledgerline/log`. See `log-store.ts` there for the guarantees
 * every store keeps; this file says how SQLite keeps its part.
 *
 * Terms: a *group* is the `append` calls the group commit hands over at once; its *plan* is
 * what the planner decided against this file's lookups, inside the group's transaction. This file
 * opens the log, runs each group's transaction, answers the reads, tells of commits and closes;
 * the statements and lookups it reads with are `sqlite-reads.ts` (invariants 4, 8, 9) and what a
 * plan writes is `sqlite-write.ts` (3, 8, 9), each stating its share of the invariants below.
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
 * 3. Offsets and versions come from head rows updated in the same transaction as the entries,
 *    and keys make a reused one fail the transaction (`sqlite-write.ts`).
 * 4. Entity states are trusted only at the ledger's version read in the same transaction;
 *    otherwise the ledger is folded forward from the newest cached state (`sqlite-reads.ts`). A
 *    rolled-back transaction leaves the cache untouched (only committed plans are remembered).
 * 5. Bodies are MessagePack (`entry-body.ts`); bodies a v8 build wrote still read.
 * 6. Entries and refusals are never updated or deleted: triggers refuse it (guarantee 6).
 * 7. One relay process writes one data directory at a time (`data-dir-lock.ts`); several relays
 *    share a PostgreSQL log instead.
 * 8. Digests (`digest` columns, migration 3) are kept for client entries, refusals and
 *    deferrals, and `log_ids.corrects` for the log's own corrections only (`sqlite-write.ts`),
 *    so finding the corrections an ack lists never reads a client's entry (`sqlite-reads.ts`).
 * 9. Layout 4 (`sqlite-lean-layout.ts`): tenants, entities and clientIds are interned
 *    (`sqlite-refs.ts`). A client entry is found by its id `<clientId>-<clientSeq>` under
 *    (client, client_seq), an entry of the log by its `log_ids` row (`sqlite-write.ts` writes
 *    both, `sqlite-reads.ts` finds them). A new push reads no entry: the client's high-water
 *    mark tells it from a resend.
 *
 * Measured (relay bench, 10 connections, same run): see the README's Performance section; the
 * layouts compared while choosing are in `sqlite-lean-layout.ts`.
 */
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import Database from 'better-sqlite3'
import type { Hash, Schema, StoredEntry } from '@ledgerline/core'
import {
  ENTITY_STATES_MAX,
  createCommitListeners,
  createEntityStates,
  createGroupCommit,
  droppedMessage,
  groupCommitOptionsOf,
  LogStoreError,
  planGroup,
} from '@ledgerline/log'
import type {
  AppendResult,
  HistoryRead,
  LogRetention,
  RetentionCut,
  RetentionDrop,
  ClientRecord,
  LedgerSnapshots,
  LoggedEntity,
  SnapshotPage,
  SnapshotPut,
  CommitOutcome,
  EntityHead,
  GroupCommit,
  LogStore,
  LogStoreOptions,
  AppendItem,
  PlanCall,
  PlanLookups,
  Pusher,
} from '@ledgerline/log'
import type { LedgerSnapshot, LogIdentity } from '@ledgerline/protocol'
import { nodeRandom, nodeSha256 } from './node-crypto.ts'
import {
  assertDurable,
  bumpGeneration,
  initIdentity,
  initPartitions,
  migrate,
  readIdentity,
} from './sqlite-migrations.ts'
import { RelayError } from './relay-error.ts'
import { createSqliteLookups, prepareReads, toStored } from './sqlite-reads.ts'
import type { EntryRow, SqliteReads } from './sqlite-reads.ts'
import { createSqliteRefs } from './sqlite-refs.ts'
import type { SqliteRefs } from './sqlite-refs.ts'
import { createSqliteRetention } from './sqlite-retention.ts'
import type { SqliteRetention } from './sqlite-retention.ts'
import { createSqliteSnapshots } from './sqlite-snapshots.ts'
import type { SqliteSnapshots } from './sqlite-snapshots.ts'
import { createSqliteWriter } from './sqlite-write.ts'
import type { SqliteWriter } from './sqlite-write.ts'
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
export async function createSqliteStore(
  options: SqliteStoreOptions,
): Promise<LogStore & LedgerSnapshots & LogRetention> {
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

class SqliteStore implements LogStore, LedgerSnapshots, LogRetention {
  readonly partitions: number
  readonly #db: Database.Database
  readonly #schema: Schema | undefined
  readonly #now: () => number
  readonly #states
  readonly #listeners = createCommitListeners()
  readonly #commits: GroupCommit
  readonly #sql: SqliteReads
  readonly #lookups: PlanLookups
  readonly #bugs: SqliteStoreBugs | undefined
  readonly #hash: Hash
  readonly #refs: SqliteRefs
  readonly #writer: SqliteWriter
  readonly #snapshots: SqliteSnapshots
  readonly #retention: SqliteRetention
  readonly #puts: {
    tenant: string
    snapshot: LedgerSnapshot
    resolve: (outcome: SnapshotPut) => void
    reject: (error: unknown) => void
  }[] = []
  #closed = false

  constructor(db: Database.Database, partitions: number, options: SqliteStoreOptions) {
    this.#db = db
    this.partitions = partitions
    this.#schema = options.schema
    this.#now = options.now ?? Date.now
    this.#hash = options.hash ?? nodeSha256
    this.#states = createEntityStates(options.entityStatesMax ?? ENTITY_STATES_MAX)
    this.#sql = prepareReads(db)
    this.#refs = createSqliteRefs(db)
    this.#writer = createSqliteWriter(db, this.#refs)
    this.#snapshots = createSqliteSnapshots(db)
    this.#retention = createSqliteRetention(db, this.#hash)
    this.#lookups = createSqliteLookups(
      this.#sql,
      this.#refs,
      this.#schema,
      this.#states,
      (tenant, entity, key) => this.#snapshots.get(tenant, entity, key),
      () => this.#retention.anyDropped(),
    )
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

  async readEntity(
    tenant: string,
    entity: string,
    fromVersion: number,
    limit: number,
  ): Promise<StoredEntry[]> {
    const read = await this.readHistory(tenant, entity, fromVersion, limit)
    if (read._tag === 'entries') return read.entries
    throw new LogStoreError('history_dropped', droppedMessage(entity, fromVersion, read.firstKept))
  }

  readHistory(
    tenant: string,
    entity: string,
    fromVersion: number,
    limit: number,
  ): Promise<HistoryRead> {
    return this.#read((): HistoryRead => {
      const firstKept = this.#retention.firstKept(tenant, entity)
      if (fromVersion < firstKept) return { _tag: 'dropped', firstKept }
      const rows = this.#sql.readEntity.all(tenant, entity, fromVersion, limit) as EntryRow[]
      return { _tag: 'entries', entries: rows.map(toStored) }
    })
  }

  firstKept(tenant: string, entity: string): Promise<number> {
    return this.#read(() => this.#retention.firstKept(tenant, entity))
  }

  partitionsFirstKept(tenant: string): Promise<number[]> {
    return this.#read(() => this.#retention.partitionsFirstKept(tenant, this.partitions))
  }

  async dropHistory(cuts: readonly RetentionCut[]): Promise<RetentionDrop> {
    if (this.#closed) throw new RelayError('store_closed', 'the log is closed')
    try {
      return this.#retention.drop(cuts)
    } catch (error) {
      throw new RelayError('store_failed', `drop failed: ${messageOf(error)}`, { cause: error })
    }
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

  putSnapshot(tenant: string, snapshot: LedgerSnapshot): Promise<SnapshotPut> {
    if (this.#closed) return Promise.reject(new RelayError('store_closed', 'the log is closed'))
    // Puts of one turn share one transaction (`sqlite-snapshots.ts` invariant 5).
    return new Promise((resolve, reject) => {
      this.#puts.push({ tenant, snapshot, resolve, reject })
      if (this.#puts.length === 1) nodeDefer(() => this.#flushPuts())
    })
  }

  #flushPuts(): void {
    const puts = this.#puts.splice(0)
    if (puts.length === 0) return
    try {
      if (this.#closed && !this.#db.open) throw new RelayError('store_closed', 'the log is closed')
      const outcomes = this.#snapshots.putMany(puts)
      puts.forEach((p, i) => {
        const outcome = outcomes[i] as SnapshotPut | Error
        if (outcome instanceof Error) p.reject(outcome)
        else p.resolve(outcome)
      })
    } catch (error) {
      const failed =
        error instanceof RelayError
          ? error
          : new RelayError('store_failed', `snapshot failed: ${messageOf(error)}`, {
              cause: error,
            })
      for (const p of puts) p.reject(failed)
    }
  }

  snapshot(tenant: string, entity: string, foldKey: string): Promise<LedgerSnapshot | undefined> {
    return this.#read(() => this.#snapshots.get(tenant, entity, foldKey))
  }

  snapshotsInScope(
    tenant: string,
    patterns: readonly string[],
    foldKeys: readonly string[],
    after: string | undefined,
    limit: number,
  ): Promise<SnapshotPage> {
    return this.#read(() => this.#snapshots.inScope(tenant, patterns, foldKeys, after, limit))
  }

  entities(
    after: string | undefined,
    limit: number,
  ): Promise<{ entities: LoggedEntity[]; next: string | undefined }> {
    return this.#read(() => this.#snapshots.entities(after, limit))
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    // Appends already accepted are finished first (guarantee 9), snapshots gathered too.
    await this.#commits.close()
    this.#flushPuts()
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
          this.#writer.write(p, committedAt)
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

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

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
 * 10. With `writer: 'worker'` the COMMIT and its fsync run off the event loop, in a writer thread
 *    with its own connection (`sqlite-writer-thread.ts`, `sqlite-worker.ts`): the group is
 *    planned here in one read transaction of this connection, then written and committed there
 *    in one `BEGIN IMMEDIATE` transaction. Invariant 2's "against the file as it is" holds
 *    because the writer thread is the file's only writer (invariant 7; snapshot puts and
 *    generation bumps go to it too) and the group commit has one group in flight, planned only
 *    after the previous one's COMMIT returned. A read this thread starts after an append
 *    resolved sees it (WAL: a new read transaction sees every committed one). A schema is live
 *    code (functions), which cannot cross to a thread, so the planning stays here.
 * 11. Opening rehearses one append (`rehearse`): a call of one entry goes through a group commit
 *    of its own (the scheduler's code, not its queue), is planned and written in a transaction
 *    that is then rolled back, and is answered, so the first real append after a restart does
 *    not pay alone for the group commit's, the planner's, decide's and the writer's first run
 *    and the first steps of their statements. Nothing of it stays: the transaction rolls back,
 *    the refs it made are forgotten, no state is remembered (invariant 4) and no commit listener
 *    is told; a rehearsal that fails is only a colder start. Then one commit of
 *    `meta.opened_at` makes the WAL file, so the first append syncs once. With
 *    `writer: 'worker'` (invariant 10) the plan is made here and written and rolled back by the
 *    writer thread, which also commits `meta.opened_at`: its connection, its statements and its
 *    first COMMIT are the ones an append uses (measured, first push after a restart, load 4
 *    to 8 on 2 cores: its COMMIT took 3 to 13 ms, a warm one under 1 ms). All of it runs
 *    before the store is returned, so before the relay listens and `/healthz` answers, and
 *    before any append.
 *
 * Measured (relay bench, 10 connections, same run): see the README's Performance section; the
 * layouts compared while choosing are in `sqlite-lean-layout.ts`.
 */
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import Database from 'better-sqlite3'
import { entryId } from '@ledgerline/core'
import type { Entry, Hash, Schema, StoredEntry } from '@ledgerline/core'
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
  LedgerRead,
  LedgerReads,
  LedgerTail,
  LogRetention,
  RetentionCut,
  RetentionDrop,
  ClientRecord,
  LedgerSnapshots,
  EntitySpanPage,
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
  Plan,
  PlanContext,
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
  writeOpenedAt,
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
import { createSqliteWriter, writePlanOf } from './sqlite-write.ts'
import type { SqliteWriter } from './sqlite-write.ts'
import { startWriterThread } from './sqlite-writer-thread.ts'
import type { WriterThread, WriterThreadOptions } from './sqlite-writer-thread.ts'
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
  /**
   * Where group transactions run (invariant 10): `thread`, on the caller's thread, or `worker`,
   * in a writer thread of their own; default `SQLITE_WRITER_DEFAULT`.
   */
  readonly writer?: SqliteWriterKind | undefined
  /**
   * Told once when the writer thread dies (`writer: 'worker'`): the store fails every append
   * after it; the relay logs it and exits.
   */
  readonly onFailed?: ((error: RelayError) => void) | undefined
  /** Test-only hooks of the writer thread (`writer: 'worker'`). */
  readonly writerThread?: Pick<WriterThreadOptions, 'dieInWrite' | 'onWorker'> | undefined
}

/** Where a SQLite log runs its group transactions (`SqliteStoreOptions.writer`). */
export type SqliteWriterKind = 'thread' | 'worker'

/**
 * The writer a SQLite log runs when none is named: the writer thread, which measured better
 * (README, Performance: the open-loop ack p99 and the event-loop delay, same run).
 */
export const SQLITE_WRITER_DEFAULT: SqliteWriterKind = 'worker'

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
): Promise<LogStore & LedgerSnapshots & LogRetention & LedgerReads> {
  mkdirSync(dirname(options.file), { recursive: true })
  let db: Database.Database
  try {
    db = new Database(options.file)
  } catch (error) {
    throw new RelayError('store_failed', `cannot open SQLite log ${options.file}`, {
      cause: error,
    })
  }
  let thread: WriterThread | undefined
  try {
    assertDurable(db)
    migrate(db, options.hash ?? nodeSha256)
    const partitions = initPartitions(db, options.partitions)
    initIdentity(db, options.random ?? nodeRandom)
    if ((options.writer ?? SQLITE_WRITER_DEFAULT) === 'worker') {
      if (options.bugs?.ackBeforeCommit === true) {
        throw new RelayError('config', 'bugs.ackBeforeCommit needs writer: thread')
      }
      thread = await startWriterThread({
        file: options.file,
        onFailed: options.onFailed,
        ...options.writerThread,
      })
    }
    const store = new SqliteStore(db, partitions, options, thread)
    await store.rehearse()
    options.onOpened?.(db)
    return store
  } catch (error) {
    await thread?.close()
    db.close()
    throw error
  }
}

/** Thrown inside the rehearsal's transaction, to roll it back (invariant 11). */
class Rehearsed extends Error {}

/** The tenant and client of a rehearsal: rolled back, so they never reach the file. */
const REHEARSAL_TENANT = 'ledgerline.rehearsal'
const REHEARSAL_CLIENT = '0'.repeat(32)

/** One fact on an entity of the schema's first ledger type (a plain log: any entity). */
function rehearsalCall(schema: Schema | undefined, at: number): PlanCall {
  const types = [...(schema?.types.values() ?? [])]
  const type = types.find((t) => t.crdt === undefined) ?? types[0]
  const name = type?.type ?? 'rehearsal'
  const kind = Object.keys(type?.kinds ?? {})[0] ?? `${name}.rehearsed`
  const entry: Entry = {
    id: entryId(REHEARSAL_CLIENT, 1),
    tenant: REHEARSAL_TENANT,
    entity: `${name}/rehearsal`,
    kind,
    data: {},
    intent: 'fact',
    clientId: REHEARSAL_CLIENT,
    clientSeq: 1,
    hlc: `${String(at).padStart(15, '0')}:00000:${REHEARSAL_CLIENT}`,
    occurredAt: at,
  }
  return { tenant: REHEARSAL_TENANT, items: [{ entry }] }
}

// ---------------------------------------------------------------------------------------------

class SqliteStore implements LogStore, LedgerSnapshots, LogRetention, LedgerReads {
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
  readonly #thread: WriterThread | undefined
  #closed = false

  constructor(
    db: Database.Database,
    partitions: number,
    options: SqliteStoreOptions,
    thread: WriterThread | undefined,
  ) {
    this.#db = db
    this.#thread = thread
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
      commit: (group) =>
        thread === undefined ? this.#commit(group) : this.#commitIn(thread, group),
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

  /**
   * Invariant 11: one append through a group commit of its own, planned and written, then rolled
   * back; then the opening time committed by the connection appends are committed on.
   */
  async rehearse(): Promise<void> {
    const committedAt = this.#now()
    const thread = this.#thread
    let written = false
    const rehearsal = createGroupCommit({
      commit: async (group): Promise<CommitOutcome> => {
        const plan = this.#db
          .transaction(() => planGroup(this.#planContext(committedAt), group))
          .deferred()
        if (thread !== undefined) {
          // The writer thread writes it, rolls it back and commits the opening time.
          await thread.rehearse(writePlanOf(plan), committedAt)
          written = true
        } else {
          try {
            this.#db
              .transaction(() => {
                this.#writer.write(writePlanOf(plan), committedAt)
                throw new Rehearsed()
              })
              .immediate()
          } catch (error) {
            if (!(error instanceof Rehearsed)) throw error
          } finally {
            this.#refs.rolledBack()
          }
        }
        return { results: plan.results, touched: [] }
      },
      // A microtask, not the store's `defer`: a simulation's clock (`LogStoreOptions.defer`)
      // does not run while the open is awaited, and the rehearsal needs no gathering.
      defer: queueMicrotask,
    })
    const call = rehearsalCall(this.#schema, committedAt)
    // Rejected, whether by a plan a real append would meet anyway or by the writer thread (which
    // then fails the append after it too): only a colder start.
    await rehearsal.append(call.tenant, call.items).catch(() => undefined)
    await rehearsal.close()
    if (thread !== undefined) {
      // The plan did not reach the thread: it still commits the opening time.
      if (!written) await thread.rehearse(undefined, committedAt)
      return
    }
    // The first commit after opening also makes the WAL file and syncs its header and the
    // directory: three syncs, not one. A commit here pays them (a write that changes no byte
    // commits nothing, so it writes the opening time).
    writeOpenedAt(this.#db, committedAt)
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

  /**
   * `ledger-reads.ts` of `@ledgerline/log`: every tail in one read transaction (invariant 1),
   * the snapshots by key, the entries of every read in one statement (`sqlite-reads.ts`).
   */
  readLedgers(reads: readonly LedgerRead[]): Promise<LedgerTail[]> {
    return this.#read(() => {
      const snapshots = reads.map((r) => this.#snapshots.get(r.tenant, r.entity, r.foldKey))
      // A log no drop ever cut keeps every version (`sqlite-reads.ts` invariant 10).
      const dropped = this.#retention.anyDropped()
      const tails: LedgerTail[] = []
      const wanted: [string, string, number, number][] = []
      // The index in `reads` of each of `wanted`.
      const wantedAt: number[] = []
      const entries: StoredEntry[][] = []
      reads.forEach((r, i) => {
        const snapshot = snapshots[i]
        const from = (snapshot?.version ?? 0) + 1
        const firstKept = dropped ? this.#retention.firstKept(r.tenant, r.entity) : 1
        const list: StoredEntry[] = []
        entries.push(list)
        if (from < firstKept) {
          tails.push({ snapshot, read: { _tag: 'dropped', firstKept } })
          return
        }
        tails.push({ snapshot, read: { _tag: 'entries', entries: list } })
        wanted.push([r.tenant, r.entity, from, from + Math.max(0, r.limit)])
        wantedAt.push(i)
      })
      for (const row of this.#sql.readLedgers.iterate(JSON.stringify(wanted)) as Iterable<
        EntryRow & { i: number }
      >) {
        entries[wantedAt[row.i] as number]?.push(toStored(row))
      }
      // The plan reads each ledger by its (entity, version) index, so in version order; SQL
      // promises no order without ORDER BY (which would sort every body), so it is checked.
      for (const list of entries) {
        if (list.some((e, k) => k > 0 && (list[k - 1] as StoredEntry).version > e.version)) {
          list.sort((a, b) => a.version - b.version)
        }
      }
      return tails
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
    if (this.#thread !== undefined) return await this.#thread.bumpGeneration()
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
      if (this.#puts.length === 1) nodeDefer(() => void this.#flushPuts())
    })
  }

  async #flushPuts(): Promise<void> {
    const puts = this.#puts.splice(0)
    if (puts.length === 0) return
    try {
      if (this.#closed && !this.#db.open) throw new RelayError('store_closed', 'the log is closed')
      const outcomes =
        this.#thread === undefined
          ? this.#snapshots.putMany(puts)
          : await this.#thread.putMany(puts)
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

  entitySpans(
    tenant: string,
    patterns: readonly string[],
    after: string | undefined,
    limit: number,
  ): Promise<EntitySpanPage> {
    return this.#read(() => this.#snapshots.spans(tenant, patterns, after, limit))
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
    await this.#flushPuts()
    this.#listeners.clear()
    await this.#thread?.close()
    this.#db.close()
  }

  // -- one group, one transaction (invariant 2) -----------------------------------------------

  #commit(group: readonly PlanCall[]): CommitOutcome {
    const committedAt = this.#now()
    try {
      const plan = this.#immediate(
        this.#db.transaction(() => {
          const p = planGroup(this.#planContext(committedAt), group)
          this.#writer.write(writePlanOf(p), committedAt)
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

  /**
   * Invariant 10: the group is planned here, in one read transaction of this thread's
   * connection, and written by the writer thread; the cache learns the plan's states once the
   * thread replied (committed). The group commit has one group in flight, so the next plan reads
   * a file that holds this one.
   */
  async #commitIn(thread: WriterThread, group: readonly PlanCall[]): Promise<CommitOutcome> {
    const committedAt = this.#now()
    let plan: Plan
    try {
      plan = this.#db.transaction(() => planGroup(this.#planContext(committedAt), group)).deferred()
    } catch (error) {
      if (error instanceof RelayError) throw error
      throw new RelayError('store_failed', `append failed: ${messageOf(error)}`, { cause: error })
    }
    await thread.write(writePlanOf(plan), committedAt)
    if (this.#schema !== undefined) this.#states.remember(plan.heads)
    return { results: plan.results, touched: plan.touched }
  }

  #planContext(committedAt: number): PlanContext {
    return {
      schema: this.#schema,
      partitions: this.partitions,
      committedAt,
      lookups: this.#lookups,
      hash: this.#hash,
      ignoreDigests: this.#bugs?.ignoreDigests,
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

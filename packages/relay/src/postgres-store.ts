/**
 * The scale-out server log: a `LogStore` on PostgreSQL (`pg`), shared by several stateless
 * relays. See `log-store.ts` for the guarantees every store keeps; this file says how.
 *
 * Terms: a *call* is one `append(tenant, items)`; a *group* is the calls of this relay merged
 * into one transaction (group commit); the *lock set* is the partitions whose head rows a group
 * locks; a *plan* (`planGroup` of `@ledgerline/log`) is the group's decisions, made in memory
 * against what the transaction read under those locks. This store decides nothing itself: it
 * locks, reads what the planner asks for, and writes the plan. Its SQL text is in
 * `postgres-sql.ts`, what a group reads in `postgres-rows.ts` and writes in `postgres-write.ts`,
 * one group's transaction in `postgres-append.ts`.
 *
 *   append() ─► createGroupCommit ─(defer)─► group ≤ GROUP_COMMIT_ENTRIES_MAX entries,
 *     up to PG_GROUPS_IN_FLIGHT_MAX groups at once; bodies encoded before any lock
 *     ┌ one round trip (pipelined) ─────────────────────────────────────────────────────────┐
 *     │ BEGIN; select … from partition_heads where partition = any(lock set)                │
 *     │        order by partition for update     ── waits for other groups on those rows   │
 *     │ read: client high-water marks; entity heads                                         │
 *     └─────────────────────────────────────────────────────────────────────────────────────┘
 *     only if needed: earlier results of resent ids; ledgers to fold on a cache miss
 *     plan (pure) ── needs a partition outside the lock set? ROLLBACK, relock with it, again
 *     ┌ one round trip (pipelined) ─────────────────────────────────────────────────────────┐
 *     │ one statement: insert entries, refusals; upsert clients; update heads; pg_notify    │
 *     │ COMMIT (fsync)                                                                      │
 *     └─────────────────────────────────────────────────────────────────────────────────────┘
 *     ─► resolve each call ─► onCommit listeners
 *
 * Invariants:
 * 1. Every decision is made against the database as it is under the lock: an entity lives in
 *    one partition, and a group holds the head rows of all partitions it reads or writes until
 *    it commits. So no two transactions (of this relay or another) decide on the same entity
 *    at once, and versions are head + 1 (guarantee 3); `unique (tenant, entity, version)` and
 *    `unique (tenant, id)` turn any slip into a failed transaction, never a wrong row.
 * 2. Offsets come from the partition's head row updated in the same transaction as its entries;
 *    the row lock is held to commit, so offsets are gap-free and in commit order (guarantee 4).
 *    A reader's page and the head it is measured against come from one statement (one snapshot).
 * 3. Appends cannot deadlock one another: head rows are locked in ascending order, and a group
 *    that needs one more partition (a correction elsewhere) starts again with it
 *    (`postgres-append.ts`).
 * 4. Entity states in the LRU are trusted only when their version equals the version read in the
 *    transaction (another relay may have appended); otherwise the ledger is folded forward from
 *    the cached version. A rolled-back transaction leaves every cache as it was.
 * 5. One NOTIFY per committed group (payload: this store's id and the new heads of the partitions
 *    it wrote), never per row; other relays also poll the heads (`postgres-commit-feed.ts`).
 * 6. A group that fails for a passing reason is tried again from the start
 *    (`postgres-append.ts`); dedupe makes a retry after an unknown commit outcome answer
 *    `duplicate`, never a second row. A group that still fails is split by the group commit:
 *    every call is tried alone, so one bad call rejects only itself.
 * 7. A client's pipelined pushes reach the log in the order they were sent (clientSeq is
 *    checked against the committed high-water mark): the group commit keeps up to
 *    `PG_GROUPS_IN_FLIGHT_MAX` groups in flight, but never two holding calls of one client, and
 *    a call waits while an earlier call of its client waits (`group-commit.ts` invariant 5).
 *    Groups in flight that share a partition are ordered by its head row lock (invariant 2).
 *    While other relays have committed within `PG_SHARED_LOG_WINDOW_MS`, one group at a time.
 * 8. Start refuses a database that does not fsync commits (`fsync`, `synchronous_commit`):
 *    `RelayError('durability')`. Triggers refuse any update or delete of entries and refusals
 *    (migration 3, guarantee 6).
 * 9. Statements that need no answer in between are sent together on the store's own pool
 *    (`pg` pipeline mode, two round trips per group: `postgres-append.ts`): PostgreSQL still
 *    runs them one after another, each read with a snapshot taken after the lock statement
 *    returned (read committed), so the reads see every commit of whoever held the rows before.
 *    On a pool the caller made they go one at a time. How the statements are written and named
 *    is in `postgres-sql.ts`.
 * 10. Digests (`digest` columns, migration 3) are kept for client entries, refusals and
 *    deferrals, and computed with the bodies before any lock. The `corrects` column is written
 *    for the log's own corrections only, and the lookup of an entry's corrections also asks that
 *    a row's id derives from the entry's (rows of older builds), so a client entry that names
 *    another is never listed as a correction of it. The entries that client entries' `corrects`
 *    name are read with the earlier results, in the same round trip.
 */
import { randomBytes } from 'node:crypto'
import type pg from 'pg'
import type { Pool } from 'pg'
import type { Schema, StoredEntry } from '@ledgerline/core'
import {
  createCommitListeners,
  createEntityStates,
  createGroupCommit,
  groupCommitOptionsOf,
  ENTITY_STATES_MAX,
  isLogStoreError,
} from '@ledgerline/log'
import type {
  HistoryRead,
  LedgerRead,
  LedgerReads,
  LedgerTail,
  LogRetention,
  RetentionCut,
  RetentionDrop,
  AppendItem,
  AppendResult,
  ClientRecord,
  LedgerSnapshots,
  EntitySpanPage,
  LoggedEntity,
  SnapshotPage,
  SnapshotPut,
  CommitOutcome,
  EntityHead,
  EntityStates,
  GroupCommit,
  LogStore,
  LogStoreOptions,
  Plan,
  PlanCall,
  Pusher,
} from '@ledgerline/log'
import type { LedgerSnapshot, LogIdentity } from '@ledgerline/protocol'
import { commitGroup } from './postgres-append.ts'
import type { GroupContext } from './postgres-append.ts'
import { createCommitFeed } from './postgres-commit-feed.ts'
import type { CommitFeed } from './postgres-commit-feed.ts'
import {
  PG_GROUPS_IN_FLIGHT_MAX,
  PG_SHARED_LOG_WINDOW_MS,
  PG_POLL_INTERVAL_MS,
} from './postgres-limits.ts'
import { migratePostgres } from './postgres-migrations.ts'
import { nodeRandom, nodeSha256 } from './node-crypto.ts'
import * as pgRetention from './postgres-retention.ts'
import * as pgRows from './postgres-rows.ts'
import * as pgSnapshots from './postgres-snapshots.ts'
import type { EntryRow } from './postgres-sql.ts'
import * as pgSql from './postgres-sql.ts'
import { RelayError } from './relay-error.ts'
import { nodeDefer } from './timers.ts'

export interface PostgresStoreOptions extends LogStoreOptions {
  /** `postgres://user@host:port/database`; the store makes and ends its own pool. */
  readonly url?: string | undefined
  /** A pool to use instead (the caller ends it); one of its connections is kept for LISTEN. */
  readonly pool?: Pool | undefined
  /** Poll interval of the partition heads, the fallback for missed notifications. */
  readonly pollIntervalMs?: number | undefined
  /**
   * `false` to rely on polling alone, for Postgres-compatible engines without LISTEN/NOTIFY
   * (CockroachDB); commits still send their one NOTIFY unless `notify` is false too.
   */
  readonly listen?: boolean | undefined
  /** `false` to send no NOTIFY (engines without it); other relays then find commits by polling. */
  readonly notify?: boolean | undefined
  /** Group transactions one store keeps in flight at once (invariant 7). */
  readonly groupsInFlightMax?: number | undefined
  readonly entityStatesMax?: number | undefined
}

/**
 * Opens the PostgreSQL server log, applying migrations on start.
 *
 * @example
 * const store = await createPostgresStore({ url: 'postgres://ledgerline@db/ledgerline', schema })
 * const [result] = await store.append('acme', [{ entry }])
 * await store.close()
 */
export async function createPostgresStore(
  options: PostgresStoreOptions,
): Promise<LogStore & LedgerSnapshots & LogRetention & LedgerReads> {
  if ((options.url === undefined) === (options.pool === undefined)) {
    throw new RelayError('config', 'createPostgresStore needs exactly one of url and pool')
  }
  const ownPool = options.pool === undefined
  const pool = options.pool ?? pgSql.createPool(options.url as string)
  // An idle connection that breaks (database restarted) must not crash the relay: the next
  // query fails instead, and is retried or reported.
  const onIdleError = () => undefined
  pool.on('error', onIdleError)
  try {
    const client = await pgSql.connect(pool)
    const ignore = () => undefined
    client.on('error', ignore)
    let partitions: number
    try {
      await pgSql.assertDurable(client)
      partitions = await migratePostgres(client, options.partitions, {
        hash: options.hash ?? nodeSha256,
        random: options.random ?? nodeRandom,
      })
    } finally {
      client.removeListener('error', ignore)
      client.release()
    }
    const heads = await pgSql.readHeads(pool, partitions)
    return new PostgresStore(pool, ownPool, partitions, heads, options)
  } catch (error) {
    if (ownPool) await pool.end().catch(() => undefined)
    else pool.removeListener('error', onIdleError)
    if (error instanceof RelayError) throw error
    throw new RelayError('store_failed', `cannot open PostgreSQL log: ${messageOf(error)}`, {
      cause: error,
    })
  }
}

// ---------------------------------------------------------------------------------------------

class PostgresStore implements LogStore, LedgerSnapshots, LogRetention, LedgerReads {
  readonly partitions: number
  readonly #pool: Pool
  readonly #ownPool: boolean
  readonly #schema: Schema | undefined
  readonly #id = randomBytes(8).toString('hex')
  readonly #states: EntityStates
  readonly #listeners = createCommitListeners()
  readonly #feed: CommitFeed
  readonly #group: GroupContext
  readonly #commits: GroupCommit
  /** When the feed last reported a commit of another relay (ms since the epoch). */
  #othersCommittedAt = 0
  #closed = false

  constructor(
    pool: Pool,
    ownPool: boolean,
    partitions: number,
    heads: readonly number[],
    options: PostgresStoreOptions,
  ) {
    this.#pool = pool
    this.#ownPool = ownPool
    this.partitions = partitions
    this.#schema = options.schema
    this.#states = createEntityStates(options.entityStatesMax ?? ENTITY_STATES_MAX)
    this.#group = {
      pool,
      partitions,
      schema: options.schema,
      now: options.now ?? Date.now,
      hash: options.hash ?? nodeSha256,
      states: this.#states,
      storeId: this.#id,
      notify: options.notify ?? true,
    }
    const inFlightMax = Math.max(1, options.groupsInFlightMax ?? PG_GROUPS_IN_FLIGHT_MAX)
    const listen = options.listen ?? true
    this.#feed = createCommitFeed({
      pool,
      selfId: this.#id,
      partitions,
      pollIntervalMs: options.pollIntervalMs ?? PG_POLL_INTERVAL_MS,
      initialHeads: heads,
      listen,
      onChange: (touched) => {
        // Without LISTEN, a poll that found heads advanced is the only sign of other relays.
        if (!listen) this.#othersCommittedAt = Date.now()
        this.#listeners.tell(touched)
      },
      onOtherRelay: () => {
        this.#othersCommittedAt = Date.now()
      },
    })
    this.#commits = createGroupCommit({
      commit: (group) => this.#commit(group),
      onCommitted: (touched) => this.#listeners.tell(touched),
      ...groupCommitOptionsOf(options, nodeDefer),
      // While other relays commit too, their groups already queue for the head rows behind
      // ours; a second group of our own would only cut our groups smaller (measured: two relays
      // with two groups each delivered less than one relay).
      groupsInFlightMax: () =>
        Date.now() - this.#othersCommittedAt < PG_SHARED_LOG_WINDOW_MS ? 1 : inFlightMax,
    })
  }

  append(
    tenant: string,
    items: readonly AppendItem[],
    pusher?: Pusher | undefined,
  ): Promise<AppendResult[]> {
    return this.#commits.append(tenant, items, pusher)
  }

  async readPartition(
    tenant: string,
    partition: number,
    afterOffset: number,
    limit: number,
  ): Promise<{ entries: StoredEntry[]; throughOffset: number }> {
    // One statement, so the page and the head it is measured against share one snapshot.
    const { rows } = await this.#read<EntryRow & { head: number }>(pgSql.READ_PARTITION_SQL, [
      tenant,
      partition,
      afterOffset,
      limit,
    ])
    const head = rows[0]?.head ?? 0
    const entries = rows.filter((r) => r.body !== null).map(pgRows.toStored)
    const last = entries.at(-1)
    const throughOffset =
      entries.length >= limit && last !== undefined ? last.offset : Math.max(afterOffset, head)
    return { entries, throughOffset }
  }

  readEntity(
    tenant: string,
    entity: string,
    fromVersion: number,
    limit: number,
  ): Promise<StoredEntry[]> {
    return this.#retained(() =>
      pgRetention.readKept(this.#pool, tenant, entity, fromVersion, limit),
    )
  }

  readHistory(
    tenant: string,
    entity: string,
    fromVersion: number,
    limit: number,
  ): Promise<HistoryRead> {
    return this.#retained(() =>
      pgRetention.readHistory(this.#pool, tenant, entity, fromVersion, limit),
    )
  }

  /**
   * `ledger-reads.ts` of `@ledgerline/log`: every tail in one REPEATABLE READ transaction of one
   * connection (invariant 1), so snapshots and entries are of one point of the log.
   */
  readLedgers(reads: readonly LedgerRead[]): Promise<LedgerTail[]> {
    return this.#retained(async () => {
      const client = await this.#pool.connect()
      try {
        await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
        const tails: LedgerTail[] = []
        for (const r of reads) {
          const snapshot = await pgSnapshots.getSnapshot(client, r.tenant, r.entity, r.foldKey)
          const from = (snapshot?.version ?? 0) + 1
          const read = await pgRetention.readHistory(client, r.tenant, r.entity, from, r.limit)
          tails.push({ snapshot, read })
        }
        await client.query('COMMIT')
        return tails
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined)
        throw error
      } finally {
        client.release()
      }
    })
  }

  firstKept(tenant: string, entity: string): Promise<number> {
    return this.#retained(() => pgRetention.firstKept(this.#pool, tenant, entity))
  }

  partitionsFirstKept(tenant: string): Promise<number[]> {
    return this.#retained(() =>
      pgRetention.partitionsFirstKept(this.#pool, tenant, this.partitions),
    )
  }

  dropHistory(cuts: readonly RetentionCut[]): Promise<RetentionDrop> {
    return this.#retained(() => pgRetention.dropHistory(this.#pool, cuts, this.#group.hash))
  }

  /** A read or drop of retention: its typed outcome as it is, a database error `store_failed`. */
  async #retained<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#closed) throw new RelayError('store_closed', 'the log is closed')
    try {
      return await fn()
    } catch (error) {
      if (error instanceof RelayError || isLogStoreError(error)) throw error
      throw new RelayError('store_failed', `read failed: ${messageOf(error)}`, { cause: error })
    }
  }

  async head(tenant: string, entity: string): Promise<EntityHead> {
    const { rows } = await this.#read<{ version: number; offset: number }>(pgSql.ENTITY_HEAD_SQL, [
      tenant,
      entity,
    ])
    return rows[0] ?? { version: 0, offset: 0 }
  }

  async client(tenant: string, clientId: string): Promise<ClientRecord> {
    const { rows } = await this.#read<ClientRecord>(pgSql.CLIENT_SQL, [tenant, clientId])
    return rows[0] ?? { high: 0, subject: null }
  }

  async identity(): Promise<LogIdentity> {
    const { rows } = await this.#read<{ id: string | null; generation: number }>(
      pgSql.IDENTITY_SQL,
      [],
    )
    return pgSql.identityOf(rows)
  }

  async bumpGeneration(): Promise<LogIdentity> {
    const { rows } = await this.#read<{ id: string | null; generation: number }>(
      pgSql.BUMP_GENERATION_SQL,
      [],
    )
    return pgSql.identityOf(rows)
  }

  async partitionHeads(): Promise<number[]> {
    if (this.#closed) throw new RelayError('store_closed', 'the log is closed')
    try {
      return await pgSql.readHeads(this.#pool, this.partitions)
    } catch (error) {
      throw new RelayError('store_failed', `read failed: ${messageOf(error)}`, { cause: error })
    }
  }

  onCommit(listener: (partitions: readonly number[]) => void): () => void {
    return this.#listeners.add(listener)
  }

  putSnapshot(tenant: string, snapshot: LedgerSnapshot): Promise<SnapshotPut> {
    return this.#call(() => pgSnapshots.putSnapshot(this.#pool, tenant, snapshot))
  }

  snapshot(tenant: string, entity: string, foldKey: string): Promise<LedgerSnapshot | undefined> {
    return this.#call(() => pgSnapshots.getSnapshot(this.#pool, tenant, entity, foldKey))
  }

  snapshotsInScope(
    tenant: string,
    patterns: readonly string[],
    foldKeys: readonly string[],
    after: string | undefined,
    limit: number,
  ): Promise<SnapshotPage> {
    return this.#call(() =>
      pgSnapshots.snapshotsInScope(this.#pool, tenant, patterns, foldKeys, after, limit),
    )
  }

  entitySpans(
    tenant: string,
    patterns: readonly string[],
    after: string | undefined,
    limit: number,
  ): Promise<EntitySpanPage> {
    return this.#call(() => pgSnapshots.entitySpans(this.#pool, tenant, patterns, after, limit))
  }

  entities(
    after: string | undefined,
    limit: number,
  ): Promise<{ entities: LoggedEntity[]; next: string | undefined }> {
    return this.#call(() => pgSnapshots.entitiesPage(this.#pool, after, limit))
  }

  async #call<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#closed) throw new RelayError('store_closed', 'the log is closed')
    try {
      return await fn()
    } catch (error) {
      if (error instanceof RelayError) throw error
      throw new RelayError('store_failed', `snapshot failed: ${messageOf(error)}`, {
        cause: error,
      })
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return
    // Appends already accepted are finished first (guarantee 9).
    await this.#commits.close()
    this.#closed = true
    this.#listeners.clear()
    await this.#feed.close()
    if (this.#ownPool) await this.#pool.end()
  }

  // -- one group --------------------------------------------------------------------------------

  async #commit(group: readonly PlanCall[]): Promise<CommitOutcome> {
    let plan: Plan
    try {
      plan = await commitGroup(this.#group, group)
    } catch (error) {
      throw pgSql.asStoreError(error)
    }
    // Groups in flight at once commit in lock order, but their answers may be read in another
    // order: the cache never takes an older state (`entity-states.ts` invariant 2).
    if (this.#schema !== undefined) this.#states.remember(plan.heads)
    this.#feed.advance(plan.partitionHeads)
    return { results: plan.results, touched: plan.touched }
  }

  async #read<R extends pg.QueryResultRow>(
    sql: string,
    params: unknown[],
  ): Promise<pg.QueryResult<R>> {
    if (this.#closed) throw new RelayError('store_closed', 'the log is closed')
    try {
      return await pgSql.q<R>(this.#pool, sql, params)
    } catch (error) {
      throw new RelayError('store_failed', `read failed: ${messageOf(error)}`, { cause: error })
    }
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

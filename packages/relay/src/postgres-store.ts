/**
 * The scale-out server log: a `LogStore` on PostgreSQL (`pg`), shared by several stateless
 * relays. See `log-store.ts` for the guarantees every store keeps; this file says how.
 *
 * Terms: a *call* is one `append(tenant, items)`; a *group* is the calls of this relay merged
 * into one transaction (group commit); the *lock set* is the partitions whose head rows a group
 * locks; a *plan* (`append-plan.ts`) is the group's decisions, made in memory against what the
 * transaction read under those locks.
 *
 *   append() ─► queue ─(setImmediate)─► group ≤ GROUP_COMMIT_ENTRIES_MAX entries,
 *     up to PG_GROUPS_IN_FLIGHT_MAX groups at once; bodies serialized before any lock
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
 * 3. Head rows are locked in ascending partition order and nothing else is locked before them;
 *    a group that finds it needs one more partition (a correction to an entity elsewhere) rolls
 *    back and starts again with it. So appends cannot deadlock one another.
 * 4. Entity states in the LRU are trusted only when their version equals the version read in the
 *    transaction (another relay may have appended); otherwise the ledger is folded forward from
 *    the cached version. A rolled-back transaction leaves every cache as it was.
 * 5. One NOTIFY per committed group (payload: this store's id and the new heads of the partitions
 *    it wrote), never per row; other relays also poll the heads (`postgres-commit-feed.ts`).
 * 6. A group that fails for a passing reason (deadlock, lock timeout, a racing unique insert, a
 *    lost connection) is tried again from the start, up to `PG_APPEND_ATTEMPTS_MAX`; dedupe
 *    makes a retry after an unknown commit outcome answer `duplicate`, never a second row. A
 *    group that still fails is split: every call is tried alone, so one bad call rejects only
 *    itself.
 * 7. A client's pipelined pushes reach the log in the order they were sent (clientSeq is
 *    checked against the committed high-water mark): a store keeps up to
 *    `PG_GROUPS_IN_FLIGHT_MAX` groups in flight, but never two holding calls of one client, and
 *    a call waits while an earlier call of its client waits. Groups in flight that share a
 *    partition are ordered by its head row lock like groups of different relays (invariant 2).
 *    While other relays have committed within `PG_SHARED_LOG_WINDOW_MS`, one group at a time.
 * 8. Start refuses a database that does not fsync commits (`fsync`, `synchronous_commit`):
 *    `RelayError('durability')`.
 * 9. Statements that need no answer in between are sent together on the store's own pool
 *    (`pg` pipeline mode): PostgreSQL still runs them one after another, each read with a
 *    snapshot taken after the lock statement returned (read committed), so the reads see every
 *    commit of whoever held the rows before. On a pool the caller made they go one at a time.
 *    The hot statements are named (parsed and planned once per connection); array parameters
 *    are written as literals here (`pg` escapes each element with two regexes), and a group's
 *    bodies go as one binary parameter that the write statement cuts (no hex text).
 */
import { randomBytes } from 'node:crypto'
import { deserialize, serialize } from 'node:v8'
import pg from 'pg'
import type { Pool, PoolClient } from 'pg'
import { partitionOf, SERVER_CLIENT_ID, unreachable } from '@ledgerline/core'
import type { Entry, Schema, StoredEntry } from '@ledgerline/core'
import type { AckResult } from '@ledgerline/protocol'
import { joinKey, PlanMiss, planGroup, splitKey } from './append-plan.ts'
import type { Plan, PlanCall, PlanHead, PlanLookups, PlannedEntry } from './append-plan.ts'
import { ENTITY_STATES_MAX, GROUP_COMMIT_ENTRIES_MAX } from './limits.ts'
import type { AppendItem, EntityHead, LogStore, LogStoreOptions } from './log-store.ts'
import { createCommitFeed, encodeCommitPayload, PG_COMMIT_CHANNEL } from './postgres-commit-feed.ts'
import type { CommitFeed } from './postgres-commit-feed.ts'
import {
  PG_APPEND_ATTEMPTS_MAX,
  PG_APPEND_RETRY_MS,
  PG_FOLD_PAGE_ENTRIES_MAX,
  PG_GROUPS_IN_FLIGHT_MAX,
  PG_SHARED_LOG_WINDOW_MS,
  PG_LOCK_TIMEOUT_MS,
  PG_POLL_INTERVAL_MS,
  PG_POOL_CONNECTIONS_MAX,
  PG_STATEMENT_TIMEOUT_MS,
} from './postgres-limits.ts'
import { migratePostgres } from './postgres-migrations.ts'
import { RelayError } from './relay-error.ts'

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
  readonly groupCommitEntriesMax?: number | undefined
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
export async function createPostgresStore(options: PostgresStoreOptions): Promise<LogStore> {
  if ((options.url === undefined) === (options.pool === undefined)) {
    throw new RelayError('config', 'createPostgresStore needs exactly one of url and pool')
  }
  const ownPool = options.pool === undefined
  const pool =
    options.pool ??
    new pg.Pool({
      connectionString: options.url,
      max: PG_POOL_CONNECTIONS_MAX,
      types: PG_TYPES,
      statement_timeout: PG_STATEMENT_TIMEOUT_MS,
      // Invariant 9: the statements of one group step are sent together (one round trip).
      pipeline: true,
    })
  // An idle connection that breaks (database restarted) must not crash the relay: the next
  // query fails instead, and is retried or reported.
  const onIdleError = () => undefined
  pool.on('error', onIdleError)
  try {
    const client = await connect(pool)
    const ignore = () => undefined
    client.on('error', ignore)
    let partitions: number
    try {
      await assertDurable(client)
      partitions = await migratePostgres(client, options.partitions)
    } finally {
      client.removeListener('error', ignore)
      client.release()
    }
    const heads = await readHeads(pool, partitions)
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

interface Call extends PlanCall {
  readonly resolve: (results: AckResult[]) => void
  readonly reject: (error: unknown) => void
  /** `joinKey(tenant, clientId)` of the call's client entries (invariant 7). */
  readonly clients: readonly string[]
}

interface CachedHead {
  readonly version: number
  readonly offset: number
  readonly state: unknown
}

interface EntryRow {
  tenant: string
  partition: number
  offset: number
  version: number
  committed_at: number
  body: Buffer
  corrects?: string | null
}

/** What one transaction has read so far; the plan's lookups answer from it. */
interface Loaded {
  readonly locked: Set<number>
  readonly partitionHeads: Map<number, number>
  readonly clients: Map<string, number>
  readonly previous: Map<string, AckResult | null>
  readonly heads: Map<string, PlanHead>
}

type Attempt = { _tag: 'committed'; plan: Plan } | { _tag: 'relock'; partitions: Set<number> }

class PostgresStore implements LogStore {
  readonly partitions: number
  readonly #pool: Pool
  readonly #ownPool: boolean
  readonly #schema: Schema | undefined
  readonly #now: () => number
  readonly #groupMax: number
  readonly #statesMax: number
  readonly #id = randomBytes(8).toString('hex')
  readonly #states = new Map<string, CachedHead>()
  readonly #listeners = new Set<(partitions: readonly number[]) => void>()
  readonly #feed: CommitFeed
  readonly #notify: boolean
  readonly #inFlightMax: number
  #queue: Call[] = []
  #queuedEntries = 0
  #scheduled = false
  /** Groups in flight (invariant 7), and how many calls of each client they hold. */
  readonly #running = new Set<Promise<void>>()
  readonly #busyClients = new Map<string, number>()
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
    this.#now = options.now ?? Date.now
    this.#groupMax = options.groupCommitEntriesMax ?? GROUP_COMMIT_ENTRIES_MAX
    this.#statesMax = options.entityStatesMax ?? ENTITY_STATES_MAX
    this.#notify = options.notify ?? true
    this.#inFlightMax = Math.max(1, options.groupsInFlightMax ?? PG_GROUPS_IN_FLIGHT_MAX)
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
        this.#tell(touched)
      },
      onOtherRelay: () => {
        this.#othersCommittedAt = Date.now()
      },
    })
  }

  append(tenant: string, items: readonly AppendItem[]): Promise<AckResult[]> {
    if (this.#closed) return Promise.reject(new RelayError('store_closed', 'the log is closed'))
    for (const item of items) {
      // The relay checks tenants; a mismatch here is a bug in the caller, not client input.
      if (item.refuse === undefined && item.entry.tenant !== tenant) {
        return Promise.reject(
          new RelayError('store_failed', `entry ${item.entry.id} is not of tenant ${tenant}`),
        )
      }
    }
    if (items.length === 0) return Promise.resolve([])
    const clients = new Set<string>()
    for (const item of items) {
      const clientId = item.entry.clientId
      if (clientId !== SERVER_CLIENT_ID) clients.add(joinKey(tenant, clientId))
    }
    return new Promise<AckResult[]>((resolve, reject) => {
      this.#queue.push({ tenant, items, resolve, reject, clients: [...clients] })
      this.#queuedEntries += items.length
      this.#schedule()
    })
  }

  async readPartition(
    tenant: string,
    partition: number,
    afterOffset: number,
    limit: number,
  ): Promise<{ entries: StoredEntry[]; throughOffset: number }> {
    // One statement, so the page and the head it is measured against share one snapshot.
    const { rows } = await this.#read<EntryRow & { head: number }>(
      `select h.head, e.tenant, e.partition, e."offset", e.version, e.committed_at, e.body
       from ledgerline_partition_heads h
       left join lateral (
         select * from ledgerline_entries x
         where x.tenant = $1 and x.partition = $2 and x."offset" > $3
         order by x."offset" limit $4
       ) e on true
       where h.partition = $2`,
      [tenant, partition, afterOffset, limit],
    )
    const head = rows[0]?.head ?? 0
    const entries = rows.filter((r) => r.body !== null).map(toStored)
    const last = entries.at(-1)
    const throughOffset =
      entries.length >= limit && last !== undefined ? last.offset : Math.max(afterOffset, head)
    return { entries, throughOffset }
  }

  async readEntity(
    tenant: string,
    entity: string,
    fromVersion: number,
    limit: number,
  ): Promise<StoredEntry[]> {
    const { rows } = await this.#read<EntryRow>(
      `select ${ENTRY_COLUMNS} from ledgerline_entries
       where tenant = $1 and entity = $2 and version >= $3 order by version limit $4`,
      [tenant, entity, fromVersion, limit],
    )
    return rows.map(toStored)
  }

  async head(tenant: string, entity: string): Promise<EntityHead> {
    const { rows } = await this.#read<{ version: number; offset: number }>(
      `select version, "offset" from ledgerline_entries where tenant = $1 and entity = $2
       order by version desc limit 1`,
      [tenant, entity],
    )
    return rows[0] ?? { version: 0, offset: 0 }
  }

  async clientHigh(tenant: string, clientId: string): Promise<number> {
    const { rows } = await this.#read<{ high: number }>(
      'select high from ledgerline_clients where tenant = $1 and client_id = $2',
      [tenant, clientId],
    )
    return rows[0]?.high ?? 0
  }

  async partitionHeads(): Promise<number[]> {
    if (this.#closed) throw new RelayError('store_closed', 'the log is closed')
    try {
      return await readHeads(this.#pool, this.partitions)
    } catch (error) {
      throw new RelayError('store_failed', `read failed: ${messageOf(error)}`, { cause: error })
    }
  }

  onCommit(listener: (partitions: readonly number[]) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    // Appends already queued were accepted before close: finish them (guarantee 9).
    while (this.#queue.length > 0 || this.#running.size > 0) {
      if (this.#running.size > 0) await Promise.all(this.#running)
      else this.#flush()
    }
    this.#listeners.clear()
    await this.#feed.close()
    if (this.#ownPool) await this.#pool.end()
  }

  // -- group commit ---------------------------------------------------------------------------

  #schedule(): void {
    if (this.#scheduled) return
    this.#scheduled = true
    // setImmediate runs after the I/O callbacks of this loop turn: pushes read from many
    // sockets in one turn land in one transaction.
    setImmediate(() => {
      this.#scheduled = false
      this.#flush()
    })
  }

  /**
   * Starts groups while fewer than `#inFlightMax` are in flight. Queued entries are shared out
   * over the free slots, so while one group holds the head rows the next is already waiting
   * for them with its reads queued behind the lock. A call whose client has a call in flight
   * (or earlier in the queue) waits: a client's calls are decided in the order they came.
   */
  #flush(): void {
    // While other relays commit too, their groups already queue for the head rows behind
    // ours; a second group of our own would only cut our groups smaller (measured: two relays
    // with two groups each delivered less than one relay).
    const shared = Date.now() - this.#othersCommittedAt < PG_SHARED_LOG_WINDOW_MS
    const inFlightMax = shared ? 1 : this.#inFlightMax
    while (this.#running.size < inFlightMax && this.#queue.length > 0) {
      const free = inFlightMax - this.#running.size
      const target = Math.min(this.#groupMax, Math.ceil(this.#queuedEntries / free))
      const group: Call[] = []
      const rest: Call[] = []
      const waiting = new Set<string>()
      let count = 0
      for (let i = 0; i < this.#queue.length; i++) {
        const call = this.#queue[i] as Call
        if (group.length > 0 && count + call.items.length > target) {
          for (let j = i; j < this.#queue.length; j++) rest.push(this.#queue[j] as Call)
          break
        }
        if (call.clients.some((c) => this.#busyClients.has(c) || waiting.has(c))) {
          for (const c of call.clients) waiting.add(c)
          rest.push(call)
          continue
        }
        group.push(call)
        count += call.items.length
      }
      if (group.length === 0) return
      this.#queue = rest
      this.#queuedEntries -= count
      for (const call of group) {
        for (const c of call.clients) this.#busyClients.set(c, (this.#busyClients.get(c) ?? 0) + 1)
      }
      const running: Promise<void> = this.#commitGroup(group).finally(() => {
        for (const call of group) {
          for (const c of call.clients) {
            const n = (this.#busyClients.get(c) ?? 1) - 1
            if (n === 0) this.#busyClients.delete(c)
            else this.#busyClients.set(c, n)
          }
        }
        this.#running.delete(running)
        if (this.#queue.length > 0) this.#schedule()
      })
      this.#running.add(running)
    }
  }

  async #commitGroup(group: readonly Call[]): Promise<void> {
    try {
      const plan = await this.#commitWithRetries(group)
      this.#committed(group, plan)
      return
    } catch (error) {
      if (group.length === 1) {
        ;(group[0] as Call).reject(asStoreError(error))
        return
      }
    }
    // Invariant 6: split the group so one failing call rejects only itself.
    for (const call of group) {
      try {
        const plan = await this.#commitWithRetries([call])
        this.#committed([call], plan)
      } catch (error) {
        call.reject(asStoreError(error))
      }
    }
  }

  #committed(group: readonly Call[], plan: Plan): void {
    for (const [key, head] of plan.heads) {
      // Groups in flight at once commit in lock order, but their answers may be read in
      // another order: never replace a state with an older one.
      const cached = this.#states.get(key)
      if (cached !== undefined && cached.version > head.version) continue
      this.#states.delete(key)
      if (!head.hasState) continue
      this.#states.set(key, { version: head.version, offset: head.offset, state: head.state })
      if (this.#states.size > this.#statesMax) {
        const oldest = this.#states.keys().next().value
        if (oldest !== undefined) this.#states.delete(oldest)
      }
    }
    this.#feed.advance(plan.partitionHeads)
    group.forEach((call, i) => call.resolve(plan.results[i] as AckResult[]))
    if (plan.touched.length > 0) this.#tell(plan.touched)
  }

  #tell(touched: readonly number[]): void {
    for (const listener of this.#listeners) {
      try {
        listener(touched)
      } catch {
        // A listener's failure is its own; the commit stands and other listeners still run.
      }
    }
  }

  async #commitWithRetries(calls: readonly Call[]): Promise<Plan> {
    // Bodies do not depend on the plan: encode them before any lock is taken, once for all
    // attempts.
    const bodies = encodeItems(calls)
    let extra = new Set<number>()
    let failures = 0
    for (;;) {
      let client: PoolClient | undefined
      let broken = false
      // A connection that dies while checked out emits 'error' outside any query; without a
      // listener that would crash the relay. Note it, and drop the connection on release.
      const onError = () => {
        broken = true
      }
      try {
        client = await this.#pool.connect()
        client.on('error', onError)
        const attempt = await this.#attempt(client, calls, extra, bodies)
        client.removeListener('error', onError)
        client.release(broken ? true : undefined)
        client = undefined
        if (attempt._tag === 'committed') return attempt.plan
        // Invariant 3: more partitions are needed; nothing was written. Not a failure.
        extra = attempt.partitions
      } catch (error) {
        if (client !== undefined) {
          const drop = broken || isConnectionError(error)
          if (!drop) await client.query('rollback').catch(() => undefined)
          client.removeListener('error', onError)
          // A broken connection is dropped rather than handed to the next caller.
          client.release(drop ? true : undefined)
        }
        failures++
        if (!isPassing(error) || failures >= PG_APPEND_ATTEMPTS_MAX) throw error
        await sleep(PG_APPEND_RETRY_MS * 2 ** (failures - 1))
      }
    }
  }

  async #attempt(
    client: PoolClient,
    calls: readonly Call[],
    extra: ReadonlySet<number>,
    bodies: EncodedItems,
  ): Promise<Attempt> {
    const lockSet = new Set(extra)
    for (const call of calls) {
      for (const item of call.items) {
        lockSet.add(partitionOf(call.tenant, item.entry.entity, this.partitions))
      }
    }
    const locked = [...lockSet].sort((a, b) => a - b)
    const keys = groupKeys(calls)
    // Invariant 9, one round trip: begin, lock the head rows in ascending order, and the reads
    // the plan will most likely need. PostgreSQL runs each read only after the lock statement
    // returned, with a snapshot of its own (read committed), so the reads see every commit of
    // whoever held the locks before.
    const [, lockResult, clientsResult, headsResult] = await pipeline(client, [
      { text: `begin; set local lock_timeout = ${PG_LOCK_TIMEOUT_MS}` },
      { name: 'ledgerline_lock_v1', text: LOCK_SQL, values: [intArray(locked)], types: PG_TYPES },
      clientsQuery(keys.clients),
      headsQuery(keys.entities),
    ])
    const heads = rowsOf<{ partition: number; head: number }>(lockResult)
    const loaded: Loaded = {
      locked: lockSet,
      partitionHeads: new Map(heads.map((r) => [r.partition, r.head])),
      clients: new Map(),
      previous: new Map(),
      heads: new Map(),
    }
    takeClients(keys.clients, rowsOf(clientsResult), loaded)
    // Earlier results are needed only for resent entries (at or below the high-water mark) and
    // for server entries; usually there are none and this round trip is skipped.
    const resent: [string, string][] = []
    for (const [tenant, id, clientId, seq] of keys.candidates) {
      const high = loaded.clients.get(joinKey(tenant, clientId))
      if (clientId === SERVER_CLIENT_ID || (high !== undefined && seq <= high)) {
        resent.push([tenant, id])
      }
    }
    if (resent.length > 0) await loadPrevious(client, resent, loaded)
    await this.#takeHeads(client, rowsOf(headsResult), loaded)
    const committedAt = this.#now()
    const lookups: PlanLookups = {
      clientHigh: (tenant, clientId) => loaded.clients.get(joinKey(tenant, clientId)),
      previous: (tenant, id) => loaded.previous.get(joinKey(tenant, id)),
      entityHead: (tenant, entity) => loaded.heads.get(joinKey(tenant, entity)),
      partitionHead: (partition) => loaded.partitionHeads.get(partition),
    }
    let plan: Plan
    for (;;) {
      try {
        plan = planGroup(
          { schema: this.#schema, partitions: this.partitions, committedAt, lookups },
          calls,
        )
        break
      } catch (error) {
        if (!(error instanceof PlanMiss)) throw error
        const need = error.need
        if (need.kind === 'entity' || need.kind === 'partition') {
          if (!lockSet.has(need.partition)) {
            await client.query('rollback')
            return { _tag: 'relock', partitions: new Set([...lockSet, need.partition]) }
          }
        }
        switch (need.kind) {
          case 'client': {
            const pair: [string, string] = [need.tenant, need.clientId]
            const [result] = await pipeline(client, [clientsQuery([pair])])
            takeClients([pair], rowsOf(result), loaded)
            break
          }
          case 'previous':
            await loadPrevious(client, [[need.tenant, need.id]], loaded)
            break
          case 'entity': {
            const [result] = await pipeline(client, [headsQuery([[need.tenant, need.entity]])])
            await this.#takeHeads(client, rowsOf(result), loaded)
            break
          }
          case 'partition':
            // Every locked partition's head was read with its lock.
            throw new Error(`Ledgerline bug: head of locked partition ${need.partition} unread`)
          default:
            unreachable(need)
        }
      }
    }
    // Invariant 5 and 9: every row of the plan and the one NOTIFY in one statement, sent
    // together with the COMMIT. Had the statement failed, PostgreSQL would answer the COMMIT
    // with ROLLBACK; the statement's error is what `pipeline` throws then.
    const [, commit] = await pipeline(client, [this.#writeQuery(plan, bodies), { text: 'commit' }])
    const tag = (commit as { command?: unknown } | undefined)?.command
    if (tag !== 'COMMIT') {
      throw new RelayError('store_failed', `append transaction ended with ${String(tag)}`)
    }
    return { _tag: 'committed', plan }
  }

  /** Entity heads, with states from the LRU when its version matches, else folded forward. */
  async #takeHeads(client: PoolClient, rows: readonly HeadRow[], loaded: Loaded) {
    const toFold: { key: string; entity: string; tenant: string; from: CachedHead; to: number }[] =
      []
    for (const r of rows) {
      const key = joinKey(r.tenant, r.entity)
      const version = r.version ?? 0
      const offset = r.offset ?? 0
      const type = this.#schema?.find(r.entity)
      if (type === undefined) {
        // A plain log (or an unknown type, which decide() refuses) needs no state.
        loaded.heads.set(key, { version, offset, state: null })
        continue
      }
      const cached = this.#states.get(key)
      if (cached !== undefined && cached.version === version) {
        loaded.heads.set(key, cached)
        continue
      }
      const from =
        cached !== undefined && cached.version < version
          ? cached
          : { version: 0, offset: 0, state: type.initial }
      toFold.push({ key, tenant: r.tenant, entity: r.entity, from, to: version })
    }
    // Fold the missing part of each ledger, a page of entries at a time.
    let pending = toFold.filter((f) => f.from.version < f.to)
    for (const f of toFold) {
      if (f.from.version >= f.to) loaded.heads.set(f.key, { ...f.from, version: f.to })
    }
    const states = new Map(pending.map((f) => [f.key, { ...f.from }]))
    while (pending.length > 0) {
      const { rows: page } = await q<EntryRow & { entity: string }>(
        client,
        `select e.entity, ${ENTRY_COLUMNS_E}
         from unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[]) u(tenant, entity, after, upto)
         join lateral (
           select * from ledgerline_entries x
           where x.tenant = u.tenant and x.entity = u.entity
             and x.version > u.after and x.version <= u.upto
           order by x.version limit $5
         ) e on true
         order by e.tenant, e.entity, e.version`,
        [
          pending.map((f) => f.tenant),
          pending.map((f) => f.entity),
          pending.map((f) => (states.get(f.key) as CachedHead).version),
          pending.map((f) => f.to),
          PG_FOLD_PAGE_ENTRIES_MAX,
        ],
      )
      for (const row of page) {
        const key = joinKey(row.tenant, row.entity)
        const s = states.get(key) as { version: number; offset: number; state: unknown }
        const type = this.#schema?.find(row.entity)
        if (type === undefined) continue
        const entry = deserialize(row.body) as Entry
        if (row.version !== s.version + 1) {
          throw new RelayError(
            'store_failed',
            `ledger of ${row.entity} has a gap at ${s.version + 1}`,
          )
        }
        s.state = type.reduce(s.state, entry)
        s.version = row.version
        s.offset = row.offset
      }
      pending = pending.filter((f) => (states.get(f.key) as CachedHead).version < f.to)
      if (page.length === 0 && pending.length > 0) {
        throw new RelayError('store_failed', 'ledger shorter than its head while folding')
      }
    }
    for (const f of toFold) {
      const s = states.get(f.key)
      if (s !== undefined) loaded.heads.set(f.key, s)
    }
  }

  /** Invariant 5: every row of the plan and the one NOTIFY, in one statement. */
  #writeQuery(plan: Plan, encoded: EncodedItems): pg.QueryConfig {
    const e = plan.entries
    const r = plan.refusals
    const n = e.length
    // The usual plan appends every item, in order, and nothing else: its columns that do not
    // depend on positions were written before the locks were taken.
    let common = n === encoded.sources.length
    for (let i = 0; common && i < n; i++)
      common = (e[i] as PlannedEntry).source === encoded.sources[i]
    const columns = common ? encoded.columns : undefined
    const partitions: number[] = []
    const offsets: number[] = []
    const tenants: string[] = []
    const ids: string[] = []
    const entities: string[] = []
    const versions: number[] = []
    const corrects: (string | null)[] = []
    const committedAts: number[] = []
    const blobs: Buffer[] = []
    const bodyStarts: number[] = []
    const bodyLengths: number[] = []
    let bodyBytes = 0
    for (let i = 0; i < n; i++) {
      const x = e[i] as PlannedEntry
      const s = x.stored
      partitions.push(s.partition)
      offsets.push(s.offset)
      versions.push(s.version)
      committedAts.push(s.committedAt)
      if (columns !== undefined) continue
      tenants.push(x.tenant)
      ids.push(s.id)
      entities.push(s.entity)
      corrects.push(s.corrects ?? null)
      // Corrections are made while planning; items were encoded before the locks.
      const body = encoded.bodies.get(x.source) ?? serialize(entryOf(s))
      bodyStarts.push(bodyBytes + 1)
      bodyLengths.push(body.length)
      bodyBytes += body.length
      blobs.push(body)
    }
    const clients = [...plan.clients].map(([key, high]) => [...splitKey(key), high] as const)
    const heads = [...plan.partitionHeads]
    const payload =
      heads.length > 0 && this.#notify ? encodeCommitPayload(this.#id, plan.partitionHeads) : ''
    return {
      name: 'ledgerline_write_v2',
      text: WRITE_SQL,
      types: PG_TYPES,
      values: [
        intArray(partitions),
        intArray(offsets),
        columns?.tenants ?? textArray(tenants),
        columns?.ids ?? textArray(ids),
        columns?.entities ?? textArray(entities),
        intArray(versions),
        columns?.corrects ?? textArray(corrects),
        intArray(committedAts),
        // The bodies as one binary parameter (no hex text on either side), cut by the statement.
        columns?.bodies ?? Buffer.concat(blobs, bodyBytes),
        textArray(r.map((x) => x.tenant)),
        textArray(r.map((x) => x.id)),
        textArray(r.map((x) => x.code)),
        textArray(r.map((x) => x.reason)),
        intArray(r.map((x) => x.head)),
        textArray(clients.map((c) => c[0])),
        textArray(clients.map((c) => c[1])),
        intArray(clients.map((c) => c[2])),
        intArray(heads.map((h) => h[0])),
        intArray(heads.map((h) => h[1])),
        payload,
        columns?.bodyStarts ?? intArray(bodyStarts),
        columns?.bodyLengths ?? intArray(bodyLengths),
      ],
    }
  }

  async #read<R extends pg.QueryResultRow>(
    sql: string,
    params: unknown[],
  ): Promise<pg.QueryResult<R>> {
    if (this.#closed) throw new RelayError('store_closed', 'the log is closed')
    try {
      return await q<R>(this.#pool, sql, params)
    } catch (error) {
      throw new RelayError('store_failed', `read failed: ${messageOf(error)}`, { cause: error })
    }
  }
}

// ---------------------------------------------------------------------------------------------

const PG_TYPES = { getTypeParser: int8AsNumber } as unknown as pg.CustomTypesConfig

// The statements of the append path are named, so each connection parses and plans them once.
// A name is bound to its text: a changed statement needs a new name (`_v2`).

const LOCK_SQL = `select partition, head from ledgerline_partition_heads
  where partition = any($1::int[]) order by partition for update`

const WRITE_SQL = `with e as (
  insert into ledgerline_entries
    (partition, "offset", tenant, id, entity, version, corrects, committed_at, body)
  select u.partition, u."offset", u.tenant, u.id, u.entity, u.version, u.corrects,
    u.committed_at, substring($9::bytea from u.body_start for u.body_length)
  from unnest($1::int[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::bigint[],
              $7::text[], $8::bigint[], $21::int[], $22::int[])
    u(partition, "offset", tenant, id, entity, version, corrects, committed_at,
      body_start, body_length)
), r as (
  insert into ledgerline_refusals (tenant, id, code, reason, head)
  select * from unnest($10::text[], $11::text[], $12::text[], $13::text[], $14::bigint[])
), c as (
  insert into ledgerline_clients (tenant, client_id, high)
  select * from unnest($15::text[], $16::text[], $17::bigint[])
  on conflict (tenant, client_id)
    do update set high = greatest(ledgerline_clients.high, excluded.high)
), p as (
  update ledgerline_partition_heads h set head = u.head
  from unnest($18::int[], $19::bigint[]) u(partition, head)
  where h.partition = u.partition
)
select pg_notify('${PG_COMMIT_CHANNEL}', $20) where $20 <> ''`

/** (tenant, id, clientId, clientSeq) of an item whose earlier result may be needed. */
type Candidate = readonly [string, string, string, number]

interface GroupKeys {
  readonly clients: [string, string][]
  readonly entities: [string, string][]
  readonly candidates: Candidate[]
}

type HeadRow = { tenant: string; entity: string; version: number | null; offset: number | null }
type PreviousRow = EntryRow & { kind: 'found' | 'correction'; id: string }
type RefusedRow = {
  tenant: string
  id: string
  code: Extract<AckResult, { status: 'refused' }>['code']
  reason: string
  head: number
}

/** What the reads of a group ask for: its clients, its entities, every item as a candidate. */
function groupKeys(calls: readonly PlanCall[]): GroupKeys {
  const clients = new Map<string, [string, string]>()
  const entities = new Map<string, [string, string]>()
  const candidates: Candidate[] = []
  for (const call of calls) {
    for (const item of call.items) {
      const e = item.entry
      if (e.clientId !== SERVER_CLIENT_ID) {
        const key = joinKey(call.tenant, e.clientId)
        if (!clients.has(key)) clients.set(key, [call.tenant, e.clientId])
      }
      if (item.refuse === undefined) {
        const key = joinKey(call.tenant, e.entity)
        if (!entities.has(key)) entities.set(key, [call.tenant, e.entity])
      }
      candidates.push([call.tenant, e.id, e.clientId, e.clientSeq])
    }
  }
  return { clients: [...clients.values()], entities: [...entities.values()], candidates }
}

function clientsQuery(pairs: readonly (readonly [string, string])[]): pg.QueryConfig {
  return {
    name: 'ledgerline_clients_v1',
    text: `select c.tenant, c.client_id, c.high from ledgerline_clients c
      join unnest($1::text[], $2::text[]) u(tenant, client_id)
        on c.tenant = u.tenant and c.client_id = u.client_id`,
    values: [textArray(pairs.map((p) => p[0])), textArray(pairs.map((p) => p[1]))],
    types: PG_TYPES,
  }
}

/** Entries holding one of the ids, and the server corrections made for them. */
function previousQuery(pairs: readonly (readonly [string, string])[]): pg.QueryConfig {
  return {
    name: 'ledgerline_previous_v1',
    text: `with r as (select * from unnest($1::text[], $2::text[]) u(tenant, id)), f as (
        select e.* from ledgerline_entries e join r on e.tenant = r.tenant and e.id = r.id
      )
      select 'found' as kind, f.id, f.corrects, f.tenant, f.partition, f."offset", f.version,
        f.committed_at, f.body, f.seq
      from f
      union all
      select 'correction', x.id, x.corrects, x.tenant, x.partition, x."offset", x.version,
        x.committed_at, x.body, x.seq
      from ledgerline_entries x join f on x.tenant = f.tenant and x.corrects = f.id
      order by seq`,
    values: pairValues(pairs),
    types: PG_TYPES,
  }
}

/** Refusals recorded for one of the ids. */
function refusedQuery(pairs: readonly (readonly [string, string])[]): pg.QueryConfig {
  return {
    name: 'ledgerline_refused_v1',
    text: `with r as (select * from unnest($1::text[], $2::text[]) u(tenant, id))
      select f.tenant, f.id, f.code, f.reason, f.head
      from ledgerline_refusals f join r on f.tenant = r.tenant and f.id = r.id`,
    values: pairValues(pairs),
    types: PG_TYPES,
  }
}

function pairValues(pairs: readonly (readonly [string, string])[]): string[] {
  return [textArray(pairs.map((p) => p[0])), textArray(pairs.map((p) => p[1]))]
}

/** Each entity's last version and offset (null for an empty ledger). */
function headsQuery(pairs: readonly (readonly [string, string])[]): pg.QueryConfig {
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

/** Reads the earlier results of `asked` (tenant, id); an id found nowhere was never decided. */
async function loadPrevious(
  client: PoolClient,
  asked: readonly (readonly [string, string])[],
  loaded: Loaded,
): Promise<void> {
  for (const [tenant, id] of asked) loaded.previous.set(joinKey(tenant, id), null)
  const [found, refused] = await pipeline(client, [previousQuery(asked), refusedQuery(asked)])
  takePrevious(rowsOf(found), rowsOf(refused), loaded)
}

function takeClients(
  pairs: readonly (readonly [string, string])[],
  rows: readonly { tenant: string; client_id: string; high: number }[],
  loaded: Loaded,
): void {
  for (const [tenant, clientId] of pairs) loaded.clients.set(joinKey(tenant, clientId), 0)
  for (const r of rows) loaded.clients.set(joinKey(r.tenant, r.client_id), r.high)
}

/** Earlier results of decided ids: entries (with their server corrections) and refusals. */
function takePrevious(
  previous: readonly PreviousRow[],
  refused: readonly RefusedRow[],
  loaded: Loaded,
): void {
  const corrections = new Map<string, StoredEntry[]>()
  for (const row of previous) {
    if (row.kind !== 'correction') continue
    const stored = toStored(row)
    if (stored.clientId !== SERVER_CLIENT_ID) continue
    const key = joinKey(row.tenant, row.corrects as string)
    const list = corrections.get(key) ?? []
    list.push(stored)
    corrections.set(key, list)
  }
  for (const row of previous) {
    if (row.kind !== 'found') continue
    const key = joinKey(row.tenant, row.id)
    loaded.previous.set(key, {
      id: row.id,
      status: 'appended',
      version: row.version,
      partition: row.partition,
      offset: row.offset,
      committedAt: row.committed_at,
      corrections: corrections.get(key) ?? [],
    })
  }
  for (const r of refused) {
    loaded.previous.set(joinKey(r.tenant, r.id), {
      id: r.id,
      status: 'refused',
      code: r.code,
      reason: r.reason,
      head: r.head,
    })
  }
}

/** A group's items encoded before its transaction (see `encodeItems`). */
interface EncodedItems {
  /** Per item entry: the same bytes as `serialize(entryOf(stored))` of what the plan stores. */
  readonly bodies: Map<Entry, Buffer>
  /** The entries of the usual plan: every item the relay did not refuse, in order. */
  readonly sources: Entry[]
  /** That plan's write parameters that do not depend on positions. */
  readonly columns: {
    readonly tenants: string
    readonly ids: string
    readonly entities: string
    readonly corrects: string
    readonly bodies: Buffer
    readonly bodyStarts: string
    readonly bodyLengths: string
  }
}

/** Encodes bodies and the usual plan's columns, so the work is not done under the locks. */
function encodeItems(calls: readonly PlanCall[]): EncodedItems {
  const bodies = new Map<Entry, Buffer>()
  const sources: Entry[] = []
  const tenants: string[] = []
  const ids: string[] = []
  const entities: string[] = []
  const corrects: (string | null)[] = []
  const blobs: Buffer[] = []
  const bodyStarts: number[] = []
  const bodyLengths: number[] = []
  let bodyBytes = 0
  for (const call of calls) {
    for (const item of call.items) {
      if (item.refuse !== undefined) continue
      const entry = item.entry
      let body = bodies.get(entry)
      if (body === undefined) {
        body = serialize(bodyOf(entry))
        bodies.set(entry, body)
      }
      sources.push(entry)
      tenants.push(call.tenant)
      ids.push(entry.id)
      entities.push(entry.entity)
      corrects.push(entry.corrects ?? null)
      blobs.push(body)
      bodyStarts.push(bodyBytes + 1)
      bodyLengths.push(body.length)
      bodyBytes += body.length
    }
  }
  return {
    bodies,
    sources,
    columns: {
      tenants: textArray(tenants),
      ids: textArray(ids),
      entities: textArray(entities),
      corrects: textArray(corrects),
      bodies: Buffer.concat(blobs, bodyBytes),
      bodyStarts: intArray(bodyStarts),
      bodyLengths: intArray(bodyLengths),
    },
  }
}

/** `entryOf({ ...withoutUndefined(entry), version, partition, offset, committedAt })`. */
function bodyOf(entry: Entry): Entry {
  const source = entry as unknown as Record<string, unknown>
  const out: Record<string, unknown> = {}
  for (const key of Object.keys(source)) {
    const value = source[key]
    if (value === undefined || POSITION_KEYS.has(key)) continue
    out[key] = value
  }
  return out as unknown as Entry
}

const POSITION_KEYS = new Set(['version', 'partition', 'offset', 'committedAt'])

/**
 * Sends `queries` on one connection. On a pipelining connection (the store's own pool) they
 * go out together and cost one round trip; PostgreSQL still runs them one after another, each
 * statement with its own snapshot. Otherwise (a pool the caller made) one at a time. Throws
 * the first failure: in a transaction the statements after it fail only because it did.
 */
async function pipeline(client: PoolClient, queries: readonly pg.QueryConfig[]) {
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
function textArray(values: readonly (string | null)[]): string {
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

const NEEDS_ESCAPE = /[\\"]/

/** `{1,2,3}` for int[] and bigint[]; every element a safe integer. */
function intArray(values: readonly number[]): string {
  for (const v of values) {
    if (!Number.isSafeInteger(v)) throw new Error(`Ledgerline bug: ${String(v)} is not an integer`)
  }
  return `{${values.join(',')}}`
}

function rowsOf<R>(result: pg.QueryResult | pg.QueryResult[] | undefined): R[] {
  if (result === undefined || Array.isArray(result)) {
    throw new Error('Ledgerline bug: expected the result of one statement')
  }
  return result.rows as R[]
}

const ENTRY_COLUMNS = `tenant, partition, "offset", version, committed_at, body`
const ENTRY_COLUMNS_E = `e.tenant, e.partition, e."offset", e.version, e.committed_at, e.body`

/**
 * Runs one query with int8 read as numbers, also on a pool the caller made (whose type parsers
 * we must not change for its other users).
 */
async function q<R extends pg.QueryResultRow>(
  runner: Pool | PoolClient,
  text: string,
  values: unknown[] = [],
): Promise<pg.QueryResult<R>> {
  return runner.query<R>({ text, values, types: PG_TYPES })
}

/** int8 (oid 20) as a JavaScript number: offsets and versions stay far below 2^53. */
function int8AsNumber(oid: number, format?: 'text' | 'binary') {
  if (oid === 20) return (value: string) => Number(value)
  // oxlint-disable-next-line typescript/no-explicit-any
  return (pg.types.getTypeParser as (oid: number, format?: any) => any)(oid, format)
}

async function connect(pool: Pool): Promise<PoolClient> {
  try {
    return await pool.connect()
  } catch (error) {
    throw new RelayError('store_failed', `cannot connect to PostgreSQL: ${messageOf(error)}`, {
      cause: error,
    })
  }
}

async function assertDurable(client: PoolClient): Promise<void> {
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

async function readHeads(pool: Pool, partitions: number): Promise<number[]> {
  const { rows } = await q<{ partition: number; head: number }>(
    pool,
    'select partition, head from ledgerline_partition_heads',
  )
  const heads = Array.from({ length: partitions }, () => 0)
  for (const r of rows) heads[r.partition] = r.head
  return heads
}

function toStored(row: EntryRow): StoredEntry {
  const entry = deserialize(row.body) as Entry
  return {
    ...entry,
    version: row.version,
    partition: row.partition,
    offset: row.offset,
    committedAt: row.committed_at,
  }
}

/** The entry part of a stored entry: positions live in columns, not in the body. */
function entryOf(stored: StoredEntry): Entry {
  const { version: _v, partition: _p, offset: _o, committedAt: _c, ...entry } = stored
  return entry
}

/** A failure worth trying again from the start (invariant 6). */
function isPassing(error: unknown): boolean {
  const code = (error as { code?: unknown }).code
  if (typeof code === 'string') {
    // serialization_failure, deadlock_detected, unique_violation (a racing relay's insert),
    // lock_not_available (lock_timeout), admin/crash shutdown, cannot_connect_now, connection.
    if (['40001', '40P01', '23505', '55P03', '57P01', '57P02', '57P03'].includes(code)) return true
    if (code.startsWith('08')) return true
  }
  return isConnectionError(error)
}

function isConnectionError(error: unknown): boolean {
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

function asStoreError(error: unknown): unknown {
  if (error instanceof RelayError) return error
  return new RelayError('store_failed', `append failed: ${messageOf(error)}`, { cause: error })
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

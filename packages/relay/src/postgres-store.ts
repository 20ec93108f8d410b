/**
 * The scale-out server log: a `LogStore` on PostgreSQL (`pg`), shared by several stateless
 * relays. See `log-store.ts` for the guarantees every store keeps; this file says how.
 *
 * Terms: a *call* is one `append(tenant, items)`; a *group* is the calls of this relay merged
 * into one transaction (group commit); the *lock set* is the partitions whose head rows a group
 * locks; a *plan* (`append-plan.ts`) is the group's decisions, made in memory against what the
 * transaction read under those locks.
 *
 *   append() ─► queue ─(setImmediate)─► group ≤ GROUP_COMMIT_ENTRIES_MAX entries
 *     BEGIN; select … from partition_heads where partition in (lock set) order by partition
 *            for update                         ── waits for other relays on those partitions
 *     read: client high-water marks, entity heads (+ ledgers to fold on a cache miss),
 *           earlier results of resent ids
 *     plan (pure) ── needs a partition outside the lock set? ROLLBACK, relock with it, again
 *     one statement: insert entries, refusals; upsert clients; update heads; pg_notify once
 *     COMMIT (fsync) ─► resolve each call ─► onCommit listeners
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
 * 7. One group transaction at a time per store: a client's pipelined pushes reach the log in
 *    the order they were sent (clientSeq is checked against the committed high-water mark).
 * 8. Start refuses a database that does not fsync commits (`fsync`, `synchronous_commit`):
 *    `RelayError('durability')`.
 */
import { randomBytes } from 'node:crypto'
import { deserialize, serialize } from 'node:v8'
import pg from 'pg'
import type { Pool, PoolClient } from 'pg'
import { partitionOf, SERVER_CLIENT_ID } from '@ledgerline/core'
import type { Entry, Schema, StoredEntry } from '@ledgerline/core'
import type { AckResult } from '@ledgerline/protocol'
import { joinKey, PlanMiss, planGroup, splitKey } from './append-plan.ts'
import type { Plan, PlanCall, PlanHead, PlanLookups } from './append-plan.ts'
import { ENTITY_STATES_MAX, GROUP_COMMIT_ENTRIES_MAX } from './limits.ts'
import type { AppendItem, EntityHead, LogStore, LogStoreOptions } from './log-store.ts'
import { createCommitFeed, encodeCommitPayload, PG_COMMIT_CHANNEL } from './postgres-commit-feed.ts'
import type { CommitFeed } from './postgres-commit-feed.ts'
import {
  PG_APPEND_ATTEMPTS_MAX,
  PG_APPEND_RETRY_MS,
  PG_FOLD_PAGE_ENTRIES_MAX,
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
  #queue: Call[] = []
  #scheduled = false
  #flushing: Promise<void> | undefined
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
    this.#feed = createCommitFeed({
      pool,
      selfId: this.#id,
      partitions,
      pollIntervalMs: options.pollIntervalMs ?? PG_POLL_INTERVAL_MS,
      initialHeads: heads,
      listen: options.listen ?? true,
      onChange: (touched) => this.#tell(touched),
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
    return new Promise<AckResult[]>((resolve, reject) => {
      this.#queue.push({ tenant, items, resolve, reject })
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
    while (this.#queue.length > 0 || this.#flushing !== undefined) {
      if (this.#flushing !== undefined) await this.#flushing
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

  #flush(): void {
    if (this.#flushing !== undefined || this.#queue.length === 0) return
    const group: Call[] = []
    let count = 0
    while (this.#queue.length > 0) {
      const next = this.#queue[0] as Call
      if (group.length > 0 && count + next.items.length > this.#groupMax) break
      group.push(next)
      count += next.items.length
      this.#queue.shift()
    }
    this.#flushing = this.#commitGroup(group).finally(() => {
      this.#flushing = undefined
      if (this.#queue.length > 0) this.#schedule()
    })
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
        const attempt = await this.#attempt(client, calls, extra)
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
  ): Promise<Attempt> {
    const lockSet = new Set(extra)
    for (const call of calls) {
      for (const item of call.items) {
        lockSet.add(partitionOf(call.tenant, item.entry.entity, this.partitions))
      }
    }
    const locked = [...lockSet].sort((a, b) => a - b)
    // One round trip: begin, bound the lock wait, lock the head rows in ascending order.
    const begin = (await client.query({
      text: `begin; set local lock_timeout = ${PG_LOCK_TIMEOUT_MS};
       select partition, head from ledgerline_partition_heads
       where partition in (${locked.map((p) => String(p)).join(',')})
       order by partition for update`,
      types: PG_TYPES,
    })) as unknown as pg.QueryResult<{ partition: number; head: number }>[]
    const heads = begin.at(-1)?.rows ?? []
    const loaded: Loaded = {
      locked: lockSet,
      partitionHeads: new Map(heads.map((r) => [r.partition, r.head])),
      clients: new Map(),
      previous: new Map(),
      heads: new Map(),
    }
    await this.#preload(client, calls, loaded)
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
          case 'client':
            await this.#loadClients(client, [[need.tenant, need.clientId]], loaded)
            break
          case 'previous':
            await this.#loadPrevious(client, [[need.tenant, need.id]], loaded)
            break
          case 'entity':
            await this.#loadHeads(client, [[need.tenant, need.entity]], loaded)
            break
          case 'partition':
            // Every locked partition's head was read with its lock.
            throw new Error(`Ledgerline bug: head of locked partition ${need.partition} unread`)
        }
      }
    }
    await this.#write(client, plan)
    await client.query('commit')
    return { _tag: 'committed', plan }
  }

  /** Reads, in a few statements, what the plan will most likely ask for. */
  async #preload(client: PoolClient, calls: readonly Call[], loaded: Loaded): Promise<void> {
    const clients = new Map<string, [string, string]>()
    const entities = new Map<string, [string, string]>()
    for (const call of calls) {
      for (const item of call.items) {
        const e = item.entry
        if (e.clientId !== SERVER_CLIENT_ID) {
          clients.set(joinKey(call.tenant, e.clientId), [call.tenant, e.clientId])
        }
        if (item.refuse === undefined) {
          entities.set(joinKey(call.tenant, e.entity), [call.tenant, e.entity])
        }
      }
    }
    await this.#loadClients(client, [...clients.values()], loaded)
    // Earlier results are needed only for resent entries (at or below the high-water mark)
    // and for server entries; usually there are none and the query is skipped.
    const resent: [string, string][] = []
    for (const call of calls) {
      for (const item of call.items) {
        const e = item.entry
        const high = loaded.clients.get(joinKey(call.tenant, e.clientId))
        if (e.clientId === SERVER_CLIENT_ID || (high !== undefined && e.clientSeq <= high)) {
          resent.push([call.tenant, e.id])
        }
      }
    }
    if (resent.length > 0) await this.#loadPrevious(client, resent, loaded)
    await this.#loadHeads(client, [...entities.values()], loaded)
  }

  async #loadClients(client: PoolClient, pairs: [string, string][], loaded: Loaded) {
    if (pairs.length === 0) return
    const { rows } = await q<{ tenant: string; client_id: string; high: number }>(
      client,
      `select c.tenant, c.client_id, c.high from ledgerline_clients c
       join unnest($1::text[], $2::text[]) u(tenant, client_id)
         on c.tenant = u.tenant and c.client_id = u.client_id`,
      [pairs.map((p) => p[0]), pairs.map((p) => p[1])],
    )
    for (const [tenant, clientId] of pairs) loaded.clients.set(joinKey(tenant, clientId), 0)
    for (const r of rows) loaded.clients.set(joinKey(r.tenant, r.client_id), r.high)
  }

  async #loadPrevious(client: PoolClient, pairs: [string, string][], loaded: Loaded) {
    const tenants = pairs.map((p) => p[0])
    const ids = pairs.map((p) => p[1])
    for (const [tenant, id] of pairs) loaded.previous.set(joinKey(tenant, id), null)
    const found = await q<EntryRow & { id: string }>(
      client,
      `select e.id, ${ENTRY_COLUMNS_E} from ledgerline_entries e
       join unnest($1::text[], $2::text[]) u(tenant, id) on e.tenant = u.tenant and e.id = u.id`,
      [tenants, ids],
    )
    const corrections = new Map<string, StoredEntry[]>()
    if (found.rows.length > 0) {
      const c = await q<EntryRow>(
        client,
        `select e.corrects, ${ENTRY_COLUMNS_E} from ledgerline_entries e
         join unnest($1::text[], $2::text[]) u(tenant, id)
           on e.tenant = u.tenant and e.corrects = u.id
         order by e.seq`,
        [found.rows.map((r) => r.tenant), found.rows.map((r) => r.id)],
      )
      for (const row of c.rows) {
        const stored = toStored(row)
        if (stored.clientId !== SERVER_CLIENT_ID) continue
        const key = joinKey(row.tenant, row.corrects as string)
        const list = corrections.get(key) ?? []
        list.push(stored)
        corrections.set(key, list)
      }
    }
    for (const row of found.rows) {
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
    const refused = await q<{
      tenant: string
      id: string
      code: Extract<AckResult, { status: 'refused' }>['code']
      reason: string
      head: number
    }>(
      client,
      `select r.tenant, r.id, r.code, r.reason, r.head from ledgerline_refusals r
       join unnest($1::text[], $2::text[]) u(tenant, id) on r.tenant = u.tenant and r.id = u.id`,
      [tenants, ids],
    )
    for (const r of refused.rows) {
      loaded.previous.set(joinKey(r.tenant, r.id), {
        id: r.id,
        status: 'refused',
        code: r.code,
        reason: r.reason,
        head: r.head,
      })
    }
  }

  /** Entity heads, with states from the LRU when its version matches, else folded forward. */
  async #loadHeads(client: PoolClient, pairs: [string, string][], loaded: Loaded) {
    if (pairs.length === 0) return
    const { rows } = await q<{
      tenant: string
      entity: string
      version: number | null
      offset: number | null
    }>(
      client,
      `select u.tenant, u.entity, h.version, h."offset"
       from unnest($1::text[], $2::text[]) u(tenant, entity)
       left join lateral (
         select e.version, e."offset" from ledgerline_entries e
         where e.tenant = u.tenant and e.entity = u.entity
         order by e.version desc limit 1
       ) h on true`,
      [pairs.map((p) => p[0]), pairs.map((p) => p[1])],
    )
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
  async #write(client: PoolClient, plan: Plan): Promise<void> {
    const e = plan.entries
    const r = plan.refusals
    const clients = [...plan.clients].map(([key, high]) => [...splitKey(key), high] as const)
    const heads = [...plan.partitionHeads]
    const payload =
      heads.length > 0 && this.#notify ? encodeCommitPayload(this.#id, plan.partitionHeads) : ''
    await client.query(
      `with e as (
         insert into ledgerline_entries
           (partition, "offset", tenant, id, entity, version, corrects, committed_at, body)
         select * from unnest($1::int[], $2::bigint[], $3::text[], $4::text[], $5::text[],
                              $6::bigint[], $7::text[], $8::bigint[], $9::bytea[])
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
       select pg_notify('${PG_COMMIT_CHANNEL}', $20) where $20 <> ''`,
      [
        e.map((x) => x.stored.partition),
        e.map((x) => x.stored.offset),
        e.map((x) => x.tenant),
        e.map((x) => x.stored.id),
        e.map((x) => x.stored.entity),
        e.map((x) => x.stored.version),
        e.map((x) => x.stored.corrects ?? null),
        e.map((x) => x.stored.committedAt),
        e.map((x) => serialize(entryOf(x.stored))),
        r.map((x) => x.tenant),
        r.map((x) => x.id),
        r.map((x) => x.code),
        r.map((x) => x.reason),
        r.map((x) => x.head),
        clients.map((c) => c[0]),
        clients.map((c) => c[1]),
        clients.map((c) => c[2]),
        heads.map((h) => h[0]),
        heads.map((h) => h[1]),
        payload,
      ],
    )
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

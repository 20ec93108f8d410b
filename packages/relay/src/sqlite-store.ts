/**
 * The embedded server log: a `LogStore` on one SQLite file (`better-sqlite3`), the default of a
 * single relay. See `log-store.ts` for the guarantees every store keeps; this file says how.
 *
 * Terms: a *call* is one `append(tenant, items)`; a *group* is the calls merged into one SQLite
 * transaction (group commit); the *overlay* is what the running transaction changed (entity
 * heads, client high-water marks, partition heads), applied to the in-memory caches only after
 * the commit.
 *
 *   append() ─► queue ─(setImmediate)─► group of calls ≤ GROUP_COMMIT_ENTRIES_MAX entries
 *                                          │ BEGIN IMMEDIATE
 *                                          │   per item: dedupe → seq check → decide → write
 *                                          │ COMMIT (WAL fsync, synchronous=FULL)
 *                                          ▼
 *                         resolve each call with its own results, then onCommit listeners
 *
 * Invariants:
 * 1. The file is opened in WAL mode with synchronous=FULL, read back and asserted; otherwise
 *    opening throws `RelayError('durability')`. A commit is therefore fsynced before any promise
 *    resolves (guarantee 2 of `log-store.ts`).
 * 2. All writes of a group happen in one `BEGIN IMMEDIATE` transaction. If it fails, every call
 *    of the group is retried alone in its own transaction, so one failing call rejects only
 *    itself; a rejected call wrote nothing.
 * 3. Offsets come from the `partition_heads` row updated in the same transaction as the entries,
 *    so they are gap-free and in commit order; `unique (partition, offset)` and
 *    `unique (tenant, entity, version)` make a wrong offset or version fail the transaction
 *    instead of being written.
 * 4. Dedupe is by `(tenant, id)` in `entries` and `refusals`, forever. A clientSeq at or below
 *    the client's high-water mark was decided before, so it is looked up; one above it must be
 *    exactly high + 1 (else `seq_gap`, not recorded).
 * 5. Entity states in the LRU are only trusted when their version equals the ledger's version
 *    read in the same transaction; otherwise the ledger is refolded. A rolled-back transaction
 *    leaves the caches untouched (the overlay is dropped).
 * 6. One process writes one log file at a time; several relays share a PostgreSQL log instead.
 */
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import { deserialize, serialize } from 'node:v8'
import Database from 'better-sqlite3'
import {
  decide,
  fold,
  PARTITIONS_DEFAULT,
  SERVER_CLIENT_ID,
  checkPartitions,
  partitionOf,
} from '@ledgerline/core'
import type { Decision, Entry, Schema, StoredEntry } from '@ledgerline/core'
import type { AckResult } from '@ledgerline/protocol'
import type { AppendItem, EntityHead, LogStore, LogStoreOptions } from './log-store.ts'
import {
  ENTITY_STATES_MAX,
  GROUP_COMMIT_ENTRIES_MAX,
  SQLITE_BUSY_TIMEOUT_MS,
  SQLITE_CACHE_KIB,
} from './limits.ts'
import { RelayError } from './relay-error.ts'

export interface SqliteStoreOptions extends LogStoreOptions {
  /** Path of the log file; its directory is made when missing. */
  readonly file: string
  /** Most entries per group transaction; defaults to `GROUP_COMMIT_ENTRIES_MAX`. */
  readonly groupCommitEntriesMax?: number | undefined
  /** Entity states kept in memory; defaults to `ENTITY_STATES_MAX`. */
  readonly entityStatesMax?: number | undefined
}

/** The schema version this build writes (`PRAGMA user_version`). */
export const SQLITE_SCHEMA_VERSION = 2

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
    migrate(db)
    const partitions = initPartitions(db, options.partitions)
    return new SqliteStore(db, partitions, options)
  } catch (error) {
    db.close()
    throw error
  }
}

// ---------------------------------------------------------------------------------------------

interface Call {
  readonly tenant: string
  readonly items: readonly AppendItem[]
  readonly resolve: (results: AckResult[]) => void
  readonly reject: (error: unknown) => void
}

interface HeadState {
  version: number
  offset: number
  /** Folded state; `undefined` when it must be refolded before the next decision. */
  state: unknown
  hasState: boolean
}

interface Overlay {
  readonly heads: Map<string, HeadState>
  readonly clients: Map<string, number>
  readonly partitionHeads: Map<number, number>
  readonly touched: Set<number>
  readonly committedAt: number
}

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
  readonly #groupMax: number
  readonly #statesMax: number
  readonly #states = new Map<string, HeadState>()
  readonly #listeners = new Set<(partitions: readonly number[]) => void>()
  #queue: Call[] = []
  #scheduled = false
  #flushing: Promise<void> | undefined
  #closed = false
  readonly #sql: ReturnType<typeof prepare>

  constructor(db: Database.Database, partitions: number, options: SqliteStoreOptions) {
    this.#db = db
    this.partitions = partitions
    this.#schema = options.schema
    this.#now = options.now ?? Date.now
    this.#groupMax = options.groupCommitEntriesMax ?? GROUP_COMMIT_ENTRIES_MAX
    this.#statesMax = options.entityStatesMax ?? ENTITY_STATES_MAX
    this.#sql = prepare(db)
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

  clientHigh(tenant: string, clientId: string): Promise<number> {
    return this.#read(
      () => (this.#sql.clientHigh.get(tenant, clientId) as { high: number } | undefined)?.high ?? 0,
    )
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
    this.#db.close()
  }

  // -- group commit ---------------------------------------------------------------------------

  #schedule(): void {
    if (this.#scheduled) return
    this.#scheduled = true
    // setImmediate runs after the I/O callbacks of this loop turn: the frames read from many
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
    // Synchronous work; the promise only lets close() and later flushes wait for it.
    this.#flushing = Promise.resolve().then(() => {
      try {
        this.#commitGroup(group)
      } finally {
        this.#flushing = undefined
        if (this.#queue.length > 0) this.#schedule()
      }
    })
  }

  #commitGroup(group: readonly Call[]): void {
    const outcome = this.#tryCommit(group)
    if (outcome._tag === 'committed') {
      group.forEach((call, i) => call.resolve(outcome.results[i] as AckResult[]))
      this.#notify(outcome.touched)
      return
    }
    if (group.length === 1) {
      ;(group[0] as Call).reject(outcome.error)
      return
    }
    // Invariant 2: one failing call must not take the others down with it.
    for (const call of group) {
      const alone = this.#tryCommit([call])
      if (alone._tag === 'committed') {
        call.resolve(alone.results[0] as AckResult[])
        this.#notify(alone.touched)
      } else {
        call.reject(alone.error)
      }
    }
  }

  #tryCommit(
    group: readonly Call[],
  ):
    | { _tag: 'committed'; results: AckResult[][]; touched: number[] }
    | { _tag: 'failed'; error: unknown } {
    const overlay: Overlay = {
      heads: new Map(),
      clients: new Map(),
      partitionHeads: new Map(),
      touched: new Set(),
      committedAt: this.#now(),
    }
    let results: AckResult[][]
    try {
      results = this.#db
        .transaction(() => {
          const out = group.map((call) =>
            call.items.map((item) => this.#decide(call.tenant, item, overlay)),
          )
          for (const [key, high] of overlay.clients) {
            const [tenant, clientId] = splitKey(key)
            this.#sql.upsertClient.run(tenant, clientId, high)
          }
          for (const [partition, head] of overlay.partitionHeads) {
            this.#sql.setPartitionHead.run(head, partition)
          }
          return out
        })
        .immediate()
    } catch (error) {
      return {
        _tag: 'failed',
        error:
          error instanceof RelayError
            ? error
            : new RelayError('store_failed', `append failed: ${messageOf(error)}`, {
                cause: error,
              }),
      }
    }
    // Committed (and fsynced): only now do the caches learn what the transaction did.
    for (const [key, head] of overlay.heads) this.#remember(key, head)
    return { _tag: 'committed', results, touched: [...overlay.touched].sort((a, b) => a - b) }
  }

  #notify(touched: readonly number[]): void {
    if (touched.length === 0) return
    for (const listener of this.#listeners) {
      try {
        listener(touched)
      } catch {
        // A listener's failure is its own; the commit stands and other listeners still run.
      }
    }
  }

  // -- deciding one item ----------------------------------------------------------------------

  #decide(tenant: string, item: AppendItem, overlay: Overlay): AckResult {
    const entry = item.entry
    if (entry.clientId === SERVER_CLIENT_ID) return this.#decideServerEntry(tenant, item, overlay)
    const clientKey = joinKey(tenant, entry.clientId)
    let high = overlay.clients.get(clientKey)
    if (high === undefined) {
      high =
        (this.#sql.clientHigh.get(tenant, entry.clientId) as { high: number } | undefined)?.high ??
        0
    }
    if (entry.clientSeq <= high) return this.#previous(tenant, entry.id)
    if (entry.clientSeq !== high + 1) {
      // Not recorded: the client resends in order. Head 0: seq_gap is not a decision.
      return {
        id: entry.id,
        status: 'refused',
        code: 'seq_gap',
        reason: `clientSeq ${entry.clientSeq} but the log holds up to ${high}; resend from ${high + 1}`,
        head: 0,
      }
    }
    overlay.clients.set(clientKey, entry.clientSeq)
    if (item.refuse !== undefined) {
      // Head 0: the entity is outside the client's grants, so its version is not told.
      return this.#refuse(tenant, entry.id, item.refuse.code, item.refuse.reason, 0)
    }
    return this.#decideAndWrite(tenant, entry, overlay)
  }

  /** Entries made by a server log (forwarded corrections): dedupe by id, no clientSeq. */
  #decideServerEntry(tenant: string, item: AppendItem, overlay: Overlay): AckResult {
    const entry = item.entry
    if (this.#sql.entryById.get(tenant, entry.id) !== undefined) {
      return this.#previous(tenant, entry.id)
    }
    if (item.refuse !== undefined) {
      return {
        id: entry.id,
        status: 'refused',
        code: item.refuse.code,
        reason: item.refuse.reason,
        head: 0,
      }
    }
    return this.#decideAndWrite(tenant, entry, overlay)
  }

  #decideAndWrite(tenant: string, entry: Entry, overlay: Overlay): AckResult {
    const key = joinKey(tenant, entry.entity)
    const head = this.#loadHead(tenant, entry.entity, overlay)
    const decision =
      this.#schema === undefined
        ? decidePlain(head.version, entry)
        : decide(
            this.#schema,
            { state: head.state, version: head.version },
            entry,
            overlay.committedAt,
          )
    if (decision._tag === 'refuse') {
      return this.#refuse(tenant, entry.id, decision.code, decision.reason, head.version)
    }
    const partition = this.#write(tenant, entry, head, overlay)
    const version = head.version
    const offset = head.offset
    const corrections: StoredEntry[] = []
    for (const correction of decision.corrections) {
      if (correction.entity === entry.entity) {
        const p = this.#write(tenant, correction, head, overlay)
        corrections.push(storedOf(correction, head, p, overlay.committedAt))
      } else {
        // A correction to another entity of the tenant: its own version in its own ledger.
        const other = this.#loadHead(tenant, correction.entity, overlay)
        const p = this.#write(tenant, correction, other, overlay)
        corrections.push(storedOf(correction, other, p, overlay.committedAt))
        const type = this.#schema?.find(correction.entity)
        if (type !== undefined && other.hasState)
          other.state = fold(type, other.state, [correction])
        else other.hasState = false
      }
    }
    // `decision.state` already folds the entry and its own-entity corrections.
    head.state = decision.state
    head.hasState = true
    overlay.heads.set(key, head)
    return {
      id: entry.id,
      status: 'appended',
      version,
      partition,
      offset,
      committedAt: overlay.committedAt,
      corrections,
    }
  }

  /** Inserts `entry` as the next of `head` (which moves to it); returns its partition. */
  #write(tenant: string, entry: Entry, head: HeadState, overlay: Overlay): number {
    const partition = partitionOf(tenant, entry.entity, this.partitions)
    let last = overlay.partitionHeads.get(partition)
    if (last === undefined) {
      last = (this.#sql.partitionHead.get(partition) as { head: number } | undefined)?.head ?? 0
    }
    const offset = last + 1
    const version = head.version + 1
    this.#sql.insertEntry.run(
      partition,
      offset,
      tenant,
      entry.id,
      entry.entity,
      version,
      entry.corrects ?? null,
      overlay.committedAt,
      serialize(withoutUndefined(entry)),
    )
    overlay.partitionHeads.set(partition, offset)
    overlay.touched.add(partition)
    head.version = version
    head.offset = offset
    overlay.heads.set(joinKey(tenant, entry.entity), head)
    return partition
  }

  #refuse(
    tenant: string,
    id: string,
    code: Extract<AckResult, { status: 'refused' }>['code'],
    reason: string,
    head: number,
  ): AckResult {
    this.#sql.insertRefusal.run(tenant, id, code, reason, head)
    return { id, status: 'refused', code, reason, head }
  }

  /** The original result of an entry decided before (guarantee 5). */
  #previous(tenant: string, id: string): AckResult {
    const row = this.#sql.entryById.get(tenant, id) as EntryRow | undefined
    if (row !== undefined) {
      const corrections = (this.#sql.correctionsOf.all(tenant, id) as EntryRow[]).map(toStored)
      return {
        id,
        status: 'duplicate',
        version: row.version,
        partition: row.partition,
        offset: row.offset,
        committedAt: row.committed_at,
        corrections,
      }
    }
    const refusal = this.#sql.refusalById.get(tenant, id) as
      | { code: Extract<AckResult, { status: 'refused' }>['code']; reason: string; head: number }
      | undefined
    if (refusal !== undefined) {
      return {
        id,
        status: 'refused',
        code: refusal.code,
        reason: refusal.reason,
        head: refusal.head,
      }
    }
    // The high-water mark covers this clientSeq, yet nothing was recorded: the file is damaged.
    throw new RelayError(
      'store_failed',
      `entry ${id} is below its client's high-water mark but unknown`,
    )
  }

  /** The entity's head with its folded state, from the overlay, the LRU, or a refold. */
  #loadHead(tenant: string, entity: string, overlay: Overlay): HeadState {
    const key = joinKey(tenant, entity)
    const inTx = overlay.heads.get(key)
    if (inTx !== undefined) {
      if (!inTx.hasState) this.#refold(tenant, entity, inTx)
      return inTx
    }
    const row = this.#sql.entityHead.get(tenant, entity) as EntityHead | undefined
    const version = row?.version ?? 0
    const cached = this.#states.get(key)
    if (cached !== undefined && cached.version === version && cached.hasState) {
      // A copy: the transaction may roll back, and the cache must not see its changes.
      return { ...cached }
    }
    const head: HeadState = { version, offset: row?.offset ?? 0, state: undefined, hasState: false }
    this.#refold(tenant, entity, head)
    return head
  }

  #refold(tenant: string, entity: string, head: HeadState): void {
    const type = this.#schema?.find(entity)
    if (type === undefined) {
      // A plain log (or an unknown type, which decide() refuses) needs no state.
      head.state = null
      head.hasState = true
      return
    }
    let state = type.initial
    let version = 0
    for (const row of this.#sql.readEntity.iterate(tenant, entity, 1, -1) as Iterable<EntryRow>) {
      state = type.reduce(state, deserialize(row.body) as Entry)
      version = row.version
    }
    if (version !== head.version) {
      throw new RelayError(
        'store_failed',
        `ledger of ${entity} has ${version} entries, head says ${head.version}`,
      )
    }
    head.state = state
    head.hasState = true
  }

  #remember(key: string, head: HeadState): void {
    this.#states.delete(key)
    if (!head.hasState) return
    this.#states.set(key, { ...head })
    if (this.#states.size > this.#statesMax) {
      const oldest = this.#states.keys().next().value
      if (oldest !== undefined) this.#states.delete(oldest)
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

function assertDurable(db: Database.Database): void {
  db.pragma(`busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`)
  const mode = db.pragma('journal_mode = WAL', { simple: true })
  db.pragma('synchronous = FULL')
  const sync = db.pragma('synchronous', { simple: true })
  // 2 = FULL (3 = EXTRA is stricter and also fine).
  if (String(mode).toLowerCase() !== 'wal' || typeof sync !== 'number' || sync < 2) {
    throw new RelayError(
      'durability',
      `SQLite log must use WAL with synchronous=FULL, got journal_mode=${String(mode)} synchronous=${String(sync)}`,
    )
  }
  db.pragma('foreign_keys = ON')
  // Negative: a size in KiB rather than a page count.
  db.pragma(`cache_size = -${SQLITE_CACHE_KIB}`)
}

function migrate(db: Database.Database): void {
  const version = db.pragma('user_version', { simple: true }) as number
  if (version > SQLITE_SCHEMA_VERSION) {
    throw new RelayError(
      'store_version',
      `SQLite log has schema version ${version}; this Ledgerline knows up to ${SQLITE_SCHEMA_VERSION}`,
    )
  }
  const steps: readonly string[] = [
    // 0 → 1: the first layout.
    `
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
    CREATE TABLE entries (
      partition INTEGER NOT NULL,
      "offset" INTEGER NOT NULL,
      tenant TEXT NOT NULL,
      id TEXT NOT NULL,
      entity TEXT NOT NULL,
      version INTEGER NOT NULL,
      corrects TEXT,
      committed_at INTEGER NOT NULL,
      body BLOB NOT NULL,
      PRIMARY KEY (partition, "offset"),
      UNIQUE (tenant, id),
      UNIQUE (tenant, entity, version)
    ) STRICT;
    CREATE INDEX entries_tenant_partition ON entries (tenant, partition, "offset");
    CREATE INDEX entries_corrects ON entries (tenant, corrects) WHERE corrects IS NOT NULL;
    CREATE TABLE refusals (
      tenant TEXT NOT NULL,
      id TEXT NOT NULL,
      code TEXT NOT NULL,
      reason TEXT NOT NULL,
      head INTEGER NOT NULL,
      PRIMARY KEY (tenant, id)
    ) STRICT;
    CREATE TABLE clients (
      tenant TEXT NOT NULL,
      client_id TEXT NOT NULL,
      high INTEGER NOT NULL,
      PRIMARY KEY (tenant, client_id)
    ) STRICT;
    CREATE TABLE partition_heads (partition INTEGER PRIMARY KEY, head INTEGER NOT NULL) STRICT;
    `,
    // 1 → 2: history is never rewritten (guarantee 6). The store only inserts entries and
    // refusals; these triggers make any update or delete fail loudly, whoever attempts it.
    `
    CREATE TRIGGER entries_append_only_update BEFORE UPDATE ON entries
      BEGIN SELECT RAISE(ABORT, 'Ledgerline entries are append-only'); END;
    CREATE TRIGGER entries_append_only_delete BEFORE DELETE ON entries
      BEGIN SELECT RAISE(ABORT, 'Ledgerline entries are append-only'); END;
    CREATE TRIGGER refusals_append_only_update BEFORE UPDATE ON refusals
      BEGIN SELECT RAISE(ABORT, 'Ledgerline refusals are append-only'); END;
    CREATE TRIGGER refusals_append_only_delete BEFORE DELETE ON refusals
      BEGIN SELECT RAISE(ABORT, 'Ledgerline refusals are append-only'); END;
    `,
  ]
  for (let v = version; v < SQLITE_SCHEMA_VERSION; v++) {
    db.transaction(() => {
      db.exec(steps[v] as string)
      db.pragma(`user_version = ${v + 1}`)
    }).immediate()
  }
}

function initPartitions(db: Database.Database, requested: number | undefined): number {
  return db
    .transaction(() => {
      const row = db.prepare(`SELECT value FROM meta WHERE key = 'partitions'`).get() as
        | { value: string }
        | undefined
      if (row !== undefined) return checkPartitions(Number(row.value))
      const partitions = checkPartitions(requested ?? PARTITIONS_DEFAULT)
      db.prepare(`INSERT INTO meta (key, value) VALUES ('partitions', ?)`).run(String(partitions))
      const insert = db.prepare(`INSERT INTO partition_heads (partition, head) VALUES (?, 0)`)
      for (let p = 0; p < partitions; p++) insert.run(p)
      return partitions
    })
    .immediate()
}

function prepare(db: Database.Database) {
  const columns = `partition, "offset", version, committed_at, body`
  return {
    insertEntry: db.prepare(
      `INSERT INTO entries (partition, "offset", tenant, id, entity, version, corrects, committed_at, body)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    insertRefusal: db.prepare(
      `INSERT INTO refusals (tenant, id, code, reason, head) VALUES (?, ?, ?, ?, ?)`,
    ),
    upsertClient: db.prepare(
      `INSERT INTO clients (tenant, client_id, high) VALUES (?, ?, ?)
       ON CONFLICT (tenant, client_id) DO UPDATE SET high = excluded.high`,
    ),
    setPartitionHead: db.prepare(`UPDATE partition_heads SET head = ? WHERE partition = ?`),
    partitionHead: db.prepare(`SELECT head FROM partition_heads WHERE partition = ?`),
    partitionHeads: db.prepare(`SELECT partition, head FROM partition_heads`),
    clientHigh: db.prepare(`SELECT high FROM clients WHERE tenant = ? AND client_id = ?`),
    entryById: db.prepare(`SELECT ${columns} FROM entries WHERE tenant = ? AND id = ?`),
    refusalById: db.prepare(`SELECT code, reason, head FROM refusals WHERE tenant = ? AND id = ?`),
    correctionsOf: db.prepare(
      `SELECT ${columns} FROM entries WHERE tenant = ? AND corrects = ? ORDER BY rowid`,
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

/**
 * `decide()` of a plain log (no schema), without its input checks: entries reach the store
 * already validated (`AppendItem`), and on the hot path of a plain log re-validating every entry
 * was the largest cost after SQLite itself. The outcome is the one `decide(undefined, …)` gives.
 */
function decidePlain(version: number, entry: Entry): Decision {
  if (entry.intent === 'request' && entry.expect !== undefined && entry.expect !== version) {
    return {
      _tag: 'refuse',
      code: 'conflict',
      reason: `expected version ${entry.expect}, entity is at ${version}`,
    }
  }
  return PLAIN_APPEND
}

const PLAIN_APPEND: Decision = { _tag: 'append', state: null, corrections: [], broken: [] }

/** A correction as written by `#write`, at the position `head` moved to. */
function storedOf(entry: Entry, head: HeadState, partition: number, at: number): StoredEntry {
  return { ...entry, version: head.version, partition, offset: head.offset, committedAt: at }
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

/** Drops `undefined` fields so a stored entry reads back with the same keys it was sent with. */
function withoutUndefined(entry: Entry): Entry {
  const fields = entry as unknown as Record<string, unknown>
  // Decoded entries and corrections have none, so the common case copies nothing.
  let clean = true
  for (const key in fields) if (fields[key] === undefined) clean = false
  if (clean) return entry
  const out: Record<string, unknown> = {}
  for (const key of Object.keys(fields)) if (fields[key] !== undefined) out[key] = fields[key]
  return out as unknown as Entry
}

// Tenants and client ids have no NUL; entity names neither.
function joinKey(a: string, b: string): string {
  return `${a}\u0000${b}`
}

function splitKey(key: string): [string, string] {
  const i = key.indexOf('\u0000')
  return [key.slice(0, i), key.slice(i + 1)]
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

/**
 * A store hub's durable state, in its own SQLite file (`<dataDir>/hub.sqlite`), served to the
 * relay's sessions as a `LogStore`: reads come from the *mirror* (head office's entries with head
 * office's positions, as the hub's upstream subscription received them), appends go into the
 * *store queue* (entries of registers head office has not confirmed) and are answered `stored`,
 * or with head office's result once the hub knows it. This file keeps the mirror and opens the
 * file; the queue is `hub-queue.ts`, the settling of its rows `hub-settle.ts`, the SQL
 * `hub-sql.ts`.
 *
 * Terms: a queue row is *open* while head office's result is unknown and *settled* once it is
 * (`result`); a *held* row is one the hub refused itself (outside the register's grants) and
 * forwards only where head office will refuse it the same way. The *mirror* holds head office's
 * log identity, partition count and the subscription's cursors beside the entries.
 *
 *   register push ─► append() ─► the queue (`hub-queue.ts`) ─► `stored` or head office's result
 *   upstream page ─► mirrorPage(): entries + cursors in one transaction, queue rows of those
 *       ids settled with their positions (`hub-settle.ts`) ─► onCommit listeners, onSettled
 *   forwarder's results ─► settle() ─► the rows they answer (`hub-settle.ts`) ─► onSettled
 *
 * Invariants:
 * 1. An item answered `stored` is in the queue, durable (WAL, synchronous FULL), before the
 *    answer; it is never changed afterwards: the forwarder sends exactly the bytes queued.
 * 2. The mirror only ever holds head office's entries at head office's positions, appended in
 *    offset order per partition together with the cursors that pass them (one transaction), so
 *    a SIGKILL leaves mirror and cursors consistent.
 * 3. `identity()` is head office's identity as last seen; before the hub has ever reached head
 *    office there is none and `identity()` rejects (`hub-error.ts` code `not_connected`).
 * 4. A head office of another log (another id or generation: restored, replaced) empties the
 *    mirror and its cursors, and drops every settled queue row: their results are the old log's,
 *    which the new one may lack, so a resend must not be answered from them with a position that
 *    is gone; it is queued again and forwarded. Re-opening them instead was tried: a register's
 *    recovery may move a row's entries to its current clientId, and the old clientId's rows then
 *    meet `seq_gap` at head office for good. Open rows stay (forwarded again). The clients'
 *    high-water marks go back to 0 (the mirror and new queueing raise them again), so a
 *    register's welcome never names a mark of the lost history; every register session ends so
 *    its register hellos again and runs its log-change recovery (`session.ts` invariant 12),
 *    putting back what it holds, as connected to head office directly. Bindings stay. Whatever
 *    caches the mirror's offsets is told (`onLogChanged`) before any page of the new log comes:
 *    the relay's shared tails would serve the old log's entries at offsets the new one reuses.
 * 5. Only queueing (what `stored` promises) commits with a full fsync; mirror pages and
 *    settlements may be lost by a power cut and are then done again (`#relaxed`).
 *
 * The queue's own invariants (client bindings, its bound, held entries, group transactions) are
 * in `hub-queue.ts`; those of settling (pruning, moved copies) in `hub-settle.ts`.
 */
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import Database from 'better-sqlite3'
import { SERVER_CLIENT_ID } from '@ledgerline/core'
import type { Entry, StoredEntry } from '@ledgerline/core'
import { createCommitListeners, LogStoreError } from '@ledgerline/log'
import type { AckResult, Cursors, LogIdentity } from '@ledgerline/protocol'
import { encodeEntryBody, storedEntryOf } from '../entry-body.ts'
import { SQLITE_BUSY_TIMEOUT_MS } from '../limits.ts'
import type {
  AppendItem,
  AppendResult,
  ClientRecord,
  EntityHead,
  LogStore,
  Pusher,
} from '../log-store.ts'
import { HubError } from './hub-error.ts'
import { createHubQueue, queuedOf } from './hub-queue.ts'
import type { HubQueue, QueuedEntry } from './hub-queue.ts'
import { createHubSettler } from './hub-settle.ts'
import type { HubSettler } from './hub-settle.ts'
import { HUB_SCHEMA, prepareHubSql } from './hub-sql.ts'
import type { HubSql } from './hub-sql.ts'
import { HUB_QUEUE_ENTRIES_MAX } from './hub-limits.ts'

export const HUB_FILE = 'hub.sqlite'

/** What the hub knows of head office from its last welcome. */
export interface MirrorHead {
  readonly log: LogIdentity
  readonly partitions: number
  /** The hub's own read grant at head office: what the mirror can hold. */
  readonly read: readonly string[]
  /** The hub's own token subject: the subject of entries the hub itself makes (`/yjs/`). */
  readonly subject: string
}

export interface HubStore extends LogStore {
  /** Head office's log and partition count as last seen; undefined before the first welcome. */
  mirrorHead(): MirrorHead | undefined
  /** Invariant 4: a welcome from head office; returns true when the mirror was emptied. */
  welcomed(head: MirrorHead): boolean
  /**
   * Invariant 4: told when a welcome emptied the mirror, before `welcomed` returns (so before
   * any page of the new log): caches of the mirror's offsets (the relay's shared tails) drop.
   */
  onLogChanged(listener: () => void): () => void
  /** The upstream subscription's cursors (what the mirror holds). */
  cursors(): Cursors
  /** Invariant 2: a page of head office's entries and the cursors after it. */
  mirrorPage(entries: readonly StoredEntry[], cursors: Cursors): void
  /** Open rows in arrival order after `afterSeq`, at most `limit`. */
  open(limit: number, afterSeq?: number): QueuedEntry[]
  /** Open rows of `tenant`, arrival order, after `afterSeq`: the store layer. */
  openFacts(tenant: string, afterSeq: number, limit: number): QueuedEntry[]
  /** Head office's results for queued entries (one transaction). */
  settle(results: readonly AckResult[]): void
  /** How many rows are open. */
  openCount(): number
  /** Ids settled (the entry left the store layer), told after each settling transaction. */
  onSettled(listener: (ids: readonly string[]) => void): () => void
  /** Entries queued (arrival order), told after each queueing transaction. */
  onQueued(listener: (rows: readonly QueuedEntry[]) => void): () => void
  /** A value the hub keeps across restarts (its upstream clientId). */
  meta(key: string, make: () => string): string
}

/**
 * Opens (or makes) a hub's state file.
 *
 * @example
 * const hub = openHubStore(join(dataDir, HUB_FILE))
 * await hub.append('acme', [{ entry }], { subject: 'till-1', grants }) // [{ id, status: 'stored' }]
 */
export function openHubStore(
  file: string,
  options: {
    /**
     * Open rows at most (`hub-queue.ts` invariant 2); `HUB_QUEUE_ENTRIES_MAX` unless a test sets
     * a smaller one.
     */
    readonly queueEntriesMax?: number | undefined
  } = {},
): HubStore {
  mkdirSync(dirname(file), { recursive: true })
  const db = new Database(file)
  db.pragma('journal_mode = WAL')
  // Invariant 1: `stored` means durable; FULL syncs the WAL on every commit.
  db.pragma('synchronous = FULL')
  db.pragma(`busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`)
  db.exec(HUB_SCHEMA)
  return new SqliteHubStore(db, options.queueEntriesMax ?? HUB_QUEUE_ENTRIES_MAX)
}

class SqliteHubStore implements HubStore {
  readonly #db: Database.Database
  readonly #commits = createCommitListeners()
  readonly #logChanged = new Set<() => void>()
  #head: MirrorHead | undefined
  #closed = false
  readonly #sql: HubSql
  readonly #queue: HubQueue
  readonly #settler: HubSettler

  constructor(db: Database.Database, queueMax: number) {
    this.#db = db
    this.#sql = prepareHubSql(db)
    this.#settler = createHubSettler(this.#sql)
    this.#queue = createHubQueue(db, this.#sql, {
      queueMax,
      ownSubject: () => this.#head?.subject ?? '',
    })
    const log = this.#sql.meta.get('log')?.value
    const partitions = this.#sql.meta.get('partitions')?.value
    const read = this.#sql.meta.get('read')?.value ?? '[]'
    const subject = this.#sql.meta.get('subject')?.value ?? ''
    if (log !== undefined && partitions !== undefined) {
      this.#head = {
        log: JSON.parse(log) as LogIdentity,
        partitions: Number(partitions),
        read: JSON.parse(read) as string[],
        subject,
      }
    }
  }

  get partitions(): number {
    return this.#head?.partitions ?? 0
  }

  mirrorHead(): MirrorHead | undefined {
    return this.#head
  }

  welcomed(head: MirrorHead): boolean {
    const before = this.#head
    const other =
      before !== undefined &&
      (before.log.id !== head.log.id ||
        before.log.generation !== head.log.generation ||
        before.partitions !== head.partitions)
    let changedSeq: number | undefined
    this.#db.transaction(() => {
      if (other) {
        // Invariant 4: another history; its positions mean nothing here.
        this.#sql.clearMirror.run()
        this.#sql.clearCursors.run()
        this.#sql.resetHighs.run()
        changedSeq = this.#settler.forgetLog()
      }
      this.#sql.setMeta.run('log', JSON.stringify(head.log))
      this.#sql.setMeta.run('partitions', String(head.partitions))
      this.#sql.setMeta.run('read', JSON.stringify(head.read))
      this.#sql.setMeta.run('subject', head.subject)
    })()
    this.#head = head
    if (changedSeq !== undefined) this.#settler.logChangedAt(changedSeq)
    if (other) for (const l of this.#logChanged) l()
    return other
  }

  onLogChanged(listener: () => void): () => void {
    this.#logChanged.add(listener)
    return () => this.#logChanged.delete(listener)
  }

  /**
   * Invariant 5: a transaction whose loss a crash may cause without harm (the mirror and its
   * cursors roll back together and are fetched again; a settled row reverts to open and is
   * forwarded again, which head office answers the same way) skips the fsync of its commit.
   */
  #relaxed(work: () => void): void {
    this.#db.pragma('synchronous = NORMAL')
    try {
      this.#db.transaction(work)()
    } finally {
      this.#db.pragma('synchronous = FULL')
    }
  }

  cursors(): Cursors {
    const cursors: Record<number, number> = {}
    for (const r of this.#sql.cursors.all()) cursors[r.partition] = r.through
    return cursors
  }

  mirrorPage(entries: readonly StoredEntry[], cursors: Cursors): void {
    const settledIds: string[] = []
    const touched = new Set<number>()
    /** Highest clientSeq per (tenant, clientId) of the page: one upsert each, not one an entry. */
    const highs = new Map<string, { tenant: string; clientId: string; high: number }>()
    this.#relaxed(() => {
      for (const e of entries) {
        const { version, partition, offset, committedAt, ...entry } = e
        this.#sql.mirrorInsert.run(
          partition,
          offset,
          e.tenant,
          e.entity,
          e.id,
          version,
          committedAt,
          encodeEntryBody(entry),
        )
        touched.add(partition)
        if (e.clientId !== SERVER_CLIENT_ID) {
          const key = `${e.tenant}\u0000${e.clientId}`
          const had = highs.get(key)
          if (had === undefined)
            highs.set(key, { tenant: e.tenant, clientId: e.clientId, high: e.clientSeq })
          else had.high = Math.max(had.high, e.clientSeq)
        }
        const result: AckResult = {
          id: e.id,
          status: 'appended',
          version,
          partition,
          offset,
          committedAt,
          corrections: [],
        }
        settledIds.push(...this.#settler.mirrored(entry as Entry, result))
      }
      for (const c of highs.values()) this.#sql.setClient.run(c.tenant, c.clientId, c.high, null)
      const before = this.cursors()
      for (const [p, through] of Object.entries(cursors)) {
        // Cursors that passed entries outside the hub's scope move registers' cursors too.
        if ((before[Number(p)] ?? 0) < through) touched.add(Number(p))
        this.#sql.setCursor.run(Number(p), through)
      }
    })
    this.#commits.tell([...touched].sort((a, b) => a - b))
    this.#settler.settled(settledIds)
  }

  open(limit: number, afterSeq = 0): QueuedEntry[] {
    return this.#sql.open.all(afterSeq, limit).map(queuedOf)
  }

  openFacts(tenant: string, afterSeq: number, limit: number): QueuedEntry[] {
    return this.#sql.openFacts.all(tenant, afterSeq, limit).map(queuedOf)
  }

  settle(results: readonly AckResult[]): void {
    let ids: string[] = []
    this.#relaxed(() => {
      ids = this.#settler.settle(results)
    })
    this.#settler.settled(ids)
  }

  openCount(): number {
    return this.#queue.openCount()
  }

  onSettled(listener: (ids: readonly string[]) => void): () => void {
    return this.#settler.onSettled(listener)
  }

  onQueued(listener: (rows: readonly QueuedEntry[]) => void): () => void {
    return this.#queue.onQueued(listener)
  }

  meta(key: string, make: () => string): string {
    const had = this.#sql.meta.get(key)?.value
    if (had !== undefined) return had
    const value = make()
    this.#sql.setMeta.run(key, value)
    return value
  }

  async append(
    tenant: string,
    items: readonly AppendItem[],
    pusher?: Pusher | undefined,
  ): Promise<AppendResult[]> {
    if (this.#closed) throw new LogStoreError('closed', 'the hub store is closed')
    return await this.#queue.append(tenant, items, pusher)
  }

  async readPartition(
    tenant: string,
    partition: number,
    afterOffset: number,
    limit: number,
  ): Promise<{ entries: StoredEntry[]; throughOffset: number }> {
    const entries = this.#sql.readPartition.all(partition, tenant, afterOffset, limit)
    const mine = entries.map(storedEntryOf)
    const last = mine.at(-1)
    if (mine.length >= limit && last !== undefined)
      return { entries: mine, throughOffset: last.offset }
    // The mirror holds everything up to the cursor: the read passed other tenants' entries too.
    const through = this.cursors()[partition] ?? 0
    return { entries: mine, throughOffset: Math.max(afterOffset, through, last?.offset ?? 0) }
  }

  async readEntity(
    tenant: string,
    entity: string,
    fromVersion: number,
    limit: number,
  ): Promise<StoredEntry[]> {
    return this.#sql.readEntity.all(tenant, entity, fromVersion, limit).map(storedEntryOf)
  }

  async head(tenant: string, entity: string): Promise<EntityHead> {
    return this.#sql.head.get(tenant, entity) ?? { version: 0, offset: 0 }
  }

  async client(tenant: string, clientId: string): Promise<ClientRecord> {
    const c = this.#sql.client.get(tenant, clientId)
    return c === undefined ? { high: 0, subject: null } : c
  }

  async identity(): Promise<LogIdentity> {
    if (this.#head === undefined) {
      throw new HubError('not_connected', 'not yet connected to head office')
    }
    return this.#head.log
  }

  async bumpGeneration(): Promise<LogIdentity> {
    throw new HubError('not_head_office', 'a store hub has no log generation of its own')
  }

  async partitionHeads(): Promise<number[]> {
    const cursors = this.cursors()
    return Array.from({ length: this.partitions }, (_, p) => cursors[p] ?? 0)
  }

  onCommit(listener: (partitions: readonly number[]) => void): () => void {
    return this.#commits.add(listener)
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#queue.close()
    this.#commits.clear()
    this.#db.close()
  }
}

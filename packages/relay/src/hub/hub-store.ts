/**
 * A store hub's durable state, in its own SQLite file (`<dataDir>/hub.sqlite`), served to the
 * relay's sessions as a `LogStore`: reads come from the *mirror* (head office's entries with head
 * office's positions, as the hub's upstream subscription received them), appends go into the
 * *store queue* (entries of registers head office has not confirmed) and are answered `stored`,
 * or with head office's result once the hub knows it.
 *
 * Terms: a queue row is *open* while head office's result is unknown and *settled* once it is
 * (`result`); a *held* row is one the hub refused itself (outside the register's grants) and
 * forwards only where head office will refuse it the same way. The *mirror* holds head office's
 * log identity, partition count and the subscription's cursors beside the entries.
 *
 *   register push ─► append(): per item
 *       in the mirror            ─► head office's result as `duplicate`
 *       queued, same digest      ─► head office's result if settled, else `stored`
 *       queued, other digest     ─► id_conflict (nothing recorded)
 *       clientId of another subj ─► client_taken (nothing recorded; the session closes)
 *       else                     ─► queued (one transaction, durable) ─► `stored`
 *   upstream page ─► mirrorPage(): entries + cursors in one transaction, queue rows of those
 *       ids settled with their positions ─► onCommit listeners, onSettled
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
 * 5. A clientId is bound to the subject of the first register that queued under it, as head
 *    office binds it; another subject gets `client_taken` and nothing is queued. Its high-water
 *    mark is the highest clientSeq the hub queued or mirrored of it.
 * 6. At most `HUB_QUEUE_ENTRIES_MAX` rows are open; past it `append` rejects `overloaded` and
 *    queues nothing.
 * 7. An entry outside the register's grants is *held*: queued, answered `stored` (not a
 *    decision), never in the store layer. Head office records the refusal when the forwarder
 *    sends it (`forwarder.ts` invariant 3); answering `forbidden` here would let the register drop
 *    the record while head office's clientSeq stays unused, and every later entry of the
 *    register would meet `seq_gap` if this hub were lost.
 * 8. At most about `HUB_SETTLED_KEEP_MAX` settled rows are kept (pruned oldest first, in steps
 *    of a tenth); open rows are never pruned.
 * 9. Only queueing (what `stored` promises) commits with a full fsync; mirror pages and
 *    settlements may be lost by a power cut and are then done again (`#relaxed`).
 * 10. Appends that arrive while one is committing are queued in one transaction (one fsync),
 *    at most `HUB_COMMIT_GROUP_ENTRIES_MAX` entries a group, in the order they came (one
 *    register's pushes stay in order); each call gets its own results. A group whose transaction
 *    fails is queued again call by call, so one bad call rejects only itself.
 * 11. An open row whose entry a register's restore recovery moved (a copy under another clientId
 *    of the same subject naming the row's id as its `origin`, the same `recoveryDigest`) gets
 *    the copy's decision: `duplicate` at the copy's position once the copy is in the mirror (as
 *    head office answers the original once a copy of it landed, `append-plan.ts` invariant 12),
 *    or the copy's refusal when the forwarder settles the copy's own row with one. Head office
 *    would refuse the forwarded original `seq_gap` for good after a log change (the restored log
 *    lacks the clientSeqs before it, which the register confirmed and dropped), so the row would
 *    never settle and the hub never drain; and the store layer would show it beside its copy.
 *    Only rows queued before the last log change (`log_changed_seq` in meta) settle so: on the
 *    log a row was queued for, head office answers the forwarded original `duplicate` itself and
 *    so uses up its clientSeq; settled here, it would leave head office's mark of that clientId
 *    below the clientId's later open rows (ones a restored device lost but the hub holds), which
 *    head office would then refuse `seq_gap` for good (seed 179).
 */
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import Database from 'better-sqlite3'
import { entryDigest, recoveryDigest, sameDigest, SERVER_CLIENT_ID } from '@ledgerline/core'
import type { Entry, StoredEntry } from '@ledgerline/core'
import { createCommitListeners, LogStoreError, subjectFor } from '@ledgerline/log'
import type { AckResult, Cursors, LogIdentity } from '@ledgerline/protocol'
import { decodeEntryBody, encodeEntryBody, storedEntryOf } from '../entry-body.ts'
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
import { HUB_SCHEMA, prepareHubSql } from './hub-sql.ts'
import type { HubSql, QueueRow } from './hub-sql.ts'
import {
  HUB_COMMIT_GROUP_ENTRIES_MAX,
  HUB_QUEUE_ENTRIES_MAX,
  HUB_SETTLED_KEEP_MAX,
} from './hub-limits.ts'

export const HUB_FILE = 'hub.sqlite'

/** One queue row as the forwarder and the store layer see it. */
export interface QueuedEntry {
  /** Hub arrival order: the provisional store order. */
  readonly seq: number
  readonly entry: Entry
  /** Encoded size of the entry (its queued body). */
  readonly bytes: number
  readonly subject: string
  /** Set when the hub refused the entry itself (outside the register's grants). */
  readonly held: string | null
  readonly result: AckResult | null
}

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
    /** Open rows at most (invariant 6); `HUB_QUEUE_ENTRIES_MAX` unless a test sets a smaller one. */
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
  readonly #settled = new Set<(ids: readonly string[]) => void>()
  readonly #queued = new Set<(rows: readonly QueuedEntry[]) => void>()
  readonly #logChanged = new Set<() => void>()
  #head: MirrorHead | undefined
  /** Invariant 11: the highest queue seq at the last log change (0: none seen). */
  #logChangedSeq: number
  #closed = false
  #settledSincePrune = 0
  readonly #sql: HubSql
  /** Invariant 10: appends waiting for the next group transaction, in arrival order. */
  #waiting: PendingAppend[] = []
  #grouping = false

  readonly #queueMax: number

  constructor(db: Database.Database, queueMax: number) {
    this.#db = db
    this.#queueMax = queueMax
    this.#sql = prepareHubSql(db)
    const log = this.#sql.meta.get('log')?.value
    const partitions = this.#sql.meta.get('partitions')?.value
    const read = this.#sql.meta.get('read')?.value ?? '[]'
    const subject = this.#sql.meta.get('subject')?.value ?? ''
    this.#logChangedSeq = Number(this.#sql.meta.get('log_changed_seq')?.value ?? 0)
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
    let changedSeq = this.#logChangedSeq
    this.#db.transaction(() => {
      if (other) {
        // Invariant 4: another history; its positions mean nothing here.
        this.#sql.clearMirror.run()
        this.#sql.clearCursors.run()
        this.#sql.dropSettled.run()
        this.#sql.resetHighs.run()
        // Invariant 11: the rows still open were queued for the lost history.
        changedSeq = this.#sql.lastSeq.get()?.seq ?? 0
        this.#sql.setMeta.run('log_changed_seq', String(changedSeq))
      }
      this.#sql.setMeta.run('log', JSON.stringify(head.log))
      this.#sql.setMeta.run('partitions', String(head.partitions))
      this.#sql.setMeta.run('read', JSON.stringify(head.read))
      this.#sql.setMeta.run('subject', head.subject)
    })()
    this.#head = head
    this.#logChangedSeq = changedSeq
    if (other) for (const l of this.#logChanged) l()
    return other
  }

  onLogChanged(listener: () => void): () => void {
    this.#logChanged.add(listener)
    return () => this.#logChanged.delete(listener)
  }

  /**
   * Invariant 9: a transaction whose loss a crash may cause without harm (the mirror and its
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
        if (this.#sql.settle.run(JSON.stringify(result), e.tenant, e.id).changes > 0) {
          settledIds.push(e.id)
        }
        if (e.origin !== undefined && this.#settleOrigin(e.origin, entry as Entry, result)) {
          settledIds.push(e.origin)
        }
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
    if (settledIds.length > 0) {
      this.#prune(settledIds.length)
      for (const l of this.#settled) l(settledIds)
    }
  }

  /**
   * Invariant 11: the open row of `origin` gets the decision its moved copy `copy` got
   * (`decided`; landed: `duplicate` at the copy's position), when the copy has the row's content
   * (`recoveryDigest`) and is of the row's subject: `subject` (the copy's queue row) or the
   * hub's binding of its clientId, if any, and was queued before the last log change. True when
   * a row was settled.
   */
  #settleOrigin(origin: string, copy: Entry, decided: AckResult, subject?: string): boolean {
    if (!isDecision(decided)) return false
    const row = this.#sql.queued.get(copy.tenant, origin)
    if (row === undefined || row.result !== null) return false
    // Head office of the row's own log answers the original itself (`duplicate`).
    if (row.seq > this.#logChangedSeq) return false
    const bound = subject ?? this.#sql.client.get(copy.tenant, copy.clientId)?.subject
    if (bound !== undefined && bound !== null && bound !== row.subject) return false
    const original = decodeEntryBody(row.body)
    if (!sameDigest(recoveryDigest(original), recoveryDigest(copy))) return false
    const result: AckResult =
      decided.status === 'appended' || decided.status === 'duplicate'
        ? { ...decided, id: origin, status: 'duplicate', corrections: [] }
        : { ...decided, id: origin }
    return this.#sql.settle.run(JSON.stringify(result), copy.tenant, origin).changes > 0
  }

  open(limit: number, afterSeq = 0): QueuedEntry[] {
    return this.#sql.open.all(afterSeq, limit).map(queuedOf)
  }

  openFacts(tenant: string, afterSeq: number, limit: number): QueuedEntry[] {
    return this.#sql.openFacts.all(tenant, afterSeq, limit).map(queuedOf)
  }

  settle(results: readonly AckResult[]): void {
    const ids: string[] = []
    this.#relaxed(() => {
      for (const r of results) {
        if (this.#sql.settleAny.run(JSON.stringify(r), r.id).changes === 0) continue
        ids.push(r.id)
        // Invariant 11: a moved copy's decision is its origin's too.
        for (const row of this.#sql.queuedAny.all(r.id)) {
          const copy = decodeEntryBody(row.body)
          if (copy.origin !== undefined && this.#settleOrigin(copy.origin, copy, r, row.subject)) {
            ids.push(copy.origin)
          }
        }
      }
    })
    if (ids.length > 0) {
      this.#prune(ids.length)
      for (const l of this.#settled) l(ids)
    }
  }

  /** Invariant 8: the oldest settled rows past `HUB_SETTLED_KEEP_MAX` go. */
  #prune(settled: number): void {
    this.#settledSincePrune += settled
    if (this.#settledSincePrune < HUB_SETTLED_KEEP_MAX / 10) return
    this.#settledSincePrune = 0
    this.#sql.prune.run(HUB_SETTLED_KEEP_MAX)
  }

  openCount(): number {
    return this.#sql.openCount.get()?.n ?? 0
  }

  onSettled(listener: (ids: readonly string[]) => void): () => void {
    this.#settled.add(listener)
    return () => this.#settled.delete(listener)
  }

  onQueued(listener: (rows: readonly QueuedEntry[]) => void): () => void {
    this.#queued.add(listener)
    return () => this.#queued.delete(listener)
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
    return await new Promise<AppendResult[]>((resolve, reject) => {
      this.#waiting.push({ tenant, items, pusher, resolve, reject })
      if (this.#grouping) return
      this.#grouping = true
      // Invariant 10: what else arrives meanwhile (other registers' pushes) joins this group.
      setImmediate(() => this.#commitWaiting())
    })
  }

  /** Invariant 10: the waiting appends, as few transactions as the group bound allows. */
  #commitWaiting(): void {
    this.#grouping = false
    const group: PendingAppend[] = []
    let entries = 0
    while (this.#waiting.length > 0) {
      const next = this.#waiting[0] as PendingAppend
      if (group.length > 0 && entries + next.items.length > HUB_COMMIT_GROUP_ENTRIES_MAX) break
      group.push(next)
      entries += next.items.length
      this.#waiting.shift()
    }
    if (this.#waiting.length > 0) {
      this.#grouping = true
      setImmediate(() => this.#commitWaiting())
    }
    if (this.#closed) {
      for (const call of group) call.reject(new LogStoreError('closed', 'the hub store is closed'))
      return
    }
    let open = this.openCount()
    const admitted: PendingAppend[] = []
    for (const call of group) {
      if (open + call.items.length > this.#queueMax) {
        // Invariant 6: nothing of it queued; the register backs off and resends.
        call.reject(
          new LogStoreError(
            'overloaded',
            `${open} entries wait for head office; ${call.items.length} more would pass HUB_QUEUE_ENTRIES_MAX (${this.#queueMax})`,
          ),
        )
        continue
      }
      // At most this many more open rows (a resend adds none).
      open += call.items.length
      admitted.push(call)
    }
    const committed: Committed[] = []
    try {
      committed.push(this.#commitGroup(admitted))
    } catch {
      // Invariant 10: each call alone, so only the bad one fails.
      for (const call of admitted) {
        try {
          committed.push(this.#commitGroup([call]))
        } catch (error) {
          call.reject(error)
        }
      }
    }
    // Told and answered only after the transactions: a listener's error is not a failed commit.
    for (const { calls, added, results } of committed) {
      try {
        if (added.length > 0) for (const l of this.#queued) l(added)
      } catch (error) {
        for (const call of calls) call.reject(error)
        continue
      }
      for (const [i, call] of calls.entries()) call.resolve(results[i] as AppendResult[])
    }
  }

  /** One durable transaction for `calls`, with each call's own results. */
  #commitGroup(calls: readonly PendingAppend[]): Committed {
    const added: QueuedEntry[] = []
    const results: AppendResult[][] = []
    if (calls.length === 0) return { calls, added, results }
    this.#db.transaction(() => {
      for (const call of calls) {
        results.push(call.items.map((item) => this.#item(call.tenant, item, call.pusher, added)))
      }
    })()
    return { calls, added, results }
  }

  #item(
    tenant: string,
    item: AppendItem,
    pusher: Pusher | undefined,
    added: QueuedEntry[],
  ): AppendResult {
    const entry = item.entry
    // The hub's own entries (its `/yjs/` writer, no pusher) act for the hub's own subject.
    const subject =
      pusher === undefined ? (this.#head?.subject ?? '') : subjectFor(pusher, entry.clientId)
    const client = this.#sql.client.get(tenant, entry.clientId)
    const bound = client?.subject ?? null
    if (pusher !== undefined && bound !== null && bound !== subject) {
      return {
        id: entry.id,
        status: 'client_taken',
        reason: `clientId ${entry.clientId} belongs to another token subject of this tenant`,
      }
    }
    const mirrored = this.#sql.mirrorById.get(tenant, entry.id)
    const digest = entryDigest(entry)
    const queued = this.#sql.queued.get(tenant, entry.id)
    if (queued !== undefined && !sameDigest(queued.digest, digest)) {
      return {
        id: entry.id,
        status: 'id_conflict',
        reason: `the store holds another entry under ${entry.id}; send this one under a new clientId`,
      }
    }
    if (mirrored !== undefined && queued === undefined) {
      // Head office appended it (another path brought it): its positions, as a duplicate.
      const stored = storedEntryOf(mirrored)
      if (!sameDigest(entryDigest(decodeEntryBody(mirrored.body)), digest)) {
        return {
          id: entry.id,
          status: 'id_conflict',
          reason: `the log holds another entry under ${entry.id}; send this one under a new clientId`,
        }
      }
      return {
        id: entry.id,
        status: 'duplicate',
        version: stored.version,
        partition: stored.partition,
        offset: stored.offset,
        committedAt: stored.committedAt,
        corrections: [],
      }
    }
    if (queued !== undefined) {
      if (queued.result === null) return { id: entry.id, status: 'stored' }
      const result = JSON.parse(queued.result) as AckResult
      return result.status === 'appended' ? { ...result, status: 'duplicate' } : result
    }
    const held = item.refuse?.reason ?? null
    const body = encodeEntryBody(entry)
    const info = this.#sql.enqueue.run(
      tenant,
      entry.id,
      entry.clientId,
      entry.clientSeq,
      subject,
      digest,
      body,
      entry.intent === 'fact' ? 1 : 0,
      held,
    )
    this.#sql.setClient.run(tenant, entry.clientId, entry.clientSeq, subject)
    added.push({
      seq: Number(info.lastInsertRowid),
      entry,
      bytes: body.byteLength,
      subject,
      held,
      result: null,
    })
    // Invariant 7: a held entry is answered `stored` too; the refusal is head office's to record.
    return { id: entry.id, status: 'stored' }
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
    this.#commits.clear()
    this.#db.close()
  }
}

/** An `append` waiting for its group transaction (invariant 10). */
interface PendingAppend {
  readonly tenant: string
  readonly items: readonly AppendItem[]
  readonly pusher: Pusher | undefined
  readonly resolve: (results: AppendResult[]) => void
  readonly reject: (error: unknown) => void
}

/** A committed group: its calls, the rows it queued and each call's results. */
interface Committed {
  readonly calls: readonly PendingAppend[]
  readonly added: readonly QueuedEntry[]
  readonly results: readonly AppendResult[][]
}

/** A decision of head office's that settles a row (`forwarder.ts` `isFinal`, less id_conflict). */
function isDecision(r: AckResult): boolean {
  if (r.status === 'appended' || r.status === 'duplicate') return true
  return r.status === 'refused' && r.code !== 'seq_gap'
}

function queuedOf(r: QueueRow): QueuedEntry {
  return {
    seq: r.seq,
    entry: decodeEntryBody(r.body),
    bytes: r.body.byteLength,
    subject: r.subject,
    held: r.held,
    result: r.result === null ? null : (JSON.parse(r.result) as AckResult),
  }
}

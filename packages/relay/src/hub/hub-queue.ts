/**
 * A store hub's *store queue* (`hub-store.ts`): registers' pushes queued, durable, in group
 * transactions, and answered `stored`, or with head office's result once the hub knows it.
 *
 * Terms: as in `hub-store.ts`; a *group* is the appends that arrived while one was committing,
 * queued in one transaction.
 *
 *   register push ─► append(): per item
 *       in the mirror            ─► head office's result as `duplicate`
 *       queued, same digest      ─► head office's result if settled, else `stored`
 *       queued, other digest     ─► id_conflict (nothing recorded)
 *       clientId of another subj ─► client_taken (nothing recorded; the session closes)
 *       else                     ─► queued (one transaction, durable) ─► `stored`
 *
 * Invariants:
 * 1. A clientId is bound to the subject of the first register that queued under it, as head
 *    office binds it; another subject gets `client_taken` and nothing is queued. Its high-water
 *    mark is the highest clientSeq the hub queued or mirrored of it.
 * 2. At most `HUB_QUEUE_ENTRIES_MAX` rows are open; past it `append` rejects `overloaded` and
 *    queues nothing.
 * 3. An entry outside the register's grants is *held*: queued, answered `stored` (not a
 *    decision), never in the store layer. Head office records the refusal when the forwarder
 *    sends it (`forwarder.ts` invariant 3); answering `forbidden` here would let the register drop
 *    the record while head office's clientSeq stays unused, and every later entry of the
 *    register would meet `seq_gap` if this hub were lost.
 * 4. Appends that arrive while one is committing are queued in one transaction (one fsync),
 *    at most `HUB_COMMIT_GROUP_ENTRIES_MAX` entries a group, in the order they came (one
 *    register's pushes stay in order); each call gets its own results. A group whose transaction
 *    fails is queued again call by call, so one bad call rejects only itself.
 */
import type Database from 'better-sqlite3'
import { entryDigest, sameDigest } from '@ledgerline/core'
import type { Entry } from '@ledgerline/core'
import { LogStoreError, subjectFor } from '@ledgerline/log'
import type { AckResult } from '@ledgerline/protocol'
import { decodeEntryBody, encodeEntryBody, storedEntryOf } from '../entry-body.ts'
import type { AppendItem, AppendResult, Pusher } from '../log-store.ts'
import type { HubSql, QueueRow } from './hub-sql.ts'
import { HUB_COMMIT_GROUP_ENTRIES_MAX } from './hub-limits.ts'

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

/** The queueing half of a hub store. */
export interface HubQueue {
  /** Invariant 4: `LogStore.append`, grouped with what else arrives meanwhile. */
  append(
    tenant: string,
    items: readonly AppendItem[],
    pusher?: Pusher | undefined,
  ): Promise<AppendResult[]>
  /** How many rows are open. */
  openCount(): number
  /** Entries queued (arrival order), told after each queueing transaction. */
  onQueued(listener: (rows: readonly QueuedEntry[]) => void): () => void
  /** Appends after this reject `closed`, and so do those still waiting for their group. */
  close(): void
}

/**
 * The queue of the hub file `db` (`sql` its statements); `ownSubject` is the subject of the
 * hub's own entries (its `/yjs/` writer, which appends with no pusher).
 */
export function createHubQueue(
  db: Database.Database,
  sql: HubSql,
  options: { readonly queueMax: number; readonly ownSubject: () => string },
): HubQueue {
  const queued = new Set<(rows: readonly QueuedEntry[]) => void>()
  /** Invariant 4: appends waiting for the next group transaction, in arrival order. */
  const waiting: PendingAppend[] = []
  let grouping = false
  let closed = false

  const openCount = (): number => sql.openCount.get()?.n ?? 0

  /** Invariant 4: the waiting appends, as few transactions as the group bound allows. */
  const commitWaiting = (): void => {
    grouping = false
    const group: PendingAppend[] = []
    let entries = 0
    while (waiting.length > 0) {
      const next = waiting[0] as PendingAppend
      if (group.length > 0 && entries + next.items.length > HUB_COMMIT_GROUP_ENTRIES_MAX) break
      group.push(next)
      entries += next.items.length
      waiting.shift()
    }
    if (waiting.length > 0) {
      grouping = true
      setImmediate(commitWaiting)
    }
    if (closed) {
      for (const call of group) call.reject(new LogStoreError('closed', 'the hub store is closed'))
      return
    }
    let open = openCount()
    const admitted: PendingAppend[] = []
    for (const call of group) {
      if (open + call.items.length > options.queueMax) {
        // Invariant 2: nothing of it queued; the register backs off and resends.
        call.reject(
          new LogStoreError(
            'overloaded',
            `${open} entries wait for head office; ${call.items.length} more would pass HUB_QUEUE_ENTRIES_MAX (${options.queueMax})`,
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
      committed.push(commitGroup(admitted))
    } catch {
      // Invariant 4: each call alone, so only the bad one fails.
      for (const call of admitted) {
        try {
          committed.push(commitGroup([call]))
        } catch (error) {
          call.reject(error)
        }
      }
    }
    // Told and answered only after the transactions: a listener's error is not a failed commit.
    for (const { calls, added, results } of committed) {
      try {
        if (added.length > 0) for (const l of queued) l(added)
      } catch (error) {
        for (const call of calls) call.reject(error)
        continue
      }
      for (const [i, call] of calls.entries()) call.resolve(results[i] as AppendResult[])
    }
  }

  /** One durable transaction for `calls`, with each call's own results. */
  const commitGroup = (calls: readonly PendingAppend[]): Committed => {
    const added: QueuedEntry[] = []
    const results: AppendResult[][] = []
    if (calls.length === 0) return { calls, added, results }
    db.transaction(() => {
      for (const call of calls) {
        results.push(call.items.map((item) => queueItem(call.tenant, item, call.pusher, added)))
      }
    })()
    return { calls, added, results }
  }

  const queueItem = (
    tenant: string,
    item: AppendItem,
    pusher: Pusher | undefined,
    added: QueuedEntry[],
  ): AppendResult => {
    const entry = item.entry
    // The hub's own entries (its `/yjs/` writer, no pusher) act for the hub's own subject.
    const subject = pusher === undefined ? options.ownSubject() : subjectFor(pusher, entry.clientId)
    const client = sql.client.get(tenant, entry.clientId)
    const bound = client?.subject ?? null
    if (pusher !== undefined && bound !== null && bound !== subject) {
      // Invariant 1.
      return {
        id: entry.id,
        status: 'client_taken',
        reason: `clientId ${entry.clientId} belongs to another token subject of this tenant`,
      }
    }
    const mirrored = sql.mirrorById.get(tenant, entry.id)
    const digest = entryDigest(entry)
    const row = sql.queued.get(tenant, entry.id)
    if (row !== undefined && !sameDigest(row.digest, digest)) {
      return {
        id: entry.id,
        status: 'id_conflict',
        reason: `the store holds another entry under ${entry.id}; send this one under a new clientId`,
      }
    }
    if (mirrored !== undefined && row === undefined) {
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
    if (row !== undefined) {
      if (row.result === null) return { id: entry.id, status: 'stored' }
      const result = JSON.parse(row.result) as AckResult
      return result.status === 'appended' ? { ...result, status: 'duplicate' } : result
    }
    const held = item.refuse?.reason ?? null
    const body = encodeEntryBody(entry)
    const info = sql.enqueue.run(
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
    sql.setClient.run(tenant, entry.clientId, entry.clientSeq, subject)
    added.push({
      seq: Number(info.lastInsertRowid),
      entry,
      bytes: body.byteLength,
      subject,
      held,
      result: null,
    })
    // Invariant 3: a held entry is answered `stored` too; the refusal is head office's to record.
    return { id: entry.id, status: 'stored' }
  }

  return {
    async append(tenant, items, pusher) {
      if (closed) throw new LogStoreError('closed', 'the hub store is closed')
      return await new Promise<AppendResult[]>((resolve, reject) => {
        waiting.push({ tenant, items, pusher, resolve, reject })
        if (grouping) return
        grouping = true
        // Invariant 4: what else arrives meanwhile (other registers' pushes) joins this group.
        setImmediate(commitWaiting)
      })
    },

    openCount,

    onQueued(listener) {
      queued.add(listener)
      return () => queued.delete(listener)
    },

    close() {
      closed = true
    },
  }
}

/** A queue row as the forwarder and the store layer see it. */
export function queuedOf(r: QueueRow): QueuedEntry {
  return {
    seq: r.seq,
    entry: decodeEntryBody(r.body),
    bytes: r.body.byteLength,
    subject: r.subject,
    held: r.held,
    result: r.result === null ? null : (JSON.parse(r.result) as AckResult),
  }
}

/** An `append` waiting for its group transaction (invariant 4). */
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

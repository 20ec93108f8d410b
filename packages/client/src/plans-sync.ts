/**
 * What the sync loop's writes change in the client store, decided once for both
 * implementations: an ack (`planAck`), received pages (`planPages`) and the corrections they
 * add to the feed (`planFeed`). The IndexedDB store and the in-memory store read what a plan
 * needs, call it, and write what it says. Pure functions: no storage, no clock. The plans of
 * appends are in `plans-outbox.ts`, those of restore recovery in `plans-recovery.ts`.
 *
 * Terms: a *feed candidate* is a correction that may join the corrections feed (it joins unless
 * the feed already holds its id); *n* is the meta record's counter that orders outcome and feed
 * records.
 *
 * Invariants:
 * 1. `planAck` deletes an outbox record only for an ack that decides it (appended, duplicate,
 *    refused but not `seq_gap`: client store guarantee 4); `id_conflict`, `deferred` and a
 *    store hub's `stored` keep it;
 *    a record already gone (an ack seen twice) changes nothing.
 * 2. An acked entry is kept as pending only while the stored cursor has not passed it: its
 *    page may have arrived before its ack.
 * 3. `planPages` drops every entry at or below the cursor of its partition, so a resent page
 *    stores nothing twice; the cursors it returns are the last page's, never behind what it
 *    stores (guarantee 5).
 * 4. Chunks hold entries of one partition, at most CHUNK_ENTRIES_MAX each, numbered on from
 *    `chunkLast`; the staged record lists, per entity, the chunks that hold it, ascending.
 * 5. Only the log's corrections (client id `server`) of entries of this database's client ids
 *    are feed candidates, and `planFeed` adds each id once. Corrections reach the feed from
 *    pages only: an ack carries references, the bodies travel on the subscription.
 * 6. An ack changes what an entity shows (confirmed state, then pending entries) only when an
 *    entry stops being pending (refused; out of scope; lean; its page came first) or the log
 *    names a correction: an entry kept as an acked record stays pending as it was, so its
 *    entity is not `changed` and nobody reads it back for that ack.
 */
import type { StoredEntry } from '@ledgerline/core'
import { assert, SERVER_CLIENT_ID } from '@ledgerline/core'
import type { Cursors } from '@ledgerline/protocol'
import type {
  AckedRecord,
  AckItem,
  ChunkRecord,
  ClientMeta,
  CursorsRecord,
  FeedRecord,
  Outcome,
  OutboxRecord,
  OutcomeRecord,
  PageIn,
  StagedRecord,
} from './client-store.ts'
import { CHUNK_ENTRIES_MAX } from './limits.ts'

export interface AckPlan {
  /** Outbox records to delete. */
  readonly deletes: readonly OutboxRecord[]
  /** Acked records to put (entries to keep as pending until received back). */
  readonly acked: readonly AckedRecord[]
  /** Outcome records to put (none when lean). */
  readonly outcomes: readonly OutcomeRecord[]
  readonly entities: ReadonlySet<string>
  /** Entities whose shown state changed (invariant 6). */
  readonly changed: ReadonlySet<string>
  readonly gaps: number
  readonly settled: ReadonlyMap<string, Outcome>
  /** The meta record's counters after the deletes and outcomes. */
  readonly meta: ClientMeta
}

/**
 * Decides an ack write. `present[i]` says whether item i's outbox record is still stored.
 *
 * @example
 * const plan = planAck(items, [true], meta, cursors?.cursors, () => true, false)
 */
export function planAck(
  items: readonly AckItem[],
  present: readonly boolean[],
  meta: ClientMeta,
  cursors: Cursors | undefined,
  keepAcked: (entity: string) => boolean,
  lean: boolean,
): AckPlan {
  let { outboxEntries, outboxBytes, n } = meta
  let gaps = 0
  const deletes: OutboxRecord[] = []
  const acked: AckedRecord[] = []
  const outcomes: OutcomeRecord[] = []
  const entities = new Set<string>()
  const changed = new Set<string>()
  const settled = new Map<string, Outcome>()
  for (const [i, { record, result }] of items.entries()) {
    assert(result.id === record.id, 'ack result answers its entry')
    if (present[i] !== true) continue // applied before (an ack seen twice)
    if (result.status === 'refused' && result.code === 'seq_gap') {
      gaps++
      continue
    }
    // Invariant 1: not decided. An id_conflict means the log holds another entry under this id
    // (the sync loop moves the record to a new clientId); a deferral is decided again later.
    // `stored` (a store hub holds it, head office has not decided) keeps the record as well:
    // `planStoreStage` marks it (plans-hub.ts).
    if (result.status === 'id_conflict' || result.status === 'deferred') continue
    if (result.status === 'stored') continue
    deletes.push(record)
    outboxEntries--
    outboxBytes -= record.bytes
    entities.add(record.entity)
    let outcome: Outcome
    if (result.status === 'refused') {
      outcome = { _tag: 'refused', code: result.code, reason: result.reason, head: result.head }
      changed.add(record.entity)
    } else {
      outcome = {
        _tag: result.status,
        version: result.version,
        partition: result.partition,
        offset: result.offset,
        committedAt: result.committedAt,
      }
      // Invariant 2: pending until the subscription brings it back, unless it already did.
      const received = cursors?.[result.partition] ?? 0
      if (!lean && keepAcked(record.entity) && result.offset > received) {
        acked.push({
          id: record.id,
          entity: record.entity,
          entry: record.entry,
          version: result.version,
          partition: result.partition,
          offset: result.offset,
        })
      } else {
        changed.add(record.entity) // invariant 6: pending no more
      }
      // References only (invariant 5): the entities they touch are told to look again; the
      // bodies, and the feed, come with the pages.
      for (const c of result.corrections) {
        entities.add(c.entity)
        changed.add(c.entity)
      }
    }
    settled.set(record.id, outcome)
    if (!lean) outcomes.push({ id: record.id, n: ++n, outcome })
  }
  assert(outboxEntries >= 0, 'outbox count stays non-negative')
  return {
    deletes,
    acked,
    outcomes,
    entities,
    changed,
    gaps,
    settled,
    meta: { ...meta, outboxEntries, outboxBytes: Math.max(0, outboxBytes), n },
  }
}

export interface PagesPlan {
  /** The cursors record after the write. */
  readonly cursors: CursorsRecord
  readonly chunks: readonly ChunkRecord[]
  /** The staged record naming the chunks' entities; undefined when nothing was stored. */
  readonly staged: StagedRecord | undefined
  readonly entities: ReadonlySet<string>
  /** Entries stored. */
  readonly stored: number
  /** Ids of own entries received back: their acked records go. */
  readonly ownReceived: readonly string[]
  readonly feedCandidates: readonly FeedRecord[]
}

/**
 * Decides a page write: which entries are new, the chunks and staged record that hold them,
 * the cursors after the last page.
 *
 * @example
 * const plan = planPages([{ entries, cursors: { 2: 9 } }], stored, meta.clientIds)
 */
export function planPages(
  pages: readonly PageIn[],
  stored: CursorsRecord,
  clientIds: readonly string[],
): PagesPlan {
  const own = new Set(clientIds)
  const next: Record<number, number> = { ...stored.cursors }
  const byPartition = new Map<number, StoredEntry[]>()
  const entities = new Set<string>()
  const ownReceived: string[] = []
  const feedCandidates: FeedRecord[] = []
  let count = 0
  for (const page of pages) {
    for (const e of page.entries) {
      if (e.offset <= (next[e.partition] ?? 0)) continue // already stored (invariant 3)
      next[e.partition] = e.offset
      let list = byPartition.get(e.partition)
      if (list === undefined) byPartition.set(e.partition, (list = []))
      list.push(e)
      entities.add(e.entity)
      count++
      if (own.has(e.clientId)) ownReceived.push(e.id)
      const candidate = feedCandidate(e, own)
      if (candidate !== undefined) feedCandidates.push(candidate)
    }
    // The relay's cursors may pass entries outside the scope: take them after the page.
    for (const [p, offset] of Object.entries(page.cursors)) {
      next[Number(p)] = Math.max(next[Number(p)] ?? 0, offset)
    }
  }
  const live = pages.some((p) => p.live === true)
  const { chunks, staged, chunkLast, keys } = chunked(byPartition, stored.chunkLast)
  const bootstrap = stored.bootstrap === true && !live
  const baseKeys = new Set(stored.baseKeys ?? [])
  for (const page of pages) for (const s of page.snapshots ?? []) baseKeys.add(s.foldKey)
  return {
    cursors: {
      ...stored,
      cursors: next,
      chunkLast,
      stagedKeys: stored.stagedKeys + keys,
      ...(stored.bootstrap === undefined ? {} : { bootstrap }),
      ...(baseKeys.size === 0 ? {} : { baseKeys: [...baseKeys].sort() }),
    },
    chunks,
    staged,
    entities,
    stored: count,
    ownReceived,
    feedCandidates,
  }
}

/**
 * One chunk per partition (at most CHUNK_ENTRIES_MAX entries each, so that loading one entity
 * never reads a huge record), numbered on from `chunkLast`, and one staged record naming their
 * entities (invariant 4).
 */
function chunked(
  byPartition: ReadonlyMap<number, readonly StoredEntry[]>,
  last: number,
): {
  chunks: ChunkRecord[]
  staged: StagedRecord | undefined
  chunkLast: number
  keys: number
} {
  let chunkLast = last
  const chunks: ChunkRecord[] = []
  const staged = new Map<string, number[]>()
  let keys = 0
  for (const [partition, list] of byPartition) {
    for (let at = 0; at < list.length; at += CHUNK_ENTRIES_MAX) {
      const part = list.slice(at, at + CHUNK_ENTRIES_MAX)
      const n = ++chunkLast
      chunks.push({
        n,
        partition,
        first: (part[0] as StoredEntry).offset,
        last: (part.at(-1) as StoredEntry).offset,
        entries: part,
      })
      for (const e of part) {
        const list = staged.get(e.entity)
        if (list === undefined) {
          staged.set(e.entity, [n])
          keys++
        } else if (list.at(-1) !== n) {
          list.push(n)
          keys++
        }
      }
    }
  }
  return {
    chunks,
    staged: staged.size > 0 ? { n: chunkLast, entities: [...staged], keys } : undefined,
    chunkLast,
    keys,
  }
}

export interface FetchedPlan {
  readonly cursors: CursorsRecord
  readonly chunks: readonly ChunkRecord[]
  readonly staged: StagedRecord | undefined
  /** Entries stored (those not held already). */
  readonly stored: number
}

/**
 * Decides the write of fetched history (client store guarantee 11): the entries of `fetched`
 * whose version `held` lacks, in chunks by partition in offset order, numbered on from the
 * stored cursors' `chunkLast`; the cursors themselves do not move (the history is below them).
 *
 * @example
 * planFetched(entries, new Set([5, 6]), stored).stored // entries of versions other than 5, 6
 */
export function planFetched(
  fetched: readonly StoredEntry[],
  held: ReadonlySet<number>,
  stored: CursorsRecord,
): FetchedPlan {
  const byPartition = new Map<number, StoredEntry[]>()
  const seen = new Set<number>()
  let count = 0
  for (const e of [...fetched].sort((a, b) => a.offset - b.offset)) {
    if (held.has(e.version) || seen.has(e.version)) continue
    seen.add(e.version)
    let list = byPartition.get(e.partition)
    if (list === undefined) byPartition.set(e.partition, (list = []))
    list.push(e)
    count++
  }
  const { chunks, staged, chunkLast, keys } = chunked(byPartition, stored.chunkLast)
  return {
    cursors: { ...stored, chunkLast, stagedKeys: stored.stagedKeys + keys },
    chunks,
    staged,
    stored: count,
  }
}

export interface FeedPlan {
  /** Records to put, numbered on from the meta record's `n`. */
  readonly records: readonly FeedRecord[]
  readonly n: number
  readonly correctionsUnseen: number
}

/**
 * Numbers the candidates the feed does not hold yet (`known[i]`: the feed holds candidate i).
 *
 * @example
 * const feed = planFeed(plan.feedCandidates, known, plan.meta)
 */
export function planFeed(
  candidates: readonly FeedRecord[],
  known: readonly boolean[],
  counters: { readonly n: number; readonly correctionsUnseen: number },
): FeedPlan {
  let { n, correctionsUnseen } = counters
  const records: FeedRecord[] = []
  candidates.forEach((c, i) => {
    if (known[i] === true) return
    records.push({ ...c, n: ++n })
    correctionsUnseen++
  })
  return { records, n, correctionsUnseen }
}

/** The log's correction of one of `own`'s entries, as a feed candidate (invariant 5). */
function feedCandidate(e: StoredEntry, own: ReadonlySet<string>): FeedRecord | undefined {
  if (e.corrects === undefined || e.clientId !== SERVER_CLIENT_ID) return undefined
  // An entry id is `<clientId>-<clientSeq>`; a client id is 32 hex digits.
  if (!own.has(e.corrects.slice(0, 32))) return undefined
  return { id: e.id, n: 0, entry: e, of: e.corrects.split('~')[0] as string, unseen: true }
}

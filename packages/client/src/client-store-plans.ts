/**
 * What one write of the client store changes, decided once for every implementation: the
 * IndexedDB store and the in-memory store read what a plan needs, call the plan, and write what
 * it says. Pure functions: no storage, no clock.
 *
 * Terms: a *feed candidate* is a correction that may join the corrections feed (it joins unless
 * the feed already holds its id); *n* is the meta record's counter that orders outcome and feed
 * records.
 *
 * Invariants:
 * 1. `planAck` deletes an outbox record only for an ack that decides it (appended, duplicate,
 *    refused but not `seq_gap`: client store guarantee 4); `id_conflict` and `deferred` keep it;
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
 * 6. `planAppend` allocates clientSeq from `seqLast + 1` and validates each entry before it is
 *    written; `checkedBatch` validates it again when read back (pair assertions); both refuse
 *    by throwing, so the caller writes nothing.
 * 7. `planSession` puts back, for another log, every entry of the current clientId it still
 *    holds that the outbox does not, as they were sent (same content, same id), in clientSeq
 *    order: above the log's high-water mark the log lacks them; at or below it the log may hold
 *    one only as a deferral (the mark counts deferrals), which nothing else would resend, and
 *    the confirm phase answers the others `duplicate`; `planReissue` renumbers the whole outbox from 1 in clientSeq order, so
 *    the same outbox moved to the same id gives the same entries.
 */
import type { Entry, StoredEntry } from '@ledgerline/core'
import { assert, SERVER_CLIENT_ID, validateEntry } from '@ledgerline/core'
import type { Cursors, LogIdentity } from '@ledgerline/protocol'
import type {
  AckedRecord,
  AckItem,
  ChunkRecord,
  AppendLimits,
  ClientMeta,
  CursorsRecord,
  FeedRecord,
  MakeEntries,
  Outcome,
  OutboxRecord,
  OutcomeRecord,
  PageIn,
  SessionStart,
  StagedRecord,
} from './client-store.ts'
import { ClientError } from './errors.ts'
import { CHUNK_ENTRIES_MAX } from './limits.ts'

export interface AckPlan {
  /** Outbox records to delete. */
  readonly deletes: readonly OutboxRecord[]
  /** Acked records to put (entries to keep as pending until received back). */
  readonly acked: readonly AckedRecord[]
  /** Outcome records to put (none when lean). */
  readonly outcomes: readonly OutcomeRecord[]
  readonly entities: ReadonlySet<string>
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
    if (result.status === 'id_conflict' || result.status === 'deferred') continue
    deletes.push(record)
    outboxEntries--
    outboxBytes -= record.bytes
    entities.add(record.entity)
    let outcome: Outcome
    if (result.status === 'refused') {
      outcome = { _tag: 'refused', code: result.code, reason: result.reason, head: result.head }
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
      }
      // References only (invariant 5): the entities they touch are told to look again; the
      // bodies, and the feed, come with the pages.
      for (const c of result.corrections) entities.add(c.entity)
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
  // One chunk per partition (at most CHUNK_ENTRIES_MAX entries each, so that loading one
  // entity never reads a huge record), and one staged record naming their entities.
  let chunkLast = stored.chunkLast
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
    cursors: { ...stored, cursors: next, chunkLast, stagedKeys: stored.stagedKeys + keys },
    chunks,
    staged: staged.size > 0 ? { n: chunkLast, entities: [...staged], keys } : undefined,
    entities,
    stored: count,
    ownReceived,
    feedCandidates,
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

/** The meta record of a new (or wiped) database. */
export function newMeta(
  clientId: string,
  deviceSecret: string,
  now: number,
  tenant: string | null,
): ClientMeta {
  return {
    clientId,
    seqLast: 0,
    clientIds: [clientId],
    tenant,
    deviceSecret,
    recovering: false,
    log: null,
    createdAt: now,
    outboxEntries: 0,
    outboxBytes: 0,
    correctionsUnseen: 0,
    n: 0,
  }
}

/**
 * A stored meta record with every field of this layout: a record written by an older build
 * lacks the tenant (it was kept with the cursors), the device secret, the recovery flag and the
 * log identity. Undefined when nothing needs filling.
 */
export function completedMeta(
  found: ClientMeta,
  newId: () => string,
  tenant: string | undefined,
): ClientMeta | undefined {
  const partial = found as Partial<ClientMeta>
  const filled: ClientMeta = {
    ...found,
    tenant: partial.tenant ?? tenant ?? null,
    deviceSecret: partial.deviceSecret ?? newId(),
    recovering: partial.recovering ?? false,
    log: partial.log ?? null,
  }
  const same =
    filled.tenant === partial.tenant &&
    filled.deviceSecret === partial.deviceSecret &&
    filled.recovering === partial.recovering &&
    filled.log === partial.log
  return same ? undefined : filled
}

/** True when `next` is another server log than `known` (another id, or another generation). */
export function isOtherLog(known: LogIdentity | null, next: LogIdentity): boolean {
  return known !== null && (known.id !== next.id || known.generation !== next.generation)
}

export interface SessionPlan {
  readonly meta: ClientMeta
  /** Outbox records to add (entries the log lacks), in clientSeq order. */
  readonly putBack: readonly OutboxRecord[]
  /** Acked records whose entries were put back (their ids). */
  readonly ackedDeletes: readonly string[]
  /** Drop confirmed history, snapshots and cursors (the log changed). */
  readonly clearHistory: boolean
}

/**
 * Decides the first write of a session (client store guarantee 9, invariant 7). `held` are
 * the entries this database still has of the current clientId outside the outbox (acked
 * records and confirmed history), read only when the log changed; `outboxIds` the outbox's ids.
 *
 * @example
 * const plan = planSession(meta, { clientId, tenant: 't1', log, high: 3 }, [], new Set(), size)
 */
export function planSession(
  meta: ClientMeta,
  session: SessionStart,
  held: readonly (Entry | StoredEntry)[],
  outboxIds: ReadonlySet<string>,
  bytesOf: (e: Entry) => number,
): SessionPlan {
  const logChanged = isOtherLog(meta.log, session.log)
  const restored = session.clientId === meta.clientId && session.high > meta.seqLast
  const putBack: OutboxRecord[] = []
  const ackedDeletes: string[] = []
  if (logChanged) {
    const seen = new Set<string>()
    for (const e of held) {
      if (e.clientId !== meta.clientId) continue
      if (outboxIds.has(e.id) || seen.has(e.id)) continue
      seen.add(e.id)
      const entry = validateEntry(sentEntry(e))
      putBack.push({
        clientId: entry.clientId,
        clientSeq: entry.clientSeq,
        id: entry.id,
        entity: entry.entity,
        entry,
        bytes: bytesOf(entry),
        at: entry.occurredAt,
      })
    }
    putBack.sort((a, b) => a.clientSeq - b.clientSeq)
    for (const e of held) if (seen.has(e.id) && !('offset' in e)) ackedDeletes.push(e.id)
  }
  const bytes = putBack.reduce((n, r) => n + r.bytes, 0)
  return {
    meta: {
      ...meta,
      tenant: meta.tenant ?? session.tenant,
      log: session.log,
      recovering: meta.recovering || logChanged || restored,
      outboxEntries: meta.outboxEntries + putBack.length,
      outboxBytes: meta.outboxBytes + bytes,
    },
    putBack,
    ackedDeletes,
    clearHistory: logChanged,
  }
}

/** An entry as the client sent it: a stored entry without the positions the log gave it. */
export function sentEntry(e: Entry | StoredEntry): Entry {
  const { version: _v, partition: _p, offset: _o, committedAt: _c, ...entry } = e as StoredEntry
  return entry
}

/**
 * The records and meta record one append writes (client store guarantee 2), or the `outbox_full`
 * error; nothing is written when this throws.
 */
export function planAppend(
  meta: ClientMeta,
  make: MakeEntries,
  limits: AppendLimits,
  now: number,
  bytesOf: (e: Entry) => number,
): { records: OutboxRecord[]; written: ClientMeta; bytes: number } {
  const entries = make(meta.clientId, meta.seqLast + 1)
  let bytes = 0
  const records: OutboxRecord[] = []
  entries.forEach((entry, i) => {
    // Pair assertion, first half: what goes into the outbox is a valid entry of ours.
    validateEntry(entry)
    assert(
      entry.clientId === meta.clientId && entry.clientSeq === meta.seqLast + 1 + i,
      'seq order',
    )
    const size = bytesOf(entry)
    bytes += size
    records.push({
      clientId: entry.clientId,
      clientSeq: entry.clientSeq,
      id: entry.id,
      entity: entry.entity,
      entry,
      bytes: size,
      at: now,
    })
  })
  if (
    meta.outboxEntries + entries.length > limits.entriesMax ||
    meta.outboxBytes + bytes > limits.bytesMax
  ) {
    throw new ClientError(
      'outbox_full',
      `outbox holds ${meta.outboxEntries} entries (${meta.outboxBytes} bytes); the limit is ${limits.entriesMax} entries, ${limits.bytesMax} bytes`,
    )
  }
  const written: ClientMeta = {
    ...meta,
    seqLast: meta.seqLast + entries.length,
    outboxEntries: meta.outboxEntries + entries.length,
    outboxBytes: meta.outboxBytes + bytes,
  }
  return { records, written, bytes }
}

/** Records read back in key order, checked again (guarantee 2) and cut at `bytesMax`. */
export function checkedBatch(records: readonly OutboxRecord[], bytesMax: number): OutboxRecord[] {
  const out: OutboxRecord[] = []
  let bytes = 0
  for (const record of records) {
    // Pair assertion, second half: what comes back out of the outbox is still valid.
    const entry = validateEntry(record.entry)
    assert(
      entry.id === record.id && entry.clientSeq === record.clientSeq,
      'outbox record matches its entry',
    )
    if (out.length > 0 && bytes + record.bytes > bytesMax) break
    bytes += record.bytes
    out.push(record)
  }
  return out
}

/**
 * The outbox moved to `newClientId` (guarantee 3), with the outcomes naming the new ids, and
 * the recovery flag cleared (invariant 7).
 */
export function planReissue(
  meta: ClientMeta,
  records: readonly OutboxRecord[],
  newClientId: string,
): {
  records: OutboxRecord[]
  outcomes: { id: string; n: number; outcome: { _tag: 'reissued'; as: string } }[]
  meta: ClientMeta
  renamed: Map<string, string>
} {
  const renamed = new Map<string, string>()
  const moved: OutboxRecord[] = []
  const outcomes: { id: string; n: number; outcome: { _tag: 'reissued'; as: string } }[] = []
  let n = meta.n
  // One clientId (guarantee 3): clientSeq order is the outbox's order.
  const ordered = [...records].sort((a, b) => a.clientSeq - b.clientSeq)
  ordered.forEach((r, i) => renamed.set(r.id, `${newClientId}-${i + 1}`))
  ordered.forEach((r, i) => {
    const clientSeq = i + 1
    const id = `${newClientId}-${clientSeq}`
    // A correction moves with the entry it corrects: under the old id the log holds nothing of
    // it, or another entry of an older copy of this database.
    const corrects = r.entry.corrects === undefined ? undefined : renamed.get(r.entry.corrects)
    const entry = validateEntry({
      ...r.entry,
      id,
      clientId: newClientId,
      clientSeq,
      ...(corrects === undefined ? {} : { corrects }),
    })
    moved.push({ ...r, clientId: newClientId, clientSeq, id, entry })
    outcomes.push({ id: r.id, n: ++n, outcome: { _tag: 'reissued', as: id } })
  })
  return {
    records: moved,
    outcomes,
    renamed,
    meta: {
      ...meta,
      clientId: newClientId,
      seqLast: records.length,
      clientIds: meta.clientIds.includes(newClientId)
        ? meta.clientIds
        : [...meta.clientIds, newClientId],
      recovering: false,
      n,
    },
  }
}

/** The log's correction of one of `own`'s entries, as a feed candidate (invariant 5). */
function feedCandidate(e: StoredEntry, own: ReadonlySet<string>): FeedRecord | undefined {
  if (e.corrects === undefined || e.clientId !== SERVER_CLIENT_ID) return undefined
  // An entry id is `<clientId>-<clientSeq>`; a client id is 32 hex digits.
  if (!own.has(e.corrects.slice(0, 32))) return undefined
  return { id: e.id, n: 0, entry: e, of: e.corrects.split('~')[0] as string, unseen: true }
}

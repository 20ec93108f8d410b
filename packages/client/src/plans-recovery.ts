/**
 * What restore recovery writes to the client store, decided once for both implementations: the
 * first write of a welcomed session (`planSession`) and the move of the outbox to a new
 * clientId (`planReissue`). Pure functions: no storage, no clock.
 *
 * Invariants:
 * 1. `planSession` puts back, for another log, every entry of the current clientId it still
 *    holds that the outbox does not, as they were sent (same content, same id), in clientSeq
 *    order: above the log's high-water mark the log lacks them; at or below it the log may hold
 *    one only as a deferral (the mark counts deferrals), which nothing else would resend, and
 *    the confirm phase answers the others `duplicate`; `planReissue` renumbers the whole outbox
 *    from 1 in clientSeq order (but see 4), so the same outbox moved to the same id gives the
 *    same entries.
 * 2. For another log, every entry of an earlier clientId of this database that it still holds,
 *    of a clientId the welcome answers (`SessionStart.older`: the clientIds the log binds to
 *    this subject or to no one), is put back after the outbox, under the current clientId
 *    (seqLast + 1 …), with their `origin` (their first id), in the order the clientIds were
 *    used, then clientSeq: above that clientId's mark the log lacks them, at or below it the
 *    log may hold one only as a deferral (the mark counts deferrals), and the log answers the
 *    ones it holds `duplicate` by origin (`append-plan.ts` invariant 12). A `corrects` naming
 *    one of them names its new id, which the log resolves to the first landing when the move
 *    was answered `duplicate` (`append-plan.ts` invariant 13), and `outcome(old id)` says
 *    `reissued` to it unless the database holds another answer under that id
 *    (`followsEntry`). An earlier clientId the welcome did not answer (another subject's, or
 *    past `HELLO_CLIENT_IDS_MAX`) puts nothing back. An entry whose first id is already an
 *    outbox record's id or origin is not put back twice.
 * 3. A moved entry keeps the id it had first: `origin` is set by its first move and copied by
 *    every later one, so the log can tell the same sale recovered twice (`append-plan.ts`
 *    invariant 12).
 * 4. A record whose `corrects` names a record placed after it by clientSeq order (by its id or
 *    origin) is moved right after that record, so a void never reaches the log before its sale.
 */
import type { Entry, StoredEntry } from '@ledgerline/core'
import { validateEntry } from '@ledgerline/core'
import type { LogIdentity } from '@ledgerline/protocol'
import type { ClientMeta, OutboxRecord, OutcomeRecord, SessionStart } from './client-store.ts'

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
  /** `reissued` outcomes of the earlier clientIds' entries put back under new ids. */
  readonly outcomes: readonly { id: string; n: number; outcome: { _tag: 'reissued'; as: string } }[]
  /** Drop confirmed history, snapshots and cursors (the log changed). */
  readonly clearHistory: boolean
}

/**
 * Decides the first write of a session (client store guarantee 9, invariant 1). `held` are
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
  outboxKeys: ReadonlySet<string>,
  bytesOf: (e: Entry) => number,
): SessionPlan {
  const logChanged = isOtherLog(meta.log, session.log)
  const restored = session.clientId === meta.clientId && session.high > meta.seqLast
  const putBack: OutboxRecord[] = []
  const ackedDeletes: string[] = []
  let seqLast = meta.seqLast
  let n = meta.n
  const outcomes: { id: string; n: number; outcome: { _tag: 'reissued'; as: string } }[] = []
  if (logChanged) {
    const seen = new Set<string>()
    const record = (entry: Entry): OutboxRecord => ({
      clientId: entry.clientId,
      clientSeq: entry.clientSeq,
      id: entry.id,
      entity: entry.entity,
      entry,
      bytes: bytesOf(entry),
      at: entry.occurredAt,
    })
    for (const e of held) {
      if (e.clientId !== meta.clientId) continue
      if (outboxKeys.has(e.id) || seen.has(e.id)) continue
      seen.add(e.id)
      putBack.push(record(validateEntry(sentEntry(e))))
    }
    putBack.sort((a, b) => a.clientSeq - b.clientSeq)
    for (const e of held) if (seen.has(e.id) && !('offset' in e)) ackedDeletes.push(e.id)
    // Invariant 2: every held entry of an answered earlier clientId, moved under the current
    // one (the log answers those it holds `duplicate`).
    const answered = new Set((session.older ?? []).map((m) => m.clientId))
    const older = held
      .filter((e) => e.clientId !== meta.clientId && answered.has(e.clientId))
      .sort(
        (a, b) =>
          meta.clientIds.indexOf(a.clientId) - meta.clientIds.indexOf(b.clientId) ||
          a.clientSeq - b.clientSeq,
      )
    const moved = new Map<string, string>()
    for (const e of older) {
      const origin = e.origin ?? e.id
      if (outboxKeys.has(origin) || outboxKeys.has(e.id) || seen.has(origin)) continue
      seen.add(origin)
      const clientSeq = ++seqLast
      const id = `${meta.clientId}-${clientSeq}`
      moved.set(e.id, id)
      const sent = sentEntry(e)
      const corrects = sent.corrects === undefined ? undefined : moved.get(sent.corrects)
      const entry = validateEntry({
        ...sent,
        id,
        clientId: meta.clientId,
        clientSeq,
        origin,
        ...(corrects === undefined ? {} : { corrects }),
      })
      putBack.push(record(entry))
      // `outcome(old id)` follows the entry (what the new log decides is told under `id`).
      outcomes.push({ id: e.id, n: ++n, outcome: { _tag: 'reissued', as: id } })
      if (!('offset' in e)) ackedDeletes.push(e.id)
    }
  }
  const bytes = putBack.reduce((n, r) => n + r.bytes, 0)
  return {
    meta: {
      ...meta,
      seqLast,
      n,
      tenant: meta.tenant ?? session.tenant,
      log: session.log,
      recovering: meta.recovering || logChanged || restored,
      outboxEntries: meta.outboxEntries + putBack.length,
      outboxBytes: meta.outboxBytes + bytes,
    },
    putBack,
    ackedDeletes,
    outcomes,
    clearHistory: logChanged,
  }
}

/**
 * The ids and origins of outbox records: what `planSession` must not put back again.
 *
 * @example
 * planSession(meta, session, held, outboxKeysOf(outbox), size)
 */
export function outboxKeysOf(records: readonly OutboxRecord[]): Set<string> {
  const keys = new Set<string>()
  for (const r of records) {
    keys.add(r.id)
    if (r.entry.origin !== undefined) keys.add(r.entry.origin)
  }
  return keys
}

/**
 * Invariant 2: a put-back entry's `reissued` outcome replaces none, or an appended one (what
 * this database was told of that very entry); never another answer under the same id (a
 * restored copy's other entry, moved or refused, is what the app's `outcome` is about).
 */
export function followsEntry(existing: OutcomeRecord | undefined): boolean {
  const tag = existing?.outcome._tag
  return tag === undefined || tag === 'appended' || tag === 'duplicate'
}

/** An entry as the client sent it: a stored entry without the positions the log gave it. */
export function sentEntry(e: Entry | StoredEntry): Entry {
  const { version: _v, partition: _p, offset: _o, committedAt: _c, ...entry } = e as StoredEntry
  return entry
}

/**
 * The outbox moved to `newClientId` (guarantee 3), with the outcomes naming the new ids, and
 * the recovery flag cleared (invariant 1).
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
  const ordered = correctionsAfterTargets([...records].sort((a, b) => a.clientSeq - b.clientSeq))
  ordered.forEach((r, i) => {
    renamed.set(r.id, `${newClientId}-${i + 1}`)
    // An entry put back from an older clientId is named by its origin in `corrects`.
    if (r.entry.origin !== undefined && !renamed.has(r.entry.origin)) {
      renamed.set(r.entry.origin, `${newClientId}-${i + 1}`)
    }
  })
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
      // Invariant 3: the first id, kept across every move.
      origin: r.entry.origin ?? r.entry.id,
      ...(corrects === undefined ? {} : { corrects }),
    })
    // A hub holds nothing under the new id: the stage starts again at `device`.
    moved.push({ ...r, clientId: newClientId, clientSeq, id, entry, stored: undefined })
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
      storedEntries: 0,
    },
  }
}

/**
 * `records` in their order, except that a record whose `corrects` names (by id or origin) a
 * record placed later goes right after it (invariant 4): entries put back from an older
 * clientId follow the current one's, and a void of one must not reach the log before it.
 */
function correctionsAfterTargets(records: readonly OutboxRecord[]): OutboxRecord[] {
  const keyOf = new Map<string, OutboxRecord>()
  for (const r of records) {
    keyOf.set(r.id, r)
    if (r.entry.origin !== undefined && !keyOf.has(r.entry.origin)) keyOf.set(r.entry.origin, r)
  }
  const waiting = new Map<OutboxRecord, OutboxRecord[]>()
  const placed = new Set<OutboxRecord>()
  const out: OutboxRecord[] = []
  const place = (r: OutboxRecord) => {
    out.push(r)
    placed.add(r)
    for (const w of waiting.get(r) ?? []) place(w)
    waiting.delete(r)
  }
  for (const r of records) {
    const target = r.entry.corrects === undefined ? undefined : keyOf.get(r.entry.corrects)
    if (target !== undefined && target !== r && !placed.has(target)) {
      const list = waiting.get(target) ?? []
      list.push(r)
      waiting.set(target, list)
    } else place(r)
  }
  // Cycles cannot happen (an entry corrects an earlier one); any left keep their order.
  for (const r of records) if (!placed.has(r)) place(r)
  return out
}

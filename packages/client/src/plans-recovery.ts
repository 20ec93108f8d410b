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
 *    the confirm phase answers the others `duplicate`; `planReissue` renumbers the whole outbox from 1 in clientSeq order, so
 *    the same outbox moved to the same id gives the same entries.
 */
import type { Entry, StoredEntry } from '@ledgerline/core'
import { validateEntry } from '@ledgerline/core'
import type { LogIdentity } from '@ledgerline/protocol'
import type { ClientMeta, OutboxRecord, SessionStart } from './client-store.ts'

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

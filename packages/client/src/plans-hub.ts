/**
 * What a store hub changes in the client store's writes, decided once for both implementations:
 * the stage of outbox records a hub answered `stored` (`planStoreStage`, beside `planAck`), and
 * outbox records settled by their own entry arriving in a page with head office's positions
 * (`planSettle`, beside `planPages`). Pure functions: no storage, no clock.
 *
 * Terms: a record's *stage* is `device` (only here) or `store` (a hub said it holds it
 * durably, `OutboxRecord.stored`); head office's result ends both (the record goes). To *settle*
 * a record is to delete it and record its outcome as an `appended` ack would.
 *
 * Invariants:
 * 1. `stored` never deletes a record: it only marks it (once: a record marked already is not
 *    counted again), so a hub lost with its disk loses nothing the register holds.
 * 2. `storedEntries` counts exactly the stored records: +1 per record marked, −1 per marked
 *    record deleted (by an ack that decides it, or by a page that settles it); a reissue
 *    clears every mark (`planReissue`). A lean ack marks nothing (it only frees space).
 * 3. A page entry settles a record only when it is the same entry: same id AND the same content
 *    digest (another entry under the id, as after a restore, is an id conflict the ack path
 *    meets, never a settlement).
 */
import type { StoredEntry } from '@ledgerline/core'
import { assert, entryDigest, sameDigest } from '@ledgerline/core'
import type { AckItem, ClientMeta, Outcome, OutboxRecord, OutcomeRecord } from './client-store.ts'

export interface StoreStagePlan {
  /** Records to put back with `stored: true`. */
  readonly marks: readonly OutboxRecord[]
  readonly storedEntries: number
}

/**
 * Decides the stage changes of an ack. `found[i]`: item i's outbox record as stored now (or
 * undefined); `deleted`: ids `planAck` deletes.
 *
 * @example
 * const stage = planStoreStage(items, found, new Set(plan.deletes.map((r) => r.id)), meta)
 */
export function planStoreStage(
  items: readonly AckItem[],
  found: readonly (OutboxRecord | undefined)[],
  deleted: ReadonlySet<string>,
  meta: ClientMeta,
  lean = false,
): StoreStagePlan {
  let storedEntries = meta.storedEntries ?? 0
  const marks: OutboxRecord[] = []
  const seen = new Set<string>()
  for (const [i, { result }] of items.entries()) {
    const record = found[i]
    if (record === undefined || seen.has(record.id)) continue
    seen.add(record.id)
    if (deleted.has(record.id)) {
      if (record.stored === true) storedEntries--
    } else if (result.status === 'stored' && record.stored !== true && !lean) {
      // (A lean ack, on a full disk, only deletes: the stage waits for the next resend.)
      // Invariant 1: marked, never deleted.
      marks.push({ ...record, stored: true })
      storedEntries++
    }
  }
  assert(storedEntries >= 0, 'stored count stays non-negative')
  return { marks, storedEntries }
}

export interface SettlePlan {
  readonly deletes: readonly OutboxRecord[]
  readonly outcomes: readonly OutcomeRecord[]
  readonly settled: ReadonlyMap<string, Outcome>
  readonly entities: ReadonlySet<string>
  /** The meta record's counters after the deletes and outcomes. */
  readonly meta: ClientMeta
}

/**
 * Decides which outbox records own page entries settle (invariant 3). `found[i]`: the outbox
 * record with `entries[i]`'s id, if any.
 *
 * @example
 * const settle = planSettle(ownEntries, found, meta)
 */
export function planSettle(
  entries: readonly StoredEntry[],
  found: readonly (OutboxRecord | undefined)[],
  meta: ClientMeta,
): SettlePlan {
  let { outboxEntries, outboxBytes, n } = meta
  let storedEntries = meta.storedEntries ?? 0
  const deletes: OutboxRecord[] = []
  const outcomes: OutcomeRecord[] = []
  const settled = new Map<string, Outcome>()
  const entities = new Set<string>()
  for (const [i, e] of entries.entries()) {
    const record = found[i]
    if (record === undefined || settled.has(record.id)) continue
    assert(record.id === e.id, 'a settled record has the id of its entry')
    if (!sameDigest(entryDigest(record.entry), entryDigest(e))) continue
    deletes.push(record)
    outboxEntries--
    outboxBytes -= record.bytes
    if (record.stored === true) storedEntries--
    entities.add(record.entity)
    const outcome: Outcome = {
      _tag: 'appended',
      version: e.version,
      partition: e.partition,
      offset: e.offset,
      committedAt: e.committedAt,
    }
    settled.set(record.id, outcome)
    outcomes.push({ id: record.id, n: ++n, outcome })
  }
  assert(outboxEntries >= 0 && storedEntries >= 0, 'outbox counts stay non-negative')
  return {
    deletes,
    outcomes,
    settled,
    entities,
    meta: { ...meta, outboxEntries, outboxBytes: Math.max(0, outboxBytes), storedEntries, n },
  }
}

/** The entries of `clientIds` in received pages (candidates to settle). */
export function ownEntries(
  pages: readonly { readonly entries: readonly StoredEntry[] }[],
  clientIds: readonly string[],
): StoredEntry[] {
  const own = new Set(clientIds)
  return pages.flatMap((p) => p.entries.filter((e) => own.has(e.clientId)))
}

/** `outcome(id)` of a record still in the outbox: its stage. */
export function outboxOutcome(record: Pick<OutboxRecord, 'stored'>): Outcome {
  return { _tag: 'outbox', stage: record.stored === true ? 'store' : 'device' }
}

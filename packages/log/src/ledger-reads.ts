/**
 * Many ledgers in one read (issue 17): what the relay's snapshot walk (`ledger-snapshots.ts` of
 * the relay) asks of a store instead of two calls per entity, so walking a log of 100,000
 * entities costs one read transaction per page of entities, not two per entity.
 *
 * Terms: a *tail* is what one `LedgerRead` finds: the entity's snapshot under `foldKey` (if any)
 * and the entries after it (from version 1 without one).
 *
 * Every implementation must guarantee:
 * 1. One call is one read of the log (SQLite: one read transaction; PostgreSQL: one REPEATABLE
 *    READ transaction; memory: one turn): every tail of a call is read at the same point of the
 *    log, so a snapshot and the entries after it never straddle a commit.
 * 2. A tail holds at most its read's `limit` entries, in version order, starting right after
 *    the snapshot's version; so a call reads at most the sum of its reads' limits.
 * 3. History below the first kept version (retention, `log-retention.ts` invariant 4) is the
 *    `dropped` outcome, never a silent gap.
 * 4. Tails come back in the order of the reads, one each.
 */
import type { LedgerSnapshot } from '@ledgerline/protocol'
import type { LogStore } from './log-store.ts'
import type { HistoryRead } from './log-retention.ts'

/** One entity's part of a `readLedgers` call. */
export interface LedgerRead {
  readonly tenant: string
  readonly entity: string
  /** The snapshot looked for (the entity type's `foldKey`). */
  readonly foldKey: string
  /** Entries read at most after the snapshot (invariant 2). */
  readonly limit: number
}

/** What one `LedgerRead` found (invariant 2). */
export interface LedgerTail {
  readonly snapshot: LedgerSnapshot | undefined
  readonly read: HistoryRead
}

/** The batched ledger read of a store (SQLite, PostgreSQL and memory logs have it). */
export interface LedgerReads {
  /** Each read's snapshot and the entries after it, in one read (invariants 1–4). */
  readLedgers(reads: readonly LedgerRead[]): Promise<LedgerTail[]>
}

/**
 * True when `store` reads many ledgers at once.
 *
 * @example
 * if (hasLedgerReads(store)) await store.readLedgers([{ tenant, entity, foldKey, limit: 500 }])
 */
export function hasLedgerReads(store: LogStore): store is LogStore & LedgerReads {
  return typeof (store as Partial<LedgerReads>).readLedgers === 'function'
}

/**
 * Retention for operators (issue 17, off by default): entries below a ledger snapshot may be
 * removed from the hot log, after an export, by `ledgerline-relay retention drop`, and never
 * otherwise. The interface a store offers for it beside `LogStore` (`hasLogRetention`), and
 * what every store shares about it.
 *
 * Terms: an entity's *first kept version* is the lowest version the log still holds (1 when
 * nothing of it was dropped). A partition's *first kept offset* for a tenant is one past the
 * highest offset of the tenant's entries dropped from it (1 when none): every entry of the tenant
 * at or above it is still there, some below it are not. A *cut* drops one entity's versions
 * `from..through`, where `from` is its first kept version.
 *
 * Every implementation must guarantee:
 * 1. A drop is one transaction: every cut is checked, then applied, or the drop is `refused` and
 *    nothing is deleted. A cut is applied only when `from` is the entity's first kept version
 *    (so what is left is a suffix: versions stay dense above the first kept one), its versions
 *    are the offsets the caller names (the export's), the entity's snapshot under `foldKey` has a
 *    version ≥ `through` (history below a snapshot only), and `through` is below the entity's
 *    head (its newest entry is always kept).
 * 2. Snapshots, refusals, deferrals, client records, entity heads and partition heads are never
 *    touched by a drop; the append-only triggers stay in force outside the drop's transaction.
 * 3. The first kept version of each entity and offset of each (tenant, partition) are recorded in
 *    the same transaction, and only ever rise.
 * 4. No read is a silent gap: `readEntity` from below the first kept version rejects with
 *    `LogStoreError('history_dropped')`; `readHistory` answers it as the `dropped` outcome.
 * 5. Exactly once across a drop: what the planner's lookups need of each dropped entry stays
 *    (no body: its positions, entity, digests, and the kind of a log entry), so a resend of it
 *    gets its original result (`duplicate`, same version, partition, offset, `committedAt` and
 *    corrections), another content under its id `id_conflict`, a moved copy of it `duplicate`
 *    (compared by the kept `recoveryDigest`, `DroppedOriginal`), a resent log entry (a
 *    correction) `duplicate`, and a `corrects` naming it still names an entry of the log.
 *    SQLite keeps it in `retention_dropped` (migration 8), PostgreSQL in
 *    `ledgerline_retention_dropped` (step 7); the memory log only hides dropped entries.
 */
import type { StoredEntry } from '@ledgerline/core'
import type { LogStore } from './log-store.ts'

/** One entity's drop (invariant 1). */
export interface RetentionCut {
  readonly tenant: string
  readonly entity: string
  /** The type's current fold key: the snapshot under it must hold `through`. */
  readonly foldKey: string
  /** The entity's first kept version before the drop. */
  readonly from: number
  /** The last version dropped. */
  readonly through: number
  /** The offsets of versions `from..through`, in version order (what the export holds). */
  readonly offsets: readonly number[]
}

/** Why a drop was refused (nothing was deleted). */
export type RetentionRefusal =
  /** No snapshot under the fold key reaches `through`. */
  | 'not_covered'
  /** `through` is the entity's head: its newest entry is always kept. */
  | 'head'
  /** The log is not as the export saw it: another first kept version, or other offsets. */
  | 'changed'

/** What `dropHistory` did: an expected outcome, never an error. */
export type RetentionDrop =
  | { readonly _tag: 'dropped'; readonly entries: number; readonly entities: number }
  | {
      readonly _tag: 'refused'
      readonly code: RetentionRefusal
      readonly tenant: string
      readonly entity: string
      readonly reason: string
    }

/** What `readHistory` found (invariant 4). */
export type HistoryRead =
  | { readonly _tag: 'entries'; readonly entries: StoredEntry[] }
  /** Versions below `firstKept` were dropped by the operator: read from there. */
  | { readonly _tag: 'dropped'; readonly firstKept: number }

/** The retention part of a store (SQLite, PostgreSQL and memory logs have it). */
export interface LogRetention {
  /** The entity's first kept version; 1 when nothing of it was dropped. */
  firstKept(tenant: string, entity: string): Promise<number>
  /** The tenant's first kept offset of every partition (index = partition); 1 where none. */
  partitionsFirstKept(tenant: string): Promise<number[]>
  /** `readEntity`, with history below the first kept version as an outcome (invariant 4). */
  readHistory(
    tenant: string,
    entity: string,
    fromVersion: number,
    limit: number,
  ): Promise<HistoryRead>
  /** Drops every cut in one transaction, or none (invariants 1–3). */
  dropHistory(cuts: readonly RetentionCut[]): Promise<RetentionDrop>
}

/** A log with retention. */
export type RetentionLogStore = LogStore & LogRetention

/**
 * True when `store` offers retention.
 *
 * @example
 * if (hasLogRetention(store)) await store.partitionsFirstKept(tenant)
 */
export function hasLogRetention(store: LogStore): store is RetentionLogStore {
  const s = store as Partial<LogRetention>
  return (
    typeof s.firstKept === 'function' &&
    typeof s.partitionsFirstKept === 'function' &&
    typeof s.readHistory === 'function' &&
    typeof s.dropHistory === 'function'
  )
}

/**
 * The retention methods of `store`, for a wrapper to pass on (none when it has none).
 *
 * @example
 * const wrapped = { ...logRetentionOf(store), append: … }
 */
export function logRetentionOf(store: LogStore): Partial<LogRetention> {
  if (!hasLogRetention(store)) return {}
  return {
    firstKept: (...args) => store.firstKept(...args),
    partitionsFirstKept: (...args) => store.partitionsFirstKept(...args),
    readHistory: (...args) => store.readHistory(...args),
    dropHistory: (...args) => store.dropHistory(...args),
  }
}

/**
 * The refusal of a cut whose entity stands as `found` says (invariant 1), or `undefined` when it
 * may be applied. `found.offsets` are the offsets of versions `from..through` the log holds.
 *
 * @example
 * const refusal = checkCut(cut, { firstKept, head, snapshotVersion, offsets })
 * if (refusal !== undefined) return refusal
 */
export function checkCut(
  cut: RetentionCut,
  found: {
    readonly firstKept: number
    readonly head: number
    readonly snapshotVersion: number | undefined
    readonly offsets: readonly number[]
  },
): Extract<RetentionDrop, { _tag: 'refused' }> | undefined {
  const refuse = (code: RetentionRefusal, reason: string) =>
    ({ _tag: 'refused', code, tenant: cut.tenant, entity: cut.entity, reason }) as const
  const { tenant, entity } = cut
  if (found.snapshotVersion === undefined || found.snapshotVersion < cut.through) {
    return refuse(
      'not_covered',
      `${tenant}:${entity} through version ${cut.through}: the snapshot under ${cut.foldKey} is at ${found.snapshotVersion ?? 'none'}`,
    )
  }
  if (cut.through >= found.head) {
    return refuse('head', `${tenant}:${entity}: version ${cut.through} is its newest, always kept`)
  }
  const same =
    cut.from >= 1 &&
    cut.through >= cut.from &&
    found.firstKept === cut.from &&
    cut.offsets.length === cut.through - cut.from + 1 &&
    found.offsets.length === cut.offsets.length &&
    found.offsets.every((o, i) => o === cut.offsets[i])
  if (!same) {
    return refuse(
      'changed',
      `${tenant}:${entity}: the log keeps it from version ${found.firstKept}, the export from ${cut.from} (export again)`,
    )
  }
  return undefined
}

/** The message of `LogStoreError('history_dropped')` (invariant 4). */
export function droppedMessage(entity: string, fromVersion: number, firstKept: number): string {
  return `${entity} from version ${fromVersion}: the operator dropped history below version ${firstKept} (retention)`
}

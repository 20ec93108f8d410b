/**
 * Bases: the relay's ledger snapshots kept as entities' confirmed bases after a bootstrap
 * (client store guarantee 11). The pure part both client stores share: which snapshot becomes
 * a base, where a load starts, and what `client.history` says about the history it holds.
 *
 * Terms: a *base* is a snapshot the relay folded through version v (`BaseRecord`); history at
 * or below v is *on the server only* until fetched; a *client snapshot* is the cache's own
 * (`SnapshotRecord`, folded here through a chunk).
 *
 * Invariants:
 * 1. A base is used only under its own fold key: a base of another `type@version` is never the
 *    start of a fold (a changed reduce never starts from an old state).
 * 2. A base never moves back: a snapshot older than the stored base is not kept.
 * 3. A load from version 1 starts from the base when there is one (history below it may be on
 *    the server only); a load after a cached base older than the stored base starts from the
 *    stored base; a load from the stored snapshots takes the newer of the client snapshot and
 *    the base. Every start is a fold of versions 1..v, so any of them gives the same state.
 * 4. History is `complete` only when the entries held run densely from version 1 to the base;
 *    otherwise the answer says from which version it is held, and `dropped` when the operator
 *    dropped what lies below (never a silent gap).
 * 5. A write of bases over names that already have bases (`mergeBases`) leaves one base per
 *    name, chosen by invariant 2, so when stores keep bases in pages of names, an older page's
 *    entry never shadows a newer one.
 */
import type { StoredEntry } from '@ledgerline/core'
import type { LedgerSnapshot } from '@ledgerline/protocol'
import type { BaseRecord, EntityBase, SnapshotRecord } from './client-store.ts'

/**
 * The base a received snapshot makes.
 *
 * @example
 * baseOf({ entity: 'stock/a', foldKey: 'stock@1', version: 9, partition: 0, offset: 40,
 *   committedAt: 1, state: { onHand: 3 } }).version // 9
 */
export function baseOf(snapshot: LedgerSnapshot): BaseRecord {
  const { entity, foldKey, version, partition, offset, committedAt, state } = snapshot
  return { entity, foldKey, version, partition, offset, committedAt, state }
}

/** Invariant 2: the record to write for `next` over `stored`, or undefined (keep `stored`). */
export function nextBase(stored: BaseRecord | undefined, next: BaseRecord): BaseRecord | undefined {
  if (stored === undefined || stored.foldKey !== next.foldKey) return next
  if (next.version < stored.version) return undefined
  // The same or a newer point: what a fetch found dropped stays known.
  return stored.dropped === undefined ? next : { ...next, dropped: stored.dropped }
}

/** A base as the start of a fold: every chunk may hold entries after it (through 0). */
function startOf(base: BaseRecord): EntityBase {
  return { through: 0, version: base.version, state: base.state }
}

/**
 * Invariant 3: where a load of an entity starts. `base`: the load's `base` argument (undefined:
 * from the stored snapshots; null: from version 1); `snapshot` and `stored` are the stored
 * client snapshot and base, each already known to be of the load's fold key (invariant 1).
 */
export function loadStart(
  base: EntityBase | null | undefined,
  snapshot: SnapshotRecord | undefined,
  stored: BaseRecord | undefined,
): { readonly start: EntityBase | undefined; readonly source: string | undefined } {
  if (base === null) return { start: stored && startOf(stored), source: undefined }
  if (base !== undefined) {
    const newer = stored !== undefined && stored.version > base.version
    return { start: newer ? startOf(stored) : base, source: undefined }
  }
  if (stored !== undefined && (snapshot === undefined || snapshot.version < stored.version))
    return { start: startOf(stored), source: undefined }
  return { start: snapshot, source: snapshot?.source }
}

/** What `client.history` says about the confirmed history held (invariant 4). */
export interface HeldHistory {
  /** The confirmed entries held from `from` on, in version order, densely. */
  readonly entries: readonly StoredEntry[]
  readonly complete: boolean
  /** The first version held (1 when complete). */
  readonly from: number
  /** The operator dropped history below this version (a fetch found it so). */
  readonly dropped: number | undefined
}

/**
 * Invariant 4: the dense run of `stored` (every stored entry of one entity, version order)
 * that ends at the newest, and whether it reaches version 1 (or the operator's drop) below
 * `base`.
 *
 * @example
 * heldHistory(undefined, entries).complete // true: no base, every entry is held
 */
export function heldHistory(
  base: BaseRecord | undefined,
  stored: readonly StoredEntry[],
): HeldHistory {
  if (base === undefined) return { entries: stored, complete: true, from: 1, dropped: undefined }
  // Walk down from the newest while versions stay dense; a base fills what it covers.
  let at = stored.length
  let from = (stored.at(-1)?.version ?? base.version) + 1
  while (at > 0 && (stored[at - 1] as StoredEntry).version === from - 1) {
    at--
    from--
  }
  if (from > base.version + 1) {
    // Entries above the base are missing: never the case unless a chunk went missing.
    return { entries: stored.slice(at), complete: false, from, dropped: base.dropped }
  }
  const complete = from === 1
  return { entries: stored.slice(at), complete, from, dropped: base.dropped }
}

/** What one write of bases leaves: the pages to store in place of the ones it met. */
export interface MergedBases {
  /** The bases of the names met and written, in name order, cut into pages. */
  readonly pages: readonly (readonly BaseRecord[])[]
  /** The incoming bases that were kept (invariant 2), by entity. */
  readonly based: Map<string, BaseRecord>
}

/**
 * Merges `incoming` (in arrival order) over `held` (the bases of every stored page the write
 * meets) by `nextBase` per name, and cuts the result in name order into pages of at most
 * `perPage`. There is one base per name afterwards, so an older page's entry for a name can
 * never shadow a newer one.
 *
 * @example
 * mergeBases([], [base('a', 2)], 250).pages.length // 1
 */
export function mergeBases(
  held: readonly BaseRecord[],
  incoming: readonly BaseRecord[],
  perPage: number,
): MergedBases {
  const byName = new Map(held.map((b) => [b.entity, b]))
  const based = new Map<string, BaseRecord>()
  for (const base of incoming) {
    const next = nextBase(byName.get(base.entity), base)
    if (next === undefined) continue
    byName.set(next.entity, next)
    based.set(next.entity, next)
  }
  // Code-unit order, as IndexedDB compares string keys.
  const names = [...byName.keys()].sort()
  const pages: BaseRecord[][] = []
  for (let i = 0; i < names.length; i += perPage)
    pages.push(names.slice(i, i + perPage).map((n) => byName.get(n) as BaseRecord))
  return { pages, based }
}

/** The base of `entity` in `bases` (sorted by name, as a page holds them), by binary search. */
export function findBase(bases: readonly BaseRecord[], entity: string): BaseRecord | undefined {
  let lo = 0
  let hi = bases.length - 1
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1
    const name = (bases[mid] as BaseRecord).entity
    if (name === entity) return bases[mid]
    if (name < entity) lo = mid + 1
    else hi = mid - 1
  }
  return undefined
}

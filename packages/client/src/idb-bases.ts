/**
 * Bases in IndexedDB (layout 5): the relay snapshots a bootstrap keeps (`bases.ts`), stored as
 * *base pages*, each a run of bases in name order keyed by [first name, last name]. Why pages:
 * a bootstrap brings 1,000 snapshots a page, and the browser's IndexedDB writing one record per
 * entity dominated a fresh register's start (20,000 records); a page of bases is a few records.
 *
 * Invariants:
 * 1. Base pages never overlap: no two [first, last] ranges meet. So the base of an entity is
 *    in the one page with the greatest key at or below [entity, …] when that page's last name
 *    is at or after the entity, found by one key cursor read; no other page can hold it.
 * 2. A write reads every page its names' span meets, merges the incoming bases over them by
 *    `nextBase` per name (a base of the same fold key only moves forward, another fold key
 *    replaces it) and stores the merge as pages of at most BASE_PAGE_ENTRIES_MAX in place of
 *    the pages it met, so invariant 1 holds after it and an older page's entry for a name never
 *    shadows a newer one (there is one entry per name).
 * 3. Reads in one transaction share the pages they read (`createBaseReader`): a batch of loads
 *    of neighbouring names reads their page once, and finds which pages with one key read.
 */
import type { IDBPObjectStore, IDBPTransaction, StoreNames } from 'idb'
import { findBase, mergeBases } from './bases.ts'
import type { BaseRecord } from './client-store.ts'
import type { BasePageRecord, LedgerDb, Track } from './idb-database.ts'
import { BASE_PAGE_ENTRIES_MAX } from './limits.ts'

type PagesStore<M extends IDBTransactionMode> = IDBPObjectStore<
  LedgerDb,
  StoreNames<LedgerDb>[],
  'basePages',
  M
>

/** A transaction that can read base pages. */
export type BasesTx = IDBPTransaction<LedgerDb, 'basePages'[], IDBTransactionMode>

/** Greater than every string: an array key sorts after strings (IndexedDB key order). */
const AFTER_STRINGS: string[] = []

/**
 * The key of the only page that may hold `entity` (invariant 1), or undefined: one key read.
 */
async function pageKeyOf(
  store: PagesStore<IDBTransactionMode>,
  KeyRange: typeof IDBKeyRange,
  entity: string,
): Promise<[string, string] | undefined> {
  const cursor = await store.openKeyCursor(
    KeyRange.upperBound([entity, AFTER_STRINGS as unknown as string]),
    'prev',
  )
  if (cursor === null) return undefined
  const key = cursor.primaryKey as [string, string]
  return key[1] >= entity ? key : undefined
}

/** Reads bases one entity at a time, sharing the pages read in `tx` (invariant 3). */
export type BaseReader = (entity: string) => Promise<BaseRecord | undefined>

/**
 * `names`: every entity the reader will be asked for (a batch of loads). Then the keys of the
 * pages that may hold them are read once, with two requests (the page at or before the first
 * name and the keys of the pages starting up to the last), instead of a key cursor per entity:
 * a cursor per load cost more than the load's other reads in Chromium.
 *
 * @example
 * const baseOf = createBaseReader(tx, IDBKeyRange)
 * const base = await baseOf('stock/a')
 */
export function createBaseReader(
  tx: BasesTx,
  KeyRange: typeof IDBKeyRange,
  names?: readonly string[],
): BaseReader {
  const store = tx.objectStore('basePages')
  const pages = new Map<string, Promise<BasePageRecord | undefined>>()
  const keys =
    names === undefined || names.length < 2 ? undefined : keysOver(store, KeyRange, names)
  return async (entity) => {
    const key =
      keys === undefined ? await pageKeyOf(store, KeyRange, entity) : keyIn(await keys, entity)
    if (key === undefined) return undefined
    let page = pages.get(key[0])
    if (page === undefined) {
      page = store.get(key)
      pages.set(key[0], page)
    }
    const found = await page
    return found === undefined ? undefined : findBase(found.bases, entity)
  }
}

/** The keys, ascending, of every page that may hold one of `names` (invariant 1). */
async function keysOver(
  store: PagesStore<IDBTransactionMode>,
  KeyRange: typeof IDBKeyRange,
  names: readonly string[],
): Promise<[string, string][]> {
  const sorted = [...names].sort()
  const lo = sorted[0] as string
  const hi = sorted.at(-1) as string
  const [before, inside] = await Promise.all([
    pageKeyOf(store, KeyRange, lo),
    store.getAllKeys(KeyRange.bound([lo, ''], [hi, AFTER_STRINGS as unknown as string])),
  ])
  const keys = inside as [string, string][]
  return before === undefined || keys[0]?.[0] === before[0] ? keys : [before, ...keys]
}

/** The key in `keys` (ascending, ranges apart) of the page whose range holds `entity`. */
function keyIn(keys: readonly [string, string][], entity: string): [string, string] | undefined {
  let lo = 0
  let hi = keys.length - 1
  let found: [string, string] | undefined
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1
    const key = keys[mid] as [string, string]
    if (key[0] <= entity) {
      found = key
      lo = mid + 1
    } else {
      hi = mid - 1
    }
  }
  return found !== undefined && found[1] >= entity ? found : undefined
}

/** Every stored base, in name order (a view rebuild folds them all). */
export async function readAllBases(tx: BasesTx): Promise<BaseRecord[]> {
  const pages = await tx.objectStore('basePages').getAll()
  return pages.flatMap((p) => p.bases)
}

/**
 * Stores `incoming` (in arrival order) as bases, merged over the pages their span meets
 * (invariant 2); answers the bases kept, by entity.
 */
export async function writeBases(
  store: PagesStore<'readwrite'>,
  KeyRange: typeof IDBKeyRange,
  incoming: readonly BaseRecord[],
  track: Track,
): Promise<Map<string, BaseRecord>> {
  if (incoming.length === 0) return new Map()
  const names = incoming.map((b) => b.entity).sort()
  const lo = names[0] as string
  const hi = names.at(-1) as string
  // The page that starts at or before `lo` (it may reach into the span) and every page that
  // starts inside the span: by invariant 1, no other page meets it.
  const [before, inside] = await Promise.all([
    pageKeyOf(store, KeyRange, lo),
    store.getAllKeys(KeyRange.bound([lo, ''], [hi, AFTER_STRINGS as unknown as string])),
  ])
  const met = new Map<string, [string, string]>()
  if (before !== undefined) met.set(before[0], before)
  for (const key of inside as [string, string][]) met.set(key[0], key)
  const held = await Promise.all([...met.values()].map((key) => store.get(key)))
  const { pages, based } = mergeBases(
    held.flatMap((p) => p?.bases ?? []),
    incoming,
    BASE_PAGE_ENTRIES_MAX,
  )
  if (based.size === 0) return based
  for (const key of met.values()) void track(store.delete(key))
  for (const bases of pages) {
    const first = (bases[0] as BaseRecord).entity
    const last = (bases.at(-1) as BaseRecord).entity
    void track(store.put({ first, last, bases }))
  }
  return based
}

/** Replaces the stored base of `base.entity` with `base` (in its page; no page: nothing). */
export async function replaceBase(
  store: PagesStore<'readwrite'>,
  KeyRange: typeof IDBKeyRange,
  base: BaseRecord,
  track: Track,
): Promise<void> {
  const key = await pageKeyOf(store, KeyRange, base.entity)
  if (key === undefined) return
  const page = await store.get(key)
  if (page === undefined) return
  const bases = page.bases.map((b) => (b.entity === base.entity ? base : b))
  void track(store.put({ ...page, bases }))
}

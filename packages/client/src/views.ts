/**
 * Kept views and their index keys: for every entity type that declares `indexes`, the client
 * store keeps one *view record* per entity (its confirmed state and version, its view, and the
 * keys of its indexes), written in the same atomic write as whatever changed the entity's
 * confirmed or pending entries. `query` reads them. This module is the pure part both client
 * stores share: which types are kept, how a record is folded on, and the order of keys.
 *
 * Terms: a *view type* is an entity type that declares `indexes` (an empty record makes a type
 * listable without keys); its *definition key* names its fold version and the source text of
 * its index functions; an *index key* is `[type, index, value]`, the key IndexedDB orders by.
 *
 *   write (append, ack, pages, session) ─► touched entities of view types
 *        ─► nextView(record, new confirmed entries, pending) ─► record + keys, same write
 *
 * Invariants:
 * 1. A view record's `view` is its `confirmed` folded with the entity's pending entries in the
 *    order the entity cache folds them (`sortPending`): what `get()` shows once loaded.
 * 2. Confirmed state moves on only by dense versions; a gap answers `gap` and the caller folds
 *    the entity from version 1 again from what it stores.
 * 3. A `reduce` that throws leaves the record `broken` (kept, with no keys) instead of failing
 *    the write: a schema bug never stops the outbox or the subscription. An index function that
 *    throws, or gives anything but a string or a finite number, leaves the view out of that
 *    index only.
 * 4. Keys order as IndexedDB orders them: numbers before strings, numbers by value, strings by
 *    UTF-16 code units; equal keys by entity name. The memory store sorts with `compareKeys`.
 * 5. A type's records are rebuilt from the stored history whenever its definition key differs
 *    from the one stored with them (another fold `version`, another index function or name).
 * 6. An entity with a base (a relay snapshot, `bases.ts`) of its type's fold key is folded from
 *    the base on, never from version 1: a record older than a base set by the write starts over
 *    from the base, and a gap or a rebuild folds from the base.
 */
import type { Entry, EntityType, IndexValue, Schema, StoredEntry } from '@ledgerline/core'
import { foldKey } from '@ledgerline/core'
import type { BaseRecord } from './client-store.ts'
import { fingerprint } from './snapshot-keys.ts'
import { sortPending } from './entity-fold.ts'

/** An index key: entity type, index name, value (invariant 4). */
export type IndexKey = readonly [string, string, IndexValue]

export interface ViewRecord {
  readonly entity: string
  /** The definition key of its type when it was folded (invariant 5). */
  readonly typeKey: string
  /** Version of the last confirmed entry folded (0: none). */
  readonly version: number
  readonly confirmed: unknown
  readonly view: unknown
  /** One per index the view has a key in. */
  readonly keys: readonly IndexKey[]
  /** Set when `reduce` threw (invariant 3): the record has no keys until it is rebuilt. */
  readonly broken?: string | undefined
}

export interface ViewType {
  readonly type: string
  /** Definition key (invariant 5). */
  readonly key: string
  readonly entityType: EntityType
  readonly indexes: readonly (readonly [string, (view: unknown) => unknown])[]
}

/** The view types of a schema, by type name; empty when no type declares indexes. */
export type ViewTypes = ReadonlyMap<string, ViewType>

/** Stored beside the records: the definition key each type's records were built with. */
export type ViewDefinitions = Readonly<Record<string, string>>

/**
 * The view types of `schema` (invariant 5).
 *
 * @example
 * viewTypesOf(schema).get('order')?.key // 'order@1:order:9c1e…'
 */
export function viewTypesOf(schema: Schema | undefined): ViewTypes {
  const types = new Map<string, ViewType>()
  for (const [name, t] of schema?.types ?? []) {
    if (t.indexes === undefined) continue
    const indexes = Object.entries(t.indexes) as [string, (view: unknown) => unknown][]
    const text = indexes.map(([n, f]) => `${n}=${String(f)}`).join('\n')
    types.set(name, {
      type: name,
      key: `${name}@${t.version}:${fingerprint(name, text)}`,
      entityType: t,
      indexes,
    })
  }
  return types
}

/** The definitions to store for `types`. */
export function definitionsOf(types: ViewTypes): ViewDefinitions {
  return Object.fromEntries([...types].map(([name, t]) => [name, t.key]))
}

/** Types whose records must be rebuilt: new, changed or gone since `stored` (invariant 5). */
export function staleTypes(types: ViewTypes, stored: ViewDefinitions | undefined): string[] {
  const names = new Set([...types.keys(), ...Object.keys(stored ?? {})])
  return [...names].filter((n) => types.get(n)?.key !== stored?.[n])
}

/** The view type of `entity`, if its type is kept. */
export function viewTypeOf(types: ViewTypes, entity: string): ViewType | undefined {
  if (types.size === 0) return undefined
  const slash = entity.indexOf('/')
  return slash < 0 ? undefined : types.get(entity.slice(0, slash))
}

/**
 * The record after `confirmedNew` (this entity's confirmed entries after `prev`, in version
 * order) and with `pending` (all its pending entries now); `gap` when the versions do not go
 * on from `prev` (invariant 2); undefined when the entity has nothing (no record).
 *
 * @example
 * nextView(orderType, undefined, 'order/1', [], [sale]) // { view: { lines: 1 }, keys: […] }
 */
export function nextView(
  vt: ViewType,
  prev: ViewRecord | undefined,
  entity: string,
  confirmedNew: readonly StoredEntry[],
  pending: readonly Entry[],
): ViewRecord | 'gap' | undefined {
  const base = prev !== undefined && prev.typeKey === vt.key ? prev : undefined
  let version = base?.version ?? 0
  if (confirmedNew.length > 0 && (confirmedNew[0] as StoredEntry).version !== version + 1)
    return 'gap'
  if (version === 0 && confirmedNew.length === 0 && pending.length === 0) return undefined
  const reduce = vt.entityType.reduce
  if (base?.broken !== undefined) {
    const last = confirmedNew.at(-1)?.version ?? version
    return { ...base, version: last }
  }
  let confirmed = base?.confirmed ?? vt.entityType.initial
  try {
    for (const e of confirmedNew) {
      if (e.version !== version + 1) return 'gap'
      confirmed = reduce(confirmed, e)
      version = e.version
    }
    let view = confirmed
    for (const e of sortPending(pending)) view = reduce(view, e)
    return { entity, typeKey: vt.key, version, confirmed, view, keys: keysOf(vt, view) }
  } catch (error) {
    return {
      entity,
      typeKey: vt.key,
      version: confirmedNew.at(-1)?.version ?? version,
      confirmed,
      view: confirmed,
      keys: [],
      broken: error instanceof Error ? error.message : String(error),
    }
  }
}

/** The index keys of `view` (invariant 3). */
export function keysOf(vt: ViewType, view: unknown): IndexKey[] {
  const keys: IndexKey[] = []
  for (const [name, fn] of vt.indexes) {
    let value: unknown
    try {
      value = fn(view)
    } catch {
      continue
    }
    if (isIndexValue(value)) keys.push([vt.type, name, value])
  }
  return keys
}

export function isIndexValue(value: unknown): value is IndexValue {
  return typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value))
}

/**
 * Compares index values as IndexedDB does (invariant 4).
 *
 * @example
 * compareValues(3, 'a') // -1: numbers sort before strings
 */
export function compareValues(a: IndexValue, b: IndexValue): number {
  if (typeof a !== typeof b) return typeof a === 'number' ? -1 : 1
  return a < b ? -1 : a > b ? 1 : 0
}

/** The record a base starts (invariant 6), or undefined when it is of another fold key. */
export function baseView(vt: ViewType, base: BaseRecord | undefined): ViewRecord | undefined {
  if (base === undefined || base.foldKey !== foldKey(vt.entityType)) return undefined
  const { entity, version, state } = base
  return { entity, typeKey: vt.key, version, confirmed: state, view: state, keys: [] }
}

/**
 * `nextView` for a write that may have set `base` (invariant 6): a record older than the base
 * (or of another definition) starts over from it, and only entries after it are folded.
 */
export function nextViewFrom(
  vt: ViewType,
  prev: ViewRecord | undefined,
  base: BaseRecord | undefined,
  entity: string,
  confirmedNew: readonly StoredEntry[],
  pending: readonly Entry[],
): ViewRecord | 'gap' | undefined {
  const start = baseView(vt, base)
  const usable = prev !== undefined && prev.typeKey === vt.key ? prev : undefined
  if (start === undefined || (usable !== undefined && usable.version >= start.version))
    return nextView(vt, prev, entity, confirmedNew, pending)
  const after = confirmedNew.filter((e) => e.version > start.version)
  return nextView(vt, start, entity, after, pending)
}

/**
 * One entity's record folded from all it stores (a gap, a rebuild): from its base when it has
 * one (invariant 6), else from version 1, as far as the entries are dense (like the entity
 * cache; a ledger that does not start where it should is never the case unless a chunk went
 * missing). `stored` is in version order.
 */
export function wholeView(
  vt: ViewType,
  base: BaseRecord | undefined,
  entity: string,
  stored: readonly StoredEntry[],
  pending: readonly Entry[],
): ViewRecord | undefined {
  const start = baseView(vt, base)
  let version = start?.version ?? 0
  const dense: StoredEntry[] = []
  for (const e of stored) {
    if (e.version <= version) continue
    if (e.version !== version + 1) break
    dense.push(e)
    version = e.version
  }
  const record = nextView(vt, start, entity, dense, pending)
  return record === 'gap' ? undefined : record
}

/**
 * Folds every entity of `types` from its confirmed history (from its base, when it has one)
 * and pending entries: the records of a rebuild (invariants 5 and 6). `history` holds the
 * stored entries in any order.
 */
export function rebuildViews(
  types: ViewTypes,
  history: Iterable<StoredEntry>,
  pending: Iterable<Entry>,
  bases: ReadonlyMap<string, BaseRecord> = new Map(),
): ViewRecord[] {
  const confirmed = new Map<string, StoredEntry[]>()
  const own = new Map<string, Entry[]>()
  for (const e of history) if (viewTypeOf(types, e.entity) !== undefined) push(confirmed, e)
  for (const e of pending) if (viewTypeOf(types, e.entity) !== undefined) push(own, e)
  const kept = [...bases.keys()].filter((e) => viewTypeOf(types, e) !== undefined)
  const records: ViewRecord[] = []
  for (const entity of new Set([...confirmed.keys(), ...own.keys(), ...kept])) {
    const vt = viewTypeOf(types, entity) as ViewType
    const list = (confirmed.get(entity) ?? []).sort((a, b) => a.version - b.version)
    const record = wholeView(vt, bases.get(entity), entity, list, own.get(entity) ?? [])
    if (record !== undefined) records.push(record)
  }
  return records
}

/** The confirmed entries of each entity among `entries`, in version order. */
export function byEntity(entries: Iterable<StoredEntry>): Map<string, StoredEntry[]> {
  const map = new Map<string, StoredEntry[]>()
  for (const e of entries) push(map, e)
  for (const list of map.values()) list.sort((a, b) => a.version - b.version)
  return map
}

function push<E extends { readonly entity: string }>(map: Map<string, E[]>, e: E): void {
  const list = map.get(e.entity)
  if (list === undefined) map.set(e.entity, [e])
  else list.push(e)
}

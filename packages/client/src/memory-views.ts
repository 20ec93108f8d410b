/**
 * Kept views of the memory client store (client store guarantee 10): the same records and keys
 * as `idb-views.ts`, folded with the pure plans of `views.ts`, and queried by sorting as
 * IndexedDB orders its keys (views.ts invariant 4), so `runClientStoreContract` proves the two
 * answer alike.
 *
 * Invariants:
 * 1. Every function runs synchronously inside the memory store's write that calls it, so the
 *    records change in the same atomic write as the entries they fold.
 * 2. Records are copied on the way in (`structuredClone`), as IndexedDB does.
 */
import type { Entry, StoredEntry } from '@ledgerline/core'
import type {
  AckedRecord,
  BaseRecord,
  ChunkRecord,
  OutboxRecord,
  ViewQuery,
} from './client-store.ts'
import type { IndexKey, ViewDefinitions, ViewRecord, ViewTypes } from './views.ts'
import {
  compareValues,
  definitionsOf,
  nextViewFrom,
  rebuildViews,
  viewTypeOf,
  wholeView,
} from './views.ts'

/** The part of the memory database the views read and write. */
export interface MemoryViewData {
  views: Map<string, ViewRecord>
  viewDefinitions: ViewDefinitions | undefined
  readonly outbox: ReadonlyMap<string, OutboxRecord>
  readonly acked: ReadonlyMap<string, AckedRecord>
  readonly chunks: ReadonlyMap<number, ChunkRecord>
  readonly ledgers: ReadonlyMap<string, readonly number[]>
  readonly bases: ReadonlyMap<string, BaseRecord>
}

export interface MemoryViews {
  readonly types: ViewTypes
  /**
   * Folds the records of `entities` on, with `confirmedNew` (their entries this write stored)
   * and `based` (the bases this write set: views.ts invariant 6).
   */
  refresh(
    entities: Iterable<string>,
    confirmedNew?: ReadonlyMap<string, readonly StoredEntry[]>,
    based?: ReadonlyMap<string, BaseRecord>,
  ): void
  /** Rebuilds the records of `names` (default: every kept type) and stores the definitions. */
  rebuild(names?: readonly string[]): void
  query(query: ViewQuery): ViewRecord[]
}

/**
 * @example
 * const views = createMemoryViews(data, viewTypesOf(schema))
 * views.refresh(['order/1'])
 */
export function createMemoryViews(data: MemoryViewData, types: ViewTypes): MemoryViews {
  return {
    types,
    refresh(entities, confirmedNew = new Map(), based = new Map()) {
      if (types.size === 0) return
      for (const entity of new Set(entities)) {
        const vt = viewTypeOf(types, entity)
        if (vt === undefined) continue
        const pending = pendingOf(data, entity)
        const prev = data.views.get(entity)
        const fresh = confirmedNew.get(entity) ?? []
        const folded = nextViewFrom(vt, prev, based.get(entity), entity, fresh, pending)
        const next =
          folded === 'gap'
            ? wholeView(vt, data.bases.get(entity), entity, storedOf(data, entity), pending)
            : folded
        if (next === undefined) data.views.delete(entity)
        else data.views.set(entity, structuredClone(next))
      }
    },
    rebuild(names = [...types.keys()]) {
      for (const entity of data.views.keys()) {
        if (names.includes(entity.slice(0, entity.indexOf('/')))) data.views.delete(entity)
      }
      const kept: ViewTypes = new Map([...types].filter(([name]) => names.includes(name)))
      const history = [...data.chunks.values()].flatMap((c) => c.entries)
      const pending = [...data.acked.values(), ...data.outbox.values()].map((r) => r.entry)
      for (const r of rebuildViews(kept, history, pending, data.bases))
        data.views.set(r.entity, structuredClone(r))
      data.viewDefinitions = definitionsOf(types)
    },
    query: (q) => queryRecords(data.views.values(), q),
  }
}

/**
 * The records a query answers, in IndexedDB's order: by key then entity name (descending:
 * both reversed), or by entity name without an index.
 */
export function queryRecords(records: Iterable<ViewRecord>, q: ViewQuery): ViewRecord[] {
  const rows: { record: ViewRecord; key: IndexKey | undefined }[] = []
  for (const record of records) {
    if (!record.entity.startsWith(`${q.type}/`)) continue
    if (q.match !== undefined && !q.match(record.entity)) continue
    if (q.index === undefined) {
      rows.push({ record, key: undefined })
      continue
    }
    const key = record.keys.find((k) => k[0] === q.type && k[1] === q.index)
    if (key === undefined || !inRange(key[2], q)) continue
    rows.push({ record, key })
  }
  rows.sort((a, b) => {
    const byKey = a.key === undefined || b.key === undefined ? 0 : compareValues(a.key[2], b.key[2])
    if (byKey !== 0) return byKey
    return a.record.entity < b.record.entity ? -1 : a.record.entity > b.record.entity ? 1 : 0
  })
  if (q.direction === 'desc') rows.reverse()
  return rows.slice(0, q.limit).map((r) => r.record)
}

function inRange(value: string | number, q: ViewQuery): boolean {
  if (q.lower !== undefined) {
    const c = compareValues(value, q.lower.value)
    if (c < 0 || (c === 0 && q.lower.open)) return false
  }
  if (q.upper !== undefined) {
    const c = compareValues(value, q.upper.value)
    if (c > 0 || (c === 0 && q.upper.open)) return false
  }
  return true
}

/** Own pending entries of `entity`: acked records, then the outbox's (as `loadEntity`). */
function pendingOf(data: MemoryViewData, entity: string): Entry[] {
  const pending: Entry[] = []
  for (const a of data.acked.values()) if (a.entity === entity) pending.push(a.entry)
  for (const r of data.outbox.values()) if (r.entity === entity) pending.push(r.entry)
  return pending
}

/** Every stored confirmed entry of `entity`, in version order. */
export function storedOf(data: MemoryViewData, entity: string): StoredEntry[] {
  const out: StoredEntry[] = []
  for (const n of data.ledgers.get(entity) ?? []) {
    for (const e of (data.chunks.get(n) as ChunkRecord).entries)
      if (e.entity === entity) out.push(e)
  }
  return out.sort((a, b) => a.version - b.version)
}

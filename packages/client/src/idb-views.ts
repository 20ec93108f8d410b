/**
 * Kept views in IndexedDB (client store guarantee 10): the `views` object store, one record per
 * entity of a type that declares `indexes`, with a multiEntry index over its keys, so a query is
 * one key range read. The writes that change entries call `refreshViews` inside their own
 * transaction; `prepareViews` and `queryViews` are the client store's methods.
 *
 * Why a multiEntry index over `[type, index, value]` keys: IndexedDB keeps it in the same
 * transaction as the record (no second object store to keep in step), orders it by key and then
 * by entity name, and answers a range with `getAll(range, limit)`: one request, however many
 * records the type has (https://w3c.github.io/IndexedDB/#dom-idbindexparameters-multientry).
 *
 * Invariants:
 * 1. `refreshViews` runs inside the transaction of the write it follows and reads only that
 *    transaction's requests (idb-database.ts invariant 1), after the write's own requests, so it
 *    folds what the write leaves.
 * 2. Writes open the `views` store (and `outbox`, `acked` for pending entries, the history
 *    stores for a gap) only when the schema keeps views, so an app without indexes pays nothing.
 * 3. A rebuild deletes and writes a type's records and the stored definitions in one
 *    transaction: a query sees the old index or the new one, never half of each.
 */
import type { Entry, StoredEntry } from '@ledgerline/core'
import type { IDBPTransaction, StoreNames } from 'idb'
import type { BaseRecord, ClientStore, ViewQuery } from './client-store.ts'
import type { LedgerDb, Run, Track } from './idb-database.ts'
import { readStored, type HistoryTx } from './idb-history.ts'
import { createBaseReader, readAllBases, type BasesTx } from './idb-bases.ts'
import type { ViewDefinitions, ViewRecord, ViewTypes } from './views.ts'
import {
  compareValues,
  definitionsOf,
  nextViewFrom,
  rebuildViews,
  staleTypes,
  viewTypeOf,
  wholeView,
} from './views.ts'

export type IdbViews = Pick<ClientStore, 'prepareViews' | 'queryViews'>

/** A read-write transaction over any stores; the helpers below use only those they name. */
export type ViewTx = IDBPTransaction<LedgerDb, StoreNames<LedgerDb>[], 'readwrite'>

/** The stores a write adds when views are kept (invariant 2). */
export function viewStores<N extends StoreNames<LedgerDb>>(
  types: ViewTypes,
  names: N[],
): (N | 'views' | 'outbox' | 'acked' | 'chunks' | 'staged' | 'ledgers' | 'basePages')[] {
  if (types.size === 0) return names
  // Pending entries come from `outbox` and `acked`; a gap folds from the history and its base
  // (invariant 1).
  const added = ['views', 'outbox', 'acked', 'chunks', 'staged', 'ledgers', 'basePages'] as const
  return [...new Set([...names, ...added])]
}

/** Narrows any read-write transaction to the helper's view of it. */
export function asViewTx(tx: unknown): ViewTx {
  return tx as ViewTx
}

/**
 * Folds the records of `entities` on (invariant 1): `confirmedNew` holds each one's confirmed
 * entries stored by this write, in version order, and `based` the bases it set (views.ts
 * invariant 6). `noPending`: the write knows no entity has pending entries (an empty outbox
 * and no acked records), so none are read.
 */
export async function refreshViews(
  tx: ViewTx,
  types: ViewTypes,
  KeyRange: typeof IDBKeyRange,
  entities: Iterable<string>,
  confirmedNew: ReadonlyMap<string, readonly StoredEntry[]>,
  track: Track,
  noPending = false,
  based: ReadonlyMap<string, BaseRecord> = new Map(),
): Promise<void> {
  if (types.size === 0) return
  const views = tx.objectStore('views')
  const work: Promise<void>[] = []
  for (const entity of new Set(entities)) {
    const vt = viewTypeOf(types, entity)
    if (vt === undefined) continue
    work.push(
      (async () => {
        const [prev, pending] = await Promise.all([
          views.get(entity),
          noPending ? Promise.resolve([]) : pendingOf(tx, entity),
        ])
        const fresh = confirmedNew.get(entity) ?? []
        const folded = nextViewFrom(vt, prev, based.get(entity), entity, fresh, pending)
        let next: ViewRecord | undefined
        if (folded === 'gap') {
          const [{ stored }, base] = await Promise.all([
            readStored(tx as unknown as HistoryTx, KeyRange, entity, 0, 0),
            createBaseReader(tx as unknown as BasesTx, KeyRange)(entity),
          ])
          next = wholeView(vt, base, entity, stored, pending)
        } else {
          next = folded
        }
        if (next === undefined) {
          if (prev !== undefined) void track(views.delete(entity))
        } else {
          void track(views.put(next))
        }
      })(),
    )
  }
  await Promise.all(work)
}

/**
 * Rebuilds the records of `names` (all kept types when undefined) from the stored history and
 * pending entries, and stores the definitions (invariant 3).
 */
export async function rebuildIn(
  tx: ViewTx,
  types: ViewTypes,
  KeyRange: typeof IDBKeyRange,
  track: Track,
  names?: readonly string[] | undefined,
): Promise<void> {
  const rebuilt = names ?? [...types.keys()]
  const views = tx.objectStore('views')
  for (const name of rebuilt) void track(views.delete(KeyRange.bound(`${name}/`, `${name}0`)))
  const kept = new Map([...types].filter(([name]) => rebuilt.includes(name)))
  if (kept.size > 0) {
    const history: StoredEntry[] = []
    let cursor = await tx.objectStore('chunks').openCursor()
    while (cursor !== null) {
      for (const e of cursor.value.entries)
        if (viewTypeOf(kept, e.entity) !== undefined) history.push(e)
      cursor = await cursor.continue()
    }
    const [outbox, acked, bases] = await Promise.all([
      tx.objectStore('outbox').getAll(),
      tx.objectStore('acked').getAll(),
      readAllBases(tx as unknown as BasesTx),
    ])
    const pending = [...acked.map((a) => a.entry), ...outbox.map((o) => o.entry)]
    const byName = new Map(bases.map((b) => [b.entity, b]))
    for (const record of rebuildViews(kept, history, pending, byName)) void track(views.put(record))
  }
  void track(tx.objectStore('meta').put(definitionsOf(types), 'views'))
}

/**
 * @example
 * const views = createIdbViews(run, IDBKeyRange, viewTypesOf(schema))
 * await views.prepareViews()
 */
export function createIdbViews(run: Run, KeyRange: typeof IDBKeyRange, types: ViewTypes): IdbViews {
  return {
    async prepareViews() {
      return run(
        ['meta', 'views', 'chunks', 'outbox', 'acked', 'basePages'],
        'readwrite',
        'relaxed',
        async (tx, track) => {
          const stored = (await tx.objectStore('meta').get('views')) as ViewDefinitions | undefined
          const stale = staleTypes(types, stored)
          if (stale.length === 0 && stored !== undefined) return []
          await rebuildIn(asViewTx(tx), types, KeyRange, track, stale)
          return stale
        },
      )
    },

    async queryViews(q) {
      return run(['views'], 'readonly', 'default', async (tx) => {
        const store = tx.objectStore('views')
        const source = q.index === undefined ? store : store.index('key')
        // An empty range (lower past upper) answers nothing; IndexedDB throws a DataError.
        if (isEmpty(q)) return []
        const range = rangeOf(KeyRange, q)
        if (q.direction === 'asc' && q.match === undefined) {
          return (await source.getAll(range, q.limit)) as ViewRecord[]
        }
        const out: ViewRecord[] = []
        let cursor = await source.openCursor(range, q.direction === 'asc' ? 'next' : 'prev')
        while (cursor !== null && out.length < q.limit) {
          if (q.match === undefined || q.match(cursor.value.entity)) out.push(cursor.value)
          cursor = await cursor.continue()
        }
        return out
      })
    },
  }
}

/** Own pending entries of `entity`: acked records, then the outbox's (as `loadEntity` reads). */
async function pendingOf(tx: ViewTx, entity: string): Promise<Entry[]> {
  const [acked, outboxed] = await Promise.all([
    tx.objectStore('acked').index('entity').getAll(entity),
    tx.objectStore('outbox').index('entity').getAll(entity),
  ])
  return [...acked.map((a) => a.entry), ...outboxed.map((o) => o.entry)]
}

function isEmpty(q: ViewQuery): boolean {
  if (q.lower === undefined || q.upper === undefined) return false
  const c = compareValues(q.lower.value, q.upper.value)
  return c > 0 || (c === 0 && (q.lower.open || q.upper.open))
}

/** The key range of a query: entity names of the type, or keys of one index. */
function rangeOf(KeyRange: typeof IDBKeyRange, q: ViewQuery): IDBKeyRange {
  // '0' follows '/' in code units, so [`type/`, `type0`) holds exactly the type's entities.
  if (q.index === undefined) return KeyRange.bound(`${q.type}/`, `${q.type}0`, false, true)
  // Arrays sort after every number and string, and a prefix before its extensions.
  const lower = q.lower === undefined ? [q.type, q.index] : [q.type, q.index, q.lower.value]
  const upper = q.upper === undefined ? [q.type, q.index, []] : [q.type, q.index, q.upper.value]
  return KeyRange.bound(lower, upper, q.lower?.open ?? false, q.upper?.open ?? false)
}

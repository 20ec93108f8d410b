// Goal: confirmed history in IndexedDB: one chunk per partition per write, one staged record
// naming their entities, the staged keys counted up and folded into the per-entity index by
// `indexPending` in one transaction, and an entity loading the same from staged records, from
// the index, or from both.
// Method: fake-indexeddb; pages built by hand; the object stores counted through a raw
// connection.
import 'fake-indexeddb/auto'
import { describe, expect, it } from 'vitest'
import { IDBFactory } from 'fake-indexeddb'
import { entry, OTHER, stored } from '../test-support/entries.ts'
import { freshIdb } from '../test-support/idb.ts'

const other = (seq: number, entity: string, version: number, partition: number, offset: number) =>
  stored(entry(OTHER, seq, entity), version, partition, offset)

async function count(factory: IDBFactory, name: string): Promise<number> {
  const raw = await new Promise<IDBDatabase>((resolve) => {
    const r = factory.open('db')
    r.onsuccess = () => resolve(r.result)
  })
  const n = await new Promise<number>((resolve) => {
    const r = raw.transaction(name).objectStore(name).count()
    r.onsuccess = () => resolve(r.result)
  })
  raw.close()
  return n
}

describe('IndexedDB history', () => {
  it('stores a chunk per partition per write and stages their entities until indexed', async () => {
    const factory = new IDBFactory()
    const store = await freshIdb(factory)
    await store.prepareCursors('t1', 'k', () => true)
    const r1 = await store.applyPages(
      [
        {
          entries: [
            other(1, 'stock/a', 1, 2, 1),
            other(2, 'stock/b', 1, 2, 2),
            other(3, 'stock/a', 2, 3, 1),
          ],
          cursors: { 2: 2, 3: 1 },
        },
      ],
      'k',
    )
    // Two chunks (partitions 2 and 3); keys: a in both, b in one.
    expect(r1.stagedKeys).toBe(3)
    expect(await count(factory, 'chunks')).toBe(2)
    expect(await count(factory, 'staged')).toBe(1)
    const r2 = await store.applyPages(
      [{ entries: [other(4, 'stock/a', 3, 2, 3)], cursors: { 2: 3 } }],
      'k',
    )
    expect(r2.stagedKeys).toBe(4)
    const staged = await store.loadEntity('stock/a', 'key')
    expect(await store.indexPending()).toBe(true)
    expect(await count(factory, 'staged')).toBe(0)
    expect(await count(factory, 'ledgers')).toBe(2)
    expect(await store.loadEntity('stock/a', 'key')).toEqual(staged)
    // Indexed and staged at once: still the same ledger, in version order.
    await store.applyPages([{ entries: [other(5, 'stock/a', 4, 3, 2)], cursors: { 3: 2 } }], 'k')
    const mixed = await store.loadEntity('stock/a', 'key')
    expect(mixed.stored.map((e) => e.version)).toEqual([1, 2, 3, 4])
    expect((await store.applyPages([{ entries: [], cursors: {} }], 'k')).stagedKeys).toBe(1)
    expect((await store.loadEntity('stock/b', 'key')).stored.map((e) => e.offset)).toEqual([2])
  })
})

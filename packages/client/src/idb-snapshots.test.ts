// Goal: a snapshot in IndexedDB is used only by the fold it was made with, a snapshot that
// cannot be stored costs nothing stored, and snapshots go with their scope.
// Method: fake-indexeddb; a state IndexedDB cannot clone (a function).
import 'fake-indexeddb/auto'
import { describe, expect, it } from 'vitest'
import { entry, OTHER, stored } from '../test-support/entries.ts'
import { freshIdb } from '../test-support/idb.ts'

describe('IndexedDB snapshots', () => {
  it('serves only its own fold, refuses an uncloneable state harmlessly, and goes with its scope', async () => {
    const store = await freshIdb()
    await store.prepareCursors('t1', 'k', () => true)
    await store.applyPages(
      [{ entries: [1, 2].map((v) => stored(entry(OTHER, v), v, 0, v)), cursors: {} }],
      'k',
    )
    await store.putSnapshot({
      entity: 'stock/a',
      version: 2,
      state: { onHand: 2 },
      through: 1,
      typeKey: 'fold-1',
    })
    expect((await store.loadEntity('stock/a', 'fold-1')).snapshot?.version).toBe(2)
    expect((await store.loadEntity('stock/a', 'fold-2')).snapshot).toBeUndefined()
    const error = await store
      .putSnapshot({ entity: 'stock/a', version: 2, state: () => 2, through: 1, typeKey: 'fold-1' })
      .catch((e: unknown) => e)
    expect(error).toMatchObject({ kind: 'storage' })
    expect((await store.loadEntity('stock/a', 'fold-1')).snapshot?.state).toEqual({ onHand: 2 })
    await store.prepareCursors('t1', 'other scope', () => true)
    expect((await store.loadEntity('stock/a', 'fold-1')).snapshot).toBeUndefined()
  })
})

// Goal: the corrections feed in IndexedDB keeps its records and its unseen count together:
// marking them seen writes both in one transaction, and a reopened database agrees.
// Method: fake-indexeddb; corrections arriving by page; the database closed and opened again.
import 'fake-indexeddb/auto'
import { describe, expect, it } from 'vitest'
import { IDBFactory } from 'fake-indexeddb'
import { correctionOf, entry, CLIENT } from '../test-support/entries.ts'
import { freshIdb } from '../test-support/idb.ts'

describe('IndexedDB corrections feed', () => {
  it('marks the feed seen together with its count, as a reopened database sees it', async () => {
    const factory = new IDBFactory()
    const store = await freshIdb(factory)
    await store.prepareCursors('t1', 'k', () => true)
    const fed = await store.applyPages(
      [
        {
          entries: [correctionOf(entry(CLIENT, 1), 0, 1), correctionOf(entry(CLIENT, 2), 0, 2)],
          cursors: {},
        },
      ],
      'k',
    )
    expect(fed.corrections.map((c) => c.n)).toEqual([1, 2])
    expect(await store.markCorrectionsSeen()).toBe(2)
    store.close()
    const again = await freshIdb(factory)
    expect((await again.counters()).correctionsUnseen).toBe(0)
    expect((await again.corrections(10)).map((c) => [c.of, c.unseen])).toEqual([
      [`${CLIENT}-2`, false],
      [`${CLIENT}-1`, false],
    ])
  })
})

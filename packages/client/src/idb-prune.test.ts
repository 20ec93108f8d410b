// Goal: pruning the outcomes keeps the newest by `n` and deletes every record numbered at or
// below the bound, reading only those (no walk of the whole store): at most OUTCOMES_MAX stay.
// Method: fake-indexeddb, a store shaped like `outcomes` (key `id`, index `n`), numbers 1–12
// with a gap (as the feed's records take numbers of the same counter), pruned below 7.
import 'fake-indexeddb/auto'
import { IDBKeyRange } from 'fake-indexeddb'
import { openDB } from 'idb'
import { describe, expect, it } from 'vitest'
import { pruneOlder } from './idb-database.ts'

type Prunable = Parameters<typeof pruneOlder>[0]

describe('pruneOlder', () => {
  it('deletes the records numbered at or below the bound and keeps the rest', async () => {
    const db = await openDB('prune', 1, {
      upgrade: (d) => d.createObjectStore('outcomes', { keyPath: 'id' }).createIndex('n', 'n'),
    })
    const numbers = [1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12]
    const tx = db.transaction('outcomes', 'readwrite')
    for (const n of numbers) void tx.store.put({ id: `e-${n}`, n })
    const pending: Promise<unknown>[] = []
    await pruneOlder(tx.store as unknown as Prunable, IDBKeyRange, 7, (p) => (pending.push(p), p))
    await Promise.all(pending)
    await tx.done
    const kept = (await db.getAll('outcomes')).map((r: { n: number }) => r.n).sort((a, b) => a - b)
    expect(kept).toEqual([8, 9, 10, 11, 12])
    // Nothing at or below the bound: nothing goes.
    const again = db.transaction('outcomes', 'readwrite')
    await pruneOlder(again.store as unknown as Prunable, IDBKeyRange, 0, (p) => p)
    await again.done
    expect(await db.count('outcomes')).toBe(5)
    db.close()
  })
})

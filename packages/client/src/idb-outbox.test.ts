// Goal: what only IndexedDB can break in the outbox: a quota error in the middle of an append
// transaction (direct, or wrapped in an AbortError) is `storage_full` and leaves nothing
// half-written, and the retry takes the next clientSeq; an outbox record corrupted behind the
// client store's back is refused when read back (pair assertion). The rest of the outbox's promises
// are the contract's (idb-client-store.test.ts).
// Method: fake-indexeddb, quota errors injected by wrapping the object stores' add/put, a record
// rewritten through a raw connection.
import 'fake-indexeddb/auto'
import { afterEach, describe, expect, it } from 'vitest'
import type { Entry } from '@ledgerline/core'
import { IDBFactory } from 'fake-indexeddb'
import { CLIENT } from '../test-support/entries.ts'
import { appendTo, freshIdb } from '../test-support/idb.ts'
import { injectQuota, type QuotaInjection } from '../test-support/quota.ts'
import { isStorageFull, type ClientError } from './errors.ts'

let injection: QuotaInjection | undefined
afterEach(() => injection?.restore())

describe('IndexedDB outbox', () => {
  for (const wrapped of [false, true]) {
    it(`turns a quota error${wrapped ? ' wrapped in an AbortError' : ''} into storage_full with nothing half-written`, async () => {
      const store = await freshIdb()
      await appendTo(store, 1)
      // The second outbox write of a three-entry batch fails: the first must not survive.
      injection = injectQuota({ stores: ['outbox'], wrapped, after: 1 })
      const error = await appendTo(store, 3).catch((e: unknown) => e)
      expect(isStorageFull(error)).toBe(true)
      expect((error as ClientError).kind).toBe('storage_full')
      expect(injection.refused()).toBe(1)
      expect(await store.counters()).toMatchObject({ seqLast: 1, outboxEntries: 1 })
      expect((await store.readOutbox(undefined, 100, 1e9)).length).toBe(1)
      injection.restore()
      // Space freed: the retry succeeds and clientSeq has no gap.
      await appendTo(store, 3)
      expect((await store.readOutbox(undefined, 100, 1e9)).map((r) => r.clientSeq)).toEqual([
        1, 2, 3, 4,
      ])
    })
  }

  it('checks entries again when reading them back from the outbox (pair assertion)', async () => {
    const factory = new IDBFactory()
    const store = await freshIdb(factory)
    await appendTo(store, 1)
    store.close()
    // Corrupt the stored entry behind the client store's back.
    const raw = await new Promise<IDBDatabase>((resolve) => {
      const r = factory.open('db')
      r.onsuccess = () => resolve(r.result)
    })
    await new Promise<void>((resolve) => {
      const tx = raw.transaction('outbox', 'readwrite')
      const os = tx.objectStore('outbox')
      os.get([CLIENT, 1]).onsuccess = (ev) => {
        const rec = (ev.target as IDBRequest).result as { entry: Entry }
        os.put({ ...rec, entry: { ...rec.entry, kind: 'NOT A KIND' } })
      }
      tx.oncomplete = () => resolve()
    })
    raw.close()
    const again = await freshIdb(factory)
    await expect(again.readOutbox(undefined, 10, 1e9)).rejects.toThrow(/kind/)
  })
})

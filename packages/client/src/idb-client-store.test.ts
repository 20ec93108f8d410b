// Goal: the IndexedDB client store passes `runClientStoreContract`, and keeps what only
// IndexedDB can break: nothing half-written on quota errors (direct or wrapped in an
// AbortError), pair assertions on the outbox against records corrupted behind its back, the
// chunks and the staged ledger index, upgrades (layout 1 → 2) that never hang.
// Method: fake-indexeddb, one fresh factory per test, quota errors injected by wrapping the
// object stores' add/put.
import 'fake-indexeddb/auto'
import { afterEach, describe, expect, it } from 'vitest'
import { runClientStoreContract } from '@ledgerline/testkit'
import type { Entry, StoredEntry } from '@ledgerline/core'
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb'
import { injectQuota, type QuotaInjection } from '../test-support/quota.ts'
import { isStorageFull, type ClientError } from './errors.ts'
import type { ClientStore } from './client-store.ts'
import { createIdbClientStore, DB_VERSION } from './idb-client-store.ts'

const CLIENT = 'a'.repeat(32)
const NOW = 1_700_000_000_000
let injection: QuotaInjection | undefined
afterEach(() => injection?.restore())

async function fresh(
  factory = new IDBFactory(),
  closed: (r: string) => void = () => {},
): Promise<ClientStore> {
  const store = await createIdbClientStore({
    indexedDB: factory,
    IDBKeyRange,
    dbName: 'db',
    durability: 'strict',
    onClosed: closed,
  })
  await store.init(() => CLIENT, NOW)
  return store
}

function entry(clientId: string, clientSeq: number, entity = 'stock/a'): Entry {
  return {
    id: `${clientId}-${clientSeq}`,
    tenant: 't1',
    entity,
    kind: 'stock.moved',
    data: { qty: 1 },
    intent: 'fact',
    clientId,
    clientSeq,
    hlc: `${String(NOW).padStart(15, '0')}:${String(clientSeq).padStart(5, '0')}:${clientId}`,
    occurredAt: NOW,
  }
}

const append = (store: ClientStore, count: number, entity = 'stock/a') =>
  store.append(
    (clientId, first) =>
      Array.from({ length: count }, (_, i) => entry(clientId, first + i, entity)),
    { entriesMax: 1000, bytesMax: 1e9 },
    NOW,
    () => 100,
  )

runClientStoreContract('indexeddb', async () => {
  const indexedDB = new IDBFactory()
  return {
    open: () => createIdbClientStore({ indexedDB, IDBKeyRange, dbName: 'contract' }),
    cleanup: async () => {},
  }
})

describe('IndexedDB client store', () => {
  it('allocates gap-free clientSeq and counts the outbox in the same transaction', async () => {
    const store = await fresh()
    await append(store, 3)
    await append(store, 2)
    const out = await store.readOutbox(undefined, 100, 1e9)
    expect(out.map((r) => r.clientSeq)).toEqual([1, 2, 3, 4, 5])
    expect(await store.counters()).toMatchObject({
      clientId: CLIENT,
      seqLast: 5,
      outboxEntries: 5,
      outboxBytes: 500,
      oldestOutboxAt: NOW,
    })
    expect((await store.readOutbox([CLIENT, 3], 100, 1e9)).map((r) => r.clientSeq)).toEqual([4, 5])
    expect((await store.readOutbox(undefined, 100, 250)).length).toBe(2)
  })

  for (const wrapped of [false, true]) {
    it(`turns a quota error${wrapped ? ' wrapped in an AbortError' : ''} into storage_full with nothing half-written`, async () => {
      const store = await fresh()
      await append(store, 1)
      // The second outbox write of a three-entry batch fails: the first must not survive.
      injection = injectQuota({ stores: ['outbox'], wrapped, after: 1 })
      const error = await append(store, 3).catch((e: unknown) => e)
      expect(isStorageFull(error)).toBe(true)
      expect((error as ClientError).kind).toBe('storage_full')
      expect(injection.refused()).toBe(1)
      expect(await store.counters()).toMatchObject({ seqLast: 1, outboxEntries: 1 })
      expect((await store.readOutbox(undefined, 100, 1e9)).length).toBe(1)
      injection.restore()
      // Space freed: the retry succeeds and clientSeq has no gap.
      await append(store, 3)
      expect((await store.readOutbox(undefined, 100, 1e9)).map((r) => r.clientSeq)).toEqual([
        1, 2, 3, 4,
      ])
    })
  }

  it('refuses appends past the outbox limit with outbox_full', async () => {
    const store = await fresh()
    const error = await store
      .append(
        (c, f) => [entry(c, f), entry(c, f + 1)],
        { entriesMax: 1, bytesMax: 1e9 },
        NOW,
        () => 1,
      )
      .catch((e: unknown) => e)
    expect((error as ClientError).kind).toBe('outbox_full')
    expect((await store.counters()).outboxEntries).toBe(0)
  })

  it('checks entries again when reading them back from the outbox (pair assertion)', async () => {
    const factory = new IDBFactory()
    const store = await fresh(factory)
    await append(store, 1)
    store.close()
    // Corrupt the stored entry behind the store's back.
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
    const again = await fresh(factory)
    await expect(again.readOutbox(undefined, 10, 1e9)).rejects.toThrow(/kind/)
  })

  it('stores pages with their cursors once, and loads an entity from its chunks and snapshot', async () => {
    const store = await fresh()
    await store.prepareCursors('t1', 'k', () => true)
    const stored = (seq: number, entity: string, version: number, offset: number): StoredEntry => ({
      ...entry('b'.repeat(32), seq, entity),
      version,
      partition: 2,
      offset,
      committedAt: NOW,
    })
    const page1 = [
      stored(1, 'stock/a', 1, 1),
      stored(2, 'stock/b', 1, 2),
      stored(3, 'stock/a', 2, 3),
    ]
    const r1 = await store.applyPages([{ entries: page1, cursors: { 2: 3 } }], 'k')
    expect(r1.stored).toBe(3)
    expect(r1.stagedKeys).toBe(2)
    // The same page again (a resend) is dropped by the cursor.
    expect((await store.applyPages([{ entries: page1, cursors: { 2: 3 } }], 'k')).stored).toBe(0)
    // Two pages in one write: chunk 2 holds both.
    await store.applyPages(
      [
        { entries: [stored(4, 'stock/a', 3, 4)], cursors: { 2: 4 } },
        { entries: [stored(5, 'stock/b', 2, 5)], cursors: { 2: 5 } },
      ],
      'k',
    )
    const load = await store.loadEntity('stock/a', 'key')
    expect(load.stored.map((e) => e.version)).toEqual([1, 2, 3])
    expect(load.lastChunk).toBe(2)
    // Indexed or staged, an entity loads the same.
    expect(await store.indexPending()).toBe(true)
    expect(await store.indexPending()).toBe(false)
    await store.applyPages([{ entries: [stored(6, 'stock/a', 4, 6)], cursors: { 2: 6 } }], 'k')
    const mixed = await store.loadEntity('stock/a', 'key')
    expect(mixed.stored.map((e) => e.version)).toEqual([1, 2, 3, 4])
    expect((await store.loadEntity('stock/b', 'key')).stored.map((e) => e.version)).toEqual([1, 2])
    await store.putSnapshot({
      entity: 'stock/a',
      version: 2,
      state: { onHand: 2 },
      through: 1,
      typeKey: 'key',
    })
    const fromSnap = await store.loadEntity('stock/a', 'key')
    expect(fromSnap.snapshot?.version).toBe(2)
    expect(fromSnap.stored.map((e) => e.version)).toEqual([3, 4])
    // A snapshot of another fold (changed reduce) is ignored.
    expect((await store.loadEntity('stock/a', 'other')).stored.length).toBe(4)
    expect(await store.prepareCursors('t1', 'k', () => true)).toEqual({ 2: 6 })
    // Another scope starts over.
    expect(await store.prepareCursors('t1', 'k2', () => true)).toEqual({})
    expect((await store.loadEntity('stock/a', 'key', null)).stored.length).toBe(0)
  })

  it('upgrades a layout 1 database: the outbox is kept, history is fetched again', async () => {
    // Goal: the 1 → 2 upgrade path. Method: build a version 1 database by hand (the stores
    // layout 1 created, one outbox record, stored cursors), open it with the current store.
    const factory = new IDBFactory()
    await new Promise<void>((resolve, reject) => {
      const request = factory.open('test', 1)
      request.onupgradeneeded = () => {
        const db = request.result
        db.createObjectStore('meta')
        const outbox = db.createObjectStore('outbox', { keyPath: ['clientId', 'clientSeq'] })
        outbox.createIndex('id', 'id', { unique: true })
        outbox.createIndex('entity', 'entity')
        db.createObjectStore('acked', { keyPath: 'id' }).createIndex('entity', 'entity')
        const pages = db.createObjectStore('pages', { keyPath: ['partition', 'first'] })
        pages.createIndex('entity', 'keys', { multiEntry: true })
        db.createObjectStore('snapshots', { keyPath: 'entity' })
        db.createObjectStore('outcomes', { keyPath: 'id' }).createIndex('n', 'n')
        db.createObjectStore('feed', { keyPath: 'id' }).createIndex('n', 'n')
      }
      request.onerror = () => reject(request.error)
      request.onsuccess = () => {
        const db = request.result
        const tx = db.transaction(['meta', 'outbox', 'pages'], 'readwrite')
        const e = entry(CLIENT, 1, 'stock/a')
        tx.objectStore('meta').put(
          {
            clientId: CLIENT,
            seqLast: 1,
            clientIds: [CLIENT],
            createdAt: NOW,
            outboxEntries: 1,
            outboxBytes: 100,
            correctionsUnseen: 0,
            n: 0,
          },
          'client',
        )
        tx.objectStore('meta').put({ tenant: 't1', scopeKey: 'k', cursors: { 0: 9 } }, 'cursors')
        tx.objectStore('outbox').put({
          clientId: CLIENT,
          clientSeq: 1,
          id: e.id,
          entity: e.entity,
          entry: e,
          bytes: 100,
          at: NOW,
        })
        tx.objectStore('pages').put({ partition: 0, first: 1, last: 9, entries: [], keys: [] })
        tx.oncomplete = () => {
          db.close()
          resolve()
        }
      }
    })
    const store = await createIdbClientStore({
      indexedDB: factory,
      IDBKeyRange,
      dbName: 'test',
      durability: 'strict',
      onClosed: () => {},
    })
    const { meta, created } = await store.init(() => 'c'.repeat(32), NOW)
    expect(created).toBe(false)
    expect(meta.clientId).toBe(CLIENT)
    expect((await store.readOutbox(undefined, 10, 1e9)).map((r) => r.id)).toEqual([
      entry(CLIENT, 1, 'stock/a').id,
    ])
    expect(await store.prepareCursors('t1', 'k', () => true)).toEqual({})
    store.close()
  })

  it('closes itself when a newer version opens, so the upgrade is not blocked', async () => {
    const factory = new IDBFactory()
    const reasons: string[] = []
    await fresh(factory, (r) => reasons.push(r))
    const newer = await createIdbClientStore({
      indexedDB: factory,
      IDBKeyRange,
      dbName: 'db',
      durability: 'strict',
      version: DB_VERSION + 1,
      onClosed: () => {},
    })
    expect(reasons).toEqual(['versionchange'])
    newer.close()
  })

  it('fails with upgrade_blocked instead of hanging when an old tab never closes', async () => {
    const factory = new IDBFactory()
    const raw = await new Promise<IDBDatabase>((resolve) => {
      const r = factory.open('db', 1)
      r.onsuccess = () => resolve(r.result) // no versionchange handler: this "tab" never closes
    })
    const started = Date.now()
    const error = await createIdbClientStore({
      indexedDB: factory,
      IDBKeyRange,
      dbName: 'db',
      durability: 'strict',
      version: DB_VERSION + 1,
      onClosed: () => {},
    }).catch((e: unknown) => e)
    expect((error as ClientError).kind).toBe('upgrade_blocked')
    expect(Date.now() - started).toBeLessThan(10_000)
    raw.close()
  })
})

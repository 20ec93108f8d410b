// Goal: the IndexedDB database opens, upgrades and lets go as it must: a layout 1 database
// keeps its outbox, its confirmed history (pages become chunks), its cursors and snapshots
// (pointed at their chunk; one whose page is gone is dropped) and its tenant (issue 12 case 5);
// a layout 4 database's per-entity bases become base pages (4 → 5) and load as before;
// an older build opening a newer database gets `version` and changes nothing; an open
// connection closes itself when a newer version asks (and says so); an upgrade blocked by a tab
// that never closes fails with `upgrade_blocked` after OPEN_BLOCKED_MS_MAX instead of hanging.
// Method: fake-indexeddb; a version 1 database built by hand; a raw connection that never
// handles `versionchange`; the wait measured on a manual scheduler, not on the wall clock.
import 'fake-indexeddb/auto'
import { describe, expect, it } from 'vitest'
import { IDBFactory } from 'fake-indexeddb'
import { CLIENT, entry, NOW, OTHER, stored } from '../test-support/entries.ts'
import { freshIdb, openIdb } from '../test-support/idb.ts'
import { createManualScheduler, settle } from '../test-support/manual-scheduler.ts'
import { DB_VERSION } from './idb-database.ts'
import type { ClientError } from './errors.ts'
import { BASE_PAGE_ENTRIES_MAX, OPEN_BLOCKED_MS_MAX } from './limits.ts'

/** The object stores layout 1 created besides its `pages`, as every later layout keeps them. */
function layout1Stores(db: IDBDatabase): void {
  db.createObjectStore('meta')
  const outbox = db.createObjectStore('outbox', { keyPath: ['clientId', 'clientSeq'] })
  outbox.createIndex('id', 'id', { unique: true })
  outbox.createIndex('entity', 'entity')
  db.createObjectStore('acked', { keyPath: 'id' }).createIndex('entity', 'entity')
  db.createObjectStore('snapshots', { keyPath: 'entity' })
  db.createObjectStore('outcomes', { keyPath: 'id' }).createIndex('n', 'n')
  db.createObjectStore('feed', { keyPath: 'id' }).createIndex('n', 'n')
}

describe('IndexedDB database', () => {
  it('upgrades a layout 1 database keeping the outbox, history, cursors, snapshots and tenant', async () => {
    // Goal: the 1 → 2 upgrade path. Method: build a version 1 database by hand (the object
    // stores layout 1 created, one outbox record, stored cursors, two pages of history, a
    // snapshot on the second and one on a page that is gone), open it with the current code.
    const factory = new IDBFactory()
    await new Promise<void>((resolve, reject) => {
      const request = factory.open('test', 1)
      request.onupgradeneeded = () => {
        const db = request.result
        layout1Stores(db)
        const pages = db.createObjectStore('pages', { keyPath: ['partition', 'first'] })
        pages.createIndex('entity', 'keys', { multiEntry: true })
      }
      request.onerror = () => reject(request.error)
      request.onsuccess = () => {
        const db = request.result
        const tx = db.transaction(['meta', 'outbox', 'pages', 'snapshots'], 'readwrite')
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
        const history = [1, 2, 3].map((v) => stored(entry(OTHER, v, 'stock/h'), v, 0, v + 6))
        tx.objectStore('pages').put({
          partition: 0,
          first: 7,
          last: 8,
          entries: history.slice(0, 2),
          keys: [['stock/h', 0, 7]],
        })
        tx.objectStore('pages').put({
          partition: 0,
          first: 9,
          last: 9,
          entries: history.slice(2),
          keys: [['stock/h', 0, 9]],
        })
        const old = (entity: string, through: number) => ({
          entity,
          version: 2,
          state: { onHand: 2 },
          partition: 0,
          through,
          typeKey: 'stock:abc:12',
        })
        tx.objectStore('snapshots').put(old('stock/h', 7))
        tx.objectStore('snapshots').put(old('stock/gone', 4))
        tx.oncomplete = () => {
          db.close()
          resolve()
        }
      }
    })
    const store = await openIdb({ factory, dbName: 'test' })
    const { meta, created } = await store.init(() => 'c'.repeat(32), NOW)
    expect(created).toBe(false)
    expect(meta.clientId).toBe(CLIENT)
    expect((await store.readOutbox(undefined, 10, 1e9)).map((r) => r.id)).toEqual([
      entry(CLIENT, 1, 'stock/a').id,
    ])
    // The tenant came along into the meta record; cursors are kept.
    expect(meta.tenant).toBe('t1')
    expect(await store.tenant()).toBe('t1')
    expect(await store.prepareCursors('t1', 'k', () => true)).toEqual({ 0: 9 })
    // History: from version 1, or from the converted snapshot (its chunk), in version order.
    const all = await store.loadEntity('stock/h', 'x', null)
    expect(all.stored.map((e) => e.version)).toEqual([1, 2, 3])
    const fromSnapshot = await store.loadEntity('stock/h', 'stock@1')
    expect(fromSnapshot.snapshot).toMatchObject({ version: 2, state: { onHand: 2 }, through: 1 })
    expect(fromSnapshot.snapshotSource).toBe('stock:abc:12')
    expect(fromSnapshot.stored.map((e) => e.version)).toEqual([3])
    expect((await store.loadEntity('stock/gone', 'stock@1')).snapshot).toBeUndefined()
    // New pages go on after the converted chunks.
    const page = await store.applyPages(
      [{ entries: [stored(entry(OTHER, 4, 'stock/h'), 4, 0, 10)], cursors: { 0: 10 } }],
      'k',
    )
    expect(page.stored).toBe(1)
    expect((await store.loadEntity('stock/h', 'x', null)).stored.map((e) => e.version)).toEqual([
      1, 2, 3, 4,
    ])
    store.close()
  })

  it('upgrades a layout 4 database moving its per-entity bases into base pages', async () => {
    // Goal: the 4 → 5 upgrade path. Method: build a version 4 database by hand (layout 4's
    // object stores, the meta and cursors records, more bases than two pages hold, one history
    // chunk above a base), open it with the current code, read every base back.
    const factory = new IDBFactory()
    const count = 2 * BASE_PAGE_ENTRIES_MAX + 7
    const name = (n: number) => `stock/${String(n).padStart(4, '0')}`
    await new Promise<void>((resolve, reject) => {
      const request = factory.open('test', 4)
      request.onupgradeneeded = () => {
        const db = request.result
        layout1Stores(db)
        db.createObjectStore('chunks', { keyPath: 'n' })
        db.createObjectStore('staged', { keyPath: 'n' })
        db.createObjectStore('ledgers', { keyPath: ['entity', 'last'] })
        db.createObjectStore('views', { keyPath: 'entity' }).createIndex('key', 'keys', {
          multiEntry: true,
        })
        db.createObjectStore('bases', { keyPath: 'entity' })
      }
      request.onerror = () => reject(request.error)
      request.onsuccess = () => {
        const db = request.result
        const tx = db.transaction(['meta', 'bases', 'chunks', 'staged'], 'readwrite')
        tx.objectStore('meta').put(
          {
            clientId: CLIENT,
            seqLast: 0,
            clientIds: [CLIENT],
            createdAt: NOW,
            outboxEntries: 0,
            outboxBytes: 0,
            correctionsUnseen: 0,
            n: 0,
            tenant: 't1',
          },
          'client',
        )
        tx.objectStore('meta').put(
          {
            tenant: 't1',
            scopeKey: 'k',
            cursors: { 0: 20 },
            chunkLast: 1,
            stagedKeys: 1,
            bootstrap: true,
            baseKeys: ['stock@1'],
          },
          'cursors',
        )
        for (let n = 0; n < count; n++) {
          tx.objectStore('bases').put({
            entity: name(n),
            foldKey: 'stock@1',
            version: 3,
            partition: 0,
            offset: n,
            committedAt: NOW,
            state: { onHand: n },
            ...(n === 1 ? { dropped: 2 } : {}),
          })
        }
        const later = stored(entry(OTHER, 4, name(1)), 4, 0, 20)
        tx.objectStore('chunks').put({ n: 1, partition: 0, first: 20, last: 20, entries: [later] })
        tx.objectStore('staged').put({ n: 1, entities: [[name(1), [1]]] })
        tx.oncomplete = () => {
          db.close()
          resolve()
        }
      }
    })
    const store = await openIdb({ factory, dbName: 'test' })
    expect(await store.prepareCursors('t1', 'k', () => true)).toEqual({ 0: 20 })
    const got = []
    for (let n = 0; n < count; n++) {
      const base = (await store.loadHistory(name(n))).base
      got.push(base && [base.entity, base.version, (base.state as { onHand: number }).onHand])
    }
    expect(got).toEqual(Array.from({ length: count }, (_, n) => [name(n), 3, n]))
    expect((await store.loadHistory(name(1))).base?.dropped).toBe(2)
    const load = await store.loadEntity(name(1), 'stock@1')
    expect(load.snapshot).toMatchObject({ version: 3, state: { onHand: 1 } })
    expect(load.stored.map((e) => e.version)).toEqual([4])
    expect((await store.loadHistory(name(count))).base).toBeUndefined()
    store.close()
    // The layout: `bases` is gone, its records are three pages of sorted names.
    const raw = await new Promise<IDBDatabase>((resolve, reject) => {
      const request = factory.open('test')
      request.onsuccess = () => resolve(request.result)
      request.onerror = () => reject(request.error)
    })
    expect(raw.version).toBe(DB_VERSION)
    expect([...raw.objectStoreNames]).not.toContain('bases')
    const pages = await new Promise<{ first: string; last: string; bases: unknown[] }[]>(
      (resolve, reject) => {
        const request = raw.transaction('basePages').objectStore('basePages').getAll()
        request.onsuccess = () => resolve(request.result)
        request.onerror = () => reject(request.error)
      },
    )
    raw.close()
    expect(pages.map((p) => [p.first, p.last, p.bases.length])).toEqual([
      [name(0), name(BASE_PAGE_ENTRIES_MAX - 1), BASE_PAGE_ENTRIES_MAX],
      [name(BASE_PAGE_ENTRIES_MAX), name(2 * BASE_PAGE_ENTRIES_MAX - 1), BASE_PAGE_ENTRIES_MAX],
      [name(2 * BASE_PAGE_ENTRIES_MAX), name(count - 1), 7],
    ])
  })

  it('refuses a newer database to an older build with kind version, and changes nothing', async () => {
    const factory = new IDBFactory()
    const newer = await openIdb({ factory, dbName: 'db', version: DB_VERSION + 1 })
    newer.close()
    const error = (await openIdb({ factory, dbName: 'db' }).catch((e: unknown) => e)) as ClientError
    expect(error.kind).toBe('version')
    expect(error.message).toContain(`layout ${DB_VERSION + 1}`)
    const version = await new Promise<number>((resolve) => {
      const r = factory.open('db')
      r.onsuccess = () => (resolve(r.result.version), r.result.close())
    })
    expect(version).toBe(DB_VERSION + 1)
  })

  it('closes itself when a newer version opens, so the upgrade is not blocked', async () => {
    const factory = new IDBFactory()
    const reasons: string[] = []
    await openIdb({ factory, onClosed: (r) => reasons.push(r) })
    const newer = await openIdb({ factory, version: DB_VERSION + 1 })
    expect(reasons).toEqual(['versionchange'])
    newer.close()
    // A closed client store refuses to work on.
    const old = await freshIdb(new IDBFactory())
    old.close()
    await expect(old.counters()).rejects.toMatchObject({ kind: 'closed' })
  })

  it('fails with upgrade_blocked after OPEN_BLOCKED_MS_MAX instead of hanging when an old tab never closes', async () => {
    const factory = new IDBFactory()
    const raw = await new Promise<IDBDatabase>((resolve) => {
      const r = factory.open('db', 1)
      r.onsuccess = () => resolve(r.result) // no versionchange handler: this "tab" never closes
    })
    const scheduler = createManualScheduler()
    let outcome: unknown
    void openIdb({ factory, version: DB_VERSION + 1, scheduler }).then(
      (store) => ((outcome = 'opened'), store.close()),
      (e: unknown) => (outcome = e),
    )
    await settle()
    await scheduler.advance(OPEN_BLOCKED_MS_MAX - 1)
    expect(outcome).toBeUndefined()
    await scheduler.advance(1)
    await settle()
    expect((outcome as ClientError).kind).toBe('upgrade_blocked')
    raw.close()
    await settle()
  })
})

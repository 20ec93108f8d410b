// Goal: the IndexedDB database opens, upgrades and lets go as it must: a layout 1 database
// keeps its outbox and fetches history again; an open connection closes itself when a newer
// version asks (and says so); an upgrade blocked by a tab that never closes fails with
// `upgrade_blocked` after OPEN_BLOCKED_MS_MAX instead of hanging.
// Method: fake-indexeddb; a version 1 database built by hand; a raw connection that never
// handles `versionchange`; the wait measured on a manual scheduler, not on the wall clock.
import 'fake-indexeddb/auto'
import { describe, expect, it } from 'vitest'
import { IDBFactory } from 'fake-indexeddb'
import { CLIENT, entry, NOW } from '../test-support/entries.ts'
import { freshIdb, openIdb } from '../test-support/idb.ts'
import { createManualScheduler, settle } from '../test-support/manual-scheduler.ts'
import { DB_VERSION } from './idb-database.ts'
import type { ClientError } from './errors.ts'
import { OPEN_BLOCKED_MS_MAX } from './limits.ts'

describe('IndexedDB database', () => {
  it('upgrades a layout 1 database: the outbox is kept, history is fetched again', async () => {
    // Goal: the 1 → 2 upgrade path. Method: build a version 1 database by hand (the object
    // stores layout 1 created, one outbox record, stored cursors), open it with the current code.
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
    const store = await openIdb({ factory, dbName: 'test' })
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

// Goal: issue 12 case 5 — the IndexedDB layout upgrade 1 → 2, applied offline (a PWA update),
// keeps confirmed history, cursors and the tenant: views show the confirmed state at once and
// `append` without an explicit tenant works with no token at hand; and an older bundle opening a
// newer database (a stale service worker) gets a typed error and touches nothing.
// Method: the relay's log holds three stock moves of the till (appended through the store). A
// layout-1 database is built by hand from layout 1's definition (the store list of `upgrade()`'s
// `oldVersion < 1` block; record shapes from `git show d361990^:packages/client/src/idb-store.ts`):
// meta 'client' and 'cursors' (tenant, scope, cursors), one `pages` record holding the three
// entries, their outcomes, and one unsent sale in the outbox. The client opens it offline with a
// token function that fails (no network), then goes online.
import 'fake-indexeddb/auto'
import { afterEach, describe, expect, it } from 'vitest'
import { IDBFactory } from 'fake-indexeddb'
import { partitionOf } from '@ledgerline/core'
import type { Entry, StoredEntry } from '@ledgerline/core'
import { encodeMessage } from '@ledgerline/protocol'
import { TENANT, useEdgeServers } from '../test-support/edge-relay.ts'
import type { EdgeServer } from '../test-support/edge-relay.ts'
import { dumpDatabase } from '../test-support/idb-copy.ts'
import { makeClient } from '../test-support/setup.ts'
import { createWireSpy } from '../test-support/wire-spy.ts'
import { ClientError, DB_VERSION } from './index.ts'

const TILL = 'ab'.repeat(16)
const BEANS = 'stock/s1:beans'
const SCOPE_KEY = JSON.stringify(['*'])

const startEdgeServer = useEdgeServers()
const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

describe('issue 12 case 5: IndexedDB layout upgrades keep data', () => {
  it('upgrades a layout-1 database offline keeping confirmed history, cursors and tenant', async () => {
    const server = await startEdgeServer('sqlite')
    const stored = await historyOnTheRelay(server)
    const idb = new IDBFactory()
    await buildLayout1(idb, 'till', stored)

    server.proxy.setOnline(false)
    let online = false
    const spy = createWireSpy()
    const till = server.open({
      // Offline, the app cannot fetch a token: a real token function fails like this.
      token: () => (online ? server.token() : Promise.reject(new Error('offline: no token'))),
      idb,
      WebSocket: spy.WebSocket,
    })
    const snap = await till.load<{ onHand: number }>(BEANS)
    expect(snap.confirmed).toEqual({ onHand: 3 })
    expect(snap.version).toBe(3)
    expect(snap.view).toEqual({ onHand: 5 }) // plus the unsent sale of +2
    const sold = await till.append(BEANS, 'stock.moved', { qty: 1 })
    expect(sold.tenant).toBe(TENANT)
    expect(sold.clientSeq).toBe(5)

    online = true
    server.proxy.setOnline(true)
    till.reconnect()
    expect(await till.synced({ timeoutMs: 30_000 })).toEqual({ _tag: 'synced' })
    const ledger = await server.entries(BEANS)
    expect(ledger.map((e) => e.id)).toEqual([1, 2, 3, 4, 5].map((seq) => `${TILL}-${seq}`))
    const after = await till.load<{ onHand: number }>(BEANS)
    expect(after.confirmed).toEqual({ onHand: 6 })
    expect(after.version).toBe(5)
    // The cursors came through the upgrade: the first subscription resumed after the history
    // the database already held instead of fetching it again.
    const p = partitionOf(TENANT, BEANS, server.relay.store.partitions)
    const first = spy.sent.find((f) => f.type === 'subscribe')
    expect((first?.message.cursors as Record<number, number> | undefined)?.[p]).toBe(3)
  })

  it('gives an older bundle opening a newer database a typed version error and touches nothing', async () => {
    const idb = new IDBFactory()
    const newer = DB_VERSION + 1
    await new Promise<void>((resolve, reject) => {
      const request = idb.open('till', newer)
      request.onerror = () => reject(request.error)
      request.onupgradeneeded = () => {
        request.result.createObjectStore('future').put({ kept: true }, 'record')
      }
      request.onsuccess = () => {
        request.result.close()
        resolve()
      }
    })
    const stale = makeClient({ url: 'ws://127.0.0.1:9/sync', token: 'x', idb, dbName: 'till' })
    cleanups.push(() => stale.close())
    const error = await stale.append(BEANS, 'stock.moved', { qty: 1 }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ClientError)
    expect((error as ClientError).kind).toBe('version')
    expect((error as ClientError).message).toContain(String(DB_VERSION))
    expect((error as ClientError).message).toContain(String(newer))
    const image = await dumpDatabase(idb, 'till')
    expect(image.version).toBe(newer)
    expect(image.stores.map((s) => [s.name, s.records])).toEqual([
      ['future', [['record', { kept: true }]]],
    ])
  })
})

/** Three moves of the till in the relay's log (5, -1, -1): the confirmed history. */
async function historyOnTheRelay(server: EdgeServer): Promise<StoredEntry[]> {
  const results = await server.relay.store.append(
    TENANT,
    [5, -1, -1].map((qty, i) => ({ entry: tillEntry(i + 1, qty) })),
  )
  expect(results.map((r) => r.status)).toEqual(['appended', 'appended', 'appended'])
  return server.entries(BEANS)
}

function tillEntry(seq: number, qty: number): Entry {
  return {
    id: `${TILL}-${seq}`,
    tenant: TENANT,
    entity: BEANS,
    kind: 'stock.moved',
    data: { qty },
    intent: 'fact',
    clientId: TILL,
    clientSeq: seq,
    hlc: `${String(1_700_000_000_000 + seq).padStart(15, '0')}:00000:${TILL}`,
    occurredAt: 1_700_000_000_000 + seq,
  }
}

/** Database version 1 as Ledgerline 0.1.0 wrote it, holding `stored` and one unsent sale. */
async function buildLayout1(idb: IDBFactory, name: string, stored: StoredEntry[]): Promise<void> {
  const last = stored.at(-1) as StoredEntry
  const unsent = tillEntry(4, 2)
  const bytes = encodeMessage({ type: 'push', batch: 0, entries: [unsent] }).byteLength
  const db = await new Promise<IDBDatabase>((resolve, reject) => {
    const request = idb.open(name, 1)
    request.onerror = () => reject(request.error)
    request.onupgradeneeded = () => {
      const d = request.result
      const meta = d.createObjectStore('meta')
      const outbox = d.createObjectStore('outbox', { keyPath: ['clientId', 'clientSeq'] })
      outbox.createIndex('id', 'id', { unique: true })
      outbox.createIndex('entity', 'entity')
      d.createObjectStore('acked', { keyPath: 'id' }).createIndex('entity', 'entity')
      d.createObjectStore('pages', { keyPath: ['partition', 'first'] }).createIndex(
        'entity',
        'keys',
        { multiEntry: true },
      )
      d.createObjectStore('snapshots', { keyPath: 'entity' })
      d.createObjectStore('outcomes', { keyPath: 'id' }).createIndex('n', 'n')
      d.createObjectStore('feed', { keyPath: 'id' }).createIndex('n', 'n')
      meta.put(
        {
          clientId: TILL,
          seqLast: 4,
          clientIds: [TILL],
          createdAt: 1_700_000_000_000,
          outboxEntries: 1,
          outboxBytes: bytes,
          correctionsUnseen: 0,
          n: stored.length,
        },
        'client',
      )
      meta.put(
        { tenant: TENANT, scopeKey: SCOPE_KEY, cursors: { [last.partition]: last.offset } },
        'cursors',
      )
    }
    request.onsuccess = () => resolve(request.result)
  })
  const tx = db.transaction(['pages', 'outcomes', 'outbox'], 'readwrite')
  tx.objectStore('pages').put({
    partition: last.partition,
    first: (stored[0] as StoredEntry).offset,
    last: last.offset,
    entries: stored,
    keys: [[BEANS, last.partition, (stored[0] as StoredEntry).offset]],
  })
  stored.forEach((e, i) =>
    tx.objectStore('outcomes').put({
      id: e.id,
      n: i + 1,
      outcome: {
        _tag: 'appended',
        version: e.version,
        partition: e.partition,
        offset: e.offset,
        committedAt: e.committedAt,
      },
    }),
  )
  tx.objectStore('outbox').put({
    clientId: TILL,
    clientSeq: 4,
    id: unsent.id,
    entity: BEANS,
    entry: unsent,
    bytes,
    at: 1_700_000_000_004,
  })
  await new Promise<void>((resolve, reject) => {
    tx.oncomplete = () => resolve()
    tx.onerror = () => reject(tx.error)
  })
  db.close()
}

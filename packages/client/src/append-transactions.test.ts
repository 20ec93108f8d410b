// Goal: `append` and `appendMany` cost ONE readwrite transaction (durability strict) and
// nothing else until they resolve, offline and online; online, the drain reads the outbox in
// batches rather than once per append.
// Method: wrap fake-indexeddb's `IDBDatabase.prototype.transaction` to log every transaction
// (stores, mode, durability), then append against a real relay (in-process, loopback).
import 'fake-indexeddb/auto'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { startRelay, type TestRelay } from '../test-support/relay.ts'
import { eventually, makeClient, seededRandom, testSeed } from '../test-support/setup.ts'
import type { Client } from './client.ts'

interface Logged {
  readonly stores: string
  readonly mode: string
  readonly durability: string
}
const log: Logged[] = []
/** The stores a load of an entity reads (`loadEntity`). */
const LOAD_STORES = 'chunks,staged,ledgers,outbox,acked,snapshots'
const proto = globalThis.IDBDatabase.prototype
const original = proto.transaction
let server: TestRelay
const clients: Client[] = []

beforeAll(async () => {
  server = await startRelay()
  proto.transaction = function (this: IDBDatabase, names, mode, options) {
    log.push({
      stores: [names].flat().join(','),
      mode: mode ?? 'readonly',
      durability: options?.durability ?? 'default',
    })
    return original.call(this, names, mode, options)
  } as typeof proto.transaction
})
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close()
})
afterAll(async () => {
  proto.transaction = original
  await server.close()
})

function client(name: string, url: string): Client {
  const c = makeClient({ url, token: () => server.token(), random: seededRandom(testSeed(name)) })
  clients.push(c)
  return c
}

describe('transactions per append', () => {
  it('offline: one strict readwrite transaction per append and per appendMany', async () => {
    const c = client('tx-offline', 'ws://127.0.0.1:1/sync')
    await c.append('stock/s1:beans', 'stock.moved', { qty: 1 })
    await new Promise((r) => setTimeout(r, 50))
    // Readonly status refreshes run in the background (after each failed connection attempt)
    // and may land inside the window; the append never waits for them. What the append itself
    // costs is the readwrite transactions.
    const writes = () => log.filter((t) => t.mode !== 'readonly')
    for (let i = 0; i < 20; i++) {
      log.length = 0
      await c.append('stock/s1:beans', 'stock.moved', { qty: 1 })
      expect(writes()).toEqual([{ stores: 'meta,outbox', mode: 'readwrite', durability: 'strict' }])
    }
    log.length = 0
    const drafts = Array.from({ length: 100 }, (_, i) => ({
      entity: `stock/s1:item-${i % 7}`,
      kind: 'stock.moved',
      data: { qty: 1 },
    }))
    await c.appendMany(drafts)
    // The 7 entities nothing had loaded are loaded inside the append's own transaction (own
    // writes readable at once): no load transaction of its own, and every one is readable.
    expect(log).not.toContainEqual(expect.objectContaining({ stores: LOAD_STORES }))
    expect(writes()).toEqual([
      {
        stores: 'meta,outbox,chunks,staged,ledgers,acked,snapshots,basePages',
        mode: 'readwrite',
        durability: 'strict',
      },
    ])
    for (let i = 0; i < 7; i++) {
      const state = c.get<{ onHand: number }>(`stock/s1:item-${i}`)
      expect(state.loaded).toBe(true)
      expect(state.pending.length).toBe(i < 2 ? 15 : 14)
    }
    expect(c.status().outboxEntries).toBe(121)
  })

  it('online: appends back to back add no transaction of their own, and the drain batches its reads', async () => {
    const c = client('tx-online', `ws://127.0.0.1:${server.relay.port}/sync`)
    await c.append('stock/s1:beans', 'stock.moved', { qty: 1 })
    await eventually(async () => (await c.synced({ timeoutMs: 1 }))._tag === 'synced')
    log.length = 0
    const appends = 100
    for (let i = 0; i < appends; i++) {
      const before = log.length
      await c.append('stock/s1:beans', 'stock.moved', { qty: 1 })
      const own = log.slice(before).filter((t) => t.durability === 'strict')
      expect(own).toEqual([{ stores: 'meta,outbox', mode: 'readwrite', durability: 'strict' }])
    }
    expect((await c.synced({ timeoutMs: 20_000 }))._tag).toBe('synced')
    const count = (pred: (t: Logged) => boolean) => log.filter(pred).length
    const summary = {
      appends: count((t) => t.durability === 'strict'),
      outboxReads: count((t) => t.stores === 'outbox' && t.mode === 'readonly'),
      counterReads: count((t) => t.stores === 'meta,outbox,acked' && t.mode === 'readonly'),
      loads: count((t) => t.stores === LOAD_STORES),
      ackWrites: count((t) => t.stores === 'meta,outbox,acked,outcomes'),
      total: log.length,
    }
    process.stdout.write(`[transactions] ${appends} appends online: ${JSON.stringify(summary)}\n`)
    expect(summary.appends).toBe(appends)
  })
})

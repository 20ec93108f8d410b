// Goal: the register's read model lists a day's orders through the orders' `dayTime` index
// (a `query`), newest first, own pending sales included, another day's orders left out; the
// day ledger still carries the money totals the report reads.
// Method: a client of the demo schema on an in-memory client store, offline (its relay URL
// answers nothing); sales rung up with `saleDrafts` on two days, in a known time order; the
// read model's external store read once it settles.
import { afterEach, describe, expect, it } from 'vitest'
import { createClient, createMemoryClientStore, type Client } from '@ledgerline/client'
import { saleDrafts } from './sale.ts'
import schema from './schema.ts'
import type { StoreData } from './store-data.ts'

// The read model's module names the register's socket class, which extends the browser's
// WebSocket when it loads: Node 20 has none, so a class that makes no socket stands in (the
// client reports `socket` and stays offline, which this test wants).
class NoSocket {
  constructor() {
    throw new Error('no sockets in this test')
  }
}
;(globalThis as { WebSocket?: unknown }).WebSocket ??= NoSocket
const { createStoreDataStore, storeLayerSales } = await import('./store-data.ts')

const session = { store: 's1', register: 'r2' }
const TOKEN = 'x.eyJ0ZW5hbnQiOiJ0MSJ9.y' // payload {"tenant":"t1"}
const clients: Client[] = []
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close()
})

describe('store data', () => {
  it('lists the orders of the day, newest first, from the dayTime index', async () => {
    const client = createClient({
      url: 'ws://127.0.0.1:9/sync',
      token: TOKEN,
      schema,
      dbName: 'store-data',
      clientStore: async (init) => createMemoryClientStore({ schema: init.schema }),
      locks: null,
      BroadcastChannel: null,
      persist: false,
      now: () => now,
    })
    clients.push(client)
    let now = 1_000
    const ring = async (orderId: string, date: string, total: number) => {
      now += 1_000
      await client.appendMany(
        saleDrafts({
          session,
          orderId,
          date,
          lines: [{ sku: 'espresso-1kg', name: 'Espresso', qty: 1, unitPrice: total }],
          totals: { subtotal: total, discount: 0, total },
          discountPercent: 0,
          tenders: [{ method: 'cash', amount: total, tendered: total }],
        }),
      )
    }
    await ring('s1-r2-a', '2026-12-01', 500)
    await ring('s1-r2-b', '2026-12-02', 700)
    await ring('s1-r2-c', '2026-12-01', 900)
    const store = createStoreDataStore(client, session, '2026-12-01')
    const data = await new Promise<StoreData>((resolve) => {
      const check = () => {
        const d = store.getSnapshot()
        if (d !== undefined && d.orders.size > 0) resolve(d)
      }
      store.subscribe(check)
      check()
    })
    expect([...data.orders.keys()]).toEqual(['s1-r2-c', 's1-r2-a'])
    expect(data.orders.get('s1-r2-a')?.view.day).toBe('s1:2026-12-01')
    // Money stays on the day ledger, as entries: the report's totals.
    expect(data.day.view.registers.r2?.sales).toBe(2)
  })

  it("counts the other registers' sales the store hub holds, from the day's store layer", () => {
    // Goal: the status bar's "store not at head office" adds what the hub holds of others.
    const sale = (total: unknown) => ({ kind: 'day.sale', data: { total } })
    const day = { store: [sale(500), { kind: 'day.refund', data: { total: 100 } }, sale(250)] }
    expect(storeLayerSales({ day } as unknown as StoreData)).toEqual({ count: 2, amount: 750 })
    expect(storeLayerSales({ day: { store: [] } } as unknown as StoreData)).toEqual({
      count: 0,
      amount: 0,
    })
  })
})

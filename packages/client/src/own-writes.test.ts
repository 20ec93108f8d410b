// Goal: an own write is readable at once (issue 20 case 3): when `append` (or `appendMany`)
// resolves, `get()` of the entity it wrote shows the pending entry, loaded and folded into the
// view, although nothing had loaded that entity before; an entity loaded before gets it too.
// Method: a client offline (its relay URL answers nothing) on fake-indexeddb; `get` right after
// the append, with no `load` and no wait in between.
import { afterEach, describe, expect, it } from 'vitest'
import { makeClient } from '../test-support/setup.ts'
import type { Client } from './client-api.ts'

const OFFLINE = 'ws://127.0.0.1:9/sync'
const TOKEN = 'x.eyJ0ZW5hbnQiOiJ0MSJ9.y' // payload {"tenant":"t1"}
const clients: Client[] = []
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close()
})

function client(): Client {
  const c = makeClient({ url: OFFLINE, token: TOKEN })
  clients.push(c)
  return c
}

describe('own writes', () => {
  it('get() right after append() shows the pending entry of an entity never loaded', async () => {
    const c = client()
    const entry = await c.append('stock/s1:beans', 'stock.moved', { qty: 5 })
    const state = c.get<{ onHand: number }>('stock/s1:beans')
    expect(state.loaded).toBe(true)
    expect(state.view).toEqual({ onHand: 5 })
    expect(state.confirmed).toEqual({ onHand: 0 })
    expect(state.pending.map((e) => e.id)).toEqual([entry.id])
  })

  it('appendMany primes every entity it wrote, and a loaded entity folds the new entry', async () => {
    const c = client()
    await c.load('stock/s1:milk')
    const entries = await c.appendMany([
      { entity: 'stock/s1:milk', kind: 'stock.moved', data: { qty: 2 } },
      { entity: 'order/o1', kind: 'order.line', data: {} },
      { entity: 'order/o1', kind: 'order.line', data: {} },
    ])
    expect(c.get('stock/s1:milk')).toMatchObject({ loaded: true, view: { onHand: 2 } })
    const order = c.get<{ lines: number }>('order/o1')
    expect(order).toMatchObject({ loaded: true, view: { lines: 2 } })
    expect(order.pending.map((e) => e.id)).toEqual(entries.slice(1).map((e) => e.id))
  })
})

// Goal: the store layer holds other devices' entries in hub order per entity, never own ones,
// each id once, within STORE_LAYER_ENTRIES_MAX; it answers which entities changed; and it
// travels to other tabs in bounded messages.
// Method: the layer on its own, with entries made by hand.
import { describe, expect, it } from 'vitest'
import type { Entry } from '@ledgerline/core'
import { STORE_LEAVING_MS } from './limits.ts'
import { createStoreLayer, storeTabMessages } from './store-layer.ts'

const OWN = 'a'.repeat(32)
const R2 = 'b'.repeat(32)
const entry = (clientId: string, clientSeq: number, entity = 'stock/s1:grinder'): Entry => ({
  id: `${clientId}-${clientSeq}`,
  tenant: 't1',
  entity,
  kind: 'stock.moved',
  data: { qty: -1 },
  intent: 'fact',
  clientId,
  clientSeq,
  hlc: `000000000000001:${String(clientSeq).padStart(5, '0')}:${clientId}`,
  occurredAt: 1,
})
const store = (entries: Entry[], removed: string[] = [], reset = false) =>
  ({ type: 'store', sub: 1, entries, removed, reset }) as const

describe('store layer', () => {
  it('adds in hub order, skips own entries and repeats, removes by id, resets', () => {
    const layer = createStoreLayer()
    const [e1, e2, e3] = [entry(R2, 1), entry(R2, 2), entry(R2, 3, 'order/o1')]
    expect([...layer.apply(store([e1, entry(OWN, 1), e3]), [OWN])].sort()).toEqual([
      'order/o1',
      'stock/s1:grinder',
    ])
    const before = layer.entries('stock/s1:grinder')
    expect(layer.apply(store([e1]), [OWN]).size).toBe(0)
    // Unchanged entity: the same array (the cache compares by identity).
    expect(layer.entries('stock/s1:grinder')).toBe(before)
    layer.apply(store([e2]), [OWN])
    expect(layer.entries('stock/s1:grinder').map((e) => e.id)).toEqual([e1.id, e2.id])
    expect([...layer.confirmed([e1.id, 'nope'])]).toEqual(['stock/s1:grinder'])
    expect(layer.entries('stock/s1:grinder').map((e) => e.id)).toEqual([e2.id])
    expect([...layer.apply(store([e1], [e2.id, e3.id], true), [OWN])].sort()).toEqual([
      'order/o1',
      'stock/s1:grinder',
    ])
    expect(layer.all().map(([entity, list]) => [entity, list.length])).toEqual([
      ['stock/s1:grinder', 1],
    ])
    expect([...layer.clear()]).toEqual(['stock/s1:grinder'])
    expect(layer.size()).toBe(0)
  })

  it('keeps an entry the hub removed until its page is stored or STORE_LEAVING_MS passed', () => {
    // Goal: a hub telling the removal before the page never makes a view miss the entry.
    const layer = createStoreLayer()
    const [e1, e2] = [entry(R2, 1), entry(R2, 2)]
    layer.apply(store([e1, e2]), [OWN], 1_000)
    expect(layer.apply(store([], [e1.id, e2.id]), [OWN], 1_000).size).toBe(0)
    expect(layer.entries('stock/s1:grinder')).toHaveLength(2)
    expect(layer.nextExpiry()).toBe(1_000 + STORE_LEAVING_MS)
    // e1's page is stored: it goes at once; e2 (refused at head office) goes when due.
    expect([...layer.confirmed([e1.id])]).toEqual(['stock/s1:grinder'])
    expect(layer.expire(1_000 + STORE_LEAVING_MS - 1).size).toBe(0)
    expect(layer.entries('stock/s1:grinder').map((e) => e.id)).toEqual([e2.id])
    expect([...layer.expire(1_000 + STORE_LEAVING_MS)]).toEqual(['stock/s1:grinder'])
    expect(layer.size()).toBe(0)
    expect(layer.nextExpiry()).toBeUndefined()
  })

  it('keeps at most its limit, dropping the oldest first', () => {
    const layer = createStoreLayer(3)
    layer.apply(store([1, 2, 3, 4, 5].map((n) => entry(R2, n))), [])
    expect(layer.size()).toBe(3)
    expect(layer.entries('stock/s1:grinder').map((e) => e.clientSeq)).toEqual([3, 4, 5])
  })

  it('goes to other tabs in messages of at most the limit, the first one marked whole', () => {
    const lists = [
      ['stock/a', [1, 2, 3].map((n) => entry(R2, n, 'stock/a'))],
      ['stock/b', [4, 5].map((n) => entry(R2, n, 'stock/b'))],
      ['stock/c', [6, 7, 8, 9, 10].map((n) => entry(R2, n, 'stock/c'))],
    ] as const
    const messages = storeTabMessages(lists, true, 4)
    expect(
      messages.map((m) => (m.t === 'store' ? [m.whole, m.entities.map((e) => e[1].length)] : null)),
    ).toEqual([
      [true, [3]],
      [false, [2]],
      [false, [4]],
    ])
    // An empty layer still says so, so other tabs drop theirs.
    expect(storeTabMessages([], true)).toEqual([{ t: 'store', entities: [], whole: true }])
    expect(storeTabMessages([], false)).toEqual([])
    // A replaced list on the other side: exactly what was sent.
    const copy = createStoreLayer()
    for (const m of messages)
      if (m.t === 'store') for (const [e, l] of m.entities) copy.replace(e, l)
    expect(copy.entries('stock/c').map((e) => e.clientSeq)).toEqual([7, 8, 9, 10])
  })
})

/**
 * The cases of `runClientStoreContract` about kept views (client store guarantee 10): view
 * records of a type that declares `indexes` change in the same write as the entries they fold
 * (appends, acks, pages, a scope change), a refused write changes none, `queryViews` answers in
 * key order (numbers before strings, then entity name; reversed when descending) within a range
 * and a limit, and `prepareViews` rebuilds a type whose definition changed.
 */
import { expect, it } from 'vitest'
import type { Entry, Schema } from '@ledgerline/core'
import { defineEntity, defineSchema } from '@ledgerline/core'
import type { ClientStore, ViewQuery } from '@ledgerline/client'
import { ack, append, appended, kindOf, NOW, other, size, stored } from './client-store-fixtures.ts'

type Stock = { readonly onHand: number }

/** Stock with two indexes: its count, and a parity key only even counts have. */
function stockSchema(version = 1, parity = 'even'): Schema {
  const stock = defineEntity({
    type: 'stock',
    initial: { onHand: 0 } as Stock,
    reduce: (s: Stock, e) =>
      e.kind === 'stock.moved' ? { onHand: s.onHand + (e.data.qty as number) } : s,
    indexes: {
      onHand: (s: Stock) => s.onHand,
      parity:
        parity === 'even'
          ? (s: Stock) => (s.onHand % 2 === 0 ? 'even' : null)
          : (s: Stock) => (s.onHand % 2 === 1 ? 'odd' : null),
    },
    version,
  })
  return defineSchema(stock)
}

const BY_COUNT: ViewQuery = { type: 'stock', index: 'onHand', direction: 'asc', limit: 100 }

async function counts(store: ClientStore, query: Partial<ViewQuery> = {}) {
  const records = await store.queryViews({ ...BY_COUNT, ...query })
  return records.map((r) => [r.entity, (r.view as Stock).onHand, r.version])
}

/**
 * @example
 * describe('ClientStore contract: memory', () => { registerViewCases(open) })
 */
export function registerViewCases(open: (schema?: Schema) => Promise<ClientStore>): void {
  it('keeps the view of an appended entity in the append write, and a refused append changes none', async () => {
    const store = await open(stockSchema())
    expect(await store.prepareViews()).toEqual(['stock'])
    await append(store, 3, 'stock/a')
    await append(store, 1, 'stock/b')
    expect(await counts(store)).toEqual([
      ['stock/b', 1, 0],
      ['stock/a', 3, 0],
    ])
    const full = await store
      .append(
        (c, f) => [{ ...other(1, 'stock/b'), clientId: c, clientSeq: f, id: `${c}-${f}` }],
        { entriesMax: 4, bytesMax: 1e9 },
        NOW,
        size,
      )
      .catch((e: unknown) => e)
    expect(kindOf(full)).toBe('outbox_full')
    expect(await counts(store)).toEqual([
      ['stock/b', 1, 0],
      ['stock/a', 3, 0],
    ])
  })

  it('folds pages into confirmed state with own pending entries on top, in the page write', async () => {
    const store = await open(stockSchema())
    await store.prepareViews()
    await store.prepareCursors('t1', 'k', () => true)
    const { entries } = await append(store, 2, 'stock/a')
    const [e1, e2] = entries as [Entry, Entry]
    await store.applyPages([{ entries: [stored(other(1, 'stock/a'), 1, 0, 1)], cursors: {} }], 'k')
    expect(await counts(store)).toEqual([['stock/a', 3, 1]]) // 1 confirmed, 2 pending
    // e1 acked and received back: confirmed; e2 refused: gone from the view.
    await store.applyAck([ack(e1, appended(2, 0, 2))], () => true)
    await store.applyPages([{ entries: [stored(e1, 2, 0, 2)], cursors: {} }], 'k')
    expect(await counts(store)).toEqual([['stock/a', 3, 2]])
    await store.applyAck(
      [ack(e2, { id: e2.id, status: 'refused', code: 'invariant', reason: 'no', head: 2 })],
      () => true,
    )
    expect(await counts(store)).toEqual([['stock/a', 2, 2]])
    // A page for another entity only: a record of its own, confirmed only.
    await store.applyPages([{ entries: [stored(other(2, 'stock/z'), 1, 1, 1)], cursors: {} }], 'k')
    expect(await counts(store)).toEqual([
      ['stock/z', 1, 1],
      ['stock/a', 2, 2],
    ])
  })

  it('answers ranges, limits and both directions in key order, ties by entity name', async () => {
    const store = await open(stockSchema())
    await store.prepareViews()
    for (const [entity, n] of [
      ['stock/c', 2],
      ['stock/a', 2],
      ['stock/b', 1],
      ['stock/d', 4],
    ] as const)
      await append(store, n, entity)
    expect((await counts(store)).map((r) => r[0])).toEqual([
      'stock/b',
      'stock/a',
      'stock/c',
      'stock/d',
    ])
    expect((await counts(store, { direction: 'desc' })).map((r) => r[0])).toEqual([
      'stock/d',
      'stock/c',
      'stock/a',
      'stock/b',
    ])
    const two = { value: 2, open: false }
    expect((await counts(store, { lower: two, upper: two })).map((r) => r[0])).toEqual([
      'stock/a',
      'stock/c',
    ])
    expect((await counts(store, { lower: { value: 2, open: true } })).map((r) => r[0])).toEqual([
      'stock/d',
    ])
    expect((await counts(store, { upper: { value: 2, open: true } })).map((r) => r[0])).toEqual([
      'stock/b',
    ])
    expect((await counts(store, { limit: 2, direction: 'desc' })).map((r) => r[0])).toEqual([
      'stock/d',
      'stock/c',
    ])
    expect(
      (await counts(store, { match: (e) => e !== 'stock/a', limit: 2 })).map((r) => r[0]),
    ).toEqual(['stock/b', 'stock/c'])
    // A key only some views have; no index: every record by entity name.
    expect(
      (
        await counts(store, {
          index: 'parity',
          lower: { value: 'even', open: false },
          upper: { value: 'even', open: false },
        })
      ).map((r) => r[0]),
    ).toEqual(['stock/a', 'stock/c', 'stock/d'])
    expect((await counts(store, { index: undefined })).map((r) => r[0])).toEqual([
      'stock/a',
      'stock/b',
      'stock/c',
      'stock/d',
    ])
  })

  it('keeps pending only when a scope change drops confirmed history', async () => {
    const store = await open(stockSchema())
    await store.prepareViews()
    await store.prepareCursors('t1', 'k', () => true)
    await append(store, 1, 'stock/a')
    await store.applyPages(
      [
        {
          entries: [stored(other(1, 'stock/a'), 1, 0, 1), stored(other(2, 'stock/b'), 1, 0, 2)],
          cursors: {},
        },
      ],
      'k',
    )
    expect(await counts(store)).toEqual([
      ['stock/b', 1, 1],
      ['stock/a', 2, 1],
    ])
    await store.prepareCursors('t1', 'other-scope', () => true)
    expect(await counts(store)).toEqual([['stock/a', 1, 0]])
  })

  it('rebuilds a type whose index or fold version changed, and survives a reopen', async () => {
    const first = await open(stockSchema())
    await first.prepareViews()
    await first.prepareCursors('t1', 'k', () => true)
    await append(first, 1, 'stock/a')
    await first.applyPages(
      [
        {
          entries: [stored(other(1, 'stock/b'), 1, 0, 1), stored(other(2, 'stock/b'), 2, 0, 2)],
          cursors: {},
        },
      ],
      'k',
    )
    first.close()
    const same = await open(stockSchema())
    expect(await same.prepareViews()).toEqual([])
    expect(await counts(same)).toEqual([
      ['stock/a', 1, 0],
      ['stock/b', 2, 2],
    ])
    same.close()
    const odd = await open(stockSchema(1, 'odd'))
    expect(await odd.prepareViews()).toEqual(['stock'])
    const parity = await odd.queryViews({ ...BY_COUNT, index: 'parity' })
    expect(parity.map((r) => r.entity)).toEqual(['stock/a'])
    odd.close()
    const raised = await open(stockSchema(2, 'odd'))
    expect(await raised.prepareViews()).toEqual(['stock'])
    expect(await counts(raised)).toEqual([
      ['stock/a', 1, 0],
      ['stock/b', 2, 2],
    ])
    // A store opened without the schema's indexes keeps no views: its type is dropped.
    raised.close()
    const plain = await open()
    expect(await plain.prepareViews()).toEqual(['stock'])
    expect(await counts(plain)).toEqual([])
  })

  it('a lean ack (disk full) writes no view and leaves a rebuild for the next open', async () => {
    const store = await open(stockSchema())
    await store.prepareViews()
    const { entries } = await append(store, 2, 'stock/a')
    const [e1] = entries as [Entry, Entry]
    const refused = { id: e1.id, status: 'refused', code: 'invariant', reason: 'no', head: 0 }
    await store.applyAck([ack(e1, refused as never)], () => true, true)
    expect(await store.prepareViews()).toEqual(['stock'])
    expect(await counts(store)).toEqual([['stock/a', 1, 0]])
  })
}

/**
 * The cases of `runClientStoreContract` about what the subscription brings: pages stored once
 * with their cursors (client store guarantee 5), loads from a snapshot, a base or version 1,
 * the corrections feed, and a scope change clearing history (guarantee 6). Registered inside
 * the suite's `describe`, on the database `open` gives.
 */
import { expect, it } from 'vitest'
import type { Entry } from '@ledgerline/core'
import type { ClientStore } from '@ledgerline/client'
import {
  ack,
  append,
  appended,
  correction,
  entry,
  kindOf,
  NOW,
  other,
  ROOMY,
  size,
  stored,
} from './client-store-fixtures.ts'

/**
 * @example
 * describe('ClientStore contract: memory', () => { registerHistoryCases(open) })
 */
export function registerHistoryCases(open: () => Promise<ClientStore>): void {
  it('adds the log’s corrections of own entries to the feed once, newest first, and marks them seen', async () => {
    const store = await open()
    await store.prepareCursors('t1', 'k', () => true)
    const { entries } = await append(store, 2)
    const [e1, e2] = entries as [Entry, Entry]
    const c1 = correction(e1, 0, 2, 3)
    // An ack names the correction; its body, and the feed, come with the page.
    const ref = {
      id: c1.id,
      entity: 'order/o1',
      kind: c1.kind,
      version: 1,
      partition: 2,
      offset: 3,
    }
    const applied = await store.applyAck(
      [ack(e1, { ...appended(1, 2, 2), corrections: [ref] })],
      () => true,
    )
    expect([...applied.entities].sort()).toEqual(['order/o1', 'stock/a'])
    expect((await store.counters()).correctionsUnseen).toBe(0)
    const first = await store.applyPages([{ entries: [stored(e1, 1, 2, 2), c1], cursors: {} }], 'k')
    expect(first.corrections.map((c) => [c.id, c.of, c.unseen])).toEqual([[c1.id, e1.id, true]])
    expect((await store.counters()).correctionsUnseen).toBe(1)
    // A new one of e2 joins.
    const c2 = correction(e2, 0, 2, 5)
    const page = await store.applyPages(
      [{ entries: [stored(e2, 3, 2, 4), c2], cursors: { 2: 5 } }],
      'k',
    )
    expect(page.corrections.map((c) => c.id)).toEqual([c2.id])
    expect(page.own).toBe(1)
    // History fetched again from the start (another scope, or another log): the same
    // correction delivered again adds nothing.
    await store.prepareCursors('t1', 'k2', () => true)
    const again = await store.applyPages([{ entries: [c1], cursors: { 2: 3 } }], 'k2')
    expect(again.corrections).toEqual([])
    // A correction of someone else's entry is not this client's business.
    const theirs = correction(other(1), 0, 2, 7)
    const quiet = await store.applyPages(
      [{ entries: [stored(other(1), 4, 2, 6), theirs], cursors: { 2: 7 } }],
      'k2',
    )
    expect(quiet.corrections).toEqual([])
    expect((await store.counters()).correctionsUnseen).toBe(2)
    const feed = await store.corrections(10)
    expect(feed.map((r) => [r.id, r.of, r.unseen])).toEqual([
      [c2.id, e2.id, true],
      [c1.id, e1.id, true],
    ])
    expect(feed[0]?.entry).toEqual(c2)
    expect((await store.corrections(1)).map((r) => r.id)).toEqual([c2.id])
    expect(await store.markCorrectionsSeen()).toBe(2)
    expect(await store.markCorrectionsSeen()).toBe(0)
    expect((await store.counters()).correctionsUnseen).toBe(0)
    expect((await store.corrections(10)).every((r) => !r.unseen)).toBe(true)
  })

  it('stores pages once with their cursors and loads an entity from them in version order', async () => {
    const store = await open()
    expect(await store.prepareCursors('t1', 'k', () => true)).toEqual({})
    const page1 = [
      stored(other(1, 'stock/a'), 1, 2, 1),
      stored(other(2, 'stock/b'), 1, 2, 2),
      stored(other(3, 'stock/a'), 2, 2, 3),
    ]
    const r1 = await store.applyPages([{ entries: page1, cursors: { 2: 3 } }], 'k')
    expect(r1).toMatchObject({ stored: 3, own: 0, cursors: { 2: 3 }, corrections: [] })
    expect([...r1.entities].sort()).toEqual(['stock/a', 'stock/b'])
    // The same page again (a resend) stores nothing: the cursor drops it.
    const again = await store.applyPages([{ entries: page1, cursors: { 2: 3 } }], 'k')
    expect(again.stored).toBe(0)
    // Two pages in one write, on two partitions; the relay's cursors may pass entries of
    // other scopes (partition 3 up to 40).
    await store.applyPages(
      [
        { entries: [stored(other(4, 'stock/a'), 3, 2, 4)], cursors: { 2: 4 } },
        { entries: [stored(other(5, 'stock/a'), 4, 1, 1)], cursors: { 1: 1, 3: 40 } },
      ],
      'k',
    )
    const load = await store.loadEntity('stock/a', 'k')
    expect(load.stored.map((e) => e.version)).toEqual([1, 2, 3, 4])
    expect(load.stored[0]).toEqual(page1[0])
    expect(load.snapshot).toBeUndefined()
    expect(load.pending).toEqual([])
    expect(typeof load.lastChunk).toBe('number')
    expect((await store.loadEntity('stock/b', 'k')).stored.map((e) => e.version)).toEqual([1])
    expect((await store.loadEntity('stock/none', 'k')).stored).toEqual([])
    // Bringing the ledger index up to date changes no answer.
    const staged = (await store.applyPages([{ entries: [], cursors: {} }], 'k')).stagedKeys
    expect(await store.indexPending()).toBe(staged > 0)
    expect(await store.indexPending()).toBe(false)
    expect(await store.loadEntity('stock/a', 'k')).toEqual(load)
    expect(await store.prepareCursors('t1', 'k', () => true)).toEqual({ 1: 1, 2: 4, 3: 40 })
    // Own entries received back leave the acked records.
    const { entries } = await append(store, 1)
    const mine = entries[0] as Entry
    await store.applyAck([ack(mine, appended(5, 2, 5))], () => true)
    expect((await store.counters()).ackedWaiting).toBe(1)
    const back = await store.applyPages(
      [{ entries: [stored(mine, 5, 2, 5)], cursors: { 2: 5 } }],
      'k',
    )
    expect(back.own).toBe(1)
    expect((await store.counters()).ackedWaiting).toBe(0)
    const after = await store.loadEntity('stock/a', 'k')
    expect(after.pending).toEqual([])
    expect(after.stored.map((e) => e.version)).toEqual([1, 2, 3, 4, 5])
    expect((after.lastChunk as number) > (load.lastChunk as number)).toBe(true)
  })

  it('loads from a matching snapshot, from a base, or from version 1', async () => {
    const store = await open()
    await store.prepareCursors('t1', 'k', () => true)
    await store.applyPages(
      [{ entries: [1, 2].map((v) => stored(other(v), v, 0, v)), cursors: {} }],
      'k',
    )
    const first = await store.loadEntity('stock/a', 'key')
    const through = first.lastChunk as number
    await store.applyPages(
      [{ entries: [3, 4].map((v) => stored(other(v), v, 0, v)), cursors: {} }],
      'k',
    )
    await store.putSnapshot({
      entity: 'stock/a',
      version: 2,
      state: { n: 2 },
      through,
      typeKey: 'key',
    })
    const fromSnapshot = await store.loadEntity('stock/a', 'key')
    expect(fromSnapshot.snapshot).toMatchObject({ version: 2, state: { n: 2 }, through })
    expect(fromSnapshot.stored.map((e) => e.version)).toEqual([3, 4])
    // A snapshot of another fold (a changed reduce) is not used.
    const otherFold = await store.loadEntity('stock/a', 'changed')
    expect(otherFold.snapshot).toBeUndefined()
    expect(otherFold.stored.map((e) => e.version)).toEqual([1, 2, 3, 4])
    const fromBase = await store.loadEntity('stock/a', 'key', { through, version: 2, state: {} })
    expect(fromBase.stored.map((e) => e.version)).toEqual([3, 4])
    const fromScratch = await store.loadEntity('stock/a', 'key', null)
    expect(fromScratch.snapshot).toBeUndefined()
    expect(fromScratch.stored.map((e) => e.version)).toEqual([1, 2, 3, 4])
  })

  it('reads the loads an append asks for in its write, with its entries, as loadEntity then', async () => {
    const store = await open()
    await store.prepareCursors('t1', 'k', () => true)
    await store.applyPages([{ entries: [stored(other(1), 1, 0, 1)], cursors: {} }], 'k')
    const before = await append(store, 1, 'stock/a')
    const wanted = [
      { entity: 'stock/a', typeKey: 'key' },
      { entity: 'stock/b', typeKey: 'key' },
    ]
    const written = await store.append(
      (clientId, first) => [
        entry(clientId, first, 'stock/a'),
        entry(clientId, first + 1, 'stock/a'),
      ],
      ROOMY,
      NOW,
      size,
      wanted,
    )
    expect([...written.loads.keys()]).toEqual(['stock/a', 'stock/b'])
    const loadA = written.loads.get('stock/a')
    expect(loadA?.stored.map((e) => e.version)).toEqual([1])
    expect(loadA?.pending.map((e) => e.id)).toEqual(
      [...before.entries, ...written.entries].map((e) => e.id),
    )
    expect(loadA).toEqual(await store.loadEntity('stock/a', 'key'))
    expect(written.loads.get('stock/b')).toEqual(await store.loadEntity('stock/b', 'key'))
    // Asked for none, an append reads none.
    expect((await append(store, 1)).loads.size).toBe(0)
  })

  it('clears history, snapshots and acked records out of scope for another tenant or scope', async () => {
    const store = await open()
    expect(await store.tenant()).toBeUndefined()
    await store.prepareCursors('t1', 'k', () => true)
    await store.applyPages([{ entries: [stored(other(1), 1, 0, 1)], cursors: { 0: 1 } }], 'k')
    await store.putSnapshot({
      entity: 'stock/a',
      version: 1,
      state: {},
      through: 1,
      typeKey: 'key',
    })
    const { entries } = await store.append(
      (c, f) => [entry(c, f, 'stock/b'), entry(c, f + 1, 'order/x')],
      ROOMY,
      NOW,
      size,
    )
    await store.applyAck(
      (entries as Entry[]).map((e, i) => ack(e, appended(e.clientSeq, 0, 10 + i))),
      () => true,
    )
    expect((await store.counters()).ackedWaiting).toBe(2)
    const stockOnly = (entity: string) => entity.startsWith('stock/')
    expect(await store.prepareCursors('t1', 'k2', stockOnly)).toEqual({})
    expect(await store.loadEntity('stock/a', 'key')).toMatchObject({
      snapshot: undefined,
      stored: [],
    })
    expect((await store.counters()).ackedWaiting).toBe(1)
    expect((await store.loadEntity('stock/b', 'key')).acked.size).toBe(1)
    // A page still in flight for the old scope is refused, and writes nothing.
    const late = await store
      .applyPages([{ entries: [stored(other(2), 2, 0, 2)], cursors: { 0: 2 } }], 'k')
      .catch((e: unknown) => e)
    expect(kindOf(late)).toBe('closed')
    expect(await store.prepareCursors('t1', 'k2', stockOnly)).toEqual({})
    expect(await store.prepareCursors('t2', 'k2', stockOnly)).toEqual({})
    expect(await store.tenant()).toBe('t2')
  })
}

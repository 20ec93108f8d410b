/**
 * The client store contract's store-hub cases (guarantee 4 of `client-store.ts`): a `stored`
 * answer marks an outbox record (stage `store`) and never deletes it, and an own entry coming
 * back in a page with head office's positions settles its record as an `appended` ack would,
 * in the page's write, only when it is the same entry (same content digest).
 *
 * Invariants:
 * 1. Every case opens its own store on a fresh database (`open`), as the main suite does.
 */
import { expect, it } from 'vitest'
import type { Entry } from '@ledgerline/core'
import type { ClientStore } from '@ledgerline/client'
import { ack, append, appended, NOW, RENAMED, stored } from './client-store-fixtures.ts'

/**
 * Registers the store-hub cases inside a contract `describe`.
 *
 * @example
 * describe('ClientStore contract: memory', () => { registerHubCases(open) })
 */
export function registerHubCases(open: () => Promise<ClientStore>): void {
  // Goal: no record is ever deleted on `stored`; the stage is kept and counted once.
  it('keeps a record a store hub answered stored, with stage store, counted once', async () => {
    const store = await open()
    await store.prepareCursors('t1', 'k', () => true)
    const { entries } = await append(store, 3)
    const [e1, e2, e3] = entries as [Entry, Entry, Entry]
    const before = await store.readOutbox(undefined, 100, 1e9)
    const items = [
      ack(e1, { id: e1.id, status: 'stored' }),
      ack(e2, { id: e2.id, status: 'stored' }),
    ]
    const applied = await store.applyAck(items, () => true)
    expect(applied.settled.size).toBe(0)
    // The same answer again (a periodic resend): still kept, not counted twice.
    await store.applyAck(items, () => true)
    expect((await store.readOutbox(undefined, 100, 1e9)).map((r) => r.id)).toEqual([
      e1.id,
      e2.id,
      e3.id,
    ])
    expect(await store.counters()).toMatchObject({ outboxEntries: 3, storedEntries: 2 })
    expect(await store.outcome(e1.id)).toEqual({ _tag: 'outbox', stage: 'store' })
    expect(await store.outcome(e3.id)).toEqual({ _tag: 'outbox', stage: 'device' })
    // Head office's result (through the hub, or directly) ends the stage.
    await store.applyAck([ack(e1, appended(1, 0, 1))], () => true)
    expect(await store.counters()).toMatchObject({ outboxEntries: 2, storedEntries: 1 })
    expect(await store.outcome(e1.id)).toMatchObject({ _tag: 'appended', offset: 1 })
    // A record read before it was marked (the drain's copy) is answered all the same.
    await store.applyAck(
      [ack(e2, appended(2, 0, 2))].map((i, n) => ({ ...i, record: before[n + 1]! })),
      () => true,
    )
    expect(await store.counters()).toMatchObject({ outboxEntries: 1, storedEntries: 0 })
  })

  // Goal: a reissue moves records the hub holds under ids it never saw: stage device again.
  it('clears the store stage when the outbox moves to a new clientId', async () => {
    const store = await open()
    const { entries } = await append(store, 2)
    const [e1] = entries as [Entry, Entry]
    await store.applyAck([ack(e1, { id: e1.id, status: 'stored' })], () => true)
    expect(await store.counters()).toMatchObject({ storedEntries: 1 })
    const renamed = await store.reissue(e1.clientId, RENAMED)
    expect(await store.counters()).toMatchObject({ storedEntries: 0, outboxEntries: 2 })
    expect(await store.outcome(renamed.get(e1.id) as string)).toEqual({
      _tag: 'outbox',
      stage: 'device',
    })
    // A lean ack (a full disk) marks nothing, and deletes as usual.
    const [m1, m2] = await store.readOutbox(undefined, 10, 1e9)
    await store.applyAck(
      [ack(m1!.entry, { id: m1!.id, status: 'stored' }), ack(m2!.entry, appended(1, 0, 1))],
      () => true,
      true,
    )
    expect(await store.counters()).toMatchObject({ storedEntries: 0, outboxEntries: 1 })
  })

  // Goal: settling from a page is one write: record deleted, outcome appended, counters.
  it('settles an own entry that comes back in a page as an appended ack would', async () => {
    const store = await open()
    await store.prepareCursors('t1', 'k', () => true)
    const { entries } = await append(store, 3)
    const [e1, e2, e3] = entries as [Entry, Entry, Entry]
    await store.applyAck([ack(e1, { id: e1.id, status: 'stored' })], () => true)
    const page = await store.applyPages(
      [{ entries: [stored(e1, 1, 0, 7), stored(e2, 2, 0, 8)], cursors: { 0: 8 } }],
      'k',
    )
    expect([...page.settled.keys()]).toEqual([e1.id, e2.id])
    expect(page.settled.get(e1.id)).toEqual({
      _tag: 'appended',
      version: 1,
      partition: 0,
      offset: 7,
      committedAt: NOW + 7,
    })
    expect((await store.readOutbox(undefined, 100, 1e9)).map((r) => r.id)).toEqual([e3.id])
    expect(await store.counters()).toMatchObject({
      outboxEntries: 1,
      outboxBytes: 100,
      storedEntries: 0,
      ackedWaiting: 0,
    })
    expect(await store.outcome(e2.id)).toMatchObject({ _tag: 'appended', offset: 8 })
    const load = await store.loadEntity('stock/a', 'k')
    expect(load.stored.map((e) => e.id)).toEqual([e1.id, e2.id])
    expect(load.pending.map((e) => e.id)).toEqual([e3.id])
    // The ack that comes late (from the hub or head office) changes nothing more.
    const late = await store.applyAck([ack(e1, appended(1, 0, 7))], () => true)
    expect(late.settled.size).toBe(0)
    expect(await store.counters()).toMatchObject({ outboxEntries: 1 })
    // What committed survives a reopen.
    store.close()
    const again = await open()
    expect(await again.counters()).toMatchObject({ outboxEntries: 1, storedEntries: 0 })
  })

  // Goal: another entry under an own id (a restored copy's) never settles a record.
  it('does not settle a record from a page entry with the same id and other content', async () => {
    const store = await open()
    await store.prepareCursors('t1', 'k', () => true)
    const { entries } = await append(store, 1)
    const [e1] = entries as [Entry]
    const impostor = stored({ ...e1, data: { qty: 99 } }, 1, 0, 1)
    const page = await store.applyPages([{ entries: [impostor], cursors: { 0: 1 } }], 'k')
    expect(page.settled.size).toBe(0)
    expect(await store.outcome(e1.id)).toEqual({ _tag: 'outbox', stage: 'device' })
    expect(await store.counters()).toMatchObject({ outboxEntries: 1 })
  })
}

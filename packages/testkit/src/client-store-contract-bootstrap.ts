/**
 * The cases of `runClientStoreContract` about bootstrap (client store guarantees 11 and 12):
 * relay snapshots kept as bases in the page write, loads starting from them under their own
 * fold key only, a base never moving back, history fetched below a base stored once, bases
 * cleared with history, and the `bootstrap` flag of the cursors. Registered inside the suite's
 * `describe`, on the database `open` gives.
 */
import { expect, it } from 'vitest'
import type { ClientStore } from '@ledgerline/client'
import type { LedgerSnapshot } from '@ledgerline/protocol'
import { other, stored } from './client-store-fixtures.ts'

/** A relay snapshot of `stock/a` through `version` (partition 0, offset = version). */
function snapshot(version: number, foldKey = 'stock@1', onHand = version): LedgerSnapshot {
  return {
    entity: 'stock/a',
    foldKey,
    version,
    partition: 0,
    offset: version,
    committedAt: 1_700_000_000_000 + version,
    state: { onHand },
  }
}

/** Entries of `stock/a` at these versions (partition 0, offset = version). */
function ledger(versions: readonly number[]) {
  return versions.map((v) => stored(other(v), v, 0, v))
}

/**
 * @example
 * describe('ClientStore contract: memory', () => { registerBootstrapCases(open) })
 */
export function registerBootstrapCases(open: () => Promise<ClientStore>): void {
  it('keeps a snapshot page as the base, in the write of the entries after it, and loads from it', async () => {
    const store = await open()
    await store.prepareCursors('t1', 'k', () => true)
    const applied = await store.applyPages(
      [
        { entries: [], cursors: {}, snapshots: [snapshot(5)] },
        { entries: ledger([6, 7]), cursors: { 0: 7 } },
      ],
      'k',
    )
    expect([...applied.based]).toEqual(['stock/a'])
    expect([...applied.entities]).toEqual(['stock/a'])
    // From the stored snapshots, from version 1, and after an older cached base: the base.
    for (const base of [undefined, null, { through: 0, version: 2, state: { onHand: 2 } }]) {
      const load = await store.loadEntity('stock/a', 'stock@1', base)
      expect(load.snapshot).toMatchObject({ version: 5, state: { onHand: 5 } })
      expect(load.stored.map((e) => e.version)).toEqual([6, 7])
    }
    // A cached base newer than the stored base is kept.
    const newer = await store.loadEntity('stock/a', 'stock@1', {
      through: applied.chunks[0]?.n ?? 1,
      version: 7,
      state: { onHand: 7 },
    })
    expect(newer.snapshot).toMatchObject({ version: 7 })
    expect(newer.stored).toEqual([])
    const history = await store.loadHistory('stock/a')
    expect(history.base).toMatchObject({ entity: 'stock/a', foldKey: 'stock@1', version: 5 })
    expect(history.stored.map((e) => e.version)).toEqual([6, 7])
  })

  it('never starts a fold from a base of another fold key', async () => {
    const store = await open()
    await store.prepareCursors('t1', 'k', () => true)
    await store.applyPages(
      [{ entries: ledger([1, 2, 3]), cursors: {}, snapshots: [snapshot(3, 'stock@9', 99)] }],
      'k',
    )
    for (const base of [undefined, null]) {
      const load = await store.loadEntity('stock/a', 'stock@1', base)
      expect(load.snapshot).toBeUndefined()
      expect(load.stored.map((e) => e.version)).toEqual([1, 2, 3])
    }
  })

  it('never moves a base back, and prefers the newer of a client snapshot and the base', async () => {
    const store = await open()
    await store.prepareCursors('t1', 'k', () => true)
    await store.applyPages([{ entries: [], cursors: {}, snapshots: [snapshot(8)] }], 'k')
    const older = await store.applyPages(
      [{ entries: [], cursors: {}, snapshots: [snapshot(4)] }],
      'k',
    )
    expect([...older.based]).toEqual([])
    expect((await store.loadHistory('stock/a')).base).toMatchObject({ version: 8 })
    await store.applyPages([{ entries: ledger([9, 10]), cursors: {} }], 'k')
    await store.putSnapshot({
      entity: 'stock/a',
      version: 10,
      state: { onHand: 10 },
      through: 1,
      typeKey: 'stock@1',
    })
    expect((await store.loadEntity('stock/a', 'stock@1')).snapshot).toMatchObject({ version: 10 })
    await store.putSnapshot({
      entity: 'stock/a',
      version: 6,
      state: { onHand: 6 },
      through: 0,
      typeKey: 'stock@1',
    })
    const load = await store.loadEntity('stock/a', 'stock@1')
    expect(load.snapshot).toMatchObject({ version: 8 })
    expect(load.stored.map((e) => e.version)).toEqual([9, 10])
  })

  it('stores fetched history below the base once per version, with what was dropped', async () => {
    const store = await open()
    await store.prepareCursors('t1', 'k', () => true)
    await store.applyPages(
      [
        { entries: [], cursors: {}, snapshots: [snapshot(6)] },
        { entries: ledger([7]), cursors: { 0: 7 } },
      ],
      'k',
    )
    expect(await store.storeFetched('stock/a', ledger([4, 5, 6]), 4, 'k')).toBe(3)
    // Asked again (a page resent, an overlap): nothing twice.
    expect(await store.storeFetched('stock/a', ledger([3, 4, 5, 6]), 3, 'k')).toBe(1)
    const history = await store.loadHistory('stock/a')
    expect(history.stored.map((e) => e.version)).toEqual([3, 4, 5, 6, 7])
    expect(history.base).toMatchObject({ version: 6, dropped: 3 })
    // Loads still start from the base (the fetched entries lie below it)...
    const load = await store.loadEntity('stock/a', 'stock@1', null)
    expect(load.stored.map((e) => e.version)).toEqual([7])
    // ...and the cursors did not move.
    const more = await store.applyPages([{ entries: ledger([7, 8]), cursors: {} }], 'k')
    expect(more.stored).toBe(1)
    await expect(
      store.storeFetched('stock/a', ledger([1]), undefined, 'other'),
    ).rejects.toMatchObject({ kind: 'closed' })
  })

  it('sets the bootstrap flag with fresh cursors, clears it on a live page, and clears bases with history', async () => {
    const store = await open()
    expect(await store.bootstrapState()).toEqual({ pending: false, baseKeys: [] })
    await store.prepareCursors('t1', 'k', () => true)
    expect(await store.bootstrapState()).toEqual({ pending: true, baseKeys: [] })
    await store.applyPages([{ entries: [], cursors: {}, snapshots: [snapshot(2)] }], 'k')
    await store.applyPages([{ entries: [], cursors: {}, snapshots: [snapshot(1, 'card@2')] }], 'k')
    await store.applyPages([{ entries: ledger([3]), cursors: { 0: 3 } }], 'k')
    expect(await store.bootstrapState()).toEqual({ pending: true, baseKeys: ['card@2', 'stock@1'] })
    await store.close()
    const again = await open()
    // Guarantee 7: it survives a reopen.
    expect(await again.bootstrapState()).toEqual({ pending: true, baseKeys: ['card@2', 'stock@1'] })
    expect(await again.prepareCursors('t1', 'k', () => true)).toEqual({ 0: 3 })
    await again.applyPages([{ entries: [], cursors: { 0: 3 }, live: true }], 'k')
    expect((await again.bootstrapState()).pending).toBe(false)
    // Another scope: history, bases and cursors go together, and a bootstrap is due again.
    await again.prepareCursors('t1', 'other', () => true)
    expect(await again.bootstrapState()).toEqual({ pending: true, baseKeys: [] })
    expect((await again.loadHistory('stock/a')).base).toBeUndefined()
    expect((await again.loadEntity('stock/a', 'stock@1', null)).snapshot).toBeUndefined()
  })
}

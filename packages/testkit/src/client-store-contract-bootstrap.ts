/**
 * The cases of `runClientStoreContract` about bootstrap (client store guarantees 11 and 12):
 * relay snapshots kept as bases in the page write, loads starting from them under their own
 * fold key only, a base never moving back, history fetched below a base stored once, bases
 * cleared with history, bootstraps over overlapping names (the newer base of a fold key wins
 * by version, another fold key replaces, an older page never shadows a newer base), bases found
 * after a reopen, and the `bootstrap` flag of the cursors. Registered inside the suite's
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

/** A relay snapshot of `entity` through `version` (its state says which write it came from). */
function snapshotOf(entity: string, version: number, foldKey = 'stock@1', from = 'first') {
  return { ...snapshot(version, foldKey), entity, state: { onHand: version, from } }
}

/** `stock/0000`…: names that sort as their numbers do. */
function nameOf(n: number): string {
  return `stock/${String(n).padStart(4, '0')}`
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

  it('merges bootstraps over overlapping names: the newer base wins, an older page never shadows it', async () => {
    // Goal: the rule when two bootstraps write overlapping names. Method: a first bootstrap of
    // the even names 0..1198 at version 5 (several pages of any store's layout), then one over
    // every name 300..899 whose version is 9 for multiples of 3, 3 (older) for the others, and a
    // third of another fold key for 1000..1009; every name is read back, then again after a
    // reopen.
    const store = await open()
    await store.prepareCursors('t1', 'k', () => true)
    const evens = Array.from({ length: 600 }, (_, i) => snapshotOf(nameOf(2 * i), 5))
    await store.applyPages([{ entries: [], cursors: {}, snapshots: evens }], 'k')
    const span = Array.from({ length: 600 }, (_, i) => 300 + i)
    const second = span.map((n) => snapshotOf(nameOf(n), n % 3 === 0 ? 9 : 3, 'stock@1', 'second'))
    const applied = await store.applyPages(
      [
        { entries: [], cursors: {}, snapshots: second.slice(0, 300) },
        { entries: [], cursors: {}, snapshots: second.slice(300) },
      ],
      'k',
    )
    // Kept: every multiple of 3, and the odd names no base had yet (version 3 is their first).
    const kept = span.filter((n) => n % 3 === 0 || n % 2 === 1).map(nameOf)
    expect([...applied.based].sort()).toEqual(kept)
    const other = Array.from({ length: 10 }, (_, i) =>
      snapshotOf(nameOf(1000 + i), 1, 'card@2', 'third'),
    )
    await store.applyPages([{ entries: [], cursors: {}, snapshots: other }], 'k')
    const expected = (n: number) => {
      if (n >= 1000 && n < 1010) return { foldKey: 'card@2', version: 1, from: 'third' }
      const inSpan = n >= 300 && n < 900
      if (inSpan && n % 3 === 0) return { foldKey: 'stock@1', version: 9, from: 'second' }
      if (n % 2 === 0) return { foldKey: 'stock@1', version: 5, from: 'first' }
      if (inSpan) return { foldKey: 'stock@1', version: 3, from: 'second' }
      return undefined
    }
    const names = Array.from({ length: 1_200 }, (_, n) => n)
    const want = names.map((n) => {
      const e = expected(n)
      return e && { entity: nameOf(n), ...e, onHand: e.version }
    })
    const check = async (s: ClientStore) => {
      const got = []
      for (const n of names) {
        const base = (await s.loadHistory(nameOf(n))).base
        const state = base?.state as { onHand: number; from: string } | undefined
        got.push(
          base && {
            entity: base.entity,
            foldKey: base.foldKey,
            version: base.version,
            from: state?.from,
            onHand: state?.onHand,
          },
        )
      }
      expect(got).toEqual(want)
      // Loads asked for together (one batch where a store batches them) start from the same.
      const loads = await Promise.all(names.map((n) => s.loadEntity(nameOf(n), 'stock@1', null)))
      expect(loads.map((l) => l.snapshot?.version)).toEqual(
        want.map((w) => (w?.foldKey === 'stock@1' ? w.version : undefined)),
      )
    }
    await check(store)
    // A name beyond every page, and one before them all, have none.
    expect((await store.loadHistory('stock/9999')).base).toBeUndefined()
    expect((await store.loadHistory('a')).base).toBeUndefined()
    await store.close()
    await check(await open())
  })

  it('finds a base after a restart, and loads from it', async () => {
    // Goal: a base is durable with its page write (guarantee 7). Method: bootstrap one page with
    // a base and the entries after it, close, reopen the database, load.
    const store = await open()
    await store.prepareCursors('t1', 'k', () => true)
    await store.applyPages(
      [
        { entries: [], cursors: {}, snapshots: [snapshot(5), snapshotOf('stock/b', 2)] },
        { entries: ledger([6, 7]), cursors: { 0: 7 } },
      ],
      'k',
    )
    await store.storeFetched('stock/a', ledger([4, 5]), 4, 'k')
    await store.close()
    const again = await open()
    expect(await again.prepareCursors('t1', 'k', () => true)).toEqual({ 0: 7 })
    const load = await again.loadEntity('stock/a', 'stock@1', null)
    expect(load.snapshot).toMatchObject({ version: 5, state: { onHand: 5 } })
    expect(load.stored.map((e) => e.version)).toEqual([6, 7])
    expect((await again.loadHistory('stock/a')).base).toMatchObject({ version: 5, dropped: 4 })
    expect((await again.loadHistory('stock/b')).base).toMatchObject({ version: 2 })
  })
}

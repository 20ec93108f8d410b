/**
 * The ledger snapshots of the server log's conformance suite (`log-store.ts` guarantees 14–15),
 * registered by `runLogStoreContract` for every store that keeps them (`hasLedgerSnapshots`).
 *
 * What it proves:
 * 1. `putSnapshot` then `snapshot` gives the snapshot back under its fold key only; a higher
 *    version replaces it, an equal or lower one is `stale` and changes nothing; it survives a
 *    reopen;
 * 2. a state over `SNAPSHOT_STATE_BYTES_MAX` or not `Data` is `skipped` and nothing is written;
 *    a snapshot past the entity's head is refused (rejects) and nothing is written;
 * 3. `snapshotsInScope` pages a tenant's snapshots by pattern and fold key, each once, never
 *    another tenant's; `entities` pages every entity once with its version; `entitySpans` pages
 *    a tenant's entities by pattern, each once, with the partition, head version and the
 *    offsets of its first and last entries, never another tenant's;
 * 4. after a reopen the planner's fold starts from the snapshot under the type's own fold key
 *    (a planted state decides the next entry) and never from another key's.
 */
import { expect, it } from 'vitest'
import { foldKey } from '@ledgerline/core'
import type { StoredEntry } from '@ledgerline/core'
import { hasLedgerSnapshots } from '@ledgerline/log'
import type { EntitySpan, LogStore, SnapshotLogStore } from '@ledgerline/log'
import { SNAPSHOT_STATE_BYTES_MAX } from '@ledgerline/protocol'
import type { LedgerSnapshot } from '@ledgerline/protocol'
import { client, contractTypes } from './log-store-contract-fixtures.ts'
import type { ContractHarness } from './log-store-contract-fixtures.ts'

const STOCK_KEY = foldKey(contractTypes[0] as { type: string; version: number })

function snapshotted(store: LogStore): SnapshotLogStore | undefined {
  return hasLedgerSnapshots(store) ? store : undefined
}

/** Appends `n` moves of `qty` to `entity`; the snapshot of its last entry with `state`. */
async function moves(
  store: LogStore,
  entity: string,
  n: number,
  seed: number,
  tenant = 'acme',
): Promise<(state: LedgerSnapshot['state'], key?: string) => LedgerSnapshot> {
  const c = client(seed, tenant)
  for (let i = 0; i < n; i++) {
    await store.append(tenant, [{ entry: c.next(entity, 'stock.moved', { qty: 1 }) }])
  }
  const head = await store.head(tenant, entity)
  const [last] = await store.readEntity(tenant, entity, head.version, 1)
  if (last === undefined) throw new Error(`no entries of ${entity}`)
  return (state, key = STOCK_KEY) => ({
    entity,
    foldKey: key,
    version: last.version,
    partition: last.partition,
    offset: last.offset,
    committedAt: last.committedAt,
    state,
  })
}

export function snapshotContract(h: ContractHarness): void {
  it('keeps one snapshot per entity and fold key, replaced only by a higher version', async () => {
    // Goal: guarantee 14. Method: snapshot at versions 2 then 3, try 3 again and 1; read under
    // the key and another key; reopen and read again.
    const store = snapshotted(await h.open())
    if (store === undefined) return
    const at2 = await moves(store, 'stock/a', 2, 1)
    expect(await store.putSnapshot('acme', at2({ onHand: 2 }))).toEqual({ _tag: 'written' })
    const at3 = await moves(store, 'stock/a', 1, 2)
    expect(await store.putSnapshot('acme', at3({ onHand: 3 }))).toEqual({ _tag: 'written' })
    expect(await store.putSnapshot('acme', at3({ onHand: 99 }))).toEqual({
      _tag: 'stale',
      kept: 3,
    })
    expect(await store.putSnapshot('acme', at2({ onHand: 98 }))).toEqual({
      _tag: 'stale',
      kept: 3,
    })
    expect(await store.snapshot('acme', 'stock/a', STOCK_KEY)).toEqual(at3({ onHand: 3 }))
    expect(await store.snapshot('acme', 'stock/a', 'stock@2')).toBeUndefined()
    expect(await store.snapshot('other', 'stock/a', STOCK_KEY)).toBeUndefined()
    const reopen = h.subject()?.reopen
    if (reopen === undefined) return
    const again = snapshotted(await reopen())
    expect(await again?.snapshot('acme', 'stock/a', STOCK_KEY)).toEqual(at3({ onHand: 3 }))
  })

  it('skips a state too large or not Data, and refuses one past the head', async () => {
    // Goal: guarantee 14's bounds. Method: a state of SNAPSHOT_STATE_BYTES_MAX + 1 KiB of text,
    // a state holding undefined, a version past the head; none is kept.
    const store = snapshotted(await h.open())
    if (store === undefined) return
    const at1 = await moves(store, 'stock/b', 1, 3)
    const big = await store.putSnapshot(
      'acme',
      at1({ note: 'x'.repeat(SNAPSHOT_STATE_BYTES_MAX + 1024) }),
    )
    expect(big).toMatchObject({ _tag: 'skipped', reason: 'too_large' })
    const odd = await store.putSnapshot('acme', at1({ f: (() => 1) as never }))
    expect(odd).toMatchObject({ _tag: 'skipped', reason: 'not_data' })
    await expect(store.putSnapshot('acme', { ...at1({ onHand: 1 }), version: 2 })).rejects.toThrow(
      /snapshot of stock\/b at version 2/,
    )
    await expect(
      store.putSnapshot('acme', { ...at1({ onHand: 1 }), entity: 'stock/never' }),
    ).rejects.toThrow(/snapshot of stock\/never/)
    expect(await store.snapshot('acme', 'stock/b', STOCK_KEY)).toBeUndefined()
    expect(await store.snapshot('acme', 'stock/never', STOCK_KEY)).toBeUndefined()
  })

  it('pages snapshots in scope by pattern and fold key, each once, per tenant', async () => {
    // Goal: snapshotsInScope and entities. Method: 7 stock and 2 order snapshots in acme under
    // the stock key, 2 under another key, 1 in another tenant; page stock/* by 2 and compare.
    const store = snapshotted(await h.open())
    if (store === undefined) return
    const want: string[] = []
    for (let i = 0; i < 7; i++) {
      const make = await moves(store, `stock/s${i}`, 1, 10 + i)
      await store.putSnapshot('acme', make({ onHand: i }))
      if (i < 2) await store.putSnapshot('acme', make({ onHand: -i }, 'stock@9'))
      want.push(`stock/s${i}`)
    }
    for (let i = 0; i < 2; i++) {
      const make = await moves(store, `order/o${i}`, 1, 20 + i)
      await store.putSnapshot('acme', make({ lines: i }, 'order@1'))
    }
    const otherMake = await moves(store, 'stock/s0', 1, 30, 'other')
    await store.putSnapshot('other', otherMake({ onHand: 42 }))
    const seen: LedgerSnapshot[] = []
    let after: string | undefined
    for (let pages = 0; pages < 20; pages++) {
      const page = await store.snapshotsInScope('acme', ['stock/*'], [STOCK_KEY], after, 2)
      expect(page.snapshots.length).toBeLessThanOrEqual(2)
      seen.push(...page.snapshots)
      after = page.next
      if (after === undefined) break
    }
    expect(after).toBeUndefined()
    expect(seen.map((s) => s.entity).sort()).toEqual(want)
    expect(seen.every((s) => s.foldKey === STOCK_KEY && s.entity.startsWith('stock/'))).toBe(true)
    expect(seen.some((s) => (s.state as { onHand: number }).onHand === 42)).toBe(false)
    const both = await store.snapshotsInScope('acme', ['*'], [STOCK_KEY, 'order@1'], undefined, 100)
    expect(both.snapshots).toHaveLength(9)
    expect(both.next).toBeUndefined()
    const listed: string[] = []
    let cursor: string | undefined
    for (let pages = 0; pages < 20; pages++) {
      const page = await store.entities(cursor, 3)
      listed.push(...page.entities.map((e) => `${e.tenant}:${e.entity}@${e.version}`))
      cursor = page.next
      if (cursor === undefined) break
    }
    expect(listed.sort()).toEqual(
      [
        ...want.map((e) => `acme:${e}@1`),
        'acme:order/o0@1',
        'acme:order/o1@1',
        'other:stock/s0@1',
      ].sort(),
    )
  })

  it('pages entity spans of a tenant by pattern, each once, with first and last offsets', async () => {
    // Goal: entitySpans (what a bootstrap passes without reading, subscriptions.ts invariant
    // 7). Method: 5 stock entities of 1-3 entries and an order in acme, a stock entity in
    // another tenant; page stock/* by 2 and compare each span with the entity's own ledger.
    const store = snapshotted(await h.open())
    if (store === undefined) return
    for (let i = 0; i < 5; i++) await moves(store, `stock/s${i}`, 1 + (i % 3), 40 + i)
    await moves(store, 'order/o0', 2, 50)
    await moves(store, 'stock/s9', 2, 51, 'other')
    const want: EntitySpan[] = []
    for (let i = 0; i < 5; i++) {
      const ledger = await store.readEntity('acme', `stock/s${i}`, 1, 100)
      const first = ledger[0] as StoredEntry
      const last = ledger.at(-1) as StoredEntry
      want.push({
        entity: `stock/s${i}`,
        partition: first.partition,
        version: last.version,
        firstOffset: first.offset,
        lastOffset: last.offset,
      })
    }
    const seen: EntitySpan[] = []
    let after: string | undefined
    for (let pages = 0; pages < 20; pages++) {
      const page = await store.entitySpans('acme', ['stock/*'], after, 2)
      expect(page.spans.length).toBeLessThanOrEqual(2)
      seen.push(...page.spans)
      after = page.next
      if (after === undefined) break
    }
    expect(after).toBeUndefined()
    const byName = (a: EntitySpan, b: EntitySpan) => (a.entity < b.entity ? -1 : 1)
    expect([...seen].sort(byName)).toEqual(want)
    const all = await store.entitySpans('acme', ['*'], undefined, 100)
    expect(all.spans.map((s) => s.entity).sort()).toEqual([
      'order/o0',
      ...want.map((s) => s.entity),
    ])
    expect(all.next).toBeUndefined()
    expect((await store.entitySpans('nobody', ['*'], undefined, 100)).spans).toEqual([])
  })

  it('folds a missed state from the snapshot under the type key only, after a reopen', async () => {
    // Goal: guarantee 15. Method: stock/c has 1 on hand; plant a snapshot saying 100 under the
    // stock key and one saying 1000 under another key on stock/d; reopen (no cached state) and
    // sell 50 from each. stock/c decides on 100 (no correction): the snapshot was used;
    // stock/d decides on its real 1 (corrected): the other key's state was not.
    const store = snapshotted(await h.open())
    const reopen = h.subject()?.reopen
    if (store === undefined || reopen === undefined) return
    const c = await moves(store, 'stock/c', 1, 40)
    const d = await moves(store, 'stock/d', 1, 41)
    await store.putSnapshot('acme', c({ onHand: 100 }))
    await store.putSnapshot('acme', d({ onHand: 1000 }, 'stock@2'))
    const again = await reopen()
    const seller = client(42)
    const [sold] = await again.append('acme', [
      { entry: seller.next('stock/c', 'stock.moved', { qty: -50 }) },
      { entry: seller.next('stock/d', 'stock.moved', { qty: -50 }) },
    ])
    expect(sold).toMatchObject({ status: 'appended', version: 2, corrections: [] })
    const ledgerC = await again.readEntity('acme', 'stock/c', 1, 10)
    const ledgerD = await again.readEntity('acme', 'stock/d', 1, 10)
    expect(ledgerC.map((e) => e.kind)).toEqual(['stock.moved', 'stock.moved'])
    expect(ledgerD.map((e) => e.kind)).toEqual(['stock.moved', 'stock.moved', 'stock.oversold'])
  })
}

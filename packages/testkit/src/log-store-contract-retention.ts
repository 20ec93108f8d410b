/**
 * Retention in the server log's conformance suite (`log-retention.ts` invariants 1–5),
 * registered by `runLogStoreContract` for every store that offers it (`hasLogRetention`).
 *
 * What it proves:
 * 1. a drop of versions a snapshot covers takes exactly them out of every read (`readEntity`
 *    rejects `history_dropped` below the first kept version, `readHistory` says `dropped`,
 *    `readPartition` skips them), records the first kept version and offset, keeps the
 *    snapshot, the head and every later entry, and survives a reopen;
 * 2. appends after it go on at the next version, decided on the snapshot's state; a resend of a
 *    dropped entry is not appended again;
 * 3. a drop with one cut no snapshot covers, one that takes the head, or one that does not start
 *    at the first kept version (or names other offsets) is refused and deletes nothing, not even
 *    the good cuts beside it;
 * 4. exactly once across a drop (invariant 5): a resend of a dropped client entry gets its
 *    original answer (`duplicate`, same version, partition, offset, `committedAt`, the same
 *    corrections), another content under its id is `id_conflict`, a moved copy of it is
 *    `duplicate` of it, a resent dropped correction of the log is `duplicate`, and a `corrects`
 *    naming a dropped entry still names an entry of the log; also after a reopen.
 */
import { expect, it } from 'vitest'
import { foldKey } from '@ledgerline/core'
import type { Entry, StoredEntry } from '@ledgerline/core'
import { hasLedgerSnapshots, hasLogRetention } from '@ledgerline/log'
import type {
  AppendResult,
  LedgerSnapshots,
  LogStore,
  RetentionCut,
  RetentionLogStore,
} from '@ledgerline/log'
import { client, contractTypes, duplicateOf, moved } from './log-store-contract-fixtures.ts'
import type { ContractHarness } from './log-store-contract-fixtures.ts'

const STOCK_KEY = foldKey(contractTypes[0] as { type: string; version: number })

type Retained = RetentionLogStore & LedgerSnapshots

function retained(store: LogStore): Retained | undefined {
  return hasLogRetention(store) && hasLedgerSnapshots(store) ? store : undefined
}

/** `n` moves of 1 to `entity`, then a snapshot at version `at` with the folded state. */
async function filled(store: Retained, entity: string, n: number, at: number, seed: number) {
  const c = client(seed)
  for (let i = 0; i < n; i++) {
    await store.append('acme', [{ entry: c.next(entity, 'stock.moved', { qty: 1 }) }])
  }
  const ledger = await store.readEntity('acme', entity, 1, 1000)
  const last = ledger[at - 1] as StoredEntry
  await store.putSnapshot('acme', {
    entity,
    foldKey: STOCK_KEY,
    version: at,
    partition: last.partition,
    offset: last.offset,
    committedAt: last.committedAt,
    state: { onHand: at },
  })
  return { ledger, client: c }
}

function cutOf(ledger: readonly StoredEntry[], from: number, through: number): RetentionCut {
  const first = ledger[0] as StoredEntry
  return {
    tenant: 'acme',
    entity: first.entity,
    foldKey: STOCK_KEY,
    from,
    through,
    offsets: ledger.slice(from - 1, through).map((e) => e.offset),
  }
}

async function partitionEntries(store: LogStore): Promise<StoredEntry[]> {
  const out: StoredEntry[] = []
  for (let p = 0; p < store.partitions; p++) {
    out.push(...(await store.readPartition('acme', p, 0, 10_000)).entries)
  }
  return out
}

export function retentionContract(h: ContractHarness): void {
  it('drops only covered history: reads say so, the rest and the snapshot stay', async () => {
    // Goal: invariants 1–4 and 5. Method: stock/a has 6 entries, a snapshot at 4; drop 1..3;
    // read every way, append one more, resend a dropped entry, reopen and read again.
    const store = retained(await h.open())
    if (store === undefined) return
    const { ledger, client: c } = await filled(store, 'stock/a', 6, 4, 1)
    const other = await filled(store, 'stock/b', 3, 2, 2)
    const before = await partitionEntries(store)
    expect(await store.dropHistory([cutOf(ledger, 1, 3)])).toEqual({
      _tag: 'dropped',
      entries: 3,
      entities: 1,
    })
    const check = async (s: Retained) => {
      expect(await s.firstKept('acme', 'stock/a')).toBe(4)
      expect(await s.firstKept('acme', 'stock/b')).toBe(1)
      // By its kind: the store may throw another copy of the class than this package imports.
      await expect(s.readEntity('acme', 'stock/a', 1, 10)).rejects.toMatchObject({
        name: 'LogStoreError',
        kind: 'history_dropped',
      })
      expect(await s.readHistory('acme', 'stock/a', 2, 10)).toEqual({
        _tag: 'dropped',
        firstKept: 4,
      })
      const kept = await s.readHistory('acme', 'stock/a', 4, 10)
      expect(kept._tag === 'entries' && kept.entries.map((e) => e.id)).toEqual(
        ledger.slice(3).map((e) => e.id),
      )
      expect(await s.readEntity('acme', 'stock/b', 1, 10)).toEqual(other.ledger)
      const dropped = new Set(ledger.slice(0, 3).map((e) => e.id))
      const after = await partitionEntries(s)
      expect(after.map((e) => e.id).sort()).toEqual(
        before
          .filter((e) => !dropped.has(e.id))
          .map((e) => e.id)
          .sort(),
      )
      const p = (ledger[0] as StoredEntry).partition
      const marks = await s.partitionsFirstKept('acme')
      expect(marks).toHaveLength(s.partitions)
      expect(marks[p]).toBe((ledger[2] as StoredEntry).offset + 1)
      expect(marks.filter((_, i) => i !== p).every((m) => m === 1)).toBe(true)
      expect((await s.partitionsFirstKept('other')).every((m) => m === 1)).toBe(true)
      expect((await s.snapshot('acme', 'stock/a', STOCK_KEY))?.version).toBe(4)
      expect(await s.head('acme', 'stock/a')).toMatchObject({ version: 6 })
    }
    await check(store)
    const [next] = await store.append('acme', [
      { entry: c.next('stock/a', 'stock.moved', { qty: -5 }) },
    ])
    // Decided on the snapshot's 4 + versions 5 and 6: 6 on hand, so -5 needs no correction.
    expect(next).toMatchObject({ status: 'appended', version: 7, corrections: [] })
    const [again] = await store.append('acme', [{ entry: ledger[0] as StoredEntry }])
    expect(again?.status).not.toBe('appended')
    expect(await store.head('acme', 'stock/a')).toMatchObject({ version: 7 })
    const reopen = h.subject()?.reopen
    if (reopen === undefined) return
    const reopened = retained(await reopen())
    if (reopened === undefined) throw new Error('retention lost on reopen')
    expect((await reopened.readEntity('acme', 'stock/a', 4, 10)).map((e) => e.version)).toEqual([
      4, 5, 6, 7,
    ])
    expect(await reopened.firstKept('acme', 'stock/a')).toBe(4)
  })

  it('refuses a drop no snapshot covers, of the head, or of a log that changed: deletes nothing', async () => {
    // Goal: invariant 1's refusals, all or nothing. Method: each bad cut beside a good one.
    const store = retained(await h.open())
    if (store === undefined) return
    const a = await filled(store, 'stock/c', 5, 3, 3)
    const b = await filled(store, 'stock/d', 3, 3, 4)
    const good = cutOf(a.ledger, 1, 2)
    const before = await partitionEntries(store)
    const refusals = [
      [cutOf(a.ledger, 1, 4), 'not_covered'],
      [{ ...cutOf(a.ledger, 1, 2), foldKey: 'stock@9' }, 'not_covered'],
      [cutOf(b.ledger, 1, 3), 'head'],
      [cutOf(b.ledger, 2, 2), 'changed'],
      [{ ...cutOf(b.ledger, 1, 2), offsets: [999_998, 999_999] }, 'changed'],
      [{ ...cutOf(b.ledger, 1, 2), through: 0, offsets: [] }, 'changed'],
    ] as const
    for (const [bad, code] of refusals) {
      const outcome = await store.dropHistory([good, bad])
      expect(outcome).toMatchObject({ _tag: 'refused', code, entity: bad.entity })
      expect(await partitionEntries(store)).toEqual(before)
      expect(await store.firstKept('acme', 'stock/c')).toBe(1)
      expect((await store.partitionsFirstKept('acme')).every((m) => m === 1)).toBe(true)
    }
    // The triggers that refuse deletes are back: a second, good drop still works.
    expect(await store.dropHistory([good])).toMatchObject({ _tag: 'dropped', entries: 2 })
    expect(await store.dropHistory([good])).toMatchObject({ _tag: 'refused', code: 'changed' })
  })
}

export function retentionResendContract(h: ContractHarness): void {
  it('answers a resend of a dropped entry with its original result, and another content id_conflict', async () => {
    // Goal: invariant 5, guarantee 2 across retention (a register off longer than the horizon
    // resends a sale whose ack it never got: `id_conflict` would make it land twice under a new
    // clientId). Method: stock/r gets +1, -3 (corrected by stock.oversold), +2, +1, +1; a
    // snapshot at 5 covers a drop of 1..4, which takes the oversold correction too. Then resend
    // each dropped entry, the same sale with another content, a moved copy, the correction
    // itself, a client correction naming a dropped sale; reopen and resend again.
    const store = retained(await h.open())
    if (store === undefined) return
    const c = client(71)
    const sales = [1, -3, 2, 1, 1].map((qty) => c.next('stock/r', 'stock.moved', { qty }))
    const acks: AppendResult[] = []
    for (const sale of sales) acks.push(...(await store.append('acme', [{ entry: sale }])))
    expect(acks[1]).toMatchObject({ status: 'appended', version: 2 })
    expect(acks[1]?.status === 'appended' && acks[1].corrections).toHaveLength(1)
    const ledger = await store.readEntity('acme', 'stock/r', 1, 100)
    expect(ledger.map((e) => e.version)).toEqual([1, 2, 3, 4, 5, 6])
    const correction = ledger[2] as StoredEntry
    const last = ledger[4] as StoredEntry
    await store.putSnapshot('acme', {
      entity: 'stock/r',
      foldKey: STOCK_KEY,
      version: 5,
      partition: last.partition,
      offset: last.offset,
      committedAt: last.committedAt,
      state: { onHand: 1 },
    })
    expect(await store.dropHistory([cutOf(ledger, 1, 4)])).toMatchObject({
      _tag: 'dropped',
      entries: 4,
    })
    const resends = async (s: LogStore, round: number) => {
      // The dropped sales, one call each and all in one call: their original answers.
      for (const [i, sale] of sales.slice(0, 3).entries()) {
        expect(await s.append('acme', [{ entry: sale }])).toEqual([duplicateOf(acks[i], sale.id)])
      }
      expect(
        await s.append(
          'acme',
          sales.slice(0, 3).map((entry) => ({ entry })),
        ),
      ).toEqual(acks.slice(0, 3).map((a, i) => duplicateOf(a, (sales[i] as Entry).id)))
      // Another content under a dropped id is still another entry.
      const other = { ...(sales[0] as Entry), data: { qty: 40 } }
      expect(await s.append('acme', [{ entry: other }])).toMatchObject([
        { id: other.id, status: 'id_conflict' },
      ])
      // A moved copy of a dropped sale lands no second time (`append-plan.ts` invariant 12).
      const copy = moved(sales[1] as Entry, client(72).clientId, round)
      expect(await s.append('acme', [{ entry: copy }])).toEqual([duplicateOf(acks[1], copy.id)])
      // The log's own correction, resent (a hub forwards them): the same position.
      const [again] = await s.append('acme', [{ entry: correction }])
      expect(again).toMatchObject({
        id: correction.id,
        status: 'duplicate',
        version: 3,
        offset: correction.offset,
      })
      expect(await s.head('acme', 'stock/r')).toMatchObject({ version: 6 + round - 1 })
    }
    await resends(store, 1)
    // A client's correction of a dropped sale names an entry of the log.
    const [voided] = await store.append('acme', [
      { entry: c.next('stock/r', 'stock.moved', { qty: 2 }, { corrects: (sales[0] as Entry).id }) },
    ])
    expect(voided).toMatchObject({ status: 'appended', version: 7 })
    const reopen = h.subject()?.reopen
    if (reopen === undefined) return
    await resends(await reopen(), 2)
  })
}

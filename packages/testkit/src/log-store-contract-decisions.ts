/**
 * The decisions of the server log's conformance suite, registered by `runLogStoreContract` for
 * every store: what the log decides about an entry beyond storing it (its corrections, a
 * request's `expect` and invariants, the relay's refusals, deferrals of unknown types) and that
 * each decision is made once. Numbers are those of `log-store.ts`.
 *
 * Terms: a *correction* is an entry the log writes itself (`clientId` `SERVER_CLIENT_ID`,
 * `corrects` naming the offending entry); an *ack reference* names a correction by entity,
 * version and offset, its body travels on the subscription.
 *
 * What it proves:
 * 7. facts are appended with their corrections (deterministic ids, one per offending entry
 *    however many resends, also to another entity of the tenant, with that entity's next
 *    version); requests are decided once (`conflict` with head, `invariant` with reason), and so
 *    are the relay's own refusals (`forbidden`);
 * 9. corrections are sized and folded before they are written: an oversized one, or one whose
 *    cross-entity target cannot fold it, becomes one small `ledger.correction_failed` on the
 *    offending entity, and no ledger is poisoned;
 * 10. (first part) an entity type the schema lacks is deferred `unknown_type`; a plain log
 *    (no schema) appends anything well formed and still honours `expect`.
 */
import { expect, it } from 'vitest'
import { partitionOf, SERVER_CLIENT_ID } from '@ledgerline/core'
import type { StoredEntry } from '@ledgerline/core'
import { decodeMessage, encodeMessage, ENTRY_DATA_BYTES_MAX } from '@ledgerline/protocol'
import {
  bodyOf,
  checkDense,
  client,
  CONTRACT_PARTITIONS,
  dataBytes,
  readAll,
} from './log-store-contract-fixtures.ts'
import type { ContractHarness } from './log-store-contract-fixtures.ts'

export function decisionContract(h: ContractHarness): void {
  it('appends a fact that breaks an invariant with one deterministic correction', async () => {
    // Goal: guarantee 7 for facts. Method: oversell stock; the fact is appended and one
    // `stock.oversold` correction follows it with id `<id>~nonnegative~0`; resending the fact
    // (alone and beside a new one) returns the same correction and never adds another.
    const store = await h.open()
    const c = client(50)
    await store.append('acme', [{ entry: c.next('stock/a', 'stock.moved', { qty: 2 }) }])
    const sale = c.next('stock/a', 'stock.moved', { qty: -5 })
    const [r] = await store.append('acme', [{ entry: sale }])
    if (r?.status !== 'appended') throw new Error('expected appended')
    expect(r.version).toBe(2)
    // The ack names the correction; its body travels on the subscription (a read here).
    expect(r.corrections).toEqual([
      {
        id: `${sale.id}~nonnegative~0`,
        entity: 'stock/a',
        kind: 'stock.oversold',
        version: 3,
        partition: r.partition,
        offset: r.offset + 1,
      },
    ])
    const fix = await bodyOf(store, r.corrections[0])
    expect(fix).toMatchObject({
      id: `${sale.id}~nonnegative~0`,
      tenant: 'acme',
      entity: 'stock/a',
      kind: 'stock.oversold',
      data: { short: 3, sale: sale.id },
      intent: 'fact',
      corrects: sale.id,
      clientId: SERVER_CLIENT_ID,
      clientSeq: 0,
      version: 3,
      partition: r.partition,
      offset: r.offset + 1,
    })
    for (let i = 0; i < 3; i++) {
      const [dup] = await store.append('acme', [{ entry: sale }])
      expect(dup).toEqual({ ...r, status: 'duplicate' })
    }
    const ledger = await store.readEntity('acme', 'stock/a', 1, 100)
    expect(ledger.map((e) => e.kind)).toEqual(['stock.moved', 'stock.moved', 'stock.oversold'])
    expect(ledger.filter((e) => e.corrects === sale.id)).toHaveLength(1)
    // The correction restored the state: the next small sale needs no correction.
    const [next] = await store.append('acme', [
      { entry: c.next('stock/a', 'stock.moved', { qty: 0 }) },
    ])
    expect(next).toMatchObject({ status: 'appended', version: 4, corrections: [] })
  })

  it('appends a correction to another entity of the tenant with its own version', async () => {
    // Goal: cross-entity corrections. Method: an order has one line; a declined card payment
    // names it; the correction `order.balance_due` lands in the order's ledger as version 2,
    // in the order's partition, in the same commit.
    const store = await h.open()
    const c = client(60)
    await store.append('acme', [{ entry: c.next('order/o1', 'order.line', { sku: 'x' }) }])
    const declined = c.next('payment/p1', 'card.declined', { order: 'order/o1' })
    const [r] = await store.append('acme', [{ entry: declined }])
    if (r?.status !== 'appended') throw new Error('expected appended')
    expect(r.version).toBe(1)
    expect(r.corrections).toHaveLength(1)
    expect(r.corrections[0]).toMatchObject({
      entity: 'order/o1',
      kind: 'order.balance_due',
      version: 2,
      partition: partitionOf('acme', 'order/o1', CONTRACT_PARTITIONS),
    })
    expect(await bodyOf(store, r.corrections[0])).toMatchObject({ corrects: declined.id })
    expect(await store.head('acme', 'order/o1')).toEqual({
      version: 2,
      offset: r.corrections[0]?.offset,
    })
    const [dup] = await store.append('acme', [{ entry: declined }])
    expect(dup).toEqual({ ...r, status: 'duplicate' })
    expect(await store.readEntity('acme', 'order/o1', 1, 10)).toHaveLength(2)
    // The order's next entry folds on top of the correction: version 3.
    const [line] = await store.append('acme', [
      { entry: c.next('order/o1', 'order.line', { sku: 'y' }) },
    ])
    expect(line).toMatchObject({ status: 'appended', version: 3 })
    checkDense(await readAll(store, 'acme'))
  })

  it('appends a fact whose correction is over ENTRY_DATA_BYTES_MAX with a small correction_failed', async () => {
    // Goal: issue 13 case 1, an oversized correction is never committed (it would block every
    // reader of the partition). Method: a sale with a 40 KB note whose rule copies the data
    // twice; the fact lands with one `ledger.correction_failed` naming the rule and the limit,
    // every entry of the partition fits ENTRY_DATA_BYTES_MAX and a page of them decodes, and
    // resends get the same answer.
    const store = await h.open()
    const c = client(55)
    const sale = c.next('shelf/s1', 'shelf.sold', { qty: 1, note: 'n'.repeat(40_000) })
    const [r] = await store.append('acme', [{ entry: sale }])
    if (r?.status !== 'appended') throw new Error(`expected appended, got ${JSON.stringify(r)}`)
    expect(r.corrections).toHaveLength(1)
    const fix = (await bodyOf(store, r.corrections[0])) as StoredEntry
    expect(fix).toMatchObject({
      entity: 'shelf/s1',
      kind: 'ledger.correction_failed',
      corrects: sale.id,
      data: { rules: ['nonNegative'] },
    })
    expect(String((fix.data as { reason?: unknown }).reason)).toContain('ENTRY_DATA_BYTES_MAX')
    expect(dataBytes(fix)).toBeLessThan(2_048)
    const page = await store.readPartition('acme', r.partition, 0, 100)
    expect(page.entries.map((e) => e.kind)).toEqual(['shelf.sold', 'ledger.correction_failed'])
    for (const e of page.entries) expect(dataBytes(e)).toBeLessThanOrEqual(ENTRY_DATA_BYTES_MAX)
    const frame = encodeMessage({
      type: 'entries',
      sub: 1,
      entries: page.entries,
      cursors: { [r.partition]: page.throughOffset },
      live: true,
    })
    expect(decodeMessage(frame)).toMatchObject({ type: 'entries' })
    const [dup] = await store.append('acme', [{ entry: sale }])
    expect(dup).toEqual({ ...r, status: 'duplicate' })
  })

  it('lands a fact whose cross-entity correction its target cannot fold, target unpoisoned', async () => {
    // Goal: issue 13 case 3, one guarded fold path for every correction. Method: a tab whose
    // `reduce` throws on `tab.balance_due`; a declined charge names it. The charge lands with
    // one `ledger.correction_failed` on the charge itself, nothing reaches the tab, resends
    // answer the same, and the tab keeps taking entries, also after a reopen.
    const store = await h.open()
    const c = client(65)
    const [opened] = await store.append('acme', [{ entry: c.next('tab/t1', 'tab.opened', {}) }])
    expect(opened).toMatchObject({ status: 'appended', version: 1 })
    const declined = c.next('charge/c1', 'charge.declined', { tab: 'tab/t1' })
    const [r] = await store.append('acme', [{ entry: declined }])
    if (r?.status !== 'appended') throw new Error(`expected appended, got ${JSON.stringify(r)}`)
    expect(r.version).toBe(1)
    expect(r.corrections).toHaveLength(1)
    expect(await bodyOf(store, r.corrections[0])).toMatchObject({
      entity: 'charge/c1',
      kind: 'ledger.correction_failed',
      corrects: declined.id,
      version: 2,
      data: { rules: ['notDeclined'] },
    })
    expect(await store.readEntity('acme', 'tab/t1', 1, 10)).toHaveLength(1)
    for (let i = 0; i < 2; i++) {
      const [dup] = await store.append('acme', [{ entry: declined }])
      expect(dup).toEqual({ ...r, status: 'duplicate' })
    }
    const [line] = await store.append('acme', [{ entry: c.next('tab/t1', 'tab.line', {}) }])
    expect(line).toMatchObject({ status: 'appended', version: 2 })
    const subject = h.subject()
    const again = subject?.reopen === undefined ? store : await subject.reopen()
    const [after] = await again.append('acme', [{ entry: c.next('tab/t1', 'tab.line', {}) }])
    expect(after).toMatchObject({ status: 'appended', version: 3 })
    checkDense(await readAll(again, 'acme'))
  })

  it('decides requests once: expect and invariants, with reason and head', async () => {
    // Goal: guarantee 7 for requests and 8 of the design. Method: claim a seat with expect 0
    // (appended), again with expect 0 (conflict, head 1), without expect (invariant); resend
    // each refusal and get the same answer; the ledger holds only the winner.
    const store = await h.open()
    const a = client(70)
    const b = client(71)
    const win = a.next('seat/1', 'seat.claimed', {}, { intent: 'request', expect: 0 })
    const late = b.next('seat/1', 'seat.claimed', {}, { intent: 'request', expect: 0 })
    const blind = b.next('seat/1', 'seat.claimed', {}, { intent: 'request' })
    const [w] = await store.append('acme', [{ entry: win }])
    expect(w).toMatchObject({ status: 'appended', version: 1 })
    const [l, x] = await store.append('acme', [{ entry: late }, { entry: blind }])
    expect(l).toMatchObject({ id: late.id, status: 'refused', code: 'conflict', head: 1 })
    expect(x).toMatchObject({ id: blind.id, status: 'refused', code: 'invariant', head: 1 })
    expect(x?.status === 'refused' && x.reason).toContain('seat already taken')
    expect((await store.client('acme', b.clientId)).high).toBe(2)
    const again = await store.append('acme', [{ entry: late }, { entry: blind }])
    expect(again).toEqual([l, x])
    expect(await store.readEntity('acme', 'seat/1', 1, 10)).toHaveLength(1)
  })

  it('records refusals made by the relay (forbidden) and answers resends the same way', async () => {
    // Goal: `refuse` items use up the clientSeq and are decided once. Method: a forbidden
    // item, then the same entry without `refuse`: still refused as forbidden.
    const store = await h.open()
    const c = client(80)
    const e = c.next('stock/a', 'stock.moved', { qty: 1 })
    const [r] = await store.append('acme', [
      { entry: e, refuse: { code: 'forbidden', reason: 'outside write grants' } },
    ])
    expect(r).toMatchObject({
      status: 'refused',
      code: 'forbidden',
      reason: 'outside write grants',
    })
    expect((await store.client('acme', c.clientId)).high).toBe(1)
    expect((await store.append('acme', [{ entry: e }]))[0]).toEqual(r)
    expect(await store.head('acme', 'stock/a')).toEqual({ version: 0, offset: 0 })
    const [next] = await store.append('acme', [
      { entry: c.next('stock/a', 'stock.moved', { qty: 1 }) },
    ])
    expect(next).toMatchObject({ status: 'appended', version: 1 })
  })

  it('defers entities without a type in the schema, and a plain log appends them', async () => {
    // Goal: the schema decides; without one the log is plain. Method: an unknown type is
    // deferred `unknown_type` by a schema'd log (the relay is behind, see the edge cases); a
    // plain log appends anything well formed but still honours `expect`.
    const typed = await h.open()
    const c = client(90)
    const [r] = await typed.append('acme', [{ entry: c.next('thing/1', 'thing.made', {}) }])
    expect(r).toMatchObject({ status: 'deferred', code: 'unknown_type' })
    await h.cleanup()
    const plain = await h.open('plain')
    const d = client(91)
    const results = await plain.append('acme', [
      { entry: d.next('thing/1', 'thing.made', {}) },
      { entry: d.next('stock/a', 'stock.moved', { qty: -10 }) },
      { entry: d.next('thing/1', 'thing.made', {}, { intent: 'request', expect: 0 }) },
      { entry: d.next('thing/1', 'thing.made', {}, { intent: 'request', expect: 1 }) },
    ])
    expect(results.map((x) => x.status)).toEqual(['appended', 'appended', 'refused', 'appended'])
    expect(results[0]).toMatchObject({ corrections: [] })
    expect(results[1]).toMatchObject({ corrections: [] })
    expect(results[2]).toMatchObject({ code: 'conflict', head: 1 })
  })
}

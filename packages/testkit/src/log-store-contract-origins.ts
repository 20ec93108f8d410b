/**
 * Entries moved by restore recovery, in the server log's conformance suite (issue 14 findings A
 * and B), registered by `runLogStoreContract` for every store: a moved entry carries the id it
 * had first (`origin`) and the log answers a copy of an entry it holds `duplicate`, with the
 * positions of the first landing, however the copy was numbered. Numbers are those of
 * `log-store.ts`; the planner's rule is `append-plan.ts` invariant 12.
 */
import { expect, it } from 'vitest'
import { entryId } from '@ledgerline/core'
import type { Entry } from '@ledgerline/core'
import type { Grants } from '@ledgerline/protocol'
import type { Pusher } from '@ledgerline/log'
import { client, duplicateOf, moved } from './log-store-contract-fixtures.ts'
import type { ContractHarness } from './log-store-contract-fixtures.ts'

const ALL: Grants = { read: ['*'], write: ['*'] }

function as(subject: string): Pusher {
  return { subject, grants: ALL }
}

export function originContract(h: ContractHarness): void {
  it('answers a moved copy of an entry it holds duplicate, under any numbering, and uses the clientSeq up', async () => {
    // Goal: guarantee 5 across moves (finding B: the same sales recovered twice, numbered
    // differently). Method: sales s1, s2 land under c1; a first recovery moves them to c2 in
    // another order; a second moves s1 to c3 (its origin copied). Every copy is `duplicate`
    // with its first landing's positions and its own id, nothing is appended, the high-water
    // marks move, resends answer the same, and another content under a used id of c2 is
    // `id_conflict`; also after a reopen.
    const store = await h.open()
    const c1 = client(600)
    const c2 = client(601).clientId
    const c3 = client(602).clientId
    const s1 = c1.next('stock/a', 'stock.moved', { qty: 1 })
    const s2 = c1.next('stock/a', 'stock.moved', { qty: 2 })
    const first = await store.append('acme', [{ entry: s1 }, { entry: s2 }], as('till-1'))
    expect(first.map((r) => r.status)).toEqual(['appended', 'appended'])
    const heads = await store.partitionHeads()
    const copies = [moved(s2, c2, 1), moved(s1, c2, 2)]
    const again = moved(copies[1] as Entry, c3, 1)
    expect(again.origin).toBe(s1.id)
    const check = async (log: typeof store) => {
      expect(
        await log.append(
          'acme',
          copies.map((entry) => ({ entry })),
          as('till-1'),
        ),
      ).toEqual([
        duplicateOf(first[1], copies[0]?.id as string),
        duplicateOf(first[0], copies[1]?.id as string),
      ])
      expect(await log.append('acme', [{ entry: again }], as('till-1'))).toEqual([
        duplicateOf(first[0], again.id),
      ])
      expect(await log.partitionHeads()).toEqual(heads)
      expect(await log.readEntity('acme', 'stock/a', 1, 10)).toHaveLength(2)
      expect(await log.client('acme', c2)).toEqual({ high: 2, subject: 'till-1' })
      expect(await log.client('acme', c3)).toEqual({ high: 1, subject: 'till-1' })
      // Another content under c2-1, which went to a copy: the log cannot take it.
      const other: Entry = { ...(copies[0] as Entry), data: { qty: 9 } }
      const { origin: _origin, ...fresh } = other
      const [conflict] = await log.append('acme', [{ entry: fresh }], as('till-1'))
      expect(conflict).toEqual({ id: fresh.id, status: 'id_conflict', reason: expect.any(String) })
    }
    await check(store)
    const reopen = h.subject()?.reopen
    if (reopen !== undefined) await check(await reopen())
  })

  it('lands a moved entry whose origin it lacks once, and answers later copies of it duplicate', async () => {
    // Goal: finding A (a restored log lacks the entries of an older clientId; they come back
    // moved) and a copy of a copy. Method: c1's sale never reached this log; its move to c2
    // lands; a second move to c3 (numbered differently, origin copied) is `duplicate` of the
    // c2 landing; a copy with the same origin and another content is not a copy: it lands. A
    // copy and its original in one call: the second is `duplicate` of the first.
    const store = await h.open()
    const c1 = client(610)
    const c2 = client(611).clientId
    const c3 = client(612).clientId
    c1.next('stock/b', 'stock.moved', { qty: 5 })
    const lost = c1.next('stock/b', 'stock.moved', { qty: 1 })
    const landed = moved(lost, c2, 1)
    const [appended] = await store.append('acme', [{ entry: landed }], as('till-1'))
    expect(appended?.status).toBe('appended')
    const copy = moved(landed, c3, 1)
    expect(copy.origin).toBe(lost.id)
    expect(await store.append('acme', [{ entry: copy }], as('till-1'))).toEqual([
      duplicateOf(appended, copy.id),
    ])
    const changed: Entry = { ...moved(landed, c3, 2), data: { qty: 7 } }
    const [other] = await store.append('acme', [{ entry: changed }], as('till-1'))
    expect(other?.status).toBe('appended')
    expect((await store.readEntity('acme', 'stock/b', 1, 10)).map((e) => e.data)).toEqual([
      { qty: 1 },
      { qty: 7 },
    ])
    expect((await store.readEntity('acme', 'stock/b', 1, 10))[0]?.origin).toBe(lost.id)
    const c4 = client(613)
    const original = c4.next('stock/c', 'stock.moved', { qty: 3 })
    const c5 = client(614).clientId
    const together = await store.append(
      'acme',
      [{ entry: original }, { entry: moved(original, c5, 1) }],
      as('till-1'),
    )
    expect(together).toEqual([
      expect.objectContaining({ status: 'appended' }),
      duplicateOf(together[0], entryId(c5, 1)),
    ])
    expect(await store.readEntity('acme', 'stock/c', 1, 10)).toHaveLength(1)
  })

  it('answers the original of a moved copy that landed first duplicate', async () => {
    // Goal: finding B the other way round: a copy of the database made before the move and
    // restored after it sends the original under its own id once the moved copy landed.
    // Method: the copy lands under c2 first; the original under c1 is `duplicate` of it, with
    // its own id, uses its clientSeq up, and a resend answers the same.
    const store = await h.open()
    const c1 = client(630)
    const original = c1.next('stock/e', 'stock.moved', { qty: 4 })
    const copy = moved(original, client(631).clientId, 1)
    const [landed] = await store.append('acme', [{ entry: copy }], as('till-1'))
    expect(landed?.status).toBe('appended')
    for (let i = 0; i < 2; i++) {
      expect(await store.append('acme', [{ entry: original }], as('till-1'))).toEqual([
        duplicateOf(landed, original.id),
      ])
    }
    expect(await store.client('acme', c1.clientId)).toEqual({ high: 1, subject: 'till-1' })
    expect(await store.readEntity('acme', 'stock/e', 1, 10)).toHaveLength(1)
  })

  it('takes a corrects that names a copy it answered duplicate, or an origin it lacks', async () => {
    // Goal: a correction survives the move of the entry it corrects (issue 14, seed 200 and the
    // deferred put-back). Method, three cases: (1) the sale is in the log, its moved copy is
    // answered `duplicate` (nothing appended under the copy's id) and a void naming the copy's
    // id lands, in the same call and in a later one after a reopen; (2) the sale never reached
    // the log, its copy landed, and a void naming the sale's first id lands; (3) a void naming
    // an id nothing was recorded under, copy of nothing, is still refused `invalid`.
    const store = await h.open()
    const c1 = client(640)
    const c2 = client(641).clientId
    const sale = c1.next('stock/f', 'stock.moved', { qty: 2 })
    const [first] = await store.append('acme', [{ entry: sale }], as('till-1'))
    expect(first?.status).toBe('appended')
    const copy = moved(sale, c2, 1)
    const voidOf = (corrects: string, clientId: string, clientSeq: number): Entry => ({
      ...c1.next('stock/f', 'stock.moved', { qty: -2 }, { corrects }),
      id: entryId(clientId, clientSeq),
      clientId,
      clientSeq,
    })
    const sameCall = voidOf(copy.id, c2, 2)
    const [dup, voided] = await store.append(
      'acme',
      [{ entry: copy }, { entry: sameCall }],
      as('till-1'),
    )
    expect(dup).toEqual(duplicateOf(first, copy.id))
    expect(voided?.status).toBe('appended')
    const later = async (log: typeof store, clientSeq: number) => {
      const [again] = await log.append(
        'acme',
        [{ entry: voidOf(copy.id, c2, clientSeq) }],
        as('till-1'),
      )
      expect(again?.status).toBe('appended')
    }
    await later(store, 3)
    const reopen = h.subject()?.reopen
    const log = reopen === undefined ? store : await reopen()
    await later(log, 4)
    // (2) the original never landed; its copy did.
    const c3 = client(642)
    const lost = c3.next('stock/g', 'stock.moved', { qty: 1 })
    const c4 = client(643).clientId
    const [landed] = await log.append('acme', [{ entry: moved(lost, c4, 1) }], as('till-1'))
    expect(landed?.status).toBe('appended')
    const [byOrigin] = await log.append('acme', [{ entry: voidOf(lost.id, c4, 2) }], as('till-1'))
    expect(byOrigin?.status).toBe('appended')
    // (3) nothing under the id, and no copy of it: refused as before.
    const [none] = await log.append(
      'acme',
      [{ entry: voidOf(entryId(c4, 9), c4, 3) }],
      as('till-1'),
    )
    expect(none).toMatchObject({ status: 'refused', code: 'invalid' })
  })

  it("never answers a copy of another subject's entry duplicate", async () => {
    // Goal: no leak through origins (guarantee 11). Method: till-1's sale; another subject
    // pushes a copy naming it as origin, with the same content: it is decided as its own entry
    // (appended), never told till-1's positions.
    const store = await h.open()
    const c1 = client(620)
    const sale = c1.next('stock/d', 'stock.moved', { qty: 1 })
    const [first] = await store.append('acme', [{ entry: sale }], as('till-1'))
    const copy = moved(sale, client(621).clientId, 1)
    const [theirs] = await store.append('acme', [{ entry: copy }], as('intruder'))
    expect(theirs).toMatchObject({ status: 'appended', id: copy.id })
    expect(theirs).not.toMatchObject({ offset: (first as { offset: number }).offset })
  })

  it('answers a copy a store hub forwards duplicate, and takes its forwarded void through origins', async () => {
    // Goal: guarantee 5 across moves holds through a store hub (issue 15; the product simulation
    // with hubs, seeds 5 and 7: restore recovery's moved copies, forwarded, landed twice). A hub
    // pushes as its own subject with `subjects` naming each register's; the copy lookups must
    // judge an entry by the register's subject, not the hub's. Method: till-1's sale lands
    // directly; the hub forwards its moved copy for till-1: `duplicate` of the sale; the hub
    // forwards a void naming the sale's first id under the copy's clientId: it lands (by
    // origin); a sale whose copy only landed through the hub is named by a forwarded void too.
    const store = await h.open()
    const c1 = client(650)
    const c2 = client(651).clientId
    const hub = (clientIds: readonly string[]): Pusher => ({
      subject: 'hub-1',
      grants: { read: ['*'], write: ['*'], forward: ['*'] },
      subjects: Object.fromEntries(clientIds.map((c) => [c, 'till-1'])),
    })
    const sale = c1.next('stock/h', 'stock.moved', { qty: 2 })
    const [first] = await store.append('acme', [{ entry: sale }], as('till-1'))
    expect(first?.status).toBe('appended')
    const copy = moved(sale, c2, 1)
    const [dup] = await store.append('acme', [{ entry: copy }], hub([c2]))
    expect(dup).toEqual(duplicateOf(first, copy.id))
    const voidOf = (corrects: string, clientId: string, clientSeq: number): Entry => ({
      ...c1.next('stock/h', 'stock.moved', { qty: -2 }, { corrects }),
      id: entryId(clientId, clientSeq),
      clientId,
      clientSeq,
    })
    const [voided] = await store.append('acme', [{ entry: voidOf(sale.id, c2, 2) }], hub([c2]))
    expect(voided?.status).toBe('appended')
    // A sale that never landed; its moved copy did, through the hub; a void by its first id.
    const c3 = client(652)
    const lost = c3.next('stock/i', 'stock.moved', { qty: 1 })
    const c4 = client(653).clientId
    const [landed] = await store.append('acme', [{ entry: moved(lost, c4, 1) }], hub([c4]))
    expect(landed?.status).toBe('appended')
    const [byOrigin] = await store.append('acme', [{ entry: voidOf(lost.id, c4, 2) }], hub([c4]))
    expect(byOrigin?.status).toBe('appended')
  })

  it('answers a deferred moved copy duplicate on every resend once its original landed', async () => {
    // Goal: guarantee 5 across moves for a copy first deferred (the product simulation with
    // hubs, seed 142: a store hub resends a moved copy head office had deferred, and every push
    // after the second failed on the origins index, so the hub's link never drained). Method:
    // a sale and its moved copy, both stamped a day ahead: the copy is deferred `clock_ahead`;
    // once the clocks agree the sale lands, and the copy's resends, three of them and one in a
    // call with another entry, are each `duplicate` of the sale; nothing else is written.
    const store = await h.open()
    const c1 = client(660)
    const c2 = client(661).clientId
    const sale = c1.next('stock/k', 'stock.moved', { qty: 2 }, { at: h.now() + 24 * 60 * 60_000 })
    const copy = moved(sale, c2, 1)
    const [deferred] = await store.append('acme', [{ entry: copy }], as('till-1'))
    expect(deferred).toMatchObject({ status: 'deferred', code: 'clock_ahead' })
    h.advance(24 * 60 * 60_000)
    const [landed] = await store.append('acme', [{ entry: sale }], as('till-1'))
    expect(landed?.status).toBe('appended')
    for (let i = 0; i < 3; i++) {
      const [again] = await store.append('acme', [{ entry: copy }], as('till-1'))
      expect(again).toEqual(duplicateOf(landed, copy.id))
    }
    const other = client(662).next('stock/k', 'stock.moved', { qty: 1 })
    const [dup, next] = await store.append(
      'acme',
      [{ entry: copy }, { entry: other }],
      as('till-1'),
    )
    expect(dup).toEqual(duplicateOf(landed, copy.id))
    expect(next?.status).toBe('appended')
    expect((await store.readEntity('acme', 'stock/k', 1, 10)).map((e) => e.id)).toEqual([
      sale.id,
      other.id,
    ])
  })
}

/**
 * The edge cases of the server log's conformance suite (issues 12 and 13), registered by
 * `runLogStoreContract` for every store: content digests (`id_conflict`), clientIds bound to
 * subjects (`client_taken`), the log's identity, deferrals (`unknown_type`, `clock_ahead`), a
 * client's `corrects` checked by the log, and acks that carry only references to the log's own
 * corrections the pusher may read. Numbers are those of `log-store.ts`.
 *
 * A store that cannot reopen skips the parts after a reopen; the memory store reopens over the
 * same storage, so every store runs every part.
 */
import { expect, it } from 'vitest'
import {
  defineEntity,
  defineSchema,
  ENTRY_CLOCK_SKEW_MS_MAX,
  UNKNOWN_TYPE_RETRY_MS,
} from '@ledgerline/core'
import type { Entry } from '@ledgerline/core'
import type { Grants } from '@ledgerline/protocol'
import type { AppendResult, LogStore, Pusher } from '@ledgerline/log'
import { client, contractTypes, faultyTypes, readAll } from './log-store-contract-fixtures.ts'
import type { ContractHarness } from './log-store-contract-fixtures.ts'

/** A type the contract schema lacks, as an app ships it before its relay learns it. */
const loyalty = defineEntity<{ points: number }>({
  type: 'loyalty',
  initial: { points: 0 },
  reduce: (s, e) =>
    e.kind === 'loyalty.earned' ? { points: s.points + Number(e.data.points) } : s,
})
const LEARNED_SCHEMA = defineSchema(...contractTypes, ...faultyTypes, loyalty)

const ALL: Grants = { read: ['*'], write: ['*'] }
const DAY_MS = 24 * 60 * 60 * 1000

function as(subject: string, grants: Grants = ALL): Pusher {
  return { subject, grants }
}

export function edgeContract(h: ContractHarness): void {
  it('answers id_conflict to another content under a used id, records nothing, keeps the original', async () => {
    // Goal: guarantee 5 by content (issue 12 cases 1 and 2: a restored device reuses clientSeqs
    // for other sales). Method: an appended fact, a refused request and a deferral, each resent
    // with other content under its id: `id_conflict`, no row written, the originals unchanged
    // and their own resends still answered as before, also after a reopen.
    const store = await h.open()
    const c = client(500)
    const sale = c.next('stock/a', 'stock.moved', { qty: 2 })
    const claim = c.next('seat/1', 'seat.claimed', {}, { intent: 'request', expect: 3 })
    const thing = c.next('thing/1', 'thing.made', { n: 1 })
    const first = await store.append(
      'acme',
      [{ entry: sale }, { entry: claim }, { entry: thing }],
      as('till-1'),
    )
    expect(first.map((r) => r.status)).toEqual(['appended', 'refused', 'deferred'])
    const heads = await store.partitionHeads()
    const others: Entry[] = [
      { ...sale, data: { qty: 3 } },
      { ...claim, expect: 0 },
      { ...thing, data: { n: 2 } },
    ]
    const check = async (log: LogStore) => {
      const conflicts = await log.append(
        'acme',
        others.map((entry) => ({ entry })),
        as('till-1'),
      )
      expect(conflicts).toEqual(
        others.map((e) => ({ id: e.id, status: 'id_conflict', reason: expect.any(String) })),
      )
      expect(await log.partitionHeads()).toEqual(heads)
      expect((await log.readEntity('acme', 'stock/a', 1, 10)).map((e) => e.data)).toEqual([
        { qty: 2 },
      ])
      expect(await log.head('acme', 'seat/1')).toEqual({ version: 0, offset: 0 })
      expect(await log.client('acme', c.clientId)).toEqual({ high: 3, subject: 'till-1' })
      const again = await log.append('acme', [{ entry: sale }, { entry: claim }], as('till-1'))
      expect(again).toEqual([{ ...first[0], status: 'duplicate' }, first[1]])
    }
    await check(store)
    const reopen = h.subject()?.reopen
    if (reopen !== undefined) await check(await reopen())
  })

  it('binds a clientId to the first subject that uses it; another gets client_taken, nothing recorded', async () => {
    // Goal: guarantee 11 (issue 12 case 3). Method: a till appends under its clientId; another
    // subject's next entry and its resend of the till's entry get `client_taken`; the record,
    // the ledger and the binding are unchanged; the till goes on. Then two subjects race for a
    // fresh clientId: exactly one wins and binds it. A call without a pusher binds nothing.
    const store = await h.open()
    const c = client(510)
    expect(await store.client('acme', c.clientId)).toEqual({ high: 0, subject: null })
    const e1 = c.next('stock/a', 'stock.moved', { qty: 1 })
    expect((await store.append('acme', [{ entry: e1 }], as('till-1')))[0]?.status).toBe('appended')
    expect(await store.client('acme', c.clientId)).toEqual({ high: 1, subject: 'till-1' })
    const e2 = c.next('stock/a', 'stock.moved', { qty: 1 })
    const taken = await store.append('acme', [{ entry: e2 }, { entry: e1 }], as('intruder'))
    expect(taken).toEqual([
      { id: e2.id, status: 'client_taken', reason: expect.any(String) },
      { id: e1.id, status: 'client_taken', reason: expect.any(String) },
    ])
    expect(await store.client('acme', c.clientId)).toEqual({ high: 1, subject: 'till-1' })
    expect(await store.readEntity('acme', 'stock/a', 1, 10)).toHaveLength(1)
    expect((await store.append('acme', [{ entry: e2 }], as('till-1')))[0]).toMatchObject({
      status: 'appended',
      version: 2,
    })
    // Tenants are apart: the same clientId in another tenant is another device.
    const o = client(510, 'other')
    o.next('stock/a', 'stock.moved', { qty: 1 })
    const [elsewhere] = await store.append(
      'other',
      [{ entry: o.next('stock/a', 'stock.moved', { qty: 1 }) }],
      as('intruder'),
    )
    expect(elsewhere?.status).toBe('refused') // seq_gap, not client_taken
    // The log's own calls are trusted and bind nothing.
    const own = client(511)
    await store.append('acme', [{ entry: own.next('stock/b', 'stock.moved', { qty: 1 }) }])
    expect(await store.client('acme', own.clientId)).toEqual({ high: 1, subject: null })
    // Two subjects race for a fresh clientId, with different first entries.
    const fresh = client(512)
    const mine = fresh.next('order/o1', 'order.line', { by: 'a' })
    const theirs: Entry = { ...mine, data: { by: 'b' } }
    const raced = await Promise.all([
      store.append('acme', [{ entry: mine }], as('till-a')),
      store.append('acme', [{ entry: theirs }], as('till-b')),
    ])
    const statuses = raced.map((r) => (r[0] as AppendResult).status).sort()
    expect(statuses).toEqual(['appended', 'client_taken'])
    const winner = raced[0]?.[0]?.status === 'appended' ? 'till-a' : 'till-b'
    expect(await store.client('acme', fresh.clientId)).toEqual({ high: 1, subject: winner })
    expect(await store.readEntity('acme', 'order/o1', 1, 10)).toHaveLength(1)
    const reopen = h.subject()?.reopen
    if (reopen === undefined) return
    const again = await reopen()
    expect(await again.client('acme', c.clientId)).toEqual({ high: 2, subject: 'till-1' })
    const [later] = await again.append(
      'acme',
      [{ entry: c.next('stock/a', 'stock.moved', { qty: 1 }) }],
      as('intruder'),
    )
    expect(later?.status).toBe('client_taken')
  })

  it('has an identity: a random id that survives a reopen, and a generation an operator bumps', async () => {
    // Goal: guarantee 13 (issue 12 case 4: clients tell a restored or replaced log). Method:
    // read the identity, bump the generation, reopen; a second log gets another id.
    const store = await h.open()
    const first = await store.identity()
    expect(first.id).toMatch(/^[A-Za-z0-9_-]{22,64}$/)
    expect(first.generation).toBe(1)
    expect(await store.identity()).toEqual(first)
    expect(await store.bumpGeneration()).toEqual({ id: first.id, generation: 2 })
    expect(await store.identity()).toEqual({ id: first.id, generation: 2 })
    const reopen = h.subject()?.reopen
    if (reopen === undefined) return
    const again = await reopen()
    expect(await again.identity()).toEqual({ id: first.id, generation: 2 })
    expect(await again.bumpGeneration()).toEqual({ id: first.id, generation: 3 })
    await h.cleanup()
    const other = await h.open()
    const second = await other.identity()
    expect(second.generation).toBe(1)
    expect(second.id).not.toBe(first.id)
  })

  it('defers a type the log does not know, uses up its clientSeq, decides a resend again, appends it once the schema knows the type', async () => {
    // Goal: guarantee 10 (issue 12 case 7: an app ships a type before its relay learns it).
    // Method: a `loyalty` entry and a stock entry after it: the first is deferred with a retry
    // hint and not written, the second appended (no seq_gap); a resend is deferred again; after
    // a reopen with a schema that has the type, the resend is appended, once.
    const store = await h.open()
    const c = client(540)
    const earned = c.next('loyalty/l1', 'loyalty.earned', { points: 5 })
    const after = c.next('stock/a', 'stock.moved', { qty: 1 })
    const [d, a] = await store.append('acme', [{ entry: earned }, { entry: after }], as('till-1'))
    expect(d).toEqual({
      id: earned.id,
      status: 'deferred',
      code: 'unknown_type',
      reason: expect.stringContaining('loyalty/l1'),
      retryAfterMs: UNKNOWN_TYPE_RETRY_MS,
    })
    expect(a?.status).toBe('appended')
    expect(await store.client('acme', c.clientId)).toEqual({ high: 2, subject: 'till-1' })
    expect((await store.append('acme', [{ entry: earned }], as('till-1')))[0]).toEqual(d)
    expect(await store.readEntity('acme', 'loyalty/l1', 1, 10)).toEqual([])
    const next = c.next('stock/a', 'stock.moved', { qty: 1 })
    expect((await store.append('acme', [{ entry: next }], as('till-1')))[0]?.status).toBe(
      'appended',
    )
    const reopen = h.subject()?.reopen
    if (reopen === undefined) return
    const learned = await reopen({ schema: LEARNED_SCHEMA })
    const [landed] = await learned.append('acme', [{ entry: earned }], as('till-1'))
    expect(landed).toMatchObject({ id: earned.id, status: 'appended', version: 1 })
    expect((await learned.append('acme', [{ entry: earned }], as('till-1')))[0]).toEqual({
      ...landed,
      status: 'duplicate',
    })
    const changed: Entry = { ...earned, data: { points: 50 } }
    expect((await learned.append('acme', [{ entry: changed }], as('till-1')))[0]?.status).toBe(
      'id_conflict',
    )
    expect(await learned.readEntity('acme', 'loyalty/l1', 1, 10)).toHaveLength(1)
  })

  it('defers a client entry stamped past ENTRY_CLOCK_SKEW_MS_MAX ahead, and appends its resend once the clocks agree', async () => {
    // Goal: guarantee 10 for clocks (issue 13 case 17). Method: an entry a day ahead of the
    // log's clock and one a minute ahead: the first is deferred `clock_ahead` with a positive
    // retry hint, the second appended; the next entry follows on; a resend is deferred again
    // until the log's clock has moved a day, then it is appended.
    const store = await h.open()
    const c = client(550)
    const ahead = c.next('stock/a', 'stock.moved', { qty: 1 }, { at: h.now() + DAY_MS })
    const minute = c.next('stock/a', 'stock.moved', { qty: 1 }, { at: h.now() + 60_000 })
    const [d, m] = await store.append('acme', [{ entry: ahead }, { entry: minute }], as('till-1'))
    expect(d).toMatchObject({ id: ahead.id, status: 'deferred', code: 'clock_ahead' })
    expect(d?.status === 'deferred' && d.retryAfterMs).toBeGreaterThan(0)
    expect(m?.status).toBe('appended')
    const next = c.next('stock/a', 'stock.moved', { qty: 1 })
    expect((await store.append('acme', [{ entry: next }], as('till-1')))[0]?.status).toBe(
      'appended',
    )
    expect((await store.append('acme', [{ entry: ahead }], as('till-1')))[0]).toMatchObject({
      status: 'deferred',
      code: 'clock_ahead',
    })
    h.advance(DAY_MS - ENTRY_CLOCK_SKEW_MS_MAX)
    const [landed] = await store.append('acme', [{ entry: ahead }], as('till-1'))
    expect(landed).toMatchObject({ status: 'appended', version: 3 })
    expect((await store.readEntity('acme', 'stock/a', 1, 10)).map((e) => e.id)).toEqual([
      minute.id,
      next.id,
      ahead.id,
    ])
  })

  it("refuses, and records, a client's corrects that names no entry of the log or one the pusher may not write", async () => {
    // Goal: guarantee 7's check of `corrects` (issue 13 case 11: a client cannot forge the
    // log's corrections). Method: a sale; a pusher that may write orders only names it, and
    // another names an id that is nowhere: both refused `invalid`, recorded (a resend gets the
    // same), nothing written. A pusher that may write stock names the sale and an entry earlier
    // in the same call: appended. The log's own calls are still checked for existence.
    const store = await h.open()
    const victim = client(560)
    const sale = victim.next('stock/s1', 'stock.moved', { qty: 5 })
    await store.append('acme', [{ entry: sale }], as('victim'))
    const outsider = client(561)
    const intoOrder = outsider.next('order/o1', 'order.line', {}, { corrects: sale.id })
    const nowhere = outsider.next(
      'order/o1',
      'order.line',
      {},
      { corrects: `${'d4'.repeat(16)}-7` },
    )
    const orders = as('outsider', { read: ['*'], write: ['order/*'] })
    const refused = await store.append('acme', [{ entry: intoOrder }, { entry: nowhere }], orders)
    expect(refused.map((r) => (r.status === 'refused' ? `refused:${r.code}` : r.status))).toEqual([
      'refused:invalid',
      'refused:invalid',
    ])
    // One reason for both: the outsider learns nothing of entries it may not write.
    expect(refused[0]?.status === 'refused' && refused[0].reason).toContain('corrects')
    expect(await store.readEntity('acme', 'order/o1', 1, 10)).toEqual([])
    expect((await store.client('acme', outsider.clientId)).high).toBe(2)
    expect(await store.append('acme', [{ entry: intoOrder }], orders)).toEqual([refused[0]])
    const refunder = client(562)
    const own = refunder.next('stock/s1', 'stock.moved', { qty: 1 })
    const ofOwn = refunder.next('stock/s1', 'stock.moved', { qty: -1 }, { corrects: own.id })
    const ofSale = refunder.next('stock/s1', 'stock.moved', { qty: -1 }, { corrects: sale.id })
    const allowed = await store.append(
      'acme',
      [{ entry: own }, { entry: ofOwn }, { entry: ofSale }],
      as('refunder', { read: ['*'], write: ['stock/*'] }),
    )
    expect(allowed.map((r) => r.status)).toEqual(['appended', 'appended', 'appended'])
    const trusted = client(563)
    const [made] = await store.append('acme', [
      { entry: trusted.next('stock/s1', 'stock.moved', { qty: 0 }, { corrects: nowhere.id }) },
    ])
    expect(made).toMatchObject({ status: 'refused', code: 'invalid' })
  })

  it("lists only the log's own corrections in a duplicate, however many client entries name the entry", async () => {
    // Goal: guarantee 12 (issue 13 case 11: planted entries must not reach the victim's ack).
    // Method: an oversold sale gets one correction; a writer plants 12 entries whose
    // `corrects` names the sale; the sale's resend lists the one correction, also after a
    // reopen, and the feed predicate of core agrees with what is stored.
    const store = await h.open()
    const victim = client(570)
    const sale = victim.next('stock/s2', 'stock.moved', { qty: -1 })
    const [first] = await store.append('acme', [{ entry: sale }], as('victim'))
    if (first?.status !== 'appended') throw new Error(`expected appended: ${JSON.stringify(first)}`)
    expect(first.corrections).toHaveLength(1)
    const writer = client(571)
    const planted = Array.from({ length: 12 }, (_, i) => ({
      entry: writer.next('stock/s2', 'stock.moved', { qty: 0, i }, { corrects: sale.id }),
    }))
    const plantedResults = await store.append('acme', planted, as('writer'))
    expect(plantedResults.every((r) => r.status === 'appended')).toBe(true)
    const check = async (log: LogStore) => {
      const [again] = await log.append('acme', [{ entry: sale }], as('victim'))
      expect(again).toEqual({ ...first, status: 'duplicate' })
    }
    await check(store)
    const reopen = h.subject()?.reopen
    if (reopen !== undefined) await check(await reopen())
  })

  it('lists in a result only the corrections whose entity the pusher may read', async () => {
    // Goal: guarantee 12's read filter (guarantee 9 of the design: nothing outside a client's
    // scope is sent to it). Method: a declined payment whose correction lands on its order; a
    // pusher that may read payments only gets no reference, in the ack and in a duplicate; a
    // pusher (or the log's own call) that may read the order gets the reference.
    const store = await h.open()
    const c = client(580)
    await store.append('acme', [{ entry: c.next('order/o9', 'order.line', {}) }], as('till-1'))
    const declined = c.next('payment/p9', 'card.declined', { order: 'order/o9' })
    const narrow = as('till-1', { read: ['payment/*'], write: ['*'] })
    const [r] = await store.append('acme', [{ entry: declined }], narrow)
    expect(r).toMatchObject({ status: 'appended', corrections: [] })
    const [dup] = await store.append('acme', [{ entry: declined }], narrow)
    expect(dup).toMatchObject({ status: 'duplicate', corrections: [] })
    const [wide] = await store.append('acme', [{ entry: declined }], as('till-1'))
    const order = (await readAll(store, 'acme')).find((e) => e.kind === 'order.balance_due')
    expect(wide).toMatchObject({
      status: 'duplicate',
      corrections: [{ id: order?.id, entity: 'order/o9', kind: 'order.balance_due', version: 2 }],
    })
    const [own] = await store.append('acme', [{ entry: declined }])
    expect(own?.status === 'duplicate' && own.corrections).toHaveLength(1)
  })
}

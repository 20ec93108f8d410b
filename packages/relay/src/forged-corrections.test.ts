// Goal: issue 13 case 11 — only the log makes corrections of other clients' entries. A client
// entry's `corrects` must name an entry that exists in the log (same tenant) and whose entity the
// pusher may write; otherwise the entry is refused `invalid` (recorded: a decision about it). And
// acks list only the log's own corrections (clientId `server`): on 3a8bfae a `duplicate` ack of the
// victim's sale lists every client entry that claims to correct it, so a few dozen planted ones
// land in the victim's conflicts inbox, and enough of them make its ack too big to send.
// Method: the real relay on SQLite and PostgreSQL (the contract schema: `stock` with its
// `stock.oversold` correction), wire clients for the victim and two attackers.
import { describe, expect, it } from 'vitest'
import type { AckResult } from '@ledgerline/protocol'
import { LOG_KINDS, makeEntry, pushAcked, TENANT, useEdgeRelays } from './edges.test-helper.ts'

const VICTIM = 'a1'.repeat(16)
const WRITER = 'b2'.repeat(16)
const OUTSIDER = 'c3'.repeat(16)
// Under ACK_CORRECTIONS_MAX (16), so that on 3a8bfae the duplicate ack still decodes and the test
// shows what it lists; a few dozen make it undecodable for the victim (too_large), for good.
const PLANTED = 12

const edge = useEdgeRelays()

describe.each(LOG_KINDS)('issue 13 case 11: forged corrections (%s)', (kind) => {
  it('refuses corrects naming an entry that does not exist or whose entity the pusher may not write', async () => {
    const relay = await edge.start(kind)
    const victim = await edge.connect(relay.url, VICTIM, { sub: 'victim' })
    const sale = makeEntry(VICTIM, 1, 'stock/s1', 'stock.moved', { qty: 5 })
    expect((await pushAcked(victim, 1, [sale])).map((r) => r.status)).toEqual(['appended'])

    // Write grant on orders only: it may not correct a stock entry.
    const outsider = await edge.connect(relay.url, OUTSIDER, {
      sub: 'outsider',
      write: ['order/*'],
    })
    const intoOrder = makeEntry(OUTSIDER, 1, 'order/o11', 'order.line', {}, { corrects: sale.id })
    const nowhere = makeEntry(
      OUTSIDER,
      2,
      'order/o11',
      'order.line',
      {},
      { corrects: `${'d4'.repeat(16)}-7` },
    )
    const results = await pushAcked(outsider, 1, [intoOrder, nowhere])
    expect(results.map(refusal)).toEqual(['refused:invalid', 'refused:invalid'])
    expect(await relay.store.readEntity(TENANT, 'order/o11', 1, 100)).toEqual([])
    // Recorded: a resend gets the same decision.
    expect((await pushAcked(outsider, 2, [intoOrder])).map(refusal)).toEqual(['refused:invalid'])
  })

  it("lists only the log's corrections in a duplicate ack, however many entries claim to correct it", async () => {
    const relay = await edge.start(kind)
    const victim = await edge.connect(relay.url, VICTIM, { sub: 'victim' })
    // A sale that oversells: the log appends one real correction (stock.oversold).
    const sale = makeEntry(VICTIM, 1, 'stock/s2', 'stock.moved', { qty: -1 })
    const [first] = await pushAcked(victim, 1, [sale])
    expect(first?.status).toBe('appended')
    const real = first?.status === 'appended' ? first.corrections : []
    expect(real).toHaveLength(1)

    // Someone who may write stock plants entries that claim to correct the sale.
    const writer = await edge.connect(relay.url, WRITER, { sub: 'writer' })
    const planted = Array.from({ length: PLANTED }, (_, i) =>
      makeEntry(WRITER, i + 1, 'stock/s2', 'stock.moved', { qty: 0, i }, { corrects: sale.id }),
    )
    await pushAcked(writer, 1, planted)

    // The victim resends its sale (a lost ack): the duplicate names the log's correction only.
    const [again] = await pushAcked(victim, 2, [sale])
    expect(again?.status).toBe('duplicate')
    expect(correctionIds(again)).toEqual(correctionIds(first))
    expect(correctionIds(again).every((id) => id.startsWith(`${sale.id}~`))).toBe(true)
  })
})

function refusal(r: AckResult): string {
  return r.status === 'refused' ? `refused:${r.code}` : r.status
}

/** Ids of the corrections an ack result names (bodies or, in protocol 2, references). */
function correctionIds(r: AckResult | undefined): string[] {
  if (r === undefined || r.status === 'refused') return []
  const list = (r as { corrections?: readonly { id: string }[] }).corrections ?? []
  return list.map((c) => c.id)
}

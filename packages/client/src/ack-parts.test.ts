// Goal: issue 13 case 2 — an ack never exceeds a frame, so it can always be sent. The exact
// scenario of the issue: 200 sales of an out-of-stock item made offline, whose correction carries
// the stock's recent moves (about 14 KB each). On 3a8bfae the relay commits all 400 entries, then
// cannot encode the ack (over FRAME_BYTES_MAX), closes with `internal: cannot send ack`, and the
// client resends the same batch forever. Here every sale lands once, the outbox drains, every
// ack frame fits, and the corrections reach the till (by the subscription).
// Method: the real client with a wire spy, the real relay on SQLite and PostgreSQL, one schema
// for both (a stock type whose `correct` copies its last RECENT_MOVES moves, each with a note).
import 'fake-indexeddb/auto'
import { describe, expect, it } from 'vitest'
import { defineEntity, defineSchema } from '@ledgerline/core'
import { FRAME_BYTES_MAX } from '@ledgerline/protocol'
import { LOG_KINDS, useEdgeServers } from '../test-support/edge-relay.ts'
import { eventually } from '../test-support/setup.ts'
import { createWireSpy } from '../test-support/wire-spy.ts'

const SALES = 200
const RECENT_MOVES = 60
const NOTE = 'espresso 1 kg, whole beans, till 3 — '.repeat(4)

interface Stock {
  readonly onHand: number
  readonly moves: readonly { readonly id: string; readonly qty: number; readonly note: string }[]
}
const stock = defineEntity<Stock>({
  type: 'stock',
  initial: { onHand: 0, moves: [] },
  reduce: (s, e) => {
    if (e.kind === 'stock.moved') {
      const move = { id: e.id, qty: Number(e.data.qty), note: String(e.data.note) }
      return { onHand: s.onHand + move.qty, moves: [...s.moves, move].slice(-RECENT_MOVES) }
    }
    if (e.kind === 'stock.oversold') return { ...s, onHand: s.onHand + Number(e.data.short) }
    return s
  },
  invariants: { nonNegative: (s) => s.onHand >= 0 || 'stock below zero' },
  // The correction a back office wants: what was short, and the moves that led there.
  correct: (s, _broken, e) => [
    { kind: 'stock.oversold', data: { short: -s.onHand, sale: e.id, recent: s.moves } },
  ],
})
const schema = defineSchema(stock)

const startEdgeServer = useEdgeServers()

describe.each(LOG_KINDS)('issue 13 case 2: acks within the frame limit (%s)', (kind) => {
  it('200 offline sales of an out-of-stock item, each corrected with recent moves, all land once', async () => {
    const server = await startEdgeServer(kind, { schema })
    server.proxy.setOnline(false)
    const spy = createWireSpy()
    const till = server.open({ schema, WebSocket: spy.WebSocket })
    const sold = await till.appendMany(
      Array.from({ length: SALES }, () => ({
        entity: 'stock/s1:espresso-1kg',
        kind: 'stock.moved',
        data: { qty: -1, note: NOTE },
      })),
    )
    server.proxy.setOnline(true)
    expect(await till.synced({ timeoutMs: 30_000 })).toEqual({ _tag: 'synced' })
    expect(spy.errorKinds()).toEqual([])
    const ledger = await server.entries('stock/s1:espresso-1kg')
    const sales = ledger.filter((e) => e.kind === 'stock.moved')
    expect(sales.map((e) => e.id)).toEqual(sold.map((e) => e.id))
    expect(ledger.filter((e) => e.kind === 'stock.oversold')).toHaveLength(SALES)
    // Every ack frame fit, and together they answered each sale once.
    const acks = spy.received.filter((f) => f.type === 'ack')
    for (const ack of acks) expect(ack.bytes).toBeLessThanOrEqual(FRAME_BYTES_MAX)
    const answered = spy.ackResults().map((r) => r.id)
    expect(new Set(answered)).toEqual(new Set(sold.map((e) => e.id)))
    expect(answered).toHaveLength(SALES)
    // The correction bodies reached the till, through the subscription.
    await eventually(
      async () => (await till.corrections(1_000)).length === SALES,
      20_000,
      'every correction in the feed',
    )
    expect((await till.load<Stock>('stock/s1:espresso-1kg')).confirmed.onHand).toBe(0)
  }, 90_000)
})

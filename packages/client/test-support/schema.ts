// The test schema, shared by the Node tests, the relay they start and the browser test page:
// a stock type with a correction (oversold), a gift card taking requests, and orders.
import { defineEntity, defineSchema } from '@ledgerline/core'

export const stock = defineEntity({
  type: 'stock',
  initial: { onHand: 0 },
  reduce: (s: { onHand: number }, e) =>
    e.kind === 'stock.moved'
      ? { onHand: s.onHand + (e.data.qty as number) }
      : e.kind === 'stock.oversold'
        ? { onHand: s.onHand + (e.data.short as number) }
        : s,
  invariants: { nonNegative: (s) => s.onHand >= 0 || 'stock below zero' },
  correct: (s, _broken, e) => [{ kind: 'stock.oversold', data: { short: -s.onHand, sale: e.id } }],
})

export const card = defineEntity({
  type: 'card',
  initial: { balance: 0 },
  reduce: (s: { balance: number }, e) =>
    e.kind === 'card.loaded'
      ? { balance: s.balance + (e.data.amount as number) }
      : e.kind === 'card.redeemed'
        ? { balance: s.balance - (e.data.amount as number) }
        : s,
  invariants: { nonNegative: (s) => s.balance >= 0 || 'balance below zero' },
})

export const order = defineEntity({
  type: 'order',
  initial: { lines: 0 },
  reduce: (s: { lines: number }, e) => (e.kind === 'order.line' ? { lines: s.lines + 1 } : s),
})

export const schema = defineSchema(stock, card, order)

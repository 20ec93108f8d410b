/**
 * The point-of-sale schema the simulation's workload writes: one entity type per kind of
 * decision the design names.
 *
 * - `stock/<store>:<sku>`: facts `stock.moved {qty}`; invariant `nonNegative`; an oversold sale
 *   is followed by `stock.oversold {short, sale}`, which writes the shortfall off (a recount),
 *   so every offending sale gets exactly one correction.
 * - `order/<till>-<n>`: facts `order.line {amount}`, `order.paid {amount}`, `order.voided`
 *   (a client correction: `corrects` names the line it voids).
 * - `giftcard/<id>`: fact `giftcard.issued {amount}`; request `giftcard.redeem {amount}` with
 *   `expect`; invariant `funded` (balance ≥ 0), so an over-redeem request is refused.
 * - `counter/<id>`: fact `counter.added {n}`; commutative, a stand-in for CRDT updates whose
 *   order does not matter.
 *
 * Invariants:
 * 1. Every `reduce` is pure and total over the kinds above; unknown kinds leave state as is.
 */
import type { Schema } from '@ledgerline/core'
import { defineEntity, defineSchema } from '@ledgerline/core'

export interface StockState {
  readonly onHand: number
}
export interface OrderState {
  readonly total: number
  readonly paid: number
  readonly lines: number
}
export interface GiftCardState {
  readonly balance: number
}
export interface CounterState {
  readonly n: number
}

export const simStock = defineEntity<StockState>({
  type: 'stock',
  initial: { onHand: 0 },
  reduce: (s, e) => {
    if (e.kind === 'stock.moved') return { onHand: s.onHand + (e.data.qty as number) }
    if (e.kind === 'stock.oversold') return { onHand: s.onHand + (e.data.short as number) }
    return s
  },
  invariants: { nonNegative: (s) => s.onHand >= 0 || 'stock below zero' },
  correct: (s, _broken, e) => [{ kind: 'stock.oversold', data: { short: -s.onHand, sale: e.id } }],
  validate: (e) =>
    e.kind !== 'stock.moved' || Number.isInteger(e.data?.qty) || 'stock.moved needs integer qty',
})

export const simOrder = defineEntity<OrderState>({
  type: 'order',
  initial: { total: 0, paid: 0, lines: 0 },
  reduce: (s, e) => {
    switch (e.kind) {
      case 'order.line':
        return { ...s, total: s.total + (e.data.amount as number), lines: s.lines + 1 }
      case 'order.voided':
        return { ...s, total: s.total - (e.data.amount as number), lines: s.lines - 1 }
      case 'order.paid':
        return { ...s, paid: s.paid + (e.data.amount as number) }
      default:
        return s
    }
  },
})

export const simGiftCard = defineEntity<GiftCardState>({
  type: 'giftcard',
  initial: { balance: 0 },
  reduce: (s, e) => {
    if (e.kind === 'giftcard.issued') return { balance: s.balance + (e.data.amount as number) }
    if (e.kind === 'giftcard.redeem') return { balance: s.balance - (e.data.amount as number) }
    return s
  },
  invariants: { funded: (s) => s.balance >= 0 || 'gift card overdrawn' },
  validate: (e) =>
    e.kind !== 'giftcard.redeem' || e.intent === 'request' || 'redeem must be a request',
})

export const simCounter = defineEntity<CounterState>({
  type: 'counter',
  initial: { n: 0 },
  reduce: (s, e) => (e.kind === 'counter.added' ? { n: s.n + (e.data.n as number) } : s),
})

/** The simulation's schema: the same module decides on the server and folds on clients. */
export const simPosSchema: Schema = defineSchema(simStock, simOrder, simGiftCard, simCounter)

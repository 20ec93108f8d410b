/**
 * What the register appends: each business action becomes one batch of entries across the
 * ledgers it touches, appended in one local transaction (`appendMany`), so a sale is never
 * half on the register: the order, its payments, the stock it moved, the prices it charged,
 * the drawer's cash and the day's record all land together, and reach the relay exactly once.
 *
 * Terms: a *tender* is one way the customer paid part of a sale; a sale has one, or a gift
 * card first and then cash or a card (*split tender*). Payment `<order>-1` is the first tender,
 * `<order>-2` the second.
 *
 * Invariants:
 * 1. A sale's tender amounts add up to its total, and every cash amount has its drawer entry.
 * 2. Every money move also lands on the day ledger of the register that made it, so the day
 *    report is a fold of ledgers, never of a register's local lists.
 * 3. A discount is the exact percentage typed (at most two decimals, 0 to 100); only the amount
 *    is rounded, half up, to the cent.
 */
import type { DataObject } from '@ledgerline/core'
import { DISCOUNT_DECIMALS_MAX, REFUND_REASON_CHARS_MAX, SALE_TENDERS_MAX } from './limits.ts'
import { isPercent, type PaymentState, type OrderState, type TenderMethod } from './schema.ts'
import type { Session } from './session.ts'

export interface Draft {
  readonly entity: string
  readonly kind: string
  readonly data: DataObject
  readonly intent?: 'fact' | 'request'
  readonly corrects?: string
}

export interface CartLine {
  readonly sku: string
  readonly name: string
  readonly qty: number
  /** The list price the register showed when the item was rung up, in cents. */
  readonly unitPrice: number
}

export type Tender =
  | { readonly method: 'cash'; readonly amount: number; readonly tendered: number }
  | {
      readonly method: 'card'
      readonly amount: number
      readonly last4: string
      readonly contact: string
      readonly offline: boolean
    }
  | { readonly method: 'giftcard'; readonly amount: number; readonly card: string }

export interface Totals {
  readonly subtotal: number
  readonly discount: number
  readonly total: number
}

/**
 * Totals of a cart with a discount of `discountPercent` (invariant 3). A percentage outside
 * 0..100 or with more decimals is a programmer error: `parseDiscount` refuses it first.
 *
 * @example
 * cartTotals([{ sku: 'a', name: 'A', qty: 1, unitPrice: 999 }], 12.5) // discount 125, total 874
 */
export function cartTotals(lines: readonly CartLine[], discountPercent: number): Totals {
  if (!isPercent(discountPercent)) {
    throw new RangeError(`discount ${discountPercent} % is not 0..100 with two decimals`)
  }
  let subtotal = 0
  for (const l of lines) subtotal += l.qty * l.unitPrice
  // Hundredths of a percent are integers, so the half-up rounding is exact.
  const hundredths = Math.round(discountPercent * 100)
  const discount = Math.floor((subtotal * hundredths + 5_000) / 10_000)
  return { subtotal, discount, total: subtotal - discount }
}

export type DiscountInput =
  | { readonly _tag: 'ok'; readonly percent: number }
  | { readonly _tag: 'invalid'; readonly reason: string }

/**
 * Reads the discount box: empty is no discount; otherwise a percentage from 0 to 100 with at
 * most two decimals. Anything else is refused with a reason the cashier can act on, never
 * clamped or rounded.
 *
 * @example
 * parseDiscount('12.5') // { _tag: 'ok', percent: 12.5 }
 * parseDiscount('150')  // { _tag: 'invalid', reason: 'A discount cannot be more than 100 %.' }
 */
export function parseDiscount(text: string): DiscountInput {
  const t = text.trim().replace(/\s*%$/, '')
  if (t === '') return { _tag: 'ok', percent: 0 }
  const m = /^(\d{1,4})(?:[.,](\d+))?$/.exec(t)
  if (m === null) {
    return { _tag: 'invalid', reason: 'Type a percentage from 0 to 100, like 10 or 12.5.' }
  }
  if ((m[2]?.length ?? 0) > DISCOUNT_DECIMALS_MAX) {
    return {
      _tag: 'invalid',
      reason: `A discount has at most ${DISCOUNT_DECIMALS_MAX} decimals, like 12.5 or 12.25.`,
    }
  }
  const percent = Number(`${m[1]}.${m[2] ?? '0'}`)
  if (percent > 100) return { _tag: 'invalid', reason: 'A discount cannot be more than 100 %.' }
  return { _tag: 'ok', percent }
}

/** A new order id: store, register, then time and randomness so ids never collide. */
export function newOrderId(session: Session): string {
  const rand = Math.floor(Math.random() * 36 ** 3)
    .toString(36)
    .padStart(3, '0')
  return `${session.store}-${session.register}-${Date.now().toString(36)}${rand}`
}

/** The short number printed on receipts. */
export function receiptNumber(orderId: string): string {
  const parts = orderId.split('-')
  return `${parts[1] ?? ''}-${(parts[2] ?? orderId).slice(-6)}`.toUpperCase()
}

/** `cash`, `card`, `giftcard`, or `split` for a gift card and then cash or card. */
export function tenderLabel(tenders: readonly { readonly method: TenderMethod }[]): string {
  return tenders.length === 1 ? (tenders[0]?.method ?? '') : 'split'
}

export interface SaleInput {
  readonly session: Session
  readonly orderId: string
  readonly date: string
  readonly lines: readonly CartLine[]
  readonly totals: Totals
  readonly discountPercent: number
  readonly tenders: readonly Tender[]
}

/** Every entry of one sale (invariants 1 and 2). */
export function saleDrafts(input: SaleInput): Draft[] {
  const { session, orderId, lines, totals, tenders } = input
  const { store, register } = session
  checkTenders(tenders, totals.total)
  const card = tenders.find((t) => t.method === 'card')
  const parts = tenders.map((t) => ({ method: t.method, amount: t.amount }))
  const drafts: Draft[] = [
    {
      entity: `order/${orderId}`,
      kind: 'order.completed',
      data: {
        store,
        register,
        lines: lines.map((l) => ({ sku: l.sku, name: l.name, qty: l.qty, unitPrice: l.unitPrice })),
        subtotal: totals.subtotal,
        discount: totals.discount,
        discountPercent: input.discountPercent,
        total: totals.total,
        tender: tenderLabel(tenders),
        tenders: parts,
        contact: card?.method === 'card' ? card.contact : '',
        day: `${store}:${input.date}`,
      },
    },
  ]
  tenders.forEach((t, i) => {
    drafts.push(paymentDraft(`${orderId}-${i + 1}`, orderId, t, `${store}:${input.date}`, register))
  })
  for (const l of lines) {
    drafts.push({
      entity: `stock/${store}:${l.sku}`,
      kind: 'stock.sold',
      data: { sku: l.sku, qty: l.qty, order: orderId },
    })
    drafts.push({
      entity: `price/${store}:${l.sku}`,
      kind: 'price.charged',
      data: { sku: l.sku, qty: l.qty, unitPrice: l.unitPrice, order: orderId },
    })
  }
  for (const t of tenders) {
    if (t.method !== 'cash') continue
    drafts.push({
      entity: drawerEntity(session),
      kind: 'cash.in',
      data: { amount: t.amount, order: orderId },
    })
  }
  drafts.push({
    entity: dayEntity(store, input.date),
    kind: 'day.sale',
    data: {
      order: orderId,
      register,
      total: totals.total,
      tender: tenderLabel(tenders),
      tenders: parts,
    },
  })
  return drafts
}

function paymentDraft(
  paymentId: string,
  orderId: string,
  tender: Tender,
  day: string,
  register: string,
): Draft {
  const entity = `payment/${paymentId}`
  switch (tender.method) {
    case 'cash':
      return {
        entity,
        kind: 'cash.received',
        data: {
          order: orderId,
          amount: tender.amount,
          tendered: tender.tendered,
          change: tender.tendered - tender.amount,
        },
      }
    case 'card':
      return {
        entity,
        kind: 'card.charged',
        // The day and register let a later decline reach the right day report.
        data: {
          order: orderId,
          amount: tender.amount,
          last4: tender.last4,
          contact: tender.contact,
          offline: tender.offline,
          day,
          register,
        },
      }
    case 'giftcard':
      return {
        entity,
        kind: 'giftcard.charged',
        data: { order: orderId, amount: tender.amount, card: tender.card },
      }
  }
}

// ---------------------------------------------------------------------------------------------
// Refunds

/** One payment of an order as the refund sees it: its id (`<order>-<n>`) and state. */
export interface OrderPayment {
  readonly id: string
  readonly state: PaymentState
}

/**
 * What may still be refunded on an order, in cents: nothing for a voided order or one whose
 * card was declined (its balance is settled in the Inbox), else the total less earlier refunds.
 *
 * @example
 * refundableAmount(order, payments) // 1250
 */
export function refundableAmount(o: OrderState, payments: readonly OrderPayment[]): number {
  if (o.status !== 'completed') return 0
  if (payments.some((p) => p.state.status === 'declined')) return 0
  return Math.max(0, o.total - o.refunded)
}

export interface RefundPart {
  readonly paymentId: string
  readonly method: TenderMethod
  readonly amount: number
  /** The gift card's code, for a part that goes back onto a gift card. */
  readonly card: string
}

/**
 * How a refund of `amount` is split over the sale's payments: the last tender first (the cash
 * or card paid after a gift card), then back onto the gift card.
 *
 * @example
 * refundParts([giftcard500, cash700], 900) // [cash 700, giftcard 200]
 */
export function refundParts(payments: readonly OrderPayment[], amount: number): RefundPart[] {
  const parts: RefundPart[] = []
  let left = amount
  for (let i = payments.length - 1; i >= 0 && left > 0; i--) {
    const p = payments[i] as OrderPayment
    const room = p.state.amount - p.state.refunded
    if (room <= 0) continue
    const take = Math.min(room, left)
    parts.push({
      paymentId: p.id,
      method: p.state.method === '' ? 'cash' : p.state.method,
      amount: take,
      card: p.state.method === 'giftcard' ? p.state.last4 : '',
    })
    left -= take
  }
  return parts
}

export type RefundReasonInput =
  | { readonly _tag: 'ok'; readonly reason: string }
  | { readonly _tag: 'invalid'; readonly reason: string }

/** A refund needs a reason the audit can read: 3 to `REFUND_REASON_CHARS_MAX` characters. */
export function parseRefundReason(text: string): RefundReasonInput {
  const reason = text.trim()
  if (reason.length < 3) return { _tag: 'invalid', reason: 'Say why (at least 3 characters).' }
  if (reason.length > REFUND_REASON_CHARS_MAX) {
    return {
      _tag: 'invalid',
      reason: `Keep the reason under ${REFUND_REASON_CHARS_MAX} characters.`,
    }
  }
  return { _tag: 'ok', reason }
}

export interface RefundInput {
  readonly session: Session
  readonly orderId: string
  readonly saleEntry: string
  readonly date: string
  /** The parts to refund (for `refundDrafts`: those head office accepted). */
  readonly parts: readonly RefundPart[]
  /** Units given back to the shelf. */
  readonly lines: readonly { readonly sku: string; readonly qty: number }[]
  readonly reason: string
  readonly void: boolean
}

/**
 * The entries that follow an accepted refund: a correcting entry on the order that names the
 * sale (never an edit of it), the units back on the shelf, cash out of the drawer or the
 * amount back onto the gift card, and one day entry per tender (invariant 2).
 */
export function refundDrafts(input: RefundInput): Draft[] {
  const { session, orderId } = input
  let amount = 0
  for (const p of input.parts) amount += p.amount
  const lines = input.lines.filter((l) => l.qty > 0).map((l) => ({ sku: l.sku, qty: l.qty }))
  const drafts: Draft[] = [
    {
      entity: `order/${orderId}`,
      kind: input.void ? 'order.voided' : 'order.refunded',
      data: {
        amount,
        reason: input.reason,
        lines,
        payments: input.parts.map((p) => ({ payment: p.paymentId, amount: p.amount })),
      },
      corrects: input.saleEntry,
    },
  ]
  for (const l of lines) {
    drafts.push({
      entity: `stock/${session.store}:${l.sku}`,
      kind: 'stock.returned',
      data: { sku: l.sku, qty: l.qty, order: orderId },
    })
  }
  for (const p of input.parts) {
    if (p.method === 'cash') {
      drafts.push({
        entity: drawerEntity(session),
        kind: 'cash.out',
        data: { amount: p.amount, order: orderId },
      })
    } else if (p.method === 'giftcard') {
      drafts.push({
        entity: `giftcard/${p.card}`,
        kind: 'gc.refunded',
        data: { amount: p.amount, order: orderId },
      })
    }
    drafts.push({
      entity: dayEntity(session.store, input.date),
      kind: 'day.refund',
      data: { order: orderId, register: session.register, amount: p.amount, tender: p.method },
    })
  }
  return drafts
}

// ---------------------------------------------------------------------------------------------
// Balances of declined cards

/** The customer pays a declined card's balance in cash at this register. */
export function collectDrafts(
  session: Session,
  date: string,
  orderId: string,
  amount: number,
  paymentId: string,
): Draft[] {
  return [
    {
      entity: `payment/${paymentId}`,
      kind: 'cash.received',
      data: { order: orderId, amount, tendered: amount, change: 0 },
    },
    {
      entity: `order/${orderId}`,
      kind: 'order.balance_paid',
      data: { amount, payment: paymentId },
    },
    { entity: drawerEntity(session), kind: 'cash.in', data: { amount, order: orderId } },
    {
      entity: dayEntity(session.store, date),
      kind: 'day.collected',
      data: {
        order: orderId,
        register: session.register,
        amount,
        tender: 'cash',
        payment: paymentId,
      },
    },
  ]
}

/** The store gives up on a declined card's balance. */
export function writeOffDrafts(
  session: Session,
  date: string,
  orderId: string,
  amount: number,
): Draft[] {
  return [
    {
      entity: `order/${orderId}`,
      kind: 'order.written_off',
      data: { amount, code: 'bad_debt' },
    },
    {
      entity: dayEntity(session.store, date),
      kind: 'day.written_off',
      data: { order: orderId, register: session.register, amount },
    },
  ]
}

export function drawerEntity(session: Session): string {
  return `drawer/${session.store}-${session.register}`
}

export function dayEntity(store: string, date: string): string {
  return `day/${store}:${date}`
}

function checkTenders(tenders: readonly Tender[], total: number): void {
  if (tenders.length < 1 || tenders.length > SALE_TENDERS_MAX) {
    throw new RangeError(`a sale has 1 to ${SALE_TENDERS_MAX} tenders, not ${tenders.length}`)
  }
  let sum = 0
  for (const t of tenders) sum += t.amount
  if (sum !== total) throw new RangeError(`tenders add up to ${sum}, the total is ${total}`)
  if (tenders.length === 2 && tenders[0]?.method !== 'giftcard') {
    throw new RangeError('a split sale takes the gift card first')
  }
}

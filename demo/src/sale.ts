/**
 * What the register appends: each business action becomes one batch of entries across the
 * ledgers it touches, appended in one local transaction (`appendMany`), so a sale is never
 * half on the register: the order, its payment, the stock it moved, the prices it charged, the
 * drawer's cash and the day's record all land together, and reach the relay exactly once.
 */
import type { DataObject } from '@ledgerline/core'
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
  | { readonly method: 'cash'; readonly tendered: number }
  | {
      readonly method: 'card'
      readonly last4: string
      readonly contact: string
      readonly offline: boolean
    }
  | { readonly method: 'giftcard'; readonly card: string }

export interface Totals {
  readonly subtotal: number
  readonly discount: number
  readonly total: number
}

/** Totals of a cart with a percentage discount (0..100), rounded to the cent. */
export function cartTotals(lines: readonly CartLine[], discountPercent: number): Totals {
  let subtotal = 0
  for (const l of lines) subtotal += l.qty * l.unitPrice
  const pct = Math.min(100, Math.max(0, Math.round(discountPercent)))
  const discount = Math.round((subtotal * pct) / 100)
  return { subtotal, discount, total: subtotal - discount }
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

export interface SaleInput {
  readonly session: Session
  readonly orderId: string
  readonly date: string
  readonly lines: readonly CartLine[]
  readonly totals: Totals
  readonly tender: Tender
}

/** Every entry of one sale. */
export function saleDrafts(input: SaleInput): Draft[] {
  const { session, orderId, lines, totals, tender } = input
  const { store, register } = session
  const contact = tender.method === 'card' ? tender.contact : ''
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
        total: totals.total,
        tender: tender.method,
        contact,
      },
    },
    paymentDraft(`${orderId}-1`, orderId, totals.total, tender),
  ]
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
  if (tender.method === 'cash') {
    drafts.push({
      entity: drawerEntity(session),
      kind: 'cash.in',
      data: { amount: totals.total, order: orderId },
    })
  }
  drafts.push({
    entity: dayEntity(store, input.date),
    kind: 'day.sale',
    data: { order: orderId, register, total: totals.total, tender: tender.method },
  })
  return drafts
}

export function paymentDraft(
  paymentId: string,
  orderId: string,
  amount: number,
  tender: Tender,
): Draft {
  const entity = `payment/${paymentId}`
  switch (tender.method) {
    case 'cash':
      return {
        entity,
        kind: 'cash.received',
        data: {
          order: orderId,
          amount,
          tendered: tender.tendered,
          change: tender.tendered - amount,
        },
      }
    case 'card':
      return {
        entity,
        kind: 'card.charged',
        data: {
          order: orderId,
          amount,
          last4: tender.last4,
          contact: tender.contact,
          offline: tender.offline,
        },
      }
    case 'giftcard':
      return {
        entity,
        kind: 'giftcard.charged',
        data: { order: orderId, amount, card: tender.card },
      }
  }
}

export interface RefundInput {
  readonly session: Session
  readonly orderId: string
  readonly saleEntry: string
  readonly date: string
  readonly lines: readonly { sku: string; qty: number }[]
  readonly amount: number
  readonly tender: string
  readonly void: boolean
}

/**
 * The entries that follow an accepted refund: a correcting entry on the order that names the
 * sale (never an edit of it), the units back on the shelf, and the day's and drawer's records.
 */
export function refundDrafts(input: RefundInput): Draft[] {
  const { session, orderId, amount } = input
  const drafts: Draft[] = [
    input.void
      ? {
          entity: `order/${orderId}`,
          kind: 'order.voided',
          data: { reason: 'voided at the register', amount },
          corrects: input.saleEntry,
        }
      : {
          entity: `order/${orderId}`,
          kind: 'order.refunded',
          data: { amount, reason: 'refunded at the register' },
          corrects: input.saleEntry,
        },
  ]
  for (const l of input.lines) {
    drafts.push({
      entity: `stock/${session.store}:${l.sku}`,
      kind: 'stock.returned',
      data: { sku: l.sku, qty: l.qty, order: orderId },
    })
  }
  if (input.tender === 'cash') {
    drafts.push({
      entity: drawerEntity(session),
      kind: 'cash.out',
      data: { amount, order: orderId },
    })
  }
  drafts.push({
    entity: dayEntity(session.store, input.date),
    kind: 'day.refund',
    data: { order: orderId, amount },
  })
  return drafts
}

export function drawerEntity(session: Session): string {
  return `drawer/${session.store}-${session.register}`
}

export function dayEntity(store: string, date: string): string {
  return `day/${store}:${date}`
}

/**
 * The point-of-sale schema: one ledger per order, payment, stock item per store, price per
 * item per store, cash drawer, gift card and business day. The app folds its optimistic views
 * with it; the relay (`--schema dist-schema/schema.js`) decides with it.
 *
 * Terms: a *sale* is one `order.completed` fact plus its payment, stock, price, drawer and day
 * entries, appended together. *List price* is the price in effect (catalog, then head office's
 * `price.set` entries); the *charged price* is what the register rang up.
 *
 *   offline register ──facts──► relay ──invariant broken?──► correcting entries, same transaction
 *     stock.sold          → stock.oversold (recount due)          on the stock
 *     price.charged       → order.price_variance                  on the order
 *     card.charged (0002) → payment.declined + order.balance_due  on payment and order
 *     shift.closed        → drawer.over_short                     on the drawer
 *     day.sale after close→ day.post_close_adjustment             on the day
 *   requests (decided by the relay, wait in the outbox offline):
 *     gc.redeemed (balance stays ≥ 0), payment.refunded (≤ captured), day.closed (once)
 *
 * Invariants:
 * 1. Money is integer cents; `validate` refuses anything else.
 * 2. Every invariant that a fact can break looks only at what *that* entry did (the transient
 *    `short`, `variance`, `decline`, `closing`, `late` fields, reset by every reduce), so one
 *    offending entry yields its corrections once and later entries do not repeat them.
 * 3. Nothing is rewritten: refunds and voids are new entries that name the sale (`corrects`).
 * 4. Reducers are pure and read only the entry and the state (and the static catalog).
 */
import { automergeEntity } from '@ledgerline/automerge'
import { defineEntity, defineSchema, type Entry } from '@ledgerline/core'
import { yjsEntity } from '@ledgerline/yjs'
import { DECLINING_LAST4, findItem } from './catalog.ts'

/** How many notes (corrections, sales, price changes) a state keeps, newest last. */
const NOTES_MAX = 200

// ---------------------------------------------------------------------------------------------
// stock/<store>:<sku>

export interface OversoldNote {
  readonly id: string
  readonly sale: string
  readonly order: string
  readonly short: number
  readonly at: number
}

export interface StockState {
  /** `null` until the first movement: the catalog's opening stock applies. */
  readonly onHand: number | null
  readonly countedAt: number
  readonly recountDue: boolean
  /** Units the last entry sold beyond what was on hand (transient). */
  readonly short: number
  readonly oversold: readonly OversoldNote[]
  readonly moves: number
}

export const stock = defineEntity<StockState>({
  type: 'stock',
  initial: { onHand: null, countedAt: 0, recountDue: false, short: 0, oversold: [], moves: 0 },
  reduce: (s0, e) => {
    const s = { ...s0, short: 0 }
    const before = stockOnHand(s0, e.entity)
    // A movement that happened before the last physical count is already in that count
    // (offline sales arrive late): it is kept in the ledger but does not move the number.
    const counted = e.occurredAt < s.countedAt
    switch (e.kind) {
      case 'stock.sold': {
        if (counted) return { ...s, moves: s.moves + 1 }
        const after = before - e.data.qty
        return {
          ...s,
          onHand: after,
          short: after < 0 ? Math.min(e.data.qty, -after) : 0,
          moves: s.moves + 1,
        }
      }
      case 'stock.returned':
      case 'stock.received':
        if (counted) return { ...s, moves: s.moves + 1 }
        return { ...s, onHand: before + e.data.qty, moves: s.moves + 1 }
      case 'stock.counted':
        return {
          ...s,
          onHand: e.data.counted,
          countedAt: e.occurredAt,
          recountDue: false,
          moves: s.moves + 1,
        }
      case 'stock.oversold':
        return {
          ...s,
          recountDue: true,
          oversold: keep([
            ...s.oversold,
            {
              id: e.id,
              sale: e.corrects ?? '',
              order: e.data.order,
              short: e.data.short,
              at: e.occurredAt,
            },
          ]),
        }
      default:
        return s
    }
  },
  invariants: {
    notOversold: (s) => s.short === 0 || `sold ${s.short} more than on hand`,
  },
  correct: (s, _broken, e) => [
    {
      kind: 'stock.oversold',
      data: { short: s.short, order: e.data.order, onHand: s.onHand ?? 0, task: 'recount' },
    },
  ],
  validate: (e) =>
    check(e, {
      'stock.sold': { sku: 'string', qty: 'count', order: 'string' },
      'stock.returned': { sku: 'string', qty: 'count', order: 'string' },
      'stock.received': { sku: 'string', qty: 'count' },
      'stock.counted': { sku: 'string', counted: 'int' },
      'stock.oversold': { short: 'count', order: 'string' },
    }),
})

/** Units on hand, with the catalog's opening stock before the first movement. */
export function stockOnHand(s: StockState, entity: string): number {
  return s.onHand ?? findItem(entity.slice(entity.indexOf(':') + 1))?.opening ?? 0
}

// ---------------------------------------------------------------------------------------------
// price/<store>:<sku>

export interface PriceChange {
  readonly amount: number
  readonly effectiveFrom: number
}

export interface Variance {
  readonly order: string
  readonly sku: string
  readonly qty: number
  readonly charged: number
  readonly listed: number
  readonly delta: number
}

export interface PriceState {
  readonly changes: readonly PriceChange[]
  readonly charged: number
  /** Set by a `price.charged` entry whose price differs from the list price then (transient). */
  readonly variance: Variance | null
}

export const price = defineEntity<PriceState>({
  type: 'price',
  initial: { changes: [], charged: 0, variance: null },
  reduce: (s0, e) => {
    const s = { ...s0, variance: null }
    switch (e.kind) {
      case 'price.set':
        return {
          ...s,
          changes: keep(
            [...s.changes, { amount: e.data.amount, effectiveFrom: e.data.effectiveFrom }].sort(
              (a, b) => a.effectiveFrom - b.effectiveFrom,
            ),
          ),
        }
      case 'price.charged': {
        const listed = listPriceAt(s0, e.data.sku, e.occurredAt)
        const variance =
          listed === e.data.unitPrice
            ? null
            : {
                order: e.data.order,
                sku: e.data.sku,
                qty: e.data.qty,
                charged: e.data.unitPrice,
                listed,
                delta: (e.data.unitPrice - listed) * e.data.qty,
              }
        return { ...s, charged: s.charged + e.data.qty, variance }
      }
      default:
        return s
    }
  },
  invariants: {
    chargedListPrice: (s) =>
      s.variance === null ||
      `charged ${s.variance.charged} while the list price was ${s.variance.listed}`,
  },
  // The charged price stands (it is on the customer's receipt); the variance is recorded on
  // the order for reporting and margin.
  correct: (s) =>
    s.variance === null
      ? []
      : [
          {
            kind: 'order.price_variance',
            entity: `order/${s.variance.order}`,
            data: { ...s.variance },
          },
        ],
  validate: (e) =>
    check(e, {
      'price.set': { sku: 'string', amount: 'count', effectiveFrom: 'count' },
      'price.charged': { sku: 'string', qty: 'count', unitPrice: 'count', order: 'string' },
    }),
})

/** The list price of `sku` at time `at`: the last change in effect, else the catalog's. */
export function listPriceAt(s: PriceState, sku: string, at: number): number {
  let amount = findItem(sku)?.price ?? 0
  for (const c of s.changes) if (c.effectiveFrom <= at) amount = c.amount
  return amount
}

// ---------------------------------------------------------------------------------------------
// order/<store>-<register>-<id>

export interface OrderLine {
  readonly sku: string
  readonly name: string
  readonly qty: number
  readonly unitPrice: number
}

export interface OrderNote {
  readonly id: string
  readonly kind: string
  readonly corrects: string
  readonly data: Readonly<Record<string, unknown>>
  readonly at: number
}

export interface OrderState {
  readonly status: 'none' | 'completed' | 'voided'
  readonly saleEntry: string
  readonly store: string
  readonly register: string
  readonly lines: readonly OrderLine[]
  readonly subtotal: number
  readonly discount: number
  readonly total: number
  readonly tender: string
  readonly contact: string
  readonly occurredAt: number
  readonly refunded: number
  readonly balanceDue: number
  readonly writtenOff: number
  readonly varianceTotal: number
  /** Corrections and their resolutions, newest last. */
  readonly notes: readonly OrderNote[]
}

export const order = defineEntity<OrderState>({
  type: 'order',
  initial: {
    status: 'none',
    saleEntry: '',
    store: '',
    register: '',
    lines: [],
    subtotal: 0,
    discount: 0,
    total: 0,
    tender: '',
    contact: '',
    occurredAt: 0,
    refunded: 0,
    balanceDue: 0,
    writtenOff: 0,
    varianceTotal: 0,
    notes: [],
  },
  reduce: (s, e) => {
    switch (e.kind) {
      case 'order.completed':
        return {
          ...s,
          status: 'completed',
          saleEntry: e.id,
          store: e.data.store,
          register: e.data.register,
          lines: e.data.lines,
          subtotal: e.data.subtotal,
          discount: e.data.discount,
          total: e.data.total,
          tender: e.data.tender,
          contact: e.data.contact ?? '',
          occurredAt: e.occurredAt,
        }
      case 'order.refunded':
        return { ...s, refunded: s.refunded + e.data.amount, notes: note(s.notes, e) }
      case 'order.voided':
        return { ...s, status: 'voided', refunded: s.total, notes: note(s.notes, e) }
      case 'order.balance_due':
        return { ...s, balanceDue: s.balanceDue + e.data.amount, notes: note(s.notes, e) }
      case 'order.balance_paid':
        return {
          ...s,
          balanceDue: Math.max(0, s.balanceDue - e.data.amount),
          notes: note(s.notes, e),
        }
      case 'order.written_off':
        return {
          ...s,
          balanceDue: Math.max(0, s.balanceDue - e.data.amount),
          writtenOff: s.writtenOff + e.data.amount,
          notes: note(s.notes, e),
        }
      case 'order.price_variance':
        return { ...s, varianceTotal: s.varianceTotal + e.data.delta, notes: note(s.notes, e) }
      default:
        return s
    }
  },
  validate: (e) =>
    check(e, {
      'order.completed': {
        store: 'string',
        register: 'string',
        lines: 'array',
        subtotal: 'count',
        discount: 'count',
        total: 'count',
        tender: 'string',
      },
      'order.refunded': { amount: 'count' },
      'order.voided': { reason: 'string' },
      'order.balance_due': { amount: 'count' },
      'order.balance_paid': { amount: 'count', payment: 'string' },
      'order.written_off': { amount: 'count' },
      'order.price_variance': { delta: 'int', sku: 'string' },
    }),
})

// ---------------------------------------------------------------------------------------------
// payment/<order id>-<n>

export interface PaymentState {
  readonly method: '' | 'cash' | 'card' | 'giftcard'
  readonly order: string
  readonly amount: number
  readonly tendered: number
  readonly change: number
  readonly last4: string
  readonly contact: string
  /** Card taken while offline: stored on the register, forwarded on reconnect. */
  readonly offline: boolean
  /** `stored` until the processor answers; an answer other than a decline is silence. */
  readonly status: 'none' | 'captured' | 'stored' | 'declined'
  readonly refunded: number
  readonly declineReason: string
}

export const payment = defineEntity<PaymentState>({
  type: 'payment',
  initial: {
    method: '',
    order: '',
    amount: 0,
    tendered: 0,
    change: 0,
    last4: '',
    contact: '',
    offline: false,
    status: 'none',
    refunded: 0,
    declineReason: '',
  },
  reduce: (s, e) => {
    switch (e.kind) {
      case 'cash.received':
        return {
          ...s,
          method: 'cash',
          order: e.data.order,
          amount: e.data.amount,
          tendered: e.data.tendered,
          change: e.data.change,
          status: 'captured',
        }
      case 'card.charged':
        return {
          ...s,
          method: 'card',
          order: e.data.order,
          amount: e.data.amount,
          last4: e.data.last4,
          contact: e.data.contact ?? '',
          offline: e.data.offline === true,
          status: 'stored',
        }
      case 'giftcard.charged':
        return {
          ...s,
          method: 'giftcard',
          order: e.data.order,
          amount: e.data.amount,
          last4: e.data.card,
          status: 'captured',
        }
      case 'payment.declined':
        return { ...s, status: 'declined', declineReason: e.data.reason }
      case 'payment.refunded':
        return { ...s, refunded: s.refunded + e.data.amount }
      default:
        return s
    }
  },
  invariants: {
    // The simulated card processor: the relay forwards the stored card when it appends the
    // entry, and the issuer declines numbers ending in DECLINING_LAST4.
    issuerApproves: (s) =>
      !(s.status === 'stored' && s.last4 === DECLINING_LAST4) || 'issuer declined the card',
    refundWithinCaptured: (s) =>
      s.refunded <= (s.status === 'declined' ? 0 : s.amount) || 'refund exceeds what was captured',
  },
  correct: (s, broken, e) =>
    broken.some((b) => b.rule === 'issuerApproves')
      ? [
          {
            kind: 'payment.declined',
            rule: 'issuerApproves',
            data: { code: 'card_declined', reason: 'issuer declined the card', last4: s.last4 },
          },
          {
            kind: 'order.balance_due',
            rule: 'issuerApproves',
            entity: `order/${s.order}`,
            data: {
              amount: s.amount,
              payment: e.entity.slice('payment/'.length),
              contact: s.contact,
              last4: s.last4,
              reason: 'card declined after forwarding',
            },
          },
        ]
      : [],
  validate: (e) =>
    check(e, {
      'cash.received': { order: 'string', amount: 'count', tendered: 'count', change: 'count' },
      'card.charged': { order: 'string', amount: 'count', last4: 'string' },
      'giftcard.charged': { order: 'string', amount: 'count', card: 'string' },
      'payment.declined': { code: 'string', reason: 'string' },
      // A refund needs the payment's whole ordered history: only the relay may decide it.
      'payment.refunded': { amount: 'count', order: 'string', intent: 'request' },
    }),
})

// ---------------------------------------------------------------------------------------------
// drawer/<store>-<register>

export interface DrawerClose {
  readonly shift: number
  readonly expected: number
  readonly counted: number
  readonly delta: number
  readonly at: number
  readonly correction?: string | undefined
}

export interface DrawerState {
  readonly shift: number
  readonly open: boolean
  readonly float: number
  readonly cashIn: number
  readonly cashOut: number
  /** Set by `shift.closed` (transient). */
  readonly closing: DrawerClose | null
  readonly closes: readonly DrawerClose[]
}

export const drawer = defineEntity<DrawerState>({
  type: 'drawer',
  initial: { shift: 1, open: false, float: 0, cashIn: 0, cashOut: 0, closing: null, closes: [] },
  reduce: (s0, e) => {
    const s = { ...s0, closing: null }
    switch (e.kind) {
      case 'shift.opened':
        return { ...s, open: true, float: e.data.float, cashIn: 0, cashOut: 0 }
      case 'cash.in':
        return { ...s, cashIn: s.cashIn + e.data.amount }
      case 'cash.out':
        return { ...s, cashOut: s.cashOut + e.data.amount }
      case 'shift.closed': {
        const expected = drawerExpected(s)
        const closing = {
          shift: s.shift,
          expected,
          counted: e.data.counted,
          delta: e.data.counted - expected,
          at: e.occurredAt,
        }
        return {
          ...s,
          open: false,
          shift: s.shift + 1,
          float: 0,
          cashIn: 0,
          cashOut: 0,
          closing,
          closes: keep([...s.closes, closing]),
        }
      }
      case 'drawer.over_short': {
        const closes = s.closes.map((c) =>
          c.shift === e.data.shift ? { ...c, correction: e.id } : c,
        )
        return { ...s, closes }
      }
      default:
        return s
    }
  },
  invariants: {
    balanced: (s) =>
      s.closing === null ||
      s.closing.delta === 0 ||
      `counted ${s.closing.counted}, expected ${s.closing.expected}`,
  },
  correct: (s) =>
    s.closing === null
      ? []
      : [
          {
            kind: 'drawer.over_short',
            data: {
              shift: s.closing.shift,
              expected: s.closing.expected,
              counted: s.closing.counted,
              delta: s.closing.delta,
              reason: s.closing.delta > 0 ? 'over' : 'short',
            },
          },
        ],
  validate: (e) =>
    check(e, {
      'shift.opened': { float: 'count' },
      'cash.in': { amount: 'count', order: 'string' },
      'cash.out': { amount: 'count', order: 'string' },
      'shift.closed': { counted: 'count' },
      'drawer.over_short': { shift: 'count', delta: 'int' },
    }),
})

export function drawerExpected(s: DrawerState): number {
  return s.float + s.cashIn - s.cashOut
}

// ---------------------------------------------------------------------------------------------
// giftcard/<code>

export interface GiftCardState {
  readonly issued: number
  readonly balance: number
  readonly redemptions: number
}

export const giftcard = defineEntity<GiftCardState>({
  type: 'giftcard',
  initial: { issued: 0, balance: 0, redemptions: 0 },
  reduce: (s, e) => {
    switch (e.kind) {
      case 'gc.issued':
        return { ...s, issued: s.issued + e.data.amount, balance: s.balance + e.data.amount }
      case 'gc.redeemed':
        return { ...s, balance: s.balance - e.data.amount, redemptions: s.redemptions + 1 }
      default:
        return s
    }
  },
  invariants: {
    // Two registers must never spend the same balance twice: redemption is a request.
    balanceNonNegative: (s) => s.balance >= 0 || 'not enough balance on the gift card',
  },
  validate: (e) =>
    check(e, {
      'gc.issued': { amount: 'count' },
      'gc.redeemed': { amount: 'count', order: 'string', intent: 'request' },
    }),
})

// ---------------------------------------------------------------------------------------------
// day/<store>:<yyyy-mm-dd>

export interface DaySale {
  readonly order: string
  readonly register: string
  readonly total: number
  readonly tender: string
  readonly at: number
  /** Arrived after the day was closed. */
  readonly late: boolean
}

export interface DayState {
  readonly closed: boolean
  readonly closedAt: number
  readonly closedTotal: number
  readonly sales: readonly DaySale[]
  readonly refunds: number
  readonly adjustments: readonly OrderNote[]
  /** A sale or refund that arrived after close (transient). */
  readonly late: { readonly order: string; readonly amount: number } | null
  /** A second `day.closed` (transient): the request is refused. */
  readonly reclosed: boolean
}

export const day = defineEntity<DayState>({
  type: 'day',
  initial: {
    closed: false,
    closedAt: 0,
    closedTotal: 0,
    sales: [],
    refunds: 0,
    adjustments: [],
    late: null,
    reclosed: false,
  },
  reduce: (s0, e) => {
    const s = { ...s0, late: null, reclosed: false }
    switch (e.kind) {
      case 'day.sale':
        return {
          ...s,
          sales: [
            ...s.sales,
            {
              order: e.data.order,
              register: e.data.register,
              total: e.data.total,
              tender: e.data.tender,
              at: e.occurredAt,
              late: s.closed,
            },
          ],
          late: s.closed ? { order: e.data.order, amount: e.data.total } : null,
        }
      case 'day.refund':
        return {
          ...s,
          refunds: s.refunds + e.data.amount,
          late: s.closed ? { order: e.data.order, amount: -e.data.amount } : null,
        }
      case 'day.closed':
        return s.closed
          ? { ...s, reclosed: true }
          : {
              ...s,
              closed: true,
              closedAt: e.occurredAt,
              closedTotal: daySalesTotal(s) - s.refunds,
            }
      case 'day.post_close_adjustment':
        return { ...s, adjustments: note(s.adjustments, e) }
      default:
        return s
    }
  },
  invariants: {
    closeOnce: (s) => !s.reclosed || 'the business day is already closed',
    // A late entry never reopens a closed day: it is reported as an adjustment.
    noLateEntries: (s) => s.late === null || 'entry arrived after the day was closed',
  },
  correct: (s) =>
    s.late === null
      ? []
      : [
          {
            kind: 'day.post_close_adjustment',
            data: { order: s.late.order, amount: s.late.amount },
          },
        ],
  validate: (e) =>
    check(e, {
      'day.sale': { order: 'string', register: 'string', total: 'count', tender: 'string' },
      'day.refund': { order: 'string', amount: 'count' },
      'day.closed': { by: 'string', intent: 'request' },
      'day.post_close_adjustment': { order: 'string', amount: 'int' },
    }),
})

export function daySalesTotal(s: DayState): number {
  let total = 0
  for (const sale of s.sales) total += sale.total
  return total
}

// ---------------------------------------------------------------------------------------------
// CRDT entities: documents people edit together, in the same log, outbox and auth as the ledgers

/** `catalog/<store>:text`: item names and descriptions (a Yjs document; see crdt/catalog-text.ts). */
export const catalog = yjsEntity('catalog')

/** `handover/<store>:notes`: shift handover notes (an Automerge document; crdt/handover-notes.ts). */
export const handover = automergeEntity('handover')

export default defineSchema(stock, price, order, payment, drawer, giftcard, day, catalog, handover)

// ---------------------------------------------------------------------------------------------
// helpers

type FieldRule = 'string' | 'count' | 'int' | 'array'
type Shape = Readonly<Record<string, FieldRule | 'request'>>

/**
 * Checks an entry against the shapes of its type: the kind must be listed, listed fields must
 * have their type (`count` = non-negative integer cents or units), and kinds marked
 * `intent: 'request'` must be requests.
 */
function check(e: Entry, shapes: Readonly<Record<string, Shape>>): true | string {
  const shape = shapes[e.kind]
  if (shape === undefined) return `unknown kind '${e.kind}' for ${e.entity}`
  const data = e.data as Record<string, unknown> | null
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    return `${e.kind} needs an object`
  }
  for (const [field, rule] of Object.entries(shape)) {
    if (field === 'intent') {
      if (e.intent !== rule) return `${e.kind} must be a ${rule}`
      continue
    }
    const v = data[field]
    const ok =
      rule === 'string'
        ? typeof v === 'string' && v.length > 0 && v.length <= 200
        : rule === 'count'
          ? Number.isSafeInteger(v) && (v as number) >= 0
          : rule === 'int'
            ? Number.isSafeInteger(v)
            : Array.isArray(v)
    if (!ok)
      return `${e.kind}.${field} must be ${rule === 'count' ? 'a non-negative integer' : `a ${rule}`}`
  }
  return true
}

function note(notes: readonly OrderNote[], e: Entry): readonly OrderNote[] {
  return keep([
    ...notes,
    {
      id: e.id,
      kind: e.kind,
      corrects: e.corrects ?? '',
      data: e.data as Record<string, unknown>,
      at: e.occurredAt,
    },
  ])
}

function keep<T>(items: readonly T[]): readonly T[] {
  return items.length > NOTES_MAX ? items.slice(items.length - NOTES_MAX) : items
}

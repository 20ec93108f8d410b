/**
 * The point-of-sale schema: one ledger per order, payment, stock item per store, price per
 * item per store, cash drawer, gift card and business day. The app folds its optimistic views
 * with it; the relay (`--schema demo/src/schema.ts`, bundled at start) decides with it.
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
import { type DataObject, defineEntity, defineSchema, type Entry } from '@ledgerline/core'
import { yjsEntity } from '@ledgerline/yjs'
import { DECLINING_LAST4, findItem } from './catalog.ts'
import {
  AFTER_CLOSE_MAX,
  DAY_SALES_MAX,
  DISCOUNT_DECIMALS_MAX,
  NAME_CANDIDATES_MAX,
  NOTES_MAX,
  PRODUCT_NAME_CHARS_MAX,
  SALE_TENDERS_MAX,
  SHIFT_CLOSES_MAX,
} from './limits.ts'

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
          oversold: keep(
            [
              ...s.oversold,
              {
                id: e.id,
                sale: e.corrects ?? '',
                order: e.data.order,
                short: e.data.short,
                at: e.occurredAt,
              },
            ],
            NOTES_MAX,
          ),
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
            NOTES_MAX,
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
// Tenders: how a sale was paid. A sale has one tender, or a gift card and then cash or card.

export type TenderMethod = 'cash' | 'card' | 'giftcard'

export const TENDER_METHODS: readonly TenderMethod[] = ['cash', 'card', 'giftcard']

export interface TenderPart {
  readonly method: TenderMethod
  readonly amount: number
}

export type TenderSums = Readonly<Record<TenderMethod, number>>

export const NO_TENDERS: TenderSums = { cash: 0, card: 0, giftcard: 0 }

/** The tenders of a sale entry; entries from before split tender name one tender. */
export function tendersOf(data: {
  tender?: unknown
  total?: unknown
  tenders?: unknown
}): readonly TenderPart[] {
  if (Array.isArray(data.tenders)) return data.tenders as TenderPart[]
  const method = isTenderMethod(data.tender) ? data.tender : 'cash'
  return [{ method, amount: typeof data.total === 'number' ? data.total : 0 }]
}

export function isTenderMethod(value: unknown): value is TenderMethod {
  return value === 'cash' || value === 'card' || value === 'giftcard'
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
  /** The percentage the cashier typed (12.5 stays 12.5); 0 without a discount. */
  readonly discountPercent: number
  readonly total: number
  /** `cash`, `card`, `giftcard`, or `split` (a gift card and then cash or card). */
  readonly tender: string
  readonly tenders: readonly TenderPart[]
  readonly contact: string
  readonly occurredAt: number
  readonly refunded: number
  /** Refunded amounts by payment id (`<order>-<n>`), as the refunds' facts name them. */
  readonly refundedBy: Readonly<Record<string, number>>
  /** Units given back by refunds, by sku. */
  readonly returned: Readonly<Record<string, number>>
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
    discountPercent: 0,
    total: 0,
    tender: '',
    tenders: [],
    contact: '',
    occurredAt: 0,
    refunded: 0,
    refundedBy: {},
    returned: {},
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
          discountPercent: typeof e.data.discountPercent === 'number' ? e.data.discountPercent : 0,
          total: e.data.total,
          tender: e.data.tender,
          tenders: tendersOf(e.data),
          contact: e.data.contact ?? '',
          occurredAt: e.occurredAt,
        }
      case 'order.refunded':
        return {
          ...s,
          refunded: s.refunded + e.data.amount,
          refundedBy: addRefundedBy(s.refundedBy, e.data.payments),
          returned: addReturned(s.returned, e.data.lines),
          notes: note(s.notes, e),
        }
      case 'order.voided':
        return {
          ...s,
          status: 'voided',
          refunded: s.refunded + (typeof e.data.amount === 'number' ? e.data.amount : s.total),
          refundedBy: addRefundedBy(s.refundedBy, e.data.payments),
          returned: addReturned(s.returned, e.data.lines),
          notes: note(s.notes, e),
        }
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
        'discountPercent?': 'percent',
        total: 'count',
        tender: 'string',
        'tenders?': 'tenders',
      },
      'order.refunded': {
        amount: 'count',
        'reason?': 'text',
        'lines?': 'returns',
        'payments?': 'paid',
      },
      'order.voided': {
        reason: 'string',
        'amount?': 'count',
        'lines?': 'returns',
        'payments?': 'paid',
      },
      'order.balance_due': { amount: 'count' },
      'order.balance_paid': { amount: 'count', payment: 'string' },
      'order.written_off': { amount: 'count' },
      'order.price_variance': { delta: 'int', sku: 'string' },
    }),
})

// ---------------------------------------------------------------------------------------------
// payment/<order id>-<n>

export interface PaymentState {
  readonly method: '' | TenderMethod
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
  /** The sale's day (`<store>:<date>`) and register, so a decline reaches the day report. */
  readonly day: string
  readonly register: string
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
    day: '',
    register: '',
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
          day: e.data.day ?? '',
          register: e.data.register ?? '',
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
  correct: (s, broken, e) => {
    if (!broken.some((b) => b.rule === 'issuerApproves')) return []
    const paymentId = e.entity.slice('payment/'.length)
    const drafts: { kind: string; rule: string; entity?: string; data: DataObject }[] = [
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
          payment: paymentId,
          contact: s.contact,
          last4: s.last4,
          reason: 'card declined after forwarding',
        },
      },
    ]
    // The day the sale was rung up on learns that its card takings did not come in.
    if (s.day !== '') {
      drafts.push({
        kind: 'day.declined',
        rule: 'issuerApproves',
        entity: `day/${s.day}`,
        data: { order: s.order, register: s.register, amount: s.amount, payment: paymentId },
      })
    }
    return drafts
  },
  validate: (e) =>
    check(e, {
      'cash.received': { order: 'string', amount: 'count', tendered: 'count', change: 'count' },
      'card.charged': {
        order: 'string',
        amount: 'count',
        last4: 'string',
        'day?': 'dayKey',
        'register?': 'string',
      },
      'giftcard.charged': { order: 'string', amount: 'count', card: 'string' },
      'payment.declined': { code: 'string', reason: 'string' },
      // A refund needs the payment's whole ordered history: only the relay may decide it.
      'payment.refunded': {
        amount: 'count',
        order: 'string',
        'reason?': 'text',
        intent: 'request',
      },
    }),
})

// ---------------------------------------------------------------------------------------------
// drawer/<store>-<register>

export interface DrawerShift {
  readonly shift: number
  /** Business date the shift was opened on (`YYYY-MM-DD`; `''` for shifts before dates). */
  readonly date: string
  readonly float: number
  readonly cashIn: number
  readonly cashOut: number
  readonly openedAt: number
}

export interface DrawerClose extends DrawerShift {
  readonly expected: number
  readonly counted: number
  readonly delta: number
  readonly at: number
  readonly correction?: string | undefined
}

export interface ShiftRefusal {
  readonly code: 'not_open' | 'already_open' | 'already_closed'
  readonly shift: number
  readonly reason: string
}

export interface DrawerState extends DrawerShift {
  /** The open shift's number, or the next shift's while none is open. Never skips. */
  readonly shift: number
  readonly open: boolean
  /** Set by `shift.closed` (transient). */
  readonly closing: DrawerClose | null
  /** A shift entry that broke the shift order (transient). */
  readonly refused: ShiftRefusal | null
  /** Cash moved while no shift was open (transient): in is positive, out negative. */
  readonly outside: { readonly amount: number; readonly order: string } | null
  /** All cash moved while no shift was open, in minus out. */
  readonly outsideTotal: number
  readonly closes: readonly DrawerClose[]
  /** Shift-order refusals and cash outside shifts, newest last. */
  readonly notes: readonly OrderNote[]
}

export const drawer = defineEntity<DrawerState>({
  type: 'drawer',
  initial: {
    shift: 1,
    open: false,
    date: '',
    float: 0,
    cashIn: 0,
    cashOut: 0,
    openedAt: 0,
    closing: null,
    refused: null,
    outside: null,
    outsideTotal: 0,
    closes: [],
    notes: [],
  },
  reduce: (s0, e) => {
    const s = { ...s0, closing: null, refused: null, outside: null }
    switch (e.kind) {
      case 'shift.opened':
        if (s.open) {
          return { ...s, refused: refusal('already_open', s.shift) }
        }
        return {
          ...s,
          open: true,
          date: e.data.date ?? '',
          float: e.data.float,
          cashIn: 0,
          cashOut: 0,
          openedAt: e.occurredAt,
        }
      case 'cash.in':
      case 'cash.out': {
        const signed = e.kind === 'cash.in' ? e.data.amount : -e.data.amount
        if (!s.open) {
          // The cash moved (it is a fact); it belongs to no shift, so it is flagged.
          return {
            ...s,
            outside: { amount: signed, order: e.data.order },
            outsideTotal: s.outsideTotal + signed,
          }
        }
        return e.kind === 'cash.in'
          ? { ...s, cashIn: s.cashIn + e.data.amount }
          : { ...s, cashOut: s.cashOut + e.data.amount }
      }
      case 'shift.closed': {
        if (!s.open) return { ...s, refused: refusal('not_open', s.shift) }
        if (e.data.shift !== undefined && e.data.shift !== s.shift) {
          return { ...s, refused: refusal('already_closed', e.data.shift) }
        }
        const expected = drawerExpected(s)
        const closing: DrawerClose = {
          shift: s.shift,
          date: s.date,
          float: s.float,
          cashIn: s.cashIn,
          cashOut: s.cashOut,
          openedAt: s.openedAt,
          expected,
          counted: e.data.counted,
          delta: e.data.counted - expected,
          at: e.occurredAt,
        }
        return {
          ...s,
          open: false,
          shift: s.shift + 1,
          date: '',
          float: 0,
          cashIn: 0,
          cashOut: 0,
          openedAt: 0,
          closing,
          closes: keep([...s.closes, closing], SHIFT_CLOSES_MAX),
        }
      }
      case 'drawer.over_short': {
        const closes = s.closes.map((c) =>
          c.shift === e.data.shift ? { ...c, correction: e.id } : c,
        )
        return { ...s, closes }
      }
      case 'drawer.shift_refused':
      case 'drawer.cash_outside_shift':
        return { ...s, notes: note(s.notes, e) }
      default:
        return s
    }
  },
  invariants: {
    balanced: (s) =>
      s.closing === null ||
      s.closing.delta === 0 ||
      `counted ${s.closing.counted}, expected ${s.closing.expected}`,
    // A shift opens when none is open and closes once; a close of no shift is no close.
    shiftOrder: (s) => s.refused === null || s.refused.reason,
    cashInShift: (s) => s.outside === null || 'cash moved while no shift was open',
  },
  correct: (s) => {
    const drafts: { kind: string; rule: string; data: Record<string, string | number> }[] = []
    if (s.closing !== null && s.closing.delta !== 0) {
      drafts.push({
        kind: 'drawer.over_short',
        rule: 'balanced',
        data: {
          shift: s.closing.shift,
          expected: s.closing.expected,
          counted: s.closing.counted,
          delta: s.closing.delta,
          reason: s.closing.delta > 0 ? 'over' : 'short',
        },
      })
    }
    if (s.refused !== null) {
      drafts.push({ kind: 'drawer.shift_refused', rule: 'shiftOrder', data: { ...s.refused } })
    }
    if (s.outside !== null) {
      drafts.push({
        kind: 'drawer.cash_outside_shift',
        rule: 'cashInShift',
        data: { ...s.outside },
      })
    }
    return drafts
  },
  validate: (e) =>
    check(e, {
      'shift.opened': { float: 'count', 'date?': 'date' },
      'cash.in': { amount: 'count', order: 'string' },
      'cash.out': { amount: 'count', order: 'string' },
      'shift.closed': { counted: 'count', 'shift?': 'count' },
      'drawer.over_short': { shift: 'count', delta: 'int' },
      'drawer.shift_refused': { code: 'string', shift: 'count' },
      'drawer.cash_outside_shift': { amount: 'int', order: 'string' },
    }),
})

export function drawerExpected(s: DrawerShift): number {
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
      case 'gc.refunded':
        return { ...s, balance: s.balance + e.data.amount }
      default:
        return s
    }
  },
  invariants: {
    // Each refusal names one reason: a code never issued is unknown, not short of balance.
    cardIssued: (s) => s.issued > 0 || 'unknown gift card',
    // Two registers must never spend the same balance twice: redemption is a request.
    balanceNonNegative: (s) =>
      s.issued === 0 || s.balance >= 0 || 'not enough balance on the gift card',
  },
  validate: (e) =>
    check(e, {
      'gc.issued': { amount: 'count' },
      'gc.redeemed': { amount: 'count', order: 'string', intent: 'request' },
      'gc.refunded': { amount: 'count', order: 'string' },
    }),
})

// ---------------------------------------------------------------------------------------------
// day/<store>:<yyyy-mm-dd>

export interface DaySale {
  readonly order: string
  readonly register: string
  readonly total: number
  readonly tenders: readonly TenderPart[]
  readonly at: number
  /** Arrived after the day was closed. */
  readonly late: boolean
}

/** One register's money of the day, by tender. Kept as totals, so it never drops a sale. */
export interface RegisterDay {
  readonly sales: number
  readonly gross: TenderSums
  readonly refunds: TenderSums
  /** Card sales the issuer declined after they were forwarded: no money came in. */
  readonly declined: TenderSums
  /** Balances of declined cards collected on this register (cash). */
  readonly collected: TenderSums
  readonly writtenOff: number
}

export type DayMoveKind = 'sale' | 'refund' | 'decline' | 'collection' | 'write_off'

export interface DayMove {
  readonly kind: DayMoveKind
  readonly entry: string
  readonly order: string
  readonly register: string
  /** Signed effect on the day's takings. */
  readonly amount: number
  readonly at: number
}

export interface DayState {
  readonly closed: boolean
  readonly closedAt: number
  /** Net takings of the whole store when the day was closed. */
  readonly closedTotal: number
  /** The day's sales, newest last (at most `DAY_SALES_MAX`; totals are in `registers`). */
  readonly sales: readonly DaySale[]
  readonly registers: Readonly<Record<string, RegisterDay>>
  /** Money moves that arrived after the close (corrections included). */
  readonly afterClose: readonly DayMove[]
  readonly adjustments: readonly OrderNote[]
  /** A fact that arrived after close (transient). */
  readonly late: { readonly order: string; readonly amount: number } | null
  /** A second `day.closed` (transient): the request is refused. */
  readonly reclosed: boolean
}

export const EMPTY_REGISTER_DAY: RegisterDay = {
  sales: 0,
  gross: NO_TENDERS,
  refunds: NO_TENDERS,
  declined: NO_TENDERS,
  collected: NO_TENDERS,
  writtenOff: 0,
}

export const day = defineEntity<DayState>({
  type: 'day',
  initial: {
    closed: false,
    closedAt: 0,
    closedTotal: 0,
    sales: [],
    registers: {},
    afterClose: [],
    adjustments: [],
    late: null,
    reclosed: false,
  },
  reduce: (s0, e) => {
    const s = { ...s0, late: null, reclosed: false }
    switch (e.kind) {
      case 'day.sale': {
        const tenders = tendersOf(e.data)
        const sale: DaySale = {
          order: e.data.order,
          register: e.data.register,
          total: e.data.total,
          tenders,
          at: e.occurredAt,
          late: s.closed,
        }
        const r = registerDay(s, e.data.register)
        let gross = r.gross
        for (const t of tenders) gross = addTender(gross, t.method, t.amount)
        return moved(
          { ...s, sales: keep([...s.sales, sale], DAY_SALES_MAX) },
          e,
          { ...r, sales: r.sales + 1, gross },
          'sale',
          e.data.total,
        )
      }
      case 'day.refund': {
        const r = registerDay(s, e.data.register)
        const refunds = addTender(r.refunds, e.data.tender, e.data.amount)
        return moved(s, e, { ...r, refunds }, 'refund', -e.data.amount)
      }
      case 'day.declined': {
        const r = registerDay(s, e.data.register)
        const declined = addTender(r.declined, 'card', e.data.amount)
        return moved(s, e, { ...r, declined }, 'decline', -e.data.amount)
      }
      case 'day.collected': {
        const r = registerDay(s, e.data.register)
        const collected = addTender(r.collected, e.data.tender, e.data.amount)
        return moved(s, e, { ...r, collected }, 'collection', e.data.amount)
      }
      case 'day.written_off': {
        const r = registerDay(s, e.data.register)
        return moved(s, e, { ...r, writtenOff: r.writtenOff + e.data.amount }, 'write_off', 0)
      }
      case 'day.closed':
        return s.closed
          ? { ...s, reclosed: true }
          : { ...s, closed: true, closedAt: e.occurredAt, closedTotal: storeTakings(s) }
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
      'day.sale': {
        order: 'string',
        register: 'string',
        total: 'count',
        tender: 'string',
        'tenders?': 'tenders',
      },
      'day.refund': { order: 'string', register: 'string', amount: 'count', tender: 'tender' },
      'day.declined': { order: 'string', register: 'string', amount: 'count', payment: 'string' },
      'day.collected': {
        order: 'string',
        register: 'string',
        amount: 'count',
        tender: 'tender',
        payment: 'string',
      },
      'day.written_off': { order: 'string', register: 'string', amount: 'count' },
      'day.closed': { by: 'string', intent: 'request' },
      'day.post_close_adjustment': { order: 'string', amount: 'int' },
    }),
})

/** Money a register took in that day: sales, less declines and refunds, plus collections. */
export function registerTakings(r: RegisterDay): number {
  let total = 0
  for (const m of TENDER_METHODS) {
    total += r.gross[m] - r.declined[m] - r.refunds[m] + r.collected[m]
  }
  return total
}

/** `registerTakings` over every register of the day. */
export function storeTakings(s: DayState): number {
  let total = 0
  for (const r of Object.values(s.registers)) total += registerTakings(r)
  return total
}

// ---------------------------------------------------------------------------------------------
// product/<store>:<sku>: the product's name, one value (not merged text)

export interface NameCandidate {
  /** The entry that gave the name (`''` for the catalog's built-in name). */
  readonly entry: string
  readonly name: string
  readonly by: string
  readonly at: number
}

export interface ProductState {
  /** The name in effect; `''` means the catalog's built-in name. */
  readonly name: string
  /** The entry that set it, which the next rename names as `basedOn`. */
  readonly head: string
  readonly by: string
  readonly at: number
  /** Names given at once and not yet decided: head office picks one. Empty when settled. */
  readonly candidates: readonly NameCandidate[]
  /** The last rename raced another one (transient). */
  readonly clash: boolean
}

export const product = defineEntity<ProductState>({
  type: 'product',
  initial: { name: '', head: '', by: '', at: 0, candidates: [], clash: false },
  reduce: (s0, e) => {
    const s = { ...s0, clash: false }
    switch (e.kind) {
      case 'product.renamed': {
        const given: NameCandidate = {
          entry: e.id,
          name: e.data.name,
          by: e.data.by,
          at: e.occurredAt,
        }
        if (s.candidates.length === 0) {
          // Two places agreeing on the name is no conflict, whatever each had seen.
          if (given.name === s.name) return s
          if (e.data.basedOn === s.head) {
            return { ...s, name: given.name, head: e.id, by: given.by, at: given.at }
          }
          const current = { entry: s.head, name: s.name, by: s.by, at: s.at }
          return { ...s, candidates: [current, given], clash: true }
        }
        if (s.candidates.some((c) => c.name === given.name)) return s
        return {
          ...s,
          candidates: keep([...s.candidates, given], NAME_CANDIDATES_MAX),
          clash: true,
        }
      }
      case 'product.name_chosen':
        return {
          ...s,
          name: e.data.name,
          head: e.id,
          by: e.data.by,
          at: e.occurredAt,
          candidates: [],
        }
      default:
        return s
    }
  },
  invariants: {
    oneName: (s) => !s.clash || 'two names were given at once; head office picks one',
  },
  correct: (s) => [
    {
      kind: 'product.name_conflict',
      data: {
        names: s.candidates.map((c) => c.name),
        entries: s.candidates.map((c) => c.entry),
      },
    },
  ],
  validate: (e) =>
    check(e, {
      'product.renamed': { sku: 'string', name: 'name', basedOn: 'text', by: 'string' },
      'product.name_chosen': { sku: 'string', name: 'name', chosen: 'text', by: 'string' },
      'product.name_conflict': { names: 'array' },
    }),
})

// ---------------------------------------------------------------------------------------------
// CRDT entities: documents people edit together, in the same log, outbox and auth as the ledgers

/** `catalog/<store>:text`: item descriptions (a Yjs document; see crdt/catalog-text.ts). */
export const catalog = yjsEntity('catalog')

/** `handover/<store>:notes`: shift handover notes (an Automerge document; crdt/handover-notes.ts). */
export const handover = automergeEntity('handover')

export default defineSchema(
  stock,
  price,
  order,
  payment,
  drawer,
  giftcard,
  day,
  product,
  catalog,
  handover,
)

// ---------------------------------------------------------------------------------------------
// helpers

/**
 * Field rules: `string` (1..200 chars), `text` (0..200 chars), `name` (a product name),
 * `count` (a non-negative integer: cents or units), `int`, `array`, `tender` (a tender method),
 * `tenders` (a sale's tender parts), `returns` (refunded lines: sku and units), `paid`
 * (refunded parts: payment and amount), `date`
 * (`YYYY-MM-DD`), `dayKey` (`<store>:<date>`), `percent` (0..100 with at most
 * `DISCOUNT_DECIMALS_MAX` decimals).
 */
type FieldRule =
  | 'string'
  | 'text'
  | 'name'
  | 'count'
  | 'int'
  | 'array'
  | 'tender'
  | 'tenders'
  | 'returns'
  | 'paid'
  | 'date'
  | 'dayKey'
  | 'percent'
/** A field ending in `?` may be absent; `intent` says the kind must be a request. */
type Shape = Readonly<Record<string, FieldRule | 'request'>>

/**
 * Checks an entry against the shapes of its type: the kind must be listed, listed fields must
 * have their type, kinds marked `intent: 'request'` must be requests, and a sale's tender parts
 * must add up to its total.
 */
function check(e: Entry, shapes: Readonly<Record<string, Shape>>): true | string {
  const shape = shapes[e.kind]
  if (shape === undefined) return `unknown kind '${e.kind}' for ${e.entity}`
  const data = e.data as Record<string, unknown> | null
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    return `${e.kind} needs an object`
  }
  for (const [key, rule] of Object.entries(shape)) {
    if (key === 'intent') {
      if (e.intent !== rule) return `${e.kind} must be a ${rule}`
      continue
    }
    const optional = key.endsWith('?')
    const field = optional ? key.slice(0, -1) : key
    const v = data[field]
    if (optional && v === undefined) continue
    if (rule === 'request' || !fieldOk(rule, v))
      return `${e.kind}.${field} must be ${RULE_WORDS[rule as FieldRule]}`
  }
  if (Array.isArray(data.tenders) && typeof data.total === 'number') {
    let sum = 0
    for (const t of data.tenders as TenderPart[]) sum += t.amount
    if (sum !== data.total) return `${e.kind}.tenders must add up to the total`
  }
  return true
}

const RULE_WORDS: Readonly<Record<FieldRule, string>> = {
  string: 'a string',
  text: 'a string of at most 200 characters',
  name: `a name of 1 to ${PRODUCT_NAME_CHARS_MAX} characters`,
  count: 'a non-negative integer',
  int: 'an integer',
  array: 'an array',
  tender: 'cash, card or giftcard',
  tenders: `1 to ${SALE_TENDERS_MAX} tender parts ({ method, amount })`,
  returns: 'a list of { sku, qty }',
  paid: 'a list of { payment, amount }',
  date: 'a date YYYY-MM-DD',
  dayKey: 'a day <store>:<YYYY-MM-DD>',
  percent: `a percentage 0 to 100 with at most ${DISCOUNT_DECIMALS_MAX} decimals`,
}

function fieldOk(rule: FieldRule, v: unknown): boolean {
  switch (rule) {
    case 'string':
      return typeof v === 'string' && v.length > 0 && v.length <= 200
    case 'text':
      return typeof v === 'string' && v.length <= 200
    case 'name':
      return (
        typeof v === 'string' &&
        v.trim() === v &&
        v.length > 0 &&
        v.length <= PRODUCT_NAME_CHARS_MAX
      )
    case 'count':
      return Number.isSafeInteger(v) && (v as number) >= 0
    case 'int':
      return Number.isSafeInteger(v)
    case 'array':
      return Array.isArray(v)
    case 'tender':
      return isTenderMethod(v)
    case 'tenders':
      return (
        Array.isArray(v) &&
        v.length >= 1 &&
        v.length <= SALE_TENDERS_MAX &&
        listOf(v, (t) => isTenderMethod(t.method) && fieldOk('count', t.amount))
      )
    case 'returns':
      return listOf(v, (r) => fieldOk('string', r.sku) && fieldOk('count', r.qty))
    case 'paid':
      return listOf(v, (r) => fieldOk('string', r.payment) && fieldOk('count', r.amount))
    case 'date':
      return typeof v === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(v)
    case 'dayKey':
      return typeof v === 'string' && /^[A-Za-z0-9._-]{1,64}:\d{4}-\d{2}-\d{2}$/.test(v)
    case 'percent':
      return typeof v === 'number' && isPercent(v)
  }
}

/** True when `v` is an array of objects that each pass `ok`. */
function listOf(v: unknown, ok: (item: Readonly<Record<string, unknown>>) => boolean): boolean {
  return (
    Array.isArray(v) &&
    v.every(
      (item: unknown) =>
        typeof item === 'object' && item !== null && ok(item as Record<string, unknown>),
    )
  )
}

/** True for 0..100 with at most `DISCOUNT_DECIMALS_MAX` decimals. */
export function isPercent(v: number): boolean {
  const scaled = v * 10 ** DISCOUNT_DECIMALS_MAX
  return Number.isFinite(v) && v >= 0 && v <= 100 && Math.abs(scaled - Math.round(scaled)) < 1e-6
}

function note(notes: readonly OrderNote[], e: Entry): readonly OrderNote[] {
  return keep(
    [
      ...notes,
      {
        id: e.id,
        kind: e.kind,
        corrects: e.corrects ?? '',
        data: e.data as Record<string, unknown>,
        at: e.occurredAt,
      },
    ],
    NOTES_MAX,
  )
}

function keep<T>(items: readonly T[], max: number): readonly T[] {
  return items.length > max ? items.slice(items.length - max) : items
}

function refusal(code: ShiftRefusal['code'], shift: number): ShiftRefusal {
  const reason =
    code === 'not_open'
      ? 'no shift is open'
      : code === 'already_open'
        ? `shift ${shift} is already open`
        : `shift ${shift} is already closed`
  return { code, shift, reason }
}

function addReturned(
  returned: Readonly<Record<string, number>>,
  lines: unknown,
): Readonly<Record<string, number>> {
  if (!Array.isArray(lines)) return returned
  const next = { ...returned }
  for (const l of lines as { sku: string; qty: number }[]) next[l.sku] = (next[l.sku] ?? 0) + l.qty
  return next
}

function addRefundedBy(
  refundedBy: Readonly<Record<string, number>>,
  payments: unknown,
): Readonly<Record<string, number>> {
  if (!Array.isArray(payments)) return refundedBy
  const next = { ...refundedBy }
  for (const p of payments as { payment: string; amount: number }[]) {
    next[p.payment] = (next[p.payment] ?? 0) + p.amount
  }
  return next
}

function addTender(sums: TenderSums, method: unknown, amount: number): TenderSums {
  const m = isTenderMethod(method) ? method : 'cash'
  return { ...sums, [m]: sums[m] + amount }
}

function registerDay(s: DayState, register: string): RegisterDay {
  return s.registers[register] ?? EMPTY_REGISTER_DAY
}

/**
 * The day after a money move of `register`: its totals replaced, and, once the day is closed,
 * the move listed after the close and (for facts) flagged late so it becomes an adjustment.
 */
function moved(
  s: DayState,
  e: Entry,
  totals: RegisterDay,
  kind: DayMoveKind,
  amount: number,
): DayState {
  const { order, register } = e.data as { order: string; register: string }
  const registers = { ...s.registers, [register]: totals }
  if (!s.closed) return { ...s, registers }
  const move: DayMove = { kind, entry: e.id, order, register, amount, at: e.occurredAt }
  return {
    ...s,
    registers,
    afterClose: keep([...s.afterClose, move], AFTER_CLOSE_MAX),
    // Corrections are never checked again (they cannot cascade), so only facts are flagged.
    late: e.corrects === undefined ? { order, amount } : null,
  }
}

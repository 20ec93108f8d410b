// Goal: the entries of each register action are complete and add up: tenders to the total,
// cash to the drawer, every money move to the day; discounts are exact; refunds never exceed
// what was captured and never touch a declined order. Method: build drafts with the pure
// functions and check them, then run them through the schema's `decide` where it matters.
import { describe, expect, it } from 'vitest'
import { unfinishedRefundParts } from './refund-runner.ts'
import {
  cartTotals,
  collectDrafts,
  parseDiscount,
  parseRefundReason,
  refundableAmount,
  refundDrafts,
  refundParts,
  saleDrafts,
  type OrderPayment,
  type Tender,
} from './sale.ts'
import schema, { type OrderState, type PaymentState } from './schema.ts'

const session = { store: 's1', register: 'r2' }
const line = (qty: number, unitPrice: number) => ({ sku: 'a', name: 'A', qty, unitPrice })

/** A one-line sale of `total` cents paid with `tenders`. */
function sale(total: number, tenders: Tender[], orderId = 'o') {
  return saleDrafts({
    session,
    orderId,
    date: '2025-01-02',
    lines: [line(1, total)],
    totals: { subtotal: total, discount: 0, total },
    discountPercent: 0,
    tenders,
  })
}

describe('cartTotals', () => {
  it('keeps integer cents with a percentage discount', () => {
    expect(cartTotals([line(3, 333)], 10)).toEqual({ subtotal: 999, discount: 100, total: 899 })
  })

  it('12.5 % stays 12.5 %: the discount is computed from the exact percentage', () => {
    // 12.5 % of 999 cents is 124.875, rounded half up to 125 (13 % would give 130).
    expect(cartTotals([line(1, 999)], 12.5)).toEqual({ subtotal: 999, discount: 125, total: 874 })
    // 0.1 and 0.2 are not exact in binary; hundredths of a percent are.
    expect(cartTotals([line(1, 10_000)], 0.29).discount).toBe(29)
  })

  it('a discount outside 0–100 % is a programmer error, never clamped', () => {
    expect(() => cartTotals([line(1, 999)], 150)).toThrow(RangeError)
    expect(() => cartTotals([line(1, 999)], -1)).toThrow(RangeError)
    expect(() => cartTotals([line(1, 999)], 12.125)).toThrow(RangeError)
  })
})

describe('parseDiscount', () => {
  it('takes 0..100 with two decimals and says why it refuses the rest', () => {
    expect(parseDiscount('')).toEqual({ _tag: 'ok', percent: 0 })
    expect(parseDiscount('12.5')).toEqual({ _tag: 'ok', percent: 12.5 })
    expect(parseDiscount('12,25 %')).toEqual({ _tag: 'ok', percent: 12.25 })
    expect(parseDiscount('100')).toEqual({ _tag: 'ok', percent: 100 })
    expect(parseDiscount('150')).toEqual({
      _tag: 'invalid',
      reason: 'A discount cannot be more than 100 %.',
    })
    expect(parseDiscount('12.125')).toMatchObject({ _tag: 'invalid', reason: /2 decimals/ })
    expect(parseDiscount('-5')).toMatchObject({ _tag: 'invalid', reason: /0 to 100/ })
    expect(parseDiscount('ten')).toMatchObject({ _tag: 'invalid' })
  })
})

describe('saleDrafts', () => {
  it('a split sale: gift card first, then cash; cash reaches the drawer, both the day', () => {
    const drafts = sale(
      1200,
      [
        { method: 'giftcard', amount: 500, card: 'GC-5' },
        { method: 'cash', amount: 700, tendered: 1000 },
      ],
      's1-r2-x',
    )
    const by = (kind: string) => drafts.filter((d) => d.kind === kind)
    expect(by('giftcard.charged')[0]).toMatchObject({ entity: 'payment/s1-r2-x-1' })
    expect(by('cash.received')[0]).toMatchObject({
      entity: 'payment/s1-r2-x-2',
      data: { amount: 700, change: 300 },
    })
    expect(by('cash.in')).toEqual([
      { entity: 'drawer/s1-r2', kind: 'cash.in', data: { amount: 700, order: 's1-r2-x' } },
    ])
    expect(by('day.sale')[0]?.data).toMatchObject({
      tender: 'split',
      tenders: [
        { method: 'giftcard', amount: 500 },
        { method: 'cash', amount: 700 },
      ],
    })
    // The schema accepts every draft (shapes, tender sums).
    for (const d of drafts) {
      expect(schema.typeOf(d.entity).validate?.(asEntry(d))).toBe(true)
    }
  })

  it('refuses tenders that do not add up, or a split that does not start with a gift card', () => {
    expect(() => sale(1200, [{ method: 'cash', amount: 1000, tendered: 1000 }])).toThrow(/add up/)
    expect(() =>
      sale(1200, [
        { method: 'cash', amount: 200, tendered: 200 },
        { method: 'giftcard', amount: 1000, card: 'GC' },
      ]),
    ).toThrow(/gift card first/)
  })

  it('a card names its day and register, so a later decline reaches the day report', () => {
    const drafts = sale(900, [
      { method: 'card', amount: 900, last4: '0002', contact: 'a@b', offline: true },
    ])
    expect(drafts.find((d) => d.kind === 'card.charged')?.data).toMatchObject({
      day: 's1:2025-01-02',
      register: 'r2',
    })
  })
})

describe('refunds', () => {
  const order = (patch: Partial<OrderState>): OrderState => ({
    ...(schema.typeOf('order/x').initial as OrderState),
    ...patch,
  })
  const pay = (id: string, patch: Partial<PaymentState>): OrderPayment => ({
    id,
    state: { ...(schema.typeOf('payment/x').initial as PaymentState), ...patch },
  })

  it('no refund on a declined order or a voided one; otherwise what is left', () => {
    const sold = order({ status: 'completed', total: 1200, refunded: 200 })
    expect(refundableAmount(sold, [pay('o-1', { status: 'captured', amount: 1200 })])).toBe(1000)
    expect(refundableAmount(sold, [pay('o-1', { status: 'declined', amount: 1200 })])).toBe(0)
    expect(refundableAmount(order({ status: 'voided', total: 1200 }), [])).toBe(0)
  })

  it('splits a refund over the tenders, the last one first', () => {
    const payments = [
      pay('o-1', { method: 'giftcard', amount: 500, last4: 'GC-5' }),
      pay('o-2', { method: 'cash', amount: 700, refunded: 100 }),
    ]
    expect(refundParts(payments, 900)).toEqual([
      { paymentId: 'o-2', method: 'cash', amount: 600, card: '' },
      { paymentId: 'o-1', method: 'giftcard', amount: 300, card: 'GC-5' },
    ])
  })

  it('a refund names the sale, returns units, pays cash out and records the day per tender', () => {
    const drafts = refundDrafts({
      session,
      orderId: 'o',
      saleEntry: 'sale-1',
      date: '2025-01-02',
      parts: [
        { paymentId: 'o-2', method: 'cash', amount: 600, card: '' },
        { paymentId: 'o-1', method: 'giftcard', amount: 300, card: 'GC-5' },
      ],
      lines: [
        { sku: 'a', qty: 1 },
        { sku: 'b', qty: 0 },
      ],
      reason: 'Customer returned it',
      void: false,
    })
    expect(drafts.map((d) => d.kind)).toEqual([
      'order.refunded',
      'stock.returned',
      'cash.out',
      'day.refund',
      'gc.refunded',
      'day.refund',
    ])
    expect(drafts[0]).toMatchObject({
      corrects: 'sale-1',
      data: {
        amount: 900,
        reason: 'Customer returned it',
        lines: [{ sku: 'a', qty: 1 }],
        payments: [
          { payment: 'o-2', amount: 600 },
          { payment: 'o-1', amount: 300 },
        ],
      },
    })
    for (const d of drafts) expect(schema.typeOf(d.entity).validate?.(asEntry(d))).toBe(true)
  })

  it('a refund needs a reason', () => {
    expect(parseRefundReason('  ')).toMatchObject({ _tag: 'invalid' })
    expect(parseRefundReason(' Wrong size ')).toEqual({ _tag: 'ok', reason: 'Wrong size' })
  })

  it('a collection pays cash into this drawer and records the day', () => {
    const drafts = collectDrafts(session, '2025-01-03', 's1-r1-d', 900, 's1-r1-d-c1')
    expect(drafts.map((d) => [d.entity, d.kind])).toEqual([
      ['payment/s1-r1-d-c1', 'cash.received'],
      ['order/s1-r1-d', 'order.balance_paid'],
      ['drawer/s1-r2', 'cash.in'],
      ['day/s1:2025-01-03', 'day.collected'],
    ])
    for (const d of drafts) expect(schema.typeOf(d.entity).validate?.(asEntry(d))).toBe(true)
  })
})

function asEntry(d: { entity: string; kind: string; data: unknown; intent?: string }) {
  return {
    id: 'c-1',
    tenant: 't',
    entity: d.entity,
    kind: d.kind,
    data: d.data,
    intent: d.intent ?? 'fact',
    clientId: 'c',
    clientSeq: 1,
    hlc: '000000000001000:00000:c',
    occurredAt: 1000,
  } as Parameters<NonNullable<ReturnType<typeof schema.typeOf>['validate']>>[0]
}

describe('unfinished refunds', () => {
  it('finds what head office accepted that the order does not name yet, per payment', () => {
    const o = {
      ...(schema.typeOf('order/x').initial as OrderState),
      status: 'completed' as const,
      total: 1200,
      refunded: 300,
      refundedBy: { 'o-2': 300 },
    }
    const state = (patch: Partial<PaymentState>) => ({
      ...(schema.typeOf('payment/x').initial as PaymentState),
      ...patch,
    })
    const payments = [
      {
        id: 'o-1',
        state: state({ method: 'giftcard', amount: 500, refunded: 200, last4: 'GC-5' }),
      },
      { id: 'o-2', state: state({ method: 'cash', amount: 700, refunded: 700 }) },
    ]
    expect(unfinishedRefundParts(o, payments)).toEqual([
      { paymentId: 'o-1', method: 'giftcard', amount: 200, card: 'GC-5' },
      { paymentId: 'o-2', method: 'cash', amount: 400, card: '' },
    ])
    expect(
      unfinishedRefundParts({ ...o, refundedBy: { 'o-1': 200, 'o-2': 700 } }, payments),
    ).toEqual([])
  })
})

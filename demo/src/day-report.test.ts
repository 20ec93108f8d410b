// Goal: the day report reconciles to the cent with the ledgers and with every drawer, after
// declines, collections, refunds and a write-off, and the store's report is the sum of its
// registers'. Method: two registers ring up a day through the register's own drafts on a
// test server log (the schema's `decide`); the report of the folded ledgers is compared with
// sums taken straight from the raw entries.
import { describe, expect, it } from 'vitest'
import { dayReport } from './day-report.ts'
import {
  collectDrafts,
  dayEntity,
  drawerEntity,
  refundDrafts,
  saleDrafts,
  type Tender,
  writeOffDrafts,
} from './sale.ts'
import type { DayState, DrawerState } from './schema.ts'
import { CLIENT_A, CLIENT_B, createLog, entry, type TestLog } from './test-log.ts'

const DATE = '2025-01-02'
const r1 = { store: 's1', register: 'r1' }
const r2 = { store: 's1', register: 'r2' }

function sell(log: TestLog, session: typeof r1, orderId: string, tenders: Tender[]): void {
  let total = 0
  for (const t of tenders) total += t.amount
  log.appendDrafts(
    saleDrafts({
      session,
      orderId,
      date: DATE,
      lines: [{ sku: 'mug', name: 'Mug', qty: 1, unitPrice: total }],
      totals: { subtotal: total, discount: 0, total },
      discountPercent: 0,
      tenders,
    }),
    { client: session === r1 ? CLIENT_A : CLIENT_B },
  )
}

function ringUpDay(): TestLog {
  const log = createLog()
  log.append(entry(drawerEntity(r1), 'shift.opened', { float: 10_000, date: DATE }))
  log.append(
    entry(drawerEntity(r2), 'shift.opened', { float: 5_000, date: DATE }, { client: CLIENT_B }),
  )
  sell(log, r1, 's1-r1-a', [{ method: 'cash', amount: 1_200, tendered: 2_000 }])
  sell(log, r1, 's1-r1-b', [
    { method: 'card', amount: 3_200, last4: '0002', contact: 'ana@example.com', offline: true },
  ])
  sell(log, r1, 's1-r1-c', [
    { method: 'card', amount: 900, last4: '0002', contact: 'kim@example.com', offline: true },
  ])
  sell(log, r2, 's1-r2-d', [
    { method: 'card', amount: 4_500, last4: '4242', contact: '', offline: false },
  ])
  sell(log, r2, 's1-r2-e', [
    { method: 'giftcard', amount: 500, card: 'GC-5' },
    { method: 'cash', amount: 700, tendered: 700 },
  ])
  // r2 refunds 300 of its own cash sale; the customer of order b pays its balance at r2;
  // head office writes off order c.
  log.appendDrafts(
    refundDrafts({
      session: r2,
      orderId: 's1-r2-e',
      saleEntry: saleEntryOf(log, 's1-r2-e'),
      date: DATE,
      parts: [{ paymentId: 's1-r2-e-2', method: 'cash', amount: 300, card: '' }],
      lines: [],
      reason: 'Cold coffee',
      void: false,
    }),
    { client: CLIENT_B },
  )
  log.appendDrafts(collectDrafts(r2, DATE, 's1-r1-b', 3_200, 's1-r1-b-c1'), { client: CLIENT_B })
  log.appendDrafts(writeOffDrafts({ store: 's1', register: 'hq' }, DATE, 's1-r1-c', 900))
  // r1 counts 50 cents short, r2 balanced.
  log.append(entry(drawerEntity(r1), 'shift.closed', { counted: 11_150, shift: 1 }))
  log.append(
    entry(drawerEntity(r2), 'shift.closed', { counted: 8_600, shift: 1 }, { client: CLIENT_B }),
  )
  return log
}

function saleEntryOf(log: TestLog, orderId: string): string {
  return log.entries().find((e) => e.entity === `order/${orderId}`)?.id ?? ''
}

function reportOf(log: TestLog, scope: string) {
  return dayReport({
    date: DATE,
    scope,
    day: log.state<DayState>(dayEntity('s1', DATE)),
    drawers: new Map(
      ['r1', 'r2', 'r3'].map((r) => [
        r,
        log.state<DrawerState>(drawerEntity({ ...r1, register: r })),
      ]),
    ),
  })
}

describe('dayReport', () => {
  it('reconciles with the raw ledgers: takings per tender and cash per drawer', () => {
    const log = ringUpDay()
    const report = reportOf(log, 'store')
    const raw = log.entries()
    const total = (kind: string, entity = '') =>
      raw
        .filter((e) => e.kind === kind && e.entity.startsWith(entity))
        .reduce((n, e) => n + Number((e.data as { amount: number }).amount), 0)

    const card = report.tenders.find((t) => t.method === 'card')
    // Card takings: every card charged, less the ones the issuer declined.
    expect(card?.takings).toBe(total('card.charged') - total('day.declined'))
    expect(card).toMatchObject({
      sales: 8_600,
      declined: 4_100,
      refunds: 0,
      collected: 0,
      takings: 4_500,
    })
    const cash = report.tenders.find((t) => t.method === 'cash')
    // Cash takings: every cash payment (sales and the collection) less cash refunds.
    expect(cash?.takings).toBe(total('cash.received') - total('cash.out'))
    expect(cash).toMatchObject({ sales: 1_900, refunds: 300, collected: 3_200, takings: 4_800 })
    expect(report.tenders.find((t) => t.method === 'giftcard')?.takings).toBe(
      total('giftcard.charged'),
    )
    expect(report.writtenOff).toBe(total('order.written_off'))
    expect(report.salesCount).toBe(5)

    // Each drawer: float + cash in − cash out from its own ledger.
    for (const d of report.drawers.filter((x) => x.shifts > 0)) {
      const drawer = `drawer/s1-${d.register}`
      const float = raw
        .filter((e) => e.entity === drawer && e.kind === 'shift.opened')
        .reduce((n, e) => n + Number((e.data as { float: number }).float), 0)
      expect(d.expected).toBe(float + total('cash.in', drawer) - total('cash.out', drawer))
      expect(d.mismatch).toBe(0)
    }
    expect(report.drawers.find((d) => d.register === 'r1')).toMatchObject({
      expected: 11_200,
      counted: 11_150,
      overShort: -50,
    })
    expect(report.drawers.find((d) => d.register === 'r2')).toMatchObject({
      expected: 8_600,
      counted: 8_600,
      overShort: 0,
    })
    expect(report.overShort).toBe(-50)
  })

  it("the store's report is the sum of its registers' reports", () => {
    const log = ringUpDay()
    const store = reportOf(log, 'store')
    const parts = store.registers.map((r) => reportOf(log, r))
    expect(store.registers).toEqual(['r1', 'r2', 'r3', 'hq'])
    for (const field of ['sales', 'declined', 'refunds', 'collected', 'takings'] as const) {
      expect(parts.reduce((n, p) => n + p.totals[field], 0)).toBe(store.totals[field])
    }
    expect(parts.reduce((n, p) => n + p.expectedCash, 0)).toBe(store.expectedCash)
    expect(parts.reduce((n, p) => n + p.writtenOff, 0)).toBe(store.writtenOff)
  })

  it('an open shift leaves counted and over/short open; a cash mismatch is reported', () => {
    const log = createLog()
    log.append(entry(drawerEntity(r1), 'shift.opened', { float: 1_000, date: DATE }))
    sell(log, r1, 's1-r1-z', [{ method: 'cash', amount: 400, tendered: 400 }])
    // Cash that reached the day ledger but not the drawer (a register that lost an entry).
    log.append(
      entry(dayEntity('s1', DATE), 'day.sale', {
        order: 's1-r1-y',
        register: 'r1',
        total: 250,
        tender: 'cash',
      }),
    )
    const report = reportOf(log, 'r1')
    expect(report.drawers[0]).toMatchObject({
      openShifts: 1,
      counted: null,
      overShort: null,
      expected: 1_400,
      mismatch: 250,
    })
    expect(report.countedCash).toBeNull()
  })
})

/**
 * The business day: a day report that reconciles to the cent with the ledgers and with every
 * drawer (store s8), and shift discipline (store s9). With `UPDATE_DEMO_PNG=1` the report and
 * the Inbox are copied to docs/screenshots/ for demo/README.md.
 */
import type { Page } from '@playwright/test'
import { expect, test } from './fixtures.ts'
import { kindsOf, type LoggedEntry, readRelayLog } from './relay-log.ts'

test('a day with declines, collections, refunds and a write-off reconciles with two drawers', async ({
  open,
  relay,
}) => {
  // Goal: the day report's totals are the sums of the ledgers head office holds, to the cent,
  // and every register shows the same report. Method: two registers with a $100.00 float
  // each: register 1 takes cash and two cards offline that are declined later; register 2
  // takes a card and a split gift card + cash sale, refunds part of it, and collects one
  // declined balance in cash; head office writes the other off. Both shifts close, one short.
  // Then the report (whole store) on both registers is compared with sums taken straight
  // from the relay's log: payments for takings, drawer entries for expected cash and counts.
  const hq = await open('s8', 'hq')
  const r1 = await open('s8', 'r1')
  const r2 = await open('s8', 'r2')
  await hq.page.getByTestId('gc-code').fill('GC-S8')
  await hq.page.getByTestId('gc-amount').fill('5.00')
  await hq.page.getByTestId('gc-issue').click()
  await expect(hq.page.getByTestId('gc-balance')).toContainText('balance $5.00')

  await r1.sell(['espresso', 'croissant'], { cash: true, tendered: '10' })
  await r1.goOffline()
  await r1.sell(['beans-1kg'], { card: '4000 0000 0000 0002', contact: 'ana@example.com' })
  await r1.sell(['mug'], { card: '4000 0000 0000 0002', contact: 'kim@example.com' })
  await r1.goOnline()
  await r1.expectDrained()

  await r2.sell(['flat-white'], { card: '4242 4242 4242 4242' })
  // Split tender: the gift card's $5.00 first, the rest in cash.
  await r2.page.getByTestId('item-keep-cup').click()
  await r2.page.getByTestId('pay-giftcard').click()
  await r2.page.getByTestId('giftcard-code').fill('GC-S8')
  await expect(r2.page.getByTestId('giftcard-balance')).toContainText('Balance $5.00')
  await r2.page.getByTestId('giftcard-rest-cash').click()
  await expect(r2.page.getByTestId('split-note')).toContainText('$17.00 left to pay')
  await r2.page.getByTestId('confirm-cash').click()
  await expect(r2.page.getByTestId('receipt-tender-giftcard')).toContainText('$5.00')
  await expect(r2.page.getByTestId('receipt-tender-cash')).toContainText('$17.00')
  await r2.page.getByTestId('new-sale').click()
  // A partial refund of that sale: the last tender (cash) first.
  await r2.tab('orders')
  const split = r2.page.locator('[data-testid^="order-row-"]', { hasText: 'Keep cup' })
  const splitId = (await split.getAttribute('data-order')) ?? ''
  await r2.page.getByTestId(`refund-${splitId}`).click()
  await r2.page.getByTestId('refund-amount').fill('3.00')
  await r2.page.getByTestId('refund-reason').selectOption('Other')
  await r2.page.getByTestId('refund-reason-other').fill('Lid missing')
  await r2.page.getByTestId('refund-review-button').click()
  await expect(r2.page.getByTestId('refund-review')).toContainText('$3.00 in cash')
  await r2.page.getByTestId('refund-confirm').click()
  await expect(r2.page.getByTestId(`order-refunded-${splitId}`)).toHaveText('$3.00 refunded')
  // A declined order offers no refund.
  const declined = r2.page.locator('[data-testid^="order-row-"]', { hasText: 'House beans' })
  await expect(declined.locator('[data-testid^="order-declined-"]')).toBeVisible()
  await expect(declined.locator('[data-testid^="refund-"]')).toHaveCount(0)

  // Register 2 collects the beans' balance in cash; head office writes off the mug's.
  await r2.tab('inbox')
  await expect(r2.page.locator('[data-testid="inbox-item"][data-open="true"]')).toHaveCount(2)
  await r2.shot('inbox-to-do', { docs: 'inbox' })
  const beansDue = r2.page
    .locator('[data-testid="inbox-item"][data-kind="order.balance_due"]')
    .filter({ hasText: '$32.00 due' })
  await beansDue.getByTestId('inbox-collect').click()
  await expect(beansDue).toHaveAttribute('data-open', 'false')
  await hq.tab('inbox')
  const mugDue = hq.page
    .locator('[data-testid="inbox-item"][data-kind="order.balance_due"]')
    .filter({ hasText: '$18.00 due' })
  await mugDue.getByTestId('inbox-writeoff').click()
  await mugDue.getByTestId('inbox-writeoff-confirm').click()
  await expect(mugDue).toHaveAttribute('data-open', 'false')

  // Register 1 counts exactly; register 2 counts 50 cents short.
  await r1.closeShift('106.00')
  await r2.closeShift('145.50')
  for (const r of [hq, r1, r2]) await r.expectDrained()
  await r2.tab('inbox')
  await expect(
    r2.page.locator('[data-testid="inbox-item"][data-kind="drawer.over_short"]'),
  ).toContainText('Register 2: drawer short by $0.50')
  await r2.shot('inbox-resolved')

  // The sums, straight from the relay's log.
  const payments = readRelayLog(relay.dataDir, 'payment/s8-')
  const declinedIds = new Set(
    payments.filter((e) => e.kind === 'payment.declined').map((e) => e.entity),
  )
  const sum = (entries: readonly LoggedEntry[], field = 'amount') =>
    entries.reduce((n, e) => n + Number(e.data[field]), 0)
  const of = (kind: string, entries = payments) => entries.filter((e) => e.kind === kind)
  const cardSales = sum(of('card.charged'))
  const cardDeclined = sum(of('card.charged').filter((e) => declinedIds.has(e.entity)))
  const drawers = readRelayLog(relay.dataDir, 'drawer/s8-')
  const cashTakings = sum(of('cash.received')) - sum(of('cash.out', drawers))
  const giftTakings = sum(of('giftcard.charged'))
  const writtenOff = sum(of('order.written_off', readRelayLog(relay.dataDir, 'order/s8-')))
  expect([cardSales, cardDeclined, cashTakings, giftTakings, writtenOff]).toEqual([
    5_420, 5_000, 5_200, 500, 1_800,
  ])

  const texts: string[] = []
  for (const r of [r1, r2]) {
    await r.tab('report')
    await r.page.getByTestId('report-scope').selectOption('store')
    const cents = (id: string) => r.page.getByTestId(id)
    await expect(cents('report-card-sales')).toHaveAttribute('data-cents', String(cardSales))
    await expect(cents('report-card-declined')).toHaveAttribute('data-cents', String(cardDeclined))
    await expect(cents('report-card-takings')).toHaveAttribute(
      'data-cents',
      String(cardSales - cardDeclined),
    )
    await expect(cents('report-cash-takings')).toHaveAttribute('data-cents', String(cashTakings))
    await expect(cents('report-cash-collected')).toHaveAttribute('data-cents', '3200')
    await expect(cents('report-giftcard-takings')).toHaveAttribute(
      'data-cents',
      String(giftTakings),
    )
    await expect(cents('report-total-takings')).toHaveAttribute(
      'data-cents',
      String(cardSales - cardDeclined + cashTakings + giftTakings),
    )
    await expect(cents('report-written-off')).toHaveAttribute('data-cents', String(writtenOff))
    for (const register of ['r1', 'r2']) {
      const drawer = drawers.filter((e) => e.entity === `drawer/s8-${register}`)
      const expected =
        sum(of('shift.opened', drawer), 'float') +
        sum(of('cash.in', drawer)) -
        sum(of('cash.out', drawer))
      await expect(cents(`report-drawer-${register}-expected`)).toHaveAttribute(
        'data-cents',
        String(expected),
      )
      await expect(cents(`report-drawer-${register}-counted`)).toHaveAttribute(
        'data-cents',
        String(sum(of('shift.closed', drawer), 'counted')),
      )
      await expect(cents(`report-drawer-${register}-over-short`)).toHaveAttribute(
        'data-cents',
        String(sum(of('drawer.over_short', drawer), 'delta')),
      )
      await expect(cents(`report-drawer-${register}-check`)).toHaveAttribute('data-mismatch', '0')
    }
    await expect(cents('report-over-short')).toHaveAttribute('data-cents', '-50')
    await expect(r.page.getByTestId('report-covers')).toContainText('The whole store')
    texts.push(await reportTables(r.page))
  }
  // Same ledgers, same report, whichever register shows it.
  expect(texts[1]).toBe(texts[0])
  await r2.shot('day-report', { docs: 'day-report' })

  // One register's report says so and sums to its share.
  await r1.page.getByTestId('report-scope').selectOption('r1')
  await expect(r1.page.getByTestId('report-covers')).toContainText('Register 1 only')
  await expect(r1.page.getByTestId('report-cash-takings')).toHaveAttribute('data-cents', '600')

  // Printing shows the report and nothing of the screen around it.
  await r1.page.emulateMedia({ media: 'print' })
  await expect(r1.page.locator('.topbar')).toBeHidden()
  await expect(r1.status('bar')).toBeHidden()
  await expect(r1.page.getByTestId('report-takings')).toBeVisible()
  await r1.shot('day-report-print')
  await r1.page.emulateMedia({ media: 'screen' })
})

test('cash needs an open shift; a shift closes once and its number never skips', async ({
  open,
  relay,
}) => {
  // Goal: shift discipline on the register. Method: a register with no shift refuses cash
  // (and may still take a card), has nothing to close; then opens, sells, closes, and opens
  // and closes the next; the relay's log holds exactly those shifts, numbered 1 and 2, with
  // no over/short and no refused shift entry.
  const a = await open('s9', 'r2', { shift: false })
  await a.page.getByTestId('item-espresso').click()
  await a.page.getByTestId('pay-cash').click()
  await expect(a.page.getByTestId('sale-error')).toHaveText(
    'Open a shift on the Drawer screen before taking cash: cash belongs to a shift.',
  )
  await a.page.getByTestId('pay-card').click()
  await a.page.getByTestId('card-number').fill('4242 4242 4242 4242')
  await a.page.getByTestId('confirm-card').click()
  await a.page.getByTestId('new-sale').click()

  await a.tab('drawer')
  await expect(a.page.getByTestId('drawer-state')).toHaveText('not open')
  await expect(a.page.getByTestId('drawer-shift')).toHaveText('shift 1')
  await expect(a.page.getByTestId('drawer-close')).toBeDisabled()
  await a.shot('no-shift')

  // The refusal goes with its cause: once the shift is open, the cart is still there and the
  // banner is gone.
  await a.tab('register')
  await a.page.getByTestId('item-croissant').click()
  await a.page.getByTestId('pay-cash').click()
  await expect(a.page.getByTestId('sale-error')).toContainText('Open a shift')
  await a.openShift('50.00')
  await expect(a.page.getByTestId('sale-error')).toHaveCount(0)
  await expect(a.page.getByTestId('cart-qty-croissant')).toHaveText('1')
  await a.page.getByTestId('pay-cash').click()
  await a.page.getByTestId('confirm-cash').click()
  await a.page.getByTestId('new-sale').click()
  await a.tab('drawer')
  await expect(a.page.getByTestId('drawer-expected')).toHaveText('$53.20')
  await a.closeShift('53.20')
  await expect(a.page.getByTestId('drawer-shift')).toHaveText('shift 2')
  await expect(a.page.getByTestId('drawer-close')).toBeDisabled()
  await expect(a.page.getByTestId('drawer-delta')).toHaveText('balanced')
  await a.openShift('50.00', 'drawer')
  await a.closeShift('50.00')
  await expect(a.page.getByTestId('drawer-shift')).toHaveText('shift 3')
  await a.expectDrained()

  const drawer = readRelayLog(relay.dataDir, 'drawer/s9-r2')
  expect(kindsOf(drawer)).toEqual([
    'shift.opened',
    'cash.in',
    'shift.closed',
    'shift.opened',
    'shift.closed',
  ])
  expect(drawer.filter((e) => e.kind === 'shift.closed').map((e) => e.data.shift)).toEqual([1, 2])
})

/** The report's tables as text: what a printed report would say. */
async function reportTables(page: Page): Promise<string> {
  const takings = await page.getByTestId('report-takings').innerText()
  const drawers = await page.getByTestId('report-drawers').innerText()
  return `${takings}\n${drawers}`
}

/**
 * The five offline point-of-sale scenarios, each in its own store so they do not share stock.
 * Every test checks three places: each register's screen, and the relay's server log read
 * from its SQLite file.
 */
import { copyFileSync, mkdirSync } from 'node:fs'
import { expect, test } from './fixtures.ts'
import { ROOT } from './relay-process.ts'
import { byEntity, kindsOf, readRelayLog } from './relay-log.ts'

test('two offline registers sell the last unit: one stock.oversold everywhere, stock -1', async ({
  open,
  relay,
}) => {
  // Goal: a conflict between two offline registers is resolved by one correcting entry, seen
  // alike by both and by the relay. Method: both registers go offline, each sells the store's
  // only hand grinder, both come back; then the stock ledger is read on each and on the relay.
  const a = await open('s1', 'r1')
  const b = await open('s1', 'r2')
  await expect(a.page.getByTestId('item-stock-grinder')).toHaveText('1 left')

  await a.goOffline()
  await b.goOffline()
  await a.sell(['grinder'], { cash: true })
  await b.sell(['grinder'], { cash: true })
  // Each register only knows its own sale.
  await expect(a.page.getByTestId('item-stock-grinder')).toHaveText('0 left')
  await expect(b.page.getByTestId('item-stock-grinder')).toHaveText('0 left')
  await expect(a.status('pending-count')).toHaveText('1')
  await a.shot('offline-sold')
  await b.shot('offline-sold')

  await a.goOnline()
  await b.goOnline()
  await a.expectDrained()
  await b.expectDrained()

  for (const r of [a, b]) {
    await r.tab('stock')
    await expect(r.page.getByTestId('stock-onhand-grinder')).toHaveText('-1')
    await expect(r.page.getByTestId('stock-confirmed-grinder')).toHaveText('-1')
    await expect(r.page.getByTestId('stock-oversold-grinder')).toHaveText('oversold ×1')
    await r.tab('inbox')
    const items = r.page.locator('[data-testid="inbox-item"][data-kind="stock.oversold"]')
    await expect(items).toHaveCount(1)
    await expect(items.getByTestId('inbox-title')).toContainText('Hand grinder: oversold by 1')
    await expect(items.getByTestId('inbox-todo')).toContainText('Count the shelf')
    await r.shot('inbox')
  }

  const log = readRelayLog(relay.dataDir, 'stock/s1:grinder')
  expect(kindsOf(log)).toEqual(['stock.sold', 'stock.sold', 'stock.oversold'])
  const sold = log
    .filter((e) => e.kind === 'stock.sold')
    .reduce((n, e) => n + Number(e.data.qty), 0)
  expect(1 - sold).toBe(-1) // the catalog opens each store with one grinder
  expect(log[2]?.corrects).toBe(log[1]?.id)

  // The manager counts the shelf: the recount closes the task on both registers.
  await a.page.getByTestId('inbox-count-input').fill('0')
  await a.page.getByTestId('inbox-count').click()
  await expect(b.page.locator('[data-kind="stock.oversold"]')).toHaveAttribute('data-open', 'false')
})

test('offline sales survive a reload offline and reach the relay exactly once', async ({
  open,
  relay,
}) => {
  // Goal: sales taken offline are durable on the device, the app opens offline from its
  // service worker, and every sale lands on the relay once. Method: sell offline, reload
  // offline, sell again, reconnect; then count each order's entries in the relay's log.
  const a = await open('s2', 'r1')
  await a.page.evaluate(async () => {
    await navigator.serviceWorker.ready
  })
  await a.goOffline()
  await a.sell(['espresso', 'croissant'], { cash: true })
  await a.sell(['flat-white'], { card: '4242 4242 4242 4242', contact: 'kim@example.com' })
  await a.sell(['mug'], { cash: true })
  await expect(a.status('pending-count')).toHaveText('3')

  const reload = await a.page.reload()
  expect(reload?.fromServiceWorker()).toBe(true)
  await expect(a.status('connection')).toHaveText('offline')
  await expect(a.status('pending-count')).toHaveText('3')
  // The register still sells after the offline reload.
  await a.page.getByTestId('item-banana-bread').click()
  await a.page.getByTestId('item-chai').click()
  await a.shot('reloaded-offline')
  if (process.env.UPDATE_DEMO_PNG === '1') {
    mkdirSync(`${ROOT}docs`, { recursive: true })
    copyFileSync(test.info().outputPath('s2-r1-reloaded-offline.png'), `${ROOT}docs/demo.png`)
  }
  await a.page.getByTestId('pay-cash').click()
  await a.page.getByTestId('confirm-cash').click()
  await a.page.getByTestId('new-sale').click()
  await expect(a.status('pending-count')).toHaveText('4')
  await a.tab('orders')
  await expect(a.page.locator('[data-testid^="order-row-"][data-state="pending"]')).toHaveCount(4)

  await a.goOnline()
  await a.expectDrained()
  await expect(a.page.locator('[data-testid^="order-row-"][data-state="synced"]')).toHaveCount(4)
  await a.shot('synced')

  const orders = readRelayLog(relay.dataDir, 'order/s2-')
  const byOrder = byEntity(orders)
  expect(byOrder.size).toBe(4)
  for (const entries of byOrder.values()) expect(kindsOf(entries)).toEqual(['order.completed'])
  const day = readRelayLog(relay.dataDir, 'day/s2:')
  expect(day.filter((e) => e.kind === 'day.sale')).toHaveLength(4)
  expect(new Set(day.map((e) => e.data.order)).size).toBe(4)
  // The ids the register shows are the ones the relay holds.
  const shown = await a.page
    .locator('[data-testid^="order-row-"]')
    .evaluateAll((rows) => rows.map((r) => `order/${r.getAttribute('data-order') ?? ''}`))
  expect(shown.sort()).toEqual([...byOrder.keys()].sort())
})

test('the relay is killed while registers push: nothing lost or duplicated, status recovers', async ({
  open,
  relay,
}) => {
  // Goal: an unclean relay crash in the middle of pushing loses and duplicates nothing, and
  // registers recover without help. Method: two registers build an outbox offline, reconnect,
  // and the relay gets SIGKILL while they push; it restarts on the same data directory and
  // port; one register also sells while the relay is down. Then the log is counted.
  const a = await open('s3', 'r1')
  const b = await open('s3', 'r2')
  await a.goOffline()
  await b.goOffline()
  const sales = 5
  for (let i = 0; i < sales; i++) {
    await a.sell(['espresso'], { cash: true })
    await b.sell(['filter', 'croissant'], { cash: true })
  }
  await a.goOnline()
  await b.goOnline()
  // Kill as soon as the first pushed sale is in the relay's log: the other register's push
  // (and acks not yet read) are then still in flight.
  await expect
    .poll(() => byEntity(readRelayLog(relay.dataDir, 'order/s3-')).size, {
      intervals: [5],
      timeout: 45_000,
    })
    .toBeGreaterThan(0)
  await relay.sigkill()
  // How far the pushes got before the crash varies from run to run; record it.
  const before = byEntity(readRelayLog(relay.dataDir, 'order/s3-')).size
  test.info().annotations.push({
    type: 'orders on the relay at the kill',
    description: `${before} of ${2 * sales}`,
  })
  console.log(`relay killed with ${before} of ${2 * sales} orders in its log`)
  await expect(a.status('connection')).toHaveText('offline')
  await a.sell(['chai'], { cash: true })
  await a.shot('relay-down')
  await relay.restart()

  await a.expectDrained()
  await b.expectDrained()
  await a.shot('recovered')

  const orders = readRelayLog(relay.dataDir, 'order/s3-')
  const byOrder = byEntity(orders)
  expect(byOrder.size).toBe(2 * sales + 1)
  for (const entries of byOrder.values()) expect(kindsOf(entries)).toEqual(['order.completed'])
  const daySales = readRelayLog(relay.dataDir, 'day/s3:').filter((e) => e.kind === 'day.sale')
  expect(daySales).toHaveLength(2 * sales + 1)
  const espresso = readRelayLog(relay.dataDir, 'stock/s3:espresso')
  expect(espresso).toHaveLength(sales)
  // Each register sees every sale of the store, its own and the other's.
  for (const r of [a, b]) {
    await r.tab('orders')
    await expect(r.page.locator('[data-testid^="order-row-"][data-state="synced"]')).toHaveCount(
      2 * sales + 1,
    )
  }
})

test('a card taken offline is declined after forwarding: balance due, explained in the inbox', async ({
  open,
  relay,
}) => {
  // Goal: store-and-forward card payments that the processor declines later become a balance
  // due on the order, with the customer's contact, never a silent loss. Method: take a card
  // ending 0002 offline, reconnect, check order, inbox and relay; then settle it in cash.
  const a = await open('s4', 'r1')
  await a.goOffline()
  await a.sell(['beans-1kg'], { card: '4000 0000 0000 0002', contact: 'ana@example.com' })
  await a.tab('orders')
  await expect(a.page.locator('[data-testid^="order-payment-"]')).toContainText('stored offline')
  await a.goOnline()
  await a.expectDrained()

  await expect(a.page.locator('[data-testid^="order-payment-"]')).toContainText('declined')
  await expect(a.page.locator('[data-testid^="order-balance-"]')).toHaveText('$32.00 due')
  await expect(a.page.locator('[data-testid^="order-row-"]')).toHaveAttribute(
    'data-state',
    'corrected',
  )
  await expect(a.page.getByTestId('inbox-badge')).toHaveText('1')
  await a.tab('inbox')
  const item = a.page.locator('[data-testid="inbox-item"][data-kind="order.balance_due"]')
  await expect(item).toHaveCount(1)
  await expect(item.getByTestId('inbox-title')).toContainText('Card declined: $32.00 due')
  await expect(item.getByTestId('inbox-todo')).toContainText('ana@example.com')
  await a.shot('declined')

  const payments = readRelayLog(relay.dataDir, 'payment/s4-')
  expect(kindsOf(payments)).toEqual(['card.charged', 'payment.declined'])
  const order = readRelayLog(relay.dataDir, 'order/s4-')
  expect(kindsOf(order)).toEqual(['order.completed', 'order.balance_due'])
  expect(order[1]?.data).toMatchObject({ amount: 3200, contact: 'ana@example.com', last4: '0002' })

  // The customer comes back and pays cash: the balance is settled by new entries.
  await item.getByTestId('inbox-collect').click()
  await expect(item).toHaveAttribute('data-open', 'false')
  await a.expectDrained()
  expect(kindsOf(readRelayLog(relay.dataDir, 'order/s4-'))).toEqual([
    'order.completed',
    'order.balance_due',
    'order.balance_paid',
  ])
})

test('head office changes a price while a register is offline: order.price_variance', async ({
  open,
  relay,
}) => {
  // Goal: a sale at a stale price stands as charged, and the difference is recorded by a
  // correcting entry. Method: head office raises espresso's price while the register is
  // offline; the register sells two at the old price; after reconnect the order carries the
  // variance on the register, at head office and in the relay's log.
  const a = await open('s5', 'r1')
  const hq = await open('s5', 'hq')
  await a.goOffline()

  await hq.page.getByTestId('price-input-espresso').fill('3.10')
  await hq.page.getByTestId('price-save-espresso').click()
  await expect(hq.page.getByTestId('hq-price-espresso')).toHaveText('$3.10')
  await hq.expectDrained()

  await expect(a.page.getByTestId('item-price-espresso')).toHaveText('$2.80')
  await a.page.getByTestId('item-espresso').click()
  await a.page.getByTestId('item-espresso').click()
  await expect(a.page.getByTestId('cart-total')).toHaveText('$5.60')
  await a.page.getByTestId('pay-cash').click()
  await a.page.getByTestId('confirm-cash').click()
  await expect(a.page.getByTestId('receipt-total')).toHaveText('$5.60')
  await a.page.getByTestId('new-sale').click()
  await a.goOnline()
  await a.expectDrained()

  await expect(a.page.getByTestId('item-price-espresso')).toHaveText('$3.10')
  await a.tab('orders')
  await expect(a.page.locator('[data-testid^="order-row-"]')).toHaveAttribute(
    'data-state',
    'corrected',
  )
  for (const r of [a, hq]) {
    await r.tab('inbox')
    const item = r.page.locator('[data-testid="inbox-item"][data-kind="order.price_variance"]')
    await expect(item).toHaveCount(1)
    await expect(item).toContainText('Charged $2.80 while head office')
    await expect(item).toContainText('$3.10')
    await r.shot('variance')
  }

  const order = readRelayLog(relay.dataDir, 'order/s5-')
  expect(kindsOf(order)).toEqual(['order.completed', 'order.price_variance'])
  expect(order[1]?.data).toMatchObject({ charged: 280, listed: 310, delta: -60, qty: 2 })
})

test('offline limits refuse only cards; server-only operations wait for the connection', async ({
  open,
  relay,
}) => {
  // Goal: the register refuses what it may not take offline, with a reason, and never
  // pretends a server decision was made; the offline limit is card risk, so cash above it is
  // taken. Method: lower the per-sale limit, go offline, take cash above it, try a card above
  // it; check gift card and day close are unavailable and sign-out is blocked while the outbox
  // holds sales; online, an unknown gift card is refused in plain words, a partial refund with
  // a reason is decided by the relay, and a drawer counted over gets its correction.
  const a = await open('s6', 'r1')
  await a.tab('settings')
  await a.page.getByTestId('limit-per-sale').fill('10.00')
  await a.page.getByTestId('limits-save').click()
  await expect(a.page.getByTestId('limits-saved')).toBeVisible()

  await a.goOffline()
  await a.sell(['beans-1kg'], { cash: true })
  await a.page.getByTestId('item-beans-1kg').click()
  await a.page.getByTestId('pay-card').click()
  await expect(a.page.getByTestId('sale-error')).toContainText('limited to $10.00 per sale')
  await expect(a.page.getByTestId('pay-giftcard')).toBeDisabled()
  await a.page.getByRole('button', { name: 'One less House beans 1 kg' }).click()
  // The refusal went with its cause (the cart changed).
  await expect(a.page.getByTestId('sale-error')).toHaveCount(0)
  await a.sell(['espresso'], { cash: true })
  await a.tab('report')
  await expect(a.page.getByTestId('close-day')).toBeDisabled()
  await a.page.getByTestId('sign-out').click()
  await expect(a.page.getByTestId('sign-out-blocked')).toContainText('2 sales are ($34.80)')
  await expect(a.page.getByTestId('sign-out-blocked')).toContainText('not yet at head office')
  await a.shot('limits')

  await a.goOnline()
  await a.expectDrained()
  // The sign-out warning goes once everything is sent.
  await expect(a.page.getByTestId('sign-out-blocked')).toHaveCount(0)
  await a.tab('register')
  await a.page.getByTestId('item-espresso').click()
  await a.page.getByTestId('pay-giftcard').click()
  await a.page.getByTestId('giftcard-code').fill('GC-NONE')
  await expect(a.page.getByTestId('giftcard-balance')).toHaveText(
    'Unknown gift card GC-NONE: check the code on the card.',
  )
  await a.page.getByTestId('confirm-giftcard').click()
  await expect(a.page.getByTestId('sale-error')).toHaveText(
    'Unknown gift card GC-NONE: check the code on the card.',
  )

  // A partial refund: a reason, a review, then the relay decides; the refund names the sale.
  await a.tab('orders')
  const beans = a.page.locator('[data-testid^="order-row-"]', { hasText: 'House beans' })
  const orderId = (await beans.getAttribute('data-order')) ?? ''
  await a.page.getByTestId(`refund-${orderId}`).click()
  await a.page.getByTestId('refund-amount').fill('5')
  await a.page.getByTestId('refund-reason').selectOption('Quality complaint')
  await a.page.getByTestId('refund-review-button').click()
  await expect(a.page.getByTestId('refund-review')).toContainText(
    '$5.00 in cash, out of this drawer',
  )
  await a.page.getByTestId('refund-confirm').click()
  await expect(a.page.getByTestId(`refund-result-${orderId}`)).toContainText('Refunded $5.00')
  await expect(a.page.getByTestId(`order-refunded-${orderId}`)).toHaveText('$5.00 refunded')
  // A drawer counted over gets its correction: float 100 + 32 + 2.80 − 5 = 129.80.
  await a.tab('drawer')
  await expect(a.page.getByTestId('drawer-expected')).toHaveText('$129.80')
  await a.closeShift('130.30')
  await expect(a.page.getByTestId('drawer-delta')).toHaveText('over $0.50 · in the Inbox')
  await a.expectDrained()
  const refunds = readRelayLog(relay.dataDir, `order/${orderId}`)
  expect(kindsOf(refunds)).toEqual(['order.completed', 'order.refunded'])
  expect(refunds[1]?.corrects).toBe(refunds[0]?.id)
  expect(refunds[1]?.data).toMatchObject({ amount: 500, reason: 'Quality complaint' })
  expect(kindsOf(readRelayLog(relay.dataDir, `payment/${orderId}`))).toEqual([
    'cash.received',
    'payment.refunded',
  ])
  expect(kindsOf(readRelayLog(relay.dataDir, 'drawer/s6-r1'))).toEqual([
    'shift.opened',
    'cash.in',
    'cash.in',
    'cash.out',
    'shift.closed',
    'drawer.over_short',
  ])
  await a.page.getByTestId('sign-out').click()
  await expect(a.page.getByTestId('signin-submit')).toBeVisible()
})

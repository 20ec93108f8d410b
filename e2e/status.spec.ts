/**
 * The status bar says why a register is not sending its sales, and the reason goes when its
 * cause goes. Store s7. With `UPDATE_DEMO_PNG=1` the screenshots of each state are copied to
 * docs/screenshots/ for demo/README.md.
 */
import { expect, signIn, test } from './fixtures.ts'
import { byEntity, kindsOf, readRelayLog } from './relay-log.ts'
import { signDevToken } from './tokens.ts'

test('the status bar says why: no network, head office unreachable, not authorised', async ({
  open,
  relay,
}) => {
  // Goal: each reason a register cannot send shows as itself, in words, with what to do, and
  // sales keep being taken and kept. Method: one register goes through each cause in turn
  // (browser offline; the relay process killed; a token the relay refuses, then an expired
  // one), sells during each, and is back online after each; then it signs in again and the
  // relay's log holds every sale once.
  const a = await open('s7', 'r1')
  const bar = a.status('bar')
  await expect(bar).toHaveAttribute('data-reason', 'online')
  await a.shot('online', { top: true, docs: 'status-online' })

  // No network: the browser is offline.
  await a.goOffline()
  await expect(bar).toHaveAttribute('data-reason', 'no_network')
  await expect(a.status('reason')).toContainText('No network.')
  await a.sell(['espresso'], { cash: true })
  await expect(a.status('pending-count')).toHaveText('1')
  await a.shot('no-network', { top: true, docs: 'status-no-network' })
  await a.goOnline()
  await a.expectDrained()
  await expect(bar).toHaveAttribute('data-reason', 'online')

  // Head office unreachable: the network is up, the relay is not.
  await relay.sigkill()
  await expect(bar).toHaveAttribute('data-reason', 'head_office_unreachable')
  await expect(a.status('reason')).toContainText('Head office unreachable.')
  await a.sell(['filter'], { cash: true })
  await a.shot('unreachable', { top: true, docs: 'status-unreachable' })
  await relay.restart()
  await a.expectDrained()
  await expect(bar).toHaveAttribute('data-reason', 'online')

  // Not authorised: the issuer hands out a token the relay refuses. A network blip makes the
  // register connect again with it.
  await a.page.route('**/dev/token*', (route) =>
    route.fulfill({ json: { token: 'not-a-valid-token', expiresAt: Date.now() + 600_000 } }),
  )
  await a.goOffline()
  await a.goOnline()
  await expect(bar).toHaveAttribute('data-reason', 'not_authorised')
  await expect(a.status('reason')).toContainText('refused this register’s sign-in')
  await expect(a.page.getByTestId('status-sign-in')).toBeVisible()
  await a.sell(['chai'], { cash: true })
  await a.shot('not-authorised', { top: true, docs: 'status-not-authorised' })

  // Not authorised, expired: a token that is well signed but past its time.
  await a.page.unroute('**/dev/token*')
  const expired = signDevToken({
    secret: relay.secret,
    tenant: 'harbour-coffee',
    sub: 's7-r1',
    expiresInS: -60,
  })
  await a.page.route('**/dev/token*', (route) =>
    route.fulfill({ json: { token: expired, expiresAt: Date.now() - 60_000 } }),
  )
  await a.goOffline()
  await a.goOnline()
  await expect(a.status('reason')).toContainText('it expired')
  await expect(bar).toHaveAttribute('data-reason', 'not_authorised')

  // Sign in again: the sales stay on the device and go once head office accepts it.
  await a.page.unroute('**/dev/token*')
  await a.page.getByTestId('status-sign-in').click()
  await expect(a.page.getByTestId('signin-note')).toContainText('Sign in again as Register 1')
  // Choosing another register warns that Register 1's sale would stay behind.
  await a.page.getByTestId('signin-register').selectOption('r2')
  await expect(a.page.getByTestId('signin-unsent')).toContainText(
    'Pier Road · Register 1 (1 sale, $4.50)',
  )
  await a.shot('signin-unsent')
  await signIn(a.page, 's7', 'r1')
  await a.expectDrained()
  await expect(bar).toHaveAttribute('data-reason', 'online')

  const orders = byEntity(readRelayLog(relay.dataDir, 'order/s7-'))
  expect(orders.size).toBe(3)
  for (const entries of orders.values()) expect(kindsOf(entries)).toEqual(['order.completed'])
})

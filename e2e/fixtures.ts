/**
 * Test fixtures: one relay process per worker (restartable on the same port and data
 * directory), and registers: each a browser context signed in as one store's register.
 */
import {
  type BrowserContext,
  expect,
  type Page,
  test as base,
  type TestInfo,
} from '@playwright/test'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type RelayProcess, startRelay } from './relay-process.ts'

export interface Relay {
  readonly baseURL: string
  readonly dataDir: string
  readonly pid: number
  /** SIGKILL: no graceful shutdown, as when the machine loses power. */
  sigkill(): Promise<void>
  /** Starts the relay again on the same port and data directory. */
  restart(): Promise<void>
}

export type Tender =
  | { readonly cash: true }
  | { readonly card: string; readonly contact?: string | undefined }

export class Register {
  readonly context: BrowserContext
  readonly page: Page
  readonly name: string
  private readonly testInfo: TestInfo

  constructor(context: BrowserContext, page: Page, name: string, testInfo: TestInfo) {
    this.context = context
    this.page = page
    this.name = name
    this.testInfo = testInfo
  }

  status(field: 'connection' | 'pending-count' | 'pending-amount' | 'outbox') {
    return this.page.getByTestId(`status-${field}`)
  }

  async expectOnline(): Promise<void> {
    await expect(this.status('connection')).toHaveText('online', { timeout: 45_000 })
  }

  /** Takes the register offline the way the browser sees it: no network at all. */
  async goOffline(): Promise<void> {
    await this.context.setOffline(true)
    await expect(this.status('connection')).toHaveText('offline')
  }

  async goOnline(): Promise<void> {
    await this.context.setOffline(false)
  }

  /** Waits until every entry of this register reached the relay. */
  async expectDrained(): Promise<void> {
    await expect(this.status('outbox')).toHaveText('0 in outbox', { timeout: 45_000 })
    await expect(this.status('pending-count')).toHaveText('0')
    await this.expectOnline()
  }

  async tab(
    name: 'register' | 'orders' | 'stock' | 'inbox' | 'drawer' | 'report' | 'head-office',
  ): Promise<void> {
    await this.page.getByTestId(`tab-${name}`).click()
  }

  /** Rings up `skus` and takes `tender`; returns the receipt number. */
  async sell(skus: readonly string[], tender: Tender): Promise<string> {
    const page = this.page
    await this.tab('register')
    for (const sku of skus) await page.getByTestId(`item-${sku}`).click()
    if ('cash' in tender) {
      await page.getByTestId('pay-cash').click()
      await page.getByTestId('confirm-cash').click()
    } else {
      await page.getByTestId('pay-card').click()
      await page.getByTestId('card-number').fill(tender.card)
      if (tender.contact !== undefined) await page.getByTestId('card-contact').fill(tender.contact)
      await page.getByTestId('confirm-card').click()
    }
    await expect(page.getByTestId('receipt')).toBeVisible()
    const receipt = (await page.getByTestId('receipt-order').textContent()) ?? ''
    await page.getByTestId('new-sale').click()
    return receipt
  }

  /** Saves a screenshot of this register as a test artifact. */
  async shot(name: string): Promise<void> {
    const path = this.testInfo.outputPath(`${this.name}-${name}.png`)
    await this.page.screenshot({ path })
    await this.testInfo.attach(`${this.name}-${name}`, { path, contentType: 'image/png' })
  }
}

export const test = base.extend<
  { open: (store: string, register: string) => Promise<Register> },
  { relay: Relay }
>({
  relay: [
    // oxlint-disable-next-line no-empty-pattern -- Playwright needs the destructuring pattern.
    async ({}, use) => {
      const dataDir = mkdtempSync(join(tmpdir(), 'ledgerline-e2e-'))
      const secret = randomBytes(32).toString('hex')
      let current: RelayProcess = await startRelay({ dataDir, secret })
      const port = current.port
      const relay: Relay = {
        baseURL: current.baseURL,
        dataDir,
        get pid() {
          return current.pid
        },
        sigkill: () => current.kill('SIGKILL'),
        restart: async () => {
          current = await startRelay({ dataDir, secret, port })
        },
      }
      try {
        await use(relay)
      } finally {
        await current.kill('SIGTERM')
        rmSync(dataDir, { recursive: true, force: true })
      }
    },
    { scope: 'worker' },
  ],

  open: async ({ browser, relay }, use, testInfo) => {
    const contexts: BrowserContext[] = []
    await use(async (store, register) => {
      const context = await browser.newContext({ baseURL: relay.baseURL })
      contexts.push(context)
      const page = await context.newPage()
      page.on('pageerror', (error) =>
        console.log(`[${store}-${register}] page error: ${error.message}`),
      )
      await page.goto('/')
      await page.getByTestId('signin-store').selectOption(store)
      await page.getByTestId('signin-register').selectOption(register)
      await page.getByTestId('signin-submit').click()
      const r = new Register(context, page, `${store}-${register}`, testInfo)
      await r.expectOnline()
      return r
    })
    for (const context of contexts) await context.close()
  },
})

export { expect }

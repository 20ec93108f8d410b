/**
 * Test fixtures: one relay process per worker (restartable on the same port and data
 * directory), and registers: each a browser context signed in as one store's register, with a
 * shift opened (cash needs one) unless the test asks for none.
 */
import {
  type Browser,
  type BrowserContext,
  expect,
  type Page,
  test as base,
  type TestInfo,
  type ViewportSize,
} from '@playwright/test'
import { randomBytes } from 'node:crypto'
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ROOT, type RelayProcess, startRelay } from './relay-process.ts'

export interface Relay {
  readonly baseURL: string
  readonly dataDir: string
  /** The development secret: tests sign their own (expired, foreign) tokens with it. */
  readonly secret: string
  readonly pid: number
  /** SIGKILL: no graceful shutdown, as when the machine loses power. */
  sigkill(): Promise<void>
  /** Starts the relay again on the same port and data directory. */
  restart(): Promise<void>
}

export type Tender =
  | { readonly cash: true; readonly tendered?: string | undefined }
  | { readonly card: string; readonly contact?: string | undefined }

export interface OpenOptions {
  /** Open a shift with a $100.00 float after signing in (default: true for registers). */
  readonly shift?: boolean | undefined
  readonly viewport?: ViewportSize | undefined
}

type TabName =
  | 'register'
  | 'orders'
  | 'stock'
  | 'inbox'
  | 'drawer'
  | 'report'
  | 'settings'
  | 'head-office'

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

  status(field: 'connection' | 'reason' | 'pending-count' | 'pending-amount' | 'outbox' | 'bar') {
    return this.page.getByTestId(field === 'bar' ? 'status-bar' : `status-${field}`)
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
    await expect(this.status('outbox')).toHaveAttribute('data-outbox', '0', { timeout: 45_000 })
    await expect(this.status('pending-count')).toHaveText('0')
    await this.expectOnline()
  }

  async tab(name: TabName): Promise<void> {
    await this.page.getByTestId(`tab-${name}`).click()
  }

  /** Opens the next shift with `float` on the Drawer screen, then goes back to `back`. */
  async openShift(float = '100.00', back: TabName = 'register'): Promise<void> {
    await this.tab('drawer')
    await this.page.getByTestId('drawer-float').fill(float)
    await this.page.getByTestId('drawer-open').click()
    await expect(this.page.getByTestId('drawer-state')).toHaveText('open')
    await this.tab(back)
  }

  /** Closes the open shift with `counted` on the Drawer screen. */
  async closeShift(counted: string): Promise<void> {
    await this.tab('drawer')
    const rows = await this.page.getByTestId('drawer-close-row').count()
    await this.page.getByTestId('drawer-counted').fill(counted)
    await this.page.getByTestId('drawer-close').click()
    await expect(this.page.getByTestId('drawer-close-row')).toHaveCount(rows + 1)
    await expect(this.page.getByTestId('drawer-state')).toHaveText('not open')
  }

  /** Rings up `skus` and takes `tender`; returns the receipt number. */
  async sell(skus: readonly string[], tender: Tender): Promise<string> {
    const page = this.page
    await this.tab('register')
    for (const sku of skus) await page.getByTestId(`item-${sku}`).click()
    if ('cash' in tender) {
      await page.getByTestId('pay-cash').click()
      if (tender.tendered !== undefined)
        await page.getByTestId('cash-tendered').fill(tender.tendered)
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

  /** Saves a screenshot of this register as a test artifact; `docs` also copies it there. */
  async shot(
    name: string,
    options: { top?: boolean; viewport?: boolean; docs?: string } = {},
  ): Promise<void> {
    const path = this.testInfo.outputPath(`${this.name}-${name}.png`)
    if (options.top === true) {
      // The top bar and the status bar: what a cashier sees of the connection.
      const box = await this.status('bar').boundingBox()
      const width = this.page.viewportSize()?.width ?? 1280
      const height = Math.ceil((box?.y ?? 0) + (box?.height ?? 80))
      await this.page.screenshot({ path, clip: { x: 0, y: 0, width, height } })
    } else {
      await this.page.screenshot({ path, fullPage: options.viewport !== true })
    }
    await this.testInfo.attach(`${this.name}-${name}`, { path, contentType: 'image/png' })
    if (options.docs !== undefined && process.env.UPDATE_DEMO_PNG === '1') {
      mkdirSync(`${ROOT}docs/screenshots`, { recursive: true })
      copyFileSync(path, `${ROOT}docs/screenshots/${options.docs}.png`)
    }
  }
}

export const test = base.extend<
  {
    open: (store: string, register: string, options?: OpenOptions) => Promise<Register>
  },
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
        secret,
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
    await use(async (store, register, options = {}) => {
      const r = await openRegister(browser, relay.baseURL, store, register, testInfo, options)
      contexts.push(r.context)
      return r
    })
    for (const context of contexts) await context.close()
  },
})

/**
 * A new browser context on `baseURL` (head office, or a store hub's page) signed in as
 * `register` of `store`, online, with a shift open unless told not to; the caller closes it.
 */
export async function openRegister(
  browser: Browser,
  baseURL: string,
  store: string,
  register: string,
  testInfo: TestInfo,
  options: OpenOptions = {},
): Promise<Register> {
  const context = await browser.newContext({
    baseURL,
    ...(options.viewport === undefined ? {} : { viewport: options.viewport }),
  })
  const page = await context.newPage()
  page.on('pageerror', (error) =>
    console.log(`[${store}-${register}] page error: ${error.message}`),
  )
  await page.goto('/')
  await signIn(page, store, register)
  const r = new Register(context, page, `${store}-${register}`, testInfo)
  await r.expectOnline()
  if (register !== 'hq' && options.shift !== false) await r.openShift()
  return r
}

/** Picks the store and register on the sign-in screen and opens the register. */
export async function signIn(page: Page, store: string, register: string): Promise<void> {
  await page.getByTestId('signin-store').selectOption(store)
  await page.getByTestId('signin-register').selectOption(register)
  await page.getByTestId('signin-submit').click()
}

export { expect }

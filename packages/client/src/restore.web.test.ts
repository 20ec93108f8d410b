// Goal: issue 12's browser requirement — the restore scenarios (cases 1 and 2) in Chromium: copy
// a database, sync, restore, sync: every sale exactly once.
// Method: as browser.test.ts (headless Debian Chromium through playwright-core, a page bundled by
// esbuild, the real relay on SQLite behind the test proxy), with web-test/restore-page.ts, which
// backs a database up inside the page (every store, key path, index and record) and writes it
// back later. Sales are told apart by their data (`{ tag, i }`), since a recovered sale may move to
// a new clientId. Skipped only when no Chromium is installed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Browser, Page } from 'playwright-core'
import { servePage, type PageServer } from '../web-test/harness.ts'
import type { Harness } from '../web-test/page.ts'
import type { Backups } from '../web-test/restore-page.ts'
import { startProxy, startRelay, type Proxy, type TestRelay } from '../test-support/relay.ts'

const browserModule = new URL('../../../scripts/browser.mjs', import.meta.url).href
const { chromiumPath, CHROMIUM_ARGS } = (await import(browserModule)) as {
  chromiumPath(): string | undefined
  CHROMIUM_ARGS: string[]
}
const executablePath = chromiumPath()
if (executablePath === undefined) {
  process.stdout.write('[skip] restore browser tests: no Chromium found\n')
}

type W = { harness: Harness; backups: Backups }

describe.skipIf(executablePath === undefined)('issue 12: restored databases in Chromium', () => {
  let browser: Browser
  let pages: PageServer
  let server: TestRelay
  let proxy: Proxy

  beforeAll(async () => {
    const { chromium } = await import('playwright-core')
    pages = await servePage('restore-page.ts')
    server = await startRelay({ allowedOrigins: [pages.origin] })
    proxy = await startProxy({ port: server.relay.port })
    browser = await chromium.launch({
      executablePath: executablePath as string,
      args: CHROMIUM_ARGS,
      headless: true,
    })
  }, 120_000)

  afterAll(async () => {
    await browser?.close()
    await proxy?.close()
    await server?.close()
    await pages?.close()
  })

  const start = async (page: Page, dbName: string) => {
    const token = await server.token()
    await page.evaluate((o) => (window as unknown as W).harness.start(o), {
      url: proxy.url,
      token,
      dbName,
    })
  }
  const append = (page: Page, entity: string, count: number, tag: string) =>
    page.evaluate((a) => (window as unknown as W).harness.append(a.entity, a.count, a.tag), {
      entity,
      count,
      tag,
    })
  const synced = async (page: Page) =>
    expect(await page.evaluate(() => (window as unknown as W).harness.synced(30_000))).toBe(
      'synced',
    )
  const close = (page: Page) => page.evaluate(() => (window as unknown as W).harness.close())
  const sales = async (entity: string) =>
    (await server.relay.store.readEntity('t1', entity, 1, 1000))
      .map((e) => {
        const d = e.data as { tag: string; i: number }
        return `${d.tag}${d.i}`
      })
      .sort()

  async function openPage(): Promise<Page> {
    const page = await (await browser.newContext()).newPage()
    await page.goto(pages.origin)
    await page.waitForFunction(() => (window as unknown as Partial<W>).backups !== undefined)
    return page
  }

  it('case 1: a copy taken offline, restored after the till synced: every sale once', async () => {
    const page = await openPage()
    proxy.setOnline(false)
    try {
      await start(page, 'web-restore-1')
      await append(page, 'order/web-r1', 2, 'copied')
      await close(page)
      expect(
        await page.evaluate(() => (window as unknown as W).backups.take('web-restore-1')),
      ).toBeGreaterThan(0)
    } finally {
      proxy.setOnline(true)
    }
    await start(page, 'web-restore-1')
    await synced(page)
    await append(page, 'order/web-r1', 1, 'after')
    await synced(page)
    await close(page)
    await page.evaluate(() => (window as unknown as W).backups.restore())
    await start(page, 'web-restore-1')
    await synced(page)
    expect(await sales('order/web-r1')).toEqual(['after0', 'copied0', 'copied1'])
    await close(page)
  }, 120_000)

  it('case 2: a copy restored and used offline again: no sale lost, none doubled', async () => {
    const page = await openPage()
    await start(page, 'web-restore-2')
    await synced(page)
    await close(page)
    await page.evaluate(() => (window as unknown as W).backups.take('web-restore-2'))
    await start(page, 'web-restore-2')
    await append(page, 'order/web-r2', 2, 'first')
    await synced(page)
    await close(page)
    await page.evaluate(() => (window as unknown as W).backups.restore())
    proxy.setOnline(false)
    try {
      await start(page, 'web-restore-2')
      await append(page, 'order/web-r2', 3, 'again')
    } finally {
      proxy.setOnline(true)
    }
    await synced(page)
    expect(await sales('order/web-r2')).toEqual(['again0', 'again1', 'again2', 'first0', 'first1'])
    await close(page)
  }, 120_000)
})

// Goal: issue 12's browser requirement — the restore scenarios (cases 1 and 2) in Chromium: copy
// a database, sync, restore, sync: every sale exactly once.
// Method: as browser.test.ts (headless Debian Chromium through playwright-core, a page bundled by
// esbuild, the real relay on SQLite behind the test proxy), with web-test/restore-page.ts, which
// backs a database up inside the page (every store, key path, index and record) and writes it
// back later. Sales are told apart by their data (`{ tag, i }`), since a recovered sale may move to
// a new clientId. Skipped only when no Chromium is installed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Page } from 'playwright-core'
import type { Harness } from '../web-test/page.ts'
import type { Backups } from '../web-test/restore-page.ts'
import { CHROMIUM, startBrowserRig, type BrowserRig } from '../web-test/rig.ts'

type W = { harness: Harness; backups: Backups }

describe.skipIf(CHROMIUM === undefined)('issue 12: restored databases in Chromium', () => {
  let rig: BrowserRig

  beforeAll(async () => {
    rig = await startBrowserRig('restore-page.ts')
  }, 120_000)

  afterAll(() => rig?.close())

  const start = async (page: Page, dbName: string) => {
    const token = await rig.server.token()
    await page.evaluate((o) => (window as unknown as W).harness.start(o), {
      url: rig.proxy.url,
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
    (await rig.server.relay.store.readEntity('t1', entity, 1, 1000))
      .map((e) => {
        const d = e.data as { tag: string; i: number }
        return `${d.tag}${d.i}`
      })
      .sort()

  async function openPage(): Promise<Page> {
    const page = await (await rig.browser.newContext()).newPage()
    await page.goto(rig.pages.origin)
    await page.waitForFunction(() => (window as unknown as Partial<W>).backups !== undefined)
    return page
  }

  it('case 1: a copy taken offline, restored after the till synced: every sale once', async () => {
    const page = await openPage()
    rig.proxy.setOnline(false)
    try {
      await start(page, 'web-restore-1')
      await append(page, 'order/web-r1', 2, 'copied')
      await close(page)
      expect(
        await page.evaluate(() => (window as unknown as W).backups.take('web-restore-1')),
      ).toBeGreaterThan(0)
    } finally {
      rig.proxy.setOnline(true)
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
    rig.proxy.setOnline(false)
    try {
      await start(page, 'web-restore-2')
      await append(page, 'order/web-r2', 3, 'again')
    } finally {
      rig.proxy.setOnline(true)
    }
    await synced(page)
    expect(await sales('order/web-r2')).toEqual(['again0', 'again1', 'again2', 'first0', 'first1'])
    await close(page)
  }, 120_000)
})

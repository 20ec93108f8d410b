// Goal: what only a real browser can show (anchors-reliability.md B13, B17): appends use strict
// durability; two tabs of one origin share one socket, their appends arrive exactly once, and
// closing the leader tab hands the socket over within 2 s; a reload with a non-empty outbox
// keeps every entry and drains it.
// Method: headless Chromium (Debian's, via playwright-core) loads a page bundled by esbuild
// from web-test/page.ts and served on 127.0.0.1:0; the page talks to a real in-process relay
// through a TCP proxy on loopback that counts connections and can go offline. Skipped only when
// no Chromium is installed (scripts/browser.mjs finds it).
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { servePage, type PageServer } from '../web-test/harness.ts'
import type { Harness } from '../web-test/page.ts'
import { startProxy, startRelay, type Proxy, type TestRelay } from '../test-support/relay.ts'

const browserModule = new URL('../../../scripts/browser.mjs', import.meta.url).href
const { chromiumPath, CHROMIUM_ARGS } = (await import(browserModule)) as {
  chromiumPath(): string | undefined
  CHROMIUM_ARGS: string[]
}
const executablePath = chromiumPath()
if (executablePath === undefined) {
  process.stdout.write(
    "[skip] browser tests: no Chromium found (install Debian's chromium or set LEDGERLINE_CHROMIUM)\n",
  )
}

type H = { harness: Harness }

describe.skipIf(executablePath === undefined)('client in Chromium', () => {
  let browser: Browser
  let pages: PageServer
  let server: TestRelay
  let proxy: Proxy

  beforeAll(async () => {
    const { chromium } = await import('playwright-core')
    pages = await servePage()
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

  async function open(context: BrowserContext, dbName: string): Promise<Page> {
    const page = await context.newPage()
    await page.goto(pages.origin)
    await page.waitForFunction(() => (window as unknown as Partial<H>).harness !== undefined)
    const token = await server.token()
    await page.evaluate((o) => (window as unknown as H).harness.start(o), {
      url: proxy.url,
      token,
      dbName,
    })
    return page
  }

  const status = (page: Page) => page.evaluate(() => (window as unknown as H).harness.status())

  async function waitFor(
    check: () => Promise<boolean>,
    timeoutMs: number,
    what: string,
  ): Promise<number> {
    const started = Date.now()
    while (!(await check())) {
      if (Date.now() - started > timeoutMs)
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
      await new Promise((r) => setTimeout(r, 25))
    }
    return Date.now() - started
  }

  it('appends with strict durability', async () => {
    const context = await browser.newContext()
    const page = await open(context, 'strict')
    // The session's first write (strict too) is over by then: only the appends are counted.
    expect(await page.evaluate(() => (window as unknown as H).harness.synced(30_000))).toBe(
      'synced',
    )
    await page.evaluate(() => {
      ;(window as unknown as H).harness.transactions().length = 0
    })
    await page.evaluate(() => (window as unknown as H).harness.append('order/strict', 20, 'strict'))
    const txs = await page.evaluate(() => (window as unknown as H).harness.transactions())
    // The append transaction is the one over exactly meta + outbox, read-write (the first one
    // also reads the entity's load, so its scope takes the history's stores; names sorted).
    const scopes = ['meta,outbox', 'acked,basePages,chunks,ledgers,meta,outbox,snapshots,staged']
    const appends = txs.filter((t) => scopes.includes(t.stores) && t.mode === 'readwrite')
    expect(appends.length).toBe(20)
    expect(appends.every((t) => t.durability === 'strict')).toBe(true)
    expect(await page.evaluate(() => (window as unknown as H).harness.synced(30_000))).toBe(
      'synced',
    )
    await context.close()
  }, 120_000)

  it("runs one socket for two tabs, delivers both tabs' appends once, and hands over within 2 s", async () => {
    const context = await browser.newContext()
    const before = proxy.connections()
    const a = await open(context, 'tabs')
    const b = await open(context, 'tabs')
    await waitFor(
      async () => (await status(a)).online || (await status(b)).online,
      30_000,
      'a leader online',
    )
    // Sample the relay-side connection count for a while: never more than one for this database.
    let most = 0
    for (let i = 0; i < 20; i++) {
      most = Math.max(most, proxy.connections() - before)
      await new Promise((r) => setTimeout(r, 50))
    }
    expect(most).toBe(1)
    const [sa, sb] = [await status(a), await status(b)]
    expect([sa.leader, sb.leader].filter(Boolean).length).toBe(1)
    const [idsA, idsB] = await Promise.all([
      a.evaluate(() => (window as unknown as H).harness.append('order/tabs', 30, 'a')),
      b.evaluate(() => (window as unknown as H).harness.append('order/tabs', 30, 'b')),
    ])
    await waitFor(
      async () => (await server.relay.store.readEntity('t1', 'order/tabs', 1, 1000)).length >= 60,
      30_000,
      '60 entries at the relay',
    )
    const stored = await server.relay.store.readEntity('t1', 'order/tabs', 1, 1000)
    expect(stored.length).toBe(60)
    expect(new Set(stored.map((e) => e.id))).toEqual(new Set([...idsA, ...idsB]))
    // Both tabs allocate from one clientSeq sequence: no id is shared.
    expect(new Set([...idsA, ...idsB]).size).toBe(60)
    const [leader, follower] = sa.leader ? [a, b] : [b, a]
    await leader.close({ runBeforeUnload: false })
    const handoverMs = await waitFor(
      async () => (await status(follower)).leader,
      10_000,
      'the other tab to lead',
    )
    process.stdout.write(`[measure] leader handover: ${handoverMs} ms\n`)
    expect(handoverMs).toBeLessThan(2_000)
    await waitFor(async () => (await status(follower)).online, 30_000, 'the new leader online')
    await follower.evaluate(() => (window as unknown as H).harness.append('order/tabs', 5, 'after'))
    expect(await follower.evaluate(() => (window as unknown as H).harness.synced(30_000))).toBe(
      'synced',
    )
    expect((await server.relay.store.readEntity('t1', 'order/tabs', 1, 1000)).length).toBe(65)
    await context.close()
  }, 180_000)

  it('keeps a non-empty outbox across a reload and drains it', async () => {
    const context = await browser.newContext()
    proxy.setOnline(false)
    try {
      const page = await open(context, 'reload')
      const ids = await page.evaluate(() =>
        (window as unknown as H).harness.append('order/reload', 40, 'r'),
      )
      expect((await status(page)).outboxEntries).toBe(40)
      await page.reload()
      await page.waitForFunction(() => (window as unknown as Partial<H>).harness !== undefined)
      const token = await server.token()
      await page.evaluate((o) => (window as unknown as H).harness.start(o), {
        url: proxy.url,
        token,
        dbName: 'reload',
      })
      await waitFor(
        async () => (await status(page)).outboxEntries === 40,
        10_000,
        'the outbox read back after reload',
      )
      proxy.setOnline(true)
      expect(await page.evaluate(() => (window as unknown as H).harness.synced(60_000))).toBe(
        'synced',
      )
      const stored = await server.relay.store.readEntity('t1', 'order/reload', 1, 1000)
      expect(stored.map((e) => e.id)).toEqual(ids)
    } finally {
      proxy.setOnline(true)
      await context.close()
    }
  }, 180_000)
})

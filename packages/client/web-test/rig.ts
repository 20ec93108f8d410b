// What the browser tests share: headless Chromium (Debian's, found by scripts/browser.mjs and
// driven through playwright-core), a test page bundled by esbuild and served on 127.0.0.1:0, and
// the real relay (SQLite, in-process) behind the TCP proxy of test-support, which can go offline.
import type { Browser } from 'playwright-core'
import { startProxy, startRelay, type Proxy, type TestRelay } from '../test-support/relay.ts'
import { servePage, type PageServer } from './harness.ts'

const browserModule = new URL('../../../scripts/browser.mjs', import.meta.url).href
const { chromiumPath, CHROMIUM_ARGS } = (await import(browserModule)) as {
  chromiumPath(): string | undefined
  CHROMIUM_ARGS: string[]
}

/** Chromium's path; undefined (and said once) when none is installed: the tests are skipped. */
export const CHROMIUM: string | undefined = chromiumPath()
if (CHROMIUM === undefined) {
  process.stdout.write(
    "[skip] browser tests: no Chromium found (install Debian's chromium or set LEDGERLINE_CHROMIUM)\n",
  )
}

export interface BrowserRig {
  readonly browser: Browser
  readonly pages: PageServer
  readonly server: TestRelay
  readonly proxy: Proxy
  close(): Promise<void>
}

/** Serves `entry` (a file of web-test/), starts the relay and its proxy, launches Chromium. */
export async function startBrowserRig(entry = 'page.ts'): Promise<BrowserRig> {
  const { chromium } = await import('playwright-core')
  const pages = await servePage(entry)
  const server = await startRelay({ allowedOrigins: [pages.origin] })
  const proxy = await startProxy({ port: server.relay.port })
  const browser = await chromium.launch({
    executablePath: CHROMIUM as string,
    args: CHROMIUM_ARGS,
    headless: true,
  })
  return {
    browser,
    pages,
    server,
    proxy,
    async close() {
      await browser.close()
      await proxy.close()
      await server.close()
      await pages.close()
    },
  }
}

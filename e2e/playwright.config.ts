/**
 * End-to-end tests of the point-of-sale demo against a real relay process, in Chromium. Each
 * browser context is one register; `context.setOffline` takes a register offline. The relay
 * is started by the `relay` fixture (fixtures.ts) on a free port with a fresh data directory.
 */
import { defineConfig } from '@playwright/test'
// @ts-expect-error: a plain .mjs module shared with the benchmarks and the web tests, without types.
import { CHROMIUM_ARGS, chromiumPath } from '../scripts/browser.mjs'

const executablePath = (chromiumPath as () => string | undefined)()

export default defineConfig({
  testDir: '.',
  testMatch: '*.spec.ts',
  outputDir: 'test-results',
  forbidOnly: process.env.CI !== undefined,
  retries: 0,
  workers: 1,
  fullyParallel: false,
  timeout: 120_000,
  expect: { timeout: 30_000 },
  reporter: [['list']],
  use: {
    headless: true,
    trace: 'on-first-retry',
    screenshot: 'on',
    viewport: { width: 1280, height: 800 },
    launchOptions: {
      ...(executablePath === undefined ? {} : { executablePath }),
      args: CHROMIUM_ARGS as string[],
    },
  },
})

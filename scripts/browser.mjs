// Where the browser tests find Chromium, shared by the Playwright config, the web tests and
// the benchmarks. Returns undefined when only Playwright's own browser is left.
import { existsSync } from 'node:fs'

export function chromiumPath() {
  const candidates = [
    process.env.LEDGERLINE_CHROMIUM,
    '/usr/bin/chromium',
    '/usr/bin/chromium-browser',
    '/snap/bin/chromium',
  ]
  return candidates.find((p) => p !== undefined && p !== '' && existsSync(p))
}

/** Flags for headless Chromium on a closed network (background services would only fail). */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

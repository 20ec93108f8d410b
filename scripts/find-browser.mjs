// Finds a Chromium for the browser tests and prints which one is used.
// Order: LEDGERLINE_CHROMIUM, the system Chromium (/usr/bin/chromium, chromium-browser), then
// Playwright's own browser, installing it where the network allows. Exits non-zero with the
// reason when no browser can be had, so the tests never pass without having run.
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { chromiumPath } from './browser.mjs'

const found = chromiumPath()
if (found !== undefined) {
  console.log(`browser: ${found}`)
  process.exit(0)
}
console.log('browser: no system Chromium; installing Playwright Chromium')
try {
  execFileSync('npx', ['playwright', 'install', 'chromium'], { stdio: 'inherit' })
} catch {
  console.error(
    "browser: could not install Playwright Chromium. Install Debian's `chromium` or set LEDGERLINE_CHROMIUM.",
  )
  process.exit(1)
}
if (!existsSync(chromiumPath() ?? '')) console.log('browser: using Playwright Chromium')

#!/usr/bin/env node
// The `ledgerline-relay` command. Committed, not built, so npm links it at install time even in
// a fresh checkout, before `npm run build` made dist/cli.js; it then runs the built CLI.
import { existsSync } from 'node:fs'

const cli = new URL('../dist/cli.js', import.meta.url)
if (!existsSync(cli)) {
  console.error(
    'ledgerline-relay: the relay is not built (dist/cli.js is missing). ' +
      'In the Ledgerline repository run `npm run build` first.',
  )
  process.exit(2)
}
const { runCli } = await import(cli.href)
runCli()

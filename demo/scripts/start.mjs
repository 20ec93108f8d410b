// `npm start`: runs the relay with the demo (development token issuer, SQLite under
// .ledgerline-data) and prints the URL to open. The relay listens on 127.0.0.1, but the URL
// to open is http://localhost: service workers need a secure context, and localhost is one.
//
// `npm run start:hub` (this script with `--hub`): head office as above, and beside it a store
// hub (`--upstream` head office, its own SQLite under .ledgerline-hub-data, the same token
// secret, a hub token from head office's issuer) serving the demo to the store's registers,
// which fail over to head office when the hub is gone. The hub's `--dev` switch
// (`/dev/upstream`) cuts its link to head office: the "Store internet" switch of the demo.
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../..', import.meta.url))
const port = process.env.LEDGERLINE_PORT ?? '8787'
const hubPort = process.env.LEDGERLINE_HUB_PORT ?? '8788'
const withHub = process.argv.includes('--hub')
const DATA = '.ledgerline-data'
const HUB_DATA = '.ledgerline-hub-data'

const children = []
let stopping = false
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    stopping = true
    process.stdin.destroy()
    for (const child of children) child.kill(signal)
  })
}

const common = ['--dev', '--log-format', 'pretty', '--static', 'demo/dist']
common.push('--schema', 'demo/src/schema.ts')
const hqArgs = ['packages/relay/dist/cli.js', '--port', port, '--data', DATA, ...common]
if (withHub) {
  // Registers on the hub's page (another origin) fail over to head office directly.
  const pages = [port, hubPort].flatMap((p) => [`http://localhost:${p}`, `http://127.0.0.1:${p}`])
  hqArgs.push('--allowed-origins', pages.join(','))
}
const hqPort = await run('head office', hqArgs, {})
if (!withHub) {
  console.log(
    `\nLedgerline point-of-sale demo: open http://localhost:${hqPort} in two windows (two registers).`,
  )
  console.log('Walkthrough: demo/README.md. Stop with Ctrl-C.\n')
} else {
  // Head office's token secret (given, or made on its first start in its data directory): the
  // hub checks the registers' tokens offline with the same one.
  const secret =
    process.env.LEDGERLINE_SECRET ?? readFileSync(`${root}${DATA}/dev-secret`, 'utf8').trim()
  const tokenCommand = `"${process.execPath}" demo/scripts/hub-token.mjs http://127.0.0.1:${hqPort}`
  const hubArgs = ['packages/relay/dist/cli.js', '--port', hubPort, '--data', HUB_DATA, ...common]
  hubArgs.push('--upstream', `ws://127.0.0.1:${hqPort}/sync`)
  hubArgs.push('--upstream-token-command', tokenCommand)
  const startHub = () => run('store hub', hubArgs, { LEDGERLINE_SECRET: secret })
  const at = await startHub()
  console.log(`\nLedgerline point-of-sale demo with a store hub:`)
  console.log(`  the store's registers: open http://localhost:${at} in two windows (the hub)`)
  console.log(`  head office:           http://localhost:${hqPort}`)
  console.log('The top bar of a register has the "Store internet" switch (the hub\'s link).')
  console.log(
    `To crash the hub: kill -9 ${children.at(-1)?.pid} (then Enter here starts it again).`,
  )
  console.log('Walkthrough: demo/README.md, "A store hub". Stop with Ctrl-C.\n')
  // Enter starts the hub again on its directory once it is gone (a crashed hub's restart).
  process.stdin.on('data', () => {
    const hub = children.at(-1)
    if (stopping || hub === undefined || (hub.exitCode === null && hub.signalCode === null)) return
    void startHub().then(() => console.log(`store hub started again (pid ${children.at(-1)?.pid})`))
  })
}

/**
 * Starts one relay; resolves with its port once it listens. Head office exiting ends the demo;
 * the hub exiting does not (the registers fail over to head office, as in a store).
 */
function run(name, args, env) {
  const child = spawn(process.execPath, args, {
    cwd: root,
    env: { ...process.env, ...env },
    // stdin stays with this script (Enter restarts a crashed hub).
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const first = children.length === 0
  children.push(child)
  child.on('exit', (code, signal) => {
    if (!first) {
      if (!stopping) console.error(`[${name}] exited (${signal ?? code}); Enter starts it again`)
      return
    }
    process.stdin.destroy()
    for (const other of children) if (other !== child) other.kill('SIGTERM')
    process.exitCode = code ?? (signal === null ? 0 : 1)
  })
  return new Promise((resolve) => {
    let announced = false
    child.stdout.on('data', (chunk) => {
      process.stdout.write(withHub ? prefix(name, chunk) : chunk)
      const m = /listening on http:\/\/[^\s:]+:(\d+)/.exec(String(chunk))
      if (m !== null && !announced) {
        announced = true
        resolve(m[1])
      }
    })
  })
}

function prefix(name, chunk) {
  return String(chunk)
    .split('\n')
    .map((line) => (line === '' ? line : `[${name}] ${line}`))
    .join('\n')
}

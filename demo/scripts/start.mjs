// `npm start`: runs the relay with the demo (development token issuer, SQLite under
// .ledgerline-data) and prints the URL to open. The relay listens on 127.0.0.1, but the URL
// to open is http://localhost: service workers need a secure context, and localhost is one.
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../..', import.meta.url))
const port = process.env.LEDGERLINE_PORT ?? '8787'
const args = ['packages/relay/dist/cli.js', '--dev', '--port', port, '--data', '.ledgerline-data']
args.push('--static', 'demo/dist', '--schema', 'demo/src/schema.ts')
const relay = spawn(process.execPath, args, { cwd: root, stdio: ['inherit', 'pipe', 'inherit'] })
let announced = false
relay.stdout.on('data', (chunk) => {
  process.stdout.write(chunk)
  const m = /listening on http:\/\/[^\s:]+:(\d+)/.exec(String(chunk))
  if (m !== null && !announced) {
    announced = true
    console.log(
      `\nLedgerline point-of-sale demo: open http://localhost:${m[1]} in two windows (two registers).`,
    )
    console.log('Walkthrough: demo/README.md. Stop with Ctrl-C.\n')
  }
})
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => relay.kill(signal))
relay.on('exit', (code, signal) => process.exit(code ?? (signal === null ? 0 : 1)))

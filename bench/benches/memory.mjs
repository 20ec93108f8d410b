// Relay memory per idle authenticated connection: 1,000 and then 5,000 WebSocket connections
// that said `hello` with a valid token and got `welcome`, held idle, vs a bare `ws` server
// holding the same number of plain connections. Each server runs in its own process started
// with --expose-gc; memory is read there after full GCs: RSS and V8 heap + external + array
// buffers, as deltas from the same process before any connection. Clients live in the
// benchmark process.
import { execSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import WebSocket from 'ws'
import { signToken } from '@ledgerline/relay'
import { connect } from '../load-client.mjs'
import { report, sleep, summarize } from '../lib.mjs'
import { startServer } from '../server-process.mjs'

const SECRET = 'bench-secret-bench-secret-bench-secret'
const COUNTS = [1_000, 5_000]
const ROUNDS = 3
const OPEN_CONCURRENCY = 50
const SETTLE_MS = 1_500
const SETUP_MS_MAX = 120_000
const TARGET_BYTES = 20 * 1024

export async function run() {
  const notes = []
  const fdLimit = Number(execSync('ulimit -n', { shell: '/bin/sh', encoding: 'utf8' }).trim())
  // Each connection is one fd in the server process and one in the benchmark process.
  const max = COUNTS[COUNTS.length - 1]
  if (Number.isFinite(fdLimit) && fdLimit < max + 1_000) {
    notes.push(
      `ulimit -n is ${fdLimit}: raise it (e.g. \`ulimit -n 20000\` before npm run bench) to hold ${max} connections; counts above it are skipped`,
    )
  } else {
    notes.push(
      `ulimit -n = ${fdLimit} (each process needs one fd per connection, ${max} + a few hundred)`,
    )
  }
  const counts = COUNTS.filter((c) => !Number.isFinite(fdLimit) || c + 1_000 <= fdLimit)
  const results = { relay: [], ws: [] }
  for (let r = 0; r < ROUNDS; r++) {
    for (const kind of ['ws', 'relay']) results[kind].push(await round(kind, counts))
  }
  const rows = []
  for (const count of counts) {
    const per = (kind, key) => results[kind].map((x) => x.at[count][key] / count)
    const ours = summarize(
      'ours',
      'KB/conn',
      per('relay', 'rss').map((b) => b / 1024),
    )
    rows.push({
      label: `${count.toLocaleString('en-US')} idle authenticated connections: RSS per connection`,
      ours,
      anchor: summarize(
        'bare ws',
        'KB/conn',
        per('ws', 'rss').map((b) => b / 1024),
      ),
      target: '≤ 20 KB',
      met: ours.median * 1024 <= TARGET_BYTES,
    })
    rows.push({
      label: `${count.toLocaleString('en-US')}: JS heap + external per connection`,
      ours: summarize(
        'ours',
        'KB/conn',
        per('relay', 'js').map((b) => b / 1024),
      ),
      anchor: summarize(
        'bare ws',
        'KB/conn',
        per('ws', 'js').map((b) => b / 1024),
      ),
    })
    const held = results.relay.map((x) => x.at[count].held)
    rows.push({
      label: `${count.toLocaleString('en-US')}: connections held open by the relay (min over rounds)`,
      ours: summarize('ours', 'connections', held),
      target: count === 5_000 ? '5,000 held' : undefined,
      met: count === 5_000 ? Math.min(...held) >= 5_000 : undefined,
    })
  }
  report('memory', rows, [
    `${ROUNDS} rounds, each a fresh server process; deltas after 3 forced GCs, ${SETTLE_MS / 1000} s after the last connection opened, against the same process before any connection`,
    'relay connections are authenticated: HS256 token in hello, welcome received, then idle (no subscription); the bare ws server accepts and ignores',
    ...notes,
  ])
}

async function round(kind, counts) {
  const dir = kind === 'relay' ? mkdtempSync(join(tmpdir(), 'll-bench-mem-')) : undefined
  let server
  const sockets = []
  try {
    // The caps (CONNECTIONS_MAX, TENANT_CONNECTIONS_MAX) are not what this measures: raised.
    const limits = { connectionsMax: 20_000, tenantConnectionsMax: 20_000 }
    server = await startServer(
      kind,
      kind === 'relay' ? { dataDir: dir, secret: SECRET, limits } : {},
    )
    const token = await signToken({
      secret: SECRET,
      tenant: 'bench',
      sub: 'bench',
      read: ['*'],
      write: ['*'],
    })
    await sleep(SETTLE_MS)
    const base = await server.memory()
    const at = {}
    const deadline = Date.now() + SETUP_MS_MAX
    for (const count of counts) {
      while (sockets.length < count) {
        if (Date.now() > deadline) throw new Error(`could not open ${count} connections in time`)
        const n = Math.min(OPEN_CONCURRENCY, count - sockets.length)
        const opened = await Promise.all(
          Array.from({ length: n }, () =>
            kind === 'relay' ? connect(server.url, token).then((c) => c.ws) : open(server.url),
          ),
        )
        sockets.push(...opened)
      }
      await sleep(SETTLE_MS)
      const m = await server.memory()
      at[count] = {
        rss: m.rss - base.rss,
        js: m.heapUsed + m.external - (base.heapUsed + base.external),
        held: sockets.filter((s) => s.readyState === WebSocket.OPEN).length,
      }
      console.log(
        `  ${kind} ${count}: ${(at[count].rss / count / 1024).toFixed(1)} KB RSS/conn, ${(at[count].js / count / 1024).toFixed(1)} KB JS/conn, ${at[count].held} open`,
      )
    }
    return { at }
  } finally {
    for (const s of sockets) s.terminate()
    await server.close()
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
  }
}

function open(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false })
    ws.once('open', () => resolve(ws))
    ws.once('error', reject)
  })
}

// CRDT documents (issue 6): N = 10 and 100 unmodified y-websocket 3 clients editing one Yjs
// document (Y.Map own-key overwrite) through our relay's y-websocket-compatible endpoint
// (/yjs/<room>: every update is appended to the SQLite log, synchronous=FULL, before it is
// acknowledged in the log; rooms relay updates live) vs through @y/websocket-server, the anchor
// (keeps nothing durable). Two workloads: saturation (closed loop, window 8 un-acked updates per
// client) for deliveries/s, and 2 updates per second per client (open loop) for p50/p99 latency.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { signToken } from '@ledgerline/relay'
import { drive, yjsClients } from '../fanout-load.mjs'
import { cpuWords, latencyOf, report, summarize, withCpu } from '../lib.mjs'
import { startServer } from '../server-process.mjs'

const SECRET = 'bench-secret-bench-secret-bench-secret'
const TENANT = 'bench'
const ROUNDS = 3
const SATURATION = { window: 8, rampMs: 1_000, durationMs: 3_000 }
const PACED = { rate: 2, rampMs: 1_000, durationMs: 3_000 }

export async function run() {
  const rows = []
  for (const n of [10, 100]) {
    const [oursSat, oursPaced] = await viaRelay(n, (make, server) => [
      () =>
        withCpu(server, () => rounds(`ours N=${n} window 8`, () => drive(n, make(), SATURATION))),
      () => rounds(`ours N=${n} 2/s`, () => drive(n, make(), PACED)),
    ])
    const [ywsSat, ywsPaced] = await viaAnchor(n, (make, server) => [
      () =>
        withCpu(server, () => rounds(`y-ws N=${n} window 8`, () => drive(n, make(), SATURATION))),
      () => rounds(`y-ws N=${n} 2/s`, () => drive(n, make(), PACED)),
    ])
    const ours = summarize('ours', 'deliveries/s', oursSat.deliveries)
    const anchor = summarize('@y/websocket-server', 'deliveries/s', ywsSat.deliveries)
    rows.push({
      label: `N=${n}, saturation (window 8): deliveries/s`,
      ours,
      anchor,
      target: n === 100 ? '≥ 1.2× anchor' : undefined,
      met: n === 100 ? ours.median >= 1.2 * anchor.median : undefined,
      limit: `${cpuWords('relay', oursSat.cpu)}; beside it ${cpuWords('y-websocket-server', ywsSat.cpu)} (CPU time over the ${ROUNDS} rounds)`,
    })
    rows.push({
      label: `N=${n}, saturation: sends/s`,
      ours: summarize('ours', 'sends/s', oursSat.sends),
      anchor: summarize('@y/websocket-server', 'sends/s', ywsSat.sends),
    })
    rows.push({
      label: `N=${n}, saturation: latency p50 (p50–p99)`,
      ours: latencyOf('ours', oursSat.latencies),
      anchor: latencyOf('@y/websocket-server p50', ywsSat.latencies),
      ratio: '—',
    })
    const paced = latencyOf('ours', oursPaced.latencies)
    rows.push({
      label: `N=${n}, 2 updates/s/client: latency p50 (p50–p99)`,
      ours: paced,
      anchor: latencyOf('@y/websocket-server p50', ywsPaced.latencies),
      ratio: '—',
      target: n === 100 ? 'p99 < 250 ms' : undefined,
      met: n === 100 ? paced.max < 250 : undefined,
    })
    rows.push({
      label: `N=${n}, 2 updates/s/client: deliveries/s (offered ${n * 2 * (n - 1)})`,
      ours: summarize('ours', 'deliveries/s', oursPaced.deliveries),
      anchor: summarize('@y/websocket-server', 'deliveries/s', ywsPaced.deliveries),
    })
  }
  report('crdt', rows, [
    "ours = our relay through its /yjs/ endpoint with unmodified y-websocket 3.1.0 clients (token as a WebSocket subprotocol); the log schema has one crdt-yjs entity type (`doc`), with the relay's CRDT snapshot policy on",
    `${ROUNDS} rounds per cell, each ${SATURATION.durationMs / 1000} s (saturation) or ${PACED.durationMs / 1000} s (paced) measured after 1 s of warm-up traffic; latency percentiles pooled over rounds`,
    'our /yjs/ room forwards each update to the other connections of the room at once and appends it to the log coalesced (ROOM_COALESCE_MS = 50); the latency measured is that of the live relay path, each update also lands in the durable log',
    'all N clients share the benchmark process (2 cores shared with the server): at N=100 applying every update in 100 Y.Docs is a large part of the cost',
  ])
}

async function rounds(label, once) {
  const out = { deliveries: [], sends: [], latencies: [] }
  for (let r = 0; r < ROUNDS; r++) {
    const result = await once()
    out.deliveries.push(result.deliveriesPerS)
    out.sends.push(result.sendsPerS)
    for (const l of result.latencies) out.latencies.push(l)
    console.log(`  ${label} round ${r + 1}: ${Math.round(result.deliveriesPerS)} deliveries/s`)
  }
  return out
}

/** One server per system and N; each round connects fresh clients (a fresh room each). */
async function viaRelay(n, cells) {
  const dir = mkdtempSync(join(tmpdir(), 'll-bench-crdt-'))
  let relay
  try {
    relay = await startServer('relay', { dataDir: dir, secret: SECRET, yjs: true })
    const token = await signToken({
      secret: SECRET,
      tenant: TENANT,
      sub: 'bench',
      read: ['*'],
      write: ['*'],
    })
    const base = relay.url.replace(/\/sync$/, '/yjs')
    const protocols = ['ledgerline-yjs', `ledgerline-token.${token}`]
    let room = 0
    return await sequence(
      cells(() => yjsClients(base, `bench-doc-${++room}`, { n, protocols }), relay),
    )
  } finally {
    await relay?.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

async function viaAnchor(n, cells) {
  const server = await startServer('y-ws')
  try {
    let room = 0
    return await sequence(cells(() => yjsClients(server.url, `bench-doc-${++room}`, { n }), server))
  } finally {
    await server.close()
  }
}

/** Runs thunks one after the other (cells must not overlap). */
async function sequence(thunks) {
  const out = []
  for (const t of thunks) out.push(await t())
  return out
}

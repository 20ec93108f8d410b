// Overload: what one relay does past its global bounds (issue 13, "no client can stall the
// rest"). Two phases, each against a fresh relay process with its default limits:
//   storm  CONNECTIONS sockets opened at once, each saying hello: past CONNECTIONS_MAX the relay
//          must answer 503 at the upgrade (or `overloaded`), not hold them all.
//   flood  FLOODERS connections pushing batches of FLOOD_BATCH entries with PUSH_IN_FLIGHT_MAX
//          in flight for FLOOD_MS; a pusher answered `overloaded` waits the relay's hint (with
//          jitter) and reconnects. A bystander pushes one entry at a time meanwhile: each must be
//          acked within BYSTANDER_ACK_MS_MAX.
// Reported: outcomes, peak RSS of the relay (VmHWM, /proc), overloaded answers, bystander ack
// latency. The flooders run in a process of their own, the bystander in the benchmark's.
// Loopback only; every loop is bounded in count and time and the run stops by itself.
// File descriptors: the benchmark process holds one per socket, the relay one per accepted
// socket; `npm run bench` raises the soft limit to the hard one (bench/package.json), and this
// benchmark lowers CONNECTIONS to what the limit allows, saying so.
import { execSync, fork } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import WebSocket from 'ws'
import { createHlcClock, entryId } from '@ledgerline/core'
import { decodeMessage, encodeMessage, PROTOCOL_VERSION } from '@ledgerline/protocol'
import { CONNECTIONS_MAX, signToken } from '@ledgerline/relay'
import { percentile, report, sleep } from '../lib.mjs'
import { startServer } from '../server-process.mjs'

const SECRET = 'bench-secret-bench-secret-bench-secret'
const CONNECTIONS = Number(process.env.BENCH_STORM_CONNECTIONS ?? 10_000)
const STORM_MS_MAX = 60_000
const STORM_TENANTS = 10
const FLOODERS = 200
const FLOOD_BATCH = 500
const FLOOD_WINDOW = 4
const FLOOD_MS = Number(process.env.BENCH_FLOOD_MS ?? 20_000)
const BYSTANDER_EVERY_MS = 100
const BYSTANDER_ACK_MS_MAX = 2_000
/** Sockets the benchmark process needs beside the storm's (relay child, PostgreSQL, npm…). */
const FD_HEADROOM = 500
const SELF = fileURLToPath(import.meta.url)
const FLOOD_CHILD = 'flood-child'

if (process.argv[2] === FLOOD_CHILD && process.send !== undefined) {
  const [url, token, until] = process.argv.slice(3)
  await floodChild(url, token, Number(until))
}

export async function run() {
  const notes = []
  const fdLimit = Number(execSync('ulimit -n', { shell: '/bin/sh', encoding: 'utf8' }).trim())
  const connections = Math.min(CONNECTIONS, Number.isFinite(fdLimit) ? fdLimit - FD_HEADROOM : 1e9)
  notes.push(
    connections < CONNECTIONS
      ? `ulimit -n is ${fdLimit}: the storm opens ${connections} sockets, not ${CONNECTIONS} (raise the hard limit to run it all)`
      : `ulimit -n = ${fdLimit}; the storm opens ${connections} sockets against CONNECTIONS_MAX = ${CONNECTIONS_MAX}`,
  )
  const tokenOf = (tenant) =>
    signToken({ secret: SECRET, tenant, sub: 'bench', read: ['*'], write: ['*'] })
  const token = await tokenOf('bench')
  // The storm spreads over STORM_TENANTS tenants, so the per-relay cap binds, not the tenant's.
  const stormTokens = await Promise.all(
    Array.from({ length: STORM_TENANTS }, (_, i) => tokenOf(`storm-${i}`)),
  )
  const storm = await withRelay((server) => stormPhase(server, stormTokens, connections))
  const flood = await withRelay((server) => floodPhase(server, token))
  const bystanderMax = Math.max(...flood.bystander)
  const rows = [
    row(
      `storm: ${connections.toLocaleString('en-US')} sockets at once, welcomed`,
      'sockets',
      storm.welcome,
      {
        target: `≤ CONNECTIONS_MAX (${CONNECTIONS_MAX})`,
        met: storm.welcome <= CONNECTIONS_MAX,
      },
    ),
    row('storm: turned away (503 at the upgrade or overloaded)', 'sockets', storm.refused, {
      target: `≥ ${connections - CONNECTIONS_MAX}`,
      met: storm.refused >= connections - CONNECTIONS_MAX,
    }),
    row('storm: other outcomes (errors, timeouts)', 'sockets', storm.other),
    row('storm: peak relay RSS', 'MB', storm.peakRssMb),
    row(`flood: ${FLOODERS} pushers, entries acked`, 'entries', flood.acked),
    row('flood: pushes answered overloaded', 'pushes', flood.overloaded, {
      target: '> 0 (the bound was met)',
      met: flood.overloaded > 0,
    }),
    row('flood: peak relay RSS', 'MB', flood.peakRssMb),
    {
      label: 'flood: bystander ack latency (p50, p50–max)',
      ours: {
        label: 'ours',
        unit: 'ms',
        median: percentile(flood.bystander, 50),
        min: percentile(flood.bystander, 50),
        max: bystanderMax,
      },
      target: `every ack ≤ ${BYSTANDER_ACK_MS_MAX} ms`,
      met: flood.bystander.length > 0 && bystanderMax <= BYSTANDER_ACK_MS_MAX,
    },
    row('flood: bystander appends acked', 'appends', flood.bystander.length),
  ]
  report('overload', rows, [
    `a fresh relay process per phase (SQLite, plain log, default limits); peak RSS is the relay process’s VmHWM; the storm's sockets belong to ${STORM_TENANTS} tenants`,
    `flood: batches of ${FLOOD_BATCH}, ${FLOOD_WINDOW} in flight per pusher, ${FLOOD_MS / 1000} s; an overloaded pusher waits the hint + up to 100% jitter and reconnects; the bystander pushes 1 entry every ${BYSTANDER_EVERY_MS} ms after its ack`,
    `bystander p99 ${percentile(flood.bystander, 99).toFixed(0)} ms over ${flood.bystander.length} appends; not acked: ${JSON.stringify(flood.bystanderMisses)}; flooders reconnected ${flood.reconnects} times`,
    ...notes,
  ])
}

/** A report row of one measured value. */
function row(label, unit, value, extra = {}) {
  return { label, ours: { label: 'ours', unit, median: value, min: value, max: value }, ...extra }
}

async function withRelay(phase) {
  const dir = mkdtempSync(join(tmpdir(), 'll-bench-overload-'))
  const server = await startServer('relay', { dataDir: dir, secret: SECRET })
  try {
    return await phase(server)
  } finally {
    await server.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

/** Peak RSS of a process so far, in MB (Linux /proc; NaN elsewhere). */
function peakRssMb(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1])
    return kb / 1024
  } catch {
    return Number.NaN
  }
}

async function stormPhase(server, tokens, count) {
  const outcomes = { welcome: 0, refused: 0, other: 0 }
  const sockets = []
  const deadline = Date.now() + STORM_MS_MAX
  await Promise.all(
    Array.from({ length: count }, (_, i) =>
      admit(server.url, tokens[i % tokens.length], deadline).then(({ outcome, ws }) => {
        outcomes[outcome]++
        if (ws !== undefined) sockets.push(ws)
      }),
    ),
  )
  await sleep(1_000)
  const peak = peakRssMb(server.pid)
  for (const ws of sockets) ws.terminate()
  return { ...outcomes, peakRssMb: peak }
}

/** One socket and its hello: welcomed (kept open), refused, or something else. */
function admit(url, token, deadline) {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { perMessageDeflate: false })
    let done = false
    const finish = (outcome, keep = false) => {
      if (done) return
      done = true
      clearTimeout(timer)
      if (!keep) ws.terminate()
      resolve({ outcome, ws: keep ? ws : undefined })
    }
    const timer = setTimeout(() => finish('other'), Math.max(0, deadline - Date.now()))
    ws.on('unexpected-response', (_req, res) =>
      finish(res.statusCode === 503 ? 'refused' : 'other'),
    )
    ws.on('error', () => finish('other'))
    ws.on('close', (code) => finish(code === 4503 ? 'refused' : 'other'))
    ws.on('open', () => {
      const clientId = randomBytes(16).toString('hex')
      ws.send(encodeMessage({ type: 'hello', protocol: PROTOCOL_VERSION, token, clientId }))
    })
    ws.on('message', (data) => {
      const m = decodeMessage(new Uint8Array(data))
      if (m.type === 'welcome') finish('welcome', true)
      else finish(m.type === 'error' && m.kind === 'overloaded' ? 'refused' : 'other')
    })
  })
}

async function floodPhase(server, token) {
  const until = Date.now() + FLOOD_MS
  const bystander = []
  const bystanderMisses = {}
  // The flooders in a process of their own: their encoding must not slow down the bystander's
  // event loop (which would add to the latency measured).
  const child = fork(SELF, [FLOOD_CHILD, server.url, token, String(until)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  const stats = new Promise((resolve, reject) => {
    child.once('message', resolve)
    child.once('exit', (code) => reject(new Error(`flood process exited ${code}`)))
  })
  const killer = setTimeout(() => child.kill('SIGKILL'), FLOOD_MS + 30_000)
  try {
    await bystanderLoop(server.url, token, until, bystander, bystanderMisses)
    return { ...(await stats), bystander, bystanderMisses, peakRssMb: peakRssMb(server.pid) }
  } finally {
    clearTimeout(killer)
  }
}

/** The flood process: FLOODERS pushers until `until`, then their counts to the parent. */
async function floodChild(url, token, until) {
  const stats = { acked: 0, overloaded: 0, reconnects: 0 }
  await Promise.all(
    Array.from({ length: FLOODERS }, (_, i) => flooder(url, token, i, until, stats)),
  )
  process.send(stats, () => process.exit(0))
}

/** One bulk pusher: batches in a closed loop; overloaded → wait the hint, reconnect, resend. */
async function flooder(url, token, i, until, stats) {
  const clientId = randomBytes(16).toString('hex')
  while (Date.now() < until) {
    const conn = await open(url, token, clientId, until)
    if (conn.hint !== undefined) {
      stats.overloaded++
      await sleep(Math.min(conn.hint * (1 + Math.random()), Math.max(0, until - Date.now())))
      continue
    }
    if (conn.ws === undefined) {
      await sleep(100)
      continue
    }
    const end = await pushUntilRefused(conn, `bench/flood-${i}`, until, stats)
    conn.ws.terminate()
    if (end === 'deadline') return
    stats.reconnects++
    if (typeof end === 'number') {
      stats.overloaded++
      await sleep(Math.min(end * (1 + Math.random()), Math.max(0, until - Date.now())))
    }
  }
}

/**
 * Pushes FLOOD_WINDOW batches at a time from the welcome's high-water mark, until the deadline
 * (`'deadline'`), an `overloaded` (its hint, ms) or another end of the connection (`'closed'`).
 */
function pushUntilRefused(conn, entity, until, stats) {
  return new Promise((resolve) => {
    const clock = createHlcClock(conn.clientId, () => Date.now())
    let seq = conn.high
    let batch = 0
    let inFlight = 0
    const timer = setTimeout(() => resolve('deadline'), Math.max(0, until - Date.now()))
    const send = () => {
      while (inFlight < FLOOD_WINDOW && Date.now() < until) {
        const entries = Array.from({ length: FLOOD_BATCH }, () =>
          entryOf(conn, ++seq, entity, clock),
        )
        inFlight++
        conn.ws.send(encodeMessage({ type: 'push', batch: ++batch, entries }))
      }
    }
    conn.onMessage = (m) => {
      if (m.type === 'ack') {
        stats.acked += m.results.length
        if (m.done !== false) inFlight--
        send()
      } else if (m.type === 'error') {
        clearTimeout(timer)
        resolve(m.kind === 'overloaded' ? m.backoffMsMin : 'closed')
      }
    }
    conn.ws.on('close', () => {
      clearTimeout(timer)
      resolve('closed')
    })
    send()
  })
}

/** The bystander: one entry at a time, each ack's latency recorded. */
async function bystanderLoop(url, token, until, latencies, misses) {
  const clientId = randomBytes(16).toString('hex')
  while (Date.now() < until) {
    const t0 = performance.now()
    const conn = await open(url, token, clientId, until)
    if (conn.ws === undefined) {
      const why = conn.hint === undefined ? 'not welcomed' : 'welcome overloaded'
      misses[why] = (misses[why] ?? 0) + 1
      // Counted as a latency: the bystander waited that long and got nothing.
      latencies.push(performance.now() - t0 + BYSTANDER_ACK_MS_MAX)
      await sleep(100)
      continue
    }
    const clock = createHlcClock(clientId, () => Date.now())
    let seq = conn.high
    let batch = 0
    for (;;) {
      if (Date.now() >= until) break
      const entry = entryOf(conn, ++seq, 'bench/bystander', clock)
      const t0 = performance.now()
      const answer = await new Promise((resolve) => {
        const timer = setTimeout(() => resolve('timeout'), 30_000)
        conn.onMessage = (m) => {
          if (m.type === 'ack' || m.type === 'error') {
            clearTimeout(timer)
            resolve(m.type === 'ack' ? 'ack' : `error ${m.kind}`)
          }
        }
        conn.ws.send(encodeMessage({ type: 'push', batch: ++batch, entries: [entry] }))
      })
      if (answer !== 'ack') {
        // Counted as a latency past the bound: the bystander was not served.
        misses[answer] = (misses[answer] ?? 0) + 1
        latencies.push(performance.now() - t0 + BYSTANDER_ACK_MS_MAX)
        break
      }
      latencies.push(performance.now() - t0)
      await sleep(BYSTANDER_EVERY_MS)
    }
    conn.ws.terminate()
  }
}

/** A welcomed connection `{ ws, high }`, or `{ hint }` when turned away as overloaded. */
function open(url, token, clientId, until) {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { perMessageDeflate: false })
    const conn = { ws, clientId, high: 0, onMessage: () => {} }
    let welcomed = false
    const timer = setTimeout(() => fail({}), Math.max(1, until - Date.now()))
    const fail = (answer) => {
      clearTimeout(timer)
      ws.terminate()
      resolve(answer)
    }
    ws.on('unexpected-response', () => fail({ hint: 2_000 }))
    ws.on('error', () => fail({}))
    ws.on('open', () =>
      ws.send(encodeMessage({ type: 'hello', protocol: PROTOCOL_VERSION, token, clientId })),
    )
    ws.on('message', (data) => {
      const m = decodeMessage(new Uint8Array(data))
      if (welcomed) return conn.onMessage(m)
      if (m.type === 'welcome') {
        welcomed = true
        clearTimeout(timer)
        conn.high = m.clientSeqHigh
        resolve(conn)
      } else fail(m.type === 'error' && m.kind === 'overloaded' ? { hint: m.backoffMsMin } : {})
    })
  })
}

function entryOf(conn, seq, entity, clock) {
  return {
    id: entryId(conn.clientId, seq),
    tenant: 'bench',
    entity,
    kind: 'bench.tick',
    data: { n: seq, pad: 'x'.repeat(60) },
    intent: 'fact',
    clientId: conn.clientId,
    clientSeq: seq,
    hlc: clock.tick(),
    occurredAt: Date.now(),
  }
}

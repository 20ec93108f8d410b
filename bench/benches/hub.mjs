// The store hub (issue 15, "Numbers"): head office and a store hub, each the `ledgerline-relay`
// CLI in its own process on a fresh data directory, the hub's upstream link through a TCP proxy
// in the bench process that can cut it; registers are wire clients in the bench process. Every
// figure has the same work done directly against head office beside it, in the same run:
//  - in-store delivery: 8 registers, each offering 20 sales/s on its own schedule (open loop:
//    sales are made at their time whatever the acks do, pushed as the client pushes them), all
//    subscribed; latency from a sale's scheduled time to each other register's first receipt of
//    it — in a `store` message through the hub (link up, and link cut), in an `entries` page
//    directly at head office;
//  - drain: 8 registers × 2,000 sales pushed into a cut-off hub (answered `stored`), then the
//    link returns; time from the hub's link being up again (the registers' `upstream` message)
//    until head office has appended all 16,000 (its /metrics), against the same 16,000 pushed
//    directly to head office by 8 connections as a client's outbox flushes them;
//  - throughput: 8 connections pushing closed loop through the hub, counted where they land
//    (head office's appends), against the same connections pushing to head office directly.
// A drain not fast enough is profiled: one more drain round with the V8 profiler on the hub and
// on head office over the drain window only, and both processes' CPU time from /proc.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createHlcClock, entryId } from '@ledgerline/core'
import { encodeMessage, PUSH_IN_FLIGHT_MAX } from '@ledgerline/protocol'
import { signToken } from '@ledgerline/relay'
import { startCutProxy } from '@ledgerline/testkit'
import { startCli } from '../cli-process.mjs'
import { connect, pushLoad, pushRound } from '../load-client.mjs'
import {
  BENCH_DIR,
  fmt,
  latencyOf,
  percentile,
  profileLimit,
  report,
  single,
  sleep,
  summarize,
} from '../lib.mjs'

const SECRET = 'bench-secret-bench-secret-bench-secret'
const TENANT = 'bench'
const REGISTERS = 8
/** In-store delivery: sales per second each register offers. */
const SALES_PER_S = 20
const DELIVERY_MS = 10_000
const DELIVERY_RAMP_MS = 1_000
/** After the last sale, deliveries still count for this long. */
const DELIVERY_DRAIN_MS = 3_000
const DELIVERY_P99_MS = 50
/** Drain: offline sales each register holds. */
const OFFLINE_SALES = 2_000
const DRAIN_TARGET_S = 10
const DRAIN_SHARE_MIN = 0.8
/** A drain that has not finished after this long is reported as not finishing. */
const DRAIN_TIMEOUT_MS = 60_000
const DRAIN_ROUNDS = 3
/** As the client's outbox flush: `PUSH_BATCH_ENTRIES_MAX` entries a push, 4 pushes in flight. */
const OUTBOX_BATCH = 200
/** How often head office's /metrics are read while a drain runs, ms. */
const POLL_MS = 50
/** Throughput: closed loop, as the `relay` benchmark. */
const PUSH_MS = 5_000
const PUSH_RAMP_MS = 1_000
const PUSH_BATCH = 100
const PUSH_WINDOW = 4
const THROUGHPUT_COST_MAX = 0.2
const HUB_READY_MS = 20_000
/** How long a cut link takes to be seen by the registers at most, ms. */
const UPSTREAM_CHANGE_MS = 30_000

export async function run() {
  const rows = []
  // `BENCH_HUB_PARTS=drain` (or delivery, throughput, comma separated) runs only those parts.
  const parts = (process.env.BENCH_HUB_PARTS ?? 'delivery,drain,throughput').split(',')
  if (parts.includes('delivery')) await deliveryRows(rows)
  if (parts.includes('drain')) await drainRows(rows)
  if (parts.includes('throughput')) await throughputRows(rows)
  report('hub', rows, [
    `head office and the hub are each \`ledgerline-relay\` (the CLI) in their own process on a fresh data directory (SQLite, synchronous=FULL); the hub's upstream goes through a TCP proxy in the bench process that cuts it; registers are wire clients in the bench process (protocol 3), each with its own token subject and clientId; everything on 127.0.0.1`,
    `delivery: ${REGISTERS} registers × ${SALES_PER_S} sales/s, open loop (each sale made at its scheduled time, pushed as the client pushes: what has queued, ≤ ${PUSH_IN_FLIGHT_MAX} pushes in flight), ${DELIVERY_MS / 1000} s with the first ${DELIVERY_RAMP_MS / 1000} s not measured; latency from a sale's scheduled time to each other register's first receipt of it (hub: the \`store\` message; head office: the \`entries\` page); one round each, a fresh pair of processes`,
    `drain: ${REGISTERS} × ${fmt(OFFLINE_SALES)} sales pushed into the hub while its link is cut (batches of ${OUTBOX_BATCH}, ${PUSH_IN_FLIGHT_MAX} in flight, answered \`stored\`); timed from the registers' \`upstream\` (connected) message to head office's /metrics counting all ${fmt(REGISTERS * OFFLINE_SALES)} appended (read every ${POLL_MS} ms, also during the direct rounds); direct: the same sales pushed by ${REGISTERS} connections straight to head office, timed to the last ack; ${DRAIN_ROUNDS} rounds each, fresh processes`,
    `throughput: ${REGISTERS} connections, closed loop, batches of ${PUSH_BATCH}, ${PUSH_WINDOW} in flight, ${PUSH_MS / 1000} s with the first ${PUSH_RAMP_MS / 1000} s not counted; through the hub counted as head office's appends in that window (what reached head office, not what the hub answered \`stored\`); 1 warm-up + 3 rounds each, fresh processes`,
    'the hub, head office and the load clients share the 2 cores: a figure through the hub runs three processes where the direct one runs two',
  ])
}

// ---------------------------------------------------------------------------------------------
// Processes

const registerToken = (i) =>
  signToken({ secret: SECRET, tenant: TENANT, sub: `register-${i}`, read: ['*'], write: ['*'] })

/** Head office alone (the direct figures). */
async function withHeadOffice(fn) {
  const hq = await startCli([], { LEDGERLINE_SECRET: SECRET })
  try {
    return await fn(hq)
  } finally {
    await hq.stop()
  }
}

/** Head office, the proxy and a hub whose upstream goes through it, once the hub reached it. */
async function withStore(fn) {
  return withHeadOffice(async (hq) => {
    const proxy = await startCutProxy(hq.port)
    const hubToken = await signToken({
      secret: SECRET,
      tenant: TENANT,
      sub: 'hub-bench',
      read: ['*'],
      write: [],
      forward: ['*'],
    })
    let hub
    try {
      hub = await startCli(['--upstream', proxy.url], {
        LEDGERLINE_SECRET: SECRET,
        LEDGERLINE_UPSTREAM_TOKEN: hubToken,
      })
      return await fn({ hq, hub, proxy })
    } finally {
      await hub?.stop()
      await proxy.close()
    }
  })
}

/** `connect`, retried while a hub refuses hellos before it first reached head office. */
async function connectReady(url, token) {
  const until = Date.now() + HUB_READY_MS
  for (;;) {
    try {
      const conn = await connect(url, token)
      conn.ws.on('error', () => {})
      return conn
    } catch (error) {
      if (Date.now() > until) throw error
      await sleep(100)
    }
  }
}

async function registers(url) {
  const out = []
  for (let i = 0; i < REGISTERS; i++) out.push(await connectReady(url, await registerToken(i)))
  return out
}

/** Resolves when `conn` is told the hub's link is `connected` (an `upstream` message). */
function upstreamIs(conn, connected) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      conn.handlers.delete(h)
      reject(new Error(`no upstream ${connected ? 'up' : 'down'} message`))
    }, UPSTREAM_CHANGE_MS)
    const h = (m) => {
      if (m.type !== 'upstream' || m.connected !== connected) return
      clearTimeout(timer)
      conn.handlers.delete(h)
      resolve(performance.now())
    }
    conn.handlers.add(h)
  })
}

function sale(conn, clock, seq, register) {
  return {
    id: entryId(conn.clientId, seq),
    tenant: TENANT,
    entity: `sale/r${register}-${seq}`,
    kind: 'bench.sale',
    data: { sku: `sku-${seq % 500}`, qty: 1, total: 1999, till: register, pad: 'x'.repeat(40) },
    intent: 'fact',
    clientId: conn.clientId,
    clientSeq: seq,
    hlc: clock.tick(),
    occurredAt: Date.now(),
  }
}

// ---------------------------------------------------------------------------------------------
// In-store delivery

async function deliveryRows(rows) {
  const direct = await withHeadOffice(async (hq) => deliveryRound(await registers(hq.url), hq))
  const up = await withStore(async ({ hub }) => deliveryRound(await registers(hub.url), hub))
  const cut = await withStore(async ({ hub, proxy }) => {
    const regs = await registers(hub.url)
    const down = upstreamIs(regs[0], false)
    proxy.cut()
    await down
    return deliveryRound(regs, hub)
  })
  const words = (r, via) =>
    `${fmt(r.expected)} deliveries expected, ${fmt(r.missing)} missing${via}; ${r.errors} errors`
  rows.push({
    label: `delivery p50 (p50–p99), head office direct: entries page (${words(direct, '')})`,
    ours: latencyOf('', direct.latencies),
  })
  rows.push({
    label: `delivery p50 (p50–p99), through the hub, link up: store message (${words(up, '')})`,
    ours: latencyOf('', up.latencies),
    anchor: latencyOf('head office direct', direct.latencies),
  })
  if (up.confirmed.length > 0) {
    rows.push({
      label: 'through the hub, link up: head office entries page p50 (p50–p99)',
      ours: latencyOf('', up.confirmed),
    })
  }
  const p99 = percentile(cut.latencies, 99)
  rows.push({
    label: `delivery through a cut-off hub at ${SALES_PER_S} sales/s × ${REGISTERS} registers: store message p99 (${words(cut, '')})`,
    ours: single('', 'ms', p99),
    anchor: single('head office direct p99', 'ms', percentile(direct.latencies, 99)),
    target: `≤ ${DELIVERY_P99_MS} ms`,
    met: p99 <= DELIVERY_P99_MS && cut.missing === 0,
    verdict: `p99 ${fmt(p99)} ms (p50 ${fmt(percentile(cut.latencies, 50))} ms; head office direct p99 ${fmt(percentile(direct.latencies, 99))} ms, hub with the link up ${fmt(percentile(up.latencies, 99))} ms)`,
    limit:
      `hub process ${cut.cores.toFixed(2)} cores busy, event-loop delay p99 ${fmt(cut.lag.p99)} ms (max ${fmt(cut.lag.max)} ms); ` +
      `head office direct ${direct.cores.toFixed(2)} cores, event-loop delay p99 ${fmt(direct.lag.p99)} ms (max ${fmt(direct.lag.max)} ms)`,
  })
}

/**
 * Every register offers `SALES_PER_S` on its own staggered schedule, subscribed to everything;
 * returns each (sale, other register) first receipt's latency from the sale's scheduled time.
 */
async function deliveryRound(regs, server) {
  const intervalMs = 1000 / SALES_PER_S
  const t0 = performance.now()
  const scheduled = new Map()
  const latencies = []
  const confirmed = []
  const seen = regs.map(() => new Set())
  const seenConfirmed = regs.map(() => new Set())
  let errors = 0
  let measuredSales = 0
  const states = regs.map((conn, i) => ({
    conn,
    i,
    clock: createHlcClock(conn.clientId, () => Date.now()),
    seq: conn.welcome.clientSeqHigh,
    batch: 0,
    nextAt: t0 + (i * intervalMs) / regs.length,
    queue: [],
    pending: new Set(),
  }))
  const flush = (s) => {
    while (s.pending.size < PUSH_IN_FLIGHT_MAX && s.queue.length > 0) {
      const entries = s.queue.splice(0).map(({ at }) => {
        s.seq++
        const e = sale(s.conn, s.clock, s.seq, s.i)
        scheduled.set(e.id, at)
        return e
      })
      s.batch++
      s.pending.add(s.batch)
      s.conn.ws.send(encodeMessage({ type: 'push', batch: s.batch, entries }))
    }
  }
  const receive = (r, entries, into, seenBy) => {
    const at = performance.now()
    for (const e of entries) {
      const when = scheduled.get(e.id)
      if (when === undefined || e.clientId === regs[r].clientId || seenBy[r].has(e.id)) continue
      seenBy[r].add(e.id)
      if (when - t0 >= DELIVERY_RAMP_MS) into.push(at - when)
    }
  }
  for (const s of states) {
    s.conn.handlers.add((m) => {
      if (m.type === 'error') errors++
      else if (m.type === 'ack' && m.done !== false) {
        s.pending.delete(m.batch)
        flush(s)
      } else if (m.type === 'store') receive(s.i, m.entries, latencies, seen)
      else if (m.type === 'entries') {
        s.conn.ws.send(encodeMessage({ type: 'credit', sub: m.sub, pages: 1 }))
        if (viaHub) receive(s.i, m.entries, confirmed, seenConfirmed)
        else receive(s.i, m.entries, latencies, seen)
      }
    })
  }
  // At head office the entries page is the delivery; through a hub it is confirmation.
  const viaHub = regs[0].welcome.role === 'hub'
  for (const s of states) {
    s.conn.ws.send(
      encodeMessage({ type: 'subscribe', sub: 1, scope: ['*'], cursors: {}, credit: 16 }),
    )
  }
  const cpu0 = server.cpuMs()
  await server.loopLag()
  await new Promise((resolve) => {
    const tick = () => {
      const now = performance.now()
      for (const s of states) {
        while (s.nextAt <= now && s.nextAt - t0 < DELIVERY_MS) {
          s.queue.push({ at: s.nextAt })
          if (s.nextAt - t0 >= DELIVERY_RAMP_MS) measuredSales++
          s.nextAt += intervalMs
        }
        flush(s)
      }
      if (now - t0 >= DELIVERY_MS) return resolve()
      setTimeout(tick, 1)
    }
    tick()
  })
  const cores = (server.cpuMs() - cpu0) / (performance.now() - t0)
  const lag = await server.loopLag()
  const expected = measuredSales * (regs.length - 1)
  const until = performance.now() + DELIVERY_DRAIN_MS
  while (latencies.length < expected && performance.now() < until) await sleep(20)
  for (const c of regs) c.close()
  return {
    latencies,
    confirmed,
    expected,
    missing: expected - latencies.length,
    errors,
    cores,
    lag,
  }
}

// ---------------------------------------------------------------------------------------------
// Drain

async function drainRows(rows) {
  const direct = []
  const mirrored = []
  const viaHub = []
  const rounds = Number(process.env.BENCH_HUB_DRAIN_ROUNDS ?? DRAIN_ROUNDS)
  for (let i = 0; i < rounds; i++) {
    direct.push(await withHeadOffice((hq) => directDrain(hq, false)))
    mirrored.push(await withHeadOffice((hq) => directDrain(hq, true)))
    viaHub.push(await withStore((store) => hubDrain(store, false)))
    const [d, h] = [direct.at(-1), viaHub.at(-1)]
    console.log(
      `drain round ${i + 1}: direct ${fmt(d.rate)}/s (one subscriber: ${fmt(mirrored.at(-1).rate)}/s); hub ${fmt(h.rate)}/s in ${fmt(h.seconds)} s ` +
        `(${h.appended} appended, ${h.duplicates} duplicates, ${fmt(h.pushes)} pushes)`,
    )
  }
  const directRate = summarize(
    'direct to head office',
    'entries/s',
    direct.map((d) => d.rate),
  )
  const hubRate = summarize(
    'through the hub',
    'entries/s',
    viaHub.map((d) => d.rate),
  )
  const hubSeconds = summarize(
    '',
    's',
    viaHub.map((d) => d.seconds),
  )
  const total = REGISTERS * OFFLINE_SALES
  const worst = viaHub.reduce((a, b) => (b.seconds > a.seconds ? b : a))
  const exact = viaHub.every((d) => d.appended === total && d.duplicates === 0)
  rows.push({
    label: `drain direct: ${REGISTERS} × ${fmt(OFFLINE_SALES)} sales pushed straight to head office`,
    ours: directRate,
  })
  const mirroredRate = summarize(
    '',
    'entries/s',
    mirrored.map((d) => d.rate),
  )
  rows.push({
    label: `drain direct, one connection subscribed to everything meanwhile (head office serves what the hub's mirror reads)`,
    ours: mirroredRate,
    anchor: directRate,
  })
  const share = hubRate.median / directRate.median
  const seconds = hubSeconds.median
  const met = seconds < DRAIN_TARGET_S && share >= DRAIN_SHARE_MIN && exact
  const row = {
    label: `drain through the hub after the link returns: ${REGISTERS} × ${fmt(OFFLINE_SALES)} offline sales reach head office`,
    ours: hubRate,
    anchor: directRate,
    target: `< ${DRAIN_TARGET_S} s and ≥ ${DRAIN_SHARE_MIN}× direct`,
    met,
    verdict:
      `${fmt(seconds)} s (${fmt(hubSeconds.min)}–${fmt(hubSeconds.max)}), ${fmt(hubRate.median)} entries/s = ${share.toFixed(2)}× direct (${fmt(directRate.median)}/s); ` +
      `head office appended ${viaHub.map((d) => d.appended).join(' / ')} of ${fmt(total)}, ${viaHub.map((d) => d.duplicates).join(' / ')} duplicates; ` +
      `link back ${viaHub.map((d) => fmt(d.reconnectMs)).join(' / ')} ms after the cut ended`,
  }
  rows.push(row)
  rows.push({
    label: 'drain through the hub: CPU per entry drained, hub / head office (worst round)',
    ours: single('', 'µs', (worst.hubCpuMs * 1000) / total),
    anchor: single('head office', 'µs', (worst.hqCpuMs * 1000) / total),
  })
  rows.push({
    label: 'drain direct: head office CPU per entry (median round)',
    ours: single('', 'µs', (sorted(direct.map((d) => d.hqCpuMs))[1] * 1000) / total),
  })
  // Always profiled: what the drain spends its time on is the point of the figure.
  const profiled = await withStore((store) => hubDrain(store, true))
  writeProfile(`hub-drain-hub.cpuprofile`, profiled.hubProfile.profile)
  writeProfile(`hub-drain-hq.cpuprofile`, profiled.hqProfile.profile)
  row.limit =
    `profiled round ${fmt(profiled.seconds)} s: ` +
    `${profileLimit('hub', { ...profiled.hubProfile, busy: profiled.hubCpuMs / (profiled.seconds * 1000) })}; ` +
    `${profileLimit('head office', { ...profiled.hqProfile, busy: profiled.hqCpuMs / (profiled.seconds * 1000) })}; ` +
    `head office pushes from the hub: ${fmt(profiled.pushes)} of ${fmt(profiled.perPush)} entries on average`
}

const sorted = (xs) => [...xs].sort((a, b) => a - b)

/** The raw profile beside the results, for a closer look (function by function). */
function writeProfile(name, profile) {
  const dir = join(BENCH_DIR, 'results')
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, name), JSON.stringify(profile))
}

/** Polls head office's appended count until it reaches `target`; resolves with the time. */
async function appendedReach(hq, target) {
  const until = performance.now() + DRAIN_TIMEOUT_MS
  for (;;) {
    const a = await hq.appends()
    if ((a.appended ?? 0) >= target) return { at: performance.now(), counts: a }
    if (performance.now() > until) return { at: Number.NaN, counts: a }
    await sleep(POLL_MS)
  }
}

/** Every register pushes its `OFFLINE_SALES` as a client's outbox flushes them. */
function outboxFlush(regs) {
  return Promise.all(
    regs.map((c, i) =>
      pushLoad(c, {
        tenant: TENANT,
        total: OFFLINE_SALES,
        batchSize: OUTBOX_BATCH,
        window: PUSH_IN_FLIGHT_MAX,
        entity: (s) => `sale/r${i}-${s}`,
        deadlineMs: Date.now() + DRAIN_TIMEOUT_MS,
      }),
    ),
  )
}

async function directDrain(hq, subscribed) {
  const regs = await registers(hq.url)
  if (subscribed) {
    const reader = await connectReady(hq.url, await registerToken(REGISTERS))
    reader.handlers.add((m) => {
      if (m.type === 'entries') {
        reader.ws.send(encodeMessage({ type: 'credit', sub: m.sub, pages: 1 }))
      }
    })
    reader.ws.send(
      encodeMessage({ type: 'subscribe', sub: 1, scope: ['*'], cursors: {}, credit: 4 }),
    )
    regs.reader = reader
  }
  const total = REGISTERS * OFFLINE_SALES
  let polling = true
  // The same /metrics reads as a hub drain makes, so head office does the same extra work.
  const poll = (async () => {
    while (polling) {
      await hq.appends()
      await sleep(POLL_MS)
    }
  })()
  const cpu0 = hq.cpuMs()
  const t0 = performance.now()
  const results = await outboxFlush(regs)
  const seconds = (performance.now() - t0) / 1000
  const hqCpuMs = hq.cpuMs() - cpu0
  polling = false
  await poll
  for (const c of regs) c.close()
  regs.reader?.close()
  const acked = results.reduce((n, r) => n + r.acked, 0)
  if (acked !== total) throw new Error(`direct drain: ${acked} of ${total} acked`)
  return { seconds, rate: total / seconds, hqCpuMs }
}

async function hubDrain({ hq, hub, proxy }, profile) {
  const regs = await registers(hub.url)
  const total = REGISTERS * OFFLINE_SALES
  const down = upstreamIs(regs[0], false)
  proxy.cut()
  await down
  const offline = await outboxFlush(regs)
  const stored = offline.reduce((n, r) => n + r.acked, 0)
  if (stored !== total) throw new Error(`offline sales: ${stored} of ${total} stored by the hub`)
  const before = await hq.appends()
  before.pushes = await hq.pushes()
  if (profile) {
    await hub.profileStart()
    await hq.profileStart()
  }
  const up = upstreamIs(regs[0], true)
  const restored = performance.now()
  proxy.restore()
  const tUp = await up
  const cpu0 = { hub: hub.cpuMs(), hq: hq.cpuMs() }
  const done = await appendedReach(hq, (before.appended ?? 0) + total)
  const cpu = { hub: hub.cpuMs() - cpu0.hub, hq: hq.cpuMs() - cpu0.hq }
  const out = {
    seconds: (done.at - tUp) / 1000,
    rate: total / ((done.at - tUp) / 1000),
    reconnectMs: tUp - restored,
    appended: (done.counts.appended ?? 0) - (before.appended ?? 0),
    duplicates: (done.counts.duplicate ?? 0) - (before.duplicate ?? 0),
    hubCpuMs: cpu.hub,
    hqCpuMs: cpu.hq,
  }
  if (profile) {
    out.hubProfile = await hub.profileStop()
    out.hqProfile = await hq.profileStop()
  }
  // Pushes head office answered on the hub's link: every ack has one entry per result.
  const pushes = (await hq.pushes()) - before.pushes
  out.pushes = pushes
  out.perPush = total / pushes
  for (const c of regs) c.close()
  return out
}

// ---------------------------------------------------------------------------------------------
// Throughput

async function throughputRows(rows) {
  const direct = []
  const viaHub = []
  const stored = []
  const cores = []
  for (let i = 0; i < 4; i++) {
    const d = await withHeadOffice((hq) => pushThrough([hq.url]))
    const h = await withStore(async ({ hq, hub }) => {
      // The hub welcomes registers once it reached head office.
      ;(await connectReady(hub.url, await registerToken(0))).close()
      const before = { at: 0, n: 0 }
      const counting = (async () => {
        await sleep(PUSH_RAMP_MS)
        before.at = performance.now()
        before.n = (await hq.appends()).appended ?? 0
      })()
      const cpu0 = { hub: hub.cpuMs(), hq: hq.cpuMs(), at: performance.now() }
      const r = await pushThrough([hub.url])
      await counting
      const after = (await hq.appends()).appended ?? 0
      const wall = performance.now() - cpu0.at
      return {
        stored: r.rate,
        landed: (after - before.n) / ((performance.now() - before.at) / 1000),
        hubCores: (hub.cpuMs() - cpu0.hub) / wall,
        hqCores: (hq.cpuMs() - cpu0.hq) / wall,
      }
    })
    // The first round of each is a warm-up.
    if (i === 0) continue
    direct.push(d.rate)
    viaHub.push(h.landed)
    stored.push(h.stored)
    cores.push(h)
  }
  const d = summarize('direct to head office', 'entries/s', direct)
  const h = summarize('through the hub', 'entries/s', viaHub)
  rows.push({
    label: `pushes direct to head office, ${REGISTERS} conn (batch ${PUSH_BATCH}, ${PUSH_WINDOW} in flight)`,
    ours: d,
  })
  rows.push({
    label: `same pushes through the hub: answered \`stored\` by the hub`,
    ours: summarize('', 'entries/s', stored),
  })
  const cost = 1 - h.median / d.median
  rows.push({
    label: 'same pushes through the hub: appended at head office',
    ours: h,
    anchor: d,
    target: `costs ≤ ${THROUGHPUT_COST_MAX * 100} % against direct`,
    met: cost <= THROUGHPUT_COST_MAX,
    verdict: `${fmt(h.median)} entries/s through the hub, ${(h.median / d.median).toFixed(2)}× direct (${fmt(d.median)}/s): costs ${(cost * 100).toFixed(0)} %`,
    limit:
      `per round, hub / head office cores busy: ${cores.map((c) => `${c.hubCores.toFixed(2)} / ${c.hqCores.toFixed(2)}`).join(', ')}; ` +
      `the hub answered ${fmt(summarize('', '', stored).median)} entries/s \`stored\` while ${fmt(h.median)}/s reached head office`,
  })
}

function pushThrough(urls) {
  return (async () => {
    const token = await registerToken(0)
    return pushRound(urls, token, {
      tenant: TENANT,
      connections: REGISTERS,
      batchSize: PUSH_BATCH,
      window: PUSH_WINDOW,
      roundMs: PUSH_MS,
      rampMs: PUSH_RAMP_MS,
      entity: (c, s) => `sale/c${c}-${s % 64}`,
    })
  })()
}

// A load client for the relay: speaks the wire protocol directly over `ws`, so the benchmark
// measures the relay and its log, not the browser client. Every loop is bounded in count and time.
import { randomBytes } from 'node:crypto'
import WebSocket from 'ws'
import {
  encodeMessage,
  decodeMessage,
  PROTOCOL_VERSION,
  PUSH_IN_FLIGHT_MAX,
} from '@ledgerline/protocol'
import { createHlcClock, entryId } from '@ledgerline/core'

/** Opens an authenticated connection; resolves after `welcome`. */
export async function connect(url, token) {
  const clientId = randomBytes(16).toString('hex')
  const ws = new WebSocket(url, { perMessageDeflate: false })
  ws.binaryType = 'nodebuffer'
  const handlers = new Set()
  ws.on('message', (data) => {
    const m = decodeMessage(new Uint8Array(data))
    for (const h of handlers) h(m)
  })
  await new Promise((resolve, reject) => {
    ws.once('open', resolve)
    ws.once('error', reject)
  })
  const welcome = await new Promise((resolve, reject) => {
    const h = (m) => {
      handlers.delete(h)
      if (m.type === 'welcome') resolve(m)
      else reject(new Error(`expected welcome, got ${JSON.stringify(m).slice(0, 200)}`))
    }
    handlers.add(h)
    ws.send(encodeMessage({ type: 'hello', protocol: PROTOCOL_VERSION, token, clientId }))
  })
  return { ws, clientId, welcome, handlers, close: () => ws.close() }
}

/**
 * Pushes `total` entries from one connection in batches of `batchSize`, keeping `window` batches
 * in flight, and returns the ack latency of every batch (ms). Stops at `deadlineMs` at the latest.
 */
export async function pushLoad(
  conn,
  { tenant, total, batchSize, window, entity, deadlineMs, payloadBytes = 100 },
) {
  const clock = createHlcClock(conn.clientId, () => Date.now())
  const pad = 'x'.repeat(Math.max(0, payloadBytes - 40))
  let seq = conn.welcome.clientSeqHigh
  let batch = 0
  let inFlight = 0
  let acked = 0
  const sentAt = new Map()
  const latencies = []
  // (time, entries) of every ack, so a caller can count only a steady-state window.
  const ackTimes = []
  let refused = 0
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => finish(), Math.max(0, deadlineMs - Date.now()))
    const finish = () => {
      clearTimeout(timer)
      conn.handlers.delete(onMessage)
      resolve({ acked, latencies, refused, ackTimes })
    }
    const sendOne = () => {
      if (seq - conn.welcome.clientSeqHigh >= total || Date.now() > deadlineMs) return false
      const entries = []
      for (let i = 0; i < batchSize && seq - conn.welcome.clientSeqHigh < total; i++) {
        seq++
        entries.push({
          id: entryId(conn.clientId, seq),
          tenant,
          entity: typeof entity === 'function' ? entity(seq) : entity,
          kind: 'bench.tick',
          data: { n: seq, pad },
          intent: 'fact',
          clientId: conn.clientId,
          clientSeq: seq,
          hlc: clock.tick(),
          occurredAt: Date.now(),
        })
      }
      batch++
      sentAt.set(batch, performance.now())
      inFlight++
      conn.ws.send(encodeMessage({ type: 'push', batch, entries }))
      return true
    }
    const onMessage = (m) => {
      if (m.type === 'error') {
        conn.handlers.delete(onMessage)
        clearTimeout(timer)
        reject(new Error(`relay error ${m.kind}: ${m.message}`))
        return
      }
      if (m.type !== 'ack' || !sentAt.has(m.batch)) return
      const at = performance.now()
      ackTimes.push(at, m.results.length)
      for (const r of m.results) {
        if (r.status === 'refused') refused++
        else acked++
      }
      // An ack may come in parts; the batch is answered with its last one.
      if (m.done === false) return
      latencies.push(at - sentAt.get(m.batch))
      sentAt.delete(m.batch)
      inFlight--
      while (inFlight < window && sendOne()) {}
      if (inFlight === 0) finish()
    }
    conn.handlers.add(onMessage)
    while (inFlight < window && sendOne()) {}
    if (inFlight === 0) finish()
  })
}

/**
 * One round of durable appends: `connections` connections spread over `urls`, each pushing
 * batches of `batchSize` with `window` in flight for `roundMs`; acks in the first `rampMs` are
 * not counted. Returns entries/s of the steady window and every batch's ack latency.
 */
export async function pushRound(
  urls,
  token,
  { tenant, connections, batchSize, window, roundMs, rampMs, entity },
) {
  const conns = []
  for (let i = 0; i < connections; i += 10) {
    const n = Math.min(10, connections - i)
    conns.push(
      ...(await Promise.all(
        Array.from({ length: n }, (_, k) => connect(urls[(i + k) % urls.length], token)),
      )),
    )
  }
  try {
    const t0 = performance.now()
    const deadlineMs = Date.now() + roundMs
    const results = await Promise.all(
      conns.map((c, i) =>
        pushLoad(c, {
          tenant,
          total: 10_000_000,
          batchSize,
          window,
          entity: (s) => entity(i, s),
          deadlineMs,
        }),
      ),
    )
    const t1 = performance.now()
    let acked = 0
    for (const r of results) {
      for (let i = 0; i < r.ackTimes.length; i += 2) {
        if (r.ackTimes[i] >= t0 + rampMs) acked += r.ackTimes[i + 1]
      }
    }
    return {
      rate: acked / ((t1 - t0 - rampMs) / 1000),
      latencies: results.flatMap((r) => r.latencies),
      total: results.reduce((n, r) => n + r.acked, 0),
    }
  } finally {
    for (const c of conns) c.close()
  }
}

/**
 * One open-loop round: `connections` connections together offer `rate` entries/s, each entry
 * made at its scheduled time whatever the acks do (arrivals every `batchSize` entries per
 * connection on a fixed schedule, staggered over the connections). Each connection pushes like
 * the client's sync loop: whatever has queued, up to `pushEntriesMax` entries a push, with at most
 * `PUSH_IN_FLIGHT_MAX` pushes in flight. An entry's latency runs from its scheduled time to its
 * ack, so queueing behind a slow relay counts (no coordinated omission). Entries scheduled in
 * [rampMs, durationMs) are measured; then arrivals stop and the queues and outstanding acks get
 * at most `drainMs`. A connection whose queue holds `queueMax` entries drops new arrivals
 * (`skipped`: the offered rate was not carried).
 */
export async function openLoopRound(
  url,
  token,
  {
    tenant,
    connections,
    rate,
    batchSize,
    durationMs,
    rampMs,
    drainMs,
    queueMax,
    pushEntriesMax,
    entity,
  },
) {
  const conns = []
  for (let i = 0; i < connections; i += 10) {
    const n = Math.min(10, connections - i)
    conns.push(...(await Promise.all(Array.from({ length: n }, () => connect(url, token)))))
  }
  const intervalMs = (batchSize * connections * 1000) / rate
  const pad = 'x'.repeat(60)
  const latencies = []
  let acked = 0
  let skipped = 0
  let sent = 0
  let errors = 0
  let firstError
  let pushes = 0
  const t0 = performance.now()
  const flush = (state) => {
    while (state.pending.size < PUSH_IN_FLIGHT_MAX && state.queue.length > 0) {
      const take = state.queue.splice(0, pushEntriesMax)
      const entries = take.map(() => {
        state.seq++
        return {
          id: entryId(state.conn.clientId, state.seq),
          tenant,
          entity: entity(state.seq),
          kind: 'bench.tick',
          data: { n: state.seq, pad },
          intent: 'fact',
          clientId: state.conn.clientId,
          clientSeq: state.seq,
          hlc: state.clock.tick(),
          occurredAt: Date.now(),
        }
      })
      state.batch++
      pushes++
      state.pending.set(state.batch, take)
      state.conn.ws.send(encodeMessage({ type: 'push', batch: state.batch, entries }))
    }
  }
  const states = conns.map((conn, i) => {
    const state = {
      conn,
      clock: createHlcClock(conn.clientId, () => Date.now()),
      seq: conn.welcome.clientSeqHigh,
      batch: 0,
      // Staggered, so the connections' arrivals spread over the interval.
      nextAt: t0 + (i * intervalMs) / connections,
      queue: [],
      pending: new Map(),
    }
    conn.handlers.add((m) => {
      if (m.type === 'error') {
        errors++
        firstError ??= `${m.kind}: ${m.message}`
      }
      if (m.type !== 'ack' || m.done === false) return
      const scheduled = state.pending.get(m.batch)
      if (scheduled === undefined) return
      state.pending.delete(m.batch)
      const at = performance.now()
      for (const when of scheduled) {
        if (when - t0 < rampMs) continue
        latencies.push(at - when)
        acked++
      }
      flush(state)
    })
    return state
  })
  try {
    await new Promise((resolve) => {
      const tick = () => {
        const now = performance.now()
        for (const state of states) {
          while (state.nextAt <= now && state.nextAt - t0 < durationMs) {
            const measured = state.nextAt - t0 >= rampMs
            for (let k = 0; k < batchSize; k++) {
              if (state.queue.length >= queueMax) {
                if (measured) skipped++
              } else {
                state.queue.push(state.nextAt)
                if (measured) sent++
              }
            }
            state.nextAt += intervalMs
          }
          flush(state)
        }
        if (now - t0 >= durationMs) return resolve()
        setTimeout(tick, 1)
      }
      tick()
    })
    const drainUntil = performance.now() + drainMs
    const busy = () => states.some((s) => s.pending.size > 0 || s.queue.length > 0)
    while (busy() && performance.now() < drainUntil) {
      await new Promise((r) => setTimeout(r, 5))
    }
    let lost = 0
    for (const s of states) {
      lost += s.queue.length
      for (const batch of s.pending.values()) lost += batch.length
    }
    const windowS = (durationMs - rampMs) / 1000
    return {
      latencies,
      offered: sent / windowS,
      carried: acked / windowS,
      entriesPerPush: (sent + skipped) / Math.max(1, pushes),
      skipped,
      lost,
      errors,
      firstError,
    }
  } finally {
    for (const c of conns) c.close()
  }
}

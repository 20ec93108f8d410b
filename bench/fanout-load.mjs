// Load clients for fan-out: N clients share one document (Yjs, Automerge) or one entity of our
// log, each overwrites its own small value and observes everyone else's. One driver for every
// system, so the workloads are the same (perf-baselines.md, "Terms"):
//   sends/s       updates originated;  deliveries/s  updates observed by the other N-1 clients
//   latency       originate → observed at a peer (same process, performance.now())
//   window W      closed loop: at most W sends per client not yet seen by its observer peer
//                 ((i+1) mod N), i.e. saturation
//   rate R        open loop: R sends per second per client, at random phases
// Only what happens in [ramp, ramp + duration] is counted. Every loop is bounded in time.
import { randomBytes } from 'node:crypto'
import WebSocket from 'ws'
import { createHlcClock, entryId } from '@ledgerline/core'
import {
  encodeMessage,
  decodeMessage,
  PROTOCOL_VERSION,
  PUSH_IN_FLIGHT_MAX,
} from '@ledgerline/protocol'
import { sleep } from './lib.mjs'

const TICK_MS = 5
const DRAIN_MS = 1_500
const SETUP_BATCH = 10
/** Most entries per push, as the client's PUSH_BATCH_ENTRIES_MAX. */
const PUSH_BATCH = 200

const FIND_ATTEMPTS_MAX = 20

// Every y-websocket provider adds a process 'exit' listener.
process.setMaxListeners(0)

/**
 * Runs the workload over `clients` (each `{ send(seq, t) }`, made by `make(observe)`), and
 * returns sends/s, deliveries/s and latency samples of the measured window.
 */
export async function drive(n, make, { window, rate, rampMs = 1_000, durationMs = 4_000 }) {
  const sent = Array.from({ length: n }, () => 0)
  const acked = Array.from({ length: n }, () => 0)
  const seen = Array.from({ length: n }, () => Array.from({ length: n }, () => 0))
  const latencies = []
  let sends = 0
  let deliveries = 0
  let measuring = false
  let sending = false
  let clients
  const observe = (receiver, sender, seq, t) => {
    if (receiver === sender) return
    const before = seen[receiver][sender]
    if (seq <= before) return
    seen[receiver][sender] = seq
    if (measuring) {
      deliveries += seq - before
      latencies.push(performance.now() - t)
    }
    if (receiver === (sender + 1) % n && seq > acked[sender]) {
      acked[sender] = seq
      if (window !== undefined) pump(sender)
    }
  }
  const sendOne = (i) => {
    sent[i]++
    if (measuring) sends++
    clients[i].send(sent[i], performance.now())
  }
  const pump = (i) => {
    while (sending && sent[i] - acked[i] < window) sendOne(i)
  }
  clients = await make(observe)
  sending = true
  const t0 = performance.now()
  let ticker
  if (window !== undefined) {
    for (let i = 0; i < n; i++) pump(i)
  } else {
    const period = 1000 / rate
    const next = Array.from({ length: n }, () => t0 + Math.random() * period)
    ticker = setInterval(() => {
      const now = performance.now()
      for (let i = 0; i < n; i++) {
        if (next[i] <= now && sending) {
          sendOne(i)
          next[i] = Math.max(next[i] + period, now - period)
        }
      }
    }, TICK_MS)
  }
  await sleep(rampMs)
  measuring = true
  const m0 = performance.now()
  await sleep(durationMs)
  measuring = false
  const seconds = (performance.now() - m0) / 1000
  sending = false
  clearInterval(ticker)
  await sleep(DRAIN_MS)
  for (const c of clients) await c.close()
  return { sendsPerS: sends / seconds, deliveriesPerS: deliveries / seconds, latencies }
}

/** Opens `n` things with `open(i)`, `SETUP_BATCH` at a time, within `timeoutMs` overall. */
export async function openAll(n, open, timeoutMs) {
  const deadline = Date.now() + timeoutMs
  const out = []
  for (let i = 0; i < n; i += SETUP_BATCH) {
    const batch = Array.from({ length: Math.min(SETUP_BATCH, n - i) }, (_, k) => open(i + k))
    out.push(...(await withDeadline(Promise.all(batch), deadline, `setup of ${n} clients`)))
  }
  return out
}

export function withDeadline(promise, deadline, what) {
  let timer
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${what} did not finish in time`)),
        Math.max(0, deadline - Date.now()),
      )
    }),
  ]).finally(() => clearTimeout(timer))
}

// -- Our relay: entries of one entity over the wire protocol ------------------------------------

/**
 * N wire-protocol clients: each pushes one-entry batches to `entity` and subscribes to it;
 * an entry is observed when its page arrives (after it is durable in the log).
 */
export function ledgerClients(url, token, { tenant, entity, n, timeoutMs = 30_000 }) {
  return async (observe) => {
    const clients = await openAll(
      n,
      async (i) => {
        const clientId = randomBytes(16).toString('hex')
        const ws = new WebSocket(url, { perMessageDeflate: false })
        ws.binaryType = 'nodebuffer'
        await new Promise((resolve, reject) => {
          ws.once('open', resolve)
          ws.once('error', reject)
        })
        const index = new Map()
        let welcome
        let pages = 0
        const ready = new Promise((resolve, reject) => {
          ws.on('message', (data) => {
            const m = decodeMessage(new Uint8Array(data))
            if (m.type === 'welcome') {
              welcome = m
              ws.send(
                encodeMessage({
                  type: 'subscribe',
                  sub: 1,
                  scope: [entity],
                  cursors: {},
                  credit: 64,
                }),
              )
            } else if (m.type === 'entries') {
              for (const e of m.entries) {
                const sender = index.get(e.clientId)
                if (sender !== undefined) observe(i, sender, e.data.n, e.data.t)
              }
              if (++pages % 32 === 0) ws.send(encodeMessage({ type: 'credit', sub: 1, pages: 32 }))
              if (m.live) resolve()
            } else if (m.type === 'error') {
              reject(new Error(`relay error ${m.kind}: ${m.message}`))
              clientErrors.push(`${m.kind}: ${m.message}`)
            }
          })
        })
        ws.send(encodeMessage({ type: 'hello', protocol: PROTOCOL_VERSION, token, clientId }))
        await ready
        return { i, ws, clientId, index, welcome }
      },
      timeoutMs,
    )
    const ids = new Map(clients.map((c) => [c.clientId, c.i]))
    return clients.map((c) => {
      for (const [id, i] of ids) c.index.set(id, i)
      const clock = createHlcClock(c.clientId, () => Date.now())
      let seq = c.welcome.clientSeqHigh
      let batch = 0
      // Like the client's outbox: entries queue up while PUSH_IN_FLIGHT_MAX pushes are unacked,
      // and go out together in the next push (at most PUSH_BATCH entries).
      let inFlight = 0
      let queue = []
      const flush = () => {
        while (inFlight < PUSH_IN_FLIGHT_MAX && queue.length > 0) {
          const entries = queue.slice(0, PUSH_BATCH)
          queue = queue.slice(entries.length)
          inFlight++
          c.ws.send(encodeMessage({ type: 'push', batch: ++batch, entries }))
        }
      }
      c.ws.on('message', (data) => {
        if (data[0] === undefined) return
        const m = decodeMessage(new Uint8Array(data))
        if (m.type === 'ack') {
          inFlight--
          flush()
        }
      })
      return {
        send(n, t) {
          seq++
          queue.push({
            id: entryId(c.clientId, seq),
            tenant,
            entity,
            kind: 'fanout.set',
            data: { n, t },
            intent: 'fact',
            clientId: c.clientId,
            clientSeq: seq,
            hlc: clock.tick(),
            occurredAt: Date.now(),
          })
          flush()
        },
        close: () => c.ws.terminate(),
      }
    })
  }
}

export const clientErrors = []

// -- Yjs: y-websocket clients (the anchor server, or our /yjs/ endpoint) -------------------------

/** N y-websocket providers on one room; each sets its own key of a Y.Map to `{ n, t }`. */
export function yjsClients(serverUrl, room, { n, protocols = [], timeoutMs = 30_000 }) {
  return async (observe) => {
    const Y = await import('yjs')
    const { WebsocketProvider } = await import('y-websocket')
    const opened = []
    const clients = await openAll(
      n,
      async (i) => {
        const doc = new Y.Doc()
        const provider = new WebsocketProvider(serverUrl, room, doc, {
          WebSocketPolyfill: WebSocket,
          protocols,
          disableBc: true,
        })
        opened.push(provider)
        await new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error('yjs sync timeout')), timeoutMs)
          provider.once('sync', () => {
            clearTimeout(timer)
            resolve()
          })
        })
        const map = doc.getMap('fanout')
        map.observe((event) => {
          for (const key of event.keysChanged) {
            const v = map.get(key)
            if (v !== undefined) observe(i, Number(key.slice(1)), v.n, v.t)
          }
        })
        return { doc, provider, map }
      },
      timeoutMs,
    ).catch((error) => {
      for (const p of opened) p.destroy()
      throw error
    })
    return clients.map((c, i) => ({
      send(n, t) {
        c.map.set(`c${i}`, { n, t })
      },
      close() {
        c.provider.destroy()
        c.doc.destroy()
      },
    }))
  }
}

// -- Automerge: automerge-repo clients ---------------------------------------------------------

/** N automerge-repo clients on one document; each sets its own key to `{ n, t }`. */
export function automergeClients(serverUrl, { n, timeoutMs = 30_000 }) {
  return async (observe) => {
    const { Repo } = await import('@automerge/automerge-repo')
    const { WebSocketClientAdapter } = await import('@automerge/automerge-repo-network-websocket')
    const repos = []
    const open = async (i, docUrl) => {
      const repo = new Repo({ network: [new WebSocketClientAdapter(serverUrl)] })
      repos.push(repo)
      let handle
      if (docUrl === undefined) {
        handle = repo.create({})
        handle.change((d) => {
          d.c0 = { n: 0, t: 0 }
        })
        // Let the server store it before the others ask for it.
        await sleep(500)
      } else {
        // The server may not have stored the new document yet: ask again, bounded.
        for (let attempt = 1; handle === undefined; attempt++) {
          try {
            handle = await repo.find(docUrl)
          } catch (error) {
            if (attempt >= FIND_ATTEMPTS_MAX) throw error
            await sleep(500)
          }
        }
      }
      handle.on('change', ({ doc }) => {
        for (const key of Object.keys(doc)) {
          const v = doc[key]
          if (v !== undefined && typeof v.n === 'number') observe(i, Number(key.slice(1)), v.n, v.t)
        }
      })
      return { repo, handle }
    }
    const deadline = Date.now() + timeoutMs
    let clients
    try {
      const first = await withDeadline(open(0, undefined), deadline, 'automerge create')
      const rest = await openAll(n - 1, (k) => open(k + 1, first.handle.url), deadline - Date.now())
      clients = [first, ...rest]
    } catch (error) {
      for (const repo of repos) await repo.shutdown?.().catch(() => undefined)
      throw error
    }
    return clients.map((c, i) => ({
      send(n, t) {
        c.handle.change((d) => {
          d[`c${i}`] = { n, t }
        })
      },
      close: () => c.repo.shutdown?.(),
    }))
  }
}

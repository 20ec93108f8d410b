// The browser side of the compaction benchmark, bundled by esbuild (benches/compaction.mjs) and
// driven by Playwright. Exposes `window.bench.boot`: a fresh register (a new database) from
// createClient to synced(), counting the bytes its socket received; with `full`, the same
// client made to subscribe without `bootstrap` (the subscribe frame is re-encoded without it:
// an older client, a full replay). Then `check` loads every entity and answers its confirmed
// state and version, in bounded batches.
import { createClient } from '@ledgerline/client'
import { defineEntity, defineSchema } from '@ledgerline/core'
import { decodeMessage, encodeMessage } from '@ledgerline/protocol'

const schema = defineSchema(
  defineEntity({
    type: 'item',
    initial: { n: 0, sum: 0 },
    reduce: (s, e) => ({ n: s.n + 1, sum: s.sum + e.data.qty }),
  }),
)
/** Entities loaded per batch by `check` (bounded: the cache holds 2,000). */
const CHECK_BATCH = 500

/** A WebSocket class counting received bytes; `full` strips `bootstrap` from subscribes. */
function countingSocket(counter, full) {
  return class CountingWebSocket extends WebSocket {
    constructor(url, protocols) {
      super(url, protocols)
      this.addEventListener('message', (event) => {
        const d = event.data
        counter.bytes += d.byteLength ?? d.size ?? d.length ?? 0
        counter.frames++
        // Where the time goes: when the welcome, the snapshots and the live page arrived. Read
        // from the frame's first and last bytes, not decoded again: a second decode of every
        // snapshots page here would be the bench's own time inside the time it measures.
        const m = peek(new Uint8Array(d))
        const at = Math.round(performance.now() - counter.t0)
        if (m.type === 'welcome') counter.marks.welcome = at
        if (m.type === 'snapshots') counter.marks.snapshotsLast = at
        if (m.type === 'snapshots') counter.marks.snapshotsFirst ??= at
        if (m.type === 'entries') counter.marks.entriesFirst ??= at
        if (m.type === 'entries' && m.live) counter.marks.live ??= at
      })
    }
    send(data) {
      if (full) {
        const m = decodeMessage(
          new Uint8Array(data.buffer ?? data, data.byteOffset ?? 0, data.byteLength),
        )
        if (m.type === 'subscribe' && m.bootstrap !== undefined) {
          const { bootstrap: _dropped, ...plain } = m
          super.send(encodeMessage(plain))
          return
        }
      }
      super.send(data)
    }
  }
}

const TYPE_KEY = [0xa4, 0x74, 0x79, 0x70, 0x65] // fixstr 'type'
const LIVE_KEY = [0xa4, 0x6c, 0x69, 0x76, 0x65] // fixstr 'live'

/**
 * `{ type, live }` of a frame whose map starts with `type` (as the relay writes every frame),
 * `live` read from an `entries` frame's last key; any other frame is decoded.
 */
function peek(bytes) {
  const at = bytes[0] >= 0x80 && bytes[0] <= 0x8f ? 1 : bytes[0] === 0xde ? 3 : -1
  const len = bytes[at + TYPE_KEY.length] - 0xa0
  if (at < 0 || TYPE_KEY.some((b, i) => bytes[at + i] !== b) || len < 0 || len > 31)
    return decodeMessage(bytes)
  const from = at + TYPE_KEY.length + 1
  const type = new TextDecoder().decode(bytes.subarray(from, from + len))
  if (type !== 'entries') return { type }
  const tail = bytes.length - 1 - LIVE_KEY.length
  if (LIVE_KEY.some((b, i) => bytes[tail + i] !== b)) return decodeMessage(bytes)
  return { type, live: bytes[bytes.length - 1] === 0xc3 }
}

const bench = {
  async boot({ url, token, dbName, timeoutMs, full, entities }) {
    const t0 = performance.now()
    const counter = { bytes: 0, frames: 0, t0, marks: {} }
    const client = createClient({
      url,
      token,
      schema,
      dbName,
      persist: false,
      WebSocket: countingSocket(counter, full),
    })
    try {
      const result = await client.synced({ timeoutMs })
      const ms = performance.now() - t0
      if (result._tag !== 'synced')
        throw new Error(`boot timed out: ${JSON.stringify(result.status)}`)
      const bytes = counter.bytes
      const frames = counter.frames
      // Every entity's confirmed state, to check against the server (not timed).
      const t1 = performance.now()
      const states = []
      for (let at = 0; at < entities.length; at += CHECK_BATCH) {
        const batch = entities.slice(at, at + CHECK_BATCH)
        const loaded = await Promise.all(batch.map((e) => client.load(e)))
        for (const s of loaded) states.push([s.entity, s.confirmed, s.version])
      }
      const history = await client.history(entities[0])
      return {
        ms,
        bytes,
        frames,
        marks: counter.marks,
        checkMs: performance.now() - t1,
        states,
        first: { complete: history.complete, from: history.from, held: history.items.length },
      }
    } finally {
      await client.close()
    }
  },

  async wipe(names) {
    for (const name of names) {
      await new Promise((resolve) => {
        const r = indexedDB.deleteDatabase(name)
        r.onsuccess = r.onerror = r.onblocked = () => resolve()
      })
    }
  },
}

globalThis.bench = bench

// The browser side of the client benchmark, bundled by esbuild (benches/client.mjs) and driven
// by Playwright. Exposes `window.bench`: our client's append / appendMany / cold catch-up, and
// the raw IndexedDB anchors for the same records. Every loop is bounded in count and time.
import { createClient } from '@ledgerline/client'
import { defineEntity, defineSchema } from '@ledgerline/core'

const schema = defineSchema(
  defineEntity({
    type: 'tick',
    initial: { n: 0 },
    reduce: (s, e) => ({ n: s.n + (e.data.n > 0 ? 1 : 0) }),
  }),
)
const PAD = 'x'.repeat(60)

const bench = {
  /** Appends one at a time (`append`), or in `appendMany` batches of `batch`. */
  async ours({ url, token, dbName, batch, count, timeMs }) {
    const client = createClient({ url, token, schema, dbName, persist: false })
    try {
      // The first call opens the database: not measured.
      await client.append('tick/warm', 'bench.tick', { n: 0, pad: PAD })
      const latencies = []
      const t0 = performance.now()
      let done = 0
      while (done < count && performance.now() - t0 < timeMs) {
        const s = performance.now()
        if (batch === 1) {
          await client.append(`tick/e${done % 64}`, 'bench.tick', { n: done + 1, pad: PAD })
        } else {
          const drafts = []
          for (let i = 0; i < batch; i++) {
            drafts.push({
              entity: `tick/e${(done + i) % 64}`,
              kind: 'bench.tick',
              data: { n: done + i + 1, pad: PAD },
            })
          }
          await client.appendMany(drafts)
        }
        latencies.push(performance.now() - s)
        done += batch
      }
      const seconds = (performance.now() - t0) / 1000
      return { rate: done / seconds, latencies }
    } finally {
      await client.close()
    }
  },

  /** Raw IndexedDB: `batch` puts per readwrite transaction with durability 'strict'. */
  async raw({ dbName, batch, count, timeMs }) {
    const db = await openRaw(dbName)
    try {
      const latencies = []
      const t0 = performance.now()
      let done = 0
      while (done < count && performance.now() - t0 < timeMs) {
        const s = performance.now()
        await putAll(db, batch, done, 'strict')
        latencies.push(performance.now() - s)
        done += batch
      }
      const seconds = (performance.now() - t0) / 1000
      return { rate: done / seconds, latencies }
    } finally {
      db.close()
    }
  },

  /** Cold catch-up: a fresh database, connect, until `synced()`; ms. */
  async catchUp({ url, token, dbName, timeoutMs }) {
    const t0 = performance.now()
    const client = createClient({ url, token, schema, dbName, persist: false })
    try {
      const result = await client.synced({ timeoutMs })
      const ms = performance.now() - t0
      if (result._tag !== 'synced')
        throw new Error(`catch-up timed out: ${JSON.stringify(result.status)}`)
      return { ms }
    } finally {
      await client.close()
    }
  },

  /** The anchor of catch-up: `count` raw puts of stored-entry records, `batch` per transaction. */
  async rawCatchUp({ dbName, count, batch, durability }) {
    const t0 = performance.now()
    const db = await openRaw(dbName)
    try {
      for (let done = 0; done < count; done += batch) {
        await putAll(db, Math.min(batch, count - done), done, durability)
      }
      return { ms: performance.now() - t0 }
    } finally {
      db.close()
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

function openRaw(name) {
  return new Promise((resolve, reject) => {
    const r = indexedDB.open(name, 1)
    r.onupgradeneeded = () => r.result.createObjectStore('entries', { keyPath: 'id' })
    r.onsuccess = () => resolve(r.result)
    r.onerror = () => reject(r.error)
  })
}

const CLIENT_ID = '0123456789abcdef0123456789abcdef'

/** Puts `n` records shaped like a stored entry in one transaction. */
function putAll(db, n, from, durability) {
  return new Promise((resolve, reject) => {
    const tx = db.transaction('entries', 'readwrite', { durability })
    const store = tx.objectStore('entries')
    for (let i = from; i < from + n; i++) {
      store.put({
        id: `${CLIENT_ID}-${i + 1}`,
        tenant: 'bench',
        entity: `tick/e${i % 1000}`,
        kind: 'bench.tick',
        data: { n: i + 1, pad: PAD },
        intent: 'fact',
        clientId: CLIENT_ID,
        clientSeq: i + 1,
        hlc: `000001700000000:00000:${CLIENT_ID}`,
        occurredAt: 1_700_000_000_000 + i,
        version: Math.floor(i / 1000) + 1,
        partition: i % 16,
        offset: Math.floor(i / 16) + 1,
        committedAt: 1_700_000_000_000 + i,
      })
    }
    tx.oncomplete = () => resolve()
    tx.onerror = tx.onabort = () => reject(tx.error)
  })
}

globalThis.bench = bench

// The browser side of the query benchmark, bundled by esbuild (benches/query.mjs) and driven by
// Playwright. Exposes `window.bench`: fill a client's database with orders through
// `appendMany` (their views and index keys are kept in the same transactions), time `query`
// over it, and the raw IndexedDB anchor: `getAll` on an index of a plain object store holding
// the same views. Every loop is bounded in count.
import { createClient } from '@ledgerline/client'
import { defineEntity, defineSchema } from '@ledgerline/core'

const order = defineEntity({
  type: 'order',
  initial: { day: '', total: 0, lines: 0 },
  reduce: (s, e) =>
    e.kind === 'order.line'
      ? { day: e.data.day, total: s.total + e.data.amount, lines: s.lines + 1 }
      : s,
  indexes: { byDay: (o) => o.day || null, byTotal: (o) => o.total },
})
const schema = defineSchema(order)
// The same type without indexes: what appending costs when no views are kept.
const plainSchema = defineSchema(
  defineEntity({ type: 'order', initial: order.initial, reduce: order.reduce }),
)
// Offline on purpose: the client never reaches a relay, so what is measured is IndexedDB.
const OFFLINE = 'ws://127.0.0.1:9/sync'
const TOKEN = 'x.eyJ0ZW5hbnQiOiJiZW5jaCJ9.y' // payload {"tenant":"bench"}
const DAYS = 50
const dayOf = (i) =>
  `2026-${String(1 + Math.floor((i % DAYS) / 28)).padStart(2, '0')}-${String(1 + ((i % DAYS) % 28)).padStart(2, '0')}`
const storeOf = (i) => `s${i % 10}`
const totalOf = (i) => (i * 7919) % 100_000

let client

const bench = {
  /** Opens the client and appends `count` orders in `appendMany` batches of `batch`. */
  async fill({ dbName, count, batch, plain = false }) {
    await client?.close()
    client = createClient({
      url: OFFLINE,
      token: TOKEN,
      schema: plain ? plainSchema : schema,
      dbName,
      persist: false,
    })
    const t0 = performance.now()
    for (let from = 0; from < count; from += batch) {
      const drafts = []
      for (let i = from; i < Math.min(count, from + batch); i++) {
        drafts.push({
          entity: `order/${storeOf(i)}-${String(i).padStart(6, '0')}`,
          kind: 'order.line',
          data: { day: dayOf(i), amount: totalOf(i) },
        })
      }
      await client.appendMany(drafts)
    }
    return { ms: performance.now() - t0 }
  },

  /** Times `rounds` runs of one query shape; answers each run's ms and the rows of the last. */
  async query({ shape, rounds }) {
    const times = []
    let rows = 0
    for (let r = 0; r < rounds; r++) {
      const [pattern, options] = shapeOf(shape, r)
      const t0 = performance.now()
      const result = await client.query(pattern, options)
      times.push(performance.now() - t0)
      rows = result.rows.length
    }
    return { times, rows }
  },

  async close() {
    await client?.close()
    client = undefined
  },

  /** The anchor: the same views in a plain store with an index on the day; getAll of one day. */
  async raw({ dbName, count, rounds, limit }) {
    const db = await new Promise((resolve, reject) => {
      const r = indexedDB.open(dbName, 1)
      r.onupgradeneeded = () =>
        r.result.createObjectStore('views', { keyPath: 'entity' }).createIndex('day', 'view.day')
      r.onsuccess = () => resolve(r.result)
      r.onerror = () => reject(r.error)
    })
    try {
      for (let from = 0; from < count; from += 1_000) {
        await new Promise((resolve, reject) => {
          const tx = db.transaction('views', 'readwrite')
          const store = tx.objectStore('views')
          for (let i = from; i < Math.min(count, from + 1_000); i++) {
            const entity = `order/${storeOf(i)}-${String(i).padStart(6, '0')}`
            store.put({ entity, view: { day: dayOf(i), total: totalOf(i), lines: 1 } })
          }
          tx.oncomplete = () => resolve()
          tx.onerror = tx.onabort = () => reject(tx.error)
        })
      }
      const times = []
      for (let r = 0; r < rounds; r++) {
        const t0 = performance.now()
        await new Promise((resolve, reject) => {
          const tx = db.transaction('views', 'readonly')
          const req = tx
            .objectStore('views')
            .index('day')
            .getAll(IDBKeyRange.only(dayOf(r)), limit)
          req.onsuccess = () => resolve(req.result)
          req.onerror = () => reject(req.error)
        })
        times.push(performance.now() - t0)
      }
      return { times }
    } finally {
      db.close()
    }
  },
}

/** The query shapes measured; `r` varies the day or store so no two runs read the same rows. */
function shapeOf(shape, r) {
  switch (shape) {
    case 'day':
      return ['order/*', { where: { byDay: dayOf(r) }, limit: 100 }]
    case 'dayAll':
      return ['order/*', { where: { byDay: dayOf(r) }, limit: 1_000 }]
    case 'top':
      return ['order/*', { orderBy: { index: 'byTotal', direction: 'desc' }, limit: 20 }]
    case 'storeDay':
      return [`order/${storeOf(r)}-*`, { where: { byDay: dayOf(r) }, limit: 100 }]
    case 'range':
      return ['order/*', { where: { byTotal: { gte: 50_000, lt: 50_500 } }, limit: 100 }]
    default:
      throw new Error(`unknown shape ${shape}`)
  }
}

globalThis.bench = bench

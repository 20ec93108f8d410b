// Goal: what `query` answers equals a full scan of the views, for random data and random
// writes: own appends, confirmed pages from other devices (also of own entries received back),
// acks that append or refuse, on both client stores.
// Method: fast-check (fixed seed, printed on failure) generates a sequence of writes to a few
// orders and a query; after the writes, the expected rows are computed WITHOUT the kept views:
// every entity is loaded (`loadEntity`, the entity cache's path), folded, filtered by the
// query's range and pattern and sorted by key then name, and compared with `planQuery` +
// `queryViews` (what `client.query` runs).
import 'fake-indexeddb/auto'
import fc from 'fast-check'
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb'
import { describe, expect, it } from 'vitest'
import type { Entry, StoredEntry } from '@ledgerline/core'
import { defineEntity, defineSchema, fold, matchesPattern } from '@ledgerline/core'
import type { ClientStore } from './client-store.ts'
import { sortPending, typeKey } from './entity-fold.ts'
import { createIdbClientStore } from './idb-client-store.ts'
import { createMemoryClientStore } from './memory-client-store.ts'
import { planQuery } from './queries.ts'
import { compareValues } from './views.ts'

type Order = { readonly total: number; readonly day: string }
const order = defineEntity({
  type: 'order',
  initial: { total: 0, day: '' } as Order,
  reduce: (s: Order, e) =>
    e.kind === 'order.line'
      ? { total: s.total + (e.data.amount as number), day: (e.data.day as string) || s.day }
      : s,
  indexes: { byDay: (o: Order) => o.day || undefined, byTotal: (o: Order) => o.total },
})
const schema = defineSchema(order)
const ME = 'a'.repeat(32)
const OTHER = 'b'.repeat(32)
const IDS = ['s1-1', 's1-2', 's2-1', 's2-2', 's3-9']
const DAYS = ['', '2026-12-01', '2026-12-02', '2026-12-03']

type Op =
  | { op: 'append'; id: string; amount: number; day: string }
  | { op: 'other'; id: string; amount: number; day: string }
  | { op: 'ack'; refuse: boolean }
  | { op: 'receive' }

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    op: fc.constant('append' as const),
    id: fc.constantFrom(...IDS),
    amount: fc.integer({ min: -5, max: 20 }),
    day: fc.constantFrom(...DAYS),
  }),
  fc.record({
    op: fc.constant('other' as const),
    id: fc.constantFrom(...IDS),
    amount: fc.integer({ min: -5, max: 20 }),
    day: fc.constantFrom(...DAYS),
  }),
  fc.record({ op: fc.constant('ack' as const), refuse: fc.boolean() }),
  fc.record({ op: fc.constant('receive' as const) }),
)
const queryArb = fc.record({
  pattern: fc.constantFrom('order/*', 'order/s1-*', 'order/s2-2'),
  index: fc.constantFrom('byDay', 'byTotal', undefined),
  lo: fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined }),
  hi: fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined }),
  desc: fc.boolean(),
  limit: fc.integer({ min: 1, max: 6 }),
})

/** The writes, played on `store` as the sync loop would make them. */
async function play(store: ClientStore, ops: readonly Op[]): Promise<void> {
  await store.prepareViews()
  await store.prepareCursors('t1', 'k', () => true)
  const versions = new Map<string, number>()
  let offset = 0
  let otherSeq = 0
  const acked: { entry: Entry; version: number; offset: number }[] = []
  for (const o of ops) {
    if (o.op === 'append') {
      await store.append(
        (clientId, seq) => [entry(clientId, seq, o.id, o.amount, o.day)],
        { entriesMax: 1_000, bytesMax: 1e9 },
        1,
        () => 10,
      )
    } else if (o.op === 'other') {
      const v = (versions.get(o.id) ?? 0) + 1
      versions.set(o.id, v)
      const e = entry(OTHER, ++otherSeq, o.id, o.amount, o.day)
      // One partition, in offset order: own acked entries (lower offsets) come back first.
      const earlier = acked.splice(0).map((a) => positioned(a.entry, a.version, a.offset))
      const page = [...earlier, positioned(e, v, ++offset)]
      await store.applyPages([{ entries: page, cursors: {} }], 'k')
    } else if (o.op === 'ack') {
      const [record] = await store.readOutbox(undefined, 1, 1e9)
      if (record === undefined) continue
      if (o.refuse) {
        const result = { id: record.id, status: 'refused', code: 'invariant', reason: 'x', head: 0 }
        await store.applyAck([{ record, result: result as never }], () => true)
      } else {
        const v = (versions.get(record.entry.entity.slice(6)) ?? 0) + 1
        versions.set(record.entry.entity.slice(6), v)
        const at = ++offset
        const result = {
          id: record.id,
          status: 'appended',
          version: v,
          partition: 0,
          offset: at,
          committedAt: 1,
          corrections: [],
        }
        await store.applyAck([{ record, result: result as never }], () => true)
        acked.push({ entry: record.entry, version: v, offset: at })
      }
    } else {
      // The subscription brings back the oldest acked own entry.
      const next = acked.shift()
      if (next === undefined) continue
      const page = [positioned(next.entry, next.version, next.offset)]
      await store.applyPages([{ entries: page, cursors: {} }], 'k')
    }
  }
}

/** The expected rows: every entity loaded and folded, then filtered and sorted. */
async function scan(store: ClientStore, q: ReturnType<typeof planQuery>) {
  const rows: { entity: string; view: Order; key: string | number | undefined }[] = []
  for (const id of IDS) {
    const entity = `order/${id}`
    const load = await store.loadEntity(entity, typeKey(order), null)
    if (load.stored.length === 0 && load.pending.length === 0) continue
    const confirmed = fold(order, order.initial, load.stored)
    const view = fold(order, confirmed, sortPending(load.pending))
    const key =
      q.index === undefined ? undefined : q.index === 'byDay' ? view.day || undefined : view.total
    if (q.index !== undefined && key === undefined) continue
    if (q.match !== undefined && !matchesPattern('order/*', entity)) continue
    if (q.match !== undefined && !q.match(entity)) continue
    if (key !== undefined && q.lower !== undefined) {
      const c = compareValues(key, q.lower.value)
      if (c < 0 || (c === 0 && q.lower.open)) continue
    }
    if (key !== undefined && q.upper !== undefined) {
      const c = compareValues(key, q.upper.value)
      if (c > 0 || (c === 0 && q.upper.open)) continue
    }
    rows.push({ entity, view, key })
  }
  rows.sort((a, b) => {
    const c = a.key === undefined || b.key === undefined ? 0 : compareValues(a.key, b.key)
    return c !== 0 ? c : a.entity < b.entity ? -1 : 1
  })
  if (q.direction === 'desc') rows.reverse()
  return rows.slice(0, q.limit).map((r) => ({ entity: r.entity, view: r.view }))
}

const stores: [string, () => Promise<ClientStore>][] = [
  ['memory', async () => createMemoryClientStore({ schema })],
  [
    'indexeddb',
    () => createIdbClientStore({ indexedDB: new IDBFactory(), IDBKeyRange, dbName: 'p', schema }),
  ],
]

describe.each(stores)('query equals a full scan of the views (%s)', (_name, open) => {
  it('for random writes and random queries', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { maxLength: 30 }), queryArb, async (ops, qa) => {
        const store = await open()
        await store.init(() => ME, 1, 't1')
        try {
          await play(store, ops)
          // Keys of the index queried: days, or totals in steps of 10 (empty ranges included).
          const bound = (i: number | undefined) =>
            i === undefined ? undefined : qa.index === 'byTotal' ? i * 10 : DAYS[i]
          const lo = bound(qa.lo)
          const hi = bound(qa.hi)
          const where =
            qa.index === undefined || (lo === undefined && hi === undefined)
              ? undefined
              : { [qa.index]: { gte: lo, lt: hi } }
          const options = {
            where,
            orderBy:
              qa.index === undefined
                ? undefined
                : { index: qa.index, direction: qa.desc ? ('desc' as const) : ('asc' as const) },
            limit: qa.limit,
          }
          const plan = planQuery(schema, qa.pattern, options)
          const got = (await store.queryViews(plan)).map((r) => ({
            entity: r.entity,
            view: r.view,
          }))
          expect(got).toEqual(await scan(store, plan))
        } finally {
          store.close()
        }
      }),
      { seed: 20_261_201, numRuns: 60 },
    )
  })
})

function entry(
  clientId: string,
  clientSeq: number,
  id: string,
  amount: number,
  day: string,
): Entry {
  return {
    id: `${clientId}-${clientSeq}`,
    tenant: 't1',
    entity: `order/${id}`,
    kind: 'order.line',
    data: { amount, day },
    intent: 'fact',
    clientId,
    clientSeq,
    hlc: `${'1'.padStart(15, '0')}:${String(clientSeq).padStart(5, '0')}:${clientId}`,
    occurredAt: 1,
  }
}

function positioned(e: Entry, version: number, offset: number): StoredEntry {
  return { ...e, version, partition: 0, offset, committedAt: 1 }
}

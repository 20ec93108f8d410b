// Goal: the ledger snapshot policy (`ledger-snapshots.ts`) and `fetch`'s in-flight bound
// (`session-fetch.ts`). Method: a memory log with the contract schema; appends through
// `withLedgerSnapshots`; the queue and its bound, folding from the latest snapshot, the walk
// over a log written without snapshots, CRDT and unknown types left alone; then a fetch host
// whose reads never finish, to see the fifth fetch refused.
import { expect, it } from 'vitest'
import pino from 'pino'
import { defineEntity, defineSchema, foldKey } from '@ledgerline/core'
import { createMemoryLogStore } from '@ledgerline/log'
import type { MemoryLogStore } from '@ledgerline/log'
import { FETCH_IN_FLIGHT_MAX } from '@ledgerline/protocol'
import type { ErrorKind } from '@ledgerline/protocol'
import { CONTRACT_SCHEMA } from '@ledgerline/testkit'
import { createLedgerSnapshotter, withLedgerSnapshots } from './ledger-snapshots.ts'
import {
  LEDGER_SNAPSHOT_READ_PAGE_ENTRIES,
  LEDGER_SNAPSHOT_WALK_PAGE_ENTITIES,
  LEDGER_SNAPSHOT_WALK_READ_ENTRIES,
  RELAY_LIMITS_DEFAULT,
} from './limits.ts'
import { SessionFetches } from './session-fetch.ts'
import type { SessionContext } from './session.ts'

const doc = defineEntity<unknown>({
  type: 'doc',
  crdt: 'yjs',
  initial: new Uint8Array(),
  reduce: (s, e) => e.data ?? s,
})
const SCHEMA = defineSchema(...CONTRACT_SCHEMA.types.values(), doc)
const STOCK = foldKey(CONTRACT_SCHEMA.typeOf('stock/a'))

let seq = 0
const clientId = 'c'.repeat(32)
function move(entity: string, qty = 1) {
  seq++
  const at = 1_700_000_000_000 + seq
  return {
    entry: {
      id: `${clientId}-${seq}`,
      tenant: 'acme',
      entity,
      kind: entity.startsWith('doc/') ? 'yjs.update' : 'stock.moved',
      data: entity.startsWith('doc/') ? new Uint8Array([1]) : { qty },
      intent: 'fact' as const,
      clientId,
      clientSeq: seq,
      hlc: `${String(at).padStart(15, '0')}:00000:${clientId}`,
      occurredAt: at,
    },
  }
}

/** A snapshot of `entity` at `version` with a planted `onHand`, written straight to the log. */
async function plant(store: MemoryLogStore, entity: string, version: number, onHand: number) {
  const [at] = await store.readEntity('acme', entity, version, 1)
  await store.putSnapshot('acme', {
    entity,
    foldKey: STOCK,
    version,
    partition: at?.partition ?? 0,
    offset: at?.offset ?? 0,
    committedAt: at?.committedAt ?? 0,
    state: { onHand },
  })
}

function fresh(): MemoryLogStore {
  seq = 0
  return createMemoryLogStore({ schema: SCHEMA, partitions: 4 })
}

it('snapshots a ledger entity at every 32nd version, folded from its latest snapshot', async () => {
  const base = fresh()
  const snapshotter = createLedgerSnapshotter(base, SCHEMA, { every: 4 })
  const store = withLedgerSnapshots(base, snapshotter)
  for (let i = 0; i < 3; i++) await store.append('acme', [move('stock/a', 2)])
  await snapshotter.idle()
  expect(await base.snapshot('acme', 'stock/a', STOCK)).toBeUndefined()
  await store.append('acme', [move('stock/a', 2)])
  await snapshotter.idle()
  expect(await base.snapshot('acme', 'stock/a', STOCK)).toMatchObject({
    version: 4,
    state: { onHand: 8 },
  })
  for (let i = 0; i < 4; i++) await store.append('acme', [move('stock/a', 1)])
  await snapshotter.idle()
  expect(await base.snapshot('acme', 'stock/a', STOCK)).toMatchObject({
    version: 8,
    state: { onHand: 12 },
  })
  // A planted state at 4 of another entity (written straight to the log, no pass): the pass
  // at 8 folds on it, reading only 5..8.
  for (let i = 0; i < 4; i++) await base.append('acme', [move('stock/p', 1)])
  await plant(base, 'stock/p', 4, 100)
  for (let i = 0; i < 4; i++) await store.append('acme', [move('stock/p', 1)])
  await snapshotter.idle()
  expect(await base.snapshot('acme', 'stock/p', STOCK)).toMatchObject({
    version: 8,
    state: { onHand: 104 },
  })
  expect(snapshotter.counts()).toMatchObject({ written: 3, failed: 0 })
  // A CRDT entity is not this policy's.
  for (let i = 0; i < 4; i++) await store.append('acme', [move('doc/d')])
  await snapshotter.idle()
  expect(await base.snapshotsInScope('acme', ['doc/*'], ['doc@1'], undefined, 10)).toEqual({
    snapshots: [],
    next: undefined,
  })
})

it('bounds its queue: past the bound the oldest entity is dropped and counted', async () => {
  const base = fresh()
  // A pass that never runs: the queue only fills.
  const snapshotter = createLedgerSnapshotter(base, SCHEMA, { queueMax: 3, defer: () => {} })
  for (let i = 0; i < 5; i++) snapshotter.enqueue('acme', `stock/q${i}`)
  snapshotter.enqueue('acme', 'stock/q4')
  expect(snapshotter.counts().dropped).toBe(2)
})

it('walks a log written without snapshots and snapshots what is far enough past', async () => {
  const base = fresh()
  for (let i = 0; i < 9; i++) await base.append('acme', [move('stock/w1')])
  for (let i = 0; i < 3; i++) await base.append('acme', [move('stock/w2')])
  for (let i = 0; i < 9; i++) await base.append('acme', [move('doc/w3')])
  const snapshotter = createLedgerSnapshotter(base, SCHEMA, { every: 4 })
  const counts = await snapshotter.walk()
  expect(counts.written).toBe(1)
  expect(await base.snapshot('acme', 'stock/w1', STOCK)).toMatchObject({
    version: 9,
    state: { onHand: 9 },
  })
  expect(await base.snapshot('acme', 'stock/w2', STOCK)).toBeUndefined()
  // Walking again writes nothing: every entity is within `every` of its snapshot.
  expect((await snapshotter.walk()).written).toBe(0)
})

it('walks many entities in a bounded number of reads and yields, not a few per entity', async () => {
  const base = fresh()
  const ENTITIES = 300
  const EACH = 5
  for (let round = 0; round < EACH; round++) {
    const all = Array.from({ length: ENTITIES }, (_, e) => move(`stock/m${e}`))
    for (let i = 0; i < all.length; i += 100) await base.append('acme', all.slice(i, i + 100))
  }
  // One ledger longer than a read page, folded page by page; one with a planted snapshot far
  // behind its head (folded from it); one whose snapshot is recent (left alone).
  const LONG = LEDGER_SNAPSHOT_READ_PAGE_ENTRIES * 2 + 7
  for (let i = 0; i < LONG; i += 100) {
    const n = Math.min(100, LONG - i)
    await base.append(
      'acme',
      Array.from({ length: n }, () => move('stock/long')),
    )
  }
  await plant(base, 'stock/m1', 1, 100)
  await plant(base, 'stock/m2', EACH, -1)
  const calls = { reads: 0, defers: 0 }
  const READS = new Set([
    'readEntity',
    'readHistory',
    'readLedgers',
    'snapshot',
    'entities',
    'head',
  ])
  const counted = new Proxy(base, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver) as unknown
      if (typeof key !== 'string' || !READS.has(key) || typeof value !== 'function') return value
      return (...args: unknown[]) => {
        calls.reads++
        return (value as (...a: unknown[]) => unknown).apply(target, args)
      }
    },
  })
  const defer = (fn: () => void) => {
    calls.defers++
    setImmediate(fn)
  }
  const snapshotter = createLedgerSnapshotter(counted, SCHEMA, { every: 4, defer })
  const counts = await snapshotter.walk()
  expect(counts).toMatchObject({ written: ENTITIES, failed: 0 })
  // Every state is the full fold (or the planted one's fold on), and the long one reached its
  // head through its pages.
  expect(await base.snapshot('acme', 'stock/m0', STOCK)).toMatchObject({
    version: EACH,
    state: { onHand: EACH },
  })
  expect(await base.snapshot('acme', 'stock/m1', STOCK)).toMatchObject({
    version: EACH,
    state: { onHand: 100 + EACH - 1 },
  })
  expect(await base.snapshot('acme', 'stock/m2', STOCK)).toMatchObject({ state: { onHand: -1 } })
  expect(await base.snapshot('acme', 'stock/long', STOCK)).toMatchObject({
    version: LONG,
    state: { onHand: LONG },
  })
  // The bound: one listing per page of entities, one read (and one yield) per chunk of
  // entries, and the long ledger's extra pages; never a read or a yield per entity.
  const pages = Math.ceil((ENTITIES + 1) / LEDGER_SNAPSHOT_WALK_PAGE_ENTITIES)
  const chunks =
    Math.ceil((ENTITIES * EACH) / LEDGER_SNAPSHOT_WALK_READ_ENTRIES) +
    Math.ceil(LEDGER_SNAPSHOT_READ_PAGE_ENTRIES / LEDGER_SNAPSHOT_WALK_READ_ENTRIES) +
    1
  const longPages = Math.ceil(LONG / LEDGER_SNAPSHOT_READ_PAGE_ENTRIES)
  expect(calls.reads).toBeLessThanOrEqual(pages + chunks + longPages)
  expect(calls.defers).toBeLessThanOrEqual(chunks + longPages)
  expect(calls.reads).toBeLessThan(ENTITIES / 10)
})

it('answers at most FETCH_IN_FLIGHT_MAX fetches at once; one more is rate_limited', async () => {
  const base = fresh()
  await base.append('acme', [move('stock/f')])
  const errors: ErrorKind[] = []
  const sent: unknown[] = []
  const never = new Promise<never>(() => {})
  const context = {
    store: { ...base, readEntity: () => never },
    limits: RELAY_LIMITS_DEFAULT,
    logger: pino({ level: 'silent' }),
    bootstrap: true,
  } as unknown as SessionContext
  const fetches = new SessionFetches(context, {
    tenant: () => 'acme',
    grants: () => ({ read: ['stock/*'], write: [] }),
    isReady: () => true,
    send: (m) => sent.push(m) > 0,
    sendError: (kind) => errors.push(kind),
    fail: (kind) => errors.push(kind),
  })
  for (let req = 1; req <= FETCH_IN_FLIGHT_MAX; req++) {
    fetches.fetch({ type: 'fetch', req, entity: 'stock/f', before: 2 })
  }
  expect(errors).toEqual([])
  fetches.fetch({ type: 'fetch', req: 99, entity: 'stock/f', before: 2 })
  expect(errors).toEqual(['rate_limited'])
  fetches.fetch({ type: 'fetch', req: 100, entity: 'order/o', before: 2 })
  expect(errors).toEqual(['rate_limited', 'forbidden'])
  expect(sent).toEqual([])
})

// Shared by the SQLite and PostgreSQL store tests: what a log written by Ledgerline at 03f500b
// (`fixtures/log-03f500b.*`, made by `fixtures/make-03f500b-logs.mjs`) must answer once this
// build has migrated it. The log holds, for client `ab…ab` of tenant `acme`:
//   1 stock.moved stock/a (bytes)    2 stock.moved stock/a −5, corrected by stock.oversold
//   3 seat.claimed, refused conflict 4 refused forbidden by the relay
//   5 loyalty.earned, refused unknown_type (no such type then)
//   6 stock.moved stock/a naming 2 in `corrects` (a client entry, not a correction)
//   7 yjs.update doc/d1, then a yjs.snapshot with `corrects` naming 7 (as snapshots were)
import { expect } from 'vitest'
import { defineEntity, defineSchema, foldKey } from '@ledgerline/core'
import { hasLedgerSnapshots } from '@ledgerline/log'
import type { Data, Entry, Schema } from '@ledgerline/core'
import { CONTRACT_SCHEMA } from '@ledgerline/testkit'
import type { LogStore } from './log-store.ts'

export const UPGRADE_CLIENT = 'ab'.repeat(16)

// The contract's `stock` (oversold corrections) and `seat` are the types the old log was
// written with.
const stock = CONTRACT_SCHEMA.typeOf('stock/a')
const seat = CONTRACT_SCHEMA.typeOf('seat/1')
const doc = defineEntity<unknown>({
  type: 'doc',
  crdt: 'yjs',
  initial: new Uint8Array(),
  reduce: (s, e) =>
    e.kind === 'yjs.snapshot' ? (e.data as { state: Uint8Array }).state : (e.data ?? s),
})
const loyalty = defineEntity<{ points: number }>({
  type: 'loyalty',
  initial: { points: 0 },
  reduce: (s, e) => ({ points: s.points + Number(e.data.points) }),
})

/** The schema the old log was written with. */
export const UPGRADE_SCHEMA: Schema = defineSchema(stock, seat, doc)
/** The same, after the app shipped the `loyalty` type to the relay. */
export const UPGRADE_SCHEMA_LEARNED: Schema = defineSchema(stock, seat, doc, loyalty)

/**
 * Checks a migrated old log; `open(schema)` closes whatever it opened before and opens the log
 * again with `schema`.
 */
export async function checkUpgradedLog(open: (schema: Schema) => Promise<LogStore>) {
  const store = await open(UPGRADE_SCHEMA)
  const till = { subject: 'till-1', grants: { read: ['*'], write: ['*'] } }
  // An identity, made by the first open of this build and kept.
  const identity = await store.identity()
  expect(identity).toEqual({ id: expect.stringMatching(/^[A-Za-z0-9_-]{22,}$/), generation: 1 })
  // Digests of the stored bodies: the same entry is a duplicate, another under its id a conflict.
  const [dup] = await store.append('acme', [{ entry: old(1, 'stock/a', 'stock.moved', first) }])
  expect(dup).toMatchObject({ status: 'duplicate', version: 1 })
  const [other] = await store.append('acme', [{ entry: old(1, 'stock/a', 'stock.moved', {}) }])
  expect(other?.status).toBe('id_conflict')
  // The log's own correction of 2, not entry 6 that names it, nor a snapshot of 7 that did.
  const [sale] = await store.append('acme', [
    { entry: old(2, 'stock/a', 'stock.moved', { qty: -5 }) },
  ])
  expect(sale).toMatchObject({
    status: 'duplicate',
    corrections: [{ id: `${UPGRADE_CLIENT}-2~nonnegative~0`, kind: 'stock.oversold' }],
  })
  expect(sale?.status === 'duplicate' && sale.corrections).toHaveLength(1)
  const [update] = await store.append('acme', [
    { entry: old(7, 'doc/d1', 'yjs.update', new Uint8Array([7, 7])) },
  ])
  expect(update).toMatchObject({ status: 'duplicate', corrections: [] })
  // Refusals kept no body and have no digest: answered as they were.
  const [claim] = await store.append('acme', [
    { entry: old(3, 'seat/1', 'seat.claimed', {}, { intent: 'request', expect: 4 }) },
  ])
  expect(claim).toMatchObject({ status: 'refused', code: 'conflict' })
  // An old unknown_type refusal is decided again (issue 12 case 7): deferred while the type is
  // unknown, appended once the relay knows it.
  const earned = old(5, 'loyalty/l1', 'loyalty.earned', { points: 5 })
  const [deferred] = await store.append('acme', [{ entry: earned }], till)
  expect(deferred).toMatchObject({ status: 'deferred', code: 'unknown_type' })
  // The clientId was never bound: the first subject that appends under it after the upgrade.
  expect(await store.client('acme', UPGRADE_CLIENT)).toEqual({ high: 7, subject: 'till-1' })
  const learned = await open(UPGRADE_SCHEMA_LEARNED)
  expect(await learned.identity()).toEqual(identity)
  const [landed] = await learned.append('acme', [{ entry: earned }], till)
  expect(landed).toMatchObject({ status: 'appended', version: 1 })
  const [next] = await learned.append(
    'acme',
    [{ entry: old(8, 'stock/a', 'stock.moved', { qty: 1 }) }],
    till,
  )
  expect(next).toMatchObject({ status: 'appended', version: 5 })
  const [taken] = await learned.append(
    'acme',
    [{ entry: old(9, 'stock/a', 'stock.moved', { qty: 1 }) }],
    { ...till, subject: 'intruder' },
  )
  expect(taken?.status).toBe('client_taken')
  // Issue 17: the migrated log keeps ledger snapshots beside the old entries.
  if (!hasLedgerSnapshots(learned)) throw new Error('the migrated log keeps no snapshots')
  const [at5] = await learned.readEntity('acme', 'stock/a', 5, 1)
  const snapshot = {
    entity: 'stock/a',
    foldKey: foldKey(stock),
    version: 5,
    partition: at5?.partition ?? -1,
    offset: at5?.offset ?? -1,
    committedAt: at5?.committedAt ?? -1,
    state: { onHand: 0 },
  }
  expect(await learned.putSnapshot('acme', snapshot)).toEqual({ _tag: 'written' })
  expect(await learned.snapshot('acme', 'stock/a', foldKey(stock))).toEqual(snapshot)
  expect((await learned.entities(undefined, 100)).entities).toContainEqual({
    tenant: 'acme',
    entity: 'stock/a',
    version: 5,
  })
}

const first: Data = { qty: 2, note: 'first', bytes: new Uint8Array([0, 1, 255]) }

/** Entry `seq` of the old log's client, as the generator made it. */
function old(
  seq: number,
  entity: string,
  kind: string,
  data: Data,
  extra: Partial<Entry> = {},
): Entry {
  const at = 1_700_000_000_000 + seq
  return {
    id: `${UPGRADE_CLIENT}-${seq}`,
    tenant: 'acme',
    entity,
    kind,
    data,
    intent: 'fact',
    clientId: UPGRADE_CLIENT,
    clientSeq: seq,
    hlc: `${String(at).padStart(15, '0')}:00000:${UPGRADE_CLIENT}`,
    occurredAt: at,
    ...extra,
  }
}

/**
 * The conformance suite of the server log: every `LogStore` (SQLite, PostgreSQL, the
 * simulation's) runs it, and a store is finished when it passes. Each test opens a fresh store
 * through `setup`, so tests never see each other's entries.
 *
 * What it proves, by the numbers of `log-store.ts`:
 * 1. atomic batches (one result per item, in order; a rejected call writes nothing);
 * 2. durable before resolve (what resolved is there after `reopen`, when the store can reopen);
 * 3. dense versions per entity, also under concurrent calls;
 * 4. gap-free offsets per partition in commit order;
 * 5. permanent dedupe by id and content (in the same call, in later calls, after reopen;
 *    refusals too; another content under a used id is `id_conflict`);
 * 6. `seq_gap` for a clientSeq gap, not recorded;
 * 7. facts with corrections (deterministic ids, one per offending entry however many resends,
 *    also to another entity of the tenant) and requests decided once (conflict, invariant);
 *    a client's `corrects` naming no entry it may write is refused `invalid`;
 * 8. concurrent calls racing on one entity: exactly one request with the same `expect` wins;
 *    the global bound on entries queued for commit (`overloaded`, nothing recorded);
 * 9. corrections sized and folded before they are written (an oversized one, one whose
 *    cross-entity target cannot fold it: `ledger.correction_failed`, no ledger poisoned);
 * 10. deferrals (`unknown_type`, `clock_ahead`): the high-water mark advances, a resend is
 *    decided again, and lands once the schema knows the type or the clocks agree;
 * 11. clientIds bound to the first subject that used them (`client_taken`, nothing recorded);
 * 12. acks carry references to the log's own corrections that the pusher may read;
 * 13. the log's identity (stable across reopen; `bumpGeneration` persists);
 * plus the reads (partition pages with tenant filtering and `throughOffset`, entity ledgers,
 * heads, client records, partition heads) and `onCommit`. Cases 5 and 7 (client corrects) and
 * 10 to 13 live in `log-store-contract-edges.ts`.
 *
 * The store under test must be created with the `schema`, `partitions` and `now` handed to
 * `setup`.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { partitionOf, SERVER_CLIENT_ID } from '@ledgerline/core'
import type { Entry, Schema, StoredEntry } from '@ledgerline/core'
import { decodeMessage, encodeMessage, ENTRY_DATA_BYTES_MAX } from '@ledgerline/protocol'
import type { AppendResult, LogStore } from '@ledgerline/log'
import { edgeContract } from './log-store-contract-edges.ts'
import type { ContractHarness } from './log-store-contract-edges.ts'
import {
  checkDense,
  client,
  CONTRACT_PARTITIONS,
  CONTRACT_SCHEMA,
  dataBytes,
  entitiesInPartition,
  range,
  readAll,
  sleep,
  waitFor,
} from './log-store-contract-fixtures.ts'
import type {
  LogStoreContractOptions,
  LogStoreContractSubject,
  TestClient,
} from './log-store-contract-fixtures.ts'

export { CONTRACT_PARTITIONS, CONTRACT_SCHEMA } from './log-store-contract-fixtures.ts'

export type {
  LogStoreContractOptions,
  LogStoreContractSubject,
} from './log-store-contract-fixtures.ts'

/**
 * Registers the conformance suite for one `LogStore` implementation.
 *
 * @example
 * runLogStoreContract('sqlite', async ({ schema, partitions, now }) => {
 *   const file = join(mkdtempSync(join(tmpdir(), 'll-')), 'log.sqlite')
 *   const open = () => createSqliteStore({ file, schema, partitions, now })
 *   let store = await open()
 *   return { store, reopen: async () => { await store.close(); return (store = await open()) },
 *     cleanup: async () => { await store.close(); rmSync(dirname(file), { recursive: true }) } }
 * })
 */
export function runLogStoreContract(
  name: string,
  setup: (options: LogStoreContractOptions) => Promise<LogStoreContractSubject>,
): void {
  describe(`LogStore contract: ${name}`, () => {
    let subject: LogStoreContractSubject | undefined
    let clock = 1_700_000_000_000
    const now = () => clock
    const open = async (
      mode: 'typed' | 'plain' | Schema = 'typed',
      commitQueueEntriesMax?: number,
    ) => {
      const schema = mode === 'typed' ? CONTRACT_SCHEMA : mode === 'plain' ? undefined : mode
      subject = await setup({ schema, partitions: CONTRACT_PARTITIONS, now, commitQueueEntriesMax })
      return subject.store
    }
    const harness: ContractHarness = {
      open: (schema) => open(schema ?? 'typed'),
      subject: () => subject,
      async cleanup() {
        const s = subject
        subject = undefined
        if (s !== undefined) await s.cleanup()
      },
      now,
      advance: (ms) => {
        clock += ms
      },
    }

    beforeEach(() => {
      clock = 1_700_000_000_000
    })
    afterEach(async () => {
      const s = subject
      subject = undefined
      if (s !== undefined) await s.cleanup()
    })

    it('appends a fact and reads it back everywhere', async () => {
      // Goal: the basic append and every read agree. Method: one fact, then each read.
      const store = await open()
      expect(store.partitions).toBe(CONTRACT_PARTITIONS)
      const c = client(1)
      const e = c.next('stock/a', 'stock.moved', { qty: 5 })
      const [r] = await store.append('acme', [{ entry: e }])
      const p = partitionOf('acme', 'stock/a', CONTRACT_PARTITIONS)
      expect(r).toEqual({
        id: e.id,
        status: 'appended',
        version: 1,
        partition: p,
        offset: 1,
        committedAt: clock,
        corrections: [],
      })
      const stored = { ...e, version: 1, partition: p, offset: 1, committedAt: clock }
      expect(await store.readEntity('acme', 'stock/a', 1, 10)).toEqual([stored])
      expect(await store.readPartition('acme', p, 0, 10)).toEqual({
        entries: [stored],
        throughOffset: 1,
      })
      expect(await store.head('acme', 'stock/a')).toEqual({ version: 1, offset: 1 })
      expect(await store.head('acme', 'stock/none')).toEqual({ version: 0, offset: 0 })
      expect((await store.client('acme', c.clientId)).high).toBe(1)
      expect((await store.client('other', c.clientId)).high).toBe(0)
      const heads = await store.partitionHeads()
      expect(heads).toHaveLength(CONTRACT_PARTITIONS)
      expect(heads[p]).toBe(1)
      expect(heads.reduce((a, b) => a + b, 0)).toBe(1)
    })

    it('keeps entry fields exactly, including byte arrays and optional fields', async () => {
      // Goal: a stored entry reads back equal to what was sent. Method: an entry with nested
      // data, bytes and a request with expect; compare field by field after the round trip.
      const store = await open('plain')
      const c = client(2)
      const e = c.next(
        'doc/x',
        'doc.updated',
        { bytes: new Uint8Array([0, 1, 255]), nested: { list: [1, 2.5, 'x', null, true] } },
        { intent: 'request', expect: 0 },
      )
      const [r] = await store.append('acme', [{ entry: e }])
      expect(r?.status).toBe('appended')
      const [back] = await store.readEntity('acme', 'doc/x', 1, 1)
      expect(back).toMatchObject({ ...e, version: 1 })
      expect(back?.data).toEqual(e.data)
      expect((back?.data as { bytes?: Uint8Array } | undefined)?.bytes).toBeInstanceOf(Uint8Array)
    })

    it('answers one result per item, in order, and a rejected call writes nothing', async () => {
      // Goal: atomic batches. Method: a batch of mixed outcomes gets results in item order;
      // a call with an item of another tenant (a caller bug) rejects and leaves no trace.
      const store = await open()
      const c = client(3)
      const items = [
        c.next('stock/a', 'stock.moved', { qty: 1 }),
        c.next('seat/1', 'seat.claimed', {}, { intent: 'request', expect: 0 }),
        c.next('seat/1', 'seat.claimed', {}, { intent: 'request', expect: 0 }),
        c.next('stock/b', 'stock.moved', { qty: 2 }),
      ]
      const results = await store.append(
        'acme',
        items.map((entry) => ({ entry })),
      )
      expect(results.map((r) => [r.id, r.status])).toEqual([
        [items[0]?.id, 'appended'],
        [items[1]?.id, 'appended'],
        [items[2]?.id, 'refused'],
        [items[3]?.id, 'appended'],
      ])
      const before = await store.partitionHeads()
      const d = client(4)
      const good = d.next('stock/a', 'stock.moved', { qty: 1 })
      const foreign = { ...d.next('stock/a', 'stock.moved', { qty: 1 }), tenant: 'other' }
      await expect(
        store.append('acme', [{ entry: good }, { entry: foreign }]),
      ).rejects.toBeInstanceOf(Error)
      expect(await store.partitionHeads()).toEqual(before)
      expect((await store.client('acme', d.clientId)).high).toBe(0)
      expect(await store.head('acme', 'stock/a')).toEqual(expect.objectContaining({ version: 1 }))
    })

    it('gives dense versions and gap-free offsets under concurrent calls', async () => {
      // Goal: guarantees 3 and 4 when many connections append at once. Method: 8 clients each
      // send 25 calls of 4 facts over 6 entities without awaiting; then every entity's ledger
      // must be versions 1..n and every partition offsets 1..n, and each result must match
      // the entry found at its position.
      const store = await open()
      const clients = Array.from({ length: 8 }, (_, i) => client(10 + i))
      const calls: Promise<AppendResult[]>[] = []
      for (let round = 0; round < 25; round++) {
        for (const c of clients) {
          const batch = Array.from({ length: 4 }, (_, k) =>
            c.next(`stock/s${(round + k) % 6}`, 'stock.moved', { qty: 1 }),
          )
          calls.push(
            store.append(
              'acme',
              batch.map((entry) => ({ entry })),
            ),
          )
        }
      }
      const results = (await Promise.all(calls)).flat()
      expect(results).toHaveLength(8 * 25 * 4)
      expect(results.every((r) => r.status === 'appended')).toBe(true)
      const all = await readAll(store, 'acme')
      expect(all).toHaveLength(800)
      checkDense(all)
      for (const r of results) {
        if (r.status !== 'appended' && r.status !== 'duplicate') continue
        const found = all.find((e) => e.partition === r.partition && e.offset === r.offset)
        expect(found?.id).toBe(r.id)
        expect(found?.version).toBe(r.version)
      }
    })

    it('orders offsets by commit: a later commit never gets a lower offset', async () => {
      // Goal: guarantee 4's "in commit order". Method: append to entities of one partition one
      // call after another; offsets grow with each resolved call, and a reader that saw offset
      // n sees every offset below it.
      const store = await open()
      const c = client(20)
      const names = entitiesInPartition('acme', 'stock', 0, 3)
      let last = 0
      for (let i = 0; i < 12; i++) {
        const [r] = await store.append('acme', [
          { entry: c.next(names[i % 3] as string, 'stock.moved', { qty: 1 }) },
        ])
        if (r?.status !== 'appended') throw new Error('expected appended')
        expect(r.offset).toBe(last + 1)
        last = r.offset
        const page = await store.readPartition('acme', 0, 0, 100)
        expect(page.entries.map((e) => e.offset)).toEqual(range(1, last))
      }
    })

    it('dedupes forever: the same id gets its original result, in a call and across calls', async () => {
      // Goal: guarantee 5. Method: send an entry, then resend it alone, twice in one call, and
      // beside new entries; each resend returns `duplicate` with the first positions.
      const store = await open()
      const c = client(30)
      const e1 = c.next('stock/a', 'stock.moved', { qty: 3 })
      const [first] = await store.append('acme', [{ entry: e1 }])
      if (first?.status !== 'appended') throw new Error('expected appended')
      const again = await store.append('acme', [{ entry: e1 }])
      expect(again[0]).toEqual({ ...first, status: 'duplicate' })
      const e2 = c.next('stock/a', 'stock.moved', { qty: 1 })
      const mixed = await store.append('acme', [{ entry: e1 }, { entry: e2 }, { entry: e2 }])
      expect(mixed[0]).toEqual({ ...first, status: 'duplicate' })
      expect(mixed[1]?.status).toBe('appended')
      expect(mixed[2]).toEqual({ ...mixed[1], status: 'duplicate' })
      expect(await store.readEntity('acme', 'stock/a', 1, 10)).toHaveLength(2)
      // An equal copy (other key order, a fresh object) is the same content.
      const copy = JSON.parse(JSON.stringify(e1)) as Entry
      expect((await store.append('acme', [{ entry: copy }]))[0]).toEqual({
        ...first,
        status: 'duplicate',
      })
    })

    it('refuses a clientSeq gap with seq_gap and records nothing', async () => {
      // Goal: guarantee 6. Method: send seq 1, then seq 3 (gap), then 2 and 3 in order.
      const store = await open()
      const c = client(40)
      const e1 = c.next('stock/a', 'stock.moved', { qty: 1 })
      const e2 = c.next('stock/a', 'stock.moved', { qty: 1 })
      const e3 = c.next('stock/a', 'stock.moved', { qty: 1 })
      await store.append('acme', [{ entry: e1 }])
      const [gap] = await store.append('acme', [{ entry: e3 }])
      expect(gap).toMatchObject({ id: e3.id, status: 'refused', code: 'seq_gap' })
      expect((await store.client('acme', c.clientId)).high).toBe(1)
      const later = await store.append('acme', [{ entry: e2 }, { entry: e3 }])
      expect(later.map((r) => r.status)).toEqual(['appended', 'appended'])
      expect((await store.client('acme', c.clientId)).high).toBe(3)
      // The first entry of a client must be clientSeq 1.
      const d = client(41)
      d.next('stock/a', 'stock.moved', { qty: 1 })
      const [skip] = await store.append('acme', [
        { entry: d.next('stock/a', 'stock.moved', { qty: 1 }) },
      ])
      expect(skip).toMatchObject({ status: 'refused', code: 'seq_gap' })
      expect((await store.client('acme', d.clientId)).high).toBe(0)
    })

    it('appends a fact that breaks an invariant with one deterministic correction', async () => {
      // Goal: guarantee 7 for facts. Method: oversell stock; the fact is appended and one
      // `stock.oversold` correction follows it with id `<id>~nonnegative~0`; resending the fact
      // (alone and beside a new one) returns the same correction and never adds another.
      const store = await open()
      const c = client(50)
      await store.append('acme', [{ entry: c.next('stock/a', 'stock.moved', { qty: 2 }) }])
      const sale = c.next('stock/a', 'stock.moved', { qty: -5 })
      const [r] = await store.append('acme', [{ entry: sale }])
      if (r?.status !== 'appended') throw new Error('expected appended')
      expect(r.version).toBe(2)
      // The ack names the correction; its body travels on the subscription (a read here).
      expect(r.corrections).toEqual([
        {
          id: `${sale.id}~nonnegative~0`,
          entity: 'stock/a',
          kind: 'stock.oversold',
          version: 3,
          partition: r.partition,
          offset: r.offset + 1,
        },
      ])
      const fix = await bodyOf(store, r.corrections[0])
      expect(fix).toMatchObject({
        id: `${sale.id}~nonnegative~0`,
        tenant: 'acme',
        entity: 'stock/a',
        kind: 'stock.oversold',
        data: { short: 3, sale: sale.id },
        intent: 'fact',
        corrects: sale.id,
        clientId: SERVER_CLIENT_ID,
        clientSeq: 0,
        version: 3,
        partition: r.partition,
        offset: r.offset + 1,
      })
      for (let i = 0; i < 3; i++) {
        const [dup] = await store.append('acme', [{ entry: sale }])
        expect(dup).toEqual({ ...r, status: 'duplicate' })
      }
      const ledger = await store.readEntity('acme', 'stock/a', 1, 100)
      expect(ledger.map((e) => e.kind)).toEqual(['stock.moved', 'stock.moved', 'stock.oversold'])
      expect(ledger.filter((e) => e.corrects === sale.id)).toHaveLength(1)
      // The correction restored the state: the next small sale needs no correction.
      const [next] = await store.append('acme', [
        { entry: c.next('stock/a', 'stock.moved', { qty: 0 }) },
      ])
      expect(next).toMatchObject({ status: 'appended', version: 4, corrections: [] })
    })

    it('appends a correction to another entity of the tenant with its own version', async () => {
      // Goal: cross-entity corrections. Method: an order has one line; a declined card payment
      // names it; the correction `order.balance_due` lands in the order's ledger as version 2,
      // in the order's partition, in the same commit.
      const store = await open()
      const c = client(60)
      await store.append('acme', [{ entry: c.next('order/o1', 'order.line', { sku: 'x' }) }])
      const declined = c.next('payment/p1', 'card.declined', { order: 'order/o1' })
      const [r] = await store.append('acme', [{ entry: declined }])
      if (r?.status !== 'appended') throw new Error('expected appended')
      expect(r.version).toBe(1)
      expect(r.corrections).toHaveLength(1)
      expect(r.corrections[0]).toMatchObject({
        entity: 'order/o1',
        kind: 'order.balance_due',
        version: 2,
        partition: partitionOf('acme', 'order/o1', CONTRACT_PARTITIONS),
      })
      expect(await bodyOf(store, r.corrections[0])).toMatchObject({ corrects: declined.id })
      expect(await store.head('acme', 'order/o1')).toEqual({
        version: 2,
        offset: r.corrections[0]?.offset,
      })
      const [dup] = await store.append('acme', [{ entry: declined }])
      expect(dup).toEqual({ ...r, status: 'duplicate' })
      expect(await store.readEntity('acme', 'order/o1', 1, 10)).toHaveLength(2)
      // The order's next entry folds on top of the correction: version 3.
      const [line] = await store.append('acme', [
        { entry: c.next('order/o1', 'order.line', { sku: 'y' }) },
      ])
      expect(line).toMatchObject({ status: 'appended', version: 3 })
      checkDense(await readAll(store, 'acme'))
    })

    it('appends a fact whose correction is over ENTRY_DATA_BYTES_MAX with a small correction_failed', async () => {
      // Goal: issue 13 case 1, an oversized correction is never committed (it would block every
      // reader of the partition). Method: a sale with a 40 KB note whose rule copies the data
      // twice; the fact lands with one `ledger.correction_failed` naming the rule and the limit,
      // every entry of the partition fits ENTRY_DATA_BYTES_MAX and a page of them decodes, and
      // resends get the same answer.
      const store = await open()
      const c = client(55)
      const sale = c.next('shelf/s1', 'shelf.sold', { qty: 1, note: 'n'.repeat(40_000) })
      const [r] = await store.append('acme', [{ entry: sale }])
      if (r?.status !== 'appended') throw new Error(`expected appended, got ${JSON.stringify(r)}`)
      expect(r.corrections).toHaveLength(1)
      const fix = (await bodyOf(store, r.corrections[0])) as StoredEntry
      expect(fix).toMatchObject({
        entity: 'shelf/s1',
        kind: 'ledger.correction_failed',
        corrects: sale.id,
        data: { rules: ['nonNegative'] },
      })
      expect(String((fix.data as { reason?: unknown }).reason)).toContain('ENTRY_DATA_BYTES_MAX')
      expect(dataBytes(fix)).toBeLessThan(2_048)
      const page = await store.readPartition('acme', r.partition, 0, 100)
      expect(page.entries.map((e) => e.kind)).toEqual(['shelf.sold', 'ledger.correction_failed'])
      for (const e of page.entries) expect(dataBytes(e)).toBeLessThanOrEqual(ENTRY_DATA_BYTES_MAX)
      const frame = encodeMessage({
        type: 'entries',
        sub: 1,
        entries: page.entries,
        cursors: { [r.partition]: page.throughOffset },
        live: true,
      })
      expect(decodeMessage(frame)).toMatchObject({ type: 'entries' })
      const [dup] = await store.append('acme', [{ entry: sale }])
      expect(dup).toEqual({ ...r, status: 'duplicate' })
    })

    it('lands a fact whose cross-entity correction its target cannot fold, target unpoisoned', async () => {
      // Goal: issue 13 case 3, one guarded fold path for every correction. Method: a tab whose
      // `reduce` throws on `tab.balance_due`; a declined charge names it. The charge lands with
      // one `ledger.correction_failed` on the charge itself, nothing reaches the tab, resends
      // answer the same, and the tab keeps taking entries, also after a reopen.
      const store = await open()
      const c = client(65)
      const [opened] = await store.append('acme', [{ entry: c.next('tab/t1', 'tab.opened', {}) }])
      expect(opened).toMatchObject({ status: 'appended', version: 1 })
      const declined = c.next('charge/c1', 'charge.declined', { tab: 'tab/t1' })
      const [r] = await store.append('acme', [{ entry: declined }])
      if (r?.status !== 'appended') throw new Error(`expected appended, got ${JSON.stringify(r)}`)
      expect(r.version).toBe(1)
      expect(r.corrections).toHaveLength(1)
      expect(await bodyOf(store, r.corrections[0])).toMatchObject({
        entity: 'charge/c1',
        kind: 'ledger.correction_failed',
        corrects: declined.id,
        version: 2,
        data: { rules: ['notDeclined'] },
      })
      expect(await store.readEntity('acme', 'tab/t1', 1, 10)).toHaveLength(1)
      for (let i = 0; i < 2; i++) {
        const [dup] = await store.append('acme', [{ entry: declined }])
        expect(dup).toEqual({ ...r, status: 'duplicate' })
      }
      const [line] = await store.append('acme', [{ entry: c.next('tab/t1', 'tab.line', {}) }])
      expect(line).toMatchObject({ status: 'appended', version: 2 })
      const again = subject?.reopen === undefined ? store : await subject.reopen()
      const [after] = await again.append('acme', [{ entry: c.next('tab/t1', 'tab.line', {}) }])
      expect(after).toMatchObject({ status: 'appended', version: 3 })
      checkDense(await readAll(again, 'acme'))
    })

    it('decides requests once: expect and invariants, with reason and head', async () => {
      // Goal: guarantee 7 for requests and 8 of the design. Method: claim a seat with expect 0
      // (appended), again with expect 0 (conflict, head 1), without expect (invariant); resend
      // each refusal and get the same answer; the ledger holds only the winner.
      const store = await open()
      const a = client(70)
      const b = client(71)
      const win = a.next('seat/1', 'seat.claimed', {}, { intent: 'request', expect: 0 })
      const late = b.next('seat/1', 'seat.claimed', {}, { intent: 'request', expect: 0 })
      const blind = b.next('seat/1', 'seat.claimed', {}, { intent: 'request' })
      const [w] = await store.append('acme', [{ entry: win }])
      expect(w).toMatchObject({ status: 'appended', version: 1 })
      const [l, x] = await store.append('acme', [{ entry: late }, { entry: blind }])
      expect(l).toMatchObject({ id: late.id, status: 'refused', code: 'conflict', head: 1 })
      expect(x).toMatchObject({ id: blind.id, status: 'refused', code: 'invariant', head: 1 })
      expect(x?.status === 'refused' && x.reason).toContain('seat already taken')
      expect((await store.client('acme', b.clientId)).high).toBe(2)
      const again = await store.append('acme', [{ entry: late }, { entry: blind }])
      expect(again).toEqual([l, x])
      expect(await store.readEntity('acme', 'seat/1', 1, 10)).toHaveLength(1)
    })

    it('records refusals made by the relay (forbidden) and answers resends the same way', async () => {
      // Goal: `refuse` items use up the clientSeq and are decided once. Method: a forbidden
      // item, then the same entry without `refuse`: still refused as forbidden.
      const store = await open()
      const c = client(80)
      const e = c.next('stock/a', 'stock.moved', { qty: 1 })
      const [r] = await store.append('acme', [
        { entry: e, refuse: { code: 'forbidden', reason: 'outside write grants' } },
      ])
      expect(r).toMatchObject({
        status: 'refused',
        code: 'forbidden',
        reason: 'outside write grants',
      })
      expect((await store.client('acme', c.clientId)).high).toBe(1)
      expect((await store.append('acme', [{ entry: e }]))[0]).toEqual(r)
      expect(await store.head('acme', 'stock/a')).toEqual({ version: 0, offset: 0 })
      const [next] = await store.append('acme', [
        { entry: c.next('stock/a', 'stock.moved', { qty: 1 }) },
      ])
      expect(next).toMatchObject({ status: 'appended', version: 1 })
    })

    it('defers entities without a type in the schema, and a plain log appends them', async () => {
      // Goal: the schema decides; without one the log is plain. Method: an unknown type is
      // deferred `unknown_type` by a schema'd log (the relay is behind, see the edge cases); a
      // plain log appends anything well formed but still honours `expect`.
      const typed = await open()
      const c = client(90)
      const [r] = await typed.append('acme', [{ entry: c.next('thing/1', 'thing.made', {}) }])
      expect(r).toMatchObject({ status: 'deferred', code: 'unknown_type' })
      await subject?.cleanup()
      subject = undefined
      const plain = await open('plain')
      const d = client(91)
      const results = await plain.append('acme', [
        { entry: d.next('thing/1', 'thing.made', {}) },
        { entry: d.next('stock/a', 'stock.moved', { qty: -10 }) },
        { entry: d.next('thing/1', 'thing.made', {}, { intent: 'request', expect: 0 }) },
        { entry: d.next('thing/1', 'thing.made', {}, { intent: 'request', expect: 1 }) },
      ])
      expect(results.map((x) => x.status)).toEqual(['appended', 'appended', 'refused', 'appended'])
      expect(results[0]).toMatchObject({ corrections: [] })
      expect(results[1]).toMatchObject({ corrections: [] })
      expect(results[2]).toMatchObject({ code: 'conflict', head: 1 })
    })

    it('pages a partition per tenant, with throughOffset past other tenants', async () => {
      // Goal: readPartition's paging and tenant filtering. Method: interleave two tenants'
      // entries in one partition; page through acme's with limit 2; a tenant never sees the
      // other's entries; throughOffset reaches the partition head on the last page.
      const store = await open()
      const acme = entitiesInPartition('acme', 'stock', 1, 2)
      const other = entitiesInPartition('other', 'stock', 1, 2)
      const ca = client(100, 'acme')
      const co = client(101, 'other')
      for (let i = 0; i < 5; i++) {
        await store.append('acme', [
          { entry: ca.next(acme[i % 2] as string, 'stock.moved', { qty: 1 }) },
        ])
        await store.append('other', [
          { entry: co.next(other[i % 2] as string, 'stock.moved', { qty: 1 }) },
        ])
      }
      const heads = await store.partitionHeads()
      expect(heads[1]).toBe(10)
      const seen: StoredEntry[] = []
      const throughs: number[] = []
      let after = 0
      for (let pages = 0; pages < 10; pages++) {
        const page = await store.readPartition('acme', 1, after, 2)
        seen.push(...page.entries)
        throughs.push(page.throughOffset)
        after = page.throughOffset
        if (page.entries.length < 2) break
      }
      // Full pages end at their last entry; the short last page reaches the partition head.
      expect(throughs).toEqual([3, 7, 10])
      expect(seen.map((e) => e.tenant)).toEqual(Array(5).fill('acme'))
      expect(seen.map((e) => e.offset)).toEqual([1, 3, 5, 7, 9])
      const rest = await store.readPartition('other', 1, 0, 100)
      expect(rest.entries.map((e) => e.offset)).toEqual([2, 4, 6, 8, 10])
      expect(rest.throughOffset).toBe(10)
      const empty = await store.readPartition('nobody', 1, 0, 100)
      expect(empty).toEqual({ entries: [], throughOffset: 10 })
      // Other tenants' entities are invisible to entity reads and heads too.
      expect(await store.readEntity('other', acme[0] as string, 1, 10)).toEqual([])
      expect(await store.head('other', acme[0] as string)).toEqual({ version: 0, offset: 0 })
    })

    it('reads an entity from a version with a limit', async () => {
      // Goal: readEntity's range. Method: 7 entries; read from 3 with limit 2, then to the end.
      const store = await open()
      const c = client(110)
      for (let i = 0; i < 7; i++) {
        await store.append('acme', [{ entry: c.next('order/o', 'order.line', { i }) }])
      }
      const part = await store.readEntity('acme', 'order/o', 3, 2)
      expect(part.map((e) => e.version)).toEqual([3, 4])
      expect(part.map((e) => (e.data as { i: number }).i)).toEqual([2, 3])
      expect((await store.readEntity('acme', 'order/o', 6, 100)).map((e) => e.version)).toEqual([
        6, 7,
      ])
      expect(await store.readEntity('acme', 'order/o', 8, 100)).toEqual([])
    })

    it('tells onCommit listeners the touched partitions after the commit', async () => {
      // Goal: onCommit. Method: a listener records partitions and whether the entry was
      // readable when it was called; after unsubscribing it hears nothing.
      const store = await open()
      const c = client(120)
      const heard: number[][] = []
      let readable = true
      const off = store.onCommit((partitions) => {
        heard.push([...partitions])
        void store.head('acme', 'stock/a').then((h) => {
          if (h.version === 0) readable = false
        })
      })
      await store.append('acme', [{ entry: c.next('stock/a', 'stock.moved', { qty: 1 }) }])
      await waitFor(() => heard.length > 0)
      expect(heard[0]).toContain(partitionOf('acme', 'stock/a', CONTRACT_PARTITIONS))
      expect(readable).toBe(true)
      off()
      const n = heard.length
      await store.append('acme', [{ entry: c.next('stock/a', 'stock.moved', { qty: 1 }) }])
      await sleep(50)
      expect(heard.length).toBe(n)
    })

    it('lets exactly one of 32 concurrent requests with the same expect win', async () => {
      // Goal: concurrent appends racing on one entity (guarantee 3 and 8). Method: 32 clients
      // each send one `seat.claimed` request with expect 0 at once; exactly one is appended,
      // the others are refused as conflicts with head 1. Then 32 racing facts on one stock
      // entity all land with versions 2..33.
      const store = await open()
      const clients = Array.from({ length: 32 }, (_, i) => client(200 + i))
      const results = (
        await Promise.all(
          clients.map((c) =>
            store.append('acme', [
              { entry: c.next('seat/race', 'seat.claimed', {}, { intent: 'request', expect: 0 }) },
            ]),
          ),
        )
      ).flat()
      expect(results.filter((r) => r.status === 'appended')).toHaveLength(1)
      const refused = results.filter((r) => r.status === 'refused')
      expect(refused).toHaveLength(31)
      for (const r of refused) expect(r).toMatchObject({ code: 'conflict', head: 1 })
      await Promise.all(
        clients.map((c) =>
          store.append('acme', [{ entry: c.next('stock/race', 'stock.moved', { qty: 1 }) }]),
        ),
      )
      const ledger = await store.readEntity('acme', 'stock/race', 1, 100)
      expect(ledger.map((e) => e.version)).toEqual(range(1, 32))
    })

    it('rejects a call past the commit queue bound at once, as overloaded, recording nothing', async () => {
      // Goal: guarantee 8's global bound. Method: a store bounded at 8 queued entries; three
      // calls of 4 in one turn: the first two are accepted, the third rejects with
      // LogStoreError('overloaded') and leaves no trace; a call over the bound alone rejects
      // too; once the queue drained, the refused call is accepted as it was.
      const store = await open('typed', 8)
      const batch = (c: TestClient) =>
        Array.from({ length: 4 }, () => ({ entry: c.next('stock/q', 'stock.moved', { qty: 1 }) }))
      const [a, b, c] = [client(400), client(401), client(402)]
      const third = batch(c)
      const calls = [store.append('acme', batch(a)), store.append('acme', batch(b))]
      const refused = store.append('acme', third)
      await expect(refused).rejects.toMatchObject({ name: 'LogStoreError', kind: 'overloaded' })
      const done = await Promise.all(calls)
      expect(done.flat().map((r) => r.status)).toEqual(Array(8).fill('appended'))
      expect((await store.client('acme', c.clientId)).high).toBe(0)
      const big = client(403)
      const nine = Array.from({ length: 9 }, () => ({
        entry: big.next('stock/q', 'stock.moved', { qty: 1 }),
      }))
      await expect(store.append('acme', nine)).rejects.toMatchObject({ kind: 'overloaded' })
      const later = await store.append('acme', third)
      expect(later.map((r) => r.status)).toEqual(Array(4).fill('appended'))
      expect(await store.head('acme', 'stock/q')).toMatchObject({ version: 12 })
    })

    it('keeps everything across a reopen: entries, dedupe, refusals, marks, partitions', async () => {
      // Goal: guarantees 2 and 5 over a restart. Method: append facts with a correction, a
      // refusal and a forbidden item; reopen; resends get the original results, reads agree,
      // and the next entries continue the versions and offsets.
      const store = await open()
      if (subject?.reopen === undefined) return
      const c = client(300)
      const items = [
        c.next('stock/a', 'stock.moved', { qty: -1 }),
        c.next('seat/1', 'seat.claimed', {}, { intent: 'request', expect: 5 }),
        c.next('order/o', 'order.line', {}),
      ]
      const first = await store.append('acme', [
        { entry: items[0] as Entry },
        { entry: items[1] as Entry },
        { entry: items[2] as Entry, refuse: { code: 'forbidden', reason: 'no' } },
      ])
      const before = await readAll(store, 'acme')
      const reopened = await subject.reopen()
      expect(reopened.partitions).toBe(CONTRACT_PARTITIONS)
      expect((await reopened.client('acme', c.clientId)).high).toBe(3)
      const again = await reopened.append(
        'acme',
        items.map((entry) => ({ entry })),
      )
      expect(again).toEqual(
        first.map((r) => (r.status === 'appended' ? { ...r, status: 'duplicate' } : r)),
      )
      expect(await readAll(reopened, 'acme')).toEqual(before)
      const [next] = await reopened.append('acme', [
        { entry: c.next('stock/a', 'stock.moved', { qty: 1 }) },
      ])
      expect(next).toMatchObject({ status: 'appended', version: 3, corrections: [] })
      checkDense(await readAll(reopened, 'acme'))
    })

    edgeContract(harness)
  })
}

/** The body of the entry an ack's correction reference names (read back from the log). */
async function bodyOf(
  store: LogStore,
  ref: { readonly entity: string; readonly version: number } | undefined,
): Promise<StoredEntry | undefined> {
  if (ref === undefined) return undefined
  const [entry] = await store.readEntity('acme', ref.entity, ref.version, 1)
  return entry
}

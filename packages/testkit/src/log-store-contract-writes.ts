/**
 * The write path of the server log's conformance suite, registered by `runLogStoreContract` for
 * every store: what one call commits, in what order, how often, and what survives a restart.
 * Numbers are those of `log-store.ts`.
 *
 * Terms: a *call* is one `append(tenant, items)`; a *resend* is an entry whose id the log has
 * already decided; the *commit queue* holds entries accepted but not yet committed.
 *
 * What it proves:
 * 1. atomic batches: one result per item, in item order; a rejected call writes nothing;
 * 2. durable before resolve: what resolved is there after `reopen` (skipped when the store
 *    cannot reopen), with dedupe, refusals and clientSeq marks intact;
 * 3. dense versions per entity, also under concurrent calls and racing requests;
 * 4. gap-free offsets per partition in commit order;
 * 5. permanent dedupe by id and content, in one call and across calls;
 * 6. `seq_gap` for a clientSeq gap, not recorded;
 * 8. exactly one of many racing requests with the same `expect` wins; the global bound on
 *    entries queued for commit answers `overloaded` and records nothing.
 */
import { expect, it } from 'vitest'
import { partitionOf } from '@ledgerline/core'
import type { Entry } from '@ledgerline/core'
import type { AppendResult } from '@ledgerline/log'
import {
  checkDense,
  client,
  CONTRACT_PARTITIONS,
  entitiesInPartition,
  range,
  readAll,
} from './log-store-contract-fixtures.ts'
import type { ContractHarness, TestClient } from './log-store-contract-fixtures.ts'

export function writeContract(h: ContractHarness): void {
  it('appends a fact and reads it back everywhere', async () => {
    // Goal: the basic append and every read agree. Method: one fact, then each read.
    const store = await h.open()
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
      committedAt: h.now(),
      corrections: [],
    })
    const stored = { ...e, version: 1, partition: p, offset: 1, committedAt: h.now() }
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
    const store = await h.open('plain')
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
    const store = await h.open()
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
    const store = await h.open()
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
    const store = await h.open()
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
    const store = await h.open()
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
    const store = await h.open()
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

  it('lets exactly one of 32 concurrent requests with the same expect win', async () => {
    // Goal: concurrent appends racing on one entity (guarantee 3 and 8). Method: 32 clients
    // each send one `seat.claimed` request with expect 0 at once; exactly one is appended,
    // the others are refused as conflicts with head 1. Then 32 racing facts on one stock
    // entity all land with versions 2..33.
    const store = await h.open()
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
    const store = await h.open('typed', 8)
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
    const store = await h.open()
    const subject = h.subject()
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
}

/**
 * The conformance suite of the client store: every `ClientStore` (IndexedDB, in memory) runs
 * it, and a store is finished when it passes. Each test gets a fresh database from `setup`;
 * `open()` opens (another store on) that same database, as a reload does.
 *
 * What it proves, by the numbers of `client-store.ts`:
 * 1. atomic writes (a refused append or a scope change in flight writes nothing);
 * 2. clientSeq allocated gap-free with the outbox records, which read back in clientSeq order,
 *    within the entry and byte bounds;
 * 3. one clientId for the outbox, moved as a whole by `reissue`, old ids forwarded;
 * 4. outbox records deleted by their acks only (`seq_gap`, `id_conflict`, `deferred` and
 *    `stored` keep one; an ack seen twice changes nothing), outcomes and acked records kept,
 *    lean acks keeping neither, or by their own entry back in a page with the same content
 *    (`client-store-contract-hub.ts`);
 * 5. pages stored once with their cursors, own entries received back leaving `acked`;
 * 6. cursors, history and snapshots of one (tenant, scope), cleared together;
 * 7. what committed survives a close and a reopen;
 * 8. every call after `close` rejects with kind `closed`;
 * 9. `beginSession`: the tenant and log identity recorded, a restored database or another log
 *    setting `recovering` (kept until `reissue`), what another log lacks put back before
 *    history goes (`client-store-contract-recovery.ts`);
 * 10. kept views of indexed types changed in the same write as their entries, queried in key
 *    order, rebuilt when their definition changes (`client-store-contract-views.ts`);
 * 11–12. relay snapshots kept as bases, fetched history, the bootstrap flag
 *    (`client-store-contract-bootstrap.ts`);
 * plus loads (from a snapshot, a base or version 1), the corrections feed (from pages, once per
 * id, newest first, marked seen) and the counters. The cases about what the subscription brings
 * (5, 6, loads, the feed) are in `client-store-contract-history.ts`; the entries they are built
 * from in `client-store-fixtures.ts`.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { Entry, Schema } from '@ledgerline/core'
import type { ClientStore, OutboxRecord } from '@ledgerline/client'
import {
  ack,
  append,
  appended,
  CLIENT,
  correction,
  entry,
  kindOf,
  NOW,
  other,
  OTHER,
  RENAMED,
  ROOMY,
  size,
  stored,
} from './client-store-fixtures.ts'
import { registerHistoryCases } from './client-store-contract-history.ts'
import { registerBootstrapCases } from './client-store-contract-bootstrap.ts'
import { registerRecoveryCases } from './client-store-contract-recovery.ts'
import { registerViewCases } from './client-store-contract-views.ts'
import { registerHubCases } from './client-store-contract-hub.ts'

export interface ClientStoreContractSubject {
  /**
   * Opens a store on the test's database; every call opens the same database. `schema`: the
   * schema whose indexed types the store keeps views of (guarantee 10).
   */
  readonly open: (options?: { readonly schema?: Schema | undefined }) => Promise<ClientStore>
  /** Removes the database (the suite has closed every store it opened). */
  readonly cleanup: () => Promise<void>
}

/**
 * Registers the conformance suite for one `ClientStore` implementation.
 *
 * @example
 * runClientStoreContract('indexeddb', async () => {
 *   const indexedDB = new IDBFactory()
 *   return { open: () => createIdbClientStore({ indexedDB, IDBKeyRange, dbName: 'contract' }),
 *     cleanup: async () => {} }
 * })
 */
export function runClientStoreContract(
  name: string,
  setup: () => Promise<ClientStoreContractSubject>,
): void {
  describe(`ClientStore contract: ${name}`, () => {
    let subject: ClientStoreContractSubject | undefined
    const opened: ClientStore[] = []
    const open = async (schema?: Schema): Promise<ClientStore> => {
      const store = await (subject as ClientStoreContractSubject).open({ schema })
      opened.push(store)
      await store.init(() => CLIENT, NOW)
      return store
    }
    beforeEach(async () => {
      subject = await setup()
    })
    afterEach(async () => {
      for (const store of opened.splice(0)) store.close()
      await subject?.cleanup()
      subject = undefined
    })

    it('creates the meta record once, and a reopened database keeps it', async () => {
      const raw = await (subject as ClientStoreContractSubject).open()
      opened.push(raw)
      const ids = [CLIENT, RENAMED]
      let asked = 0
      const first = await raw.init(() => ids[asked++] as string, NOW, 't1')
      // A clientId and a device secret, each random; the tenant given; nothing to recover.
      expect(first).toMatchObject({
        created: true,
        meta: {
          clientId: CLIENT,
          deviceSecret: RENAMED,
          seqLast: 0,
          tenant: 't1',
          recovering: false,
          log: null,
        },
      })
      expect(first.meta.clientIds).toEqual([CLIENT])
      const again = await raw.init(() => (asked++, OTHER), NOW + 1, 'other')
      expect(again).toEqual({ meta: first.meta, created: false })
      expect(asked).toBe(2)
      expect(await raw.tenant()).toBe('t1')
      raw.close()
      const reopened = await (subject as ClientStoreContractSubject).open()
      opened.push(reopened)
      expect((await reopened.init(() => OTHER, NOW)).meta.clientId).toBe(CLIENT)
    })

    it('allocates gap-free clientSeq with the outbox records and reads them back in order', async () => {
      const store = await open()
      const a = await append(store, 3, 'stock/a', NOW)
      const b = await append(store, 2, 'stock/b', NOW + 5)
      expect(a.wasEmpty).toBe(true)
      expect(b.wasEmpty).toBe(false)
      expect(a.entries.map((e) => e.id)).toEqual([1, 2, 3].map((s) => `${CLIENT}-${s}`))
      expect(b.meta).toMatchObject({ seqLast: 5, outboxEntries: 5, outboxBytes: 500 })
      expect(b.bytes).toBe(200)
      const all = await store.readOutbox(undefined, 100, 1e9)
      expect(all.map((r) => r.clientSeq)).toEqual([1, 2, 3, 4, 5])
      expect(all.map((r) => r.at)).toEqual([NOW, NOW, NOW, NOW + 5, NOW + 5])
      expect(all[3]).toMatchObject({ id: `${CLIENT}-4`, entity: 'stock/b', bytes: 100 })
      expect(all[3]?.entry).toEqual(b.entries[0])
      expect(await store.counters()).toEqual({
        clientId: CLIENT,
        clientIds: [CLIENT],
        seqLast: 5,
        outboxEntries: 5,
        outboxBytes: 500,
        oldestOutboxAt: NOW,
        correctionsUnseen: 0,
        ackedWaiting: 0,
        storedEntries: 0,
      })
      const seqs = (rs: readonly OutboxRecord[]) => rs.map((r) => r.clientSeq)
      expect(seqs(await store.readOutbox([CLIENT, 3], 100, 1e9))).toEqual([4, 5])
      expect(seqs(await store.readOutbox(undefined, 2, 1e9))).toEqual([1, 2])
      expect(seqs(await store.readOutbox(undefined, 100, 250))).toEqual([1, 2])
      // The first record goes out whatever its size, so an entry never gets stuck.
      expect(seqs(await store.readOutbox(undefined, 100, 1))).toEqual([1])
      expect(await store.readOutbox([CLIENT, 5], 100, 1e9)).toEqual([])
    })

    it('writes nothing of a refused append, and the next one takes the next clientSeq', async () => {
      const store = await open()
      await append(store, 1)
      const refusals = [
        // Past the outbox bounds, by entries and by bytes.
        store.append(
          (c, f) => [entry(c, f), entry(c, f + 1)],
          { ...ROOMY, entriesMax: 2 },
          NOW,
          size,
        ),
        store.append((c, f) => [entry(c, f)], { ...ROOMY, bytesMax: 150 }, NOW, size),
        // A draft the caller refuses, a size it refuses, an entry core refuses.
        store.append(
          () => {
            throw new Error('refused by make')
          },
          ROOMY,
          NOW,
          size,
        ),
        store.append(
          (c, f) => [entry(c, f)],
          ROOMY,
          NOW,
          () => {
            throw new Error('too big')
          },
        ),
        store.append(
          (c, f) => [entry(c, f), { ...entry(c, f + 1), kind: 'NOT A KIND' }],
          ROOMY,
          NOW,
          size,
        ),
        // A clientSeq that is not the one allocated.
        store.append((c, f) => [entry(c, f + 1)], ROOMY, NOW, size),
      ]
      const errors = await Promise.all(
        refusals.map((p) =>
          p.then(
            () => undefined,
            (e) => e,
          ),
        ),
      )
      expect(errors.every((e) => e instanceof Error)).toBe(true)
      expect(kindOf(errors[0])).toBe('outbox_full')
      expect(kindOf(errors[1])).toBe('outbox_full')
      expect(kindOf(errors[4])).toBe('invalid')
      expect(await store.counters()).toMatchObject({
        seqLast: 1,
        outboxEntries: 1,
        outboxBytes: 100,
      })
      expect((await store.readOutbox(undefined, 100, 1e9)).length).toBe(1)
      const next = await append(store, 2)
      expect(next.entries.map((e) => e.clientSeq)).toEqual([2, 3])
    })

    it('keeps what committed across a close and a reopen', async () => {
      const store = await open()
      await store.prepareCursors('t1', 'k', () => true)
      const { entries } = await append(store, 3)
      await store.applyAck([ack(entries[0] as Entry, appended(1, 2, 7))], () => true)
      await store.applyPages([{ entries: [stored(other(1), 1, 2, 6)], cursors: { 2: 6 } }], 'k')
      await store.putSnapshot({
        entity: 'stock/a',
        version: 1,
        state: { n: 1 },
        through: 1,
        typeKey: 'k',
      })
      const before = {
        counters: await store.counters(),
        outbox: await store.readOutbox(undefined, 100, 1e9),
        outcome: await store.outcome((entries[0] as Entry).id),
        load: await store.loadEntity('stock/a', 'k'),
      }
      store.close()
      const again = await open()
      expect(await again.counters()).toEqual(before.counters)
      expect(await again.readOutbox(undefined, 100, 1e9)).toEqual(before.outbox)
      expect(await again.outcome((entries[0] as Entry).id)).toEqual(before.outcome)
      expect(await again.loadEntity('stock/a', 'k')).toEqual(before.load)
      expect(await again.prepareCursors('t1', 'k', () => true)).toEqual({ 2: 6 })
      expect(await again.tenant()).toBe('t1')
    })

    it('applies acks: deletes what they answer, keeps outcomes and pending entries, keeps seq_gap', async () => {
      const store = await open()
      await store.prepareCursors('t1', 'k', () => true)
      const { entries } = await append(store, 6)
      const [e1, e2, e3, e4, e5, e6] = entries as [Entry, Entry, Entry, Entry, Entry, Entry]
      const items = [
        ack(e1, appended(1, 2, 5)),
        ack(e2, { ...appended(2, 2, 6), status: 'duplicate' }),
        ack(e3, { id: e3.id, status: 'refused', code: 'invariant', reason: 'below zero', head: 2 }),
        ack(e4, { id: e4.id, status: 'refused', code: 'seq_gap', reason: 'gap', head: 0 }),
        // Not decisions: an id the log holds for another entry, an entry it cannot decide yet.
        ack(e5, { id: e5.id, status: 'id_conflict', reason: 'another entry has this id' }),
        ack(e6, {
          id: e6.id,
          status: 'deferred',
          code: 'unknown_type',
          reason: 'no type yet',
          retryAfterMs: 1_000,
        }),
      ]
      const applied = await store.applyAck(items, () => true)
      expect(applied.gaps).toBe(1)
      expect([...applied.entities]).toEqual(['stock/a'])
      expect([...applied.settled.keys()]).toEqual([e1.id, e2.id, e3.id])
      expect(applied.settled.get(e3.id)).toEqual({
        _tag: 'refused',
        code: 'invariant',
        reason: 'below zero',
        head: 2,
      })
      expect((await store.readOutbox(undefined, 100, 1e9)).map((r) => r.id)).toEqual([
        e4.id,
        e5.id,
        e6.id,
      ])
      expect(await store.counters()).toMatchObject({
        outboxEntries: 3,
        outboxBytes: 300,
        oldestOutboxAt: NOW,
        ackedWaiting: 2,
      })
      expect(await store.outcome(e1.id)).toEqual({
        _tag: 'appended',
        version: 1,
        partition: 2,
        offset: 5,
        committedAt: NOW + 1,
      })
      expect(await store.outcome(e2.id)).toMatchObject({ _tag: 'duplicate', offset: 6 })
      expect(await store.outcome(e3.id)).toMatchObject({ _tag: 'refused', code: 'invariant' })
      expect(await store.outcome(e4.id)).toEqual({ _tag: 'outbox', stage: 'device' })
      expect(await store.outcome(e5.id)).toEqual({ _tag: 'outbox', stage: 'device' })
      expect(await store.outcome(e6.id)).toEqual({ _tag: 'outbox', stage: 'device' })
      expect(await store.outcome(`${OTHER}-1`)).toEqual({ _tag: 'unknown' })
      const load = await store.loadEntity('stock/a', 'k')
      expect(new Set(load.pending.map((e) => e.id))).toEqual(
        new Set([e1.id, e2.id, e4.id, e5.id, e6.id]),
      )
      expect(load.acked).toEqual(new Set([e1.id, e2.id]))
      // The same acks again (a resent batch's answer): nothing more is deleted or recorded.
      const twice = await store.applyAck(items, () => true)
      expect(twice.settled.size).toBe(0)
      expect(await store.counters()).toMatchObject({ outboxEntries: 3, ackedWaiting: 2 })
    })

    it('keeps no acked record the cursor already passed or out of scope, and a lean ack no outcome', async () => {
      const store = await open()
      await store.prepareCursors('t1', 'k', () => true)
      await store.applyPages([{ entries: [], cursors: { 1: 10 } }], 'k')
      const { entries } = await append(store, 3)
      const [e1, e2, e3] = entries as [Entry, Entry, Entry]
      // Its page came first (offset 9 ≤ cursor 10): nothing left to wait for.
      await store.applyAck([ack(e1, appended(1, 1, 9))], () => true)
      // Not in the subscription's scope: it will never come back.
      await store.applyAck([ack(e2, appended(2, 1, 11))], () => false)
      expect((await store.counters()).ackedWaiting).toBe(0)
      expect(await store.outcome(e1.id)).toMatchObject({ _tag: 'appended', offset: 9 })
      const lean = await store.applyAck([ack(e3, appended(3, 1, 12))], () => true, true)
      expect(lean.settled.get(e3.id)).toMatchObject({ _tag: 'appended' })
      expect(await store.outcome(e3.id)).toEqual({ _tag: 'unknown' })
      expect(await store.counters()).toMatchObject({
        outboxEntries: 0,
        outboxBytes: 0,
        ackedWaiting: 0,
      })
      expect(await store.counters()).toMatchObject({ oldestOutboxAt: null })
    })

    registerHistoryCases(open)
    registerBootstrapCases(open)
    registerRecoveryCases(open)
    registerViewCases(open)
    registerHubCases(open)

    it('reissues the outbox under a new clientId from clientSeq 1 and forwards the old ids', async () => {
      const store = await open()
      await store.prepareCursors('t1', 'k', () => true)
      const { entries } = await append(store, 3)
      const [e1, e2, e3] = entries as [Entry, Entry, Entry]
      await store.applyAck([ack(e1, appended(1, 0, 1))], () => true)
      await store.markRecovering()
      const renamed = await store.reissue(CLIENT, RENAMED)
      expect([...renamed]).toEqual([
        [e2.id, `${RENAMED}-1`],
        [e3.id, `${RENAMED}-2`],
      ])
      const outbox = await store.readOutbox(undefined, 100, 1e9)
      expect(outbox.map((r) => [r.id, r.clientId, r.clientSeq])).toEqual([
        [`${RENAMED}-1`, RENAMED, 1],
        [`${RENAMED}-2`, RENAMED, 2],
      ])
      expect(outbox[0]?.entry).toMatchObject({
        id: `${RENAMED}-1`,
        clientId: RENAMED,
        data: e2.data,
      })
      expect(await store.counters()).toMatchObject({
        clientId: RENAMED,
        seqLast: 2,
        outboxEntries: 2,
      })
      // The move ends the recovery: the next welcome has nothing to recover.
      const begun = await store.beginSession(
        { clientId: RENAMED, tenant: 't1', log: { id: 'log', generation: 1 }, high: 0 },
        size,
      )
      expect(begun).toMatchObject({ _tag: 'begun', recovering: false })
      expect(await store.outcome(e2.id)).toEqual({ _tag: 'reissued', as: `${RENAMED}-1` })
      expect(await store.outcome(`${RENAMED}-1`)).toEqual({ _tag: 'outbox', stage: 'device' })
      expect(await store.outcome(e1.id)).toMatchObject({ _tag: 'appended' })
      // Another tab did it already (the clientId is no longer the one recovered from).
      expect((await store.reissue(CLIENT, OTHER)).size).toBe(0)
      expect((await store.counters()).clientId).toBe(RENAMED)
      const next = await append(store, 1)
      expect(next.entries[0]?.id).toBe(`${RENAMED}-3`)
      // Corrections of entries of the old clientId still reach the feed.
      const late = await store.applyPages(
        [{ entries: [correction(e1, 0, 0, 2)], cursors: {} }],
        'k',
      )
      expect(late.corrections.map((c) => c.of)).toEqual([e1.id])
    })

    it('refuses every call after close with kind closed', async () => {
      const store = await open()
      await append(store, 1)
      store.close()
      const calls = [
        store.counters(),
        store.readOutbox(undefined, 10, 1e9),
        append(store, 1),
        store.outcome(`${CLIENT}-1`),
        store.corrections(10),
      ]
      for (const error of await Promise.all(
        calls.map((p) =>
          p.then(
            () => undefined,
            (e) => e,
          ),
        ),
      ))
        expect(kindOf(error)).toBe('closed')
    })
  })
}

// Goal: an ack that cannot be written for lack of space fails as `storage_full` with nothing
// written, and the same ack applied lean (deletes and the meta record only) still empties the
// outbox, keeping no outcome: a full disk never stops the outbox from draining.
// Method: fake-indexeddb; quota errors injected on every object store an ack writes but meta
// and outbox.
import 'fake-indexeddb/auto'
import { afterEach, describe, expect, it } from 'vitest'
import { ackItem, appendedResult } from '../test-support/entries.ts'
import { appendTo, freshIdb } from '../test-support/idb.ts'
import { injectQuota, type QuotaInjection } from '../test-support/quota.ts'
import { isStorageFull } from './errors.ts'

let injection: QuotaInjection | undefined
afterEach(() => injection?.restore())

describe('IndexedDB outcomes', () => {
  it('applies an ack lean when the disk is full, and keeps nothing else of it', async () => {
    const store = await freshIdb()
    await store.prepareCursors('t1', 'k', () => true)
    const { entries } = await appendTo(store, 2)
    const items = entries.map((e, i) => ackItem(e, appendedResult(e, 0, i + 1)))
    injection = injectQuota({ stores: ['acked', 'outcomes', 'feed'] })
    const full = await store.applyAck(items, () => true).catch((e: unknown) => e)
    expect(isStorageFull(full)).toBe(true)
    expect((await store.counters()).outboxEntries).toBe(2) // nothing of it was written
    const lean = await store.applyAck(items, () => true, true)
    expect(lean.settled.size).toBe(2)
    injection.restore()
    expect(await store.counters()).toMatchObject({
      outboxEntries: 0,
      outboxBytes: 0,
      ackedWaiting: 0,
    })
    expect(await store.outcome(entries[0]!.id)).toEqual({ _tag: 'unknown' })
  })
})

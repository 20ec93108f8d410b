// Goal: the IndexedDB client store passes `runClientStoreContract`, and uses the durability
// each write needs: appends and the writes of restore recovery strict (flushed before they
// resolve), everything that can be fetched or rebuilt again relaxed.
// Method: the contract suite on fake-indexeddb; every transaction the client store opens logged by
// wrapping `IDBDatabase.prototype.transaction`.
import 'fake-indexeddb/auto'
import { afterEach, describe, expect, it } from 'vitest'
import { runClientStoreContract } from '@ledgerline/testkit'
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb'
import { ackItem, appendedResult, OTHER, entry, stored } from '../test-support/entries.ts'
import { appendTo, freshIdb } from '../test-support/idb.ts'
import { createIdbClientStore } from './idb-client-store.ts'

runClientStoreContract('indexeddb', async () => {
  const indexedDB = new IDBFactory()
  return {
    open: (o) =>
      createIdbClientStore({ indexedDB, IDBKeyRange, dbName: 'contract', schema: o?.schema }),
    cleanup: async () => {},
  }
})

const proto = globalThis.IDBDatabase.prototype
const original = proto.transaction
afterEach(() => {
  proto.transaction = original
})

describe('IndexedDB client store', () => {
  it('appends with strict durability and writes the rest relaxed', async () => {
    const store = await freshIdb()
    const log: string[] = []
    proto.transaction = function (this: IDBDatabase, names, mode, options) {
      if (mode === 'readwrite') log.push(`${[names].flat().join(',')} ${options?.durability}`)
      return original.call(this, names, mode, options)
    } as typeof proto.transaction
    const { entries } = await appendTo(store, 1)
    await store.prepareCursors('t1', 'k', () => true)
    await store.applyAck([ackItem(entries[0]!, appendedResult(entries[0]!, 0, 2))], () => true)
    await store.applyPages([{ entries: [stored(entry(OTHER, 1), 1, 0, 1)], cursors: {} }], 'k')
    await store.putSnapshot({ entity: 'stock/a', version: 1, state: {}, through: 1, typeKey: 'k' })
    const log2 = { id: 'log', generation: 1 }
    await store.beginSession(
      { clientId: entries[0]!.clientId, tenant: 't1', log: log2, high: 0 },
      () => 1,
    )
    await store.markRecovering()
    await store.reissue(entries[0]!.clientId, OTHER)
    expect(log).toEqual([
      'meta,outbox strict',
      'meta,chunks,staged,ledgers,snapshots,basePages,acked relaxed',
      'meta,outbox,acked,outcomes relaxed',
      'meta,chunks,staged,acked,feed,outbox,outcomes,basePages relaxed',
      'snapshots relaxed',
      'meta,outbox,acked,outcomes,chunks,staged,ledgers,snapshots,basePages strict',
      'meta strict',
      'meta,outbox,outcomes strict',
    ])
  })
})

// Goal: `close()` of the IndexedDB client store resolves only when the connection is closed, so
// a device backup, a restore or a deleteDatabase right after it is not blocked by this client.
// Chromium fires `blocked` at a deleteDatabase while a closing connection still has a
// transaction running (fake-indexeddb waits instead), so the test watches the connection itself:
// when `close()` is called on it, none of its transactions may still be running.
// Method: fake-indexeddb with IDBDatabase.transaction/close observed; appends and a snapshot
// write still running when the store's close() is called.
import 'fake-indexeddb/auto'
import { afterEach, describe, expect, it } from 'vitest'
import { IDBDatabase, IDBFactory } from 'fake-indexeddb'
import { appendTo, freshIdb, openIdb } from '../test-support/idb.ts'

const proto = IDBDatabase.prototype as unknown as {
  transaction: (...args: unknown[]) => IDBTransaction
  close: () => void
}
const { transaction, close } = proto
let running = 0
const runningAtClose: number[] = []
proto.transaction = function (this: IDBDatabase, ...args: unknown[]) {
  const tx = transaction.apply(this, args)
  running++
  const done = () => running--
  tx.addEventListener('complete', done)
  tx.addEventListener('abort', done)
  return tx
}
proto.close = function (this: IDBDatabase) {
  runningAtClose.push(running)
  close.apply(this)
}
afterEach(() => void runningAtClose.splice(0))

describe('IndexedDB client store close', () => {
  it('waits for its running transactions before it closes the connection', async () => {
    const factory = new IDBFactory()
    const store = await freshIdb(factory)
    runningAtClose.splice(0)
    const appending = [appendTo(store, 50), appendTo(store, 5, 'stock/b')]
    await Promise.resolve()
    expect(running).toBeGreaterThan(0)
    await store.close()
    expect(runningAtClose).toEqual([0])
    for (const a of await Promise.all(appending)) expect(a.entries.length).toBeGreaterThan(0)
  })

  it('refuses work after close with a typed error and closes once', async () => {
    const store = await openIdb()
    runningAtClose.splice(0)
    await store.close()
    await store.close()
    expect(runningAtClose).toEqual([0])
    await expect(store.counters()).rejects.toMatchObject({ name: 'ClientError' })
  })
})

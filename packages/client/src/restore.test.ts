// Goal: issue 12 cases 1 and 2 — a till whose IndexedDB is restored from a copy (profile backup,
// kiosk image, VM snapshot) lands every sale in the server log exactly once, loses none, and
// never reports a different sale's position as its own (guarantee 2, "exactly once").
// Method: the real client (fake-indexeddb) and the real relay on SQLite and on PostgreSQL, behind
// the TCP proxy of test-support to go offline. A device backup is `copyDatabase` (every store,
// key path, index and record); a restore writes the image back over the live database. Sales are
// told apart by their data (`{ sale }`), not their ids: a recovered sale may move to a new
// clientId, and that is fine as long as it lands once.
import 'fake-indexeddb/auto'
import { describe, expect, it } from 'vitest'
import { IDBFactory } from 'fake-indexeddb'
import { LOG_KINDS, useEdgeServers } from '../test-support/edge-relay.ts'
import type { EdgeServer } from '../test-support/edge-relay.ts'
import { copyDatabase, deleteDatabase } from '../test-support/idb-copy.ts'
import { seededRandom, testSeed } from '../test-support/setup.ts'
import type { Client } from './index.ts'

const start = useEdgeServers()

describe.each(LOG_KINDS)('issue 12: a restored device database (%s log)', (kind) => {
  it('case 1: a database copied while offline and restored after it synced sells every sale once', async () => {
    // Method: offline, the till sells sales 1 and 2; its database is copied. Online it syncs and
    // sells sale 3. The copy is restored over it and syncs. The log must hold 1, 2, 3 once each
    // (on 3a8bfae it holds 1, 2, 3, 1, 2: the restored outbox is re-sent under a new clientId).
    const server = await start(kind)
    const live = new IDBFactory()
    const image = new IDBFactory()
    server.proxy.setOnline(false)
    let till = open(server, live, 'case1-a')
    await till.append('order/o1', 'order.line', { sale: 1 })
    await till.append('order/o1', 'order.line', { sale: 2 })
    await till.close()
    await copyDatabase(live, image, 'till')

    server.proxy.setOnline(true)
    till = open(server, live, 'case1-b')
    expect(await till.synced()).toEqual({ _tag: 'synced' })
    await till.append('order/o1', 'order.line', { sale: 3 })
    expect(await till.synced()).toEqual({ _tag: 'synced' })
    await till.close()

    await deleteDatabase(live, 'till')
    await copyDatabase(image, live, 'till')
    const restored = open(server, live, 'case1-c')
    expect(await restored.synced({ timeoutMs: 30_000 })).toEqual({ _tag: 'synced' })
    expect(await sales(server, 'order/o1')).toEqual([1, 2, 3])
    const snap = await restored.load<{ lines: number }>('order/o1')
    expect(snap.confirmed).toEqual({ lines: 3 })
    expect(snap.pending).toEqual([])
  }, 60_000)

  it('case 2: a restored database that sells offline again loses no sale and calls none a duplicate', async () => {
    // Method: the till's database is copied before it sold anything (seqLast 0). It sells sales
    // 1 and 2 online. The copy is restored, and offline the till sells a, b, c: clientSeq 1, 2, 3
    // again, for other sales. Online, the relay's high-water mark (2) is below the database's
    // seqLast (3), so nothing looks restored; on 3a8bfae a and b are answered `duplicate` with the
    // positions of sales 1 and 2 and their outbox records are deleted: two sales gone. Here every
    // sale must land once, and each of a, b, c must report a position that holds that sale.
    const server = await start(kind)
    const live = new IDBFactory()
    const image = new IDBFactory()
    let till = open(server, live, 'case2-a')
    expect(await till.synced()).toEqual({ _tag: 'synced' })
    await till.close()
    await copyDatabase(live, image, 'till')

    till = open(server, live, 'case2-b')
    await till.append('order/o2', 'order.line', { sale: 1 })
    await till.append('order/o2', 'order.line', { sale: 2 })
    expect(await till.synced()).toEqual({ _tag: 'synced' })
    const oldClientId = till.status().clientId
    await till.close()

    await deleteDatabase(live, 'till')
    await copyDatabase(image, live, 'till')
    server.proxy.setOnline(false)
    const restored = open(server, live, 'case2-c')
    const again = []
    for (const sale of ['a', 'b', 'c']) {
      again.push(await restored.append('order/o2', 'order.line', { sale }))
    }
    // The scenario: the restored database hands out clientSeq 1, 2, 3 again.
    expect(again.map((e) => e.id)).toEqual([1, 2, 3].map((seq) => `${oldClientId}-${seq}`))
    server.proxy.setOnline(true)
    expect(await restored.synced({ timeoutMs: 30_000 })).toEqual({ _tag: 'synced' })

    expect(await sales(server, 'order/o2')).toEqual([1, 2, 'a', 'b', 'c'])
    const ledger = await server.entries('order/o2')
    for (const [i, entry] of again.entries()) {
      const outcome = await restored.outcome(entry.id)
      expect(outcome._tag, `outcome of sale ${['a', 'b', 'c'][i]}`).toBe('appended')
      if (outcome._tag !== 'appended') continue
      const at = ledger.find(
        (e) => e.partition === outcome.partition && e.offset === outcome.offset,
      )
      expect(at?.data).toEqual({ sale: ['a', 'b', 'c'][i] })
    }
    expect((await restored.load<{ lines: number }>('order/o2')).confirmed).toEqual({ lines: 5 })
  }, 60_000)
})

function open(server: EdgeServer, idb: IDBFactory, name: string): Client {
  return server.open({ idb, random: seededRandom(testSeed(name)) })
}

/** The sales of an entity's ledger in the log, in version order, by their data. */
async function sales(server: EdgeServer, entity: string): Promise<unknown[]> {
  return (await server.entries(entity)).map((e) => (e.data as { sale: unknown }).sale)
}

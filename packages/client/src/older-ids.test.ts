// Goal: findings A and B of the product simulation (issue 14) — a till that met a device restore
// and a log restore in one life (a double disaster) lands every sale in the log exactly once:
// A. the entries of a clientId the database used before its restore recovery are put back when
//    the log is restored to a copy that lacks them (the welcome answers their high-water marks);
// B. the same sales recovered twice, numbered differently each time, land once (a reissued entry
//    keeps the id it had first, `origin`, and the log dedupes on it and its content).
// Method: the real client (fake-indexeddb) and the real relay on SQLite and on PostgreSQL behind
// the test proxy. A device backup is `copyDatabase`; a log backup copies the stopped relay's
// log (`bump-generation` as the operator would run it), or the relay starts on an empty log.
// Sales are told apart by their data, not their ids: recovered sales move to other clientIds.
import 'fake-indexeddb/auto'
import { describe, expect, it } from 'vitest'
import { IDBFactory } from 'fake-indexeddb'
import { bumpGeneration } from '../test-support/edge-api.ts'
import { LOG_KINDS, useEdgeServers } from '../test-support/edge-relay.ts'
import type { EdgeServer } from '../test-support/edge-relay.ts'
import { copyDatabase, deleteDatabase } from '../test-support/idb-copy.ts'
import { seededRandom, testSeed } from '../test-support/setup.ts'
import type { Client } from './index.ts'

const start = useEdgeServers()

describe.each(LOG_KINDS)(
  'issue 14: a device restore and a log restore together (%s log)',
  (kind) => {
    it('finding A: entries of the clientId before a restore recovery are put back into a restored log', async () => {
      // Method: the log is backed up empty. Offline, the till sells 1 and 2; its database is
      // copied; online it syncs and sells 3 (clientId C1). The copy is restored: the restore
      // recovery moves it onto C2, and it sells 4 under C2. Then the log is put back to the
      // empty backup (generation bumped). On 878ded0 the till puts back only C2's sale 4: sales
      // 1, 2, 3 (acked, in its confirmed history under C1) are gone and `outcome()` says appended.
      const server = await start(kind)
      const live = new IDBFactory()
      const image = new IDBFactory()
      let till = open(server, live, 'a-1')
      expect(await till.synced()).toEqual({ _tag: 'synced' })
      await till.close()
      await server.stop()
      const empty = await server.backup()
      await server.start()

      server.proxy.setOnline(false)
      till = open(server, live, 'a-2')
      await till.append('order/o1', 'order.line', { sale: 1 })
      await till.append('order/o1', 'order.line', { sale: 2 })
      await till.close()
      await copyDatabase(live, image, 'till')
      server.proxy.setOnline(true)
      till = open(server, live, 'a-3')
      await till.append('order/o1', 'order.line', { sale: 3 })
      expect(await till.synced()).toEqual({ _tag: 'synced' })
      const first = till.status().clientId
      await till.close()

      await deleteDatabase(live, 'till')
      await copyDatabase(image, live, 'till')
      till = open(server, live, 'a-4')
      expect(await till.synced({ timeoutMs: 30_000 })).toEqual({ _tag: 'synced' })
      const sale4 = await till.append('order/o1', 'order.line', { sale: 4 })
      expect(await till.synced({ timeoutMs: 30_000 })).toEqual({ _tag: 'synced' })
      // The scenario: the recovery moved the database onto another clientId.
      expect(till.status().clientId).not.toBe(first)
      expect(sale4.clientId).not.toBe(first)
      expect(await sales(server, 'order/o1')).toEqual([1, 2, 3, 4])

      await server.stop()
      expect(bumpGeneration(empty).status).toBe(0)
      await server.start(empty)
      expect(await till.synced({ timeoutMs: 30_000 })).toEqual({ _tag: 'synced' })
      expect([...(await sales(server, 'order/o1'))].sort()).toEqual([1, 2, 3, 4])
      const snap = await till.load<{ lines: number }>('order/o1')
      expect(snap.confirmed).toEqual({ lines: 4 })
      expect(snap.pending).toEqual([])
    }, 90_000)

    it('finding B: the same sales recovered twice under another numbering land once', async () => {
      // Method: the till reads only order/o1 but writes order/o2 too, so an acked sale of o2 is
      // not held once it is acked. It syncs once (it knows the log); offline it sells s1 (o1), x (o2), s2 (o1); the database is
      // copied; online they sync. The relay then starts on an empty log: the till puts back what
      // it holds (s1, s2; x is forgotten) and moves them to C2 = C2-1, C2-2. The copy is
      // restored: it still knows the first log and holds s1, x, s2 in its outbox; it moves them
      // to the same derived C2 as C2-1, C2-2, C2-3, meets `id_conflict` on C2-2 and moves on to
      // C3. On 878ded0 s2 lands twice (as C2-2 and again under C3).
      const server = await start(kind)
      const token = () => server.token({ read: ['order/o1'], write: ['order/*'] })
      const live = new IDBFactory()
      const image = new IDBFactory()
      // The till knows the first log before it sells (a database that never met a log cannot
      // tell it changed).
      let till = open(server, live, 'b-0', token)
      expect(await till.synced()).toEqual({ _tag: 'synced' })
      await till.close()
      server.proxy.setOnline(false)
      till = open(server, live, 'b-1', token)
      await till.append('order/o1', 'order.line', { sale: 's1' })
      await till.append('order/o2', 'order.line', { sale: 'x' })
      await till.append('order/o1', 'order.line', { sale: 's2' })
      await till.close()
      await copyDatabase(live, image, 'till')
      server.proxy.setOnline(true)
      till = open(server, live, 'b-2', token)
      expect(await till.synced({ timeoutMs: 30_000 })).toEqual({ _tag: 'synced' })
      await till.close()

      await server.stop()
      await server.start(await server.freshPlace())
      till = open(server, live, 'b-3', token)
      expect(await till.synced({ timeoutMs: 30_000 })).toEqual({ _tag: 'synced' })
      expect(await sales(server, 'order/o1')).toEqual(['s1', 's2'])
      await till.close()

      await deleteDatabase(live, 'till')
      await copyDatabase(image, live, 'till')
      till = open(server, live, 'b-4', token)
      expect(await till.synced({ timeoutMs: 30_000 })).toEqual({ _tag: 'synced' })
      expect(await sales(server, 'order/o1')).toEqual(['s1', 's2'])
      expect(await sales(server, 'order/o2')).toEqual(['x'])
      const snap = await till.load<{ lines: number }>('order/o1')
      expect(snap.confirmed).toEqual({ lines: 2 })
      expect(snap.pending).toEqual([])
      expect(till.status().outboxEntries).toBe(0)
    }, 90_000)
  },
)

function open(
  server: EdgeServer,
  idb: IDBFactory,
  name: string,
  token?: () => Promise<string>,
): Client {
  return server.open({
    idb,
    random: seededRandom(testSeed(name)),
    ...(token === undefined ? {} : { token }),
  })
}

/** The sales of an entity's ledger in the log, in version order, by their data. */
async function sales(server: EdgeServer, entity: string): Promise<unknown[]> {
  return (await server.entries(entity)).map((e) => (e.data as { sale: unknown }).sale)
}

// Goal: issue 21 — the operator's commands around a log keep every sale exactly once for real
// tills: `ledgerline-relay backup` of a live SQLite log while two tills push, `restore` of that
// backup (the generation raised: the tills meet a log they have not seen and recover what it
// lacks, issue 12), and `migrate-sqlite` into PostgreSQL, after which the tills reconnect to a
// PostgreSQL relay and sell on with nothing lost, duplicated or skipped.
// Method: the real client (fake-indexeddb) and the real relay behind the edge tests' proxy; the
// built CLI as a child process, run while the relay keeps serving in this process. Sales are
// compared by data (recovered sales may move to a new clientId); each till must hold the log's
// ledger (same version, same state) at the end, so a skipped entry shows.
import 'fake-indexeddb/auto'
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { runRelayCli } from '../test-support/edge-api.ts'
import { LOG_KINDS, useEdgeServers } from '../test-support/edge-relay.ts'
import type { EdgeServer } from '../test-support/edge-relay.ts'
import { eventually, seededRandom, testSeed } from '../test-support/setup.ts'
import type { Client } from './index.ts'

const startEdgeServer = useEdgeServers()
const backups = mkdtempSync(join(tmpdir(), 'll-ops-backups-'))
afterAll(() => rmSync(backups, { recursive: true, force: true }))

/** Sales each till makes while the backup runs, at most; the loop stops earlier once it is done. */
const SALES_WHILE_BACKING_UP_MAX = 200

describe('backup and restore of a live SQLite log, with tills pushing', () => {
  it('backs up while two tills push; restoring it loses and doubles nothing', async () => {
    const server = await startEdgeServer('sqlite')
    if (server.place.kind !== 'sqlite') throw new Error('a SQLite place')
    const dataDir = server.place.dataDir
    const a = open(server, 'till-a')
    const b = open(server, 'till-b')
    const { sold, sell } = sales()
    for (const n of [1, 2, 3]) await sell(a, `a-${n}`)
    expect(await a.synced()).toEqual({ _tag: 'synced' })

    // The backup runs in a child process while both tills keep selling through this relay.
    const file = join(backups, 'live.sqlite')
    let backedUp = false
    const backup = runRelayCli(['backup', '--data', dataDir, '--to', file]).finally(() => {
      backedUp = true
    })
    const pushing = async (till: Client, name: string) => {
      for (let n = 1; n <= SALES_WHILE_BACKING_UP_MAX && !backedUp; n++) {
        await sell(till, `${name}-live-${n}`)
        await new Promise((r) => setTimeout(r, 5))
      }
    }
    await Promise.all([pushing(a, 'a'), pushing(b, 'b')])
    const made = await backup
    expect(made.output).toMatch(/backed up to .*: \d+ entries/)
    expect(made.status).toBe(0)
    for (const n of [4, 5]) await sell(b, `b-after-${n}`)
    expect(await a.synced()).toEqual({ _tag: 'synced' })
    expect(await b.synced()).toEqual({ _tag: 'synced' })
    const inBackup = Number(/: (\d+) entries/.exec(made.output)?.[1])
    expect(inBackup).toBeGreaterThanOrEqual(3)
    expect(inBackup).toBeLessThan(sold.length)

    // Restoring beside a running relay is refused and changes nothing.
    const refused = await runRelayCli(['restore', '--from', file, '--data', dataDir])
    expect(refused.output).toContain('in use by another relay')
    expect(refused.status).toBe(2)

    await server.stop()
    const restored = await runRelayCli(['restore', '--from', file, '--data', dataDir])
    expect(restored.output).toContain('now at generation 2')
    expect(restored.status).toBe(0)
    // The replaced log is kept beside the restored one.
    expect(readdirSync(dataDir).some((f) => f.startsWith('log.sqlite.before-restore-'))).toBe(true)
    expect(existsSync(file)).toBe(true)
    await server.start()
    await sell(a, 'a-restored-1')
    await sell(b, 'b-restored-1')
    await expectExactlyOnce(server, [a, b], sold)
  }, 120_000)
})

describe.skipIf(!LOG_KINDS.includes('postgres'))('migrate-sqlite with tills', () => {
  it('moves the log to PostgreSQL; the tills continue with nothing lost, doubled or skipped', async () => {
    const server = await startEdgeServer('sqlite')
    if (server.place.kind !== 'sqlite') throw new Error('a SQLite place')
    const dataDir = server.place.dataDir
    // An empty PostgreSQL database to move into (its own relay stopped at once).
    const pgServer = await startEdgeServer('postgres')
    const target = await pgServer.freshPlace()
    await pgServer.stop()
    if (target.kind !== 'postgres') throw new Error('a PostgreSQL place')

    const a = open(server, 'till-a')
    const b = open(server, 'till-b')
    const { sold, sell } = sales()
    for (const n of [1, 2, 3]) await sell(a, `a-${n}`)
    for (const n of [1, 2]) await sell(b, `b-${n}`)
    await a.append('stock/s1', 'stock.moved', { qty: 1 })
    expect(await a.synced()).toEqual({ _tag: 'synced' })
    // An oversale: the log corrects it; the correction must survive the move too.
    await b.append('stock/s1', 'stock.moved', { qty: -3 })
    expect(await b.synced()).toEqual({ _tag: 'synced' })
    await eventually(async () => (await a.load('order/o1')).version === 5, 10_000, 'a holds b')
    const identity = await server.relay.store.identity()

    await server.stop()
    // The tills sell on while the log moves.
    await sell(a, 'a-offline-1')
    await sell(b, 'b-offline-1')
    const moved = await runRelayCli([
      'migrate-sqlite',
      '--from',
      dataDir,
      '--database-url',
      target.url,
    ])
    expect(moved.output).toContain('verified')
    expect(moved.status).toBe(0)
    await server.start(target)
    // The same log: same id and generation, so the tills keep their cursors and clientIds.
    expect(await server.relay.store.identity()).toEqual(identity)
    await sell(b, 'b-postgres-1')
    await expectExactlyOnce(server, [a, b], sold)
    const stock = await server.entries('stock/s1')
    expect(stock.map((e) => e.kind)).toEqual(['stock.moved', 'stock.moved', 'stock.oversold'])
    for (const till of [a, b]) {
      expect((await till.load<{ onHand: number }>('stock/s1')).confirmed).toEqual({ onHand: 0 })
    }
  }, 120_000)
})

/** What the tills sold (by data), and a sale on `order/o1` that is recorded there first. */
function sales(): { sold: string[]; sell(till: Client, sale: string): Promise<void> } {
  const sold: string[] = []
  return {
    sold,
    async sell(till, sale) {
      sold.push(sale)
      await till.append('order/o1', 'order.line', { sale })
    },
  }
}

function open(server: EdgeServer, dbName: string): Client {
  return server.open({
    token: () => server.token({ sub: dbName }),
    dbName,
    random: seededRandom(testSeed(`relay-ops-${dbName}`)),
  })
}

/** Both tills synced; the log's order holds every sale once; each till holds what the log does. */
async function expectExactlyOnce(
  server: EdgeServer,
  tills: readonly Client[],
  sold: readonly string[],
): Promise<void> {
  for (const till of tills)
    expect(await till.synced({ timeoutMs: 30_000 })).toEqual({ _tag: 'synced' })
  const ledger = await server.entries('order/o1')
  const sales = ledger.map((e) => String((e.data as { sale: unknown }).sale))
  expect([...sales].sort()).toEqual([...sold].sort())
  for (const till of tills) {
    await eventually(
      async () => (await till.load('order/o1')).version === ledger.length,
      20_000,
      'the till to hold the whole ledger',
    )
    const snap = await till.load<{ lines: number }>('order/o1')
    expect(snap.confirmed).toEqual({ lines: ledger.length })
    expect(snap.pending).toEqual([])
  }
}

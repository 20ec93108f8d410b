// Goal: issue 12 case 4 — a server log restored from a backup (or replaced by a new one) does not
// livelock the tills that synced with the lost log, loses nothing they still hold, and delivers
// the entries written after it, so they converge again (guarantees 2 and 5).
// Method: the real client (fake-indexeddb) with a wire spy, and the real relay on SQLite and on
// PostgreSQL behind the test proxy. The till sells 1..3 and syncs; the log is backed up while its
// relay is stopped (directory copy / `CREATE DATABASE … TEMPLATE`); the till sells 4..6 and syncs
// (acked, received back, in its confirmed history). Then the relay starts on the backup (with the
// operator's `bump-generation`), or on an empty log, and the till sells 7 while a second till
// sells on the same order. Sales are compared by data, not id: recovered sales may move to a new
// clientId. Hot loops are counted (pushes, sockets) over a 3 s window with wide margins: on
// 3a8bfae one client makes thousands of `seq_gap` pushes in that time.
import 'fake-indexeddb/auto'
import { describe, expect, it } from 'vitest'
import { bumpGeneration } from '../test-support/edge-api.ts'
import { LOG_KINDS, useEdgeServers } from '../test-support/edge-relay.ts'
import type { EdgeServer, LogKind, LogPlace } from '../test-support/edge-relay.ts'
import { eventually, seededRandom, testSeed } from '../test-support/setup.ts'
import { createWireSpy } from '../test-support/wire-spy.ts'
import type { WireSpy } from '../test-support/wire-spy.ts'
import type { Client } from './index.ts'

/** Most pushes (and sockets) one till may make in the 3 s window: a few, never thousands. */
const PUSHES_IN_WINDOW_MAX = 30
const SOCKETS_IN_WINDOW_MAX = 10
const WINDOW_MS = 3_000

const startEdgeServer = useEdgeServers()

describe.each(LOG_KINDS)('issue 12 case 4: a restored or replaced server log (%s)', (kind) => {
  it('restored from a backup with the generation bumped: no livelock, nothing held is lost, the tills converge', async () => {
    const run = await syncThenLoseTheTail(kind)
    const bumped = bumpGeneration(run.backup)
    await run.server.start(run.backup)
    expect(await recoversExactly(run, 7)).toHaveLength(8)
    // The operator's command exists and worked (checked last: the outcome above matters more).
    expect(bumped.status, `bump-generation: ${bumped.output}`).toBe(0)
  }, 90_000)

  it('replaced by an empty log (another log id): no livelock, everything held is re-sent once', async () => {
    const run = await syncThenLoseTheTail(kind)
    await run.server.start(await run.server.freshPlace())
    expect(await recoversExactly(run, 7)).toHaveLength(8)
  }, 90_000)

  it('restored without a generation bump: a repeated seq_gap backs off into a typed status, never a hot loop', async () => {
    // The log's identity looks unchanged, so the till cannot know; it must not spin, must say
    // why it is stuck, and must keep the sale it could not send.
    const run = await syncThenLoseTheTail(kind)
    await run.server.start(run.backup)
    await run.till.append('order/o1', 'order.line', { sale: 7 })
    await eventually(
      () => run.spy.count('sent', 'push', run.restartedAt) > 0,
      10_000,
      'a push to the restored log',
    )
    const since = Date.now()
    await new Promise((r) => setTimeout(r, WINDOW_MS))
    expect(run.spy.count('sent', 'push', since)).toBeLessThanOrEqual(PUSHES_IN_WINDOW_MAX)
    expect(run.spy.count('sent', 'hello', since)).toBeLessThanOrEqual(SOCKETS_IN_WINDOW_MAX)
    expect(run.till.status().lastError?.kind).toBe('seq_gap')
    expect(run.till.status().outboxEntries).toBeGreaterThanOrEqual(1)
  }, 90_000)
})

interface Run {
  readonly server: EdgeServer
  readonly till: Client
  readonly other: Client
  readonly spy: WireSpy
  readonly backup: LogPlace
  /** When the relay went down before the restore (ms epoch). */
  readonly restartedAt: number
}

/** Sales 1..3 synced and backed up; 4..6 synced after the backup (the tail the backup lacks). */
async function syncThenLoseTheTail(kind: LogKind): Promise<Run> {
  const server = await startEdgeServer(kind)
  const spy = createWireSpy()
  const till = open(server, 'till', spy)
  const other = open(server, 'other', createWireSpy())
  for (const sale of [1, 2, 3]) await till.append('order/o1', 'order.line', { sale })
  expect(await till.synced()).toEqual({ _tag: 'synced' })
  expect(await other.synced()).toEqual({ _tag: 'synced' })
  await server.stop()
  const backup = await server.backup()
  await server.start()
  for (const sale of [4, 5, 6]) await till.append('order/o1', 'order.line', { sale })
  expect(await till.synced()).toEqual({ _tag: 'synced' })
  expect(await other.synced()).toEqual({ _tag: 'synced' })
  expect((await till.load<{ lines: number }>('order/o1')).confirmed).toEqual({ lines: 6 })
  const restartedAt = Date.now()
  await server.stop()
  return { server, till, other, spy, backup, restartedAt }
}

/** After the log lost sales 4..6 (or all): the tills recover them, sell on, and converge. */
async function recoversExactly(run: Run, nextSale: number): Promise<readonly unknown[]> {
  const { server, till, other, spy } = run
  await till.append('order/o1', 'order.line', { sale: nextSale })
  // No hot loop while it recovers: count from the moment the relay is back.
  const since = Date.now()
  await new Promise((r) => setTimeout(r, WINDOW_MS))
  expect(spy.count('sent', 'push', since), 'pushes in 3 s').toBeLessThanOrEqual(
    PUSHES_IN_WINDOW_MAX,
  )
  expect(spy.count('sent', 'hello', since), 'sockets in 3 s').toBeLessThanOrEqual(
    SOCKETS_IN_WINDOW_MAX,
  )
  // The second till sells on the same order after the restore: the till must receive it even
  // though its cursor had passed these offsets in the lost log.
  await other.append('order/o1', 'order.line', { sale: 'other' })
  expect(await till.synced({ timeoutMs: 30_000 })).toEqual({ _tag: 'synced' })
  expect(await other.synced({ timeoutMs: 30_000 })).toEqual({ _tag: 'synced' })
  const ledger = await server.entries('order/o1')
  const sold = ledger.map((e) => (e.data as { sale: unknown }).sale)
  // Everything the till sold is in the log exactly once; nothing it held was lost.
  expect([...sold].sort(byValue)).toEqual([1, 2, 3, 4, 5, 6, 7, 'other'].sort(byValue))
  // Both tills hold what the log holds: same version, same state.
  await eventually(
    async () => (await till.load('order/o1')).version === ledger.length,
    10_000,
    'the till to receive the restored log',
  )
  for (const c of [till, other]) {
    const snap = await c.load<{ lines: number }>('order/o1')
    expect(snap.version).toBe(ledger.length)
    expect(snap.confirmed).toEqual({ lines: ledger.length })
    expect(snap.pending).toEqual([])
  }
  return ledger
}

function open(server: EdgeServer, dbName: string, spy: WireSpy): Client {
  return server.open({
    token: () => server.token({ sub: dbName }),
    dbName,
    WebSocket: spy.WebSocket,
    random: seededRandom(testSeed(`log-identity-${dbName}`)),
  })
}

function byValue(a: unknown, b: unknown): number {
  return String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0
}

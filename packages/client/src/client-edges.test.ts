// Goal: the edge scenarios of issues 12 and 13, end to end through the real client, against a
// relay that already keeps what the edges design asks of the server log (content digests and
// `id_conflict`, deferrals, log identity, subjects bound to clientIds, `renew`, acks in parts,
// correction references): restored device databases land every sale once and lose none (cases
// 1 and 2, and the same backup restored twice); a restored or replaced log is recovered from
// without a hot loop (case 4); a deferred entry is held while later ones flow (case 7); a
// token is renewed on the live socket (case 8); `client_taken` parks the client with its
// outbox (case 3, the client's half); `disconnect()` pauses; an ack in parts with correction
// references (#13 case 2).
// The real-relay versions of these (`restore.test.ts`, `log-identity.test.ts`, …) need the
// log and relay work of the same design.
// Method: test-support/fake-relay.ts on loopback, fake-indexeddb, device backups with
// test-support/idb-copy.ts. Sales are told apart by their data, not their ids (a recovered
// sale may move to a new clientId).
import 'fake-indexeddb/auto'
import { afterEach, describe, expect, it } from 'vitest'
import { IDBFactory } from 'fake-indexeddb'
import { defineEntity, defineSchema } from '@ledgerline/core'
import { createFakeRelay, type FakeRelay } from '../test-support/fake-relay.ts'
import { copyDatabase, deleteDatabase } from '../test-support/idb-copy.ts'
import { card, order, stock } from '../test-support/schema.ts'
import { eventually, makeClient, schema, seededRandom, testSeed } from '../test-support/setup.ts'
import type { Client, ClientOptions } from './client.ts'

const TOKEN = 'x.eyJ0ZW5hbnQiOiJ0MSJ9.y' // payload {"tenant":"t1"}
let relay: FakeRelay | undefined
const clients: Client[] = []
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close()
  await relay?.close()
  relay = undefined
})

function open(idb: IDBFactory, name: string, extra: Partial<ClientOptions> = {}): Client {
  const c = makeClient({
    url: (relay as FakeRelay).url,
    token: TOKEN,
    idb,
    dbName: 'till',
    random: seededRandom(testSeed(name)),
    ...extra,
  })
  clients.push(c)
  return c
}

async function closeAll(): Promise<void> {
  for (const c of clients.splice(0)) await c.close()
}

/** The sales of an entity in the log, in version order, by their data. */
function sales(entity: string): unknown[] {
  return (relay as FakeRelay).log
    .filter((e) => e.entity === entity)
    .map((e) => (e.data as { sale: unknown }).sale)
}

describe('issue 12: restored device databases (steerable relay)', () => {
  it('case 1: a copy taken offline and restored after the till synced sells every sale once', async () => {
    relay = await createFakeRelay({ schema })
    const live = new IDBFactory()
    const image = new IDBFactory()
    const offline = open(live, 'c1-offline', { url: 'ws://127.0.0.1:9/sync' })
    await offline.append('order/o1', 'order.line', { sale: 1 })
    await offline.append('order/o1', 'order.line', { sale: 2 })
    await closeAll()
    await copyDatabase(live, image, 'till')
    const till = open(live, 'c1-online')
    expect(await till.synced()).toEqual({ _tag: 'synced' })
    await till.append('order/o1', 'order.line', { sale: 3 })
    expect(await till.synced()).toEqual({ _tag: 'synced' })
    await closeAll()
    await deleteDatabase(live, 'till')
    await copyDatabase(image, live, 'till')
    const restored = open(live, 'c1-restored')
    expect(await restored.synced()).toEqual({ _tag: 'synced' })
    expect(sales('order/o1')).toEqual([1, 2, 3])
    // The next sale is not clientSeq 3 of the old id again.
    const next = await restored.append('order/o1', 'order.line', { sale: 4 })
    expect(await restored.synced()).toEqual({ _tag: 'synced' })
    expect(sales('order/o1')).toEqual([1, 2, 3, 4])
    expect(next.clientId).not.toBe(relay.log[0]?.clientId)
    expect((await restored.load<{ lines: number }>('order/o1')).confirmed).toEqual({ lines: 4 })
  })

  it('case 2: a copy used offline again loses no sale, and each outcome names its own sale', async () => {
    relay = await createFakeRelay({ schema })
    const live = new IDBFactory()
    const image = new IDBFactory()
    expect(await open(live, 'c2-first').synced()).toEqual({ _tag: 'synced' })
    await closeAll()
    await copyDatabase(live, image, 'till')
    const till = open(live, 'c2-sells')
    await till.append('order/o2', 'order.line', { sale: 1 })
    await till.append('order/o2', 'order.line', { sale: 2 })
    expect(await till.synced()).toEqual({ _tag: 'synced' })
    await closeAll()
    await deleteDatabase(live, 'till')
    await copyDatabase(image, live, 'till')
    const offline = open(live, 'c2-offline', { url: 'ws://127.0.0.1:9/sync' })
    const again = []
    for (const sale of ['a', 'b', 'c']) {
      again.push(await offline.append('order/o2', 'order.line', { sale }))
    }
    await closeAll()
    const pushesBefore = relay.seen.push
    const restored = open(live, 'c2-restored')
    expect(await restored.synced()).toEqual({ _tag: 'synced' })
    expect(sales('order/o2')).toEqual([1, 2, 'a', 'b', 'c'])
    for (const [i, e] of again.entries()) {
      const outcome = await restored.outcome(e.id)
      expect(outcome._tag).toBe('appended')
      if (outcome._tag !== 'appended') continue
      const at = relay.log.find(
        (x) => x.partition === outcome.partition && x.offset === outcome.offset,
      )
      expect(at?.data).toEqual({ sale: ['a', 'b', 'c'][i] })
    }
    // A confirm push, then the moved sales: a handful of pushes, not a loop.
    expect(relay.seen.push - pushesBefore).toBeLessThanOrEqual(4)
  })

  it('restoring the same copy twice lands its sales once: the second restore derives the same ids', async () => {
    relay = await createFakeRelay({ schema })
    const live = new IDBFactory()
    const image = new IDBFactory()
    const till = open(live, 'twice-first')
    await till.append('order/o3', 'order.line', { sale: 1 })
    expect(await till.synced()).toEqual({ _tag: 'synced' })
    await closeAll()
    await copyDatabase(live, image, 'till')
    const back = open(live, 'twice-sells')
    await back.append('order/o3', 'order.line', { sale: 2 })
    expect(await back.synced()).toEqual({ _tag: 'synced' })
    await closeAll()
    // The copy sells offline (its clientSeq 2 is another sale), and is restored twice over.
    const copy = new IDBFactory()
    await copyDatabase(image, copy, 'till')
    const offline = open(copy, 'twice-offline', { url: 'ws://127.0.0.1:9/sync' })
    await offline.append('order/o3', 'order.line', { sale: 'x' })
    await closeAll()
    const sold = new IDBFactory()
    await copyDatabase(copy, sold, 'till')
    for (const round of [1, 2]) {
      const target = new IDBFactory()
      await copyDatabase(sold, target, 'till')
      const restored = open(target, `twice-${round}`)
      expect(await restored.synced()).toEqual({ _tag: 'synced' })
      await closeAll()
    }
    expect(sales('order/o3')).toEqual([1, 2, 'x'])
  })
})

describe('issue 12 case 4: a restored or replaced server log (steerable relay)', () => {
  async function syncedThenLost() {
    relay = await createFakeRelay({ schema })
    const idb = new IDBFactory()
    const till = open(idb, 'log-till')
    for (const sale of [1, 2, 3]) await till.append('order/o4', 'order.line', { sale })
    expect(await till.synced()).toEqual({ _tag: 'synced' })
    const backup = relay.backup()
    for (const sale of [4, 5, 6]) await till.append('order/o4', 'order.line', { sale })
    expect(await till.synced()).toEqual({ _tag: 'synced' })
    expect((await till.load<{ lines: number }>('order/o4')).confirmed).toEqual({ lines: 6 })
    return { till, backup, relay }
  }

  async function convergesOnce(till: Client, fake: FakeRelay) {
    await till.append('order/o4', 'order.line', { sale: 7 })
    expect(await till.synced()).toEqual({ _tag: 'synced' })
    expect([...sales('order/o4')].sort()).toEqual([1, 2, 3, 4, 5, 6, 7])
    await eventually(async () => (await till.load('order/o4')).version === 7, 5_000, 'v7')
    const state = await till.load<{ lines: number }>('order/o4')
    expect(state).toMatchObject({ version: 7, confirmed: { lines: 7 }, pending: [] })
    // Another till sells on the same order: the till receives it although its old cursor had
    // passed that offset in the lost log.
    const other = open(new IDBFactory(), 'log-other', { dbName: 'other' })
    await other.append('order/o4', 'order.line', { sale: 'other' })
    expect(await other.synced()).toEqual({ _tag: 'synced' })
    await eventually(async () => (await till.load('order/o4')).version === 8, 5_000, 'v8')
    return fake.log.filter((e) => e.entity === 'order/o4')
  }

  it('restored from a backup with the generation raised: what it lacks is sent again once', async () => {
    const { till, backup, relay: fake } = await syncedThenLost()
    fake.identity = { ...fake.identity, generation: 2 }
    fake.restore(backup)
    expect(await convergesOnce(till, fake)).toHaveLength(8)
  })

  it('replaced by an empty log (another id): everything this till holds is sent again once', async () => {
    const { till, relay: fake } = await syncedThenLost()
    fake.identity = { id: 'another-log-0123456789ab', generation: 1 }
    fake.restore(undefined)
    expect(await convergesOnce(till, fake)).toHaveLength(8)
  })

  it('restored without the generation raised: a repeated seq_gap backs off into a typed status', async () => {
    const { till, backup, relay: fake } = await syncedThenLost()
    fake.restore(backup)
    await till.append('order/o4', 'order.line', { sale: 7 })
    await eventually(() => till.status().lastError?.kind === 'seq_gap', 10_000, 'seq_gap')
    const before = fake.seen.push
    await new Promise((r) => setTimeout(r, 1_500))
    // Backing off (250, 500, 1000 ms …): a few pushes, never a loop.
    expect(fake.seen.push - before).toBeLessThanOrEqual(4)
    expect(till.status()).toMatchObject({ online: true, outboxEntries: 1 })
  })
})

describe('issue 12 cases 3, 7 and 8, issue 13 case 2 (steerable relay)', () => {
  it('holds a deferred entry with a visible status while later ones flow, and lands it once the relay knows its type', async () => {
    const loyalty = defineEntity({
      type: 'loyalty',
      initial: { points: 0 },
      reduce: (s: { points: number }, e) => ({ points: s.points + Number(e.data.points) }),
    })
    const appSchema = defineSchema(stock, card, order, loyalty)
    relay = await createFakeRelay({ schema, retryAfterMs: 60_000 })
    const till = open(new IDBFactory(), 'deferred', { schema: appSchema })
    const points = await till.append('loyalty/c1', 'loyalty.earned', { points: 5 })
    const line = await till.append('order/o5', 'order.line', { n: 1 })
    expect(await till.outcome(line.id, { waitMs: 5_000 })).toMatchObject({ _tag: 'appended' })
    await eventually(() => till.status().held === 1, 5_000, 'held')
    expect(till.status().heldReasons).toEqual([{ code: 'unknown_type', count: 1 }])
    expect(await till.outcome(points.id)).toEqual({ _tag: 'outbox', stage: 'device' })
    // The relay's schema ships; a reconnect sends the held entry again, at once.
    relay.schema = appSchema
    relay.dropAll()
    expect(await till.outcome(points.id, { waitMs: 10_000 })).toMatchObject({ _tag: 'appended' })
    expect(await till.synced()).toEqual({ _tag: 'synced' })
    expect(till.status()).toMatchObject({ held: 0, heldReasons: [] })
    expect(relay.log.filter((e) => e.entity === 'loyalty/c1').map((e) => e.id)).toEqual([points.id])
  })

  it('renews a short-lived token on the live socket: one connection, nothing sent twice', async () => {
    relay = await createFakeRelay({ schema })
    let issued = 0
    relay.auth = () => ({ subject: 'till', expiresAt: Date.now() + 1_500 })
    const till = open(new IDBFactory(), 'renew', {
      token: async () => `t${++issued}`,
      tenant: 't1',
    })
    const ids: string[] = []
    for (let i = 0; i < 12; i++) {
      ids.push((await till.append('order/o6', 'order.line', { i })).id)
      await new Promise((r) => setTimeout(r, 200))
    }
    expect(await till.synced()).toEqual({ _tag: 'synced' })
    expect(relay.seen.hello).toBe(1)
    expect(relay.seen.renew).toBeGreaterThanOrEqual(1)
    expect(issued).toBeGreaterThanOrEqual(2)
    expect(relay.log.filter((e) => e.entity === 'order/o6').map((e) => e.id)).toEqual(ids)
  })

  it('parks on client_taken: keeps the outbox, says why, and tries again on reconnect()', async () => {
    relay = await createFakeRelay({ schema })
    let subject = 'alice'
    relay.auth = () => ({ subject, expiresAt: Date.now() + 3_600_000 })
    const idb = new IDBFactory()
    const till = open(idb, 'taken')
    await till.append('order/o7', 'order.line', { n: 1 })
    expect(await till.synced()).toEqual({ _tag: 'synced' })
    subject = 'bob'
    relay.dropAll()
    await till.append('order/o7', 'order.line', { n: 2 })
    await eventually(() => till.status().lastError?.kind === 'client_taken', 5_000, 'taken')
    const hellos = relay.seen.hello
    await new Promise((r) => setTimeout(r, 1_000))
    expect(relay.seen.hello).toBe(hellos)
    expect(till.status().outboxEntries).toBe(1)
    subject = 'alice'
    till.reconnect()
    expect(await till.synced()).toEqual({ _tag: 'synced' })
  })

  it('pauses on disconnect() (status paused, appends kept) and syncs again on reconnect()', async () => {
    relay = await createFakeRelay({ schema })
    const till = open(new IDBFactory(), 'pause')
    expect(await till.synced()).toEqual({ _tag: 'synced' })
    till.disconnect()
    await eventually(() => till.status().paused && !till.status().online, 5_000, 'paused')
    const hellos = relay.seen.hello
    await till.append('order/o8', 'order.line', { n: 1 })
    await new Promise((r) => setTimeout(r, 500))
    expect(relay.seen.hello).toBe(hellos)
    expect(till.status()).toMatchObject({ outboxEntries: 1, paused: true })
    till.reconnect()
    expect(await till.synced()).toEqual({ _tag: 'synced' })
    expect(till.status().paused).toBe(false)
    expect(relay.log.filter((e) => e.entity === 'order/o8')).toHaveLength(1)
  })

  it('takes acks in parts with correction references; the corrections reach the feed by the pages', async () => {
    relay = await createFakeRelay({ schema, ackPartResults: 3 })
    const till = open(new IDBFactory(), 'parts')
    const sold = await till.appendMany(
      Array.from({ length: 10 }, () => ({
        entity: 'stock/s1',
        kind: 'stock.moved',
        data: { qty: -1 },
      })),
    )
    expect(await till.synced()).toEqual({ _tag: 'synced' })
    const moves = relay.log.filter((e) => e.kind === 'stock.moved')
    expect(moves.map((e) => e.id)).toEqual(sold.map((e) => e.id))
    await eventually(async () => (await till.corrections(100)).length === 10, 5_000, 'feed')
    expect((await till.load<{ onHand: number }>('stock/s1')).confirmed).toEqual({ onHand: 0 })
  })
})

// Goal: the client side of the store hub (issue 15): `stored` keeps outbox records (stage
// `store`) until head office's result, which comes by a page or by a resend; the store layer
// shows other registers' entries while head office is cut off; a url list fails over and
// comes back; a hub lost with its disk loses nothing.
// Method: a fake head office (test-support/fake-relay.ts) behind a fake hub
// (test-support/fake-hub.ts), both speaking protocol 3 over ws on loopback; fake-indexeddb.
import { afterEach, describe, expect, it } from 'vitest'
import { IDBFactory } from 'fake-indexeddb'
import { createFakeHub, type FakeHub } from '../test-support/fake-hub.ts'
import { createFakeRelay, type FakeRelay } from '../test-support/fake-relay.ts'
import { fakeLocks } from '../test-support/locks.ts'
import { eventually, makeClient, schema, seededRandom, testSeed } from '../test-support/setup.ts'
import type { Client } from './client.ts'

const TOKEN = 'x.eyJ0ZW5hbnQiOiJ0MSJ9.y' // payload {"tenant":"t1"}; the fakes check nothing
let hq: FakeRelay | undefined
let hubs: FakeHub[] = []
const clients: Client[] = []
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close()
  for (const h of hubs.splice(0)) await h.close().catch(() => {})
  await hq?.close()
  hq = undefined
  hubs = []
})

async function setUp(connected = true): Promise<{ hq: FakeRelay; hub: FakeHub }> {
  hq = await createFakeRelay({ schema })
  const hub = await createFakeHub(hq, { connected })
  hubs.push(hub)
  return { hq, hub }
}

function register(url: string | readonly string[], name: string, idb = new IDBFactory()): Client {
  const c = makeClient({ url, token: TOKEN, idb, random: seededRandom(testSeed(name)) })
  clients.push(c)
  return c
}

describe('client through a store hub', () => {
  it('keeps a stored entry in the outbox (stage store) until head office confirms it', async () => {
    // Goal: no record is deleted on `stored`; the page with head office's positions settles it.
    const { hq, hub } = await setUp(false)
    const r1 = register(hub.url, 'stored-r1')
    const sale = await r1.append('stock/s1:grinder', 'stock.moved', { qty: 5 })
    await eventually(() => r1.status().storedEntries === 1)
    expect(await r1.outcome(sale.id)).toEqual({ _tag: 'outbox', stage: 'store' })
    const s = r1.status()
    expect(s).toMatchObject({
      outboxEntries: 1,
      storedEntries: 1,
      relay: { url: hub.url, role: 'hub' },
      headOffice: 'unreachable',
    })
    expect(hq.log).toHaveLength(0)
    hub.heal()
    await eventually(() => r1.status().outboxEntries === 0)
    expect(await r1.outcome(sale.id)).toMatchObject({ _tag: 'appended', version: 1 })
    expect(r1.status()).toMatchObject({ storedEntries: 0, headOffice: 'reachable' })
    expect(hq.log.map((e) => e.id)).toEqual([sale.id])
    expect(await r1.synced({ timeoutMs: 10_000 })).toEqual({ _tag: 'synced' })
  })

  it('shows other registers’ entries in the store layer while head office is cut off', async () => {
    // Goal: view = confirmed, then the store layer, then own pending; confirmed replaces it.
    const { hq, hub } = await setUp(true)
    const r1 = register(hub.url, 'layer-r1')
    const r2 = register(hub.url, 'layer-r2')
    await r1.append('stock/s1:grinder', 'stock.moved', { qty: 1 })
    expect(await r1.synced({ timeoutMs: 10_000 })).toEqual({ _tag: 'synced' })
    const grinder = 'stock/s1:grinder'
    r2.subscribe(grinder, () => {})
    await eventually(() => r2.get<{ onHand: number }>(grinder).confirmed.onHand === 1)
    hub.cut()
    const sale = await r1.append(grinder, 'stock.moved', { qty: -1 })
    await eventually(() => r2.get(grinder).store.length === 1)
    const seen = r2.get<{ onHand: number }>(grinder)
    expect(seen.store.map((e) => e.id)).toEqual([sale.id])
    expect(seen.view).toEqual({ onHand: 0 })
    expect(seen.confirmed).toEqual({ onHand: 1 })
    // Own entries are pending, never store.
    expect(r1.get(grinder).store).toEqual([])
    expect(r1.get<{ onHand: number }>(grinder).view).toEqual({ onHand: 0 })
    // Register 2 sells something else meanwhile: its own pending folds after the store layer.
    await r2.append(grinder, 'stock.moved', { qty: 3 })
    expect(r2.get<{ onHand: number }>(grinder).view).toEqual({ onHand: 3 })
    // While head office confirms both (the fake hub tells the store removal before the page),
    // the view never misses register 1's sale nor counts it twice.
    const views: number[] = []
    r2.subscribe(grinder, () => views.push(r2.get<{ onHand: number }>(grinder).view.onHand))
    hub.heal()
    await eventually(
      () => r2.get(grinder).store.length === 0 && r2.get(grinder).pending.length === 0,
    )
    expect(r2.get<{ onHand: number }>(grinder)).toMatchObject({
      confirmed: { onHand: 3 },
      view: { onHand: 3 },
      version: 3,
    })
    expect(new Set(hq.log.map((e) => e.id)).size).toBe(3)
    expect(views.length).toBeGreaterThan(0)
    expect(views.every((v) => v === 3)).toBe(true)
  })

  it('tells other tabs the store layer the leader holds, and the stage counts', async () => {
    // Goal: the layer lives in the leader's memory; a tab that does not lead shows it too.
    const { hub } = await setUp(false)
    const r1 = register(hub.url, 'tabs-r1')
    const idb = new IDBFactory()
    const locks = fakeLocks()
    const tabOptions = { locks, BroadcastChannel: globalThis.BroadcastChannel, dbName: 'r2' }
    const leader = makeClient({ url: hub.url, token: TOKEN, idb, ...tabOptions })
    clients.push(leader)
    await eventually(() => leader.status().online)
    const follower = makeClient({ url: hub.url, token: TOKEN, idb, ...tabOptions })
    clients.push(follower)
    const grinder = 'stock/s1:grinder'
    follower.subscribe(grinder, () => {})
    const sale = await r1.append(grinder, 'stock.moved', { qty: 2 })
    await eventually(() => follower.get(grinder).store.length === 1)
    expect(follower.status().leader).toBe(false)
    expect(follower.get(grinder).store.map((e) => e.id)).toEqual([sale.id])
    expect(follower.get<{ onHand: number }>(grinder).view).toEqual({ onHand: 2 })
    // A tab that opens later asks the leader for the whole layer.
    const late = makeClient({ url: hub.url, token: TOKEN, idb, ...tabOptions })
    clients.push(late)
    late.subscribe(grinder, () => {})
    await eventually(() => late.get(grinder).store.length === 1)
    // The follower's own append is stored on the hub: its stage reaches every tab.
    await follower.append('order/o9', 'order.line', {})
    await eventually(() => follower.status().storedEntries === 1)
    expect(follower.status()).toMatchObject({ deviceEntries: 0, headOffice: 'unreachable' })
    expect(follower.status().relay).toEqual({ url: hub.url, role: 'hub' })
  })

  it('learns a refusal of a stored entry by resending it', async () => {
    // Goal: (b) of the design: a resend gets head office's result once the hub knows it.
    const { hq, hub } = await setUp(false)
    const r1 = register(hub.url, 'refused-r1')
    const redeem = await r1.append(
      'card/c1',
      'card.redeemed',
      { amount: 10 },
      { intent: 'request', expect: 0 },
    )
    await eventually(async () => r1.status().storedEntries === 1)
    hub.heal()
    // Refused at head office: no page brings it, the periodic resend does.
    const outcome = await r1.outcome(redeem.id, { waitMs: 30_000 })
    expect(outcome).toMatchObject({ _tag: 'refused' })
    await eventually(() => r1.status().outboxEntries === 0 && r1.status().storedEntries === 0)
    expect(hq.log).toHaveLength(0)
    expect(hub.pushed.get(redeem.id) ?? 0).toBeGreaterThanOrEqual(2)
  })

  it('loses nothing when the hub dies with its disk: the register fails over to head office', async () => {
    // Goal: records stay until head office's result, so a lost store queue costs nothing, and
    // every entry lands at head office exactly once.
    const { hq, hub } = await setUp(false)
    const r1 = register([hub.url, hq.url], 'failover-r1')
    const r2 = register([hub.url, hq.url], 'failover-r2')
    const ids: string[] = []
    for (let i = 0; i < 5; i++) {
      ids.push((await r1.append('order/o1', 'order.line', { i })).id)
      ids.push((await r2.append('order/o2', 'order.line', { i })).id)
    }
    await eventually(() => r1.status().storedEntries === 5 && r2.status().storedEntries === 5)
    await hub.kill()
    await eventually(() => r1.status().relay?.url === hq.url && r2.status().relay?.url === hq.url)
    expect(r1.status().relay).toEqual({ url: hq.url, role: 'head_office' })
    expect(await r1.synced({ timeoutMs: 20_000 })).toEqual({ _tag: 'synced' })
    expect(await r2.synced({ timeoutMs: 20_000 })).toEqual({ _tag: 'synced' })
    const logged = hq.log.map((e) => e.id)
    expect(logged.toSorted()).toEqual(ids.toSorted())
    expect(new Set(logged).size).toBe(logged.length)
    expect(r1.status()).toMatchObject({ storedEntries: 0, headOffice: 'reachable' })
  })

  it('moves back to the hub when it answers again, and an entry sent both ways lands once', async () => {
    // Goal: probing earlier relays; dedupe by id + digest across paths.
    const { hq, hub } = await setUp(true)
    await hub.kill()
    const r1 = register([hub.url, hq.url], 'probe-r1')
    await r1.append('order/o1', 'order.line', { n: 1 })
    expect(await r1.synced({ timeoutMs: 20_000 })).toEqual({ _tag: 'synced' })
    expect(r1.status().relay?.role).toBe('head_office')
    await hub.start()
    await eventually(() => r1.status().relay?.role === 'hub', 60_000)
    const second = await r1.append('order/o1', 'order.line', { n: 2 })
    expect(await r1.synced({ timeoutMs: 20_000 })).toEqual({ _tag: 'synced' })
    expect(await r1.outcome(second.id)).toMatchObject({ _tag: 'appended', version: 2 })
    // The same entry pushed directly too (a register that failed over mid-flight): once.
    expect(hq.forward([{ entry: second, subject: 'till' }])[0]).toMatchObject({
      status: 'duplicate',
    })
    expect(hq.log.filter((e) => e.id === second.id)).toHaveLength(1)
  }, 90_000)
})

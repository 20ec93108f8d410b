// Goal: the client's sync loop against a relay we can steer (lost acks, dropped sockets).
// Method: an in-memory relay speaking the real protocol over ws on loopback
// (test-support/fake-relay.ts); fake-indexeddb for storage. Integration against the real
// relay lives in client.test.ts.
import { afterEach, describe, expect, it } from 'vitest'
import { IDBFactory } from 'fake-indexeddb'
import { createFakeRelay, type FakeRelay } from '../test-support/fake-relay.ts'
import { eventually, makeClient, schema, seededRandom, testSeed } from '../test-support/setup.ts'
import type { Client } from './client.ts'

const TOKEN = 'x.eyJ0ZW5hbnQiOiJ0MSJ9.y' // payload {"tenant":"t1"}; the fake relay checks nothing
let relay: FakeRelay | undefined
const clients: Client[] = []
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close()
  await relay?.close()
  relay = undefined
})

describe('client against a steerable relay', () => {
  it('appends offline, then drains in order when the relay appears', async () => {
    // Goal: entries appended with no relay reachable are kept and sent exactly once later.
    const seed = testSeed('offline-drain')
    const idb = new IDBFactory()
    const offline = makeClient({
      url: 'ws://127.0.0.1:9/sync',
      token: TOKEN,
      idb,
      random: seededRandom(seed),
    })
    for (let i = 0; i < 20; i++) await offline.append('stock/a', 'stock.moved', { qty: 1 })
    expect(offline.status().outboxEntries).toBe(20)
    await offline.close()
    relay = await createFakeRelay({ schema })
    const c = makeClient({ url: relay.url, token: TOKEN, idb, random: seededRandom(seed + 1) })
    clients.push(c)
    expect(await c.synced({ timeoutMs: 20_000 })).toEqual({ _tag: 'synced' })
    expect(relay.log.map((e) => e.clientSeq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1))
    const snap = await c.load<{ onHand: number }>('stock/a')
    expect(snap.confirmed).toEqual({ onHand: 20 })
    expect(snap.version).toBe(20)
    expect(snap.pending).toEqual([])
    expect(c.status().outboxEntries).toBe(0)
  })

  it('survives lost acks and dropped sockets without duplicates or losses', async () => {
    // Goal: guarantee 2 (exactly once). Method: the relay swallows every third ack and
    // drops all sockets now and then while the client appends 300 entries in bursts.
    const seed = testSeed('lost-acks')
    relay = await createFakeRelay({ schema })
    let pushes = 0
    relay.onPush = () => ++pushes % 3 !== 0
    const c = makeClient({ url: relay.url, token: TOKEN, random: seededRandom(seed) })
    clients.push(c)
    for (let burst = 0; burst < 10; burst++) {
      await c.appendMany(
        Array.from({ length: 30 }, () => ({
          entity: 'order/o1',
          kind: 'order.line',
          data: { burst },
        })),
      )
      if (burst % 3 === 1) relay.dropAll()
      await new Promise((r) => setTimeout(r, 20))
    }
    relay.onPush = () => true
    relay.dropAll()
    expect(await c.synced({ timeoutMs: 30_000 })).toEqual({ _tag: 'synced' })
    const ids = relay.log.map((e) => e.id)
    expect(new Set(ids).size).toBe(300)
    expect(ids.length).toBe(300)
    expect((await c.load<{ lines: number }>('order/o1')).confirmed).toEqual({ lines: 300 })
  })

  it('gives outcomes for refused requests and feeds corrections', async () => {
    // Goal: a refused request shows its reason; an oversold fact yields a correction in the feed.
    relay = await createFakeRelay({ schema })
    const c = makeClient({
      url: relay.url,
      token: TOKEN,
      random: seededRandom(testSeed('outcomes')),
    })
    clients.push(c)
    const seen: string[] = []
    c.onCorrection((x) => seen.push(x.entry.kind))
    await c.append('card/g1', 'card.loaded', { amount: 10 })
    const redeem = await c.append('card/g1', 'card.redeemed', { amount: 50 }, { intent: 'request' })
    const sale = await c.append('stock/b', 'stock.moved', { qty: -2 })
    const refused = await c.outcome(redeem.id, { waitMs: 20_000 })
    expect(refused).toMatchObject({ _tag: 'refused', code: 'invariant' })
    expect(await c.outcome(sale.id, { waitMs: 20_000 })).toMatchObject({
      _tag: 'appended',
      version: 1,
    })
    await c.synced()
    await eventually(() => c.status().correctionsUnseen === 1, 10_000, 'correction counted')
    const feed = await c.corrections()
    expect(feed.map((x) => [x.entry.kind, x.of])).toEqual([['stock.oversold', sale.id]])
    expect(seen).toEqual(['stock.oversold'])
    expect((await c.load('stock/b')).confirmed).toEqual({ onHand: 0 })
    expect((await c.load('card/g1')).view).toEqual({ balance: 10 })
    await c.markCorrectionsSeen()
    expect(c.status().correctionsUnseen).toBe(0)
  })
})

// Goal: the client's guarantees end to end against the REAL relay (SQLite log, in-process,
// loopback, port 0): offline appends drain exactly once, lost acks and cut connections neither
// duplicate nor lose entries, two clients converge (with a correction), an expired token is
// renewed through the token function, refusals and corrections are visible, a full disk is a
// typed error that leaves nothing half-written, a wiped or restored database never reuses a
// clientSeq, and status moves as entries do.
// Method: fake-indexeddb (one factory per client), `ws` as WebSocket, a TCP proxy we control
// between client and relay to go offline and cut connections; randomness seeded and printed.
import 'fake-indexeddb/auto'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { IDBFactory } from 'fake-indexeddb'
import { injectQuota, type QuotaInjection } from '../test-support/quota.ts'
import { startProxy, startRelay, type Proxy, type TestRelay } from '../test-support/relay.ts'
import {
  eventually,
  makeClient,
  seededRandom,
  testSeed,
  type TestClientOptions,
} from '../test-support/setup.ts'
import type { Client, ClientStatus } from './client.ts'
import { isStorageFull } from './errors.ts'

let server: TestRelay
let proxy: Proxy
let injection: QuotaInjection | undefined
const clients: Client[] = []

beforeEach(async () => {
  server = await startRelay()
  proxy = await startProxy({ port: server.relay.port })
})
afterEach(async () => {
  injection?.restore()
  injection = undefined
  for (const c of clients.splice(0)) await c.close()
  await proxy.close()
  await server.close()
})

function client(options: Partial<TestClientOptions> & { idb?: IDBFactory; name: string }): Client {
  const c = makeClient({
    url: proxy.url,
    token: () => server.token(),
    random: seededRandom(testSeed(options.name)),
    ...options,
  })
  clients.push(c)
  return c
}

async function serverEntries(entity: string) {
  return server.relay.store.readEntity('t1', entity, 1, 100_000)
}

describe('client with the real relay', () => {
  it('appends offline, then drains every entry exactly once when the relay is reachable', async () => {
    proxy.setOnline(false)
    const c = client({ name: 'offline' })
    for (let i = 0; i < 25; i++) await c.append('stock/s1:beans', 'stock.moved', { qty: 2 })
    await c.appendMany(
      Array.from({ length: 10 }, (_, i) => ({
        entity: `order/o-${i}`,
        kind: 'order.line',
        data: { i },
      })),
    )
    expect(c.status()).toMatchObject({ online: false, outboxEntries: 35 })
    expect(c.get<{ onHand: number }>('stock/s1:beans').view).toEqual({ onHand: 0 }) // placeholder until loaded
    expect((await c.load<{ onHand: number }>('stock/s1:beans')).view).toEqual({ onHand: 50 })
    proxy.setOnline(true)
    expect(await c.synced({ timeoutMs: 30_000 })).toEqual({ _tag: 'synced' })
    const stored = await serverEntries('stock/s1:beans')
    expect(stored.map((e) => e.version)).toEqual(Array.from({ length: 25 }, (_, i) => i + 1))
    expect(stored.map((e) => e.clientSeq)).toEqual(Array.from({ length: 25 }, (_, i) => i + 1))
    const snap = await c.load<{ onHand: number }>('stock/s1:beans')
    expect(snap).toMatchObject({
      confirmed: { onHand: 50 },
      view: { onHand: 50 },
      version: 25,
      pending: [],
    })
    expect(c.status().outboxEntries).toBe(0)
  })

  it('neither duplicates nor loses entries when acks are lost and connections cut mid-batch', async () => {
    const seed = testSeed('chaos-proxy')
    const rnd = seededRandom(seed)
    const byte = () => {
      const b = new Uint8Array(1)
      rnd(b)
      return b[0] as number
    }
    // Cut about one relay→client chunk in twelve: acks and pages are lost mid-flight.
    proxy.cutOnRelayData = () => byte() < 21
    const c = client({ name: 'chaos-client' })
    const ids: string[] = []
    for (let burst = 0; burst < 12; burst++) {
      const entries = await c.appendMany(
        Array.from({ length: 25 }, (_, i) => ({
          entity: `order/o-${burst % 3}`,
          kind: 'order.line',
          data: { burst, i },
        })),
      )
      ids.push(...entries.map((e) => e.id))
      if (byte() < 80) proxy.dropAll()
      await new Promise((r) => setTimeout(r, byte()))
    }
    proxy.cutOnRelayData = () => false
    expect(await c.synced({ timeoutMs: 60_000 })).toEqual({ _tag: 'synced' })
    const all = [
      ...(await serverEntries('order/o-0')),
      ...(await serverEntries('order/o-1')),
      ...(await serverEntries('order/o-2')),
    ]
    expect(all.length).toBe(300)
    expect(new Set(all.map((e) => e.id))).toEqual(new Set(ids))
    for (let k = 0; k < 3; k++) {
      const snap = await c.load<{ lines: number }>(`order/o-${k}`)
      expect(snap.confirmed).toEqual({ lines: 100 })
      expect(snap.pending).toEqual([])
    }
  })

  it('converges two clients to the same confirmed state, with the oversold correction', async () => {
    const a = client({ name: 'till-a', dbName: 'a' })
    const b = client({ name: 'till-b', dbName: 'b' })
    await a.append('stock/s1:milk', 'stock.moved', { qty: 3 })
    await a.synced()
    await b.synced()
    proxy.setOnline(false)
    // Both tills sell 2 while offline: 3 - 2 - 2 = -1 → the server log appends stock.oversold.
    const saleA = await a.append('stock/s1:milk', 'stock.moved', { qty: -2 })
    const saleB = await b.append('stock/s1:milk', 'stock.moved', { qty: -2 })
    expect((await a.load('stock/s1:milk')).view).toEqual({ onHand: 1 })
    expect(a.get('stock/s1:milk')).toBe(a.get('stock/s1:milk')) // a stable EntityState
    proxy.setOnline(true)
    await a.synced()
    await b.synced()
    await a.synced()
    // Each till's synced() covers its own entries and their corrections; the other till's
    // arrive live, a moment later.
    for (const c of [a, b]) {
      await eventually(async () => (await c.load('stock/s1:milk')).version === 4, 10_000, 'v4')
    }
    const [sa, sb] = [await a.load('stock/s1:milk'), await b.load('stock/s1:milk')]
    expect(sa.confirmed).toEqual({ onHand: 0 })
    expect(sb.confirmed).toEqual(sa.confirmed)
    expect(sb.version).toBe(sa.version)
    expect(sa.version).toBe(4)
    const feeds = [...(await a.corrections()), ...(await b.corrections())]
    expect(feeds.map((f) => f.entry.kind)).toEqual(['stock.oversold'])
    expect([saleA.id, saleB.id]).toContain(feeds[0]?.of)
    const history = await a.entries('stock/s1:milk')
    expect(history.map((h) => h._tag)).toEqual(['confirmed', 'confirmed', 'confirmed', 'confirmed'])
  })

  it('asks the token function again when the token expires mid-session and carries on', async () => {
    let calls = 0
    const c = client({
      name: 'token',
      token: () => server.token({ expiresInS: ++calls === 1 ? 2 : 3600 }),
    })
    await c.append('order/t1', 'order.line', {})
    expect(await c.synced()).toEqual({ _tag: 'synced' })
    await eventually(() => calls >= 2, 20_000, 'a second token')
    await c.append('order/t1', 'order.line', {})
    expect(await c.synced()).toEqual({ _tag: 'synced' })
    expect((await serverEntries('order/t1')).length).toBe(2)
    expect(c.status().online).toBe(true)
  })

  it('shows a refused request with its reason through outcome()', async () => {
    const c = client({ name: 'refusal' })
    await c.append('card/g1', 'card.loaded', { amount: 20 })
    const redeem = await c.append('card/g1', 'card.redeemed', { amount: 50 }, { intent: 'request' })
    const stale = await c.append(
      'card/g1',
      'card.redeemed',
      { amount: 1 },
      { intent: 'request', expect: 0 },
    )
    const ok = await c.append(
      'card/g1',
      'card.redeemed',
      { amount: 5 },
      { intent: 'request', expect: 1 },
    )
    expect(await c.outcome(redeem.id, { waitMs: 20_000 })).toMatchObject({
      _tag: 'refused',
      code: 'invariant',
      reason: expect.stringMatching(/balance below zero/),
    })
    expect(await c.outcome(stale.id, { waitMs: 20_000 })).toMatchObject({
      _tag: 'refused',
      code: 'conflict',
      head: 1,
    })
    expect(await c.outcome(ok.id, { waitMs: 20_000 })).toMatchObject({
      _tag: 'appended',
      version: 2,
    })
    await c.synced()
    expect((await c.load('card/g1')).view).toEqual({ balance: 15 })
    expect(await c.outcome('f'.repeat(32) + '-1')).toEqual({ _tag: 'unknown' })
  })

  it('turns a full disk into storage_full, writes nothing half, keeps draining, and retries fine', async () => {
    proxy.setOnline(false)
    const c = client({ name: 'quota' })
    await c.appendMany(
      Array.from({ length: 5 }, () => ({ entity: 'order/q', kind: 'order.line', data: {} })),
    )
    for (const wrapped of [false, true]) {
      // Every write fails now except the small meta record (so the outbox can still drain).
      injection = injectQuota({
        stores: ['outbox', 'acked', 'outcomes', 'feed', 'pages', 'snapshots'],
        wrapped,
      })
      const error = await c
        .appendMany(
          Array.from({ length: 3 }, () => ({ entity: 'order/q', kind: 'order.line', data: {} })),
        )
        .catch((e: unknown) => e)
      expect(isStorageFull(error)).toBe(true)
      expect(c.status().outboxEntries).toBe(5)
      injection.restore()
    }
    injection = injectQuota({
      stores: ['outbox', 'acked', 'outcomes', 'feed', 'pages', 'snapshots'],
    })
    proxy.setOnline(true)
    await eventually(
      () => c.status().outboxEntries === 0,
      30_000,
      'the outbox to drain while the disk is full',
    )
    expect((await serverEntries('order/q')).length).toBe(5)
    injection.restore()
    const entry = await c.append('order/q', 'order.line', {})
    expect(entry.clientSeq).toBe(6)
    expect(await c.synced()).toEqual({ _tag: 'synced' })
    expect((await serverEntries('order/q')).map((e) => e.clientSeq)).toEqual([1, 2, 3, 4, 5, 6])
  })

  it('starts a wiped database under a new clientId and never reuses a clientSeq', async () => {
    const idb = new IDBFactory()
    const first = client({ name: 'wipe-1', idb })
    await first.append('order/w', 'order.line', {})
    await first.append('order/w', 'order.line', {})
    await first.synced()
    const oldId = first.status().clientId
    await first.close()
    // The browser evicts the origin (or the user clears site data).
    await new Promise<void>((resolve, reject) => {
      const r = idb.deleteDatabase('test')
      r.onsuccess = () => resolve()
      r.onerror = () => reject(r.error)
    })
    const second = client({ name: 'wipe-2', idb })
    const e = await second.append('order/w', 'order.line', {})
    expect(second.status().clientId).not.toBe(oldId)
    expect(e.clientSeq).toBe(1)
    await second.synced()
    const stored = await serverEntries('order/w')
    expect(stored.map((x) => x.id)).toEqual([`${oldId}-1`, `${oldId}-2`, e.id])
    expect((await server.relay.store.client('t1', oldId as string)).high).toBe(2)
  })

  it('re-sends the outbox under a new clientId when the relay knows higher clientSeqs (a restored database)', async () => {
    const idb = new IDBFactory()
    const a = client({ name: 'restore-a', idb, dbName: 'restore' })
    await a.append('order/r', 'order.line', { n: 1 })
    await a.synced()
    const oldId = a.status().clientId as string
    await a.close()
    // Play a restore of an older copy: the relay gets clientSeq 2 and 3 of this clientId from
    // "the other copy" while this database still believes its last clientSeq is 1.
    const other = makeClient({
      url: proxy.url,
      token: () => server.token(),
      idb: new IDBFactory(),
      dbName: 'copy',
    })
    clients.push(other)
    await other.synced()
    const tenant = 't1'
    await server.relay.store.append(
      tenant,
      [2, 3].map((seq) => ({
        entry: {
          id: `${oldId}-${seq}`,
          tenant,
          entity: 'order/r',
          kind: 'order.line',
          data: { copy: seq },
          intent: 'fact' as const,
          clientId: oldId,
          clientSeq: seq,
          hlc: `${String(Date.now()).padStart(15, '0')}:00000:${oldId}`,
          occurredAt: Date.now(),
        },
      })),
    )
    proxy.setOnline(false)
    const b = client({ name: 'restore-b', idb, dbName: 'restore' })
    const mine = await b.append('order/r', 'order.line', { n: 2 })
    expect(mine.id).toBe(`${oldId}-2`) // the database does not know better yet
    proxy.setOnline(true)
    expect(await b.synced()).toEqual({ _tag: 'synced' })
    const newId = b.status().clientId as string
    expect(newId).not.toBe(oldId)
    const outcome = await b.outcome(mine.id)
    expect(outcome).toMatchObject({ _tag: 'appended' })
    const stored = await serverEntries('order/r')
    expect(stored.map((x) => x.data)).toEqual([{ n: 1 }, { copy: 2 }, { copy: 3 }, { n: 2 }])
    expect(stored[3]?.id).toBe(`${newId}-1`)
  })

  it('reconnects at once on reconnect() or the online event, and goes offline on offline', async () => {
    // Goal: a till whose network returns syncs within a second, not after the backoff grew
    // over a long outage. Method: the proxy refuses connections for ~4 s, so the backoff is
    // several seconds; then reconnect() must connect well within it. The browser's
    // online/offline events are played by an EventTarget put on globalThis for this test.
    const events = new EventTarget()
    const g = globalThis as { addEventListener?: unknown; removeEventListener?: unknown }
    g.addEventListener = events.addEventListener.bind(events)
    g.removeEventListener = events.removeEventListener.bind(events)
    try {
      // random() = 1: the largest jitter, so the backoff is what its ceiling says.
      const c = client({ name: 'reconnect', random: (b) => b.fill(255) })
      expect(await c.synced()).toEqual({ _tag: 'synced' })
      events.dispatchEvent(new Event('offline'))
      expect(c.status().online).toBe(false) // at once, without waiting for the socket
      proxy.setOnline(false)
      await new Promise((r) => setTimeout(r, 4_000))
      await c.append('order/net', 'order.line', {})
      proxy.setOnline(true)
      const t0 = Date.now()
      c.reconnect()
      expect(await c.synced({ timeoutMs: 1_500 })).toEqual({ _tag: 'synced' })
      expect(Date.now() - t0).toBeLessThan(1_500)
      // The same through the online event.
      events.dispatchEvent(new Event('offline'))
      proxy.setOnline(false)
      await new Promise((r) => setTimeout(r, 4_000))
      proxy.setOnline(true)
      const t1 = Date.now()
      events.dispatchEvent(new Event('online'))
      await eventually(() => c.status().online, 1_500, 'online after the online event')
      expect(Date.now() - t1).toBeLessThan(1_500)
      expect((await serverEntries('order/net')).length).toBe(1)
    } finally {
      delete g.addEventListener
      delete g.removeEventListener
    }
  }, 30_000)

  it('moves status fields as entries are appended, sent and acknowledged', async () => {
    const times: number[] = []
    let t = 1_700_000_000_000
    const c = client({ name: 'status', now: () => t })
    const seen: ClientStatus[] = []
    c.onStatus((s) => seen.push(s))
    await c.synced()
    expect(c.status()).toMatchObject({
      online: true,
      live: true,
      leader: true,
      outboxEntries: 0,
      oldestOutboxAt: null,
      persisted: null,
    })
    expect(c.status().clientId).toMatch(/^[0-9a-f]{32}$/)
    const contact = c.status().lastServerContactAt
    expect(contact).toBe(t)
    proxy.setOnline(false)
    await eventually(() => !c.status().online, 10_000, 'offline status')
    t += 1000
    times.push(t)
    await c.append('order/s', 'order.line', {})
    t += 5000
    await c.append('order/s', 'order.line', {})
    expect(c.status()).toMatchObject({ outboxEntries: 2, oldestOutboxAt: times[0] })
    expect(c.status().outboxBytes).toBeGreaterThan(100)
    proxy.setOnline(true)
    await c.synced()
    expect(c.status()).toMatchObject({
      online: true,
      outboxEntries: 0,
      outboxBytes: 0,
      oldestOutboxAt: null,
      oldestOutboxAgeMs: 0,
    })
    expect(c.status().lastServerContactAt).toBe(t)
    expect(seen.some((s) => s.syncing)).toBe(true)
    expect(seen.some((s) => !s.online)).toBe(true)
    await c.close()
    expect(c.status().closed).toBe('closed')
  })
})

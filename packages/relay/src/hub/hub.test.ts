// Goal: a store hub in front of head office (issue 15), with wire clients and in-process relays
// on loopback. (1) Registers on the hub get `welcome.role = 'hub'` and head office's log; a push
// is answered `stored`, another register sees it in its store layer, and head office's
// confirmation arrives as an `entries` page with head office's positions and removes it from the
// layer; a resend gets head office's result. (2) The upstream is cut (a TCP proxy between hub
// and head office): the hub tells registers, accepts sales and fans them out within 1 s; when
// the link is back the queue drains and head office holds every entry once. (3) An entry
// pushed through the hub and directly lands once. (4) A hub forwarding outside its grant is
// refused by head office, and the register's resend learns it. (5) Tokens are checked offline:
// with head office down, an expired or forged token is refused, a good one welcomed. (6) A
// backup hub uses the primary hub as its upstream. (7) A hub that never reached head office
// refuses hellos with `overloaded`.
import { randomBytes } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import type { Entry, StoredEntry } from '@ledgerline/core'
import type {
  AckResult,
  EntriesMessage,
  RelayMessage,
  StoreMessage,
  UpstreamMessage,
  WelcomeMessage,
} from '@ledgerline/protocol'
import { makeEntry, pushAcked, TENANT, token } from '../edges.test-helper.ts'
import { signToken } from '../index.ts'
import type { LogStore, Relay } from '../index.ts'
import { openClient, waitFor } from '../wire-client.test-helper.ts'
import type { WireClient } from '../wire-client.test-helper.ts'
import { startProxy, startTestRelay } from './hub.test-helper.ts'

const undo: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const u of undo.splice(0).reverse()) await u()
})

const newClientId = (): string => randomBytes(16).toString('hex')
/** Sales through a backup hub in front of the primary: several batches of each. */
const BACKUP_SALES = 1_500
const HUB_GRANTS = { sub: 'hub-store-7', read: ['*'], write: [], forward: ['sale/*', 'stock/*'] }

const startRelay = (upstream?: { url: string; token: string }): Promise<Relay> =>
  startTestRelay(undo, { upstream })

/** Resends `entry` (as an outbox does while a record is `stored`) until the answer changes. */
async function resendUntilDecided(
  client: WireClient,
  entry: Entry,
  firstBatch: number,
): Promise<AckResult | undefined> {
  let answer: AckResult | undefined
  for (let batch = firstBatch; batch < firstBatch + 200; batch++) {
    answer = (await pushAcked(client, batch, [entry]))[0]
    if (answer?.status !== 'stored') break
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return answer
}

async function startHub(upstreamUrl: string, grants = HUB_GRANTS): Promise<Relay> {
  return startRelay({ url: upstreamUrl, token: await token(grants) })
}

async function connect(url: string, clientId: string, sub: string): Promise<WireClient> {
  const client = await openClient(url, { clientId })
  undo.push(() => client.close())
  const answer = await client.hello(await token({ sub }))
  if (answer.type !== 'welcome') throw new Error(`not welcomed: ${JSON.stringify(answer)}`)
  return client
}

/** Waits until a hub has head office's identity (its first welcome upstream). */
async function hubReady(hub: Relay): Promise<void> {
  await waitFor(() => hub.store.partitions > 0, 10_000)
}

function subscribe(client: WireClient, sub = 1): void {
  client.send({ type: 'subscribe', sub, scope: ['*'], cursors: {}, credit: 64 })
}

/** Store-layer ids a client holds now, from the `store` messages it received. */
function storeLayer(client: WireClient): string[] {
  let layer: string[] = []
  for (const m of client.received) {
    if (m.type !== 'store') continue
    const s = m as StoreMessage
    if (s.reset) layer = []
    layer = layer.filter((id) => !s.removed.includes(id)).concat(s.entries.map((e) => e.id))
  }
  return layer
}

function confirmed(client: WireClient): StoredEntry[] {
  return client.received
    .filter((m): m is EntriesMessage => m.type === 'entries')
    .flatMap((m) => [...m.entries])
}

async function readAll(store: LogStore): Promise<Entry[]> {
  const all: Entry[] = []
  for (let p = 0; p < store.partitions; p++) {
    all.push(...(await store.readPartition(TENANT, p, 0, 10_000)).entries)
  }
  return all
}

const positions = (r: AckResult | StoredEntry | undefined) =>
  r === undefined || !('offset' in r)
    ? r
    : { version: r.version, partition: r.partition, offset: r.offset }

describe('store hub', () => {
  it('answers stored, fans out the store layer, and settles from head office', async () => {
    const hq = await startRelay()
    const hub = await startHub(hq.url)
    await hubReady(hub)
    const a = newClientId()
    const one = await connect(hub.url, a, 'till-1')
    const welcome = one.received.find((m) => m.type === 'welcome') as WelcomeMessage
    expect(welcome.role).toBe('hub')
    expect(welcome.upstream?.connected).toBe(true)
    expect(welcome.log).toEqual(await hq.store.identity())
    const two = await connect(hub.url, newClientId(), 'till-2')
    subscribe(two)
    subscribe(one)
    await two.next((m) => m.type === 'store' && (m as StoreMessage).reset)
    const sale = makeEntry(a, 1, 'sale/s1', 'sold', { sku: 'grinder' })
    const [first] = await pushAcked(one, 1, [sale])
    expect(first?.status).toBe('stored')
    // Head office's order reaches both registers as a confirmed page at head office's positions.
    await waitFor(() => confirmed(two).some((e) => e.id === sale.id), 10_000)
    const [atHq] = (await readAll(hq.store)).filter((e) => e.id === sale.id) as StoredEntry[]
    expect(positions(confirmed(two).find((e) => e.id === sale.id))).toEqual(positions(atHq))
    await waitFor(() => confirmed(one).some((e) => e.id === sale.id), 10_000)
    await waitFor(() => storeLayer(two).length === 0)
    // The pusher never sees its own entry in the store layer.
    expect(
      one.received.some((m) => m.type === 'store' && (m as StoreMessage).entries.length > 0),
    ).toBe(false)
    // A resend gets head office's result.
    const [again] = await pushAcked(one, 2, [sale])
    expect(again?.status).toBe('duplicate')
    expect(positions(again)).toEqual(positions(atHq))
  })

  it('keeps a cut-off store working as one and drains when the link is back', async () => {
    const hq = await startRelay()
    const proxy = await startProxy(hq.port, undo)
    const hub = await startHub(proxy.url)
    await hubReady(hub)
    const a = newClientId()
    const b = newClientId()
    const one = await connect(hub.url, a, 'till-1')
    const two = await connect(hub.url, b, 'till-2')
    subscribe(one)
    subscribe(two)
    await two.next((m) => m.type === 'store' && (m as StoreMessage).reset)
    proxy.cut()
    await two.next<UpstreamMessage>(
      (m) => m.type === 'upstream' && !(m as UpstreamMessage).connected,
    )
    const last = makeEntry(a, 1, 'stock/grinder', 'sold', { left: 0 })
    const started = performance.now()
    const [stored] = await pushAcked(one, 1, [last])
    expect(stored?.status).toBe('stored')
    await two.next(
      (m) => m.type === 'store' && (m as StoreMessage).entries.some((e) => e.id === last.id),
    )
    // The design's bound is 1 s (issue 15); timings are noisy here, so it is printed, not
    // asserted: the property asserted is that it arrived while head office was cut off.
    process.stdout.write(
      `[hub] store-layer delivery with the upstream cut: ${(performance.now() - started).toFixed(1)} ms\n`,
    )
    const mine = makeEntry(b, 1, 'sale/kettle', 'sold', { sku: 'kettle' })
    expect((await pushAcked(two, 1, [mine]))[0]?.status).toBe('stored')
    await one.next(
      (m) => m.type === 'store' && (m as StoreMessage).entries.some((e) => e.id === mine.id),
    )
    expect(await readAll(hq.store)).toEqual([])
    proxy.restore()
    await waitFor(() => storeLayer(two).length === 0 && storeLayer(one).length === 0, 15_000)
    const held = await readAll(hq.store)
    expect(held.map((e) => e.id).sort()).toEqual([last.id, mine.id].sort())
    await waitFor(() => confirmed(two).length === 2 && confirmed(one).length === 2, 10_000)
  })

  it('lands an entry once when it reaches head office through the hub and directly', async () => {
    const hq = await startRelay()
    const proxy = await startProxy(hq.port, undo)
    const hub = await startHub(proxy.url)
    await hubReady(hub)
    proxy.cut()
    const a = newClientId()
    const viaHub = await connect(hub.url, a, 'till-1')
    const sale = makeEntry(a, 1, 'sale/s1', 'sold', { sku: 'grinder' })
    expect((await pushAcked(viaHub, 1, [sale]))[0]?.status).toBe('stored')
    // The register fails over to head office and resends what head office has not confirmed.
    const direct = await connect(hq.url, a, 'till-1')
    expect((await pushAcked(direct, 1, [sale]))[0]?.status).toBe('appended')
    proxy.restore()
    // The hub learns head office's result (duplicate) and tells the register on a resend.
    await waitFor(() => hub.store.partitions > 0)
    expect((await resendUntilDecided(viaHub, sale, 2))?.status).toBe('duplicate')
    expect((await readAll(hq.store)).filter((e) => e.id === sale.id)).toHaveLength(1)
  })

  it('forwards outside its grant only to be refused, and the register learns it', async () => {
    const hq = await startRelay()
    const hub = await startHub(hq.url)
    await hubReady(hub)
    const a = newClientId()
    const one = await connect(hub.url, a, 'till-1')
    const price = makeEntry(a, 1, 'price/p1', 'set', { cents: 1 })
    expect((await pushAcked(one, 1, [price]))[0]?.status).toBe('stored')
    const answer = await resendUntilDecided(one, price, 2)
    expect(answer?.status === 'refused' && answer.code).toBe('forbidden')
    expect(await readAll(hq.store)).toEqual([])
  })

  it('holds entries outside the register grants as stored, for head office to refuse', async () => {
    const hq = await startRelay()
    const hub = await startHub(hq.url)
    await hubReady(hub)
    const other = await connect(hub.url, newClientId(), 'till-2')
    subscribe(other)
    await other.next((m) => m.type === 'store' && (m as StoreMessage).reset)
    const narrow = async (clientId: string) => {
      const c = await openClient(hub.url, { clientId })
      undo.push(() => c.close())
      const welcome = await c.hello(await token({ sub: 'till-1', write: ['sale/*'] }))
      expect(welcome.type).toBe('welcome')
      return c
    }
    // Outside the register's write grant and the hub's forward grant: head office refuses it.
    const a = newClientId()
    const one = await narrow(a)
    const outside = makeEntry(a, 1, 'price/p1', 'set', { cents: 1 })
    expect((await pushAcked(one, 1, [outside]))[0]?.status).toBe('stored')
    const refused = await resendUntilDecided(one, outside, 2)
    expect(refused?.status === 'refused' && refused.code).toBe('forbidden')
    // Inside the hub's forward grant: never forwarded (head office would append it).
    const b = newClientId()
    const two = await narrow(b)
    const sneaky = makeEntry(b, 1, 'stock/s1', 'set', { left: 99 })
    expect((await pushAcked(two, 1, [sneaky]))[0]?.status).toBe('stored')
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect((await pushAcked(two, 2, [sneaky]))[0]?.status).toBe('stored')
    // Neither is in another register's store layer; head office holds neither.
    expect(storeLayer(other)).toEqual([])
    expect(await readAll(hq.store)).toEqual([])
  })

  it('accepts subscriptions only within what the hub mirrors', async () => {
    const hq = await startRelay()
    const hub = await startHub(hq.url, { ...HUB_GRANTS, read: ['sale/*'] })
    await hubReady(hub)
    const one = await connect(hub.url, newClientId(), 'till-1')
    one.send({ type: 'subscribe', sub: 1, scope: ['*'], cursors: {}, credit: 4 })
    const error = (await one.next((m) => m.type === 'error')) as { kind?: string }
    expect(error.kind).toBe('forbidden')
    one.send({ type: 'subscribe', sub: 2, scope: ['sale/*'], cursors: {}, credit: 4 })
    await one.next((m) => m.type === 'entries' && (m as EntriesMessage).sub === 2)
  })

  it('checks register tokens offline while head office is down', async () => {
    const hq = await startRelay()
    const proxy = await startProxy(hq.port, undo)
    const hub = await startHub(proxy.url)
    await hubReady(hub)
    proxy.cut()
    const good = await openClient(hub.url)
    undo.push(() => good.close())
    expect((await good.hello(await token({ sub: 'till-1' }))).type).toBe('welcome')
    const expired = await openClient(hub.url)
    undo.push(() => expired.close())
    const e = (await expired.hello(await token({ sub: 'till-1', expiresInS: -600 }))) as {
      kind?: string
    }
    expect(e.kind).toBe('token_expired')
    const forged = await openClient(hub.url)
    undo.push(() => forged.close())
    const forgedToken = await signToken({
      secret: 'not-the-secret-not-the-secret-not-the',
      tenant: TENANT,
      sub: 'till-1',
      read: ['*'],
      write: ['*'],
    })
    expect(((await forged.hello(forgedToken)) as { kind?: string }).kind).toBe('unauthorized')
  })

  it('refuses hellos before it has ever reached head office', async () => {
    const hub = await startHub('ws://127.0.0.1:9/sync')
    const client = await openClient(hub.url)
    undo.push(() => client.close())
    const answer = (await client.hello(await token({ sub: 'till-1' }))) as RelayMessage & {
      kind?: string
    }
    expect(answer.kind).toBe('overloaded')
  })

  it('lets a backup hub use the primary hub as its upstream', async () => {
    const hq = await startRelay()
    const primary = await startHub(hq.url)
    await hubReady(primary)
    const backup = await startHub(primary.url, { ...HUB_GRANTS, sub: 'hub-store-7-backup' })
    await hubReady(backup)
    const a = newClientId()
    const one = await connect(backup.url, a, 'till-1')
    subscribe(one)
    // More than one batch of either hub, so the backup goes on past what the primary holds.
    const sales = Array.from({ length: BACKUP_SALES }, (_, i) =>
      makeEntry(a, i + 1, `sale/s${i % 20}`, 'sold', { n: i }),
    )
    for (let i = 0; i < sales.length; i += 100) {
      const results = await pushAcked(one, i / 100 + 1, sales.slice(i, i + 100))
      expect(results.every((r) => r.status === 'stored')).toBe(true)
    }
    await waitFor(() => confirmed(one).length === BACKUP_SALES, 30_000)
    const ids = (await readAll(hq.store)).map((e) => e.id)
    expect(ids.length).toBe(BACKUP_SALES)
    expect(new Set(ids)).toEqual(new Set(sales.map((e) => e.id)))
    expect(backup.store.partitions).toBe(hq.store.partitions)
  })
})

// Goal: a new device starts from the relay's ledger snapshots (bootstrap, messages.ts invariant
// 6) with the same confirmed state a full replay gives, asks for a bootstrap again when it
// resubscribes before live or meets `history_dropped`, never uses a snapshot under a fold key
// its schema lacks, sends its horizon, and fetches history left on the server on demand (in
// pages, at most FETCH_IN_FLIGHT_MAX at once; dropped history named; offline a typed error).
// Method: the steerable relay (test-support/fake-relay.ts) with `snapshots: true`; a writer
// client fills the log, then a fresh client (its own fake-indexeddb) bootstraps. The state a
// full replay gives is folded here from the relay's log.
import { afterEach, describe, expect, it } from 'vitest'
import { IDBFactory } from 'fake-indexeddb'
import { defineEntity, defineSchema } from '@ledgerline/core'
import { FETCH_IN_FLIGHT_MAX } from '@ledgerline/protocol'
import { createFakeRelay, type FakeRelay } from '../test-support/fake-relay.ts'
import { HISTORY_DROPPED_BOOTSTRAPS_MAX } from './limits.ts'
import {
  card,
  eventually,
  makeClient,
  order,
  schema,
  seededRandom,
  stock,
  testSeed,
} from '../test-support/setup.ts'
import type { Client, ClientOptions, LedgerItem } from './client-api.ts'
import { ClientError } from './errors.ts'

const TOKEN = 'x.eyJ0ZW5hbnQiOiJ0MSJ9.y' // payload {"tenant":"t1"}; the fake relay checks nothing
const STOCK = Array.from({ length: 10 }, (_, i) => `stock/s${i}`)
const ORDERS = Array.from({ length: 4 }, (_, i) => `order/o${i}`)
let relay: FakeRelay | undefined
const clients: Client[] = []
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close()
  await relay?.close()
  relay = undefined
})

function open(
  r: FakeRelay,
  name: string,
  extra: Partial<ClientOptions> & { idb?: IDBFactory } = {},
): Client {
  const c = makeClient({ url: r.url, token: TOKEN, random: seededRandom(testSeed(name)), ...extra })
  clients.push(c)
  return c
}

/** A relay whose log holds 5 moves per stock entity and 3 lines per order, snapshotted. */
async function filledRelay(options: Parameters<typeof createFakeRelay>[0] = {}) {
  const r = await createFakeRelay({ schema, snapshots: true, snapshotsPageMax: 3, ...options })
  const writer = open(r, 'writer')
  await writer.appendMany([
    ...STOCK.flatMap((entity, i) =>
      Array.from({ length: 5 }, () => ({ entity, kind: 'stock.moved', data: { qty: i + 1 } })),
    ),
    ...ORDERS.flatMap((entity) =>
      Array.from({ length: 3 }, () => ({ entity, kind: 'order.line', data: {} })),
    ),
  ])
  expect(await writer.synced({ timeoutMs: 20_000 })).toEqual({ _tag: 'synced' })
  r.takeSnapshots()
  // Entries after the snapshots, for half of the stock entities.
  await writer.appendMany(
    STOCK.slice(0, 5).flatMap((entity) =>
      Array.from({ length: 2 }, () => ({ entity, kind: 'stock.moved', data: { qty: 100 } })),
    ),
  )
  expect(await writer.synced({ timeoutMs: 20_000 })).toEqual({ _tag: 'synced' })
  return { relay: r, writer }
}

/** The confirmed state and version a full replay of the relay's log gives. */
function replayed(r: FakeRelay, entity: string): { state: unknown; version: number } {
  const type = schema.typeOf(entity)
  let state: unknown = type.initial
  let version = 0
  for (const e of r.log) {
    if (e.entity !== entity) continue
    expect(e.version).toBe(version + 1)
    state = type.reduce(state, e)
    version = e.version
  }
  return { state, version }
}

async function expectReplayed(c: Client, r: FakeRelay, entities: readonly string[]) {
  for (const entity of entities) {
    const { state, version } = replayed(r, entity)
    const got = await c.load(entity)
    expect({ entity, confirmed: got.confirmed, version: got.version }).toEqual({
      entity,
      confirmed: state,
      version,
    })
  }
}

/** The subscribes `c` sent (the writer subscribes too). */
function subscribesOf(r: FakeRelay, c: Client) {
  return r.seen.subscribes.filter((m) => m.clientId === c.status().clientId)
}

/** The versions of the confirmed items (pending ones have none yet). */
const versionsOf = (h: { readonly items: readonly LedgerItem[] }) =>
  h.items.map((i) => (i._tag === 'confirmed' ? i.entry.version : undefined))

describe('bootstrap from ledger snapshots', () => {
  it('starts from snapshot pages: confirmed state equals a full replay, older history on the server only', async () => {
    const filled = await filledRelay()
    relay = filled.relay
    const idb = new IDBFactory()
    const fresh = open(relay, 'fresh', { idb })
    expect(await fresh.synced({ timeoutMs: 20_000 })).toEqual({ _tag: 'synced' })
    const subscribe = subscribesOf(relay, fresh).at(-1)
    expect([...(subscribe?.bootstrap?.foldKeys ?? [])].sort()).toEqual([
      'card@1',
      'order@1',
      'stock@1',
    ])
    expect(subscribe?.bootstrap?.whole).toEqual([])
    expect(subscribe?.cursors).toEqual({})
    await expectReplayed(fresh, relay, [...STOCK, ...ORDERS])
    // Only what follows a snapshot came: the history below it is on the server only.
    const s0 = await fresh.history('stock/s0')
    expect({ complete: s0.complete, from: s0.from, versions: versionsOf(s0) }).toEqual({
      complete: false,
      from: 6,
      versions: [6, 7],
    })
    const s9 = await fresh.history('stock/s9')
    expect({ complete: s9.complete, from: s9.from, versions: versionsOf(s9) }).toEqual({
      complete: false,
      from: 6,
      versions: [],
    })
    expect(versionsOf({ items: await fresh.entries('stock/s0') })).toEqual([6, 7])
    // The bases survive a reload: a new client on the same database shows the same state
    // before it is online (nothing is fetched again).
    await fresh.close()
    clients.splice(clients.indexOf(fresh), 1)
    const reopened = open(relay, 'reopened', { idb, url: 'ws://127.0.0.1:9/sync' })
    await expectReplayed(reopened, relay, [...STOCK, ...ORDERS])
  })

  it('asks for a bootstrap again when it resubscribes before live, and not once live', async () => {
    const filled = await filledRelay()
    relay = filled.relay
    relay.pauseEntries = true // the first subscription gets its snapshots only
    const fresh = open(relay, 'fresh-cut')
    await eventually(
      async () => (await fresh.history('stock/s9')).from > 1,
      20_000,
      'the snapshots stored',
    )
    expect(fresh.status().live).toBe(false)
    relay.pauseEntries = false
    relay.dropAll()
    expect(await fresh.synced({ timeoutMs: 20_000 })).toEqual({ _tag: 'synced' })
    const [first, second] = subscribesOf(relay, fresh)
    expect(first?.bootstrap).toBeDefined()
    expect(second?.bootstrap).toBeDefined() // never live since its cursors started from nothing
    await expectReplayed(fresh, relay, [...STOCK, ...ORDERS])
    // Live now: a reconnect subscribes from its cursors without a bootstrap.
    relay.dropAll()
    await eventually(
      () => subscribesOf(relay as FakeRelay, fresh).length > 2,
      20_000,
      'resubscribe',
    )
    const third = subscribesOf(relay, fresh)[2]
    expect(third?.bootstrap).toBeUndefined()
    expect(Object.keys(third?.cursors ?? {}).length).toBeGreaterThan(0)
  })

  it('never keeps a snapshot under a fold key its schema lacks', async () => {
    const filled = await filledRelay({ anyFoldKey: true })
    relay = filled.relay
    // A snapshot of another reduce (stock@9), with a state no replay gives.
    const s0 = relay.snapshots.get('stock/s0')
    expect(s0).toBeDefined()
    relay.snapshots.set('stock/s0', { ...(s0 as NonNullable<typeof s0>), foldKey: 'stock@9' })
    relay.snapshots.set('stock/s0', {
      ...(relay.snapshots.get('stock/s0') as NonNullable<typeof s0>),
      state: { onHand: 999_999 },
    })
    const fresh = open(relay, 'fresh-foreign')
    expect(await fresh.synced({ timeoutMs: 20_000 })).toEqual({ _tag: 'synced' })
    await expectReplayed(fresh, relay, ['stock/s0', 'stock/s1'])
    const whole = await fresh.history('stock/s0')
    expect({ complete: whole.complete, versions: versionsOf(whole) }).toEqual({
      complete: true,
      versions: [1, 2, 3, 4, 5, 6, 7],
    })
    expect((await fresh.history('stock/s1')).complete).toBe(false) // its own key: a base
  })

  it('sends its horizon as whole rules, and entities inside it come with their whole ledger', async () => {
    const filled = await filledRelay()
    relay = filled.relay
    const before = Date.now()
    const fresh = open(relay, 'fresh-horizon', { horizon: [{ type: 'order', days: 7 }] })
    expect(await fresh.synced({ timeoutMs: 20_000 })).toEqual({ _tag: 'synced' })
    const after = Date.now()
    const whole = subscribesOf(relay, fresh).at(-1)?.bootstrap?.whole ?? []
    expect(whole.map((r) => r.pattern)).toEqual(['order/*'])
    const week = 7 * 24 * 60 * 60 * 1000
    expect(whole[0]?.since).toBeGreaterThanOrEqual(before - week)
    expect(whole[0]?.since).toBeLessThanOrEqual(after - week)
    const order = await fresh.history('order/o0')
    expect({ complete: order.complete, versions: versionsOf(order) }).toEqual({
      complete: true,
      versions: [1, 2, 3],
    })
    expect((await fresh.history('stock/s0')).complete).toBe(false)
    await expectReplayed(fresh, relay, [...STOCK, ...ORDERS])
    // A bad horizon fails createClient, typed.
    for (const horizon of [[{ type: 'order/x', days: 7 }], [{ pattern: 'order/*', days: -1 }]]) {
      let caught: unknown
      try {
        makeClient({ url: relay.url, token: TOKEN, horizon })
      } catch (error) {
        caught = error
      }
      expect(caught).toBeInstanceOf(ClientError)
      expect((caught as ClientError).kind).toBe('invalid')
    }
  })

  it('fetches history on demand in pages, at most FETCH_IN_FLIGHT_MAX at once, and keeps it', async () => {
    const filled = await filledRelay({ fetchPageEntries: 2 })
    relay = filled.relay
    const fresh = open(relay, 'fresh-fetch')
    expect(await fresh.synced({ timeoutMs: 20_000 })).toEqual({ _tag: 'synced' })
    relay.holdFetches = true
    const asked = STOCK.map((entity) => fresh.history(entity, { fetch: true }))
    await eventually(() => relay?.seen.fetch === FETCH_IN_FLIGHT_MAX, 20_000, 'fetches sent')
    await new Promise((r) => setTimeout(r, 100))
    expect(relay.seen.fetch).toBe(FETCH_IN_FLIGHT_MAX) // the rest wait for an answer
    relay.releaseFetches()
    const answers = await Promise.all(asked)
    expect(relay.seen.fetch).toBe(STOCK.length)
    expect(relay.seen.fetchInFlightMax).toBeLessThanOrEqual(FETCH_IN_FLIGHT_MAX)
    for (const [i, answer] of answers.entries()) {
      const entity = STOCK[i] as string
      const { version } = replayed(relay, entity)
      expect({ entity, complete: answer.complete, from: answer.from }).toEqual({
        entity,
        complete: true,
        from: 1,
      })
      expect(versionsOf(answer)).toEqual(Array.from({ length: version }, (_, v) => v + 1))
      expect(answer.items.map((it) => it.entry.id)).toEqual(
        relay.log.filter((e) => e.entity === entity).map((e) => e.id),
      )
    }
    // Kept: asked again, the whole ledger comes from the device, and the state is unchanged.
    const fetches = relay.seen.fetch
    expect((await fresh.history('stock/s0', { fetch: true })).complete).toBe(true)
    expect(relay.seen.fetch).toBe(fetches)
    await expectReplayed(fresh, relay, STOCK)
  })

  it('names history the operator dropped, and fails offline with a typed error, losing nothing', async () => {
    const filled = await filledRelay()
    relay = filled.relay
    relay.dropBelow('stock/s1', 3)
    const fresh = open(relay, 'fresh-dropped')
    expect(await fresh.synced({ timeoutMs: 20_000 })).toEqual({ _tag: 'synced' })
    const s1 = await fresh.history('stock/s1', { fetch: true })
    expect({
      complete: s1.complete,
      from: s1.from,
      dropped: s1.dropped,
      versions: versionsOf(s1),
    }).toEqual({ complete: false, from: 3, dropped: 3, versions: [3, 4, 5, 6, 7] })
    fresh.disconnect()
    await eventually(() => !fresh.status().online, 20_000, 'offline')
    await expect(fresh.history('stock/s2', { fetch: true })).rejects.toMatchObject({
      name: 'ClientError',
      kind: 'offline',
    })
    // Nothing lost: the ledger as held, and the state, are as before.
    const s2 = await fresh.history('stock/s2')
    expect({ complete: s2.complete, from: s2.from }).toEqual({ complete: false, from: 6 })
    await expectReplayed(fresh, relay, ['stock/s1', 'stock/s2'])
  })

  it('never asks a relay that keeps no snapshots for a bootstrap or a fetch', async () => {
    relay = await createFakeRelay({ schema })
    const c = open(relay, 'no-snapshots')
    await c.append('stock/s0', 'stock.moved', { qty: 1 })
    expect(await c.synced({ timeoutMs: 20_000 })).toEqual({ _tag: 'synced' })
    expect(relay.seen.subscribes.at(-1)?.bootstrap).toBeUndefined()
    expect((await c.history('stock/s0', { fetch: true })).complete).toBe(true) // nothing to ask
    expect(relay.seen.fetch).toBe(0)
  })

  it('resubscribes with bootstrap and its cursors after history_dropped, never a silent gap', async () => {
    const filled = await filledRelay()
    relay = filled.relay
    const fresh = open(relay, 'fresh-retention')
    expect(await fresh.synced({ timeoutMs: 20_000 })).toEqual({ _tag: 'synced' })
    const live = subscribesOf(relay, fresh).length
    // The operator dropped history below the cursors: the relay says so on the next subscribe.
    let refused = 0
    const id = fresh.status().clientId
    relay.failSubscribe = (m) =>
      m.clientId === id && m.bootstrap === undefined && refused++ === 0
        ? 'history_dropped'
        : undefined
    await filled.writer.append('stock/s7', 'stock.moved', { qty: 1 })
    expect(await filled.writer.synced({ timeoutMs: 20_000 })).toEqual({ _tag: 'synced' })
    relay.takeSnapshots(['stock/s7'])
    relay.dropAll()
    await eventually(
      () => subscribesOf(relay as FakeRelay, fresh).length >= live + 2,
      20_000,
      'resubscribe',
    )
    expect(await fresh.synced({ timeoutMs: 20_000 })).toEqual({ _tag: 'synced' })
    const [refusedSub, again] = subscribesOf(relay, fresh).slice(live, live + 2)
    expect(refusedSub?.bootstrap).toBeUndefined()
    expect(again?.bootstrap).toBeDefined()
    expect(again?.cursors).toEqual(refusedSub?.cursors)
    expect(Object.keys(again?.cursors ?? {}).length).toBeGreaterThan(0)
    await expectReplayed(fresh, relay, [...STOCK, ...ORDERS])
  })

  it('makes a bounded number of subscribes when history_dropped cannot be answered by a bootstrap', async () => {
    // Goal: a reader that cannot bootstrap never loops on history_dropped (backoff 0): a relay
    // that offers no snapshots, or one whose bootstraps keep meeting history_dropped. Method:
    // every subscribe of the client is answered history_dropped (and closed). Once the status
    // says history_dropped, the client appends (its push still lands) and every socket is cut
    // twice; the subscribes it made must not grow with the sessions it opens.
    for (const snapshots of [false, true]) {
      relay = await createFakeRelay({ schema, snapshots })
      const r = relay
      // This client is the relay's only one: every subscribe is refused, from the first.
      r.failSubscribe = () => 'history_dropped'
      const c = open(r, `dropped-${String(snapshots)}`)
      await eventually(
        () => /cannot subscribe/.test(c.status().lastError?.message ?? ''),
        10_000,
        'the terminal status',
      ).catch((error: unknown) => {
        throw new Error(
          `${String(error)}; subscribes so far: ${subscribesOf(r, c).length}, hellos ${r.seen.hello}, ${JSON.stringify(c.status().lastError)} online ${c.status().online}`,
        )
      })
      const bounded = subscribesOf(r, c).length
      // One plain subscribe, then at most the bootstraps the limit allows.
      expect(bounded).toBeLessThanOrEqual(snapshots ? 1 + HISTORY_DROPPED_BOOTSTRAPS_MAX : 1)
      // Past the first, every subscribe asked for a bootstrap where the relay offers one.
      expect(
        subscribesOf(r, c)
          .slice(1)
          .every((m) => m.bootstrap !== undefined),
      ).toBe(true)
      expect(bounded).toBe(snapshots ? 1 + HISTORY_DROPPED_BOOTSTRAPS_MAX : 1)
      const hellos = r.seen.hello
      await c.append('stock/s0', 'stock.moved', { qty: 1 })
      await eventually(() => r.log.length === 1, 20_000, 'the push landed')
      for (let cut = 0; cut < 2; cut++) {
        const before = r.seen.hello
        r.dropAll()
        await eventually(() => r.seen.hello > before && c.status().online, 20_000, 'reconnect')
      }
      expect(r.seen.hello).toBeGreaterThanOrEqual(hellos + 2)
      expect(subscribesOf(r, c).length).toBe(bounded)
      expect(c.status().lastError?.kind).toBe('history_dropped')
      expect(c.status().live).toBe(false)
      for (const x of clients.splice(0)) await x.close()
      await r.close()
      relay = undefined
    }
  })

  it('starts over when its bases are of a fold the schema no longer has (a raised version)', async () => {
    const filled = await filledRelay()
    relay = filled.relay
    const idb = new IDBFactory()
    const first = open(relay, 'fresh-v1', { idb })
    expect(await first.synced({ timeoutMs: 20_000 })).toEqual({ _tag: 'synced' })
    expect((await first.history('stock/s0')).complete).toBe(false)
    await first.close()
    clients.splice(clients.indexOf(first), 1)
    // The app ships stock@2 (same reduce here, so the replay below still applies): the stored
    // stock bases (stock@1) cannot be folded on, and the history below them is not here.
    const stock2 = defineEntity({ ...stock, version: 2 })
    const upgraded = open(relay, 'fresh-v2', { idb, schema: defineSchema(stock2, card, order) })
    expect(await upgraded.synced({ timeoutMs: 20_000 })).toEqual({ _tag: 'synced' })
    await expectReplayed(upgraded, relay, [...STOCK, ...ORDERS])
    // The relay holds no stock@2 snapshots: stock came whole; orders from their snapshots.
    expect((await upgraded.history('stock/s0')).complete).toBe(true)
    expect((await upgraded.history('order/o0')).complete).toBe(false)
  })
})

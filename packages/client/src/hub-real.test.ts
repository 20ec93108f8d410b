// Goal: the store hub with REAL clients and REAL relays (issue 15): (1) the upstream is cut;
// register 1 sells the last grinder through the hub and register 2 sees stock 0 in its view
// (store layer) while the link is down; when it returns head office holds every entry once and
// both registers converge on head office's order with empty outboxes. (2) The hub dies for good
// (closed, directory deleted) while the store is cut off: registers fail over to the backup hub,
// which dies too, then to head office; nothing is lost or duplicated there. (2b) A backup hub
// whose upstream is the primary hub, then head office, drains to head office when the primary
// is lost for good (it failed before the upstream could be a list). (3) A CLI hub is
// SIGKILLed and restarted on its directory mid-outage: what it answered `stored` reaches head
// office exactly once from the hub alone, with the registers closed.
// Method: head office in-process (SQLite, the test schema); hubs in-process or the CLI; TCP
// proxies (test-support/relay.ts) stand for the store's WAN link; registers are `createClient`
// with fake-indexeddb and a url list. Every wait is a condition with a generous bound.
import { afterEach, describe, expect, it } from 'vitest'
import { IDBFactory } from 'fake-indexeddb'
import type { Entry } from '@ledgerline/core'
import {
  freePort,
  headOfficeEntries,
  registerToken,
  startCliHub,
  startInProcess,
  tempDir,
  type Undo,
} from '../test-support/hub-relays.ts'
import { startProxy, type Proxy } from '../test-support/relay.ts'
import { eventually, makeClient, seededRandom, testSeed } from '../test-support/setup.ts'
import type { Client } from './client.ts'

/** Bound of every wait on a condition: far above what any step takes on a loaded machine. */
const WAIT_MS = 60_000
const TEST_MS = 180_000
const GRINDER = 'stock/s1:grinder'

const undo: Undo = []
afterEach(async () => {
  for (const u of undo.splice(0).reverse()) await u()
})

function register(url: readonly string[], name: string, idb = new IDBFactory()): Client {
  const c = makeClient({
    url,
    token: () => registerToken(name),
    idb,
    random: seededRandom(testSeed(name)),
  })
  undo.push(() => c.close())
  return c
}

async function proxyTo(port: number): Promise<Proxy> {
  const p = await startProxy({ port })
  undo.push(() => p.close())
  return p
}

/** The store's WAN link: every proxy between the store and head office, cut and restored. */
function wan(...proxies: Proxy[]): { cut(): void; restore(): void } {
  return {
    cut: () => proxies.forEach((p) => p.setOnline(false)),
    restore: () => proxies.forEach((p) => p.setOnline(true)),
  }
}

/** Ids must be unique at head office, and every entry there as it was appended. */
function expectOnceEach(held: readonly Entry[], appended: readonly Entry[]): void {
  const ids = held.map((e) => e.id)
  expect(new Set(ids).size).toBe(ids.length)
  expect([...ids].sort()).toEqual(appended.map((e) => e.id).sort())
  const byId = new Map(held.map((e) => [e.id, e]))
  for (const e of appended) {
    expect(byId.get(e.id)).toMatchObject({ entity: e.entity, kind: e.kind, data: e.data })
  }
}

/** Each register sells `n` entries (r1 grinder moves, r2 order lines); all are returned. */
async function sell(r1: Client, r2: Client, from: number, to: number): Promise<Entry[]> {
  const appended: Entry[] = []
  for (let i = from; i < to; i++) {
    appended.push(await r1.append(GRINDER, 'stock.moved', { qty: 10 + i }))
    appended.push(await r2.append(`order/o-${i}`, 'order.line', { n: i }))
  }
  return appended
}

/** Waits until `check` holds for every register. */
async function forAll(clients: readonly Client[], check: (c: Client) => boolean, what: string) {
  for (const c of clients) await eventually(() => check(c), WAIT_MS, what)
}

describe('store hub with real clients and relays', () => {
  it(
    'keeps a cut-off store working as one and converges on head office',
    async () => {
      const hq = await startInProcess(undo)
      const link = await proxyTo(hq.relay.port)
      const hub = await startInProcess(undo, link.url)
      const urls = [hub.relay.url, hq.relay.url]
      const r1 = register(urls, 'cut-r1')
      const r2 = register(urls, 'cut-r2')
      // The last grinder, confirmed at head office and seen by both.
      const stocked = await r1.append(GRINDER, 'stock.moved', { qty: 1 })
      expect(await r1.synced({ timeoutMs: WAIT_MS })).toEqual({ _tag: 'synced' })
      await r2.load(GRINDER)
      await eventually(
        () => r2.get<{ onHand: number }>(GRINDER).confirmed.onHand === 1,
        WAIT_MS,
        'r2 sees stock 1',
      )
      expect(r1.status().relay).toEqual({ url: hub.relay.url, role: 'hub' })

      link.setOnline(false)
      await eventually(
        () => r1.status().headOffice === 'unreachable' && r2.status().headOffice === 'unreachable',
        WAIT_MS,
        'registers told head office is unreachable',
      )
      const sale = await r1.append(GRINDER, 'stock.moved', { qty: -1 })
      await eventually(() => r1.status().storedEntries === 1, WAIT_MS, 'sale stored at the hub')
      expect(await r1.outcome(sale.id)).toEqual({ _tag: 'outbox', stage: 'store' })
      await eventually(
        () => r2.get<{ onHand: number }>(GRINDER).view.onHand === 0,
        WAIT_MS,
        'r2 sees stock 0',
      )
      const seen = r2.get<{ onHand: number }>(GRINDER)
      expect(seen.confirmed.onHand).toBe(1)
      expect(seen.store.map((e) => e.id)).toEqual([sale.id])
      const other = await r2.append('order/o-7', 'order.line', { sku: 'filter' })
      await eventually(() => r2.status().storedEntries === 1, WAIT_MS, 'r2 sale stored')
      expect(r2.status().relay).toEqual({ url: hub.relay.url, role: 'hub' })
      expect((await headOfficeEntries(hq.relay)).map((e) => e.id)).toEqual([stocked.id])

      link.setOnline(true)
      for (const c of [r1, r2]) {
        await eventually(() => c.status().outboxEntries === 0, WAIT_MS, 'outbox drained')
      }
      const held = await headOfficeEntries(hq.relay)
      expectOnceEach(held, [stocked, sale, other])
      for (const c of [r1, r2]) {
        await eventually(() => c.get(GRINDER).version === 2, WAIT_MS, 'grinder confirmed v2')
        const s = c.get<{ onHand: number }>(GRINDER)
        expect(s).toMatchObject({ confirmed: { onHand: 0 }, view: { onHand: 0 }, store: [] })
        expect(s.pending).toEqual([])
        expect(c.status()).toMatchObject({ storedEntries: 0, headOffice: 'reachable' })
      }
      const r1Sale = await r1.outcome(sale.id)
      const r2Other = await r2.outcome(other.id)
      const atHq = new Map(held.map((e, i) => [e.id, i]))
      expect(r1Sale).toMatchObject({ _tag: 'appended', version: 2 })
      expect(r2Other).toMatchObject({ _tag: 'appended', version: 1 })
      expect(atHq.has(sale.id) && atHq.has(other.id)).toBe(true)
    },
    TEST_MS,
  )

  it(
    'fails over to the backup hub, then to head office, when the hubs die cut off',
    async () => {
      const hq = await startInProcess(undo)
      const primaryLink = await proxyTo(hq.relay.port)
      const backupLink = await proxyTo(hq.relay.port)
      const directLink = await proxyTo(hq.relay.port)
      const store = wan(primaryLink, backupLink, directLink)
      const primary = await startInProcess(undo, primaryLink.url)
      const backup = await startInProcess(undo, backupLink.url)
      const urls = [primary.relay.url, backup.relay.url, directLink.url]
      const r1 = register(urls, 'die-r1')
      const r2 = register(urls, 'die-r2')
      await forAll([r1, r2], (c) => c.status().relay?.url === primary.relay.url, 'on primary')
      // Both hubs have reached head office once (they refuse hellos until then).
      await eventually(() => backup.relay.store.partitions > 0, WAIT_MS, 'backup ready')

      store.cut()
      const appended = await sell(r1, r2, 0, 5)
      await forAll([r1, r2], (c) => c.status().storedEntries === 5, 'stored on the primary')
      await primary.destroy()
      await forAll([r1, r2], (c) => c.status().relay?.url === backup.relay.url, 'on backup')
      appended.push(...(await sell(r1, r2, 5, 8)))
      // The backup now holds what the primary lost (the registers re-sent it) and the new ones.
      for (const c of [r1, r2]) {
        await eventually(() => c.status().storedEntries === 8, WAIT_MS, 'stored on the backup')
      }
      // r2 sees r1's sales through the backup's store layer.
      await eventually(() => r2.get(GRINDER).store.length === 8, WAIT_MS, 'store layer on backup')
      expect(await headOfficeEntries(hq.relay)).toEqual([])

      await backup.destroy()
      store.restore()
      for (const c of [r1, r2]) {
        await eventually(() => c.status().outboxEntries === 0, WAIT_MS, 'drained at head office')
        expect(c.status()).toMatchObject({ relay: { url: directLink.url, role: 'head_office' } })
      }
      expectOnceEach(await headOfficeEntries(hq.relay), appended)
      for (const c of [r1, r2]) {
        await eventually(() => c.get(GRINDER).version === 8, WAIT_MS, 'grinder at v8')
        expect(c.get(GRINDER)).toMatchObject({ store: [], pending: [] })
      }
    },
    TEST_MS,
  )

  it(
    'a backup hub in front of the primary drains to head office when the primary dies',
    async () => {
      const hq = await startInProcess(undo)
      const primaryLink = await proxyTo(hq.relay.port)
      const backupLink = await proxyTo(hq.relay.port)
      const store = wan(primaryLink, backupLink)
      const primary = await startInProcess(undo, primaryLink.url)
      await eventually(() => primary.relay.store.partitions > 0, WAIT_MS, 'primary ready')
      const backup = await startInProcess(undo, [primary.relay.url, backupLink.url])
      await eventually(() => backup.relay.store.partitions > 0, WAIT_MS, 'backup ready')
      const urls = [primary.relay.url, backup.relay.url]
      const r1 = register(urls, 'chain-r1')
      const r2 = register(urls, 'chain-r2')
      await forAll([r1, r2], (c) => c.status().relay?.url === primary.relay.url, 'on primary')
      store.cut()
      const appended = await sell(r1, r2, 0, 4)
      await forAll([r1, r2], (c) => c.status().storedEntries === 4, 'stored on the primary')
      // The primary is lost with its disk; the store's link to head office comes back.
      await primary.destroy()
      store.restore()
      for (const c of [r1, r2]) {
        await eventually(() => c.status().relay?.url === backup.relay.url, WAIT_MS, 'on backup')
      }
      for (const c of [r1, r2]) {
        await eventually(() => c.status().outboxEntries === 0, WAIT_MS, 'drained at head office')
        expect(c.status()).toMatchObject({ storedEntries: 0, headOffice: 'reachable' })
      }
      expectOnceEach(await headOfficeEntries(hq.relay), appended)
    },
    TEST_MS,
  )

  it(
    'a CLI hub SIGKILLed and restarted mid-outage forwards what it stored exactly once',
    async () => {
      const hq = await startInProcess(undo)
      const link = await proxyTo(hq.relay.port)
      const directLink = await proxyTo(hq.relay.port)
      const store = wan(link, directLink)
      const hubDir = tempDir(undo)
      const port = await freePort()
      const start = () => startCliHub(undo, { dataDir: hubDir, port, upstreamUrl: link.url })
      let hub = await start()
      const urls = [hub.url, directLink.url]
      const idbs = [new IDBFactory(), new IDBFactory()]
      let regs = [register(urls, 'kill-r1', idbs[0]), register(urls, 'kill-r2', idbs[1])]
      for (const c of regs) {
        await eventually(() => c.status().relay?.role === 'hub', WAIT_MS, 'on the CLI hub')
      }

      store.cut()
      const appended: Entry[] = []
      for (let i = 0; i < 6; i++) {
        for (const [r, c] of regs.entries()) {
          appended.push(await c.append(`order/o-${r}-${i}`, 'order.line', { n: i, r }))
        }
      }
      for (const c of regs) {
        await eventually(() => c.status().storedEntries === 6, WAIT_MS, 'stored at the hub')
      }
      // The registers go away with their outboxes intact, so head office can only get these
      // entries from the hub's disk.
      for (const c of regs) await c.close()
      await hub.stop('SIGKILL')
      hub = await start()
      store.restore()
      await eventually(
        async () => (await headOfficeEntries(hq.relay)).length >= appended.length,
        WAIT_MS,
        'the restarted hub forwarded what it stored',
      )
      const fromHub = await headOfficeEntries(hq.relay)
      expect(fromHub).toHaveLength(appended.length)
      expectOnceEach(fromHub, appended)

      // The registers come back on their databases and settle everything, nothing twice.
      regs = [register(urls, 'kill-r1', idbs[0]), register(urls, 'kill-r2', idbs[1])]
      for (const [i, e] of appended.entries()) {
        const owner = regs[i % 2] as Client
        await eventually(
          // `duplicate` when the resend's answer (head office's result, known to the hub)
          // comes before the page: the hub forwarded it first, so this copy is the second.
          async () => ['appended', 'duplicate'].includes((await owner.outcome(e.id))._tag),
          WAIT_MS,
          'outbox record settled by head office',
        )
      }
      for (const c of regs) {
        await eventually(() => c.status().outboxEntries === 0, WAIT_MS, 'outbox empty')
      }
      expectOnceEach(await headOfficeEntries(hq.relay), appended)
    },
    TEST_MS,
  )
})

// Goal: bootstrap from ledger snapshots (messages.ts invariants 6–7) gives a client the whole
// of every entity, on SQLite and on PostgreSQL, while other clients append to the same
// entities: the bootstrapped state (snapshot + later entries) equals the server's fold, no entry
// id is missing or doubled, versions run on without a gap after each snapshot; a client that
// resubscribes with bootstrap before it saw `live` (mid snapshot pages, mid entries pages) ends
// equally right. Also: `welcome.snapshots`, horizon rules, read grants, `fetch`.
// Method: a relay with the contract schema and small pages (4 entries/snapshots a page, so the
// bootstrap takes many pages), 12 entities written to 40 versions (snapshots at 32), then two
// writers push 30 more entries each in batches while bootstrappers take one page of credit at a
// time. Every state is checked against a fold of the log read back after the writers finished.
// PostgreSQL runs on the private cluster; skipped, saying why, when no binaries exist.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { foldKey } from '@ledgerline/core'
import type { Data, Entry, StoredEntry } from '@ledgerline/core'
import type {
  AckMessage,
  EntriesMessage,
  ErrorMessage,
  FetchedMessage,
  LedgerSnapshot,
  RelayMessage,
  SnapshotsMessage,
  WelcomeMessage,
} from '@ledgerline/protocol'
import { CONTRACT_SCHEMA, createPostgresFixture } from '@ledgerline/testkit'
import { signToken } from './auth.ts'
import type { LogStore } from './log-store.ts'
import { createPostgresStore } from './postgres-store.ts'
import { createRelay } from './relay.ts'
import type { Relay } from './relay.ts'
import { openClient, waitFor } from './wire-client.test-helper.ts'
import type { WireClient } from './wire-client.test-helper.ts'

const SECRET = 'bootstrap-test-secret-0123456789abcdef'
const FOLD_KEYS = ['stock', 'order'].map((t) => foldKey(CONTRACT_SCHEMA.typeOf(`${t}/x`)))
const ENTITIES = [
  ...Array.from({ length: 8 }, (_, i) => `stock/s${i}`),
  ...Array.from({ length: 4 }, (_, i) => `order/o${i}`),
]
const WAIT_MS = 20_000

const postgres = createPostgresFixture('boot')
const cleanups: (() => Promise<void> | void)[] = []

afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn()
})

interface Backend {
  readonly name: string
  readonly skip: string | undefined
  start(): Promise<Relay>
}

const backends: Backend[] = [
  {
    name: 'sqlite',
    skip: undefined,
    async start() {
      const dir = mkdtempSync(join(tmpdir(), 'll-boot-'))
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
      const relay = await createRelay(relayOptions({ dataDir: dir, partitions: 4 }))
      cleanups.push(() => relay.close())
      return relay
    },
  },
  {
    name: 'postgres',
    skip: postgres.skipReason,
    async start() {
      const url = await postgres.database()
      const store: LogStore = await createPostgresStore({
        url,
        schema: CONTRACT_SCHEMA,
        partitions: 4,
        pollIntervalMs: 250,
      })
      const relay = await createRelay(relayOptions({ store, storeKind: 'postgres' }))
      cleanups.push(() => store.close())
      cleanups.push(() => relay.close())
      return relay
    },
  },
]

function relayOptions(over: Record<string, unknown>) {
  return {
    port: 0,
    schema: CONTRACT_SCHEMA,
    auth: { secret: SECRET },
    logLevel: process.env.BOOT_LOG ?? 'silent',
    limits: { pageEntriesMax: 4 },
    ...over,
  }
}

for (const backend of backends) {
  describe.skipIf(backend.skip !== undefined)(
    `bootstrap from ledger snapshots: ${backend.name}${backend.skip === undefined ? '' : ` (skipped: ${backend.skip})`}`,
    () => {
      if (backend.name === 'postgres') {
        beforeAll(async () => {
          await postgres.cluster()
        })
        afterAll(() => postgres.stop())
      }

      it('bootstraps whole entities under concurrent appends, resubscribing mid-way too', async () => {
        const relay = await backend.start()
        const seed = await writer(relay, 'seed')
        expect(seed.welcome.snapshots).toBe(true)
        // 40 versions each: the pass snapshots every entity at 32.
        for (let round = 0; round < 40; round++) {
          await seed.push(ENTITIES.map((e) => seed.make(e, round)))
        }
        await relay.ledgerSnapshots?.idle()
        const snapshotsBefore = await countSnapshots(relay)
        expect(snapshotsBefore).toBe(ENTITIES.length)

        const plain = await bootstrapper(relay, 'plain', {})
        const early = await bootstrapper(relay, 'early', { resubscribeAfterSnapshotsPages: 1 })
        const late = await bootstrapper(relay, 'late', { resubscribeAfterEntriesPages: 2 })
        const writers = [await writer(relay, 'w1'), await writer(relay, 'w2')]
        // Writers and bootstrappers run at once: each writer 80 batches of 2 entries, so every
        // entity passes 64 and gets a newer snapshot while the bootstraps run.
        const writing = writers.map(async (w, i) => {
          for (let round = 0; round < 80; round++) {
            const a = ENTITIES[(round + i) % ENTITIES.length] as string
            const b = ENTITIES[(round * 5 + i + 3) % ENTITIES.length] as string
            await w.push([w.make(a, round), w.make(b, round)])
          }
        })
        const booting = [plain, early, late].map((b) => b.start())
        await Promise.all([...writing, ...booting])
        const heads = await relay.store.partitionHeads()
        const server = await serverFolds(relay.store)
        for (const b of [plain, early, late]) {
          await b.until(heads)
          const got = b.state()
          expect(got.errors, `${b.name}: errors`).toEqual([])
          expect(got.doubled, `${b.name}: ids received twice`).toEqual([])
          expect(got.leaked, `${b.name}: entries a snapshot held`).toEqual([])
          expect(got.snapshotted, `${b.name}: snapshots used`).toBeGreaterThan(0)
          for (const entity of ENTITIES) {
            const want = server.get(entity) as { state: unknown; version: number; ids: string[] }
            const have = got.entities.get(entity)
            expect(have?.versions, `${b.name} ${entity} versions`).toEqual(
              range((have?.from ?? 0) + 1, want.version),
            )
            expect(have?.state, `${b.name} ${entity} state`).toEqual(want.state)
            // The entries it holds are the log's, by id, after its snapshot.
            expect(have?.ids, `${b.name} ${entity} ids`).toEqual(want.ids.slice(have?.from ?? 0))
          }
        }
        expect(early.resubscribed && late.resubscribed).toBe(true)
      })

      // Goal: a bootstrap's catch-up costs what it sends, not the history under its snapshots.
      // Method: 12 entities written to 40 versions (the pass snapshots each at 32 or a little
      // after), then a bootstrap while the store's partition reads are recorded: no entry at or
      // below the lowest snapshot offset of its partition (history every snapshot there holds)
      // may be read, and every entry after a snapshot must arrive.
      it('reads for a bootstrap none of the history under its snapshots', async () => {
        const relay = await backend.start()
        const seed = await writer(relay, 'seed')
        for (let round = 0; round < 40; round++) {
          await seed.push(ENTITIES.map((e) => seed.make(e, round)))
        }
        await relay.ledgerSnapshots?.idle()
        const snaps = await storeSnapshots(relay)
        expect(snaps).toHaveLength(ENTITIES.length)
        const floor = new Map<number, number>()
        for (const s of snaps) {
          floor.set(s.partition, Math.min(floor.get(s.partition) ?? Infinity, s.offset))
        }
        const read: StoredEntry[] = []
        const readPartition = relay.store.readPartition.bind(relay.store)
        vi.spyOn(relay.store, 'readPartition').mockImplementation(async (...args) => {
          const out = await readPartition(...args)
          read.push(...out.entries)
          return out
        })
        const counted = await bootstrapper(relay, 'counted', {})
        await counted.start()
        const got = counted.state()
        expect(got.errors).toEqual([])
        const held = [...got.entities.values()]
        const sent = held.reduce((n, h) => n + h.versions.length, 0)
        expect(held.every((h) => h.from >= 32 && h.versions.at(-1) === 40)).toBe(true)
        expect(sent).toBe(held.reduce((n, h) => n + 40 - h.from, 0))
        const under = read.filter((e) => e.offset <= (floor.get(e.partition) ?? 0))
        expect(under.length, 'entries read that every snapshot of their partition holds').toBe(0)
        expect(read.length).toBeGreaterThanOrEqual(sent)
      })

      it('answers horizon rules whole, other fold keys with nothing, and fetch in pages within grants', async () => {
        const relay = await backend.start()
        const seed = await writer(relay, 'seed')
        for (let round = 0; round < 33; round++) {
          await seed.push(ENTITIES.map((e) => seed.make(e, round)))
        }
        await relay.ledgerSnapshots?.idle()
        // Orders whole (their snapshots cover an entry committed after `since` = 0); stock only.
        const stockOnly = await openSocket(relay, 'reader', { read: ['stock/*', 'order/o0'] })
        stockOnly.send({
          type: 'subscribe',
          sub: 1,
          scope: ['stock/*', 'order/o0'],
          cursors: {},
          credit: 64,
          bootstrap: { foldKeys: FOLD_KEYS, whole: [{ pattern: 'order/*', since: 0 }] },
        })
        const snaps: LedgerSnapshot[] = []
        for (;;) {
          const m = await stockOnly.next(
            (x) => x.type === 'snapshots' || x.type === 'entries',
            WAIT_MS,
          )
          if (m.type === 'entries') break
          snaps.push(...(m as SnapshotsMessage).snapshots)
        }
        expect(snaps.map((s) => s.entity).sort()).toEqual(
          ENTITIES.filter((e) => e.startsWith('stock/')).sort(),
        )
        expect(snaps.every((s) => s.version >= 32 && s.foldKey === FOLD_KEYS[0])).toBe(true)
        // A fold key the relay has no snapshot under: nothing, every entry comes.
        stockOnly.send({
          type: 'subscribe',
          sub: 2,
          scope: ['stock/s0'],
          cursors: {},
          credit: 64,
          bootstrap: { foldKeys: ['stock@7'], whole: [] },
        })
        const first = await stockOnly.next<EntriesMessage>(
          (x) => x.type === 'entries' && (x as EntriesMessage).sub === 2,
          WAIT_MS,
        )
        expect(first.entries[0]?.version).toBe(1)
        // fetch: versions 1..9 of stock/s1 in pages of 4, the last done.
        stockOnly.send({ type: 'fetch', req: 7, entity: 'stock/s1', before: 10 })
        const pages: FetchedMessage[] = []
        while (pages.at(-1)?.done !== true) {
          pages.push(
            await stockOnly.next<FetchedMessage>(
              (x) => x.type === 'fetched' && (x as FetchedMessage).req === 7,
              WAIT_MS,
            ),
          )
        }
        expect(pages.flatMap((p) => p.entries.map((e) => e.version))).toEqual(range(1, 9))
        expect(pages.every((p) => p.entries.length <= 4 && p.entity === 'stock/s1')).toBe(true)
        // Outside the read grants: forbidden, the socket stays open, nothing sent.
        stockOnly.send({ type: 'fetch', req: 8, entity: 'order/o1', before: 5 })
        const refused = await stockOnly.next<ErrorMessage>((x) => x.type === 'error', WAIT_MS)
        expect(refused.kind).toBe('forbidden')
        stockOnly.close()
      })
    },
  )
}

// -- clients ----------------------------------------------------------------------------------

async function openSocket(
  relay: Relay,
  sub: string,
  grants: { read?: string[]; write?: string[] } = {},
): Promise<WireClient> {
  const socket = await openClient(relay.url)
  cleanups.push(() => socket.close())
  const token = await signToken({
    secret: SECRET,
    tenant: 'acme',
    sub,
    read: grants.read ?? ['*'],
    write: grants.write ?? ['*'],
  })
  const welcome = await socket.hello(token)
  if (welcome.type !== 'welcome') throw new Error(`no welcome: ${JSON.stringify(welcome)}`)
  return socket
}

interface Writer {
  readonly welcome: WelcomeMessage
  make(entity: string, round: number): Entry
  push(entries: readonly Entry[]): Promise<void>
}

let batches = 0

async function writer(relay: Relay, name: string): Promise<Writer> {
  const socket = await openSocket(relay, name)
  const welcome = socket.received.find((m) => m.type === 'welcome') as WelcomeMessage
  return {
    welcome,
    make: (entity, round) =>
      entity.startsWith('stock/')
        ? socket.entry(entity, 'stock.moved', { qty: 1 + (round % 3) } as Data)
        : socket.entry(entity, 'order.line', { n: round } as Data),
    async push(entries) {
      const batch = ++batches
      socket.send({ type: 'push', batch, entries })
      let done = false
      while (!done) {
        const ack = await socket.next<AckMessage>(
          (m) => (m.type === 'ack' && m.batch === batch) || m.type === 'error',
          WAIT_MS,
        )
        if ((ack as RelayMessage).type === 'error') throw new Error(JSON.stringify(ack))
        for (const r of ack.results) {
          if (r.status !== 'appended') throw new Error(`not appended: ${JSON.stringify(r)}`)
        }
        done = ack.done
      }
    },
  }
}

interface Held {
  /** The version its snapshot covers (0: none). */
  from: number
  state: unknown
  versions: number[]
  ids: string[]
}

interface Bootstrapper {
  readonly name: string
  readonly resubscribed: boolean
  /** Subscribes; resolves once it saw `live`. */
  start(): Promise<void>
  /** Waits until its cursors reach `heads`. */
  until(heads: readonly number[]): Promise<void>
  state(): {
    entities: Map<string, Held>
    doubled: string[]
    errors: string[]
    leaked: string[]
    snapshotted: number
  }
}

/**
 * A client that keeps what a real one would: per entity the newest snapshot and the entries
 * after it, cursors, one page of credit at a time. `resubscribeAfter…`: subscribes again with
 * bootstrap and its cursors once it took that many pages of the kind, before `live`.
 */
async function bootstrapper(
  relay: Relay,
  name: string,
  options: { resubscribeAfterSnapshotsPages?: number; resubscribeAfterEntriesPages?: number },
): Promise<Bootstrapper> {
  const socket = await openSocket(relay, name)
  const snapshots = new Map<string, LedgerSnapshot>()
  const entries = new Map<string, StoredEntry[]>()
  const seenIds = new Set<string>()
  const doubled: string[] = []
  const errors: string[] = []
  const leaked: string[] = []
  let cursors: Record<number, number> = {}
  let live = false
  let resubscribed = false
  let snapshotPages = 0
  let entryPages = 0
  let sub = 1
  const subscribe = () =>
    socket.send({
      type: 'subscribe',
      sub,
      scope: ['stock/*', 'order/*'],
      cursors,
      credit: 1,
      bootstrap: { foldKeys: FOLD_KEYS, whole: [] },
    })
  const resubscribe = () => {
    resubscribed = true
    sub++
    subscribe()
  }
  socket.ws.on('message', () => {
    for (const m of socket.received.splice(0)) {
      if (m.type === 'snapshots' && m.sub === sub) {
        for (const s of m.snapshots) {
          const kept = snapshots.get(s.entity)
          if (kept === undefined || kept.version < s.version) snapshots.set(s.entity, s)
        }
        snapshotPages++
        if (!resubscribed && snapshotPages === options.resubscribeAfterSnapshotsPages) {
          resubscribe()
          continue
        }
        socket.send({ type: 'credit', sub, pages: 1 })
      } else if (m.type === 'entries' && m.sub === sub) {
        for (const e of m.entries) {
          // Invariant 6: nothing a snapshot already sent holds comes after it.
          if (e.version <= (snapshots.get(e.entity)?.version ?? 0)) leaked.push(e.id)
          if (seenIds.has(e.id)) doubled.push(e.id)
          seenIds.add(e.id)
          entries.set(e.entity, [...(entries.get(e.entity) ?? []), e])
        }
        cursors = { ...m.cursors }
        live ||= m.live
        entryPages++
        if (!resubscribed && !live && entryPages === options.resubscribeAfterEntriesPages) {
          resubscribe()
          continue
        }
        socket.send({ type: 'credit', sub, pages: 1 })
      } else if (m.type === 'error' && m.kind !== 'shutting_down') {
        errors.push(`${name}: ${m.kind} ${m.message}`)
      }
    }
  })
  return {
    name,
    get resubscribed() {
      return resubscribed
    },
    async start() {
      subscribe()
      await waitFor(() => live, WAIT_MS)
    },
    async until(heads) {
      await waitFor(() => heads.every((h, p) => (cursors[p] ?? 0) >= h), WAIT_MS)
    },
    state() {
      const out = new Map<string, Held>()
      for (const entity of ENTITIES) {
        const type = CONTRACT_SCHEMA.typeOf(entity)
        const s = snapshots.get(entity)
        const from = s?.version ?? 0
        // A newer snapshot from a resubscribe holds the older entries it replaces.
        const after = (entries.get(entity) ?? []).filter((e) => e.version > from)
        let state: unknown = s?.state ?? type.initial
        for (const e of after) state = type.reduce(state, e)
        out.set(entity, {
          from,
          state,
          versions: after.map((e) => e.version),
          ids: after.map((e) => e.id),
        })
      }
      return { entities: out, doubled, errors, leaked, snapshotted: snapshots.size }
    },
  }
}

// -- the server's side ------------------------------------------------------------------------

async function serverFolds(
  store: LogStore,
): Promise<Map<string, { state: unknown; version: number; ids: string[] }>> {
  const out = new Map<string, { state: unknown; version: number; ids: string[] }>()
  for (const entity of ENTITIES) {
    const type = CONTRACT_SCHEMA.typeOf(entity)
    const ledger = await store.readEntity('acme', entity, 1, 100_000)
    let state: unknown = type.initial
    for (const e of ledger) state = type.reduce(state, e)
    out.set(entity, { state, version: ledger.length, ids: ledger.map((e) => e.id) })
  }
  return out
}

async function countSnapshots(relay: Relay): Promise<number> {
  return (await storeSnapshots(relay)).length
}

async function storeSnapshots(relay: Relay): Promise<LedgerSnapshot[]> {
  const store = relay.store as LogStore & {
    snapshotsInScope?: (
      t: string,
      p: readonly string[],
      k: readonly string[],
      a: string | undefined,
      l: number,
    ) => Promise<{ snapshots: LedgerSnapshot[] }>
  }
  const page = await store.snapshotsInScope?.('acme', ['*'], FOLD_KEYS, undefined, 1_000)
  return page?.snapshots ?? []
}

function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i)
}

it('offers no bootstrap without a schema: welcome.snapshots absent, bootstrap and fetch refused', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'll-boot-'))
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
  const relay = await createRelay({ ...relayOptions({ dataDir: dir }), schema: undefined })
  cleanups.push(() => relay.close())
  expect(relay.ledgerSnapshots).toBeUndefined()
  const socket = await openSocket(relay, 'plain')
  const welcome = socket.received.find((m) => m.type === 'welcome') as WelcomeMessage
  expect(welcome.snapshots).toBeUndefined()
  socket.send({
    type: 'subscribe',
    sub: 1,
    scope: ['*'],
    cursors: {},
    credit: 1,
    bootstrap: { foldKeys: FOLD_KEYS, whole: [] },
  })
  expect((await socket.next<ErrorMessage>((m) => m.type === 'error')).kind).toBe('bad_message')
  socket.send({ type: 'fetch', req: 1, entity: 'stock/s0', before: 2 })
  expect((await socket.next<ErrorMessage>((m) => m.type === 'error')).kind).toBe('bad_message')
  expect((await socket.closed).code).toBe(4400)
})

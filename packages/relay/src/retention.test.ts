// Goal: retention for operators (issue 17; `retention-export.ts`, `log-retention.ts`) on SQLite
// and PostgreSQL: export then drop on a populated log keeps every snapshot and every entry above
// them; the export files hold exactly the dropped entries (ids and offsets); a drop without an
// export, or of entries no snapshot covers (a fold version raised between export and drop), is
// refused and deletes nothing; then readers are told: a subscription from an old cursor is
// closed `history_dropped` (4410), a bootstrap gets the server's state, a `fetch` says `dropped`.
// Method: the store is filled directly (a relay on a SQLite directory must be stopped for the
// drop; PostgreSQL relays may run, but the store is the same), 8 stock and 4 order entities to
// 40 versions, 30 of them before the horizon, snapshots at 40 for all but two stock entities;
// then a relay on the log answers sockets. PostgreSQL runs on the private cluster; skipped,
// saying why, when no binaries exist.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { foldKey } from '@ledgerline/core'
import type { Data, Entry, Schema, StoredEntry } from '@ledgerline/core'
import type { ErrorMessage, FetchedMessage, SnapshotsMessage } from '@ledgerline/protocol'
import { CONTRACT_SCHEMA, postgresSkipReason, startPostgresCluster } from '@ledgerline/testkit'
import type { PostgresCluster } from '@ledgerline/testkit'
import { signToken } from './auth.ts'
import { runAdminCommand } from './cli-admin.ts'
import { createLedgerSnapshotter } from './ledger-snapshots.ts'
import { createPostgresStore } from './postgres-store.ts'
import { createRelay } from './relay.ts'
import type { Relay } from './relay.ts'
import { dropRetention, exportRetention, RetentionError } from './retention-export.ts'
import type { RetentionLine } from './retention-export.ts'
import { createSqliteStore, SQLITE_LOG_FILE } from './sqlite-store.ts'
import { openClient } from './wire-client.test-helper.ts'

const SECRET = 'retention-test-secret-0123456789abcdef'
const STOCK = Array.from({ length: 8 }, (_, i) => `stock/s${i}`)
const ORDERS = Array.from({ length: 4 }, (_, i) => `order/o${i}`)
const ENTITIES = [...STOCK, ...ORDERS]
/** Two stock entities the snapshot pass never reached: nothing of them may go. */
const UNSNAPSHOTTED = ['stock/s6', 'stock/s7']
const T0 = 1_700_000_000_000
const HORIZON = T0 + 30_000
const WAIT_MS = 20_000

type Store = Awaited<ReturnType<typeof createSqliteStore>>

interface Place {
  open(schema?: Schema): Promise<Store>
  relay(): Promise<Relay>
  /** The CLI's target flags. */
  flags: string[]
}

const skipReason = postgresSkipReason()
let cluster: PostgresCluster | undefined
let databases = 0
const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn()
})

const backends: { name: string; skip: string | undefined; place(): Promise<Place> }[] = [
  {
    name: 'sqlite',
    skip: undefined,
    async place() {
      const dir = mkdtempSync(join(tmpdir(), 'll-ret-'))
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
      let clock = T0
      return {
        open: (schema = CONTRACT_SCHEMA) =>
          createSqliteStore({
            file: join(dir, SQLITE_LOG_FILE),
            schema,
            partitions: 4,
            now: () => (clock += 1_000),
          }),
        async relay() {
          const relay = await createRelay({ ...relayOptions(), dataDir: dir })
          cleanups.push(() => relay.close())
          return relay
        },
        flags: ['--data', dir],
      }
    },
  },
  {
    name: 'postgres',
    skip: skipReason,
    async place() {
      const url = await (cluster as PostgresCluster).createDatabase(`ret${++databases}`)
      let clock = T0
      return {
        open: (schema = CONTRACT_SCHEMA) =>
          createPostgresStore({ url, schema, partitions: 4, now: () => (clock += 1_000) }),
        async relay() {
          const store = await createPostgresStore({ url, schema: CONTRACT_SCHEMA })
          const relay = await createRelay({ ...relayOptions(), store, storeKind: 'postgres' })
          cleanups.push(() => store.close())
          cleanups.push(() => relay.close())
          return relay
        },
        flags: ['--store', 'postgres', '--database-url', url],
      }
    },
  },
]

function relayOptions() {
  return {
    port: 0,
    schema: CONTRACT_SCHEMA,
    auth: { secret: SECRET },
    logLevel: process.env.RET_LOG ?? 'silent',
    limits: { pageEntriesMax: 4 },
  }
}

/** 40 versions of every entity, one commit a round (the store's clock: 1 s a commit). */
async function populate(store: Store): Promise<void> {
  const clientId = 'c0ffee00c0ffee00c0ffee00c0ffee00'
  let seq = 0
  for (let round = 0; round < 40; round++) {
    const entries = ENTITIES.map((entity): Entry => {
      seq++
      return {
        id: `${clientId}-${seq}`,
        tenant: 'acme',
        entity,
        kind: entity.startsWith('stock/') ? 'stock.moved' : 'order.line',
        data: (entity.startsWith('stock/') ? { qty: 1 + (round % 3) } : { n: round }) as Data,
        intent: 'fact',
        clientId,
        clientSeq: seq,
        hlc: `${String(T0 + seq).padStart(15, '0')}:00000:${clientId}`,
        occurredAt: T0 + seq,
      }
    })
    const results = await store.append(
      'acme',
      entries.map((entry) => ({ entry })),
    )
    for (const r of results) if (r.status !== 'appended') throw new Error(JSON.stringify(r))
  }
  const snapshotter = createLedgerSnapshotter(store, CONTRACT_SCHEMA)
  for (const entity of ENTITIES) {
    if (!UNSNAPSHOTTED.includes(entity)) await snapshotter.snapshotNow('acme', entity)
  }
}

async function everyEntry(store: Store): Promise<StoredEntry[]> {
  const out: StoredEntry[] = []
  for (let p = 0; p < store.partitions; p++) {
    out.push(...(await store.readPartition('acme', p, 0, 100_000)).entries)
  }
  return out
}

function exportedLines(dir: string): RetentionLine[] {
  return readdirSync(dir)
    .filter((n) => n.endsWith('.ndjson'))
    .flatMap((n) =>
      readFileSync(join(dir, n), 'utf8')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as RetentionLine),
    )
}

const key = (e: { partition: number; offset: number; id: string }) =>
  `${e.partition}:${e.offset}:${e.id}`

async function socket(relay: Relay) {
  const ws = await openClient(relay.url)
  cleanups.push(() => ws.close())
  const token = await signToken({
    secret: SECRET,
    tenant: 'acme',
    sub: 'r',
    read: ['*'],
    write: [],
  })
  const welcome = await ws.hello(token)
  if (welcome.type !== 'welcome') throw new Error(JSON.stringify(welcome))
  return ws
}

for (const backend of backends) {
  describe.skipIf(backend.skip !== undefined)(
    `retention: ${backend.name}${backend.skip === undefined ? '' : ` (skipped: ${backend.skip})`}`,
    () => {
      if (backend.name === 'postgres') {
        beforeAll(async () => {
          cluster = await startPostgresCluster()
        })
        afterAll(() => {
          cluster?.stop()
          cluster = undefined
        })
      }

      it('exports, refuses bad drops whole, drops exactly the export, and readers are told', async () => {
        const place = await backend.place()
        const store = await place.open()
        await populate(store)
        const all = await everyEntry(store)
        const snapshots = new Map<string, unknown>()
        for (const entity of ENTITIES) {
          const type = CONTRACT_SCHEMA.typeOf(entity)
          snapshots.set(entity, await store.snapshot('acme', entity, foldKey(type)))
        }
        const dir = mkdtempSync(join(tmpdir(), 'll-ret-export-'))
        cleanups.push(() => rmSync(dir, { recursive: true, force: true }))

        const manifest = await exportRetention(store, CONTRACT_SCHEMA, { before: HORIZON, dir })
        // What may go: snapshotted ledger entities, committed before the horizon.
        const droppable = all.filter(
          (e) => !UNSNAPSHOTTED.includes(e.entity) && e.committedAt < HORIZON,
        )
        expect(droppable.length).toBeGreaterThan(0)
        const keptOf = (entity: string) => 1 + droppable.filter((e) => e.entity === entity).length
        expect(keptOf('stock/s0')).toBeGreaterThan(10)
        const lines = exportedLines(dir)
        expect(lines.map(key).sort()).toEqual(droppable.map(key).sort())
        expect(manifest.entries).toBe(droppable.length)
        expect(manifest.entities).toBe(ENTITIES.length - UNSNAPSHOTTED.length)
        expect(manifest.log).toEqual(await store.identity())
        expect(lines.every((l) => l.log === manifest.log.id && l.entry.id === l.id)).toBe(true)
        await expect(
          exportRetention(store, CONTRACT_SCHEMA, { before: HORIZON, dir }),
        ).rejects.toMatchObject({ code: 'export_exists' })

        // Refused, nothing deleted: no export; a damaged one; a raised fold version.
        await expect(
          dropRetention(store, CONTRACT_SCHEMA, { before: HORIZON, dir: undefined }),
        ).rejects.toMatchObject({ code: 'no_export' })
        const file = join(dir, manifest.files[0]?.name as string)
        const text = readFileSync(file, 'utf8')
        writeFileSync(file, text.replace('"version":1,', '"version":2,'))
        await expect(
          dropRetention(store, CONTRACT_SCHEMA, { before: HORIZON, dir }),
        ).rejects.toMatchObject({ code: 'export_damaged' })
        writeFileSync(file, text)
        await store.close()
        const raised = raisedStock()
        const moved = await place.open(raised)
        const refused = await dropRetention(moved, raised, { before: HORIZON, dir }).catch(
          (e: unknown) => e,
        )
        expect(refused).toBeInstanceOf(RetentionError)
        expect(refused).toMatchObject({ code: 'not_covered' })
        expect(await everyEntry(moved)).toEqual(all)
        await moved.close()

        // The drop, through the CLI: exactly the exported entries go.
        const out: string[] = []
        const schemaFile = join(dir, 'schema.mjs')
        writeFileSync(schemaFile, SCHEMA_MODULE)
        const cli = (verb: string, extra: string[]) =>
          runAdminCommand(
            [
              'retention',
              verb,
              '--before',
              new Date(HORIZON).toISOString(),
              ...extra,
              ...place.flags,
              '--schema',
              schemaFile,
            ],
            {},
            { out: (l) => out.push(l), err: (l) => out.push(l) },
          )
        expect(await cli('drop', [])).toBe(2)
        expect(out.at(-1)).toMatch(/no_export/)
        expect(await cli('drop', ['--export', dir])).toBe(0)
        expect(out.at(-1)).toMatch(new RegExp(`${droppable.length} entries of 10 entities dropped`))
        expect(await cli('drop', ['--export', dir])).toBe(0)
        expect(out.at(-1)).toMatch(
          new RegExp(`0 entries of 0 entities dropped \\(${droppable.length}`),
        )

        const after = await place.open()
        const gone = new Set(droppable.map(key))
        expect((await everyEntry(after)).map(key).sort()).toEqual(
          all
            .filter((e) => !gone.has(key(e)))
            .map(key)
            .sort(),
        )
        for (const entity of ENTITIES) {
          const type = CONTRACT_SCHEMA.typeOf(entity)
          expect(await after.snapshot('acme', entity, foldKey(type))).toEqual(snapshots.get(entity))
          const kept = keptOf(entity)
          expect({ entity, kept: await after.firstKept('acme', entity) }).toEqual({ entity, kept })
          expect((await after.readEntity('acme', entity, kept, 100)).map((e) => e.version)).toEqual(
            Array.from({ length: 41 - kept }, (_, i) => kept + i),
          )
        }
        await after.close()

        // Readers are told.
        const relay = await place.relay()
        const old = await socket(relay)
        old.send({
          type: 'subscribe',
          sub: 1,
          scope: ['*'],
          cursors: { 0: 1, 1: 1, 2: 1, 3: 1 },
          credit: 8,
        })
        const error = await old.next<ErrorMessage>((m) => m.type === 'error', WAIT_MS)
        expect(error.kind).toBe('history_dropped')
        expect((await old.closed).code).toBe(4410)

        const fresh = await socket(relay)
        const foldKeys = ['stock', 'order'].map((t) => foldKey(CONTRACT_SCHEMA.typeOf(`${t}/x`)))
        fresh.send({
          type: 'subscribe',
          sub: 1,
          scope: ['*'],
          cursors: {},
          credit: 64,
          bootstrap: { foldKeys, whole: [{ pattern: 'order/o0', since: 0 }] },
        })
        const snaps: string[] = []
        const versions = new Map<string, number[]>()
        for (;;) {
          const m = await fresh.next(
            (x) => x.type === 'snapshots' || x.type === 'entries' || x.type === 'error',
            WAIT_MS,
          )
          if (m.type === 'error') throw new Error(JSON.stringify(m))
          if (m.type === 'snapshots') {
            snaps.push(...(m as SnapshotsMessage).snapshots.map((s) => s.entity))
            continue
          }
          if (m.type !== 'entries') continue
          for (const e of m.entries)
            versions.set(e.entity, [...(versions.get(e.entity) ?? []), e.version])
          if (m.live) break
          fresh.send({ type: 'credit', sub: 1, pages: 1 })
        }
        // A whole rule does not leave out a snapshot that stands for dropped history.
        expect(snaps.sort()).toEqual(ENTITIES.filter((e) => !UNSNAPSHOTTED.includes(e)).sort())
        for (const entity of UNSNAPSHOTTED) {
          expect(versions.get(entity)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1))
        }
        expect(versions.get('stock/s0')).toBeUndefined() // its snapshot is at the head

        const s1 = keptOf('stock/s1')
        fresh.send({ type: 'fetch', req: 3, entity: 'stock/s1', before: s1 + 5 })
        const pages: FetchedMessage[] = []
        while (pages.at(-1)?.done !== true) {
          pages.push(await fresh.next<FetchedMessage>((x) => x.type === 'fetched', WAIT_MS))
        }
        expect(pages.every((p) => p.dropped === s1)).toBe(true)
        expect(pages.flatMap((p) => p.entries.map((e) => e.version))).toEqual(
          Array.from({ length: 5 }, (_, i) => s1 + i),
        )
      }, 120_000)
    },
  )
}

/** The contract schema with the stock type's fold version raised (a changed reduce). */
function raisedStock(): Schema {
  const stock = { ...CONTRACT_SCHEMA.typeOf('stock/x'), version: 2 }
  const find = (entity: string) =>
    entity.startsWith('stock/') ? stock : CONTRACT_SCHEMA.find(entity)
  return {
    types: new Map([...CONTRACT_SCHEMA.types].map(([k, t]) => [k, k === 'stock' ? stock : t])),
    find,
    typeOf: (entity) => find(entity) ?? CONTRACT_SCHEMA.typeOf(entity),
  }
}

/** The contract schema as a module the CLI loads (`--schema`). */
const TESTKIT = fileURLToPath(new URL('../../testkit/dist/index.js', import.meta.url))
const SCHEMA_MODULE = `export { CONTRACT_SCHEMA as default } from ${JSON.stringify(TESTKIT)}\n`

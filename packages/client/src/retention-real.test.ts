// Goal: after an operator's retention drop (issue 17), clients are never shown a silent gap, on
// SQLite and PostgreSQL: a register whose cursors point below the dropped history is closed
// `history_dropped` by the relay, subscribes again with a bootstrap and ends with the server's
// confirmed state, with what it appended offline landing once (nothing lost from its outbox); a
// new register bootstraps to the server's state; `history()` with a fetch says `dropped`.
// Method: real clients (fake-indexeddb, `ws`) against a real relay (test-support/edge-relay.ts;
// PostgreSQL on the private cluster, skipped when absent). The old register syncs 10 versions
// of 6 entities and closes; a writer takes them to 40, the snapshot pass writes snapshots (at 32
// or later); the relay stops, `exportRetention` + `dropRetention` take every version below the
// snapshot (and the head) out of the log (the
// library the CLI runs), the relay starts again on the same log.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { IDBFactory } from 'fake-indexeddb'
import { describe, expect, it } from 'vitest'
import type { StoredEntry } from '@ledgerline/core'
import {
  createPostgresStore,
  createSqliteStore,
  dropRetention,
  exportRetention,
  SQLITE_LOG_FILE,
} from '@ledgerline/relay'
import { LOG_KINDS, TENANT, useEdgeServers } from '../test-support/edge-relay.ts'
import type { EdgeServer } from '../test-support/edge-relay.ts'
import { eventually, schema, seededRandom, testSeed } from '../test-support/setup.ts'
import type { Client } from './index.ts'

const startEdgeServer = useEdgeServers()
const ENTITIES = [
  ...Array.from({ length: 4 }, (_, i) => `stock/s${i}`),
  ...Array.from({ length: 2 }, (_, i) => `order/o${i}`),
]
const WAIT_MS = 30_000

function draft(entity: string, n: number) {
  return entity.startsWith('stock/')
    ? { entity, kind: 'stock.moved', data: { qty: (n % 5) + 1 } }
    : { entity, kind: 'order.line', data: { n } }
}

function foldOf(ledger: readonly StoredEntry[], entity: string) {
  const type = schema.typeOf(entity)
  let state: unknown = type.initial
  for (const e of ledger) state = type.reduce(state, e)
  return { state, version: ledger.at(-1)?.version ?? 0 }
}

async function appendRounds(client: Client, rounds: number): Promise<void> {
  for (let r = 0; r < rounds; r++) await client.appendMany(ENTITIES.map((e) => draft(e, r)))
  expect(await client.synced({ timeoutMs: WAIT_MS })).toEqual({ _tag: 'synced' })
}

/**
 * Stops the relay, exports and drops what snapshots cover, starts it again; each entity's first
 * kept version.
 */
async function dropCovered(server: EdgeServer): Promise<Map<string, number>> {
  await server.stop()
  const place = server.place
  const store =
    place.kind === 'sqlite'
      ? await createSqliteStore({ file: join(place.dataDir, SQLITE_LOG_FILE), schema })
      : await createPostgresStore({ url: place.url, schema })
  const dir = mkdtempSync(join(tmpdir(), 'll-retention-'))
  try {
    const before = Date.now() + 1_000
    const manifest = await exportRetention(store, schema, { before, dir })
    const dropped = await dropRetention(store, schema, { before, dir })
    expect(dropped.entries).toBe(manifest.entries)
    const kept = new Map<string, number>()
    for (const entity of ENTITIES) kept.set(entity, await store.firstKept(TENANT, entity))
    return kept
  } finally {
    await store.close()
    rmSync(dir, { recursive: true, force: true })
    await server.start()
  }
}

for (const kind of LOG_KINDS) {
  describe(`retention with a real relay: ${kind}`, () => {
    it('an old cursor meets history_dropped and recovers by bootstrap, outbox intact; new registers bootstrap; history says dropped', async () => {
      const server = await startEdgeServer(kind, { limits: { pageEntriesMax: 16 } })
      const oldIdb = new IDBFactory()
      const openOld = () =>
        server.open({ dbName: 'old', idb: oldIdb, random: seededRandom(testSeed('old')) })
      const seed = server.open({ dbName: 'seed', random: seededRandom(testSeed('seed')) })
      let old = openOld()
      await appendRounds(seed, 10)
      await eventually(
        async () => (await old.load(ENTITIES[0] as string)).version === 10,
        WAIT_MS,
        'the old register holds version 10',
      )
      await old.close()
      await appendRounds(seed, 30)
      const snapshotter = server.relay.ledgerSnapshots
      await eventually(
        () => (snapshotter?.counts().written ?? 0) >= ENTITIES.length,
        WAIT_MS,
        'the snapshot pass wrote a snapshot of every entity',
      )
      await snapshotter?.idle()
      // The whole ledger as it stood, for the truth after the drop.
      const before = new Map<string, StoredEntry[]>()
      for (const entity of ENTITIES) before.set(entity, await server.entries(entity))
      // Versions below each entity's snapshot (at 32 or later) and its head.
      const firstKept = await dropCovered(server)
      for (const kept of firstKept.values()) expect(kept).toBeGreaterThan(32)

      // The old register appends while still offline, then connects with its stale cursors.
      old = openOld()
      const offline = await old.appendMany(ENTITIES.map((e) => draft(e, 99)))
      expect(await old.synced({ timeoutMs: WAIT_MS })).toEqual({ _tag: 'synced' })
      const fresh = server.open({ dbName: 'fresh', random: seededRandom(testSeed('fresh')) })
      expect(await fresh.synced({ timeoutMs: WAIT_MS })).toEqual({ _tag: 'synced' })
      const truth = async (entity: string) => {
        const later = await server.relay.store.readEntity(TENANT, entity, 41, 1_000)
        return foldOf([...(before.get(entity) ?? []), ...later], entity)
      }
      await eventually(
        async () => {
          for (const entity of ENTITIES) {
            const want = await truth(entity)
            for (const c of [old, fresh])
              if ((await c.load(entity)).version !== want.version) return false
          }
          return true
        },
        WAIT_MS,
        'both registers hold every entity up to the server head',
      )
      const offlineIds = new Set(offline.map((r) => r.id))
      for (const entity of ENTITIES) {
        const want = await truth(entity)
        expect(want.version).toBe(41)
        for (const [name, c] of [
          ['old', old],
          ['fresh', fresh],
        ] as const) {
          const got = await c.load(entity)
          expect({ name, entity, confirmed: got.confirmed, version: got.version }).toEqual({
            name,
            entity,
            confirmed: want.state,
            version: want.version,
          })
        }
        // The offline entry landed once, after the dropped history.
        const from = firstKept.get(entity) as number
        const kept = await server.relay.store.readEntity(TENANT, entity, from, 1_000)
        expect(kept.filter((e) => offlineIds.has(e.id))).toHaveLength(1)
        const h = await fresh.history(entity, { fetch: true })
        expect({ entity, dropped: h.dropped, from: h.from, complete: h.complete }).toEqual({
          entity,
          dropped: from,
          from,
          complete: false,
        })
        expect(h.items.map((it) => it.entry.id)).toEqual(kept.map((e) => e.id))
      }
      expect((await old.status()).outboxEntries ?? 0).toBe(0)
    }, 180_000)
  })
}

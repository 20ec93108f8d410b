// Goal: a new register bootstraps from the relay's ledger snapshots while two others append to
// the same entities, and its confirmed state equals a full replay client's and the server's,
// with no entry missing or doubled (issue 17's done-when), on SQLite and PostgreSQL; then it
// fetches history on demand and holds the whole ledger, entry for entry.
// Method: real clients (fake-indexeddb, `ws`) against a real in-process relay on each server
// log (test-support/edge-relay.ts; PostgreSQL on the private cluster, skipped saying why when
// absent), small pages so catch-up takes many. The full-replay register subscribes while the log
// is empty (so it gets every entry), then a writer fills 12 entities to 40 versions; once the
// relay's snapshot pass wrote their snapshots (every 32 versions), the new register bootstraps
// while two writers append to the same entities.
import { describe, expect, it } from 'vitest'
import type { StoredEntry } from '@ledgerline/core'
import { LOG_KINDS, useEdgeServers } from '../test-support/edge-relay.ts'
import type { EdgeServer } from '../test-support/edge-relay.ts'
import { eventually, schema, seededRandom, testSeed } from '../test-support/setup.ts'
import type { Client } from './index.ts'

const startEdgeServer = useEdgeServers()

const ENTITIES = [
  ...Array.from({ length: 8 }, (_, i) => `stock/s${i}`),
  ...Array.from({ length: 4 }, (_, i) => `order/o${i}`),
]
const WAIT_MS = 30_000

function open(server: EdgeServer, name: string): Client {
  return server.open({ dbName: name, random: seededRandom(testSeed(name)) })
}

function draft(entity: string, n: number) {
  return entity.startsWith('stock/')
    ? { entity, kind: 'stock.moved', data: { qty: (n % 5) + 1 } }
    : { entity, kind: 'order.line', data: { n } }
}

/** The server's fold of `entity`: state and version, and its entry ids in version order. */
function folded(ledger: readonly StoredEntry[], entity: string) {
  const type = schema.typeOf(entity)
  let state: unknown = type.initial
  for (const e of ledger) state = type.reduce(state, e)
  return { state, version: ledger.at(-1)?.version ?? 0 }
}

for (const kind of LOG_KINDS) {
  describe(`bootstrap with a real relay: ${kind}`, () => {
    it('a new register bootstraps under concurrent appends: its state equals a full replay, nothing missing or doubled', async () => {
      const server = await startEdgeServer(kind, { limits: { pageEntriesMax: 16 } })
      // The full-replay register subscribes before any snapshot exists: it gets every entry.
      const replay = open(server, 'replay')
      const seed = open(server, 'seed')
      expect(await replay.synced({ timeoutMs: WAIT_MS })).toEqual({ _tag: 'synced' })
      for (let round = 0; round < 4; round++)
        await seed.appendMany(
          ENTITIES.flatMap((e) => Array.from({ length: 10 }, (_, n) => draft(e, n))),
        )
      expect(await seed.synced({ timeoutMs: WAIT_MS })).toEqual({ _tag: 'synced' })
      const snapshotter = server.relay.ledgerSnapshots
      expect(snapshotter).toBeDefined()
      await eventually(
        () => (snapshotter?.counts().written ?? 0) >= ENTITIES.length,
        WAIT_MS,
        'the snapshot pass wrote a snapshot of every entity',
      )

      // Two writers append to the same entities while the new register bootstraps.
      const a = open(server, 'writer-a')
      const b = open(server, 'writer-b')
      const fresh = open(server, 'fresh')
      const writing = [a, b].map(async (w, i) => {
        for (let batch = 0; batch < 6; batch++) {
          await w.appendMany(
            ENTITIES.slice(batch * 2, batch * 2 + 2).flatMap((e) =>
              Array.from({ length: 2 + i }, (_, n) => draft(e, n)),
            ),
          )
          await new Promise((r) => setTimeout(r, 5))
        }
      })
      await Promise.all(writing)
      for (const c of [a, b, fresh, replay])
        expect(await c.synced({ timeoutMs: WAIT_MS })).toEqual({ _tag: 'synced' })
      // `synced()` is about a client's own entries: the writers' last entries reach the two
      // readers live, a moment later. Wait until both hold the server's head of every entity.
      await eventually(
        async () => {
          for (const entity of ENTITIES) {
            const head = (await server.entries(entity)).at(-1)?.version ?? 0
            for (const c of [fresh, replay])
              if ((await c.load(entity)).version !== head) return false
          }
          return true
        },
        WAIT_MS,
        'both readers hold every entity up to the server head',
      )

      let fromSnapshot = 0
      for (const entity of ENTITIES) {
        const ledger = await server.entries(entity)
        const truth = folded(ledger, entity)
        const got = await fresh.load(entity)
        const full = await replay.load(entity)
        expect({ entity, confirmed: got.confirmed, version: got.version }).toEqual({
          entity,
          confirmed: truth.state,
          version: truth.version,
        })
        expect({ entity, confirmed: full.confirmed, version: full.version }).toEqual({
          entity,
          confirmed: got.confirmed,
          version: got.version,
        })
        // The entries held after the snapshot are the server's, each once, without a gap.
        const held = await fresh.history(entity)
        if (!held.complete) fromSnapshot++
        const ids = held.items.map((it) => it.entry.id)
        expect(new Set(ids).size).toBe(ids.length)
        expect(ids).toEqual(ledger.filter((e) => e.version >= held.from).map((e) => e.id))
        const replayed = (await replay.history(entity)).items.map((it) => it.entry.id)
        expect(replayed).toEqual(ledger.map((e) => e.id))
      }
      expect(fromSnapshot).toBe(ENTITIES.length) // every entity started from a snapshot

      // History on demand: the whole ledger, entry for entry, and the state unchanged.
      const whole = await Promise.all(ENTITIES.map((e) => fresh.history(e, { fetch: true })))
      for (const [i, h] of whole.entries()) {
        const entity = ENTITIES[i] as string
        const ledger = await server.entries(entity)
        expect({ entity, complete: h.complete, from: h.from }).toEqual({
          entity,
          complete: true,
          from: 1,
        })
        expect(h.items.map((it) => it.entry.id)).toEqual(ledger.map((e) => e.id))
        expect((await fresh.load(entity)).confirmed).toEqual(folded(ledger, entity).state)
      }
    }, 120_000)
  })
}

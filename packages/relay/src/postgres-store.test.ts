// Goal: the PostgreSQL log keeps every guarantee of `log-store.ts` (the same conformance suite
// as SQLite, unchanged) plus what only a shared database can show: two stores (two relays) on
// one database racing on one entity, seeing each other's commits through NOTIFY or polling,
// migrations that two starts run at once, and acked entries surviving an immediate shutdown.
// Method: one private cluster for the file (initdb in a temp dir, loopback port), a fresh
// database per test (CREATE DATABASE); skipped, saying why, when no PostgreSQL binaries exist.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readFileSync } from 'node:fs'
import { serialize } from 'node:v8'
import pg from 'pg'
import { entryId, partitionOf } from '@ledgerline/core'
import type { Entry } from '@ledgerline/core'
import type { AckResult } from '@ledgerline/protocol'
import type { AppendResult } from './log-store.ts'
import { CONTRACT_SCHEMA, createPostgresFixture, runLogStoreContract } from '@ledgerline/testkit'
import type { LogStore } from './log-store.ts'
import { RelayError } from './relay-error.ts'
import { PG_MIGRATIONS } from './postgres-migrations.ts'
import { createPostgresStore } from './postgres-store.ts'
import { checkUpgradedLog } from './log-upgrade.test-helper.ts'

const postgres = createPostgresFixture('t')
if (postgres.skipReason !== undefined) {
  // oxlint-disable-next-line no-console
  console.warn(`PostgreSQL log tests skipped: ${postgres.skipReason}`)
}
const freshDatabase = () => postgres.database()

describe.skipIf(postgres.skipReason !== undefined)(`PostgreSQL log${postgres.skipNote}`, () => {
  beforeAll(async () => {
    await postgres.cluster()
  })
  afterAll(() => postgres.stop())

  runLogStoreContract('postgres', async ({ schema, partitions, now, commitQueueEntriesMax }) => {
    const url = await freshDatabase()
    let current = schema
    const open = () =>
      createPostgresStore({ url, schema: current, partitions, now, commitQueueEntriesMax })
    let store = await open()
    let closed = false
    return {
      store,
      reopen: async (options = {}) => {
        await store.close()
        if ('schema' in options) current = options.schema
        store = await open()
        return store
      },
      cleanup: async () => {
        if (!closed) await store.close()
        closed = true
      },
    }
  })

  describe('PostgreSQL log specifics', () => {
    it('lets exactly one of 32 conditional appends win across two stores, every round', async () => {
      // Goal: decisions are made against the database under lock, not a relay's cache, so
      // two relays cannot both win. Method: two stores on one database; per round 32 requests
      // with the same `expect` on one entity, split over both stores and over 32 calls.
      const url = await freshDatabase()
      const a = await createPostgresStore({ url, schema: CONTRACT_SCHEMA, partitions: 4 })
      const b = await createPostgresStore({ url, schema: CONTRACT_SCHEMA, partitions: 4 })
      try {
        const clients = Array.from({ length: 32 }, (_, i) => makeClient(100 + i))
        for (let round = 0; round < 5; round++) {
          const results = await Promise.all(
            clients.map((c, i) =>
              (i % 2 === 0 ? a : b).append('acme', [
                {
                  entry: c.next(
                    'order/race',
                    'order.line',
                    {},
                    { intent: 'request', expect: round },
                  ),
                },
              ]),
            ),
          )
          const won = results.flat().filter((r) => r.status === 'appended')
          expect(won).toHaveLength(1)
          expect(won[0]).toMatchObject({ version: round + 1 })
          const refused = results.flat().filter((r) => r.status === 'refused')
          expect(refused).toHaveLength(31)
          expect(refused.every((r) => r.code === 'conflict' && r.head === round + 1)).toBe(true)
        }
        expect(await a.head('acme', 'order/race')).toMatchObject({ version: 5 })
        const ledger = await b.readEntity('acme', 'order/race', 1, 100)
        expect(ledger.map((e) => e.version)).toEqual([1, 2, 3, 4, 5])
      } finally {
        await a.close()
        await b.close()
      }
    })

    it('keeps offsets gap-free and states right when two stores interleave on one partition', async () => {
      // Goal: the per-partition head row gives gap-free offsets in commit order under two
      // writers, and a store's cached entity state is checked against the database version.
      // Method: two stores append facts to the same stock entity alternately and at once;
      // the corrections (oversold) only come out right if each store folds the other's entries.
      const url = await freshDatabase()
      const a = await createPostgresStore({ url, schema: CONTRACT_SCHEMA, partitions: 2 })
      const b = await createPostgresStore({ url, schema: CONTRACT_SCHEMA, partitions: 2 })
      try {
        const ca = makeClient(1)
        const cb = makeClient(2)
        await a.append('acme', [{ entry: ca.next('stock/s', 'stock.moved', { qty: 3 }) }])
        // b has no cached state; a caches onHand 3. b takes 2, then a takes 2: oversold by 1.
        await b.append('acme', [{ entry: cb.next('stock/s', 'stock.moved', { qty: -2 }) }])
        const [r] = await a.append('acme', [
          { entry: ca.next('stock/s', 'stock.moved', { qty: -2 }) },
        ])
        expect(r?.status).toBe('appended')
        expect(r?.status === 'appended' && r.corrections.length).toBe(1)
        const [fix] = await b.readEntity('acme', 'stock/s', 4, 1)
        expect(fix?.data).toEqual({ short: 1, sale: ca.clientId + '-2' })
        const all = await Promise.all(
          Array.from({ length: 40 }, (_, i) =>
            (i % 2 === 0 ? a : b).append('acme', [
              {
                entry: (i % 2 === 0 ? ca : cb).next(`stock/k${i % 5}`, 'stock.moved', {
                  qty: 1,
                }),
              },
            ]),
          ),
        )
        expect(all.flat().every((x) => x.status === 'appended')).toBe(true)
        const heads = await a.partitionHeads()
        let total = 0
        for (let p = 0; p < 2; p++) {
          const page = await b.readPartition('acme', p, 0, 1000)
          expect(page.entries.map((e) => e.offset)).toEqual(
            Array.from({ length: heads[p] as number }, (_, i) => i + 1),
          )
          total += page.entries.length
        }
        expect(total).toBe(44)
      } finally {
        await a.close()
        await b.close()
      }
    })

    it("tells a store's listeners of another store's commits (NOTIFY, else polling)", async () => {
      // Goal: relays wake each other with one NOTIFY per committed batch, and polling finds
      // commits whose notification was missed. Method: b listens; a appends a batch touching
      // several partitions; b (polling only every minute) hears them in one call. A third
      // store that does not LISTEN at all (as on engines without NOTIFY) hears them by polling.
      const url = await freshDatabase()
      const a = await createPostgresStore({ url, partitions: 8 })
      const b = await createPostgresStore({ url, partitions: 8, pollIntervalMs: 60_000 })
      const c = await createPostgresStore({
        url,
        partitions: 8,
        pollIntervalMs: 100,
        listen: false,
      })
      try {
        const cl = makeClient(7)
        const entities = ['doc/a', 'doc/b', 'doc/c', 'doc/d']
        const parts = [...new Set(entities.map((e) => partitionOf('acme', e, 8)))].sort()
        const heardB: number[][] = []
        const heardC: number[][] = []
        b.onCommit((ps) => heardB.push([...ps]))
        c.onCommit((ps) => heardC.push([...ps]))
        await sleep(300) // LISTEN connections are up
        await a.append(
          'acme',
          entities.map((e) => ({ entry: cl.next(e, 'doc.updated', {}) })),
        )
        await waitFor(() => heardB.length > 0 && heardC.length > 0)
        // One notification for the whole batch (b polls only every minute).
        expect(heardB).toEqual([parts])
        expect(heardC.flat().sort()).toEqual(parts)
      } finally {
        await a.close()
        await b.close()
        await c.close()
      }
    })

    it('runs migrations once when several stores start at once, and keeps the partition count', async () => {
      // Goal: migrations are versioned and safe when relays start together (advisory lock).
      // Method: four stores start on an empty database at the same time with different
      // partition options; all agree on the first count and the migration is recorded once.
      const url = await freshDatabase()
      const stores = await Promise.all(
        [4, 8, 2, 16].map((partitions) => createPostgresStore({ url, partitions })),
      )
      try {
        const counts = new Set(stores.map((s) => s.partitions))
        expect(counts.size).toBe(1)
        const client = new pg.Client({ connectionString: url })
        await client.connect()
        try {
          const m = await client.query('select version from ledgerline_migrations')
          expect(m.rows).toEqual(PG_MIGRATIONS.map((_, i) => ({ version: i + 1 })))
          const h = await client.query('select count(*)::int as n from ledgerline_partition_heads')
          expect(h.rows[0]).toEqual({ n: stores[0]?.partitions })
        } finally {
          await client.end()
        }
      } finally {
        await Promise.all(stores.map((s) => s.close()))
      }
    })

    it('refuses every update, delete and truncate of entries and refusals', async () => {
      // Goal: guarantee 6 holds whoever writes to the database, not only through the store
      // (issue 13 case 10; SQLite has had triggers since its schema version 2). Method:
      // append a fact, then try to edit, delete and truncate it and a refusal over a raw
      // connection; each fails and the rows are unchanged.
      const url = await freshDatabase()
      const store = await createPostgresStore({ url, partitions: 4 })
      const c = makeClient(900)
      await store.append('acme', [{ entry: c.next('stock/a', 'stock.moved', { qty: 1 }) }])
      await store.close()
      const client = new pg.Client({ connectionString: url })
      await client.connect()
      try {
        const refused = (sql: string) => expect(client.query(sql)).rejects.toThrow(/append-only/)
        await refused('update ledgerline_entries set version = 99')
        await refused('delete from ledgerline_entries')
        await refused('truncate ledgerline_entries')
        await client.query(
          `insert into ledgerline_refusals (tenant, id, code, reason, head)
             values ('acme', 'x', 'conflict', 'r', 0)`,
        )
        await refused(`update ledgerline_refusals set reason = 'other'`)
        await refused('delete from ledgerline_refusals')
        await refused('truncate ledgerline_refusals')
        const rows = await client.query('select version::int as version from ledgerline_entries')
        expect(rows.rows).toEqual([{ version: 1 }])
        const kept = await client.query('select reason from ledgerline_refusals')
        expect(kept.rows).toEqual([{ reason: 'r' }])
      } finally {
        await client.end()
      }
    })

    it('migrates a log 03f500b wrote: digests from bodies, old deferrable refusals decided again, an identity', async () => {
      // Goal: migration 3 on a log main's code wrote (as the SQLite test; see
      // `log-upgrade.test-helper.ts`). Method: restore `fixtures/log-03f500b.postgres.sql`
      // (pg_dump of it) into a fresh database, open the store on it, check what it answers,
      // then the rows: digests of client entries, the trigger still on.
      const url = await freshDatabase()
      const dump = readFileSync(new URL('./fixtures/log-03f500b.postgres.sql', import.meta.url))
      // The dump empties `search_path` for its session: a connection of its own.
      const restore = new pg.Client({ connectionString: url })
      await restore.connect()
      try {
        await restore.query(dump.toString('utf8'))
      } finally {
        await restore.end()
      }
      let store: LogStore | undefined
      try {
        await checkUpgradedLog(async (schema) => {
          await store?.close()
          store = await createPostgresStore({ url, schema })
          return store
        })
      } finally {
        await store?.close()
      }
      const client = new pg.Client({ connectionString: url })
      await client.connect()
      try {
        const m = await client.query('select max(version) as v from ledgerline_migrations')
        expect(m.rows[0]).toEqual({ v: PG_MIGRATIONS.length })
        const rows = await client.query<{ id: string; digest: Buffer | null }>(
          'select id, digest from ledgerline_entries order by seq',
        )
        // Client entries have a digest of their body; entries of the log have none.
        expect(rows.rows.map((r) => [r.id, r.digest?.length ?? null])).toEqual(
          rows.rows.map((r) => [r.id, r.id.includes('~') ? null : 32]),
        )
        await expect(client.query('update ledgerline_entries set version = 99')).rejects.toThrow(
          /append-only/,
        )
      } finally {
        await client.end()
      }
    })

    it('reads entry bodies an earlier Ledgerline wrote with node:v8', async () => {
      // Goal: bodies moved to MessagePack; rows written before still read and decide.
      // Method: write one row as the relay of 3a8bfae did (a v8 body, its head row moved),
      // then read it through the store, resend it (duplicate) and append after it.
      const url = await freshDatabase()
      const store = await createPostgresStore({ url, partitions: 4 })
      const c = makeClient(901)
      const first = c.next('stock/a', 'stock.moved', { qty: 1, bytes: new Uint8Array([7, 8]) })
      const p = partitionOf('acme', 'stock/a', 4)
      const client = new pg.Client({ connectionString: url })
      await client.connect()
      try {
        await client.query(
          `insert into ledgerline_entries
               (partition, "offset", tenant, id, entity, version, corrects, committed_at, body)
             values ($1, 1, 'acme', $2, 'stock/a', 1, null, 1700000000000, $3)`,
          [p, first.id, serialize(first)],
        )
        await client.query(`update ledgerline_partition_heads set head = 1 where partition = $1`, [
          p,
        ])
        await client.query(
          `insert into ledgerline_clients (tenant, client_id, high) values ('acme', $1, 1)`,
          [c.clientId],
        )
      } finally {
        await client.end()
      }
      try {
        const [back] = await store.readEntity('acme', 'stock/a', 1, 1)
        expect(back).toMatchObject({ ...first, version: 1, offset: 1 })
        expect((back?.data as { bytes?: unknown } | undefined)?.bytes).toBeInstanceOf(Uint8Array)
        const [dup] = await store.append('acme', [{ entry: first }])
        expect(dup).toMatchObject({ status: 'duplicate', version: 1 })
        const [next] = await store.append('acme', [
          { entry: c.next('stock/a', 'stock.moved', { qty: 2 }) },
        ])
        expect(next).toMatchObject({ status: 'appended', version: 2, offset: 2 })
        expect((await store.readEntity('acme', 'stock/a', 1, 10)).map((e) => e.data)).toEqual([
          { qty: 1, bytes: new Uint8Array([7, 8]) },
          { qty: 2 },
        ])
      } finally {
        await store.close()
      }
    })

    it('refuses a database that does not fsync commits', async () => {
      // Goal: guarantee 2 (ack after durable) is asserted at start. Method: a pool whose
      // sessions run with synchronous_commit=off is refused with RelayError('durability').
      const url = await freshDatabase()
      const pool = new pg.Pool({ connectionString: url, options: '-c synchronous_commit=off' })
      try {
        await expect(createPostgresStore({ pool })).rejects.toMatchObject({
          kind: 'durability',
        })
        await expect(createPostgresStore({ pool })).rejects.toBeInstanceOf(RelayError)
      } finally {
        await pool.end()
      }
    })

    it('keeps every acked entry exactly once across an immediate shutdown during appends', async () => {
      // Goal: ack after durable, and exactly once through a database crash. Method: 8 clients
      // push in a loop through one store; `pg_ctl stop -m immediate` (no checkpoint, WAL
      // replay on start) mid-run; restart; clients resend everything not acked, in order.
      // Then every acked id is in the log exactly once and each client's ledger is dense.
      const url = await freshDatabase()
      const c = await postgres.cluster()
      let store: LogStore = await createPostgresStore({ url, partitions: 4, pollIntervalMs: 200 })
      const clients = Array.from({ length: 8 }, (_, i) => makeClient(200 + i))
      const acked = new Set<string>()
      let stop = false
      let failures = 0
      const unexpected: AckResult[] = []
      const pusher = async (i: number) => {
        const cl = clients[i] as ReturnType<typeof makeClient>
        const outbox: Entry[] = []
        while (!stop || outbox.length > 0) {
          if (!stop && outbox.length < 5) {
            outbox.push(cl.next(`doc/c${i}-${outbox.length % 3}`, 'doc.updated', { i }))
          }
          let results: AppendResult[]
          try {
            results = await store.append(
              'acme',
              outbox.map((entry) => ({ entry })),
            )
          } catch {
            failures++
            await sleep(50)
            if (stop && failures > 2_000) break
            continue
          }
          for (const r of results) {
            if (r.status === 'refused') unexpected.push(r)
            acked.add(r.id)
          }
          outbox.splice(0)
        }
      }
      const pushers = clients.map((_, i) => pusher(i))
      await waitFor(() => acked.size >= 200)
      const before = acked.size
      const pidBefore = c.pid
      c.kill('immediate')
      await sleep(300)
      c.start()
      // Generous: crash recovery on a busy 2-core machine can take many seconds.
      await waitFor(() => acked.size >= before + 100, 60_000)
      stop = true
      await Promise.all(pushers)
      await store.close()
      store = await createPostgresStore({ url })
      try {
        expect(unexpected).toEqual([])
        const client = new pg.Client({ connectionString: url })
        await client.connect()
        try {
          const { rows } = await client.query<{ id: string; n: number }>(
            'select id, count(*)::int as n from ledgerline_entries group by id',
          )
          const counts = new Map(rows.map((r) => [r.id, r.n]))
          for (const id of acked) expect(counts.get(id)).toBe(1)
          expect([...counts.values()].every((n) => n === 1)).toBe(true)
          // Nothing committed that a client did not eventually get acked.
          expect(counts.size).toBe(acked.size)
        } finally {
          await client.end()
        }
        for (const cl of clients)
          expect((await store.client('acme', cl.clientId)).high).toBe(cl.seq)
        // The store retries a group through the restart (PG_APPEND_ATTEMPTS_MAX), so calls
        // usually ride it out; when they do not, the pushers resend. Either way: exactly once.
        expect(c.pid).not.toBe(pidBefore)
      } finally {
        await store.close()
      }
    }, 120_000)
  })
})

// ---------------------------------------------------------------------------------------------

function makeClient(n: number) {
  const clientId = n.toString(16).padStart(32, '0')
  const state = {
    clientId,
    seq: 0,
    next(
      entity: string,
      kind: string,
      data: Entry['data'],
      extra: { intent?: 'fact' | 'request'; expect?: number } = {},
    ): Entry {
      state.seq += 1
      return {
        id: entryId(clientId, state.seq),
        tenant: 'acme',
        entity,
        kind,
        data,
        intent: extra.intent ?? 'fact',
        ...(extra.expect === undefined ? {} : { expect: extra.expect }),
        clientId,
        clientSeq: state.seq,
        hlc: `${String(1_700_000_000_000 + state.seq).padStart(15, '0')}:00000:${clientId}`,
        occurredAt: 1_700_000_000_000,
      }
    },
  }
  return state
}

async function waitFor(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const start = Date.now()
  while (!check()) {
    if (Date.now() - start > timeoutMs) throw new Error('timed out waiting')
    await sleep(20)
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

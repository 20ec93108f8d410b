// Goal: `readLedgers` (`ledger-reads.ts` of `@ledgerline/log`, the snapshot walk's read) answers
// every read as `snapshot()` then `readHistory()` from just after it would, in one call: on
// the SQLite log (one statement for all reads, rows in file order), the PostgreSQL log (one
// REPEATABLE READ transaction; skipped without PostgreSQL) and the memory log.
// Method: two tenants, ledgers written interleaved (so one entity's rows are spread through the
// file), snapshots planted at several versions, reads with limits below, at and above what is
// there, an entity the log never saw, a snapshot under another fold key and history dropped by
// retention below where a read starts; each tail compared with the per-entity reads.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { defineEntity, defineSchema, foldKey } from '@ledgerline/core'
import { createMemoryLogStore } from '@ledgerline/log'
import type { LedgerRead, LedgerReads, LedgerSnapshots, LogRetention } from '@ledgerline/log'
import { postgresSkipReason, startPostgresCluster } from '@ledgerline/testkit'
import type { PostgresCluster } from '@ledgerline/testkit'
import type { LogStore } from './log-store.ts'
import { createPostgresStore } from './postgres-store.ts'
import { createSqliteStore } from './sqlite-store.ts'

const stock = defineEntity<{ onHand: number }>({
  type: 'stock',
  initial: { onHand: 0 },
  reduce: (s, e) => ({ onHand: s.onHand + (e.data as { qty: number }).qty }),
})
const SCHEMA = defineSchema(stock)
const KEY = foldKey(stock)
const clientId = 'd'.repeat(32)

type Store = LogStore & LedgerSnapshots & LogRetention & LedgerReads
const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

async function fill(store: Store) {
  // clientSeq counts per tenant (a gap would be deferred); `n` across both.
  const seqs = new Map<string, number>()
  let n = 0
  const move = (tenant: string, entity: string) => {
    const seq = (seqs.get(tenant) ?? 0) + 1
    seqs.set(tenant, seq)
    n++
    const at = 1_700_000_000_000 + n
    return {
      entry: {
        id: `${clientId}-${seq}`,
        tenant,
        entity,
        kind: 'stock.moved',
        data: { qty: n % 5 },
        intent: 'fact' as const,
        clientId,
        clientSeq: seq,
        hlc: `${String(at).padStart(15, '0')}:00000:${clientId}`,
        occurredAt: at,
      },
    }
  }
  // Round by round: every entity's rows interleaved with the others'.
  for (let round = 0; round < 12; round++) {
    for (const tenant of ['acme', 'beta']) {
      const items = ['stock/a', 'stock/b', 'stock/c'].map((e) => move(tenant, e))
      const results = await store.append(tenant, items)
      expect(results.every((r) => r.status === 'appended')).toBe(true)
    }
  }
  for (const [tenant, entity, version, key] of [
    ['acme', 'stock/a', 4, KEY],
    ['beta', 'stock/b', 12, KEY],
    ['acme', 'stock/c', 7, 'stock@0'],
  ] as const) {
    const [at] = await store.readEntity(tenant, entity, version, 1)
    await store.putSnapshot(tenant, {
      entity,
      foldKey: key,
      version,
      partition: at?.partition ?? 0,
      offset: at?.offset ?? 0,
      committedAt: at?.committedAt ?? 0,
      state: { onHand: 1000 + version },
    })
  }
  // Retention: versions 1..4 of acme's stock/a dropped, under its snapshot at 4.
  const dropped = await store.readEntity('acme', 'stock/a', 1, 4)
  const cut = {
    tenant: 'acme',
    entity: 'stock/a',
    foldKey: KEY,
    from: 1,
    through: 4,
    offsets: dropped.map((e) => e.offset),
  }
  expect(await store.dropHistory([cut])).toMatchObject({ _tag: 'dropped', entries: 4 })
}

const READS: LedgerRead[] = [
  { tenant: 'acme', entity: 'stock/a', foldKey: KEY, limit: 3 },
  { tenant: 'acme', entity: 'stock/a', foldKey: KEY, limit: 100 },
  { tenant: 'beta', entity: 'stock/a', foldKey: KEY, limit: 12 },
  { tenant: 'beta', entity: 'stock/b', foldKey: KEY, limit: 5 },
  { tenant: 'acme', entity: 'stock/c', foldKey: KEY, limit: 20 },
  { tenant: 'acme', entity: 'stock/never', foldKey: KEY, limit: 5 },
  { tenant: 'gamma', entity: 'stock/a', foldKey: KEY, limit: 5 },
  { tenant: 'beta', entity: 'stock/c', foldKey: KEY, limit: 0 },
  // No snapshot under this key: from version 1, which was dropped.
  { tenant: 'acme', entity: 'stock/a', foldKey: 'stock@0', limit: 5 },
]

/** Fills `store` and checks every tail against the per-entity reads (the test's assertions). */
async function expectSameAsOneByOne(store: Store) {
  await fill(store)
  const tails = await store.readLedgers(READS)
  expect(tails).toHaveLength(READS.length)
  for (const [i, r] of READS.entries()) {
    const snapshot = await store.snapshot(r.tenant, r.entity, r.foldKey)
    const from = (snapshot?.version ?? 0) + 1
    expect(tails[i]?.snapshot).toEqual(snapshot)
    expect(tails[i]?.read).toEqual(await store.readHistory(r.tenant, r.entity, from, r.limit))
  }
  // Not vacuous: the cut, the tail after a snapshot, the nothing-after-it and the never-seen.
  const counts = tails.map((t) => (t.read._tag === 'entries' ? t.read.entries.length : -1))
  expect(counts).toEqual([3, 8, 12, 0, 12, 0, 0, 0, -1])
  expect(tails.at(-1)?.read).toEqual({ _tag: 'dropped', firstKept: 5 })
  const after = tails[1]?.read
  expect(after?._tag === 'entries' && after.entries.map((e) => e.version)).toEqual([
    5, 6, 7, 8, 9, 10, 11, 12,
  ])
}

it('SQLite: readLedgers equals snapshot + readHistory per read, in one call', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'll-ledger-reads-'))
  dirs.push(dir)
  const store = await createSqliteStore({ file: join(dir, 'log.sqlite'), schema: SCHEMA })
  try {
    await expect(expectSameAsOneByOne(store)).resolves.toBeUndefined()
  } finally {
    await store.close()
  }
})

it('memory: readLedgers equals snapshot + readHistory per read, in one call', async () => {
  const store = createMemoryLogStore({ schema: SCHEMA, partitions: 4 })
  await expect(expectSameAsOneByOne(store)).resolves.toBeUndefined()
})

const skipReason = postgresSkipReason()
describe.skipIf(skipReason !== undefined)(
  `PostgreSQL${skipReason === undefined ? '' : ` (skipped: ${skipReason})`}`,
  () => {
    let cluster: PostgresCluster | undefined
    beforeAll(async () => {
      cluster = await startPostgresCluster()
    })
    afterAll(() => {
      cluster?.stop()
      cluster = undefined
    })
    it('readLedgers equals snapshot + readHistory per read, in one call', async () => {
      const url = await (cluster as PostgresCluster).createDatabase('ledger_reads')
      const store = await createPostgresStore({ url, schema: SCHEMA, partitions: 4 })
      try {
        await expect(expectSameAsOneByOne(store)).resolves.toBeUndefined()
      } finally {
        await store.close()
      }
    })
  },
)

// Goal: the SQLite log keeps every guarantee of `log-store.ts`, plus what only SQLite can show
// (WAL and synchronous=FULL asserted on open, the schema version, group commit).
// Method: run the shared conformance suite on a temp file per test, then a few SQLite-only
// checks on the file itself.
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterEach, describe, expect, it } from 'vitest'
import { defineEntity, defineSchema, entryId } from '@ledgerline/core'
import type { Entry, StoredEntry } from '@ledgerline/core'
import { runLogStoreContract } from '@ledgerline/testkit'
import type { LogStore } from './log-store.ts'
import { RelayError } from './relay-error.ts'
import { SQLITE_SCHEMA_VERSION } from './sqlite-migrations.ts'
import { createSqliteStore } from './sqlite-store.ts'
import { checkUpgradedLog } from './log-upgrade.test-helper.ts'

for (const writer of ['thread', 'worker'] as const) {
  runLogStoreContract(
    `sqlite (writer: ${writer})`,
    async ({ schema, partitions, now, commitQueueEntriesMax }) => {
      const dir = mkdtempSync(join(tmpdir(), 'll-sqlite-contract-'))
      const file = join(dir, 'log.sqlite')
      let current = schema
      const open = () =>
        createSqliteStore({ file, schema: current, partitions, now, commitQueueEntriesMax, writer })
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
          rmSync(dir, { recursive: true, force: true })
        },
      }
    },
  )
}

describe('SQLite log written by an earlier Ledgerline', () => {
  // Goal: entry bodies moved from node:v8 to MessagePack; a log written before still reads,
  // decides and dedupes. Method: `fixtures/log-3a8bfae-v8-bodies.sqlite` was written by the
  // relay of 3a8bfae (three entries, a correction, a refusal); open a copy, read it, resend
  // its entries, append more (written as MessagePack), and read both kinds back.
  it('reads v8 bodies, answers resends from them and appends MessagePack after them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'll-sqlite-v8-'))
    try {
      const file = join(dir, 'log.sqlite')
      copyFileSync(new URL('./fixtures/log-3a8bfae-v8-bodies.sqlite', import.meta.url), file)
      const schema = defineSchema(
        defineEntity<{ onHand: number }>({
          type: 'stock',
          initial: { onHand: 0 },
          reduce: (st, e) => {
            if (e.kind === 'stock.moved') return { onHand: st.onHand + Number(e.data.qty) }
            if (e.kind === 'stock.oversold') return { onHand: st.onHand + Number(e.data.short) }
            return st
          },
          invariants: { nonNegative: (st) => st.onHand >= 0 || 'stock below zero' },
          correct: (st, _b, e) => [
            { kind: 'stock.oversold', data: { short: -st.onHand, sale: e.id } },
          ],
        }),
      )
      const store = await createSqliteStore({ file, schema, now: () => 1_800_000_000_000 })
      const before = await store.readEntity('acme', 'stock/a', 1, 10)
      expect(before.map((e) => e.kind)).toEqual(['stock.moved', 'stock.moved', 'stock.oversold'])
      expect(before[0]?.data).toEqual({ qty: 2, note: 'first', bytes: new Uint8Array([0, 1, 255]) })
      expect((before[0]?.data as { bytes?: unknown } | undefined)?.bytes).toBeInstanceOf(Uint8Array)
      const clientId = 'ab'.repeat(16)
      const old = (seq: number, data: Entry['data']): Entry => ({
        id: `${clientId}-${seq}`,
        tenant: 'acme',
        entity: 'stock/a',
        kind: 'stock.moved',
        data,
        intent: 'fact' as const,
        clientId,
        clientSeq: seq,
        hlc: `${String(1_700_000_000_000 + seq).padStart(15, '0')}:00000:${clientId}`,
        occurredAt: 1_700_000_000_000 + seq,
      })
      // Migration 3 gave the v8 bodies their digests: the same entry is a duplicate, another
      // under its id a conflict.
      const [dup] = await store.append('acme', [{ entry: old(2, { qty: -5 }) }])
      const fix = before[2] as StoredEntry
      expect(dup).toMatchObject({
        status: 'duplicate',
        version: 2,
        corrections: [
          {
            id: fix.id,
            entity: fix.entity,
            kind: fix.kind,
            version: fix.version,
            partition: fix.partition,
            offset: fix.offset,
          },
        ],
      })
      const [conflict] = await store.append('acme', [{ entry: old(2, { qty: -6 }) }])
      expect(conflict?.status).toBe('id_conflict')
      // The state folded from v8 bodies is 0 on hand: a sale of 1 is corrected by 1.
      const [next] = await store.append('acme', [{ entry: old(4, { qty: -1, note: 'new' }) }])
      expect(next).toMatchObject({ status: 'appended', version: 4 })
      expect((await store.readEntity('acme', 'stock/a', 5, 1))[0]?.data).toEqual({
        short: 1,
        sale: `${clientId}-4`,
      })
      const all = await store.readEntity('acme', 'stock/a', 1, 10)
      expect(all.map((e) => e.version)).toEqual([1, 2, 3, 4, 5])
      expect(all[3]?.data).toEqual({ qty: -1, note: 'new' })
      await store.close()
      const db = new Database(file, { readonly: true })
      try {
        const firsts = (
          db.prepare('SELECT body FROM entries ORDER BY version').all() as { body: Buffer }[]
        ).map((r) => r.body[0])
        expect(firsts.slice(0, 3)).toEqual([0xff, 0xff, 0xff])
        expect(firsts.slice(3).every((b) => b !== 0xff)).toBe(true)
      } finally {
        db.close()
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('SQLite log written by 03f500b, before exactly once at the edges', () => {
  // Goal: migration 3 on a log main's code wrote (issue 12: digests of stored bodies, old
  // unknown_type refusals decided again, unbound clientIds, an identity; issue 13 case 5: an old
  // snapshot with `corrects` is no correction). Method: open a copy of
  // `fixtures/log-03f500b.sqlite` (see `log-upgrade.test-helper.ts`), check what the store
  // answers, then the file itself: schema version, digests, triggers.
  it('migrates it: digests from bodies, old deferrable refusals decided again, an identity', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'll-sqlite-03f500b-'))
    let store: LogStore | undefined
    try {
      const file = join(dir, 'log.sqlite')
      copyFileSync(new URL('./fixtures/log-03f500b.sqlite', import.meta.url), file)
      await checkUpgradedLog(async (schema) => {
        await store?.close()
        store = await createSqliteStore({ file, schema })
        return store
      })
      await store?.close()
      store = undefined
      const db = new Database(file, { readonly: true })
      try {
        expect(db.pragma('user_version', { simple: true })).toBe(SQLITE_SCHEMA_VERSION)
        const rows = db
          .prepare(
            `SELECT coalesce(l.id, c.client_id || '-' || e.client_seq) AS id, e.digest
             FROM entries e LEFT JOIN clients c ON c.ref = e.client
             LEFT JOIN log_ids l ON l.tenant = e.tenant AND l.partition = e.partition
               AND l."offset" = e."offset"`,
          )
          .all() as {
          id: string
          digest: Buffer | null
        }[]
        // Client entries have a digest of their body; entries of the log have none.
        expect(rows.map((r) => [r.id, r.digest?.length ?? null])).toEqual(
          rows.map((r) => [r.id, r.id.includes('~') ? null : 32]),
        )
      } finally {
        db.close()
      }
      const raw = new Database(file)
      try {
        expect(() => raw.prepare('UPDATE entries SET version = 99').run()).toThrow(/append-only/)
      } finally {
        raw.close()
      }
    } finally {
      await store?.close()
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('SQLite log specifics', () => {
  const dirs: string[] = []
  const tempFile = () => {
    const dir = mkdtempSync(join(tmpdir(), 'll-sqlite-'))
    dirs.push(dir)
    return join(dir, 'log.sqlite')
  }
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
  })

  it('opens in WAL mode with synchronous=FULL and records its schema version', async () => {
    // Goal: invariant 1 (durability asserted). Method: open, close, inspect the file's pragmas.
    const file = tempFile()
    const store = await createSqliteStore({ file })
    await store.close()
    const db = new Database(file, { readonly: true })
    try {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal')
      expect(db.pragma('user_version', { simple: true })).toBe(SQLITE_SCHEMA_VERSION)
    } finally {
      db.close()
    }
  })

  it('refuses every update and delete of entries and refusals (history is never rewritten)', async () => {
    // Goal: guarantee 6 holds whoever writes to the file, not only through the store.
    // Method: append a fact, then try to edit and delete it with a raw connection; both must
    // fail and the entry must be unchanged.
    const file = tempFile()
    const store = await createSqliteStore({ file })
    await store.append('acme', [{ entry: entry(1, 1, 'stock/a') }])
    await store.close()
    const db = new Database(file)
    try {
      expect(() => db.prepare('UPDATE entries SET version = 99').run()).toThrow(/append-only/)
      expect(() => db.prepare('DELETE FROM entries').run()).toThrow(/append-only/)
      expect(() => db.prepare('DELETE FROM refusals').run()).not.toThrow() // empty: nothing to refuse
      db.prepare(
        `INSERT INTO refusals (tenant, id, code, reason, head) VALUES ('acme', 'x', 'conflict', 'r', 0)`,
      ).run()
      expect(() => db.prepare('DELETE FROM refusals').run()).toThrow(/append-only/)
      expect(() => db.prepare(`UPDATE refusals SET reason = 'other'`).run()).toThrow(/append-only/)
      expect(db.prepare('SELECT version FROM entries').all()).toEqual([{ version: 1 }])
    } finally {
      db.close()
    }
  })

  it('refuses a log file from a newer Ledgerline', async () => {
    // Goal: migrations never guess. Method: bump user_version past ours; opening must throw
    // RelayError('store_version').
    const file = tempFile()
    await (await createSqliteStore({ file })).close()
    const db = new Database(file)
    db.pragma(`user_version = ${SQLITE_SCHEMA_VERSION + 1}`)
    db.close()
    const error = await createSqliteStore({ file }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(RelayError)
    expect((error as RelayError).kind).toBe('store_version')
  })

  it('keeps its partition count when reopened with another', async () => {
    // Goal: a log's partition count is fixed at creation. Method: create with 8, reopen with 32.
    const file = tempFile()
    await (await createSqliteStore({ file, partitions: 8 })).close()
    const store = await createSqliteStore({ file, partitions: 32 })
    expect(store.partitions).toBe(8)
    expect(await store.partitionHeads()).toHaveLength(8)
    await store.close()
  })

  it('merges concurrent calls into few transactions and bounds each group', async () => {
    // Goal: group commit (invariant 2 of log-store.ts, item 8). Method: 200 calls of one entry
    // each, issued without awaiting, with a group bound of 50: every call gets its own result,
    // and onCommit fires at most a handful of times per 50 entries, never once per call.
    const file = tempFile()
    const store = await createSqliteStore({ file, groupCommitEntriesMax: 50 })
    let commits = 0
    store.onCommit(() => commits++)
    const calls = Array.from({ length: 200 }, (_, i) =>
      store.append('acme', [{ entry: entry(i + 1, 1, `tick/${i}`) }]),
    )
    const results = await Promise.all(calls)
    expect(results.map((r) => r[0]?.id)).toEqual(
      Array.from({ length: 200 }, (_, i) => entryId(clientIdOf(i + 1), 1)),
    )
    expect(results.every((r) => r[0]?.status === 'appended')).toBe(true)
    expect(commits).toBeGreaterThanOrEqual(4)
    expect(commits).toBeLessThanOrEqual(8)
    await store.close()
  })

  it('rejects a failing call alone and keeps the rest of its group', async () => {
    // Goal: invariant 2 (a failure rejects only its own call, nothing half-written). Method: a
    // schema whose reduce is fine but whose file is made read-only mid-run is hard to fake, so
    // instead one call carries an entry of another tenant (refused by the store as a caller
    // bug) beside 10 good calls; the good ones land, the bad one rejects with RelayError.
    const file = tempFile()
    const store = await createSqliteStore({ file })
    const good = Array.from({ length: 10 }, (_, i) =>
      store.append('acme', [{ entry: entry(i + 1, 1, 'tick/a') }]),
    )
    const bad = store.append('acme', [{ entry: { ...entry(99, 1, 'tick/a'), tenant: 'other' } }])
    await expect(bad).rejects.toMatchObject({ name: 'LogStoreError', kind: 'invalid' })
    const results = (await Promise.all(good)).flat()
    expect(
      results
        .map((r) => (r.status === 'appended' || r.status === 'duplicate' ? r.version : 0))
        .sort((a, b) => a - b),
    ).toEqual(Array.from({ length: 10 }, (_, i) => i + 1))
    await store.close()
    await expect(store.append('acme', [{ entry: entry(1, 2, 'tick/a') }])).rejects.toMatchObject({
      name: 'LogStoreError',
      kind: 'closed',
    })
  })

  it('finishes appends in flight before close() releases the file', async () => {
    // Goal: guarantee 9 of log-store.ts. Method: issue appends and close at once; every
    // append resolves appended, and a reopen finds them all.
    const file = tempFile()
    const store: LogStore = await createSqliteStore({ file })
    const calls = Array.from({ length: 20 }, (_, i) =>
      store.append('acme', [{ entry: entry(i + 1, 1, 'tick/a') }]),
    )
    const closing = store.close()
    const results = (await Promise.all(calls)).flat()
    await closing
    expect(results.every((r) => r.status === 'appended')).toBe(true)
    const again = await createSqliteStore({ file })
    expect(await again.head('acme', 'tick/a')).toMatchObject({ version: 20 })
    await again.close()
  })
})

function clientIdOf(n: number): string {
  return n.toString(16).padStart(32, '0')
}

function entry(client: number, seq: number, entity: string): Entry {
  const clientId = clientIdOf(client)
  return {
    id: entryId(clientId, seq),
    tenant: 'acme',
    entity,
    kind: 'tick.made',
    data: { n: seq },
    intent: 'fact',
    clientId,
    clientSeq: seq,
    hlc: `${String(1_700_000_000_000).padStart(15, '0')}:00000:${clientId}`,
    occurredAt: 1_700_000_000_000,
  }
}

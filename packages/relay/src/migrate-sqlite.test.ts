// Goal: issue 21 — `migrate-sqlite` copies a populated SQLite log into PostgreSQL with
// everything a log holds (entries of two tenants, corrections of the same and of another entity,
// refused requests, `forbidden` refusals, deferrals, clients bound to subjects, a CRDT snapshot,
// a sale moved by restore recovery, a bumped generation), verifies the copy, and refuses a database that is not empty. The round
// trip is what the perf work on the SQLite layout keeps passing: SQLite → export → PostgreSQL →
// every read of the `LogStore` interface agrees, and the copy decides resends as the source did.
// Method: the stores directly (SQLite populated through `append`, as relays do), the command's
// function for the copy and the built CLI for the refusals; every read compared whole.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as Y from 'yjs'
import { afterAll, describe, expect, it } from 'vitest'
import { defineSchema } from '@ledgerline/core'
import type { Data, Entry } from '@ledgerline/core'
import { CONTRACT_SCHEMA, createPostgresFixture, findPostgresBinaries } from '@ledgerline/testkit'
import { migrateSqliteCommand } from './cli-migrate.ts'
import { withCrdtSnapshots } from './crdt-snapshots.ts'
import { lockDataDir } from './data-dir-lock.ts'
import { makeEntry } from './edges.test-helper.ts'
import { createLogDigest, diffSummaries } from './log-copy.ts'
import type { LogRecord } from './log-copy.ts'
import { SNAPSHOT_UPDATES_EVERY } from './limits.ts'
import type { AppendItem, LogStore, Pusher } from './log-store.ts'
import { createLedgerSnapshotter } from './ledger-snapshots.ts'
import { createPostgresStore } from './postgres-store.ts'
import { dropRetention, exportRetention } from './retention-export.ts'
import { exportSqliteLog } from './sqlite-export.ts'
import { createSqliteStore, SQLITE_LOG_FILE } from './sqlite-store.ts'
import { doc } from './yjs-edges.test-helper.ts'

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url))
const PARTITIONS = 4

// The contract's types (corrections of the same and of another entity, requests) and the Yjs
// type of the relay's tests (snapshots).
const schema = defineSchema(
  ...['stock/s', 'payment/p', 'order/o', 'seat/a'].map((e) => CONTRACT_SCHEMA.typeOf(e)),
  doc,
)

const postgres = createPostgresFixture('migrate')
const dirs: string[] = []
afterAll(async () => {
  await postgres.stop()
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

describe.skipIf(postgres.skipReason !== undefined)(`migrate-sqlite${postgres.skipNote}`, () => {
  it('copies every row, keeps the identity, and the copy answers every read and resend alike', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'll-migrate-'))
    dirs.push(dir)
    const file = join(dir, SQLITE_LOG_FILE)
    const written = await populate(file)
    const url = await postgres.database('migrated')

    const line = await migrateSqliteCommand(['--from', dir, '--database-url', url], {})
    expect(line).toContain(`${written.entries} entries in ${PARTITIONS} partitions`)
    expect(line).toContain('1 deferrals')
    expect(line).toContain('2 origins of moved entries')
    expect(line).toContain('verified')

    const sqlite = await createSqliteStore({ file, schema })
    const pg = await createPostgresStore({ url, schema })
    try {
      expect(await pg.identity()).toEqual(await sqlite.identity())
      expect((await pg.identity()).generation).toBe(2)
      expect(pg.partitions).toBe(PARTITIONS)
      expect(await pg.partitionHeads()).toEqual(await sqlite.partitionHeads())
      for (const tenant of ['acme', 'other']) {
        for (let p = 0; p < PARTITIONS; p++) {
          expect(await pg.readPartition(tenant, p, 0, 10_000)).toEqual(
            await sqlite.readPartition(tenant, p, 0, 10_000),
          )
        }
      }
      for (const entity of written.entities) {
        expect(await pg.readEntity('acme', entity, 1, 10_000)).toEqual(
          await sqlite.readEntity('acme', entity, 1, 10_000),
        )
        expect(await pg.head('acme', entity)).toEqual(await sqlite.head('acme', entity))
      }
      for (const clientId of written.clientIds) {
        expect(await pg.client('acme', clientId)).toEqual(await sqlite.client('acme', clientId))
      }
      // Decided once, on either log: every resend gets the original answer (duplicates with
      // their positions and corrections, the refusals), and the impostor is refused alike.
      const resent = written.calls
      for (const call of resent) {
        expect(await pg.append('acme', call.items, call.pusher)).toEqual(
          await sqlite.append('acme', call.items, call.pusher),
        )
      }
      // A second move of the moved sale is a copy on both logs, not a new sale.
      const [copyOnSqlite] = await sqlite.append('acme', [{ entry: written.moved }], ALICE_PUSHER)
      expect(copyOnSqlite?.status).toBe('duplicate')
      expect(await pg.append('acme', [{ entry: written.moved }], ALICE_PUSHER)).toEqual([
        copyOnSqlite,
      ])
      const voidOfAlias = written.voidOfAlias()
      const [voidOnSqlite] = await sqlite.append('acme', [{ entry: voidOfAlias }], ALICE_PUSHER)
      expect(voidOnSqlite?.status).toBe('appended')
      const [voidOnPg] = await pg.append('acme', [{ entry: voidOfAlias }], ALICE_PUSHER)
      expect(voidOnPg).toEqual({ ...(voidOnSqlite as object), committedAt: expect.any(Number) })
      const next = written.next(ALICE)
      const taken = await pg.append('acme', [{ entry: next }], MALLORY)
      expect(taken[0]?.status).toBe('client_taken')
      // And the copy goes on where the source stopped: next offset, next version.
      const [onPg] = await pg.append('acme', [{ entry: next }], ALICE_PUSHER)
      const [onSqlite] = await sqlite.append('acme', [{ entry: next }], ALICE_PUSHER)
      expect(onPg).toMatchObject({ status: 'appended' })
      expect(onPg).toEqual({ ...(onSqlite as object), committedAt: expect.any(Number) })
    } finally {
      await pg.close()
      await sqlite.close()
    }

    // Into a database that holds a log: refused, exit 2, nothing written.
    const again = spawnSync(
      process.execPath,
      [CLI, 'migrate-sqlite', '--from', dir, '--database-url', url],
      { encoding: 'utf8', timeout: 30_000 },
    )
    expect(again.stderr).toContain('not empty')
    expect(again.status).toBe(2)
  }, 120_000)

  it('the documented PostgreSQL backup: pg_dump, pg_restore, bump-generation', async () => {
    // Goal: README "Backups" for PostgreSQL works as written: the restored database is the
    // same log at a higher generation, and decides resends as the original did.
    const pgBin = findPostgresBinaries()
    if ('reason' in pgBin) throw new Error(pgBin.reason)
    const dir = mkdtempSync(join(tmpdir(), 'll-pgdump-'))
    dirs.push(dir)
    const written = await populate(join(dir, SQLITE_LOG_FILE))
    const url = await postgres.database('dumped')
    await migrateSqliteCommand(['--from', dir, '--database-url', url], {})
    const dump = join(dir, 'ledgerline.dump')
    const run = (tool: string, args: string[]) => {
      const out = spawnSync(join(pgBin.bin, tool), args, { encoding: 'utf8', timeout: 60_000 })
      expect(`${tool}: ${out.status} ${out.stderr}`).toBe(`${tool}: 0 `)
    }
    run('pg_dump', ['--format=custom', `--file=${dump}`, url])
    const restoredUrl = await postgres.database('restored')
    run('pg_restore', ['--exit-on-error', '--no-owner', `--dbname=${restoredUrl}`, dump])
    const bump = spawnSync(
      process.execPath,
      [CLI, 'bump-generation', '--store', 'postgres', '--database-url', restoredUrl],
      { encoding: 'utf8', timeout: 30_000 },
    )
    expect(bump.stdout).toContain('now at generation 3')
    const original = await createPostgresStore({ url, schema })
    const restored = await createPostgresStore({ url: restoredUrl, schema })
    try {
      expect(await restored.identity()).toEqual({
        ...(await original.identity()),
        generation: 3,
      })
      for (let p = 0; p < PARTITIONS; p++) {
        expect(await restored.readPartition('acme', p, 0, 10_000)).toEqual(
          await original.readPartition('acme', p, 0, 10_000),
        )
      }
      const first = written.calls[0] as (typeof written.calls)[number]
      expect(await restored.append('acme', first.items, first.pusher)).toEqual(
        await original.append('acme', first.items, first.pusher),
      )
      // The identity column goes on after the restore: a new entry appends.
      const [next] = await restored.append('acme', [{ entry: written.next(ALICE) }], ALICE_PUSHER)
      expect(next).toMatchObject({ status: 'appended' })
    } finally {
      await restored.close()
      await original.close()
    }
  }, 120_000)

  it('refuses to run beside a relay on the directory, or without a log there', async () => {
    const url = await postgres.database('refused')
    const empty = mkdtempSync(join(tmpdir(), 'll-migrate-none-'))
    dirs.push(empty)
    const none = spawnSync(
      process.execPath,
      [CLI, 'migrate-sqlite', '--from', empty, '--database-url', url],
      { encoding: 'utf8', timeout: 30_000 },
    )
    expect(none.status).toBe(2)
    expect(none.stderr).toContain('no Ledgerline log')
    // A relay holds the directory: the copy would race its appends.
    const held = mkdtempSync(join(tmpdir(), 'll-migrate-held-'))
    dirs.push(held)
    await (await createSqliteStore({ file: join(held, SQLITE_LOG_FILE) })).close()
    const lock = lockDataDir(held)
    try {
      const busy = spawnSync(
        process.execPath,
        [CLI, 'migrate-sqlite', '--from', held, '--database-url', url],
        { encoding: 'utf8', timeout: 30_000 },
      )
      expect(busy.stderr).toContain('in use by another relay')
      expect(busy.status).toBe(2)
    } finally {
      lock.release()
    }
    expect(
      spawnSync(process.execPath, [CLI, 'migrate-sqlite', '--from', empty], {
        encoding: 'utf8',
        timeout: 30_000,
        env: { PATH: process.env.PATH ?? '' },
      }).status,
    ).toBe(2)
  }, 60_000)
})

describe('migrate-sqlite and dropped history', () => {
  it('refuses a log whose history an operator dropped, before writing anything', async () => {
    // Goal: a copy never turns retention into a silent gap. A SQLite log with dropped history
    // holds marks (first kept versions and offsets) and snapshots that can no longer be folded
    // again from the log; the copy moves neither, so it is refused, typed, and the source is
    // left as it was. Method: a real export and drop through the store, then the export side of
    // the command (the refusal comes before PostgreSQL is touched, so none is needed).
    const dir = mkdtempSync(join(tmpdir(), 'll-migrate-dropped-'))
    dirs.push(dir)
    const file = join(dir, SQLITE_LOG_FILE)
    const store = await createSqliteStore({ file, schema, partitions: PARTITIONS })
    const t0 = Date.now() - 60_000
    const items = [1, 2, 3, 4].map((n) => ({
      entry: makeEntry(ALICE, n, 'stock/s1', 'stock.moved', { qty: n }, { occurredAt: t0 }),
    }))
    await store.append('acme', items, ALICE_PUSHER)
    await createLedgerSnapshotter(store, schema).snapshotNow('acme', 'stock/s1')
    const exported = join(dir, 'export')
    await exportRetention(store, schema, { before: Date.now() + 1_000, dir: exported })
    const dropped = await dropRetention(store, schema, {
      before: Date.now() + 1_000,
      dir: exported,
    })
    expect(dropped.entries).toBeGreaterThan(0)
    const kept = await store.readPartition('acme', 0, 0, 100)
    await store.close()

    const copy = async () => {
      for await (const _record of exportSqliteLog(file)) void _record
    }
    await expect(copy()).rejects.toMatchObject({
      kind: 'config',
      message: expect.stringContaining('dropped history'),
    })
    const reopened = await createSqliteStore({ file, schema })
    try {
      expect(await reopened.readPartition('acme', 0, 0, 100)).toEqual(kept)
    } finally {
      await reopened.close()
    }
  })
})

describe('the log digest of a copy', () => {
  it('tells a copy that lost or changed a row from an equal one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'll-digest-'))
    dirs.push(dir)
    const file = join(dir, SQLITE_LOG_FILE)
    await populate(file)
    const records: LogRecord[] = []
    for await (const r of exportSqliteLog(file)) records.push(r)
    const summary = (rs: readonly LogRecord[]) => {
      const d = createLogDigest()
      for (const r of rs) d.add(r)
      return d.summary()
    }
    expect(diffSummaries(summary(records), summary(records))).toEqual([])
    const entryAt = records.findIndex((r) => r._tag === 'entry')
    const changed = records.map((r, i) =>
      i === entryAt && r._tag === 'entry' ? { ...r, body: Uint8Array.of(...r.body, 0) } : r,
    )
    expect(diffSummaries(summary(records), summary(changed)).join('\n')).toMatch(/^partition \d/)
    const lost = records.filter((r) => r._tag !== 'deferral')
    expect(diffSummaries(summary(records), summary(lost)).join('\n')).toContain('deferrals')
    const noOrigins = records.filter((r) => r._tag !== 'origin')
    expect(noOrigins.length).toBeLessThan(records.length)
    expect(diffSummaries(summary(records), summary(noOrigins)).join('\n')).toContain('origins')
    const reordered = [...records]
    const second = reordered.findIndex((r, i) => i > entryAt && r._tag === 'entry')
    ;[reordered[entryAt], reordered[second]] = [
      reordered[second] as LogRecord,
      reordered[entryAt] as LogRecord,
    ]
    expect(diffSummaries(summary(records), summary(reordered))).toContain(
      'the commit order of entries differs',
    )
  })
})

// ---------------------------------------------------------------------------------------------

const ALICE = 'a'.repeat(32)
const BOB = 'b'.repeat(32)
const ALICE_PUSHER: Pusher = { subject: 'alice', grants: { read: ['*'], write: ['*'] } }
const BOB_PUSHER: Pusher = { subject: 'bob', grants: { read: ['*'], write: ['order/*'] } }
const DAVE = 'd'.repeat(32)
const EVE = 'e'.repeat(32)
const FRANK = 'f'.repeat(32)
const GINA = '1'.repeat(32)

/** `entry` moved by restore recovery to `clientId`'s first clientSeq. */
function movedTo(entry: Entry, clientId: string): Entry {
  return { ...entry, id: `${clientId}-1`, clientId, clientSeq: 1, origin: entry.origin ?? entry.id }
}
const MALLORY: Pusher = { subject: 'mallory', grants: { read: ['*'], write: ['*'] } }

interface Populated {
  readonly entries: number
  readonly entities: readonly string[]
  readonly clientIds: readonly string[]
  /** Every call made, to resend. */
  readonly calls: readonly { items: AppendItem[]; pusher: Pusher | undefined }[]
  /** A third move of the moved sale, to another clientId: the log holds it already. */
  readonly moved: Entry
  /** A correction naming the second move's id, which only the index of origins knows. */
  voidOfAlias(): Entry
  /** The next entry of a client. */
  next(clientId: string): Entry
}

/** A SQLite log with a bit of everything, its generation bumped once; closed again. */
async function populate(file: string): Promise<Populated> {
  const base = await createSqliteStore({ file, schema, partitions: PARTITIONS })
  const store = withCrdtSnapshots(base, schema)
  const seqs = new Map<string, number>()
  const calls: { items: AppendItem[]; pusher: Pusher | undefined }[] = []
  const entry = (
    clientId: string,
    entity: string,
    kind: string,
    data: Data,
    more: Partial<Pick<Entry, 'intent' | 'expect' | 'corrects'>> = {},
  ): Entry => {
    const seq = (seqs.get(clientId) ?? 0) + 1
    seqs.set(clientId, seq)
    return makeEntry(clientId, seq, entity, kind, data, more)
  }
  const append = async (store: LogStore, items: AppendItem[], pusher: Pusher | undefined) => {
    calls.push({ items, pusher })
    return await store.append('acme', items, pusher)
  }
  await append(
    store,
    [
      { entry: entry(ALICE, 'stock/s1', 'stock.moved', { qty: 5 }) },
      { entry: entry(ALICE, 'stock/s1', 'stock.moved', { qty: -8 }) },
      { entry: entry(ALICE, 'payment/p1', 'card.declined', { order: 'order/o1' }) },
      ...[1, 2, 3].map((n) => ({ entry: entry(ALICE, 'order/o1', 'order.line', { n }) })),
      { entry: entry(ALICE, 'seat/a1', 'seat.claimed', {}, { intent: 'request', expect: 0 }) },
      { entry: entry(ALICE, 'seat/a1', 'seat.claimed', {}, { intent: 'request', expect: 0 }) },
      { entry: entry(ALICE, 'gadget/g1', 'gadget.made', {}) },
    ],
    ALICE_PUSHER,
  )
  // A sale restore recovery moved from a clientId this log never saw (its origin): the index
  // of origins (`origins`, `ledgerline_origins`) must come along, or the copy decides a second
  // move of the same sale as new.
  const lost = makeEntry(EVE, 1, 'stock/s1', 'stock.moved', { qty: 2 })
  await append(
    store,
    [{ entry: { ...lost, id: `${DAVE}-1`, clientId: DAVE, clientSeq: 1, origin: lost.id } }],
    ALICE_PUSHER,
  )
  // Moved again, to FRANK: `duplicate`, and FRANK-1 is kept as an alias of DAVE-1's landing.
  const [alias] = await append(store, [{ entry: movedTo(lost, FRANK) }], ALICE_PUSHER)
  expect(alias?.status).toBe('duplicate')
  await append(
    store,
    [
      { entry: entry(BOB, 'order/o2', 'order.line', { n: 1 }) },
      {
        entry: entry(BOB, 'stock/s1', 'stock.moved', { qty: 1 }),
        refuse: { code: 'forbidden', reason: 'outside the write grants' },
      },
    ],
    BOB_PUSHER,
  )
  const source = new Y.Doc()
  const updates: Uint8Array[] = []
  source.on('update', (u: Uint8Array) => updates.push(u))
  for (let i = 0; i < SNAPSHOT_UPDATES_EVERY + 5; i++) source.getText('t').insert(i, 'a')
  for (let i = 0; i < updates.length; i += 20) {
    const batch = updates
      .slice(i, i + 20)
      .map((u) => ({ entry: entry(ALICE, 'doc/d1', 'yjs.update', u) }))
    await append(store, batch, ALICE_PUSHER)
  }
  await store.snapshots.idle()
  await base.append('other', [
    {
      entry: {
        ...entry('c'.repeat(32), 'order/o9', 'order.line', {}),
        tenant: 'other',
      },
    },
  ])
  await base.bumpGeneration()
  const heads = await base.partitionHeads()
  const snapshots = (await base.readEntity('acme', 'doc/d1', 1, 10_000)).filter(
    (e) => e.kind === 'yjs.snapshot',
  )
  expect(snapshots.length).toBeGreaterThan(0)
  const corrections = (await base.readEntity('acme', 'order/o1', 1, 100)).filter(
    (e) => e.kind === 'order.balance_due',
  )
  expect(corrections).toHaveLength(1)
  await store.close()
  return {
    entries: heads.reduce((a, b) => a + b, 0),
    entities: ['stock/s1', 'payment/p1', 'order/o1', 'order/o2', 'seat/a1', 'gadget/g1', 'doc/d1'],
    clientIds: [ALICE, BOB, 'c'.repeat(32), DAVE],
    moved: movedTo(lost, GINA),
    voidOfAlias: () =>
      entry(ALICE, 'stock/s1', 'stock.moved', { qty: -2 }, { corrects: `${FRANK}-1` }),
    calls,
    next: (clientId) => entry(clientId, 'order/o1', 'order.line', { n: 'next' }),
  }
}

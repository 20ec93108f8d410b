// Goal: migration 4 (the lean layout, `sqlite-lean-layout.ts`) on a log the previous build
// wrote: every entry, head, client record (marks and subject bindings), refusal, deferral, CRDT
// snapshot, the identity and generation read back as that build answered, resends dedupe
// against the old rows, and new appends follow them. Method: open a copy of
// `fixtures/log-5705503.sqlite` (made by `fixtures/make-5705503-log.mjs` at 5705503, with what
// that build answered in `log-5705503.json`), compare this build's answers with the recorded
// ones, then append and inspect the file.
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterEach, describe, expect, it } from 'vitest'
import { entryId } from '@ledgerline/core'
import type { Entry, StoredEntry } from '@ledgerline/core'
import type { AppendItem, LogStore, Pusher } from './log-store.ts'
import { UPGRADE_SCHEMA } from './log-upgrade.test-helper.ts'
import { SQLITE_SCHEMA_VERSION } from './sqlite-migrations.ts'
import { createSqliteStore } from './sqlite-store.ts'

const FIXTURE = new URL('./fixtures/log-5705503.sqlite', import.meta.url)
const A = 'a1'.repeat(16)
const D = 'd4'.repeat(16)

interface Recorded {
  identity: unknown
  contents: Contents
  sent: { tenant: string; items: AppendItem[]; pusher?: Pusher }[]
  resent: unknown[]
}
interface Contents {
  identity: unknown
  partitionHeads: number[]
  tenants: Record<
    string,
    {
      partitions: StoredEntry[][]
      heads: Record<string, unknown>
      clients: Record<string, unknown>
    }
  >
}

/** Bytes as the fixture's JSON holds them (`{ bytes: base64 }`), both ways. */
const toJson = (value: unknown): unknown =>
  JSON.parse(
    JSON.stringify(value, (_k, v: unknown) =>
      v instanceof Uint8Array ? { bytes: Buffer.from(v).toString('base64') } : v,
    ),
  )
const recorded = JSON.parse(
  readFileSync(new URL('./fixtures/log-5705503.json', import.meta.url), 'utf8'),
  (_k, v: unknown) =>
    v !== null && typeof v === 'object' && 'bytes' in v && Object.keys(v).length === 1
      ? new Uint8Array(Buffer.from((v as { bytes: string }).bytes, 'base64'))
      : v,
) as Recorded

async function contentsOf(store: LogStore, like: Contents): Promise<unknown> {
  const tenants: Record<string, unknown> = {}
  for (const [tenant, old] of Object.entries(like.tenants)) {
    const partitions: StoredEntry[][] = []
    for (let p = 0; p < store.partitions; p++) {
      partitions.push((await store.readPartition(tenant, p, 0, 100_000)).entries)
    }
    const heads: Record<string, unknown> = {}
    for (const entity of Object.keys(old.heads)) heads[entity] = await store.head(tenant, entity)
    const clients: Record<string, unknown> = {}
    for (const c of Object.keys(old.clients)) clients[c] = await store.client(tenant, c)
    tenants[tenant] = { partitions, heads, clients }
  }
  return toJson({
    identity: await store.identity(),
    partitionHeads: await store.partitionHeads(),
    tenants,
  })
}

describe('SQLite log written by 5705503 (layout 3), before the lean layout', () => {
  const dirs: string[] = []
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
  })
  const copy = () => {
    const dir = mkdtempSync(join(tmpdir(), 'll-sqlite-5705503-'))
    dirs.push(dir)
    const file = join(dir, 'log.sqlite')
    copyFileSync(FIXTURE, file)
    return file
  }

  it('reads back every entry, head, client record and the identity as the old build answered', async () => {
    const file = copy()
    const store = await createSqliteStore({ file, schema: UPGRADE_SCHEMA })
    try {
      expect(await contentsOf(store, recorded.contents)).toEqual(toJson(recorded.contents))
      // Ledgers in version order, from the same entries (the old build's partitions).
      for (const [tenant, { partitions, heads }] of Object.entries(recorded.contents.tenants)) {
        for (const entity of Object.keys(heads)) {
          const ledger = partitions
            .flat()
            .filter((e) => e.entity === entity)
            .sort((a, b) => a.version - b.version)
          expect(ledger.length).toBeGreaterThan(0)
          expect(toJson(await store.readEntity(tenant, entity, 1, 100_000))).toEqual(toJson(ledger))
          const from2 = await store.readEntity(tenant, entity, 2, 1)
          expect(toJson(from2)).toEqual(toJson(ledger.slice(1, 2)))
        }
      }
      // The fixture holds what the migration must carry: both tenants, a log correction, a
      // CRDT snapshot, a bumped generation.
      const kinds = recorded.contents.tenants['acme']?.partitions.flat().map((e) => e.kind)
      expect(kinds).toEqual(expect.arrayContaining(['stock.oversold', 'yjs.snapshot']))
      expect(recorded.contents.tenants['beta']?.partitions.flat()).toHaveLength(3)
      expect(await store.identity()).toMatchObject({ generation: 2 })
    } finally {
      await store.close()
    }
    const db = new Database(file, { readonly: true })
    try {
      expect(db.pragma('user_version', { simple: true })).toBe(SQLITE_SCHEMA_VERSION)
      // No text key left on the entries: names are interned.
      const columns = (db.prepare(`PRAGMA table_info(entries)`).all() as { name: string }[]).map(
        (c) => c.name,
      )
      expect(columns).not.toContain('id')
      expect(columns).not.toContain('tenant_name')
      expect(db.prepare(`SELECT count(*) AS n FROM entries`).get()).toEqual({ n: 320 })
    } finally {
      db.close()
    }
  })

  it('answers every call sent again as the old build did, then appends after the old entries', async () => {
    const file = copy()
    const store = await createSqliteStore({ file, schema: UPGRADE_SCHEMA })
    try {
      const resent: unknown[] = []
      for (const call of recorded.sent) {
        resent.push(await store.append(call.tenant, call.items, call.pusher))
      }
      // Duplicates (with the log's correction listed), the refused request and the relay's
      // refusal as recorded, the deferral decided again: each as the old build answered.
      expect(toJson(resent)).toEqual(toJson(recorded.resent))
      expect(JSON.stringify(resent)).toContain('~nonnegative~0')
      // Another content under an old id is a conflict; nothing is written.
      const first = recorded.sent[0]?.items[0]?.entry as Entry
      const [conflict] = await store.append('acme', [{ entry: { ...first, data: { qty: 99 } } }], {
        subject: 'till-1',
        grants: { read: ['*'], write: ['*'] },
      })
      expect(conflict?.status).toBe('id_conflict')
      // The subject binding came along: another subject may not use the clientId.
      const [taken] = await store.append('acme', [{ entry: next(A, 7, 'stock/b', 3) }], {
        subject: 'intruder',
        grants: { read: ['*'], write: ['*'] },
      })
      expect(taken?.status).toBe('client_taken')
      // New entries follow the old ones: the next clientSeq, the next version, the next offset.
      const heads = await store.partitionHeads()
      const before = await store.head('acme', 'stock/s1')
      const [added] = await store.append('acme', [{ entry: next(D, 201, 'stock/s1', 1) }])
      expect(added).toMatchObject({ status: 'appended', version: before.version + 1 })
      if (added?.status !== 'appended') throw new Error('not appended')
      expect(added.offset).toBe((heads[added.partition] ?? 0) + 1)
      expect(await store.head('acme', 'stock/s1')).toEqual({
        version: before.version + 1,
        offset: added.offset,
      })
      expect(await store.client('acme', D)).toEqual({ high: 201, subject: null })
      // A gap is still a gap against the old high-water mark.
      const [gap] = await store.append('acme', [{ entry: next(D, 203, 'stock/s1', 1) }])
      expect(gap).toMatchObject({ status: 'refused', code: 'seq_gap' })
      // Resent once more after a reopen: still one entry.
      await store.close()
      const reopened = await createSqliteStore({ file, schema: UPGRADE_SCHEMA })
      const [dup] = await reopened.append('acme', [{ entry: next(D, 201, 'stock/s1', 1) }])
      expect(dup).toMatchObject({ status: 'duplicate', version: before.version + 1 })
      await reopened.close()
    } finally {
      await store.close()
    }
  })
})

function next(clientId: string, seq: number, entity: string, qty: number): Entry {
  return {
    id: entryId(clientId, seq),
    tenant: 'acme',
    entity,
    kind: 'stock.moved',
    data: { qty },
    intent: 'fact',
    clientId,
    clientSeq: seq,
    hlc: `${String(1_764_000_100_000 + seq).padStart(15, '0')}:00000:${clientId}`,
    occurredAt: 1_764_000_100_000 + seq,
  }
}

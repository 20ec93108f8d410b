// Goal: issue 12 case 6 — per-entity snapshots are keyed by the entity type's explicit fold
// `version`, not by the source text of `reduce`: a reduce whose logic changes through a helper or
// a constant (same text) with `version` bumped never folds on a stale snapshot, so the till's
// confirmed state equals the server's (guarantee 5); and a reduce whose text changed while
// `version` did not is reported through the client's `onWarning` hook.
// Method: the client syncs with the real relay (SQLite), which then takes 300 `tally` entries of
// another writer; the client receives them, loads the entity (which writes a snapshot,
// SNAPSHOT_ENTRIES_MIN being 256), and closes. The
// app is "redeployed" with a new schema over the same IndexedDB and loads again. The two reduce
// functions come from one factory, so their source text is identical; only the closed-over
// weight differs.
import 'fake-indexeddb/auto'
import { describe, expect, it } from 'vitest'
import { IDBFactory } from 'fake-indexeddb'
import { defineEntity, defineSchema } from '@ledgerline/core'
import type { Entry, Schema } from '@ledgerline/core'
import { onWarningOption, withVersion } from '../test-support/edge-api.ts'
import { TENANT, useEdgeServers } from '../test-support/edge-relay.ts'
import type { EdgeServer } from '../test-support/edge-relay.ts'
import { dumpDatabase, recordsOf } from '../test-support/idb-copy.ts'
import { eventually } from '../test-support/setup.ts'
import type { Client } from './index.ts'
import { SNAPSHOT_ENTRIES_MIN } from './index.ts'

const TALLY = 'tally/x'
const WRITER = 'cd'.repeat(16)
const ENTRIES = SNAPSHOT_ENTRIES_MIN + 44

/** `tally` types from one factory: the same `reduce` source text whatever the weight. */
function tallyType(weight: number, version: number) {
  return defineEntity(
    withVersion(
      {
        type: 'tally',
        initial: 0,
        reduce: (s: number, e: Entry) => s + weight * Number((e.data as { n: number }).n),
      },
      version,
    ),
  )
}

const startEdgeServer = useEdgeServers()

describe('issue 12 case 6: snapshots keyed by an explicit fold version', () => {
  it('never folds on a stale snapshot when a helper of reduce changed and version was bumped', async () => {
    const v1 = defineSchema(tallyType(1, 1))
    const v2 = defineSchema(tallyType(2, 2))
    // The trap of case 6: the text a source hash would see is the same.
    expect(String(v2.typeOf(TALLY).reduce)).toBe(String(v1.typeOf(TALLY).reduce))
    const server = await startEdgeServer('sqlite', { schema: v1 })
    const idb = new IDBFactory()
    await loadAndSnapshot(server, idb, v1)

    const redeployed = open(server, idb, v2)
    expect(await redeployed.synced()).toEqual({ _tag: 'synced' })
    const snap = await redeployed.load<number>(TALLY)
    const type = v2.typeOf(TALLY)
    const serverState = (await server.entries(TALLY)).reduce(
      (s, e) => type.reduce(s, e) as number,
      type.initial as number,
    )
    expect(serverState).toBe(2 * ENTRIES)
    expect(snap.version).toBe(ENTRIES)
    expect(snap.confirmed).toBe(serverState)
  })

  it('warns through onWarning when reduce changed but version did not', async () => {
    const before = defineSchema(
      defineEntity({
        type: 'tally',
        initial: 0,
        reduce: (s: number, e: Entry) => s + Number((e.data as { n: number }).n),
      }),
    )
    const after = defineSchema(
      defineEntity({
        type: 'tally',
        initial: 0,
        reduce: (s: number, e: Entry) => s + 2 * Number((e.data as { n: number }).n),
      }),
    )
    const server = await startEdgeServer('sqlite', { schema: before })
    const idb = new IDBFactory()
    await loadAndSnapshot(server, idb, before)

    const warnings: unknown[] = []
    const redeployed = open(
      server,
      idb,
      after,
      onWarningOption((w) => warnings.push(w)),
    )
    expect(await redeployed.synced()).toEqual({ _tag: 'synced' })
    await redeployed.load(TALLY)
    expect(warnings.map(text).join('\n')).toMatch(/tally[\s\S]*version|version[\s\S]*tally/i)
  })
})

/** ENTRIES tally entries of another writer in the relay's log. */
async function feed(server: EdgeServer): Promise<void> {
  const results = await server.relay.store.append(
    TENANT,
    Array.from({ length: ENTRIES }, (_, i) => ({
      entry: {
        id: `${WRITER}-${i + 1}`,
        tenant: TENANT,
        entity: TALLY,
        kind: 'tally.added',
        data: { n: 1 },
        intent: 'fact' as const,
        clientId: WRITER,
        clientSeq: i + 1,
        hlc: `${String(Date.now()).padStart(15, '0')}:${String(i).padStart(5, '0')}:${WRITER}`,
        occurredAt: Date.now(),
      },
    })),
  )
  expect(results.every((r) => r.status === 'appended')).toBe(true)
}

/**
 * Syncs while the log is empty (so the client is live and takes the entries one by one, not from
 * the relay's ledger snapshot as a bootstrap would), feeds the log, folds the whole ledger once
 * (which writes a snapshot), waits for it, closes.
 */
async function loadAndSnapshot(server: EdgeServer, idb: IDBFactory, schema: Schema) {
  const first = open(server, idb, schema)
  expect(await first.synced()).toEqual({ _tag: 'synced' })
  await feed(server)
  await eventually(
    async () => (await first.load<number>(TALLY)).version === ENTRIES,
    10_000,
    'the tally received',
  )
  await eventually(
    async () =>
      recordsOf(await dumpDatabase(idb, 'till'), 'snapshots').some(
        (r) => (r as { entity?: string }).entity === TALLY,
      ),
    10_000,
    'a snapshot of the tally',
  )
  await first.close()
}

function open(server: EdgeServer, idb: IDBFactory, schema: Schema, extra: object = {}): Client {
  return server.open({ idb, schema, ...extra })
}

function text(w: unknown): string {
  if (typeof w === 'string') return w
  if (w instanceof Error) return w.message
  return JSON.stringify(w)
}

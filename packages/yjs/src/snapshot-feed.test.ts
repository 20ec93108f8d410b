// Goal: issue 13 case 5 — CRDT snapshots are not corrections: the till whose update a snapshot
// covers last does not see "1 new correction" (on 3a8bfae a snapshot carries `corrects: <last
// update id>`, so it lands in that till's corrections feed). One predicate in core says which
// entries the feed shows; snapshots say what they cover in their own field (`data.through`).
// Method: a relay made as the CLI makes it (createRelay with a SQLite dataDir and a schema with a
// Yjs type, so it snapshots after SNAPSHOT_UPDATES_EVERY updates), the real client on
// fake-indexeddb and a bound Y.Doc making one entry per edit; the till receives the snapshot
// through its subscription, and its feed must stay empty.
import 'fake-indexeddb/auto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { WebSocketConstructor } from '@ledgerline/client'
import { createClient } from '@ledgerline/client'
import { defineSchema, SERVER_CLIENT_ID } from '@ledgerline/core'
import { createRelay, signToken, SNAPSHOT_UPDATES_EVERY } from '@ledgerline/relay'
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb'
import { afterEach, expect, it } from 'vitest'
import { WebSocket } from 'ws'
import { bindYDoc } from './bind-ydoc.ts'
import { YJS_SNAPSHOT, yjsEntity } from './yjs-entity.ts'

const schema = defineSchema(yjsEntity('doc'))
const secret = 'yjs-snapshot-feed-secret-0123456789abcdef'
const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

it('issue 13 case 5: a CRDT snapshot never shows in the corrections feed of the till it covers', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'll-yjs-feed-'))
  cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }))
  const relay = await createRelay({
    port: 0,
    dataDir,
    schema,
    auth: { secret },
    logLevel: 'silent',
  })
  cleanups.push(() => relay.close())
  const token = await signToken({ secret, tenant: 'acme', sub: 'till', read: ['*'], write: ['*'] })
  const till = createClient({
    url: relay.url,
    token,
    schema,
    dbName: 'till',
    indexedDB: new IDBFactory(),
    IDBKeyRange,
    WebSocket: WebSocket as unknown as WebSocketConstructor,
    locks: null,
    BroadcastChannel: null,
    persist: false,
  })
  cleanups.push(() => till.close())
  const binding = await bindYDoc(till, 'doc/menu', { coalesceMs: 1 })
  cleanups.push(() => binding.destroy())
  for (let i = 0; i < SNAPSHOT_UPDATES_EVERY + 5; i++) {
    binding.doc.getText('t').insert(i, 'x')
    await binding.flush()
  }
  expect((await till.synced({ timeoutMs: 20_000 }))._tag).toBe('synced')

  const snapshot = await waitFor(async () =>
    (await relay.store.readEntity('acme', 'doc/menu', 1, 1_000)).find(
      (e) => e.clientId === SERVER_CLIENT_ID && e.kind === YJS_SNAPSHOT,
    ),
  )
  // The till received it like any entry of the document.
  await waitFor(async () =>
    (await till.entries('doc/menu')).find(
      (item) => item._tag === 'confirmed' && item.entry.id === snapshot.id,
    ),
  )
  expect((await till.synced({ timeoutMs: 10_000 }))._tag).toBe('synced')
  expect(await till.corrections()).toEqual([])
  expect(till.status().correctionsUnseen).toBe(0)
  expect(snapshot.corrects).toBeUndefined()
  expect((snapshot.data as { through?: unknown }).through).toBe(snapshot.version - 1)
}, 60_000)

async function waitFor<T>(find: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const found = await find()
    if (found !== undefined) return found
    if (Date.now() > deadline) throw new Error(`not found within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

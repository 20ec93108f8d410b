// Goal: issue 13 case 6 at its largest on `/yjs`: a y-websocket client whose document (5 MB,
// edited offline) arrives as one sync step 2 is appended in parts, the relay writes its snapshot
// in parts, a reader starts at that snapshot (`readFromLatestSnapshot` begins at its first part),
// and after a restart a new peer gets the whole document from it. An interrupted snapshot (its
// first part without the rest) is passed over by readers. On the commit before (6ad10b3) the
// client is closed with 1009 and retries forever, and no such document is ever snapshotted.
// Method: a relay made as the CLI makes it (SQLite dataDir, a Yjs schema), unmodified y-websocket
// providers; the interrupted snapshot is planted with the snapshot writer's own entry maker.
import { afterEach, describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { readCrdtPart, SERVER_CLIENT_ID } from '@ledgerline/core'
import type { StoredEntry } from '@ledgerline/core'
import { TENANT, token } from './edges.test-helper.ts'
import { readFromLatestSnapshot, snapshotEntries } from './index.ts'
import { connectPeer, paste, startYjsRelay, until } from './yjs-edges.test-helper.ts'

const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

describe('issue 13 case 6: a 5 MB document on /yjs', () => {
  it('syncs, is snapshotted in parts, and a new peer catches up from the snapshot after a restart', async () => {
    const yjs = await startYjsRelay()
    cleanups.push(() => yjs.close())
    const tok = await token({ sub: 'web' })
    const offline = new Y.Doc()
    for (let i = 0; i < 50; i++) offline.getText('t').insert(0, paste(100_000, i + 1))
    const expected = offline.getText('t').toString()
    const a = connectPeer(yjs.base, 'huge', tok, offline)
    const b = connectPeer(yjs.base, 'huge', tok)
    cleanups.push(
      () => a.destroy(),
      () => b.destroy(),
    )
    await until(
      () => b.doc.getText('t').length === expected.length || a.closes.length > 0,
      'the document at the other peer',
      30_000,
    )
    expect(a.closes, 'close codes the big client got').toEqual([])
    await until(
      async () => (await snapshotParts(yjs.relay.store)).length > 1,
      'a snapshot in parts',
      30_000,
    )
    const fromSnapshot = await readFromLatestSnapshot(yjs.relay.store, TENANT, 'doc/huge')
    expect(readCrdtPart(fromSnapshot[0] as StoredEntry, 'yjs')?.part).toBe(0)
    a.destroy()
    b.destroy()

    const dataDir = yjs.dataDir
    await yjs.relay.close()
    const again = await startYjsRelay({ dataDir })
    cleanups.push(() => again.close())
    const c = connectPeer(again.base, 'huge', tok)
    cleanups.push(() => c.destroy())
    await until(() => c.doc.getText('t').length === expected.length, 'catch-up', 30_000)
    expect(c.doc.getText('t').toString()).toBe(expected)
  }, 120_000)

  it('passes over a snapshot whose parts are not all in the ledger', async () => {
    const yjs = await startYjsRelay()
    cleanups.push(() => yjs.close())
    const tok = await token({ sub: 'web' })
    const a = connectPeer(yjs.base, 'cut', tok)
    cleanups.push(() => a.destroy())
    await until(() => a.provider.synced, 'synced')
    // Over SNAPSHOT_BYTES_EVERY in one update: a snapshot in parts follows.
    a.doc.getText('t').insert(0, paste(300_000, 3))
    await until(async () => (await snapshotParts(yjs.relay.store, 'doc/cut')).length > 1, 'snap')
    const snapped = (await yjs.relay.store.head(TENANT, 'doc/cut')).version
    a.doc.getText('t').insert(0, 'x')
    await until(
      async () => (await yjs.relay.store.head(TENANT, 'doc/cut')).version > snapped,
      'one more edit',
    )
    // A relay stopped after the first part of a newer snapshot: plant exactly that part.
    const ledger = await yjs.relay.store.readEntity(TENANT, 'doc/cut', 1, 10_000)
    const last = ledger[ledger.length - 1] as StoredEntry
    expect(last.clientId).not.toBe(SERVER_CLIENT_ID)
    const [first] = snapshotEntries(
      last,
      'yjs',
      new Uint8Array(3 * 61_440).fill(7), // garbage: it must never be applied
      Date.now(),
    )
    const planted = await yjs.relay.store.append(TENANT, [{ entry: first as never }])
    expect(planted[0]?.status).toBe('appended')
    const from = await readFromLatestSnapshot(yjs.relay.store, TENANT, 'doc/cut')
    expect(from[0]?.version).toBeLessThan(last.version)
    a.destroy()
    const b = connectPeer(yjs.base, 'cut', tok)
    cleanups.push(() => b.destroy())
    await until(() => b.doc.getText('t').length === 300_001, 'the document, not the garbage')
    expect(b.doc.getText('t').toString().slice(0, 1)).toBe('x')
  }, 60_000)
})

async function snapshotParts(
  store: { readEntity: (t: string, e: string, f: number, l: number) => Promise<StoredEntry[]> },
  entity = 'doc/huge',
): Promise<StoredEntry[]> {
  const ledger = await store.readEntity(TENANT, entity, 1, 100_000)
  return ledger.filter((e) => e.clientId === SERVER_CLIENT_ID && e.kind === 'yjs.snapshot')
}

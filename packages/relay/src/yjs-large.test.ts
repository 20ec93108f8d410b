// Goal: issue 13 case 6 — Yjs updates larger than one entry sync: they are split into parts and
// joined before they are applied. A 1 MB paste reaches a second y-websocket client and survives a
// relay restart; a client whose sync step 2 is large (after a long offline stretch) syncs instead
// of being closed with 1009 and retrying forever; and a document over 60 KB is snapshotted, so its
// catch-up does not replay all history. On 3a8bfae an update over ROOM_UPDATE_BYTES_MAX (48 KiB)
// closes the sender with 1009, and a state over SNAPSHOT_STATE_BYTES_MAX is never snapshotted.
// Method: a relay made as the CLI makes it (SQLite `dataDir`, a Yjs schema), unmodified
// y-websocket providers with `ws`; texts from a seeded generator (nothing compresses them).
import { afterEach, describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { SERVER_CLIENT_ID } from '@ledgerline/core'
import { TENANT, token } from './edges.test-helper.ts'
import { connectPeer, paste, startYjsRelay, until } from './yjs-edges.test-helper.ts'

const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

describe('issue 13 case 6: Yjs updates and documents larger than one entry', () => {
  it('syncs a 1 MB paste to a second client, and it survives a relay restart', async () => {
    const yjs = await startYjsRelay()
    cleanups.push(() => yjs.close())
    const tok = await token({ sub: 'web' })
    const a = connectPeer(yjs.base, 'big', tok)
    const b = connectPeer(yjs.base, 'big', tok)
    cleanups.push(
      () => a.destroy(),
      () => b.destroy(),
    )
    await until(() => a.provider.synced && b.provider.synced, 'both synced')
    const text = paste(1_000_000)
    a.doc.getText('t').insert(0, text)
    // Either the paste arrives or the relay closes the sender (on 3a8bfae: 1009, again and again).
    await until(
      () => b.doc.getText('t').length === text.length || a.closes.length > 0,
      'the paste at the other client',
      20_000,
    )
    expect(a.closes, 'close codes the sender got').toEqual([])
    expect(b.doc.getText('t').toString()).toBe(text)
    a.destroy()
    b.destroy()

    const dataDir = yjs.dataDir
    await yjs.relay.close()
    const again = await startYjsRelay({ dataDir })
    cleanups.push(() => again.close())
    const c = connectPeer(again.base, 'big', tok)
    cleanups.push(() => c.destroy())
    await until(
      () => c.doc.getText('t').length === text.length,
      'the paste after a restart',
      20_000,
    )
    expect(c.doc.getText('t').toString()).toBe(text)
  }, 60_000)

  it('syncs a client whose sync step 2 is large (edited offline) instead of closing it', async () => {
    const yjs = await startYjsRelay()
    cleanups.push(() => yjs.close())
    const tok = await token({ sub: 'web' })
    // A long offline stretch: 300 KB of edits in the doc before it ever connects.
    const offline = new Y.Doc()
    for (let i = 0; i < 30; i++) offline.getText('t').insert(0, paste(10_000, i + 1))
    const expected = offline.getText('t').toString()
    const a = connectPeer(yjs.base, 'offline', tok, offline)
    const b = connectPeer(yjs.base, 'offline', tok)
    cleanups.push(
      () => a.destroy(),
      () => b.destroy(),
    )
    await until(
      () => b.doc.getText('t').length === expected.length || a.closes.length > 0,
      'the offline edits at the other client',
      20_000,
    )
    expect(a.closes, 'close codes the offline client got').toEqual([])
    expect(b.doc.getText('t').toString()).toBe(expected)
  }, 60_000)

  it('snapshots a document over 60 KB, and a new client catches up from the snapshot', async () => {
    const yjs = await startYjsRelay()
    cleanups.push(() => yjs.close())
    const tok = await token({ sub: 'web' })
    const a = connectPeer(yjs.base, 'grown', tok)
    cleanups.push(() => a.destroy())
    await until(() => a.provider.synced, 'synced')
    // 400 edits of 800 characters: each small (every entry stays under 48 KiB), 320 KB in all,
    // past SNAPSHOT_BYTES_EVERY (256 KiB) and far past SNAPSHOT_STATE_BYTES_MAX (60 KiB).
    for (let i = 0; i < 400; i++) {
      a.doc.getText('t').insert(a.doc.getText('t').length, paste(800, i + 1))
      if (i % 50 === 49) await new Promise((r) => setTimeout(r, 60))
    }
    const expected = a.doc.getText('t').toString()
    await until(
      async () => {
        const ledger = await yjs.relay.store.readEntity(TENANT, 'doc/grown', 1, 100_000)
        return ledger.some((e) => e.clientId === SERVER_CLIENT_ID && /snapshot/.test(e.kind))
      },
      'a server snapshot of the document',
      20_000,
    )
    const b = connectPeer(yjs.base, 'grown', tok)
    cleanups.push(() => b.destroy())
    await until(() => b.doc.getText('t').length === expected.length, 'catch-up', 20_000)
    expect(b.doc.getText('t').toString()).toBe(expected)
  }, 60_000)
})

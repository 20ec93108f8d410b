// Goal: a room that closed (its last peer left) and opens again serves every durable edit,
// including the ones the endpoint itself appended for the peers of the earlier room. On 9865b46
// a reopened room passed over the endpoint's own entries as "already in the document" (true only
// of the room that wrote them), so a new peer got the document without them; the flaky CI run of
// `yjs-parts.test.ts` was this.
// Method: a relay made as the CLI makes it (SQLite dataDir, a Yjs schema), unmodified y-websocket
// providers; `/metrics` says when the room has closed (`ledgerline_yjs_rooms`).
import { afterEach, describe, expect, it } from 'vitest'
import { TENANT, token } from './edges.test-helper.ts'
import { connectPeer, startYjsRelay, until } from './yjs-edges.test-helper.ts'

const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

describe('a y-websocket room opened again', () => {
  it('gives a new peer the edits the endpoint appended for an earlier room', async () => {
    const yjs = await startYjsRelay()
    cleanups.push(() => yjs.close())
    const rooms = async (): Promise<number> => {
      const text = await (
        await fetch(`${yjs.relay.url.replace(/^ws/, 'http').replace(/\/sync$/, '')}/metrics`)
      ).text()
      const line = text.split('\n').find((l) => l.startsWith('ledgerline_yjs_rooms '))
      return Number(line?.split(' ')[1])
    }
    const tok = await token({ sub: 'web' })
    const a = connectPeer(yjs.base, 'again', tok)
    cleanups.push(() => a.destroy())
    await until(() => a.provider.synced, 'synced')
    a.doc.getText('t').insert(0, 'first ')
    await until(async () => (await yjs.relay.store.head(TENANT, 'doc/again')).version >= 1, 'first')
    a.doc.getText('t').insert(6, 'second')
    await until(async () => (await yjs.relay.store.head(TENANT, 'doc/again')).version >= 2, '2nd')
    expect(await rooms()).toBe(1)
    a.destroy()
    await until(async () => (await rooms()) === 0, 'the room to close')

    const b = connectPeer(yjs.base, 'again', tok)
    cleanups.push(() => b.destroy())
    await until(() => b.provider.synced, 'the new peer synced')
    await until(() => b.doc.getText('t').length === 12, 'both edits at the new peer', 5_000)
    expect(b.doc.getText('t').toString()).toBe('first second')
  })
})

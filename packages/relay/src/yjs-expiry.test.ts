// Goal: issue 13 case 4 — `/yjs` enforces token expiry as `/sync` does: when the token of a
// y-websocket connection expires, the relay closes it (4403, token_expired), and what the
// provider edits after that is not written to the log (on 3a8bfae the connection keeps writing).
// Method: a relay made as the CLI makes it (SQLite `dataDir`, a Yjs schema), an unmodified
// y-websocket provider whose token (a subprotocol) lives 3 s. Its reconnects carry the same,
// now expired, token and are refused at the upgrade.
import { afterEach, describe, expect, it } from 'vitest'
import { TENANT, token } from './edges.test-helper.ts'
import { connectPeer, startYjsRelay, until } from './yjs-edges.test-helper.ts'

const TOKEN_EXPIRED_CLOSE_CODE = 4403

const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

describe('issue 13 case 4: /yjs and token expiry', () => {
  it('closes a y-websocket connection when its token expires and writes nothing after', async () => {
    // No clock tolerance: a reconnect with the expired token is refused at once.
    const yjs = await startYjsRelay({ limits: { tokenClockToleranceS: 0 } })
    cleanups.push(() => yjs.close())
    const peer = connectPeer(yjs.base, 'expiring', await token({ sub: 'web', expiresInS: 3 }))
    cleanups.push(() => peer.destroy())
    await until(() => peer.provider.synced, 'the provider synced')
    peer.doc.getText('t').insert(0, 'before expiry;')
    await until(
      async () => (await yjs.relay.store.head(TENANT, 'doc/expiring')).version > 0,
      'the edit in the log',
    )
    const before = (await yjs.relay.store.head(TENANT, 'doc/expiring')).version

    await until(() => peer.closes.length > 0, 'the relay to close the expired connection', 10_000)
    expect(peer.closes[0]).toBe(TOKEN_EXPIRED_CLOSE_CODE)
    peer.doc.getText('t').insert(0, 'after expiry;')
    await new Promise((r) => setTimeout(r, 1_000))
    expect((await yjs.relay.store.head(TENANT, 'doc/expiring')).version).toBe(before)
  }, 30_000)
})

// Goal: `/yjs/` on a store hub (issue 15). Two unmodified y-websocket providers in the store edit
// one room through the hub while its upstream is cut: an edit reaches the other provider (it is
// durable in the hub's store queue first) and head office holds nothing of it yet. When the link
// is back, the update reaches head office's log and a provider connected to head office directly
// sees the edit.
import WebSocket from 'ws'
import { afterEach, describe, expect, it } from 'vitest'
import { defineEntity, defineSchema } from '@ledgerline/core'
import { WebsocketProvider } from 'y-websocket'
import * as Y from 'yjs'
import { signToken } from '../auth.ts'
import { SECRET, TENANT, token } from '../edges.test-helper.ts'
import type { Relay } from '../index.ts'
import { waitFor } from '../wire-client.test-helper.ts'
import { YJS_SUBPROTOCOL, YJS_TOKEN_SUBPROTOCOL_PREFIX } from '../yjs-endpoint.ts'
import { startProxy, startTestRelay } from './hub.test-helper.ts'

const doc = defineEntity<Uint8Array>({
  type: 'doc',
  crdt: 'yjs',
  initial: Y.encodeStateAsUpdate(new Y.Doc()),
  reduce: (s, e) => (e.data instanceof Uint8Array ? Y.mergeUpdates([s, e.data]) : s),
})
const schema = defineSchema(doc)
const WAIT_MS = 10_000

const undo: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const u of undo.splice(0).reverse()) await u()
})

const start = (upstream?: { url: string; token: string }): Promise<Relay> =>
  startTestRelay(undo, { upstream, schema })

async function provider(relay: Relay, room: string): Promise<Y.Doc> {
  const t = await signToken({
    secret: SECRET,
    tenant: TENANT,
    sub: 'pad',
    read: ['*'],
    write: ['*'],
  })
  const ydoc = new Y.Doc()
  const p = new WebsocketProvider(`${relay.url.replace(/\/sync$/, '')}/yjs`, room, ydoc, {
    protocols: [YJS_SUBPROTOCOL, `${YJS_TOKEN_SUBPROTOCOL_PREFIX}${t}`],
    WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket,
    disableBc: true,
    maxBackoffTime: 200,
  })
  undo.push(() => {
    p.destroy()
    ydoc.destroy()
  })
  await waitFor(() => p.synced, WAIT_MS)
  return ydoc
}

describe('/yjs/ on a store hub', () => {
  it('relays updates in a cut-off store once durable, then forwards them', async () => {
    const hq = await start()
    const proxy = await startProxy(hq.port, undo)
    const hub = await start({
      url: proxy.url,
      token: await token({ sub: 'hub-7', read: ['*'], write: [], forward: ['doc/*'] }),
    })
    await waitFor(() => hub.store.partitions > 0, WAIT_MS)
    const a = await provider(hub, 'till')
    const b = await provider(hub, 'till')
    proxy.cut()
    a.getMap('menu').set('espresso', 'Ristretto')
    await waitFor(() => b.getMap('menu').get('espresso') === 'Ristretto', WAIT_MS)
    expect((await hq.store.head(TENANT, 'doc/till')).version).toBe(0)
    proxy.restore()
    const deadline = Date.now() + WAIT_MS
    while ((await hq.store.head(TENANT, 'doc/till')).version === 0) {
      if (Date.now() > deadline) throw new Error('the update never reached head office')
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    const direct = await provider(hq, 'till')
    await waitFor(() => direct.getMap('menu').get('espresso') === 'Ristretto', WAIT_MS)
  })
})

// Goal: a Yjs document lives in the same log for an unmodified `y-websocket` provider and a
// @ledgerline/yjs binding: edits flow live both ways, and both kinds of reader find the
// document again after the relay restarts on the same data directory. Method: a real relay
// (createRelay, SQLite log with CRDT snapshots, the /yjs/ endpoint as an extra upgrade route)
// on 127.0.0.1 port 0, the real @ledgerline/client on fake-indexeddb with `ws`, and a real
// WebsocketProvider with `ws` as its WebSocket. Deterministic edits; every wait is bounded.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { defineSchema } from '@ledgerline/core'
import {
  createRelay,
  createSqliteStore,
  createTokenVerifier,
  createYjsEndpoint,
  signToken,
  withCrdtSnapshots,
} from '@ledgerline/relay'
import { IDBFactory } from 'fake-indexeddb'
import { afterEach, expect, it } from 'vitest'
import { bindYDoc } from './bind-ydoc.ts'
import * as helper from './relay.test-helper.ts'
import { yjsEntity } from './yjs-entity.ts'

const schema = defineSchema(yjsEntity('doc'))
const secret = 'yjs-interop-test-secret-0123456789'
const cleanups: helper.Cleanups = []
const openClient = (url: string, token: string, idb: IDBFactory) =>
  helper.openClient(cleanups, url, token, schema, idb)
const connect = (url: string, room: string, token: string) =>
  helper.connect(cleanups, url, room, token)
const until = helper.until
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

it('y-websocket and @ledgerline/yjs edit one document live, and it survives a relay restart', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'll-yjs-interop-'))
  cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }))
  const token = await signToken({ secret, tenant: 'acme', sub: 'ho', read: ['*'], write: ['*'] })

  let relay = await startRelay(dataDir)
  const client = openClient(relay.url, token, new IDBFactory())
  const binding = await bindYDoc(client, 'doc/catalog', { coalesceMs: 10 })
  const web = connect(relay.yjsUrl, 'catalog', token)
  await until(() => web.provider.synced, 'y-websocket synced')

  web.doc.getText('name').insert(0, 'Espresso 1 kg')
  await until(
    () => binding.doc.getText('name').toString() === 'Espresso 1 kg',
    'y-websocket → binding',
  )
  binding.doc.getMap('desc').set('espresso-1kg', 'Dark roast, whole beans')
  await until(
    () => web.doc.getMap('desc').get('espresso-1kg') === 'Dark roast, whole beans',
    'binding → y-websocket',
  )
  await binding.flush()
  expect((await client.synced({ timeoutMs: 5_000 }))._tag).toBe('synced')

  web.provider.destroy()
  await binding.destroy()
  await client.close()
  await relay.close()

  relay = await startRelay(dataDir)
  const later = connect(relay.yjsUrl, 'catalog', token)
  await until(() => later.provider.synced, 'y-websocket synced after restart')
  await until(
    () => later.doc.getMap('desc').get('espresso-1kg') === 'Dark roast, whole beans',
    'binding edit after restart',
  )
  expect(later.doc.getText('name').toString()).toBe('Espresso 1 kg')
  // A new register (fresh database) catches up through /sync and sees the same document.
  const fresh = openClient(relay.url, token, new IDBFactory())
  const again = await bindYDoc(fresh, 'doc/catalog')
  await until(() => again.doc.getText('name').toString() === 'Espresso 1 kg', 'fresh client')
  expect(again.doc.getMap('desc').get('espresso-1kg')).toBe('Dark roast, whole beans')
  await again.destroy()
  await fresh.close()
})

async function startRelay(
  dataDir: string,
): Promise<{ url: string; yjsUrl: string; close(): Promise<void> }> {
  const store = withCrdtSnapshots(
    await createSqliteStore({ file: join(dataDir, 'log.sqlite'), schema }),
    schema,
  )
  const endpoint = createYjsEndpoint({ store, schema, verify: createTokenVerifier({ secret }) })
  const relay = await createRelay({
    port: 0,
    store,
    schema,
    auth: { secret },
    logLevel: 'silent',
    routes: { '/yjs/': (req, socket, head) => endpoint.handleUpgrade(req, socket, head) },
  })
  let closed = false
  const close = async () => {
    if (closed) return
    closed = true
    await endpoint.close()
    await relay.close()
    await store.close()
  }
  cleanups.push(close)
  return { url: relay.url, yjsUrl: `ws://127.0.0.1:${relay.port}/yjs`, close }
}

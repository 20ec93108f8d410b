// Goal: issue 13 case 6 for @ledgerline/yjs — updates over one entry are split into parts and
// joined before they are applied: a 1 MB paste in a bound Y.Doc reaches another till's binding
// and an unmodified y-websocket provider; a 5 MB document made in one update syncs, the relay writes
// its snapshot in parts, and a new till catches up to the same document. On the commit before
// (6ad10b3) the binding refuses any update over YJS_UPDATE_BYTES_MAX (`too_large`, "it stays in
// this Y.Doc only") and the relay never snapshots a state over 60 KB.
// Method: a real relay (createRelay on a SQLite dataDir with a yjsEntity schema: /sync, /yjs/ and
// CRDT snapshots), the real @ledgerline/client on fake-indexeddb with `ws`, y-websocket with
// `ws`; texts from a seeded generator, which nothing compresses.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { defineSchema, SERVER_CLIENT_ID } from '@ledgerline/core'
import { createRelay, signToken } from '@ledgerline/relay'
import { afterEach, expect, it } from 'vitest'
import { bindYDoc } from './bind-ydoc.ts'
import type { YjsBindingError } from './bind-ydoc.ts'
import * as helper from './relay.test-helper.ts'
import { paste } from './relay.test-helper.ts'
import { YJS_PART, yjsEntity } from './yjs-entity.ts'

const schema = defineSchema(yjsEntity('doc'))
const secret = 'yjs-large-updates-secret-0123456789abcdef'
const cleanups: helper.Cleanups = []
const openClient = (url: string, token: string) => helper.openClient(cleanups, url, token, schema)
const connect = (url: string, room: string, token: string) =>
  helper.connect(cleanups, url, room, token)
const until = (check: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000) =>
  helper.until(check, what, timeoutMs)
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

it('a 1 MB paste reaches another till and a y-websocket provider', async () => {
  const relay = await startRelay()
  const token = await tokenFor('till')
  const errors: YjsBindingError[] = []
  const a = await bindYDoc(openClient(relay.url, token), 'doc/big', {
    onError: (e) => errors.push(e),
  })
  const b = await bindYDoc(openClient(relay.url, token), 'doc/big')
  const web = connect(relay.yjsUrl, 'big', token)
  const text = paste(1_000_000, 1)
  a.doc.getText('t').insert(0, text)
  await until(() => b.doc.getText('t').length === text.length, 'the paste at the other till')
  expect(errors.map((e) => e.kind)).toEqual([])
  expect(b.doc.getText('t').toString()).toBe(text)
  await until(() => web.doc.getText('t').length === text.length, 'the paste at y-websocket')
  expect(web.doc.getText('t').toString()).toBe(text)
  const ledger = await relay.store.readEntity('acme', 'doc/big', 1, 10_000)
  expect(ledger.filter((e) => e.kind === YJS_PART).length).toBeGreaterThan(10)
}, 60_000)

it('a 5 MB document made in one go syncs, is snapshotted in parts, and a new till catches up', async () => {
  const relay = await startRelay()
  const token = await tokenFor('till')
  const a = await bindYDoc(openClient(relay.url, token), 'doc/huge')
  // One transaction: one Yjs update of 5 MB (an import, a document pasted whole).
  a.doc.transact(() => {
    for (let i = 0; i < 50; i++) a.doc.getText('t').insert(0, paste(100_000, i + 1))
  })
  const expected = a.doc.getText('t').toString()
  await a.flush()
  const b = await bindYDoc(openClient(relay.url, token), 'doc/huge')
  await until(() => b.doc.getText('t').length === expected.length, 'the document at another till')
  expect(b.doc.getText('t').toString()).toBe(expected)
  await until(
    async () => {
      const ledger = await relay.store.readEntity('acme', 'doc/huge', 1, 10_000)
      return ledger.filter((e) => e.clientId === SERVER_CLIENT_ID).length > 1
    },
    'a snapshot in parts',
    30_000,
  )
  const fresh = await bindYDoc(openClient(relay.url, token), 'doc/huge')
  await until(() => fresh.doc.getText('t').length === expected.length, 'catch-up', 30_000)
  expect(fresh.doc.getText('t').toString()).toBe(expected)
}, 120_000)

async function startRelay() {
  const dataDir = mkdtempSync(join(tmpdir(), 'll-yjs-large-'))
  const relay = await createRelay({
    port: 0,
    dataDir,
    schema,
    auth: { secret },
    logLevel: 'silent',
  })
  cleanups.push(async () => {
    await relay.close()
    rmSync(dataDir, { recursive: true, force: true })
  })
  return { ...relay, url: relay.url, yjsUrl: `ws://127.0.0.1:${relay.port}/yjs` }
}

function tokenFor(sub: string): Promise<string> {
  return signToken({ secret, tenant: 'acme', sub, read: ['*'], write: ['*'] })
}

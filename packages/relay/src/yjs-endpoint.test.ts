// Goal: the relay's Yjs side keeps its invariants: the snapshot policy (when, where, what id),
// catch-up from the latest snapshot, and a y-websocket endpoint that refuses unauthenticated or
// ungranted upgrades, relays live edits between unmodified y-websocket providers, persists them
// as entries of the room's entity (surviving a relay restart on the same file) and closes
// read-only writers; and a relay made with `dataDir` serves all of it by default. Method: a real
// SQLite log in a temp dir, a loopback HTTP server on port 0, real `y-websocket` providers with
// `ws` as their WebSocket; deterministic edits, no randomness.
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:http'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Entry } from '@ledgerline/core'
import { defineEntity, defineSchema, SERVER_CLIENT_ID } from '@ledgerline/core'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { createPostgresFixture } from '@ledgerline/testkit'
import WebSocket from 'ws'
import { WebsocketProvider } from 'y-websocket'
import * as Y from 'yjs'
import { createTokenVerifier, signToken } from './auth.ts'
import type { LogStore } from './log-store.ts'
import { createRelay } from './relay.ts'
import { createSqliteStore } from './sqlite-store.ts'
import { readFromLatestSnapshot, withCrdtSnapshots } from './crdt-snapshots.ts'
import { SNAPSHOT_UPDATES_EVERY } from './limits.ts'
import type { RelayOptions } from './relay.ts'
import { createPostgresStore } from './postgres-store.ts'
import { createYjsEndpoint, YJS_SUBPROTOCOL, YJS_TOKEN_SUBPROTOCOL_PREFIX } from './yjs-endpoint.ts'
import type { YjsEndpoint } from './yjs-endpoint.ts'

// The relay may not import @ledgerline/yjs; this is the same entity type in a few lines.
const doc = defineEntity<Uint8Array>({
  type: 'doc',
  crdt: 'yjs',
  initial: Y.encodeStateAsUpdate(new Y.Doc()),
  reduce: (s, e) =>
    e.kind === 'yjs.snapshot'
      ? ((e.data as { state: Uint8Array }).state ?? s)
      : e.data instanceof Uint8Array
        ? Y.mergeUpdates([s, e.data])
        : s,
})
const note = defineEntity<number>({ type: 'note', initial: 0, reduce: (s) => s + 1 })
const schema = defineSchema(doc, note)
const secret = 'yjs-endpoint-test-secret-0123456789'
const TENANT = 'acme'
const CLIENT = 'c'.repeat(32)

const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

describe('CRDT snapshots', () => {
  // Goal: after SNAPSHOT_UPDATES_EVERY updates the relay appends one snapshot right after the
  // last one, with a deterministic id, and catch-up starts there with the same content.
  it('snapshots by policy and catches up from the latest snapshot', async () => {
    const { store } = await openLog()
    const source = new Y.Doc()
    const updates: Uint8Array[] = []
    source.on('update', (u: Uint8Array) => updates.push(u))
    for (let i = 0; i < SNAPSHOT_UPDATES_EVERY + 5; i++) source.getText('t').insert(i, 'a')
    // Batches of 10 keep the test fast (one fsync per batch), as the relay's group commit does.
    for (let i = 0; i < updates.length; i += 10) {
      const batch = updates.slice(i, i + 10).map((u, j) => ({ entry: update(i + j + 1, u) }))
      const results = await store.append(TENANT, batch)
      expect(results.every((r) => r.status === 'appended')).toBe(true)
    }
    await store.snapshots.idle()
    const all = await store.readEntity(TENANT, 'doc/x', 1, 1000)
    const snaps = all.filter((e) => e.clientId === SERVER_CLIENT_ID)
    expect(snaps).toHaveLength(1)
    // Snapshots are written after the commit that crossed the policy, so a few more updates
    // may have landed first; the snapshot covers exactly the versions before it.
    const snap = snaps[0] as Entry & { version: number }
    const through = (snap.data as { through: number }).through
    expect(through).toBeGreaterThanOrEqual(SNAPSHOT_UPDATES_EVERY)
    expect(snap.version).toBe(through + 1)
    expect(snap.id).toBe(`${CLIENT}-${through}~snapshot~0`)
    expect(snap.kind).toBe('yjs.snapshot')
    const catchUp = await readFromLatestSnapshot(store, TENANT, 'doc/x')
    expect(catchUp[0]?.id).toBe(snap.id)
    expect(catchUp).toHaveLength(all.length - through)
    const copy = new Y.Doc()
    for (const e of catchUp) {
      Y.applyUpdate(
        copy,
        e.kind === 'yjs.snapshot'
          ? (e.data as { state: Uint8Array }).state
          : (e.data as Uint8Array),
      )
    }
    expect(copy.getText('t').toString()).toBe(source.getText('t').toString())
  })
})

describe('y-websocket endpoint', () => {
  // Goal: no upgrade without a token, a read grant and a Yjs entity type.
  it('refuses upgrades before the handshake', async () => {
    const relay = await startRelay()
    const noRead = await signToken({
      secret,
      tenant: TENANT,
      sub: 'x',
      read: ['note/*'],
      write: [],
    })
    const good = await signToken({ secret, tenant: TENANT, sub: 'x', read: ['*'], write: ['*'] })
    expect(await upgradeStatus(`${relay.url}/yjs/r1`, [])).toBe(401)
    expect(await upgradeStatus(`${relay.url}/yjs/r1?token=bad`, [])).toBe(401)
    expect(await upgradeStatus(`${relay.url}/yjs/r1`, protocolsFor(noRead))).toBe(403)
    expect(await upgradeStatus(`${relay.url}/yjs/note/r1`, protocolsFor(good))).toBe(404)
    expect(await upgradeStatus(`${relay.url}/yjs/r1`, protocolsFor(good))).toBe(101)
  })

  // Goal: two unmodified providers (token as subprotocol, token as ?token=) edit live both ways,
  // the edits are entries of doc/<room>, and a new provider after a relay restart reads them.
  it('relays live edits, persists them, and survives a relay restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'll-yjs-endpoint-'))
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
    const token = await signToken({ secret, tenant: TENANT, sub: 'x', read: ['*'], write: ['*'] })
    let relay = await startRelay(dir)
    const a = connect(relay.url, 'shop', { protocols: protocolsFor(token) })
    const b = connect(relay.url, 'shop', { params: { token } })
    await Promise.all([synced(a.provider), synced(b.provider)])
    a.doc.getText('t').insert(0, 'from a;')
    await until(() => b.doc.getText('t').toString().includes('from a;'))
    b.doc.getMap('m').set('k', 'from b')
    await until(() => a.doc.getMap('m').get('k') === 'from b')
    // Both edits are in the log (possibly coalesced into one entry).
    const logged = new Y.Doc()
    await until(async () => {
      for (const e of await relay.store.readEntity(TENANT, 'doc/shop', 1, 100)) {
        expect(e.kind).toBe('yjs.update')
        Y.applyUpdate(logged, e.data as Uint8Array)
      }
      return logged.getMap('m').get('k') === 'from b'
    })
    expect(logged.getText('t').toString()).toBe('from a;')
    a.provider.destroy()
    b.provider.destroy()
    await relay.close()

    relay = await startRelay(dir)
    const c = connect(relay.url, 'shop', { protocols: protocolsFor(token) })
    await synced(c.provider)
    await until(() => c.doc.getMap('m').get('k') === 'from b')
    expect(c.doc.getText('t').toString()).toBe('from a;')
  })

  // Goal: a token without a write grant reads but cannot write; entries of other writers
  // (a Ledgerline client's push) reach y-websocket providers through onCommit.
  it('delivers entries appended by others and closes read-only writers', async () => {
    const relay = await startRelay()
    const reader = await signToken({
      secret,
      tenant: TENANT,
      sub: 'r',
      read: ['doc/*'],
      write: [],
    })
    const r = connect(relay.url, 'ro', { protocols: protocolsFor(reader) })
    await synced(r.provider)
    const other = new Y.Doc()
    other.getText('t').insert(0, 'pushed')
    await relay.store.append(TENANT, [
      { entry: { ...update(1, Y.encodeStateAsUpdate(other)), entity: 'doc/ro' } },
    ])
    await until(() => r.doc.getText('t').toString() === 'pushed')
    const closed = new Promise<number>((resolve) => {
      r.provider.on('connection-close', (event: { code: number } | null) =>
        resolve(event?.code ?? 0),
      )
    })
    r.doc.getText('t').insert(0, 'no ')
    expect(await closed).toBe(4403)
    expect((await relay.store.head(TENANT, 'doc/ro')).version).toBe(1)
  })
})

describe('createRelay with dataDir', () => {
  // Goal: a relay made the way the CLI makes it (dataDir + schema) serves /yjs/ with its own
  // token check and snapshots CRDT entities, with no extra wiring. Method: createRelay on a temp
  // dir; an unmodified provider edits a room (its entries land in the relay's log); then
  // SNAPSHOT_UPDATES_EVERY updates appended through relay.store are followed by one snapshot.
  it('serves /yjs/ and writes CRDT snapshots by default', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'll-yjs-cli-relay-'))
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
    expect(await servesYjsAndSnapshots({ dataDir: dir })).toMatchObject({ kind: 'yjs.snapshot' })
  })

  // Goal: issue 13 case 10, a relay on a store passed in (how the CLI wires `--store postgres`)
  // loses no feature: /yjs/ and CRDT snapshots as with its own SQLite log. Method: the same
  // check as above on a SQLite store and on a PostgreSQL store handed to createRelay.
  it('serves /yjs/ and writes CRDT snapshots on a store passed in (SQLite)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'll-yjs-store-relay-'))
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
    const store = await createSqliteStore({ file: join(dir, 'log.sqlite'), schema })
    cleanups.push(() => store.close())
    expect(await servesYjsAndSnapshots({ store })).toMatchObject({ kind: 'yjs.snapshot' })
  })

  it.skipIf(postgres.skipReason !== undefined)(
    `serves /yjs/ and writes CRDT snapshots on PostgreSQL${postgres.skipNote}`,
    async () => {
      const url = await postgres.database('yjs_relay')
      const store = await createPostgresStore({ url, schema })
      cleanups.push(() => store.close())
      expect(await servesYjsAndSnapshots({ store })).toMatchObject({ kind: 'yjs.snapshot' })
    },
  )
})

const postgres = createPostgresFixture('yjs')
afterAll(() => postgres.stop())

/**
 * An unmodified provider edits a room through the relay (its entries land in the relay's log);
 * then SNAPSHOT_UPDATES_EVERY updates appended through relay.store are followed by a snapshot.
 */
async function servesYjsAndSnapshots(
  where: Pick<RelayOptions, 'dataDir' | 'store'>,
): Promise<Entry | undefined> {
  const relay = await createRelay({
    port: 0,
    ...where,
    schema,
    auth: { secret },
    logLevel: 'silent',
  })
  cleanups.push(() => relay.close())
  const base = relay.url.replace(/\/sync$/, '')
  const token = await signToken({ secret, tenant: TENANT, sub: 'x', read: ['*'], write: ['*'] })
  expect(await upgradeStatus(`${base}/yjs/r1`, [])).toBe(401)
  expect(await upgradeStatus(`${base}/yjs/note/r1`, protocolsFor(token))).toBe(404)
  const a = connect(base, 'till', { protocols: protocolsFor(token) })
  await synced(a.provider)
  a.doc.getMap('names').set('espresso', 'Ristretto')
  await until(async () => (await relay.store.head(TENANT, 'doc/till')).version > 0)

  const source = new Y.Doc()
  const updates: Uint8Array[] = []
  source.on('update', (u: Uint8Array) => updates.push(u))
  for (let i = 0; i < SNAPSHOT_UPDATES_EVERY; i++) source.getText('t').insert(i, 'a')
  for (let i = 0; i < updates.length; i += 10) {
    const batch = updates.slice(i, i + 10).map((u, j) => ({ entry: update(i + j + 1, u) }))
    await relay.store.append(TENANT, batch)
  }
  const isSnapshot = (e: Entry) => e.kind === 'yjs.snapshot' && e.clientId === SERVER_CLIENT_ID
  await until(async () => (await relay.store.readEntity(TENANT, 'doc/x', 1, 1000)).some(isSnapshot))
  return (await relay.store.readEntity(TENANT, 'doc/x', 1, 1000)).find(isSnapshot)
}

// ---------------------------------------------------------------------------------------------

async function openLog(file?: string): Promise<{ store: ReturnType<typeof withCrdtSnapshots> }> {
  let path = file
  if (path === undefined) {
    const dir = mkdtempSync(join(tmpdir(), 'll-yjs-snap-'))
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
    path = join(dir, 'log.sqlite')
  }
  const store = withCrdtSnapshots(await createSqliteStore({ file: path, schema }), schema)
  return { store }
}

interface TestRelay {
  url: string
  store: LogStore
  endpoint: YjsEndpoint
  close(): Promise<void>
}

async function startRelay(dir?: string): Promise<TestRelay> {
  const base = dir ?? mkdtempSync(join(tmpdir(), 'll-yjs-relay-'))
  if (dir === undefined) cleanups.push(() => rmSync(base, { recursive: true, force: true }))
  const { store } = await openLog(join(base, 'log.sqlite'))
  const endpoint = createYjsEndpoint({ store, schema, verify: createTokenVerifier({ secret }) })
  const server: Server = createServer((_req, res) => res.writeHead(404).end())
  server.on('upgrade', (req, socket, head) => {
    if ((req.url ?? '').startsWith(endpoint.pathPrefix)) endpoint.handleUpgrade(req, socket, head)
    else socket.destroy()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  let closed = false
  const relay: TestRelay = {
    url: `ws://127.0.0.1:${port}`,
    store,
    endpoint,
    async close() {
      if (closed) return
      closed = true
      await endpoint.close()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
      await store.close()
    },
  }
  cleanups.push(() => relay.close())
  return relay
}

function connect(
  url: string,
  room: string,
  options: { protocols?: string[]; params?: Record<string, string> },
): { doc: Y.Doc; provider: WebsocketProvider } {
  const ydoc = new Y.Doc()
  const provider = new WebsocketProvider(`${url}/yjs`, room, ydoc, {
    ...options,
    // `ws` stands in for the browser's WebSocket; it speaks the same API.
    WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket,
    disableBc: true,
    maxBackoffTime: 200,
  })
  cleanups.push(() => {
    provider.destroy()
    ydoc.destroy()
  })
  return { doc: ydoc, provider }
}

function protocolsFor(token: string): string[] {
  return [YJS_SUBPROTOCOL, `${YJS_TOKEN_SUBPROTOCOL_PREFIX}${token}`]
}

function update(seq: number, data: Uint8Array): Entry {
  return {
    id: `${CLIENT}-${seq}`,
    tenant: TENANT,
    entity: 'doc/x',
    kind: 'yjs.update',
    data,
    intent: 'fact',
    clientId: CLIENT,
    clientSeq: seq,
    hlc: `${String(seq).padStart(15, '0')}:00000:${CLIENT}`,
    occurredAt: seq,
  }
}

function upgradeStatus(url: string, protocols: string[]): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, protocols)
    ws.on('open', () => {
      ws.close()
      resolve(101)
    })
    ws.on('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0)
      ws.terminate()
    })
    ws.on('error', () => resolve(-1))
  })
}

function synced(provider: WebsocketProvider): Promise<void> {
  return until(() => provider.synced)
}

async function until(check: () => boolean | Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out waiting for a condition')
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

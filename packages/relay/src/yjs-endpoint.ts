/**
 * The relay's Yjs side: CRDT snapshots of the server log, and a y-websocket-compatible endpoint
 * (`/yjs/<room>`) whose documents live in the same log as every other entity.
 *
 *   y-websocket ──/yjs/<room>──► room (Y.Doc, awareness) ──coalesced yjs.update──► LogStore
 *                                     ▲                                               │
 *                                     └──── onCommit: entries of other writers ◄──────┘
 *   @ledgerline/yjs client ──/sync push──► LogStore (same entity, same outbox, same auth)
 *
 * Terms: a *room* is one entity's live document on this relay, shared by the y-websocket
 * connections that opened it. Room `<id>` is entity `doc/<id>`; room `<type>/<id>` is that
 * entity (the type must be a `crdt: 'yjs'` type of the schema). A *snapshot* is a server-made
 * entry (`yjs.snapshot` / `automerge.snapshot`) whose data `{ through, state }` is the state
 * folded by the entity type over every version up to `through`.
 *
 * Snapshot policy: after a commit to a CRDT entity, when at least `SNAPSHOT_UPDATES_EVERY`
 * entries or `SNAPSHOT_BYTES_EVERY` bytes were appended since the latest snapshot, the relay
 * folds the ledger from that snapshot and appends a new one; a state over
 * `SNAPSHOT_STATE_BYTES_MAX` is not snapshotted (the ledger keeps its history, catch-up reads it
 * all) and is retried after another `SNAPSHOT_BYTES_EVERY` bytes.
 *
 * Token: y-websocket can set neither headers nor a first message, so the token travels in the
 * WebSocket handshake. Preferred: as a subprotocol, `protocols: ['ledgerline-yjs',
 * 'ledgerline-token.<jwt>']` (a JWT is made of subprotocol-safe characters; the relay answers
 * `ledgerline-yjs` and never echoes the token). Accepted on this endpoint only: `?token=<jwt>`
 * (`params: { token }`), for clients that cannot set protocols. Its risk: URLs end up in proxy
 * and access logs and in browser history, so a token there must be short-lived; this relay
 * never logs the query string. `/sync` keeps refusing tokens in the URL.
 *
 * Invariants:
 * 1. No upgrade without a valid token (401), a read grant for the room's entity (403) and a
 *    Yjs entity (404); a connection without a write grant may read and share awareness, and is
 *    closed (4403) when it sends a non-empty update.
 * 2. Every update a y-websocket client sends is appended to the log as part of a coalesced
 *    `yjs.update` entry of the room's entity (within `ROOM_COALESCE_MS`, at most
 *    `ROOM_UPDATE_BYTES_MAX` per entry), with this endpoint's own clientId and gap-free clientSeq
 *    per tenant, so it reaches @ledgerline/yjs clients through their subscriptions.
 * 3. Entries other writers append reach the room through `onCommit` and are applied in version
 *    order; a room applies each version at most once.
 * 4. Awareness lives in memory only and never crosses rooms or tenants.
 * 5. Every queue is bounded: unsent bytes per room (`ROOM_PENDING_BYTES_MAX`, the sender is
 *    closed with 1013 and its client resends on reconnect), buffered bytes per connection
 *    (slow consumers are closed), rooms per endpoint and connections per room (503).
 * 6. A snapshot is appended as a request with `expect` = the version it covers, so it lands
 *    right after that version or not at all; its id `<last entry id>~snapshot~0` is the same on
 *    every relay, so two relays that race make one snapshot.
 */
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Entry, Schema, StoredEntry } from '@ledgerline/core'
import {
  createClientId,
  createHlcClock,
  matchesAny,
  parseEntityName,
  partitionOf,
  SERVER_CLIENT_ID,
} from '@ledgerline/core'
import type { HlcClock } from '@ledgerline/core'
import { randomFillSync } from 'node:crypto'
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import * as awarenessProtocol from 'y-protocols/awareness'
import * as syncProtocol from 'y-protocols/sync'
import * as Y from 'yjs'
import type { WebSocket } from 'ws'
import { WebSocketServer } from 'ws'
import type { TokenVerifier } from './auth.ts'
import type { AppendItem, LogStore } from './log-store.ts'

/** Entries appended since the latest snapshot that make the relay write a new one. */
export const SNAPSHOT_UPDATES_EVERY = 100
/** Bytes of entry data appended since the latest snapshot that make the relay write one. */
export const SNAPSHOT_BYTES_EVERY = 256 * 1024
/** Largest snapshot state; under the protocol's 64 KiB `ENTRY_DATA_BYTES_MAX` with room. */
export const SNAPSHOT_STATE_BYTES_MAX = 60 * 1024
/** Entities whose snapshot bookkeeping a relay keeps in memory. */
export const SNAPSHOT_CACHE_ENTITIES_MAX = 10_000
/** Entries read per page when folding or catching up a CRDT entity. */
export const CRDT_READ_PAGE_ENTRIES = 500
/** Most ms a y-websocket update waits before it is appended to the log. */
export const ROOM_COALESCE_MS = 50
/** Most bytes of one `yjs.update` entry the endpoint appends. */
export const ROOM_UPDATE_BYTES_MAX = 48 * 1024
/** Most bytes of updates a room holds that are not yet durable in the log. */
export const ROOM_PENDING_BYTES_MAX = 1024 * 1024
/** Most rooms one endpoint keeps open. */
export const ROOMS_MAX = 10_000
/** Most y-websocket connections in one room. */
export const ROOM_CONNECTIONS_MAX = 256
/** Bytes a connection may have buffered unsent before it is closed as a slow consumer. */
export const YJS_CONNECTION_BUFFERED_BYTES_MAX = 4 * 1024 * 1024
/** Largest y-websocket frame. */
export const YJS_FRAME_BYTES_MAX = 1024 * 1024

/** The path prefix the endpoint serves. */
export const YJS_PATH_PREFIX = '/yjs/'
/** The subprotocol a y-websocket client offers beside its token; the relay answers with it. */
export const YJS_SUBPROTOCOL = 'ledgerline-yjs'
/** Prefix of the subprotocol that carries the token: `ledgerline-token.<jwt>`. */
export const YJS_TOKEN_SUBPROTOCOL_PREFIX = 'ledgerline-token.'

/** What `maybeSnapshot` did; an expected outcome, never thrown. */
export type SnapshotOutcome =
  | { readonly _tag: 'appended'; readonly version: number; readonly through: number }
  | {
      readonly _tag: 'skipped'
      readonly reason: 'not_crdt' | 'empty' | 'below_policy' | 'too_large' | 'raced'
    }

export interface Snapshotter {
  /** Applies the snapshot policy to one entity after a commit. Never rejects on a race. */
  maybeSnapshot(tenant: string, entity: string): Promise<SnapshotOutcome>
  /** Waits for the snapshots in progress (tests, shutdown). */
  idle(): Promise<void>
}

/**
 * Makes the snapshot writer of a relay. It keeps, per entity, where the latest snapshot is and
 * what was appended since, so deciding costs one read of the new entries.
 *
 * @example
 * const snapshots = createSnapshotter(store, schema)
 * await snapshots.maybeSnapshot('acme', 'catalog/s7') // { _tag: 'skipped', reason: 'below_policy' }
 */
export function createSnapshotter(
  store: LogStore,
  schema: Schema | undefined,
  options: { readonly now?: (() => number) | undefined } = {},
): Snapshotter {
  const now = options.now ?? Date.now
  const books = new Map<string, SnapshotBook>()
  const running = new Map<string, Promise<SnapshotOutcome>>()

  async function run(tenant: string, entity: string): Promise<SnapshotOutcome> {
    const type = schema?.find(entity)
    if (type?.crdt === undefined) return { _tag: 'skipped', reason: 'not_crdt' }
    const head = await store.head(tenant, entity)
    if (head.version === 0) return { _tag: 'skipped', reason: 'empty' }
    const key = `${tenant}\0${entity}`
    let book = books.get(key)
    if (book === undefined) {
      book = await scanBack(store, tenant, entity, head.version)
    } else {
      books.delete(key) // re-inserted below: the Map's order is the LRU order
      await scanForward(store, tenant, entity, book, head.version)
    }
    books.set(key, book)
    if (books.size > SNAPSHOT_CACHE_ENTITIES_MAX) {
      books.delete(books.keys().next().value as string)
    }
    if (book.updates < SNAPSHOT_UPDATES_EVERY && book.bytes < SNAPSHOT_BYTES_EVERY) {
      return { _tag: 'skipped', reason: 'below_policy' }
    }
    if (book.bytes < book.retryAtBytes) return { _tag: 'skipped', reason: 'too_large' }
    const entries = await readRange(store, tenant, entity, Math.max(1, book.snapshotVersion))
    const last = entries[entries.length - 1]
    if (last === undefined || last.clientId === SERVER_CLIENT_ID) {
      return { _tag: 'skipped', reason: 'raced' }
    }
    let state = type.initial
    for (const e of entries) state = type.reduce(state, e)
    if (!(state instanceof Uint8Array) || state.length > SNAPSHOT_STATE_BYTES_MAX) {
      book.retryAtBytes = book.bytes + SNAPSHOT_BYTES_EVERY
      return { _tag: 'skipped', reason: 'too_large' }
    }
    const entry: Entry = {
      id: `${last.id}~snapshot~0`,
      tenant,
      entity,
      kind: `${type.crdt}.snapshot`,
      data: { through: last.version, state },
      intent: 'request',
      expect: last.version,
      corrects: last.id,
      clientId: SERVER_CLIENT_ID,
      clientSeq: 0,
      hlc: last.hlc,
      occurredAt: now(),
    }
    const [result] = await store.append(tenant, [{ entry }])
    if (result === undefined || result.status === 'refused') {
      return { _tag: 'skipped', reason: 'raced' }
    }
    book.snapshotVersion = result.version
    book.scannedThrough = result.version
    book.updates = 0
    book.bytes = 0
    book.retryAtBytes = 0
    return { _tag: 'appended', version: result.version, through: last.version }
  }

  return {
    maybeSnapshot(tenant, entity) {
      // One decision per entity at a time; a call that arrives meanwhile joins the next run.
      const key = `${tenant}\0${entity}`
      const previous = running.get(key) ?? Promise.resolve(undefined)
      const next = previous
        .catch(() => undefined)
        .then(() => run(tenant, entity))
        .finally(() => {
          if (running.get(key) === next) running.delete(key)
        })
      running.set(key, next)
      return next
    },
    async idle() {
      while (running.size > 0) await Promise.allSettled(running.values())
    },
  }
}

/**
 * Wraps a server log so that every append to a CRDT entity is followed by `maybeSnapshot` for
 * it, once the append is durable. This is the one hook the relay needs: `createRelay` wraps its
 * store, and every writer (the `/sync` push path, the `/yjs/` endpoint, tests) gets snapshots.
 * Snapshot failures never fail the append they follow; they are reported to `onError`.
 *
 * @example
 * const store = withCrdtSnapshots(await createSqliteStore({ file, schema }), schema)
 */
export function withCrdtSnapshots(
  store: LogStore,
  schema: Schema | undefined,
  options: { readonly onError?: ((error: unknown) => void) | undefined } = {},
): LogStore & { readonly snapshots: Snapshotter } {
  const snapshots = createSnapshotter(store, schema)
  const onError = options.onError ?? (() => {})
  const wrapped: LogStore & { readonly snapshots: Snapshotter } = {
    partitions: store.partitions,
    snapshots,
    async append(tenant: string, items: readonly AppendItem[]) {
      const results = await store.append(tenant, items)
      const touched = new Set<string>()
      for (const [i, item] of items.entries()) {
        const r = results[i]
        if (r === undefined || r.status !== 'appended') continue
        if (item.entry.clientId === SERVER_CLIENT_ID && item.entry.kind.endsWith('.snapshot')) {
          continue
        }
        if (schema?.find(item.entry.entity)?.crdt !== undefined) touched.add(item.entry.entity)
      }
      for (const entity of touched) snapshots.maybeSnapshot(tenant, entity).catch(onError)
      return results
    },
    readPartition: (...args) => store.readPartition(...args),
    readEntity: (...args) => store.readEntity(...args),
    head: (...args) => store.head(...args),
    clientHigh: (...args) => store.clientHigh(...args),
    partitionHeads: () => store.partitionHeads(),
    onCommit: (listener) => store.onCommit(listener),
    async close() {
      await snapshots.idle()
      await store.close()
    },
  }
  return wrapped
}

/**
 * The entries a new reader of a CRDT entity needs: from its latest snapshot (inclusive) to its
 * head, or the whole ledger when it has no snapshot. Bounded by the snapshot policy.
 *
 * @example
 * const entries = await readFromLatestSnapshot(store, 'acme', 'doc/catalog')
 * // [yjs.snapshot{through: 400}, yjs.update, yjs.update]
 */
export async function readFromLatestSnapshot(
  store: LogStore,
  tenant: string,
  entity: string,
): Promise<StoredEntry[]> {
  const head = await store.head(tenant, entity)
  if (head.version === 0) return []
  const book = await scanBack(store, tenant, entity, head.version)
  return readRange(store, tenant, entity, Math.max(1, book.snapshotVersion))
}

export interface YjsEndpointOptions {
  readonly store: LogStore
  readonly schema?: Schema | undefined
  /** The relay's token check (`createTokenVerifier`). */
  readonly verify: TokenVerifier
  /** Origin allowlist check; every origin is allowed when omitted. */
  readonly checkOrigin?: ((origin: string | undefined) => boolean) | undefined
  readonly now?: (() => number) | undefined
  /** Told about appends that failed; the room keeps running. */
  readonly onError?: ((error: unknown) => void) | undefined
}

export interface YjsEndpoint {
  readonly pathPrefix: string
  /** Handles an HTTP upgrade whose path starts with `pathPrefix`; answers errors itself. */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void
  /** Rooms open now (tests, metrics). */
  roomCount(): number
  /** Appends what rooms still hold, closes every connection (1001) and stops. */
  close(): Promise<void>
}

/**
 * Makes the y-websocket-compatible endpoint. `createRelay` routes upgrades under `/yjs/` to
 * `handleUpgrade`.
 *
 * @example
 * const yjs = createYjsEndpoint({ store, schema, verify: createTokenVerifier({ secret }) })
 * server.on('upgrade', (req, socket, head) => yjs.handleUpgrade(req, socket, head))
 * // browser: new WebsocketProvider('ws://relay/yjs', 'catalog/s7', doc,
 * //   { protocols: ['ledgerline-yjs', `ledgerline-token.${token}`] })
 */
export function createYjsEndpoint(options: YjsEndpointOptions): YjsEndpoint {
  const { store, schema } = options
  const now = options.now ?? Date.now
  const onError = options.onError ?? (() => {})
  // The endpoint writes like a client: its own random clientId per process, gap-free
  // clientSeq per tenant (read back from the log), so dedupe and ordering hold as for /sync.
  const clientId = createClientId((bytes) => randomFillSync(bytes))
  const clock: HlcClock = createHlcClock(clientId, now)
  const seqs = new Map<string, { next: number | undefined; chain: Promise<void> }>()
  const rooms = new Map<string, Room>()
  let closing = false
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: YJS_FRAME_BYTES_MAX,
    handleProtocols: (protocols) => (protocols.has(YJS_SUBPROTOCOL) ? YJS_SUBPROTOCOL : false),
  })
  const stopCommits = store.onCommit((partitions) => {
    for (const room of rooms.values()) {
      if (partitions.includes(room.partition)) void pull(room)
    }
  })

  async function authorize(request: IncomingMessage): Promise<Admission> {
    if (closing) return { _tag: 'refuse', status: 503, message: 'relay is shutting down' }
    if (options.checkOrigin !== undefined && !options.checkOrigin(request.headers.origin)) {
      return { _tag: 'refuse', status: 403, message: 'origin not allowed' }
    }
    const url = new URL(request.url ?? '/', 'http://relay')
    const room = decodeRoom(url.pathname.slice(YJS_PATH_PREFIX.length))
    if (room === undefined) return { _tag: 'refuse', status: 404, message: 'bad room name' }
    const entity = room.includes('/') ? room : `doc/${room}`
    try {
      parseEntityName(entity)
    } catch {
      return { _tag: 'refuse', status: 404, message: 'bad room name' }
    }
    if (schema !== undefined && schema.find(entity)?.crdt !== 'yjs') {
      return { _tag: 'refuse', status: 404, message: `no Yjs entity type for '${entity}'` }
    }
    const token = tokenOf(request, url)
    if (token === undefined) return { _tag: 'refuse', status: 401, message: 'token required' }
    const check = await options.verify(token)
    if (check._tag !== 'valid') return { _tag: 'refuse', status: 401, message: check.message }
    const { tenant, grants } = check.claims
    if (!matchesAny(grants.read, entity)) {
      return { _tag: 'refuse', status: 403, message: `no read grant for '${entity}'` }
    }
    const key = `${tenant}\0${entity}`
    const open = rooms.get(key)
    if (open === undefined && rooms.size >= ROOMS_MAX) {
      return { _tag: 'refuse', status: 503, message: 'too many rooms' }
    }
    if (open !== undefined && open.conns.size >= ROOM_CONNECTIONS_MAX) {
      return { _tag: 'refuse', status: 503, message: 'room is full' }
    }
    return { _tag: 'admit', tenant, entity, canWrite: matchesAny(grants.write, entity) }
  }

  function openRoom(tenant: string, entity: string): Room {
    const key = `${tenant}\0${entity}`
    const existing = rooms.get(key)
    if (existing !== undefined) return existing
    const doc = new Y.Doc({ gc: true })
    const room: Room = {
      key,
      tenant,
      entity,
      partition: partitionOf(tenant, entity, store.partitions),
      doc,
      awareness: new awarenessProtocol.Awareness(doc),
      conns: new Map(),
      version: 0,
      ready: Promise.resolve(),
      pulling: undefined,
      pullAgain: false,
      pending: [],
      pendingBytes: 0,
      timer: undefined,
      appending: Promise.resolve(),
    }
    // The server's own awareness state stays empty; only clients are present.
    room.awareness.setLocalState(null)
    doc.on('update', (update: Uint8Array, origin: unknown) => {
      const message = encodeSyncUpdate(update)
      for (const conn of room.conns.keys()) if (conn !== origin) send(conn, message)
      if (origin instanceof Object && room.conns.has(origin as WebSocket)) enqueue(room, update)
    })
    room.awareness.on(
      'update',
      (
        { added, updated, removed }: { added: number[]; updated: number[]; removed: number[] },
        origin: unknown,
      ) => {
        const changed = [...added, ...updated, ...removed]
        const owner = room.conns.get(origin as WebSocket)
        if (owner !== undefined) {
          for (const id of added) owner.add(id)
          for (const id of removed) owner.delete(id)
        }
        const encoder = encoding.createEncoder()
        encoding.writeVarUint(encoder, MESSAGE_AWARENESS)
        encoding.writeVarUint8Array(
          encoder,
          awarenessProtocol.encodeAwarenessUpdate(room.awareness, changed),
        )
        const message = encoding.toUint8Array(encoder)
        for (const conn of room.conns.keys()) send(conn, message)
      },
    )
    room.ready = pull(room)
    rooms.set(key, room)
    return room
  }

  // Applies the entries after `room.version`, in version order, from the latest snapshot on
  // the first read. One pull per room at a time; commits meanwhile trigger one more.
  function pull(room: Room): Promise<void> {
    if (room.pulling !== undefined) {
      room.pullAgain = true
      return room.pulling
    }
    room.pulling = (async () => {
      do {
        room.pullAgain = false
        const entries =
          room.version === 0
            ? await readFromLatestSnapshot(store, room.tenant, room.entity)
            : await readRange(store, room.tenant, room.entity, room.version + 1)
        Y.transact(
          room.doc,
          () => {
            for (const entry of entries) {
              if (entry.version <= room.version) continue
              room.version = entry.version
              if (entry.clientId === clientId) continue // this endpoint's: already in the doc
              const update = updateOf(entry)
              if (update !== undefined) Y.applyUpdate(room.doc, update, LOG_ORIGIN)
            }
          },
          LOG_ORIGIN,
        )
      } while (room.pullAgain)
    })()
      .catch(onError)
      .finally(() => {
        room.pulling = undefined
      })
    return room.pulling
  }

  function enqueue(room: Room, update: Uint8Array) {
    if (room.pendingBytes + update.length > ROOM_UPDATE_BYTES_MAX) flush(room)
    room.pending.push(update)
    room.pendingBytes += update.length
    room.timer ??= setTimeout(() => flush(room), ROOM_COALESCE_MS)
  }

  function flush(room: Room): Promise<void> {
    if (room.timer !== undefined) clearTimeout(room.timer)
    room.timer = undefined
    if (room.pending.length === 0) return room.appending
    const updates = room.pending
    room.pending = []
    const bytes = room.pendingBytes
    const merged = updates.length === 1 ? (updates[0] as Uint8Array) : Y.mergeUpdates(updates)
    room.appending = room.appending
      .then(() => appendUpdate(room.tenant, room.entity, merged))
      .catch(onError)
      .finally(() => {
        room.pendingBytes -= bytes
      })
    return room.appending
  }

  // Appends one update as this endpoint's next entry of `tenant`, in clientSeq order.
  function appendUpdate(tenant: string, entity: string, update: Uint8Array): Promise<void> {
    let seq = seqs.get(tenant)
    if (seq === undefined) {
      seq = { next: undefined, chain: Promise.resolve() }
      seqs.set(tenant, seq)
    }
    const s = seq
    const job = s.chain.then(async () => {
      for (let attempt = 0; attempt < 2; attempt++) {
        s.next ??= (await store.clientHigh(tenant, clientId)) + 1
        const clientSeq = s.next
        const entry: Entry = {
          id: `${clientId}-${clientSeq}`,
          tenant,
          entity,
          kind: YJS_UPDATE_KIND,
          data: update,
          intent: 'fact',
          clientId,
          clientSeq,
          hlc: clock.tick(),
          occurredAt: now(),
        }
        const [result] = await store.append(tenant, [{ entry }])
        if (result?.status === 'refused' && result.code === 'seq_gap') {
          s.next = undefined // another writer of ours moved on: read the high-water mark again
          continue
        }
        s.next = clientSeq + 1
        if (result?.status === 'refused') {
          throw new Error(`y-websocket update refused: ${result.code}: ${result.reason}`)
        }
        return
      }
      throw new Error('y-websocket update refused twice with seq_gap')
    })
    s.chain = job.catch(() => undefined)
    return job
  }

  function onConnection(conn: WebSocket, room: Room, canWrite: boolean) {
    room.conns.set(conn, new Set())
    conn.binaryType = 'arraybuffer'
    let queue: Promise<void> = room.ready
    conn.on('message', (data: ArrayBuffer | Buffer) => {
      const bytes = new Uint8Array(data instanceof ArrayBuffer ? data : data)
      // Messages are handled in order, after the room has loaded from the log.
      queue = queue
        .then(() => handleMessage(conn, room, canWrite, bytes))
        .catch((error) => {
          onError(error)
          conn.close(1011, 'internal error')
        })
    })
    conn.on('close', () => {
      const owned = room.conns.get(conn)
      room.conns.delete(conn)
      if (owned !== undefined && owned.size > 0) {
        awarenessProtocol.removeAwarenessStates(room.awareness, [...owned], null)
      }
      if (room.conns.size === 0) void closeRoomWhenIdle(room)
    })
    void room.ready.then(() => {
      if (conn.readyState !== conn.OPEN) return
      // Sync step 1 from the server: the client answers with what the relay lacks.
      const encoder = encoding.createEncoder()
      encoding.writeVarUint(encoder, MESSAGE_SYNC)
      syncProtocol.writeSyncStep1(encoder, room.doc)
      send(conn, encoding.toUint8Array(encoder))
      const states = room.awareness.getStates()
      if (states.size > 0) {
        const aw = encoding.createEncoder()
        encoding.writeVarUint(aw, MESSAGE_AWARENESS)
        encoding.writeVarUint8Array(
          aw,
          awarenessProtocol.encodeAwarenessUpdate(room.awareness, [...states.keys()]),
        )
        send(conn, encoding.toUint8Array(aw))
      }
    })
  }

  function handleMessage(conn: WebSocket, room: Room, canWrite: boolean, bytes: Uint8Array) {
    const decoder = decoding.createDecoder(bytes)
    const type = decoding.readVarUint(decoder)
    if (type === MESSAGE_SYNC) {
      const syncType = decoding.readVarUint(decoder)
      if (syncType === syncProtocol.messageYjsSyncStep1) {
        const encoder = encoding.createEncoder()
        encoding.writeVarUint(encoder, MESSAGE_SYNC)
        syncProtocol.writeSyncStep2(encoder, room.doc, decoding.readVarUint8Array(decoder))
        send(conn, encoding.toUint8Array(encoder))
        return
      }
      if (
        syncType !== syncProtocol.messageYjsSyncStep2 &&
        syncType !== syncProtocol.messageYjsUpdate
      ) {
        conn.close(1003, 'unknown sync message')
        return
      }
      const update = decoding.readVarUint8Array(decoder)
      if (isEmptyUpdate(update)) return
      if (!canWrite) {
        conn.close(4403, 'read-only: no write grant for this document')
        return
      }
      if (update.length > ROOM_UPDATE_BYTES_MAX) {
        conn.close(1009, `update over ${ROOM_UPDATE_BYTES_MAX} bytes`)
        return
      }
      if (room.pendingBytes + update.length > ROOM_PENDING_BYTES_MAX) {
        // Not applied: the client keeps it and sends it again after it reconnects.
        conn.close(1013, 'room backlog full, try again later')
        return
      }
      Y.applyUpdate(room.doc, update, conn)
      return
    }
    if (type === MESSAGE_AWARENESS) {
      awarenessProtocol.applyAwarenessUpdate(
        room.awareness,
        decoding.readVarUint8Array(decoder),
        conn,
      )
      return
    }
    if (type === MESSAGE_QUERY_AWARENESS) {
      const encoder = encoding.createEncoder()
      encoding.writeVarUint(encoder, MESSAGE_AWARENESS)
      encoding.writeVarUint8Array(
        encoder,
        awarenessProtocol.encodeAwarenessUpdate(room.awareness, [
          ...room.awareness.getStates().keys(),
        ]),
      )
      send(conn, encoding.toUint8Array(encoder))
      return
    }
    // messageAuth (2) and unknown types: y-websocket servers ignore them.
  }

  async function closeRoomWhenIdle(room: Room) {
    await flush(room)
    await room.appending
    if (room.conns.size > 0 || rooms.get(room.key) !== room) return
    rooms.delete(room.key)
    room.awareness.destroy()
    room.doc.destroy()
  }

  return {
    pathPrefix: YJS_PATH_PREFIX,
    handleUpgrade(request, socket, head) {
      authorize(request).then(
        (admission) => {
          if (admission._tag === 'refuse') {
            refuseUpgrade(socket, admission.status, admission.message)
            return
          }
          wss.handleUpgrade(request, socket, head, (conn) => {
            const room = openRoom(admission.tenant, admission.entity)
            onConnection(conn, room, admission.canWrite)
          })
        },
        (error: unknown) => {
          onError(error)
          refuseUpgrade(socket, 500, 'internal error')
        },
      )
    },
    roomCount: () => rooms.size,
    async close() {
      closing = true
      stopCommits()
      await Promise.all([...rooms.values()].map((room) => flush(room)))
      for (const room of rooms.values()) {
        for (const conn of room.conns.keys()) conn.close(1001, 'relay is shutting down')
      }
      await Promise.all([...rooms.values()].map((room) => room.appending))
      for (const s of seqs.values()) await s.chain
      await new Promise<void>((resolve) => wss.close(() => resolve()))
    },
  }
}

// ---------------------------------------------------------------------------------------------

const MESSAGE_SYNC = 0
const MESSAGE_AWARENESS = 1
const MESSAGE_QUERY_AWARENESS = 3
const YJS_UPDATE_KIND = 'yjs.update'
const YJS_SNAPSHOT_KIND = 'yjs.snapshot'
const LOG_ORIGIN = Symbol('ledgerline:log')

interface Room {
  readonly key: string
  readonly tenant: string
  readonly entity: string
  readonly partition: number
  readonly doc: Y.Doc
  readonly awareness: awarenessProtocol.Awareness
  /** Each connection with the awareness client ids it controls. */
  readonly conns: Map<WebSocket, Set<number>>
  /** The last version applied from the log. */
  version: number
  ready: Promise<void>
  pulling: Promise<void> | undefined
  pullAgain: boolean
  pending: Uint8Array[]
  /** Bytes received and not yet durable (buffered or being appended). */
  pendingBytes: number
  timer: ReturnType<typeof setTimeout> | undefined
  appending: Promise<void>
}

type Admission =
  | { readonly _tag: 'admit'; tenant: string; entity: string; canWrite: boolean }
  | { readonly _tag: 'refuse'; status: number; message: string }

interface SnapshotBook {
  /** Version of the latest snapshot; 0 when the ledger has none. */
  snapshotVersion: number
  /** The last version counted. */
  scannedThrough: number
  /** Entries and data bytes after the latest snapshot. */
  updates: number
  bytes: number
  /** After a too-large state: do not try again before `bytes` reaches this. */
  retryAtBytes: number
}

// Finds the latest snapshot by reading pages backwards from the head. The policy puts one at
// most about SNAPSHOT_UPDATES_EVERY entries back, unless states were too large to snapshot.
async function scanBack(
  store: LogStore,
  tenant: string,
  entity: string,
  headVersion: number,
): Promise<SnapshotBook> {
  const book: SnapshotBook = {
    snapshotVersion: 0,
    scannedThrough: headVersion,
    updates: 0,
    bytes: 0,
    retryAtBytes: 0,
  }
  let upTo = headVersion
  while (upTo >= 1) {
    const from = Math.max(1, upTo - CRDT_READ_PAGE_ENTRIES + 1)
    const page = await store.readEntity(tenant, entity, from, upTo - from + 1)
    for (let i = page.length - 1; i >= 0; i--) {
      const e = page[i] as StoredEntry
      if (e.version > upTo) continue
      if (isSnapshot(e)) {
        book.snapshotVersion = e.version
        return book
      }
      book.updates++
      book.bytes += dataBytes(e)
    }
    upTo = from - 1
  }
  return book
}

async function scanForward(
  store: LogStore,
  tenant: string,
  entity: string,
  book: SnapshotBook,
  headVersion: number,
): Promise<void> {
  while (book.scannedThrough < headVersion) {
    const page = await store.readEntity(
      tenant,
      entity,
      book.scannedThrough + 1,
      CRDT_READ_PAGE_ENTRIES,
    )
    if (page.length === 0) return
    for (const e of page) {
      book.scannedThrough = e.version
      if (isSnapshot(e)) {
        book.snapshotVersion = e.version
        book.updates = 0
        book.bytes = 0
        book.retryAtBytes = 0
      } else {
        book.updates++
        book.bytes += dataBytes(e)
      }
    }
  }
}

async function readRange(
  store: LogStore,
  tenant: string,
  entity: string,
  fromVersion: number,
): Promise<StoredEntry[]> {
  const out: StoredEntry[] = []
  let from = fromVersion
  for (;;) {
    const page = await store.readEntity(tenant, entity, from, CRDT_READ_PAGE_ENTRIES)
    out.push(...page)
    if (page.length < CRDT_READ_PAGE_ENTRIES) return out
    from = (page[page.length - 1] as StoredEntry).version + 1
  }
}

function isSnapshot(entry: Entry): boolean {
  return entry.clientId === SERVER_CLIENT_ID && entry.kind.endsWith('.snapshot')
}

function dataBytes(entry: Entry): number {
  if (entry.data instanceof Uint8Array) return entry.data.length
  return 0
}

function updateOf(entry: Entry): Uint8Array | undefined {
  if (entry.kind === YJS_UPDATE_KIND && entry.data instanceof Uint8Array) return entry.data
  if (entry.kind === YJS_SNAPSHOT_KIND && typeof entry.data === 'object' && entry.data !== null) {
    const state = (entry.data as { state?: unknown }).state
    return state instanceof Uint8Array ? state : undefined
  }
  return undefined
}

function encodeSyncUpdate(update: Uint8Array): Uint8Array {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, MESSAGE_SYNC)
  syncProtocol.writeUpdate(encoder, update)
  return encoding.toUint8Array(encoder)
}

// A y-websocket client answers sync step 1 with step 2 even when it has nothing new: an update
// with no structs and an empty delete set. That is not a write.
function isEmptyUpdate(update: Uint8Array): boolean {
  const { structs, ds } = Y.decodeUpdate(update)
  return structs.length === 0 && ds.clients.size === 0
}

function send(conn: WebSocket, message: Uint8Array): void {
  if (conn.readyState !== conn.OPEN) return
  if (conn.bufferedAmount > YJS_CONNECTION_BUFFERED_BYTES_MAX) {
    conn.close(1013, 'slow consumer')
    return
  }
  conn.send(message)
}

function decodeRoom(path: string): string | undefined {
  if (path.length === 0) return undefined
  try {
    const room = path.split('/').map(decodeURIComponent).join('/')
    return room.length > 0 && !room.includes('\0') ? room : undefined
  } catch {
    return undefined
  }
}

function tokenOf(request: IncomingMessage, url: URL): string | undefined {
  const header = request.headers['sec-websocket-protocol']
  if (typeof header === 'string') {
    for (const part of header.split(',')) {
      const p = part.trim()
      if (p.startsWith(YJS_TOKEN_SUBPROTOCOL_PREFIX)) {
        return p.slice(YJS_TOKEN_SUBPROTOCOL_PREFIX.length)
      }
    }
  }
  return url.searchParams.get('token') ?? undefined
}

function refuseUpgrade(socket: Duplex, status: number, message: string): void {
  const reason =
    { 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 503: 'Service Unavailable' }[
      status
    ] ?? 'Internal Server Error'
  const body = `${message}\n`
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: text/plain\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  )
}

/**
 * The relay's y-websocket-compatible endpoint (`/yjs/<room>`), whose documents live in the same
 * log as every other entity, on any `LogStore`. The snapshot policy is `crdt-snapshots.ts`; the
 * wire helpers are `yjs-wire.ts`; its limits are in `limits.ts`.
 *
 *   y-websocket ──/yjs/<room>──► room (Y.Doc, awareness) ──coalesced yjs.update──► LogStore
 *                                     ▲                                               │
 *                                     └──── onCommit: entries of other writers ◄──────┘
 *   @ledgerline/yjs client ──/sync push──► LogStore (same entity, same outbox, same auth)
 *
 * Terms: a *room* is one entity's live document on this relay, shared by the y-websocket
 * connections that opened it. Room `<id>` is entity `doc/<id>`; room `<type>/<id>` is that
 * entity (the type must be a `crdt: 'yjs'` type of the schema).
 *
 * Token: in the WebSocket handshake (`yjs-wire.ts` says how and why).
 *
 * Close codes follow y-websocket's reading of them: 4400-4499 are final (the provider stops
 * reconnecting: no write grant 4403, token expired 4403, too large 4413), every other code is
 * transient (rate limited 4503, append failed 1011, backlog full 1013, shutdown 1001).
 *
 * Invariants:
 * 1. No upgrade without a valid token (401), a read grant for the room's entity (403), a Yjs
 *    entity (404) and a seat of the tenant (503); a connection without a write grant may read
 *    and share awareness, and is closed (4403) when it sends a non-empty update. A connection is
 *    closed (4403, `token_expired`) when its token expires, like a `/sync` session.
 * 2. Every update a y-websocket client sends is appended to the log, coalesced with the room's
 *    other updates (within `ROOM_COALESCE_MS`, up to `ROOM_UPDATE_BYTES_MAX`), as one `yjs.update`
 *    entry or, over one entry, as parts (`crdt-parts.ts` of the model) in one append; with this
 *    endpoint's own clientId and gap-free clientSeq per tenant, so it reaches @ledgerline/yjs
 *    clients through their subscriptions.
 * 3. Durable first: an update enters the room's document, and so reaches any peer, only after
 *    its append is durable. When an append fails, its writers are closed (1011) and nobody sees
 *    the update; their clients still hold it and send it again after they reconnect.
 * 4. Entries other writers append reach the room through `onCommit` and are applied in version
 *    order, parts joined first; a room applies each version at most once.
 * 5. Awareness lives in memory only and never crosses rooms or tenants; a connection holds at
 *    most `yjsAwarenessBytesMax` of it (an update past it closes the connection with 4413 and is
 *    relayed to nobody).
 * 6. Every queue is bounded: messages per connection (`yjsMessagesPerS`, closed with 4503),
 *    unsent bytes per room (`ROOM_PENDING_BYTES_MAX`) and per endpoint
 *    (`YJS_PENDING_BYTES_MAX`; the sender is closed with 1013 and its client resends on
 *    reconnect), buffered bytes per connection (slow consumers are closed), rooms per endpoint
 *    and connections per room (503).
 */
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { randomFillSync } from 'node:crypto'
import type { Entry, Schema } from '@ledgerline/core'
import {
  createClientId,
  createCrdtJoiner,
  createHlcClock,
  CRDT_UPDATE_BYTES_MAX,
  crdtUpdateDrafts,
  matchesAny,
  parseEntityName,
  partitionOf,
} from '@ledgerline/core'
import type { HlcClock } from '@ledgerline/core'
import { ERROR_KINDS } from '@ledgerline/protocol'
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import * as awarenessProtocol from 'y-protocols/awareness'
import * as syncProtocol from 'y-protocols/sync'
import * as Y from 'yjs'
import type { WebSocket } from 'ws'
import { WebSocketServer } from 'ws'
import type { TokenVerifier } from './auth.ts'
import { readFromLatestSnapshot, readRange } from './crdt-snapshots.ts'
import {
  RELAY_LIMITS_DEFAULT,
  ROOM_COALESCE_MS,
  ROOM_CONNECTIONS_MAX,
  ROOM_PENDING_BYTES_MAX,
  ROOM_UPDATE_BYTES_MAX,
  ROOMS_MAX,
  YJS_FRAME_BYTES_MAX,
  YJS_PENDING_BYTES_MAX,
} from './limits.ts'
import type { RelayLimits } from './limits.ts'
import type { LogStore } from './log-store.ts'
import { createRelayGates } from './relay-gates.ts'
import type { RelayGates, Seat } from './relay-gates.ts'
import {
  decodeRoom,
  encodeSyncUpdate,
  isEmptyUpdate,
  MESSAGE_AWARENESS,
  MESSAGE_QUERY_AWARENESS,
  MESSAGE_SYNC,
  refuseUpgrade,
  send,
  tokenOf,
  updateOf,
  YJS_PATH_PREFIX,
  YJS_SUBPROTOCOL,
} from './yjs-wire.ts'

export { YJS_PATH_PREFIX, YJS_SUBPROTOCOL, YJS_TOKEN_SUBPROTOCOL_PREFIX } from './yjs-wire.ts'

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
  /** The relay's limits (the `yjs…` ones and the tenant cap); the defaults when omitted. */
  readonly limits?: Partial<RelayLimits> | undefined
  /** The relay's global bounds, shared with `/sync`; a gate of its own when omitted. */
  readonly gates?: RelayGates | undefined
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
  const limits: RelayLimits = { ...RELAY_LIMITS_DEFAULT, ...options.limits }
  const gates = options.gates ?? createRelayGates(limits)
  let pendingBytes = 0
  // The endpoint writes like a client: its own random clientId per process, gap-free
  // clientSeq per tenant (read back from the log), so dedupe and ordering hold as for /sync.
  const clientId = createClientId((bytes) => randomFillSync(bytes))
  const clock: HlcClock = createHlcClock(clientId, now)
  const seqs = new Map<string, { next: number | undefined; chain: Promise<void> }>()
  const rooms = new Map<string, Room>()
  const conns = new Map<WebSocket, Conn>()
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
    const seat = gates.tenant(tenant)
    if (seat === undefined) {
      return { _tag: 'refuse', status: 503, message: 'too many connections of this tenant' }
    }
    return {
      _tag: 'admit',
      tenant,
      entity,
      canWrite: matchesAny(grants.write, entity),
      expiresAt: check.claims.expiresAt,
      seat,
    }
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
      writers: new Set(),
      pendingBytes: 0,
      timer: undefined,
      appending: Promise.resolve(),
      joiner: createCrdtJoiner('yjs'),
    }
    // The server's own awareness state stays empty; only clients are present.
    room.awareness.setLocalState(null)
    // Invariant 3: the doc only changes with what is durable, from the log or a flush.
    doc.on('update', (update: Uint8Array, origin: unknown) => {
      const message = encodeSyncUpdate(update)
      const alone = origin instanceof Durable && origin.writers.size === 1 ? origin.writers : null
      for (const conn of room.conns.keys()) if (alone?.has(conn) !== true) send(conn, message)
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
              // Invariant 4: parts wait for the rest of their group.
              for (const whole of room.joiner.add(entry)) {
                const update = updateOf(whole)
                if (update !== undefined) Y.applyUpdate(room.doc, update, LOG_ORIGIN)
              }
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

  function enqueue(room: Room, conn: WebSocket, update: Uint8Array) {
    if (room.pendingBytes > 0 && room.pendingBytes + update.length > ROOM_UPDATE_BYTES_MAX) {
      void flush(room)
    }
    room.pending.push(update)
    room.writers.add(conn)
    room.pendingBytes += update.length
    pendingBytes += update.length
    // A big update goes at once (alone, in parts); small ones wait to be coalesced.
    if (room.pendingBytes >= ROOM_UPDATE_BYTES_MAX) void flush(room)
    else room.timer ??= setTimeout(() => void flush(room), ROOM_COALESCE_MS)
  }

  function flush(room: Room): Promise<void> {
    if (room.timer !== undefined) clearTimeout(room.timer)
    room.timer = undefined
    if (room.pending.length === 0) return room.appending
    const updates = room.pending
    const writers = room.writers
    room.pending = []
    room.writers = new Set()
    const bytes = updates.reduce((n, u) => n + u.length, 0)
    const merged = updates.length === 1 ? (updates[0] as Uint8Array) : Y.mergeUpdates(updates)
    room.appending = room.appending
      .then(async () => {
        try {
          await appendUpdate(room.tenant, room.entity, merged)
        } catch (error) {
          // Invariant 3: nobody saw it; its writers learn it failed and send it again.
          onError(error)
          for (const conn of writers) conn.close(1011, 'append failed; resend after reconnecting')
          return
        }
        Y.applyUpdate(room.doc, merged, new Durable(writers))
      })
      .catch(onError)
      .finally(() => {
        room.pendingBytes -= bytes
        pendingBytes -= bytes
      })
    return room.appending
  }

  // Appends one update as this endpoint's next entries of `tenant` (one, or its parts), in
  // clientSeq order, in one call: the parts of an update land in one transaction.
  function appendUpdate(tenant: string, entity: string, update: Uint8Array): Promise<void> {
    let seq = seqs.get(tenant)
    if (seq === undefined) {
      seq = { next: undefined, chain: Promise.resolve() }
      seqs.set(tenant, seq)
    }
    const s = seq
    const job = s.chain.then(async () => {
      for (let attempt = 0; attempt < 2; attempt++) {
        s.next ??= (await store.client(tenant, clientId)).high + 1
        const first = s.next
        const entries = entriesOf(tenant, entity, update, first)
        const results = await store.append(
          tenant,
          entries.map((entry) => ({ entry })),
        )
        const gap = results.find((r) => r.status === 'refused' && r.code === 'seq_gap')
        if (gap !== undefined && results[0] === gap) {
          s.next = undefined // another writer of ours moved on: read the high-water mark again
          continue
        }
        s.next = first + entries.length
        const refused = results.find((r) => r.status !== 'appended' && r.status !== 'duplicate')
        if (refused !== undefined) {
          throw new Error(`y-websocket update not appended: ${JSON.stringify(refused)}`)
        }
        return
      }
      throw new Error('y-websocket update refused twice with seq_gap')
    })
    s.chain = job.catch(() => undefined)
    return job
  }

  function entriesOf(tenant: string, entity: string, update: Uint8Array, first: number): Entry[] {
    const make = (clientSeq: number, kind: string, data: Entry['data']): Entry => ({
      id: `${clientId}-${clientSeq}`,
      tenant,
      entity,
      kind,
      data,
      intent: 'fact',
      clientId,
      clientSeq,
      hlc: clock.tick(),
      occurredAt: now(),
    })
    const drafts = crdtUpdateDrafts('yjs', update, `${clientId}-${first}`) ?? []
    return drafts.map((draft, i) => make(first + i, draft.kind, draft.data))
  }

  function onConnection(conn: WebSocket, room: Room, admission: Admitted) {
    const { canWrite } = admission
    const state: Conn = {
      awareness: new Map(),
      tokens: limits.yjsMessagesBurst,
      refilledAt: now(),
      expiry: undefined,
    }
    room.conns.set(conn, new Set())
    conns.set(conn, state)
    conn.binaryType = 'arraybuffer'
    armExpiry(conn, state, admission.expiresAt)
    let queue: Promise<void> = room.ready
    conn.on('message', (data: ArrayBuffer | Buffer) => {
      if (conn.readyState !== conn.OPEN) return
      // Invariant 6: a flood is cut before any of it is queued. y-websocket takes close codes
      // 4400-4499 as final (it stops reconnecting): a rate limit is not, so 4503.
      if (!takeToken(state)) {
        conn.close(ERROR_KINDS.overloaded.closeCode, 'rate_limited: retry later')
        return
      }
      const bytes = new Uint8Array(data instanceof ArrayBuffer ? data : data)
      // Messages are handled in order, after the room has loaded from the log.
      queue = queue
        .then(() => {
          if (conn.readyState === conn.OPEN) handleMessage(conn, room, canWrite, bytes)
        })
        .catch((error) => {
          onError(error)
          conn.close(1011, 'internal error')
        })
    })
    conn.on('close', () => {
      const owned = room.conns.get(conn)
      room.conns.delete(conn)
      conns.delete(conn)
      if (state.expiry !== undefined) clearTimeout(state.expiry)
      admission.seat.release()
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

  // Invariant 1: closed when the token expires (setTimeout holds at most 2^31-1 ms: re-armed).
  function armExpiry(conn: WebSocket, state: Conn, expiresAt: number) {
    const delay = Math.max(0, Math.min(expiresAt - now(), 2 ** 31 - 1))
    state.expiry = setTimeout(() => {
      if (now() >= expiresAt) conn.close(ERROR_KINDS.token_expired.closeCode, 'token_expired')
      else armExpiry(conn, state, expiresAt)
    }, delay)
  }

  function takeToken(state: Conn): boolean {
    const t = now()
    state.tokens = Math.min(
      limits.yjsMessagesBurst,
      state.tokens + ((t - state.refilledAt) * limits.yjsMessagesPerS) / 1000,
    )
    state.refilledAt = t
    if (state.tokens < 1) return false
    state.tokens--
    return true
  }

  // Invariant 5: the awareness states this update would leave the connection holding.
  function awarenessFits(state: Conn, update: Uint8Array): Map<number, number> | undefined {
    const sizes = new Map(state.awareness)
    const decoder = decoding.createDecoder(update)
    const count = decoding.readVarUint(decoder)
    for (let i = 0; i < count; i++) {
      const client = decoding.readVarUint(decoder)
      decoding.readVarUint(decoder) // clock
      const start = decoder.pos
      const json = decoding.readVarString(decoder)
      sizes.set(client, json === 'null' ? 0 : decoder.pos - start)
    }
    let total = 0
    for (const size of sizes.values()) total += size
    return total > limits.yjsAwarenessBytesMax ? undefined : sizes
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
      if (update.length > CRDT_UPDATE_BYTES_MAX) {
        // Final (4413): sending it again can never succeed.
        conn.close(ERROR_KINDS.too_large.closeCode, `update over ${CRDT_UPDATE_BYTES_MAX} bytes`)
        return
      }
      if (
        room.pendingBytes + update.length > ROOM_PENDING_BYTES_MAX ||
        pendingBytes + update.length > YJS_PENDING_BYTES_MAX
      ) {
        // Not applied: the client keeps it and sends it again after it reconnects.
        conn.close(1013, 'backlog full, try again later')
        return
      }
      enqueue(room, conn, update)
      return
    }
    if (type === MESSAGE_AWARENESS) {
      const update = decoding.readVarUint8Array(decoder)
      const state = conns.get(conn)
      const sizes = state === undefined ? undefined : awarenessFits(state, update)
      if (state === undefined || sizes === undefined) {
        conn.close(ERROR_KINDS.too_large.closeCode, 'awareness state too large')
        return
      }
      state.awareness = sizes
      awarenessProtocol.applyAwarenessUpdate(room.awareness, update, conn)
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
          // The tenant seat goes back if the upgrade never completes (also if the socket went
          // away while the token was being checked).
          if (socket.destroyed) {
            admission.seat.release()
            return
          }
          let upgraded = false
          socket.once('close', () => {
            if (!upgraded) admission.seat.release()
          })
          wss.handleUpgrade(request, socket, head, (conn) => {
            upgraded = true
            const room = openRoom(admission.tenant, admission.entity)
            onConnection(conn, room, admission)
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

const LOG_ORIGIN = Symbol('ledgerline:log')

/** The origin of a flush applied once durable: the connections whose updates it holds. */
class Durable {
  readonly writers: ReadonlySet<WebSocket>
  constructor(writers: ReadonlySet<WebSocket>) {
    this.writers = writers
  }
}

/** What the endpoint keeps per connection. */
interface Conn {
  /** Awareness client id → bytes of its state as encoded (invariant 5). */
  awareness: Map<number, number>
  /** Token bucket of messages (invariant 6). */
  tokens: number
  refilledAt: number
  expiry: ReturnType<typeof setTimeout> | undefined
}

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
  /** Updates received and not yet appended, and the connections they came from. */
  pending: Uint8Array[]
  writers: Set<WebSocket>
  /** Bytes received and not yet durable (buffered or being appended). */
  pendingBytes: number
  timer: ReturnType<typeof setTimeout> | undefined
  appending: Promise<void>
  /** Parts of other writers' updates, until their group is complete (invariant 4). */
  readonly joiner: ReturnType<typeof createCrdtJoiner>
}

interface Admitted {
  readonly _tag: 'admit'
  readonly tenant: string
  readonly entity: string
  readonly canWrite: boolean
  readonly expiresAt: number
  readonly seat: Seat
}

type Admission = Admitted | { readonly _tag: 'refuse'; status: number; message: string }

/**
 * The relay's y-websocket-compatible endpoint (`/yjs/<room>`), whose documents live in the same
 * log as every other entity, on any `LogStore`. This module admits connections (invariant 1) and
 * runs the endpoint's life; the rooms are `yjs-rooms.ts` (2–4, 7), a connection is
 * `yjs-connection.ts` (5, 6, 8), the endpoint's writes to the log `yjs-log-writer.ts`, the
 * snapshot policy `crdt-snapshots.ts`, the wire helpers `yjs-wire.ts`, its limits `limits.ts`.
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
 * 7. A room closes only once its last connection left and its pending updates are durable.
 * 8. A connection's messages are handled in arrival order, after its room loaded from the log.
 */
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Schema } from '@ledgerline/core'
import { matchesAny, parseEntityName } from '@ledgerline/core'
import { WebSocketServer } from 'ws'
import type { TokenVerifier } from './auth.ts'
import {
  RELAY_LIMITS_DEFAULT,
  ROOM_CONNECTIONS_MAX,
  ROOMS_MAX,
  YJS_FRAME_BYTES_MAX,
} from './limits.ts'
import type { RelayLimits } from './limits.ts'
import type { LogStore } from './log-store.ts'
import { createRelayGates } from './relay-gates.ts'
import type { RelayGates } from './relay-gates.ts'
import { startYjsConnection } from './yjs-connection.ts'
import type { Admitted } from './yjs-connection.ts'
import { createYjsLogWriter } from './yjs-log-writer.ts'
import { createYjsRooms } from './yjs-rooms.ts'
import { decodeRoom, refuseUpgrade, tokenOf, YJS_PATH_PREFIX, YJS_SUBPROTOCOL } from './yjs-wire.ts'

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
  // The endpoint writes like a client: its own random clientId per process, gap-free
  // clientSeq per tenant (read back from the log), so dedupe and ordering hold as for /sync.
  const writer = createYjsLogWriter(store, now)
  const rooms = createYjsRooms({ store, writer, onError })
  let closing = false
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: YJS_FRAME_BYTES_MAX,
    handleProtocols: (protocols) => (protocols.has(YJS_SUBPROTOCOL) ? YJS_SUBPROTOCOL : false),
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
    const open = rooms.get(tenant, entity)
    if (open === undefined && rooms.size() >= ROOMS_MAX) {
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
      // Until the check stops accepting the token (exp plus the clock tolerance), as /sync.
      expiresAt: check.claims.acceptedUntil,
      seat,
    }
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
            const room = rooms.open(admission.tenant, admission.entity)
            startYjsConnection(conn, room, admission, { rooms, limits, now, onError })
          })
        },
        (error: unknown) => {
          onError(error)
          refuseUpgrade(socket, 500, 'internal error')
        },
      )
    },
    roomCount: () => rooms.size(),
    async close() {
      closing = true
      rooms.stop()
      await Promise.all([...rooms.values()].map((room) => rooms.flush(room)))
      for (const room of rooms.values()) {
        for (const conn of room.conns.keys()) conn.close(1001, 'relay is shutting down')
      }
      await Promise.all([...rooms.values()].map((room) => room.appending))
      await writer.settled()
      await new Promise<void>((resolve) => wss.close(() => resolve()))
    },
  }
}

// ---------------------------------------------------------------------------------------------

type Admission = Admitted | { readonly _tag: 'refuse'; status: number; message: string }

/**
 * One y-websocket connection of a room (`yjs-rooms.ts`): its messages (sync steps, updates,
 * awareness) in order after the room loaded, its rate limit, its awareness budget and its
 * token's expiry. Admission (who may connect) is `yjs-endpoint.ts`.
 *
 * Terms: *canWrite* is whether the token grants writing the room's entity; a connection's
 * *awareness* is the states of the awareness client ids it controls, counted in encoded bytes.
 *
 * Invariants (numbered as in `yjs-endpoint.ts`):
 * 1. (part) A connection without a write grant may read and share awareness, and is closed
 *    (4403) when it sends a non-empty update; it is closed (4403, `token_expired`) when its
 *    token expires.
 * 5. Awareness never leaves the room; a connection holds at most `yjsAwarenessBytesMax` of it
 *    (an update past it closes the connection with 4413 and is relayed to nobody).
 * 6. (part) A flood is cut before any of it is queued (`yjsMessagesPerS`, burst
 *    `yjsMessagesBurst`, closed with 4503); an update that would pass the room's or the
 *    endpoint's pending bytes is not applied and its sender is closed (1013); one over
 *    `CRDT_UPDATE_BYTES_MAX` is closed as final (4413).
 * 8. Messages of a connection are handled one after another, in arrival order, after the
 *    room's first pull; a message that throws closes the connection (1011).
 */
import { CRDT_UPDATE_BYTES_MAX } from '@ledgerline/core'
import { ERROR_KINDS } from '@ledgerline/protocol'
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import * as awarenessProtocol from 'y-protocols/awareness'
import * as syncProtocol from 'y-protocols/sync'
import type { WebSocket } from 'ws'
import { ROOM_PENDING_BYTES_MAX, YJS_PENDING_BYTES_MAX } from './limits.ts'
import type { RelayLimits } from './limits.ts'
import type { Seat } from './relay-gates.ts'
import { encodeAwareness } from './yjs-rooms.ts'
import type { Room, YjsRooms } from './yjs-rooms.ts'
import {
  isEmptyUpdate,
  MESSAGE_AWARENESS,
  MESSAGE_QUERY_AWARENESS,
  MESSAGE_SYNC,
  send,
} from './yjs-wire.ts'

/** What a connection was admitted with. */
export interface Admitted {
  readonly _tag: 'admit'
  readonly tenant: string
  readonly entity: string
  readonly canWrite: boolean
  readonly expiresAt: number
  readonly seat: Seat
}

/**
 * Runs one upgraded connection in its room until it closes; the close releases the seat and
 * lets the room close when it was the last.
 *
 * @example
 * wss.handleUpgrade(request, socket, head, (conn) =>
 *   startYjsConnection(conn, rooms.open(tenant, entity), admission, { rooms, limits, now, onError }))
 */
export function startYjsConnection(
  conn: WebSocket,
  room: Room,
  admission: Admitted,
  context: {
    readonly rooms: YjsRooms
    readonly limits: RelayLimits
    readonly now: () => number
    readonly onError: (error: unknown) => void
  },
): void {
  const { rooms, limits, now, onError } = context
  const { canWrite } = admission
  let awareness = new Map<number, number>()
  let tokens = limits.yjsMessagesBurst
  let refilledAt = now()
  let expiry: ReturnType<typeof setTimeout> | undefined
  room.conns.set(conn, new Set())
  conn.binaryType = 'arraybuffer'
  armExpiry(admission.expiresAt)
  let queue: Promise<void> = room.ready
  conn.on('message', (data: ArrayBuffer | Buffer) => {
    if (conn.readyState !== conn.OPEN) return
    // Invariant 6: a flood is cut before any of it is queued. y-websocket takes close codes
    // 4400-4499 as final (it stops reconnecting): a rate limit is not, so 4503.
    if (!takeToken()) {
      conn.close(ERROR_KINDS.overloaded.closeCode, 'rate_limited: retry later')
      return
    }
    const bytes = new Uint8Array(data instanceof ArrayBuffer ? data : data)
    // Invariant 8: in order, after the room has loaded from the log.
    queue = queue
      .then(() => {
        if (conn.readyState === conn.OPEN) handleMessage(bytes)
      })
      .catch((error) => {
        onError(error)
        conn.close(1011, 'internal error')
      })
  })
  conn.on('close', () => {
    const owned = room.conns.get(conn)
    room.conns.delete(conn)
    if (expiry !== undefined) clearTimeout(expiry)
    admission.seat.release()
    if (owned !== undefined && owned.size > 0) {
      awarenessProtocol.removeAwarenessStates(room.awareness, [...owned], null)
    }
    if (room.conns.size === 0) void rooms.closeWhenIdle(room)
  })
  void room.ready.then(() => {
    if (conn.readyState !== conn.OPEN) return
    // Sync step 1 from the server: the client answers with what the relay lacks.
    const encoder = encoding.createEncoder()
    encoding.writeVarUint(encoder, MESSAGE_SYNC)
    syncProtocol.writeSyncStep1(encoder, room.doc)
    send(conn, encoding.toUint8Array(encoder))
    const states = room.awareness.getStates()
    if (states.size > 0) send(conn, encodeAwareness(room.awareness, [...states.keys()]))
  })

  // Invariant 1: closed when the token expires (setTimeout holds at most 2^31-1 ms: re-armed).
  function armExpiry(expiresAt: number) {
    const delay = Math.max(0, Math.min(expiresAt - now(), 2 ** 31 - 1))
    expiry = setTimeout(() => {
      if (now() >= expiresAt) conn.close(ERROR_KINDS.token_expired.closeCode, 'token_expired')
      else armExpiry(expiresAt)
    }, delay)
  }

  function takeToken(): boolean {
    const t = now()
    tokens = Math.min(
      limits.yjsMessagesBurst,
      tokens + ((t - refilledAt) * limits.yjsMessagesPerS) / 1000,
    )
    refilledAt = t
    if (tokens < 1) return false
    tokens--
    return true
  }

  function handleMessage(bytes: Uint8Array) {
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
        rooms.pendingBytes() + update.length > YJS_PENDING_BYTES_MAX
      ) {
        // Not applied: the client keeps it and sends it again after it reconnects.
        conn.close(1013, 'backlog full, try again later')
        return
      }
      rooms.enqueue(room, conn, update)
      return
    }
    if (type === MESSAGE_AWARENESS) {
      const update = decoding.readVarUint8Array(decoder)
      const sizes = awarenessAfter(awareness, update, limits.yjsAwarenessBytesMax)
      if (sizes === undefined) {
        conn.close(ERROR_KINDS.too_large.closeCode, 'awareness state too large')
        return
      }
      awareness = sizes
      awarenessProtocol.applyAwarenessUpdate(room.awareness, update, conn)
      return
    }
    if (type === MESSAGE_QUERY_AWARENESS) {
      send(conn, encodeAwareness(room.awareness, [...room.awareness.getStates().keys()]))
      return
    }
    // messageAuth (2) and unknown types: y-websocket servers ignore them.
  }
}

/**
 * Invariant 5: the awareness states (client id → encoded bytes, 0 for a removed state) a
 * connection would hold after `update`, or `undefined` when they would pass `bytesMax`.
 *
 * @example
 * awarenessAfter(new Map(), awarenessProtocol.encodeAwarenessUpdate(awareness, [id]), 65_536)
 */
export function awarenessAfter(
  held: ReadonlyMap<number, number>,
  update: Uint8Array,
  bytesMax: number,
): Map<number, number> | undefined {
  const sizes = new Map(held)
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
  return total > bytesMax ? undefined : sizes
}

/**
 * The y-websocket wire as the relay's `/yjs/` endpoint speaks it: message types, sync-update
 * frames, the token in the handshake, the room name in the path, and refusals before the
 * upgrade. No state: the endpoint (`yjs-endpoint.ts`) holds the rooms.
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
 * 1. A connection whose unsent bytes pass `YJS_CONNECTION_BUFFERED_BYTES_MAX` is closed (1013)
 *    rather than buffered further.
 * 2. The token is read from the `ledgerline-token.<jwt>` subprotocol first, `?token=` second;
 *    it is never echoed or logged.
 */
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Entry } from '@ledgerline/core'
import * as encoding from 'lib0/encoding'
import * as syncProtocol from 'y-protocols/sync'
import * as Y from 'yjs'
import type { WebSocket } from 'ws'
import { YJS_CONNECTION_BUFFERED_BYTES_MAX } from './limits.ts'

/** The path prefix the endpoint serves. */
export const YJS_PATH_PREFIX = '/yjs/'
/** The subprotocol a y-websocket client offers beside its token; the relay answers with it. */
export const YJS_SUBPROTOCOL = 'ledgerline-yjs'
/** Prefix of the subprotocol that carries the token: `ledgerline-token.<jwt>`. */
export const YJS_TOKEN_SUBPROTOCOL_PREFIX = 'ledgerline-token.'

export const MESSAGE_SYNC = 0
export const MESSAGE_AWARENESS = 1
export const MESSAGE_QUERY_AWARENESS = 3
export const YJS_UPDATE_KIND = 'yjs.update'
export const YJS_SNAPSHOT_KIND = 'yjs.snapshot'

export function updateOf(entry: Entry): Uint8Array | undefined {
  if (entry.kind === YJS_UPDATE_KIND && entry.data instanceof Uint8Array) return entry.data
  if (entry.kind === YJS_SNAPSHOT_KIND && typeof entry.data === 'object' && entry.data !== null) {
    const state = (entry.data as { state?: unknown }).state
    return state instanceof Uint8Array ? state : undefined
  }
  return undefined
}

export function encodeSyncUpdate(update: Uint8Array): Uint8Array {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, MESSAGE_SYNC)
  syncProtocol.writeUpdate(encoder, update)
  return encoding.toUint8Array(encoder)
}

// A y-websocket client answers sync step 1 with step 2 even when it has nothing new: an update
// with no structs and an empty delete set. That is not a write.
export function isEmptyUpdate(update: Uint8Array): boolean {
  const { structs, ds } = Y.decodeUpdate(update)
  return structs.length === 0 && ds.clients.size === 0
}

export function send(conn: WebSocket, message: Uint8Array): void {
  if (conn.readyState !== conn.OPEN) return
  if (conn.bufferedAmount > YJS_CONNECTION_BUFFERED_BYTES_MAX) {
    conn.close(1013, 'slow consumer')
    return
  }
  conn.send(message)
}

export function decodeRoom(path: string): string | undefined {
  if (path.length === 0) return undefined
  try {
    const room = path.split('/').map(decodeURIComponent).join('/')
    return room.length > 0 && !room.includes('\0') ? room : undefined
  } catch {
    return undefined
  }
}

export function tokenOf(request: IncomingMessage, url: URL): string | undefined {
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

export function refuseUpgrade(socket: Duplex, status: number, message: string): void {
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

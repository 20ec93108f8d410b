/**
 * The transport: the socket the client talks to the relay through. Browsers' `WebSocket` and
 * `ws`'s both fit; the simulation plugs in an in-memory one (`createMemoryTransport` in
 * `@ledgerline/testkit`). `runTransportContract` proves an implementation.
 *
 * Terms: a *frame* is one binary WebSocket message, one encoded protocol message.
 *
 * What an implementation must guarantee (as the WebSocket standard does,
 * https://websockets.spec.whatwg.org/):
 * 1. Events come asynchronously, never from inside the call that caused them: `open` at most
 *    once and before any `message`; `close` exactly once and last (an `error`, if any, comes
 *    before it); a socket that never opened still gets its `close`.
 * 2. Frames arrive whole and in the order they were sent, as binary (`ArrayBuffer` once
 *    `binaryType` is `'arraybuffer'`), never as text.
 * 3. `close` carries the code the closing side gave (1005 when it gave none, 1006 when the
 *    connection was lost without a closing handshake).
 * 4. `send` while connecting throws; `send` after close neither throws nor delivers.
 * 5. `readyState` is 0 connecting, 1 open, 2 closing, 3 closed.
 */

// The socket types live in the protocol package, so a store hub's upstream link dials with the
// same ones.
import type { TransportEvent, WebSocketConstructor, WebSocketLike } from '@ledgerline/protocol'

export type { TransportEvent, WebSocketConstructor, WebSocketLike }

/** `readyState` of an open socket. */
export const SOCKET_OPEN = 1

/**
 * The bytes of a binary frame, whatever form the runtime handed them in.
 *
 * @example
 * decodeMessage(frameBytes(event.data))
 */
export function frameBytes(data: unknown): Uint8Array {
  if (data instanceof Uint8Array) return data
  if (data instanceof ArrayBuffer) return new Uint8Array(data)
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
  if (Array.isArray(data)) {
    // `ws` may hand over fragmented binary messages as a list of buffers.
    const parts = data as Uint8Array[]
    const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0))
    let at = 0
    for (const p of parts) {
      out.set(p, at)
      at += p.byteLength
    }
    return out
  }
  throw new Error('text frames are not part of the protocol')
}

/** Closes `ws`, ignoring a runtime that throws for a socket that never opened. */
export function closeQuietly(ws: WebSocketLike): void {
  try {
    ws.close()
  } catch {
    // Closing a socket that never opened throws in some runtimes; it is gone either way.
  }
}

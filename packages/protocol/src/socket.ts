/**
 * The part of the WebSocket API that Ledgerline's own dialers use: the client's transport
 * (`@ledgerline/client` re-exports these types) and a store hub's upstream link. Browsers'
 * `WebSocket` and `ws`'s both fit; the simulation plugs in its own.
 *
 * Invariants (what an implementation must guarantee, as the WebSocket standard does; the
 * client's `runTransportContract` proves an implementation):
 * 1. Events come asynchronously, never from inside the call that caused them: `open` at most
 *    once and before any `message`; `close` exactly once and last.
 * 2. Frames arrive whole and in order, as binary.
 */

/** One event as a dialer reads it: `data` on `message`, `code` and `reason` on `close`. */
export interface TransportEvent {
  readonly data?: unknown
  readonly code?: number | undefined
  readonly reason?: string | undefined
}

/** The part of the WebSocket API the client uses (browsers' and `ws`'s both fit). */
export interface WebSocketLike {
  binaryType: string
  readonly readyState: number
  send(data: Uint8Array): void
  close(code?: number, reason?: string): void
  addEventListener(
    type: 'open' | 'close' | 'error' | 'message',
    listener: (event: TransportEvent) => void,
  ): void
}

export type WebSocketConstructor = new (url: string) => WebSocketLike

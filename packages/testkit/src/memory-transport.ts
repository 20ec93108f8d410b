/**
 * An in-memory transport: socket pairs with no network under them, for the simulation and for
 * tests. The client end is a WebSocket constructor the client takes as `ClientOptions.WebSocket`;
 * the server end (`MemoryServerSocket`) is what a simulated relay answers on.
 * `runTransportContract` proves it behaves like a real WebSocket to a real relay.
 *
 *   new transport.WebSocket(url) ─deferred─► listener of url? ─yes─► open + onConnection(server end)
 *                                                          └─no──► error + close 1006
 *   end A send ─► A's queue toward B ─deferred, one event per call─► B's listeners
 *
 * Terms: an *end* is one side of a pair; *deferred* means handed to `defer`, which runs it
 * later (the host's timers by default, a simulated scheduler in a simulation).
 *
 * Invariants (the transport guarantees of the client's `transport.ts`):
 * 1. No event is ever fired from inside the call that caused it.
 * 2. Events toward one end are delivered in the order they were queued, whatever order `defer`
 *    runs its callbacks in: each callback delivers the oldest event still queued.
 * 3. `open` comes at most once and first; `close` exactly once and last; nothing is delivered
 *    to an end after its `close`.
 * 4. Frames are copied when sent, so the two ends never share bytes.
 * 5. `send` while connecting throws; `send` after close is dropped without a word.
 * 6. At most MEMORY_TRANSPORT_EVENTS_QUEUED_MAX events wait toward one end; one more cuts the
 *    connection (1006 at both ends) instead of growing without bound.
 */
import type { TransportEvent, WebSocketConstructor, WebSocketLike } from '@ledgerline/client'
import { MEMORY_TRANSPORT_EVENTS_QUEUED_MAX } from './sim/limits.ts'

/** `readyState` values, as the WebSocket standard numbers them. */
const CONNECTING = 0
const OPEN = 1
const CLOSING = 2
const CLOSED = 3
/** Close codes: none given, connection lost without a closing handshake. */
const NO_STATUS = 1005
const ABNORMAL = 1006

/** A direction's queue of events: push one, or forget all that wait. */
type Queue = ((event: () => void) => void) & { readonly clear: () => void }

export interface MemoryServerSocket {
  /** The URL the client end connected to. */
  readonly url: string
  readonly readyState: number
  send(bytes: Uint8Array): void
  close(code?: number, reason?: string): void
  onMessage(listener: (bytes: Uint8Array) => void): void
  onClose(listener: (code: number, reason: string) => void): void
}

export interface MemoryTransportOptions {
  /** Runs `deliver` later. Default: the host's `setTimeout(deliver, 0)`. */
  readonly defer?: ((deliver: () => void) => void) | undefined
}

export interface MemoryTransport {
  /** The client end, for `ClientOptions.WebSocket`. */
  readonly WebSocket: WebSocketConstructor
  /** Accepts connections to `url`; returns the function that stops accepting. */
  listen(url: string, onConnection: (socket: MemoryServerSocket) => void): () => void
  /** Cuts every open connection as a lost network does: both ends close with 1006. */
  dropAll(): void
  /** Connections open at both ends. */
  connections(): number
}

/**
 * @example
 * const transport = createMemoryTransport()
 * transport.listen('memory://relay/sync', (socket) => socket.onMessage((b) => socket.send(b)))
 * const client = createClient({ ...options, url: 'memory://relay/sync', WebSocket: transport.WebSocket })
 */
export function createMemoryTransport(options: MemoryTransportOptions = {}): MemoryTransport {
  const defer = options.defer ?? ((deliver: () => void) => void setTimeout(deliver, 0))
  const listeners = new Map<string, (socket: MemoryServerSocket) => void>()
  const pairs = new Set<Pair>()

  /** One direction's queue (invariants 2 and 6); `overflow` is told when it is full. */
  const queueFor = (overflow: () => void): Queue => {
    const queue: (() => void)[] = []
    const push = (event: () => void) => {
      if (queue.length >= MEMORY_TRANSPORT_EVENTS_QUEUED_MAX) {
        queue.length = 0
        overflow()
        return
      }
      queue.push(event)
      defer(() => queue.shift()?.())
    }
    return Object.assign(push, { clear: () => void (queue.length = 0) })
  }

  /** Cuts `pair` as a lost network does: both ends close with 1006, nothing more arrives. */
  const cut = (pair: Pair) => {
    pair.client.readyState = CLOSING
    pair.server.readyState = CLOSING
    pair.toClient.clear()
    pair.toServer.clear()
    pair.toClient(() => pair.client.fire('close', { code: ABNORMAL, reason: '' }))
    pair.toServer(() => pair.closeServer(ABNORMAL, ''))
  }

  class MemoryWebSocket implements WebSocketLike {
    binaryType = 'blob'
    readyState = CONNECTING
    readonly #url: string
    readonly #listeners = new Map<string, ((event: TransportEvent) => void)[]>()
    readonly #toClient = queueFor(() => {
      if (this.#pair !== undefined) cut(this.#pair)
    })
    #pair: Pair | undefined

    constructor(url: string) {
      this.#url = url
      this.#toClient(() => this.#connect())
    }

    addEventListener(type: string, listener: (event: TransportEvent) => void): void {
      const list = this.#listeners.get(type)
      if (list === undefined) this.#listeners.set(type, [listener])
      else list.push(listener)
    }

    send(data: Uint8Array): void {
      if (this.readyState === CONNECTING) {
        throw new Error('InvalidStateError: the socket is still connecting')
      }
      const pair = this.#pair
      if (this.readyState !== OPEN || pair === undefined) return // invariant 5
      const bytes = data.slice()
      pair.toServer(() => {
        if (pair.server.readyState === OPEN) for (const l of pair.serverMessage) l(bytes)
      })
    }

    close(code?: number, reason?: string): void {
      if (this.readyState >= CLOSING) return
      if (this.readyState === CONNECTING) {
        // Closed before it opened: the connection fails (the standard's "fail the connection").
        this.readyState = CLOSING
        return
      }
      this.readyState = CLOSING
      const pair = this.#pair as Pair
      const status = code ?? NO_STATUS
      pair.toServer(() => pair.closeServer(status, reason ?? ''))
      pair.toClient(() => this.fire('close', { code: status, reason: reason ?? '' }))
    }

    /** Delivers one event now (queued by the caller); `close` makes it the last one. */
    fire(type: 'open' | 'message' | 'error' | 'close', event: TransportEvent): void {
      if (this.readyState === CLOSED) return // invariant 3
      if (type === 'open') this.readyState = OPEN
      if (type === 'close') {
        this.readyState = CLOSED
        if (this.#pair !== undefined) pairs.delete(this.#pair)
      }
      for (const l of this.#listeners.get(type) ?? []) l(event)
    }

    #connect(): void {
      const accept = listeners.get(this.#url)
      if (this.readyState === CLOSING || accept === undefined) {
        this.fire('error', {})
        this.fire('close', { code: ABNORMAL, reason: '' })
        return
      }
      const pair = createPair(
        this,
        this.#url,
        this.#toClient,
        queueFor(() => cut(pair)),
      )
      this.#pair = pair
      pairs.add(pair)
      this.fire('open', {})
      accept(pair.server)
    }

    /** Pushes a frame from the server end (already copied). */
    receive(bytes: Uint8Array): void {
      if (this.readyState !== OPEN) return
      const data = this.binaryType === 'arraybuffer' ? bytes.slice().buffer : bytes
      this.fire('message', { data })
    }
  }

  interface Pair {
    readonly client: MemoryWebSocket
    readonly server: MemoryServerSocket & { readyState: number }
    readonly serverMessage: ((bytes: Uint8Array) => void)[]
    readonly toServer: Queue
    readonly toClient: Queue
    closeServer(code: number, reason: string): void
  }

  function createPair(
    client: MemoryWebSocket,
    url: string,
    toClient: Queue,
    toServer: Queue,
  ): Pair {
    const serverMessage: ((bytes: Uint8Array) => void)[] = []
    const serverClose: ((code: number, reason: string) => void)[] = []
    const server = {
      url,
      readyState: OPEN,
      send(bytes: Uint8Array) {
        if (server.readyState !== OPEN) return
        const copy = bytes.slice()
        toClient(() => client.receive(copy))
      },
      close(code?: number, reason?: string) {
        if (server.readyState !== OPEN) return
        server.readyState = CLOSING
        const status = code ?? NO_STATUS
        toClient(() => client.fire('close', { code: status, reason: reason ?? '' }))
        toServer(() => pair.closeServer(status, reason ?? ''))
      },
      onMessage(listener: (bytes: Uint8Array) => void) {
        serverMessage.push(listener)
      },
      onClose(listener: (code: number, reason: string) => void) {
        serverClose.push(listener)
      },
    }
    const pair: Pair = {
      client,
      server,
      serverMessage,
      toServer,
      toClient,
      closeServer(code, reason) {
        if (server.readyState === CLOSED) return
        server.readyState = CLOSED
        for (const l of serverClose) l(code, reason)
      },
    }
    return pair
  }

  return {
    WebSocket: MemoryWebSocket,
    listen(url, onConnection) {
      listeners.set(url, onConnection)
      return () => {
        if (listeners.get(url) === onConnection) listeners.delete(url)
      }
    },
    dropAll() {
      for (const pair of pairs) cut(pair)
    },
    connections: () =>
      [...pairs].filter((p) => p.client.readyState === OPEN && p.server.readyState === OPEN).length,
  }
}

/**
 * The two ends of a simulated connection (`wire.ts`): the till's `WebSocketLike` and the relay's
 * `SessionSocket`, as the real client and the real relay session see them. The wire carries
 * frames between them (`Carry`) and breaks the path under them (`Break`); the ends turn that
 * into the events and close handshakes a browser and `ws` give.
 *
 * Terms: as in `wire.ts`. An end is *finished* once its close event was emitted (or would have
 * been, had its life not been killed).
 *
 *   ClientEnd.send ─► carry(toServer) ─► ServerEnd.received ─► the session's message listeners
 *   ServerEnd.send ─► carry(toClient) ─► ClientEnd.received ─► the client's message listeners
 *   close() on either end ─► the close frame after the frames in flight ─► the peer ─► close
 *
 * Invariants:
 * 1. Events never come from inside the call that caused them: `open`, `message` and `close`
 *    are events of the scheduler. `close` comes once per end, last.
 * 2. A frame over `FRAME_BYTES_MAX` is refused by the server end as `ws` does (1009).
 * 3. An end whose life was killed hears nothing more.
 */
import type { TransportEvent, WebSocketLike } from '@ledgerline/client'
import { FRAME_BYTES_MAX } from '@ledgerline/protocol'
import type { SessionSocket } from '@ledgerline/relay'
import type { SimScheduler } from '@ledgerline/testkit'
import type { Life } from './sim-loop.ts'

/** What a till's socket tells the simulation (the history records the wire). */
export interface WireTap {
  dialed?(link: string): void
  /** A frame the relay sent reached the till. */
  toClient?(link: string, bytes: Uint8Array): void
  /** A frame the till sent reached the relay. */
  toServer?(link: string, bytes: Uint8Array): void
  /** The till sent a frame (it is in flight). */
  sent?(link: string, bytes: Uint8Array): void
}

/** The server end of a connection, as the relay session sees it. */
export interface SimServerSocket extends SessionSocket {
  readonly link: string
}

/** One WebSocket over a link, as the wire keeps it. */
export interface Conn {
  readonly id: number
  readonly link: string
  /** The server dialed (`wire.ts` invariant 3). */
  readonly host: string
  /** The links the connection runs over: its own, and the store's internet line to head office. */
  readonly paths: readonly string[]
  readonly client: ClientEnd
  server: ServerEnd | undefined
  /** The relay's life when the connection was made; a restarted relay never sees it. */
  readonly serverLife: Life | undefined
  broken: boolean
  /** Latest arrival scheduled per direction (to server, to client), for in-order frames. */
  readonly lastArrival: number[]
  readonly tap: WireTap | undefined
  /** Called as each end finishes; the connection is forgotten when both have. */
  readonly ended: () => void
}

/** Delivers `bytes` toward one end, after the frames sent before it (`wire.ts` invariant 1). */
export type Carry = (conn: Conn, toServer: boolean, bytes: Uint8Array) => void
/** The path under `conn` failed; `tellServer`: the server end hears of it too (later). */
export type Break = (conn: Conn, tellServer: boolean) => void
type Listener = (event: TransportEvent) => void

/** The till's end: a `WebSocketLike` (transport contract of the client). */
export class ClientEnd implements WebSocketLike {
  binaryType = 'blob'
  readyState = 0
  conn: Conn | undefined
  readonly #life: Life
  readonly #sched: SimScheduler
  readonly #carry: Carry
  readonly #break: Break
  readonly #listeners = new Map<string, Listener[]>()
  #closed = false

  constructor(life: Life, sched: SimScheduler, carry: Carry, breakConn: Break) {
    this.#life = life
    this.#sched = sched
    this.#carry = carry
    this.#break = breakConn
  }

  get open(): boolean {
    return this.readyState === 1 && this.#life.alive
  }

  send(data: Uint8Array): void {
    if (this.readyState === 0) throw new Error('InvalidStateError: send while connecting')
    if (this.readyState !== 1 || this.conn === undefined) return
    this.#carry(this.conn, true, data)
    this.conn.tap?.sent?.(this.conn.link, data)
  }

  close(code?: number, reason?: string): void {
    if (this.readyState >= 2) return
    const conn = this.conn
    this.readyState = 2
    if (conn === undefined) {
      // Still dialing: the dial's failure (or open) settles it; then the close event comes.
      return
    }
    if (conn.broken || conn.server === undefined) {
      // No peer to shake hands with: the browser gives up and says 1006.
      if (conn.broken) this.#sched.after(1, 'wire closed client', () => this.closedByPeer(1006, ''))
      else this.#break(conn, true)
      return
    }
    // The close frame travels after the frames sent before it; the peer answers; then `close`.
    conn.server.peerClosing(code ?? 1005, reason ?? '')
  }

  addEventListener(type: 'open' | 'close' | 'error' | 'message', listener: Listener): void {
    const list = this.#listeners.get(type) ?? []
    list.push(listener)
    this.#listeners.set(type, list)
  }

  opened(): void {
    if (!this.#life.alive || this.#closed) return
    if (this.readyState === 2) {
      // Closed while dialing: the connection is dropped at once.
      if (this.conn !== undefined) this.#break(this.conn, true)
      return
    }
    this.readyState = 1
    this.#emit('open', {})
  }

  received(bytes: Uint8Array): void {
    // Invariant 3: a killed till hears nothing.
    if (!this.#life.alive || this.readyState !== 1) return
    this.#emit('message', { data: bytes.buffer })
  }

  /** The connection is gone (a close handshake finished, or the path broke). */
  closedByPeer(code: number, reason: string): void {
    if (this.#closed) return
    this.#closed = true
    this.readyState = 3
    if (this.conn !== undefined) {
      this.conn.broken = true
      this.conn.ended()
    }
    if (!this.#life.alive) return
    this.#sched.record(`wire client closed ${code}`)
    this.#emit('close', { code, reason })
  }

  #emit(type: string, event: TransportEvent): void {
    for (const listener of this.#listeners.get(type) ?? []) listener(event)
  }
}

/** The relay's end: what `ws` gives a session (`SessionSocket`). */
export class ServerEnd implements SimServerSocket {
  readonly OPEN = 1
  readyState = 1
  readonly bufferedAmount = 0
  open = true
  readonly link: string
  readonly #conn: Conn
  readonly #sched: SimScheduler
  readonly #carry: Carry
  readonly #break: Break
  #onMessage: ((data: Buffer, isBinary: boolean) => void)[] = []
  #onPong: (() => void)[] = []
  #onClose: ((code: number) => void)[] = []
  #closeEmitted = false
  /** What the session's close listener hears, as from `ws`: the code sent, or 1006 when cut. */
  #closeCode = 1006

  constructor(conn: Conn, sched: SimScheduler, carry: Carry, breakConn: Break) {
    this.#conn = conn
    this.link = conn.link
    this.#sched = sched
    this.#carry = carry
    this.#break = breakConn
  }

  send(data: Uint8Array): void {
    if (this.readyState !== 1) return
    this.#carry(this.#conn, false, data)
  }

  close(code?: number, reason?: string): void {
    if (this.readyState >= 2) return
    this.readyState = 2
    this.#closeCode = code ?? 1005
    const conn = this.#conn
    if (conn.broken) {
      this.#finish()
      return
    }
    // The close frame follows the frames in flight to the client; then both ends are closed.
    const arrival = Math.max(this.#sched.now() + 1, conn.lastArrival[1] as number)
    conn.lastArrival[1] = arrival
    this.#sched.at(arrival, 'wire close to client', () => {
      conn.broken = true
      conn.client.closedByPeer(code ?? 1005, reason ?? '')
      this.#sched.after(1, 'wire close handshake', () => this.#finish())
    })
  }

  terminate(): void {
    if (this.#closeEmitted) return
    this.readyState = 3
    this.#break(this.#conn, false)
    this.#sched.after(0, 'wire terminated', () => this.#finish())
  }

  ping(): void {
    if (this.readyState !== 1) return
    const conn = this.#conn
    if (conn.broken) return
    // Browsers answer pings by themselves; the pong travels back after the frames before it.
    const back = Math.max(this.#sched.now() + 2, conn.lastArrival[0] as number)
    this.#sched.at(back, 'wire pong', () => {
      if (conn.broken || !conn.client.open || !this.open) return
      for (const fn of this.#onPong) fn()
    })
  }

  on(event: 'message', listener: (data: Buffer, isBinary: boolean) => void): this
  on(event: 'pong', listener: () => void): this
  on(event: 'error', listener: (error: Error) => void): this
  on(event: 'message' | 'pong' | 'error', listener: (...args: never[]) => void): this {
    // No socket errors are simulated: a broken path is a close, as `ws` reports it.
    if (event === 'message') this.#onMessage.push(listener as (data: Buffer, b: boolean) => void)
    else if (event === 'pong') this.#onPong.push(listener as () => void)
    return this
  }

  once(_event: 'close', listener: (code: number) => void): this {
    this.#onClose.push(listener)
    return this
  }

  received(bytes: Uint8Array): void {
    if (this.readyState !== 1) return
    if (bytes.byteLength > FRAME_BYTES_MAX) {
      // Invariant 2: as `ws` with maxPayload, the frame is refused and the connection closed with 1009.
      this.close(1009, 'frame too large')
      return
    }
    const data = Buffer.from(bytes)
    for (const fn of this.#onMessage) fn(data, true)
  }

  /** The client closed: the close frame arrives after what it sent before. */
  peerClosing(code: number, reason: string): void {
    const conn = this.#conn
    const arrival = Math.max(this.#sched.now() + 1, conn.lastArrival[0] as number)
    conn.lastArrival[0] = arrival
    this.#sched.at(arrival, 'wire close to server', () => {
      conn.broken = true
      this.readyState = 3
      this.#finish()
      this.#sched.after(1, 'wire close handshake', () => conn.client.closedByPeer(code, reason))
    })
  }

  /** The server learns the connection broke (maybe late: half-open). */
  closedByPeer(): void {
    this.#finish()
  }

  #finish(): void {
    if (this.#closeEmitted) return
    this.#closeEmitted = true
    this.readyState = 3
    this.open = false
    const conn = this.#conn
    conn.ended()
    if (conn.serverLife !== undefined && !conn.serverLife.alive) return
    for (const fn of this.#onClose) fn(this.#closeCode)
  }
}

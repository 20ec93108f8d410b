/**
 * The simulated network between tills and the relay, with WebSocket ends on both sides: the
 * client end is a `WebSocketLike` the real client opens, the server end a `SessionSocket` the
 * real relay session reads.
 *
 * Terms: a *link* is one till's path to the relay (its faults, whether it is partitioned); a
 * *connection* is one WebSocket over a link; a connection is *broken* when the path under it
 * failed (a reset, a partition, the relay's process died): nothing sent after that arrives, and
 * each end learns it on its own, later (the client by its close event, or its silence timer;
 * the server by its close event, or the heartbeat).
 *
 *   client end ──frames in order, delayed──► server end      (and back)
 *        │  drop: the frame is lost and the connection breaks (TCP loses data only so)
 *        │  deliver-then-break: the frame arrives, then the connection breaks (a resend follows)
 *        └  half-open: the server hears of a break up to SIM_HALF_OPEN_MS_MAX late, and still
 *           takes frames already in flight: an old connection's push may land after a new one's
 *
 * Invariants:
 * 1. Per connection and direction, frames arrive whole and in the order sent (WebSocket over
 *    TCP), and never twice; duplicates and reordering reach the product only as they do in
 *    life: resends after a break, and connections that overlap.
 * 2. Events never come from inside the call that caused them: `open`, `message` and `close`
 *    are events of the scheduler. `close` comes once per end, last.
 * 3. A frame over `FRAME_BYTES_MAX` is refused by the server end as `ws` does (1009).
 * 4. An end whose life was killed hears nothing more.
 * 5. Faults are drawn from the network's own stream, so they replay from the root seed.
 * 6. Servers are addressed by the host of the URL a socket dials (`HEAD_OFFICE_HOST` for head
 *    office, a hub's own host); each has its own accept and life. A connection of a device in a
 *    store to head office also runs over the store's internet line (`socketClass`'s `wan`): a
 *    partition of that line cuts it, as it cuts the hub's upstream link.
 */
import type { TransportEvent, WebSocketConstructor, WebSocketLike } from '@ledgerline/client'
import { FRAME_BYTES_MAX } from '@ledgerline/protocol'
import type { SessionSocket } from '@ledgerline/relay'
import type { Prng, SimScheduler } from '@ledgerline/testkit'
import { SIM_DIAL_FAIL_MS_MAX, SIM_HALF_OPEN_MS_MAX, SIM_LINK_DELAY_MS_MIN } from './limits.ts'
import type { Life } from './sim-loop.ts'

export interface WireFaults {
  /** Probability that a frame is lost (its connection breaks). */
  readonly dropRate: number
  /** Probability that a frame arrives and its connection breaks right after. */
  readonly breakAfterRate: number
  readonly delayMsMax: number
  /** Whether the server may hear of a break late (half-open connections). */
  readonly halfOpen: boolean
}

/** The host of head office's sync URL; a server that listens without a host is head office. */
export const HEAD_OFFICE_HOST = 'relay.sim'

export const CALM: WireFaults = { dropRate: 0, breakAfterRate: 0, delayMsMax: 20, halfOpen: false }

export interface WireStats {
  dials: number
  dialsRefused: number
  framesSent: number
  framesDelivered: number
  framesLost: number
  breaks: number
  bytesToServer: number
  bytesToClient: number
}

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

export interface Wire {
  /** A relay's accept at `host` (invariant 6); `undefined` while none listens (dials fail). */
  listen(
    accept: ((socket: SimServerSocket) => void) | undefined,
    life?: Life | undefined,
    host?: string | undefined,
  ): void
  /** The relay's process died: every connection breaks at once, the server end says nothing. */
  serverDied(host?: string | undefined): void
  setFaults(link: string, faults: WireFaults): void
  setPartitioned(link: string, partitioned: boolean): void
  /** The device at the end of `link` lost power: its connections break, the server learns late. */
  dropLink(link: string): void
  isPartitioned(link: string): boolean
  /**
   * The socket class a till's client (or the impostor, or a hub's upstream link) is given; with
   * `wan`, its connections to head office also run over that link (invariant 6).
   */
  socketClass(
    link: string,
    life: Life,
    tap?: WireTap | undefined,
    wan?: string | undefined,
  ): WebSocketConstructor
  readonly stats: WireStats
}

/** The server end of a connection, as the relay session sees it. */
export interface SimServerSocket extends SessionSocket {
  readonly link: string
}

/**
 * @example
 * const wire = createWire(sched, rng.fork('wire'))
 * wire.listen((socket) => createSession(socket, context))
 * createClient({ …, WebSocket: wire.socketClass('till-1', life) })
 */
export function createWire(sched: SimScheduler, rng: Prng): Wire {
  const links = new Map<string, { faults: WireFaults; partitioned: boolean }>()
  const conns = new Set<Conn>()
  const servers = new Map<
    string,
    { accept: ((socket: SimServerSocket) => void) | undefined; life: Life | undefined }
  >()
  const server = (host: string) => {
    let s = servers.get(host)
    if (s === undefined) servers.set(host, (s = { accept: undefined, life: undefined }))
    return s
  }
  let nextId = 0
  const stats: WireStats = {
    dials: 0,
    dialsRefused: 0,
    framesSent: 0,
    framesDelivered: 0,
    framesLost: 0,
    breaks: 0,
    bytesToServer: 0,
    bytesToClient: 0,
  }
  const link = (name: string) => {
    let l = links.get(name)
    if (l === undefined) links.set(name, (l = { faults: CALM, partitioned: false }))
    return l
  }
  const delay = (name: string) => rng.int(SIM_LINK_DELAY_MS_MIN, link(name).faults.delayMsMax)
  const serverAlive = (conn: Conn) => conn.serverLife === undefined || conn.serverLife.alive

  /** The path under `conn` failed: each end learns it later, on its own. */
  const breakConn = (conn: Conn, tellServer: boolean) => {
    if (conn.broken) return
    conn.broken = true
    stats.breaks++
    sched.record(`wire break ${conn.link} #${conn.id}`)
    const faults = link(conn.link).faults
    const clientAt = delay(conn.link)
    sched.after(clientAt, 'wire closed client', () => conn.client.closedByPeer(1006, ''))
    if (!tellServer) return
    const serverAt = faults.halfOpen ? rng.int(1, SIM_HALF_OPEN_MS_MAX) : delay(conn.link)
    sched.after(serverAt, 'wire closed server', () => conn.server?.closedByPeer())
  }

  /** Delivers `bytes` toward one end, after the frames sent before it (invariant 1). */
  const carry = (conn: Conn, toServer: boolean, bytes: Uint8Array) => {
    stats.framesSent++
    if (conn.broken) {
      stats.framesLost++
      return
    }
    const faults = link(conn.link).faults
    if (rng.chance(faults.dropRate)) {
      stats.framesLost++
      breakConn(conn, true)
      return
    }
    const breakAfter = rng.chance(faults.breakAfterRate)
    const lane = toServer ? 0 : 1
    const arrival = Math.max(sched.now() + delay(conn.link), conn.lastArrival[lane] as number)
    conn.lastArrival[lane] = arrival
    const copy = bytes.slice()
    sched.at(arrival, toServer ? 'wire frame server' : 'wire frame client', () => {
      if (toServer) {
        if (conn.server === undefined || !conn.server.open || !serverAlive(conn)) return
        stats.framesDelivered++
        stats.bytesToServer += copy.byteLength
        conn.tap?.toServer?.(conn.link, copy)
        conn.server.received(copy)
      } else {
        if (!conn.client.open) return
        stats.framesDelivered++
        stats.bytesToClient += copy.byteLength
        conn.tap?.toClient?.(conn.link, copy)
        conn.client.received(copy)
      }
      if (breakAfter) breakConn(conn, true)
    })
  }

  const blocked = (paths: readonly string[]) => paths.some((p) => link(p).partitioned)

  const wire: Wire = {
    listen(next, life, host = HEAD_OFFICE_HOST) {
      const s = server(host)
      s.accept = next
      s.life = life
    },
    serverDied(host = HEAD_OFFICE_HOST) {
      for (const conn of conns) {
        if (conn.server === undefined || conn.host !== host) continue
        conn.server.open = false
        breakConn(conn, false)
      }
      const s = server(host)
      s.accept = undefined
      s.life = undefined
    },
    setFaults(name, faults) {
      link(name).faults = faults
    },
    setPartitioned(name, partitioned) {
      const l = link(name)
      if (l.partitioned === partitioned) return
      l.partitioned = partitioned
      sched.record(`wire ${name} ${partitioned ? 'partitioned' : 'healed'}`)
      // A partition is a black hole: connections break, and the ends find out by their timers.
      if (partitioned) for (const conn of conns) if (conn.paths.includes(name)) conn.broken = true
    },
    isPartitioned: (name) => link(name).partitioned,
    dropLink(name) {
      for (const conn of conns) if (conn.link === name) breakConn(conn, true)
    },
    socketClass(name, life, tap, wan) {
      const dial = (socket: ClientEnd, url: string) => {
        stats.dials++
        tap?.dialed?.(name)
        const host = new URL(url).host
        const target = server(host)
        const paths = wan !== undefined && host === HEAD_OFFICE_HOST ? [name, wan] : [name]
        if (blocked(paths) || target.accept === undefined) {
          stats.dialsRefused++
          const failMs = blocked(paths) ? rng.int(1, SIM_DIAL_FAIL_MS_MAX) : 2 * delay(name)
          sched.after(failMs, 'wire dial failed', () => socket.closedByPeer(1006, ''))
          return
        }
        const conn: Conn = {
          id: ++nextId,
          link: name,
          host,
          paths,
          client: socket,
          server: undefined,
          serverLife: target.life,
          broken: false,
          lastArrival: [0, 0],
          tap,
          ended: () => {
            const serverDone = conn.server === undefined || !conn.server.open
            if (serverDone && conn.client.readyState === 3) conns.delete(conn)
          },
        }
        socket.conn = conn
        conns.add(conn)
        const at = delay(name)
        sched.after(at, 'wire open', () => {
          const accept = target.accept
          if (conn.broken || accept === undefined || conn.serverLife !== target.life) {
            breakConn(conn, false)
            return
          }
          conn.server = new ServerEnd(conn, sched, carry, breakConn)
          accept(conn.server)
          socket.opened()
        })
      }
      return class SimWebSocket extends ClientEnd {
        constructor(url: string) {
          super(life, sched, carry, breakConn)
          dial(this, url)
        }
      }
    },
    stats,
  }
  return wire
}

interface Conn {
  readonly id: number
  readonly link: string
  /** The server dialed (invariant 6). */
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

type Carry = (conn: Conn, toServer: boolean, bytes: Uint8Array) => void
type Break = (conn: Conn, tellServer: boolean) => void
type Listener = (event: TransportEvent) => void

/** The till's end: a `WebSocketLike` (transport contract of the client). */
class ClientEnd implements WebSocketLike {
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
class ServerEnd implements SimServerSocket {
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
      // As `ws` with maxPayload: the frame is refused and the connection closed with 1009.
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

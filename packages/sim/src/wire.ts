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
 * 2. Faults are drawn from the network's own stream, so they replay from the root seed.
 * 3. Servers are addressed by the host of the URL a socket dials (`HEAD_OFFICE_HOST` for head
 *    office, a hub's own host); each has its own accept and life. A connection of a device in a
 *    store to head office also runs over the store's internet line (`socketClass`'s `wan`): a
 *    partition of that line cuts it, as it cuts the hub's upstream link.
 *
 * The ends' own invariants (events from the scheduler, the frame limit, killed lives) are in
 * `wire-ends.ts`.
 */
import type { WebSocketConstructor } from '@ledgerline/client'
import type { Prng, SimScheduler } from '@ledgerline/testkit'
import { SIM_DIAL_FAIL_MS_MAX, SIM_HALF_OPEN_MS_MAX, SIM_LINK_DELAY_MS_MIN } from './limits.ts'
import type { Life } from './sim-loop.ts'
import { ClientEnd, ServerEnd } from './wire-ends.ts'
import type { Conn, SimServerSocket, WireTap } from './wire-ends.ts'

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

export interface Wire {
  /** A relay's accept at `host` (invariant 3); `undefined` while none listens (dials fail). */
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
   * `wan`, its connections to head office also run over that link (invariant 3).
   */
  socketClass(
    link: string,
    life: Life,
    tap?: WireTap | undefined,
    wan?: string | undefined,
  ): WebSocketConstructor
  readonly stats: WireStats
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

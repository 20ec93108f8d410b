/**
 * The simulated network: clients connect to one server over links that drop, duplicate, delay,
 * reorder and partition frames.
 *
 * Terms: a *link* joins one client to the server and carries its faults; a *connection* is one
 * WebSocket session over a link, with an id that is never reused (the session epoch); a *frame*
 * is one encoded message.
 *
 *   client ──link(drop, dup, delay, reorder, partitioned)──► server
 *
 * Invariants:
 * 1. A frame is delivered only while its connection is open at both ends: a frame of a closed
 *    connection is never handed to a newer one (the stale-session lesson of the Bufstream
 *    report), though it may still be in flight when the connection closes.
 * 2. A dropped frame resets its connection soon after (a WebSocket rides on TCP, which loses
 *    data only with the connection); duplicated and reordered frames are harsher than TCP, and
 *    the protocol must survive them too.
 * 3. A partitioned link carries nothing: opening fails, and open connections over it close.
 * 4. Faults are drawn from the network's own stream, so they replay from the root seed.
 * 5. Frames are copied (they are bytes), so no object is shared between nodes.
 */
import type { Prng } from './prng.ts'
import type { SimScheduler } from './scheduler.ts'

export interface LinkFaults {
  /** Probability that a frame is lost. */
  readonly dropRate: number
  /** Probability that a frame is delivered twice. */
  readonly duplicateRate: number
  readonly delayMsMin: number
  readonly delayMsMax: number
  /** When false, frames of one connection keep their order (TCP-like); when true, delays reorder them. */
  readonly reorder: boolean
}

export const NO_FAULTS: LinkFaults = {
  dropRate: 0,
  duplicateRate: 0,
  delayMsMin: 1,
  delayMsMax: 20,
  reorder: false,
}

export type Side = 'client' | 'server'

export interface SimConnection {
  readonly id: number
  readonly client: string
}

/** What each end of a connection is told. */
export interface ConnectionHandler {
  frame(conn: SimConnection, bytes: Uint8Array): void
  closed(conn: SimConnection): void
}

export interface NetworkStats {
  framesSent: number
  framesDelivered: number
  framesDropped: number
  framesDuplicated: number
  connectionsOpened: number
  connectionsRefused: number
}

export interface SimNetwork {
  /** The server's handler; `undefined` while the server is down (connections are refused). */
  setServer(handler: ConnectionHandler | undefined): void
  setFaults(client: string, faults: LinkFaults): void
  /** Partitions (or heals) a client's link; partitioning closes its open connections. */
  setPartitioned(client: string, partitioned: boolean): void
  isPartitioned(client: string): boolean
  /** Opens a connection, or returns `undefined` (refused) when the link or server is down. */
  open(client: string, handler: ConnectionHandler): SimConnection | undefined
  send(conn: SimConnection, from: Side, bytes: Uint8Array): void
  /** Closes a connection from one side; the other side is told after a link delay. */
  close(conn: SimConnection, from: Side): void
  isOpen(conn: SimConnection): boolean
  /** Closes every connection of the server at once (the server crashed): clients are told later. */
  dropServerConnections(): void
  readonly stats: NetworkStats
}

/**
 * @example
 * const net = createSimNetwork(sched, rng.fork('net'))
 * net.setServer(relayHandler)
 * const conn = net.open('c1', clientHandler)
 */
export function createSimNetwork(sched: SimScheduler, rng: Prng): SimNetwork {
  const links = new Map<string, Link>()
  const conns = new Map<number, ConnState>()
  let server: ConnectionHandler | undefined
  let nextId = 0
  const stats: NetworkStats = {
    framesSent: 0,
    framesDelivered: 0,
    framesDropped: 0,
    framesDuplicated: 0,
    connectionsOpened: 0,
    connectionsRefused: 0,
  }
  const link = (client: string): Link => {
    let l = links.get(client)
    if (l === undefined) {
      l = { faults: NO_FAULTS, partitioned: false }
      links.set(client, l)
    }
    return l
  }
  const delay = (faults: LinkFaults) => rng.int(faults.delayMsMin, faults.delayMsMax)
  const closeState = (state: ConnState, from: Side, notifyFromNow: boolean) => {
    if (!state.open) return
    state.open = false
    conns.delete(state.conn.id)
    const faults = link(state.conn.client).faults
    const tell = (side: Side) => {
      const handler = side === 'client' ? state.client : state.server
      sched.after(notifyFromNow && side === from ? 0 : delay(faults), `net.closed ${side}`, () =>
        handler.closed(state.conn),
      )
    }
    tell('client')
    tell('server')
  }
  const net: SimNetwork = {
    setServer(handler) {
      server = handler
    },
    setFaults(client, faults) {
      link(client).faults = faults
    },
    setPartitioned(client, partitioned) {
      const l = link(client)
      l.partitioned = partitioned
      sched.record(`net ${client} ${partitioned ? 'partitioned' : 'healed'}`)
      if (!partitioned) return
      // Deleting from a Map while iterating it is well defined: deleted entries are skipped.
      for (const state of conns.values()) {
        if (state.conn.client === client) closeState(state, 'client', false)
      }
    },
    isPartitioned: (client) => link(client).partitioned,
    open(client, handler) {
      if (link(client).partitioned || server === undefined) {
        stats.connectionsRefused++
        return undefined
      }
      const conn: SimConnection = { id: ++nextId, client }
      conns.set(conn.id, { conn, client: handler, server, open: true, lastArrival: [0, 0] })
      stats.connectionsOpened++
      return conn
    },
    send(conn, from, bytes) {
      const state = conns.get(conn.id)
      stats.framesSent++
      if (state === undefined || !state.open) {
        stats.framesDropped++
        return
      }
      const faults = link(conn.client).faults
      if (rng.chance(faults.dropRate)) {
        // A WebSocket rides on TCP: a frame is lost only when its connection breaks, so the
        // connection is reset soon after (frames sent meanwhile are lost with it).
        stats.framesDropped++
        sched.after(delay(faults), 'net.reset', () => closeState(state, from, false))
        return
      }
      const copies = rng.chance(faults.duplicateRate) ? 2 : 1
      if (copies === 2) stats.framesDuplicated++
      const lane = from === 'client' ? 0 : 1
      for (let i = 0; i < copies; i++) {
        let arrival = sched.now() + delay(faults)
        // TCP-like links deliver in order: a frame never overtakes the one sent before it.
        if (!faults.reorder) arrival = Math.max(arrival, state.lastArrival[lane] as number)
        state.lastArrival[lane] = arrival
        const copy = bytes.slice()
        const to = from === 'client' ? state.server : state.client
        sched.at(arrival, `net.frame ${from}`, () => {
          if (!state.open) {
            stats.framesDropped++
            return
          }
          stats.framesDelivered++
          to.frame(conn, copy)
        })
      }
    },
    close(conn, from) {
      const state = conns.get(conn.id)
      if (state !== undefined) closeState(state, from, true)
    },
    isOpen: (conn) => conns.get(conn.id)?.open === true,
    dropServerConnections() {
      for (const state of conns.values()) {
        state.open = false
        conns.delete(state.conn.id)
        sched.after(delay(link(state.conn.client).faults), 'net.closed client', () =>
          state.client.closed(state.conn),
        )
      }
    },
    stats,
  }
  return net
}

interface Link {
  faults: LinkFaults
  partitioned: boolean
}

interface ConnState {
  readonly conn: SimConnection
  readonly client: ConnectionHandler
  readonly server: ConnectionHandler
  open: boolean
  /** Latest scheduled arrival per direction (client→server, server→client), for in-order links. */
  readonly lastArrival: number[]
}

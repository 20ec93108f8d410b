/**
 * History on demand: the `fetch` requests of the sync loop (`sync.ts`), for history a bootstrap
 * left on the server (below an entity's base, `bases.ts`). Each request's `fetched` pages are
 * kept as confirmed history as they come (`storeFetched`, one write a page), and the request
 * resolves on the last page.
 *
 *   request(entity, before) ─► waiting (≤ FETCH_WAITING_MAX) ─► in flight (≤ FETCH_IN_FLIGHT_MAX)
 *        ─► fetch {req} ─► fetched pages ─► storeFetched each ─► done: resolve { dropped }
 *   socket lost ─► every request rejects with kind `offline` (nothing stored is lost)
 *
 * Invariants:
 * 1. At most FETCH_IN_FLIGHT_MAX requests are unanswered at the relay at once (the protocol's
 *    limit); the rest wait in order, at most FETCH_WAITING_MAX of them (more: kind `busy`).
 * 2. A request's pages are stored in arrival order, one write at a time, and the request
 *    resolves only after its last page is stored: what it answers is on the device.
 * 3. A request is answered by its own socket only: pages of a request another socket sent are
 *    ignored, and losing the socket rejects every request (typed `offline`); pages stored
 *    before stay stored (each version is stored once, so asking again costs nothing twice).
 */
import type { FetchedMessage, FetchMessage } from '@ledgerline/protocol'
import { FETCH_IN_FLIGHT_MAX } from '@ledgerline/protocol'
import type { ClientStore } from './client-store.ts'
import { ClientError } from './errors.ts'
import { FETCH_WAITING_MAX } from './limits.ts'
import type { WebSocketLike } from './transport.ts'

/** What a finished fetch tells: the operator dropped history below `dropped`, if so. */
export interface FetchAnswer {
  readonly dropped: number | undefined
  /** Entries the fetch stored (those the device did not hold). */
  readonly stored: number
}

export interface HistoryFetchOptions {
  readonly clientStore: Pick<ClientStore, 'storeFetched'>
  readonly send: (ws: WebSocketLike, message: FetchMessage) => void
}

export interface HistoryFetches {
  /** Asks `ws` for the confirmed entries of `entity` below version `before`. */
  request(ws: WebSocketLike, scopeKey: string, entity: string, before: number): Promise<FetchAnswer>
  /** A `fetched` page arrived on `ws`. */
  fetched(ws: WebSocketLike, message: FetchedMessage): void
  /** The socket is gone: every request fails with kind `offline` (invariant 3). */
  lost(): void
  /** Requests in flight and waiting. */
  size(): number
}

interface Request {
  readonly req: number
  readonly ws: WebSocketLike
  readonly scopeKey: string
  readonly entity: string
  readonly before: number
  readonly resolve: (answer: FetchAnswer) => void
  readonly reject: (error: unknown) => void
  /** The writes of its pages so far, chained (invariant 2). */
  writes: Promise<void>
  dropped: number | undefined
  stored: number
  failed: boolean
}

/**
 * @example
 * const fetches = createHistoryFetches({ clientStore, send: connection.send })
 * const { dropped } = await fetches.request(ws, scopeKey, 'order/o1', 120)
 */
export function createHistoryFetches(options: HistoryFetchOptions): HistoryFetches {
  let reqNo = 0
  const inFlight = new Map<number, Request>()
  const waiting: Request[] = []

  /** Invariant 1: sends waiting requests while fewer than FETCH_IN_FLIGHT_MAX are out. */
  function pump(): void {
    while (inFlight.size < FETCH_IN_FLIGHT_MAX && waiting.length > 0) {
      const r = waiting.shift() as Request
      inFlight.set(r.req, r)
      options.send(r.ws, { type: 'fetch', req: r.req, entity: r.entity, before: r.before })
    }
  }

  function fail(r: Request, error: unknown): void {
    if (r.failed) return
    r.failed = true
    inFlight.delete(r.req)
    r.reject(error)
    pump()
  }

  return {
    request(ws, scopeKey, entity, before) {
      if (waiting.length >= FETCH_WAITING_MAX) {
        return Promise.reject(
          new ClientError(
            'busy',
            `${FETCH_WAITING_MAX} history fetches are waiting already (FETCH_WAITING_MAX): try again when they are answered`,
          ),
        )
      }
      return new Promise<FetchAnswer>((resolve, reject) => {
        waiting.push({
          req: ++reqNo,
          ws,
          scopeKey,
          entity,
          before,
          resolve,
          reject,
          writes: Promise.resolve(),
          dropped: undefined,
          stored: 0,
          failed: false,
        })
        pump()
      })
    },

    fetched(ws, message) {
      const r = inFlight.get(message.req)
      if (r === undefined || r.ws !== ws || r.entity !== message.entity) return // invariant 3
      if (message.dropped !== undefined) r.dropped = message.dropped
      const { entries, done } = message
      const dropped = r.dropped
      r.writes = r.writes.then(async () => {
        if (r.failed) return
        try {
          r.stored += await options.clientStore.storeFetched(r.entity, entries, dropped, r.scopeKey)
        } catch (error) {
          fail(r, error)
          return
        }
        if (!done) return
        inFlight.delete(r.req)
        r.resolve({ dropped, stored: r.stored })
        pump()
      })
    },

    lost() {
      const error = new ClientError(
        'offline',
        'the connection to the relay was lost before the history arrived; what arrived is kept: ask again when online',
      )
      const all = [...inFlight.values(), ...waiting.splice(0)]
      inFlight.clear()
      for (const r of all) fail(r, error)
    },

    size: () => inFlight.size + waiting.length,
  }
}

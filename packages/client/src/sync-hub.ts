/**
 * The store-hub side of the sync loop (`sync.ts`): the store layer wiring (`store` messages in,
 * paged entries out, the leaving timer) and where the client is: the welcomed relay's role and
 * whether head office is reached (a hub's `upstream`, or directly).
 *
 *   store (current sub) ─► layer.apply ─► told ─► arm the leaving timer
 *   entries page stored ─► layer.confirmed ─► told, in the turn the page is told
 *   welcome from head office ─► layer.clear ─► told
 *   upstream ─► headOffice reachable | unreachable
 *
 * Terms: the *store layer* (`store-layer.ts`) holds other devices' entries a hub stored that
 * head office has not confirmed; *told* means `events.store` hears the entities that changed.
 *
 * Invariants (`sync.ts` invariant 9):
 * 1. Through a store hub (`welcome.role` `hub`), `store` messages of the current subscription
 *    fill the store layer, own entries excluded (this database's clientIds as of the welcome).
 * 2. Entries of stored pages leave it, in the same turn as the page is told (the entity is
 *    folded again with both: never counted twice, never missing); those the hub removed leave
 *    after STORE_LEAVING_MS without a page (`store-layer.ts` invariant 4); a welcome from head
 *    office itself clears it.
 * 3. Head office is `reachable` when welcomed by head office itself; through a hub it is what
 *    the hub's latest `upstream` on this socket says (newer than the welcome's), else the
 *    welcome's, else `unknown`. An unchanged layer is never told.
 */
import type { RelayRole, StoreMessage, WelcomeMessage } from '@ledgerline/protocol'
import type { Scheduler, TimerHandle } from './scheduler.ts'
import type { StoreLayer } from './store-layer.ts'
import { createStoreLayer } from './store-layer.ts'
import type { WebSocketLike } from './transport.ts'

export interface RelayInfo {
  readonly url: string
  readonly role: RelayRole
}

export type HeadOfficeReach = 'reachable' | 'unreachable' | 'unknown'

export interface SyncHubOptions {
  /** Where `store` messages go; default: a layer of its own. */
  readonly storeLayer?: StoreLayer | undefined
  readonly scheduler: Scheduler
  readonly now: () => number
  readonly stopped: () => boolean
  /** The store layer changed for these entities (never empty). */
  readonly told: (entities: ReadonlySet<string>) => void
}

export interface SyncHub {
  /** A welcome: this database's clientIds now, and (from head office) no store layer. */
  welcome(welcome: WelcomeMessage, ownIds: readonly string[]): void
  /** Head office's reach as the welcome of `ws` and an `upstream` since on it say. */
  reachAt(ws: WebSocketLike, welcome: WelcomeMessage): HeadOfficeReach
  /** A `store` message of the current subscription, received at `at` (invariant 1). */
  store(message: StoreMessage, at: number): void
  /** An `upstream` message on `ws`: head office's reach now. */
  upstream(ws: WebSocketLike, connected: boolean): HeadOfficeReach
  /** Ids of stored page entries leave the layer; tell the result with `tell` (invariant 2). */
  confirmed(ids: () => Iterable<string>): ReadonlySet<string>
  /** Tells `entities`, unless none changed. */
  tell(entities: ReadonlySet<string>): void
  stop(): void
}

/**
 * @example
 * const hub = createSyncHub({ scheduler, now, stopped: () => false, told: events.store })
 * hub.store(message, now())
 */
export function createSyncHub(options: SyncHubOptions): SyncHub {
  const { scheduler } = options
  const layer = options.storeLayer ?? createStoreLayer()
  /** This database's clientIds as of the welcome: their entries are never store entries. */
  let ownIds: readonly string[] = []
  /** The last `upstream` message, and its socket. */
  let upstream: { readonly ws: WebSocketLike; readonly connected: boolean } | undefined
  const none: ReadonlySet<string> = new Set()
  let leavingTimer: TimerHandle | undefined
  const tell = (entities: ReadonlySet<string>) => {
    if (entities.size > 0) options.told(entities)
  }

  /** Invariant 2: entries the hub removed go when no page confirmed them in time. */
  function armLeaving(): void {
    const due = layer.nextExpiry()
    if (due === undefined || leavingTimer !== undefined || options.stopped()) return
    leavingTimer = scheduler.setTimeout(
      () => {
        leavingTimer = undefined
        tell(layer.expire(options.now()))
        armLeaving()
      },
      Math.max(0, due - options.now()),
    )
  }

  return {
    welcome(welcome, ids) {
      ownIds = ids
      // Directly at head office nothing is provisional: no store layer.
      if (welcome.role !== 'hub') tell(layer.clear())
    },
    reachAt: (ws, welcome) =>
      headOfficeAt(welcome, upstream?.ws === ws ? upstream.connected : undefined),
    store(message, at) {
      tell(layer.apply(message, ownIds, at))
      armLeaving()
    },
    upstream(ws, connected) {
      upstream = { ws, connected }
      return connected ? 'reachable' : 'unreachable'
    },
    confirmed: (ids) => (layer.size() > 0 ? layer.confirmed(ids()) : none),
    tell,
    stop() {
      scheduler.clearTimeout(leavingTimer)
      leavingTimer = undefined
    },
  }
}

/** Head office's reach as a welcome tells it (a hub's `upstream`; head office itself). */
function headOfficeAt(welcome: WelcomeMessage, connected?: boolean): HeadOfficeReach {
  if (welcome.role !== 'hub') return 'reachable'
  const now = connected ?? welcome.upstream?.connected
  if (now === undefined) return 'unknown'
  return now ? 'reachable' : 'unreachable'
}

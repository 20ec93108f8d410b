/**
 * The interface of the sync loop (`sync.ts`): what it shows (`SyncState`), what it tells
 * (`SyncEvents`), what it is given (`SyncOptions`) and what the client calls (`Sync`).
 *
 * Terms as in `sync.ts`: a *session* is one welcomed socket; *catch-up* is the pages before the
 * subscription went live; a *store hub* is a relay between the client and head office.
 *
 * Invariants (the loop's own are numbered in `sync.ts`; these are the ones the types name):
 * 1. `syncing` is true exactly while online with batches in flight or catch-up not done
 *    (`sync.ts` invariant 4), and a state that changes no field is not told (invariant 5).
 * 2. `busy()` counts corrections of own entries not received yet (`sync.ts` invariant 7).
 */
import type { Entry } from '@ledgerline/core'
import type { HorizonRule } from '@ledgerline/protocol'
import type { FetchAnswer } from './history-fetch.ts'
import type { ClientErrorStatusKind } from './client-api.ts'
import type { AckApplied, ClientStore, PageApplied } from './client-store.ts'
import type { ClientBugs } from './outbox-drain.ts'
import type { HeldReason } from './outbox-held.ts'
import type { Scheduler } from './scheduler.ts'
import type { StoreLayer } from './store-layer.ts'
import type { HeadOfficeReach, RelayInfo } from './sync-hub.ts'
import type { WebSocketConstructor } from './transport.ts'

export interface SyncState {
  /** A socket is open and the relay welcomed us. */
  readonly online: boolean
  /** Batches in flight, or catch-up not done yet. */
  readonly syncing: boolean
  /** Catch-up is done: pages now arrive live. */
  readonly live: boolean
  readonly lastServerContactAt: number | null
  readonly lastError: {
    readonly kind: ClientErrorStatusKind
    readonly message: string
  } | null
  readonly tenant: string | null
  /** Outbox records held back by the drain, by reason. */
  readonly heldReasons: readonly HeldReason[]
  /** `disconnect()` paused syncing. */
  readonly paused: boolean
  /** The welcomed relay, and what it is; null while not online. */
  readonly relay: RelayInfo | null
  /** Head office, as seen from here: through the hub's `upstream`, or directly. */
  readonly headOffice: HeadOfficeReach
}

export interface SyncEvents {
  state(state: SyncState): void
  acked(applied: AckApplied): void
  page(applied: PageApplied): void
  reissued(renamed: ReadonlyMap<string, string>): void
  /** Confirmed history, snapshots and cursors were dropped: another server log. */
  reset(): void
  /** The store layer (`storeLayer`) changed for these entities. */
  store?(entities: ReadonlySet<string>): void
}

export interface SyncOptions {
  /** One relay, or relays in order of preference: hub, backup hub, head office. */
  readonly url: string | readonly string[]
  readonly WebSocket: WebSocketConstructor
  readonly token: () => Promise<string>
  /** Drops a cached token so the next `token()` asks the app's function again. */
  readonly invalidateToken: () => void
  /** A function gives the token: renew it on the live socket before it expires. */
  readonly renewable?: boolean | undefined
  readonly scope: readonly string[] | undefined
  readonly clientStore: ClientStore
  readonly now: () => number
  /** A float in [0, 1) for the reconnect jitter. */
  readonly random: () => number
  /** A random clientId (restore recovery's fallback when derived ids keep meeting conflicts). */
  readonly newClientId: () => string
  /** The encoded size of an entry (for entries put back into the outbox). */
  readonly bytesOf?: ((entry: Entry) => number) | undefined
  /** Default: the host's timers. */
  readonly scheduler?: Scheduler | undefined
  readonly events: SyncEvents
  /** Test-only: planted bugs (`ClientOptions.bugs`). */
  readonly bugs?: ClientBugs | undefined
  /** Where `store` messages go (`store-layer.ts`); default: a layer of its own. */
  readonly storeLayer?: StoreLayer | undefined
  /**
   * What a bootstrap asks for (`sync.ts` invariant 10): the schema's fold keys, and the horizon
   * rules as of now (entities to get whole). Undefined: never bootstrap.
   */
  readonly bootstrap?:
    | {
        readonly foldKeys: readonly string[]
        readonly whole: () => readonly HorizonRule[]
      }
    | undefined
}

export interface Sync {
  start(): void
  /** The outbox changed: send what is new (within DRAIN_DELAY_MS, coalescing kicks). */
  kick(): void
  state(): SyncState
  /**
   * Batches in flight, being read from the outbox, a kick waiting to read it, a confirm phase,
   * or corrections of own entries not received yet (invariant 7).
   */
  busy(): boolean
  /** Resolves when the acks and pages received so far are stored (or dropped). */
  idle(): Promise<void>
  /** The network may be back: reset the backoff and connect now if not connected. */
  reconnect(): void
  /** The network is gone: drop the socket now instead of waiting for it to time out. */
  offline(): void
  /** Pause syncing until `reconnect()`. */
  disconnect(): void
  /**
   * Asks the welcomed relay for the confirmed entries of `entity` below version `before` and
   * keeps them (`history-fetch.ts`); kind `offline` when not welcomed by a relay that keeps
   * snapshots, or when the socket is lost first.
   */
  fetchHistory(entity: string, before: number): Promise<FetchAnswer>
  stop(): void
}

/**
 * The client's public shapes: what `createClient` takes (`ClientOptions`) and gives (`Client`,
 * `EntityState`, `ClientStatus`, `Correction`, …). Behaviour lives in the modules `client.ts`
 * puts together; this file holds only types, so the docs of the API are in one place.
 *
 * Terms (README glossary): *pending* entries are own entries not yet part of confirmed state
 * (in the outbox, or acknowledged and not yet received back); the *outbox* holds those not yet
 * acknowledged; *confirmed* is the state folded from server-ordered entries; the *store layer*
 * is other devices' entries a store hub holds that head office has not confirmed; *view* is
 * confirmed, then the store layer in hub order, then pending in clientSeq order; an own entry's
 * *stage* is on this device, in the store (durable on a hub), or at head office; the *client
 * store* is this device's storage.
 *
 * Invariants (kept by `client.ts` and the modules it uses):
 * 1. `append` resolves only after the entry and its outbox record are committed together;
 *    before that, nothing is shown as appended.
 * 2. `get(entity)` returns the same `EntityState` object until the entity's view changes, so
 *    React's `useSyncExternalStore` can read it directly.
 * 3. When `append` throws, nothing of the call was written.
 */
import type {
  Data,
  DataOf,
  DraftOf,
  EntityNameOf,
  EntityTypeFor,
  KindsOf,
  Entry,
  IndexValue,
  Intent,
  Schema,
  StoredEntry,
} from '@ledgerline/core'
import type { ErrorKind } from '@ledgerline/protocol'
import type { ClientStore, ClientStoreInit, Durability, Outcome } from './client-store.ts'
import type { ClientEnvironmentOptions } from './environment.ts'
import type { ClientBugs } from './outbox-drain.ts'

export interface ClientOptions<Sch extends Schema = Schema> extends ClientEnvironmentOptions {
  /**
   * The relay's sync endpoint, e.g. `wss://relay.example.com/sync`; or relays in order of
   * preference (a store hub, a backup hub, head office): the client connects to the first that
   * answers, moves to the next when one fails, and back to an earlier one when it answers
   * again. Moving loses nothing: outbox records go only on head office's result.
   */
  readonly url: string | readonly string[]
  /** A JWT, or a function giving one (called again when the relay says it expired). */
  readonly token: string | (() => string | Promise<string>)
  /** The same schema module the relay loads; its typed kinds type `append`. */
  readonly schema: Sch
  /** Database name of the client store; one per user and device (`ledgerline:acme:till-1`). */
  readonly dbName: string
  /** Tenant of the entries; by default the token's `tenant` claim, or the relay's welcome. */
  readonly tenant?: string | undefined
  /** Entity patterns to receive; default: everything the token may read. */
  readonly scope?: readonly string[] | undefined
  /**
   * The *horizon*: which entities a new (or wiped) device gets with their whole ledger when it
   * bootstraps from a relay that keeps snapshots, e.g. `[{ type: 'order', days: 7 }]` (orders
   * with an entry in the last 7 days) or `[{ pattern: 'order/s7-*', days: 30 }]`. Every other
   * entity starts from the relay's snapshot, with its older history on the server only:
   * `history(entity, { fetch: true })` brings it. Default: none (snapshots for all). At most
   * HORIZON_RULES_MAX rules.
   */
  readonly horizon?: readonly HorizonOption[] | undefined
  /**
   * Durability of append transactions. `strict` (default) asks the browser to flush to disk
   * before `append` resolves; `relaxed` is faster (Chrome's default since 121) but an OS crash
   * or power cut may lose entries that `append` already reported as written.
   * https://developer.chrome.com/blog/indexeddb-durability-mode-now-defaults-to-relaxed/
   */
  readonly durability?: 'strict' | 'relaxed' | undefined
  /** Ask for persistent storage (`navigator.storage.persist()`) at start (default true). */
  readonly persist?: boolean | undefined
  /**
   * Opens the client store. Default: IndexedDB (`createIdbClientStore` over `indexedDB` and
   * `IDBKeyRange`); a simulation passes `createMemoryClientStore`.
   */
  readonly clientStore?: ((init: ClientStoreInit) => Promise<ClientStore>) | undefined
  /**
   * Development warnings (a library has no console): an entity type whose `reduce` changed
   * while its fold `version` did not, say. Default: none are reported.
   */
  readonly onWarning?: ((warning: ClientWarning) => void) | undefined
  /**
   * Test-only: plants a bug so the deterministic simulation (`@ledgerline/sim`) proves its
   * checkers see the real client's code. Production never sets it.
   */
  readonly bugs?: ClientBugs | undefined
}

/** One horizon rule: a type (all its entities) or an entity pattern, and how many days back. */
export type HorizonOption =
  | { readonly type: string; readonly days: number }
  | { readonly pattern: string; readonly days: number }

/**
 * An entity's confirmed ledger as this device holds it (`history`). After a bootstrap, history
 * older than the relay's snapshot may be on the server only: `complete` is false and `from`
 * says the first version held; `history(entity, { fetch: true })` brings the rest.
 */
export interface History {
  readonly entity: string
  /** Confirmed entries from version `from` on, in version order, then pending ones. */
  readonly items: readonly LedgerItem[]
  /** Every confirmed entry from version 1 is here. */
  readonly complete: boolean
  /** The first confirmed version held (1 when complete). */
  readonly from: number
  /**
   * The operator dropped history below this version (retention): it is gone from the server
   * for good (exported by the operator), so no fetch brings it. Undefined: nothing dropped.
   */
  readonly dropped: number | undefined
}

export interface HistoryOptions {
  /**
   * Fetch what is on the server only, keep it, and answer the whole ledger. Needs the relay:
   * fails with kind `offline` when not connected (nothing lost), `busy` past FETCH_WAITING_MAX.
   */
  readonly fetch?: boolean | undefined
}

/** Something a developer should know; never about the app's data being wrong or lost. */
export interface ClientWarning {
  /** `reduce_changed`: snapshots of an entity type whose `reduce` source changed, same version. */
  readonly kind: 'reduce_changed'
  readonly message: string
  /** The entity type it is about. */
  readonly type: string
}

/**
 * Why the client is not syncing, or what went wrong last (the relay's error kinds, and the
 * client's own):
 * - `unreachable`: the socket closed (or failed) before the relay welcomed it;
 * - `token_unavailable`: the token function threw or gave nothing;
 * - `socket`: the socket could not be made; `storage`: the client store failed;
 * - `seq_gap`: the log keeps refusing this device's next entry as out of order (a log restored
 *   without its generation raised): backing off, and the entries are kept;
 * - `id_conflict`: restore recovery met ids in use more often than REISSUE_HOPS_MAX;
 * - the relay's kinds (`unauthorized`, `token_expired`, `client_taken`, `overloaded`, …), see
 *   `@ledgerline/protocol`'s error-kind.ts.
 */
export type ClientErrorStatusKind =
  | ErrorKind
  | 'unreachable'
  | 'token_unavailable'
  | 'socket'
  | 'storage'
  | 'seq_gap'
  | 'id_conflict'

export interface AppendOptions {
  readonly intent?: Intent | undefined
  /** Requests only: append only if the entity is at this version. */
  readonly expect?: number | undefined
  /** Id of the entry this one compensates for. */
  readonly corrects?: string | undefined
}

export interface AppendDraft extends AppendOptions {
  readonly entity: string
  readonly kind: string
  readonly data: Data
}

/** One entity as this client sees it. The same object until the entity changes. */
export interface EntityState<S = unknown> {
  readonly entity: string
  readonly view: S
  readonly confirmed: S
  /** Version of the last confirmed entry (0: none yet). */
  readonly version: number
  /** Own entries not yet received back (outbox and acknowledged), in clientSeq order. */
  readonly pending: readonly Entry[]
  /**
   * The store layer: other devices' entries a store hub holds that head office has not
   * confirmed, in the hub's order (empty when not connected through a hub). `view` folds
   * confirmed, then these, then `pending`.
   */
  readonly store: readonly Entry[]
  /** False until the entity has been read from the client store. */
  readonly loaded: boolean
}

export interface ClientStatus {
  /** A socket is open and welcomed (for other tabs: as the leader last reported). */
  readonly online: boolean
  /** Entries in flight or catch-up running. */
  readonly syncing: boolean
  /** Catch-up is done; entries now arrive live. */
  readonly live: boolean
  /** Own entries not at head office yet (stage `device` or `store`). */
  readonly outboxEntries: number
  /** Of `outboxEntries`, those a store hub holds durably (stage `store`). */
  readonly storedEntries: number
  /** Of `outboxEntries`, those only on this device (stage `device`). */
  readonly deviceEntries: number
  readonly outboxBytes: number
  /**
   * Outbox entries held back (kept, not sent for now) while the entries after them go on: the
   * relay deferred them (it has no entity type for them yet, or their clock is ahead), or they
   * failed alone, or they are larger than this relay takes. They are sent again later.
   */
  readonly held: number
  /** Why entries are held, with how many for each reason (`unknown_type`, `clock_ahead`, …). */
  readonly heldReasons: readonly { readonly code: string; readonly count: number }[]
  /** Syncing is paused by `disconnect()` until `reconnect()`. */
  readonly paused: boolean
  /** Local time of the oldest entry in the outbox; `null` when it is empty. */
  readonly oldestOutboxAt: number | null
  /** Age of the oldest outbox entry when this status was made; 0 when empty. */
  readonly oldestOutboxAgeMs: number
  readonly lastServerContactAt: number | null
  /** `navigator.storage.persist()`'s answer, `null` where it is not available (or not asked). */
  readonly persisted: boolean | null
  readonly correctionsUnseen: number
  readonly clientId: string | null
  /** This tab runs the socket. */
  readonly leader: boolean
  /** The relay this client syncs through now (`url` and `role`); null while offline. */
  readonly relay: { readonly url: string; readonly role: 'head_office' | 'hub' } | null
  /**
   * Whether head office is reached: directly (`reachable` when connected to it), or as the
   * store hub says (its `upstream`); `unknown` while offline or when the hub did not say.
   */
  readonly headOffice: 'reachable' | 'unreachable' | 'unknown'
  readonly lastError: { readonly kind: ClientErrorStatusKind; readonly message: string } | null
  /** Set when the client stopped: closed by the app, or by a newer version in another tab. */
  readonly closed: null | 'closed' | 'versionchange' | 'terminated'
}

/** A correction the server log appended against one of this client's entries. */
export interface Correction {
  readonly id: string
  /** Id of this client's entry it compensates for. */
  readonly of: string
  readonly entry: StoredEntry
  readonly unseen: boolean
}

export type LedgerItem =
  | { readonly _tag: 'confirmed'; readonly entry: StoredEntry }
  | { readonly _tag: 'pending'; readonly entry: Entry; readonly acked: boolean }

/** A range over one index: `{ gte: '2026-12-01', lt: '2026-12-02' }`; `eq` alone. */
export interface WhereRange {
  readonly eq?: IndexValue | undefined
  readonly gt?: IndexValue | undefined
  readonly gte?: IndexValue | undefined
  readonly lt?: IndexValue | undefined
  readonly lte?: IndexValue | undefined
}

/** What `query` reads: one index (or none: every entity of the type, by name). */
export interface QueryOptions {
  /** One index name → a key (equality) or a range. */
  readonly where?: Readonly<Record<string, IndexValue | WhereRange>> | undefined
  /** The index to order by (the same as `where`'s), ascending unless `direction: 'desc'`. */
  readonly orderBy?:
    | string
    | { readonly index: string; readonly direction?: 'asc' | 'desc' | undefined }
    | undefined
  /** Most rows, 1..QUERY_ROWS_MAX; default QUERY_ROWS_DEFAULT. */
  readonly limit?: number | undefined
}

/** One entity a query found: its view (confirmed, then own pending) and confirmed version. */
export interface QueryRow<S = unknown> {
  readonly entity: string
  readonly view: S
  readonly version: number
}

export interface QueryResult<S = unknown> {
  readonly rows: readonly QueryRow<S>[]
  /** More entities matched than `limit` rows. */
  readonly more: boolean
}

export type SyncedResult =
  | { readonly _tag: 'synced' }
  | { readonly _tag: 'timeout'; readonly status: ClientStatus }

/**
 * The client. `Client<typeof schema>` (what `createClient({ schema })` infers) type-checks
 * `append` and `appendMany` against the schema's typed kinds, as core's `AppendOf` and
 * `DraftOf` do: an unknown kind or a wrong data shape does not compile; an untyped entity type
 * takes any kind and data. They are methods, so a `Client<typeof schema>` is still a `Client`.
 */
export interface Client<Sch extends Schema = Schema> {
  /**
   * Appends one entry; resolves once it is committed with its outbox record, and `get(entity)`
   * then shows it as pending (`loaded: true`, the view folded with it).
   */
  append<E extends EntityNameOf<Sch>, K extends KindsOf<EntityTypeFor<Sch, E>>>(
    entity: E,
    kind: K,
    data: DataOf<EntityTypeFor<Sch, E>, K>,
    options?: AppendOptions,
  ): Promise<Entry>
  appendMany(drafts: readonly (DraftOf<Sch> & AppendOptions)[]): Promise<readonly Entry[]>
  get<S = unknown>(entity: string): EntityState<S>
  load<S = unknown>(entity: string): Promise<EntityState<S>>
  subscribe(target: string, onChange: (entity: string) => void): () => void
  /**
   * The views of the entities of one type matching `pattern` (`'order/*'`, `'order/s7-*'`),
   * through an index the type declares: `{ where: { byDay: '2026-12-01' } }`,
   * `{ where: { onHand: { lt: 5 } }, orderBy: 'onHand' }`. Reads what the client store
   * committed (confirmed, then own pending); never waits for the network.
   */
  query<S = unknown>(pattern: string, options?: QueryOptions): Promise<QueryResult<S>>
  /** `query`, then again after every change that alters its result; returns the unsubscribe. */
  subscribeQuery<S = unknown>(
    pattern: string,
    options: QueryOptions | undefined,
    onResult: (result: QueryResult<S>) => void,
  ): () => void
  status(): ClientStatus
  onStatus(onChange: (status: ClientStatus) => void): () => void
  corrections(limit?: number): Promise<readonly Correction[]>
  onCorrection(onChange: (correction: Correction) => void): () => void
  markCorrectionsSeen(): Promise<number>
  outcome(entryId: string, options?: { readonly waitMs?: number | undefined }): Promise<Outcome>
  /**
   * The ledger for UIs: the confirmed entries held, in version order, then pending ones. After
   * a bootstrap, older history may be on the server only: `history` says so and fetches it.
   */
  entries(entity: string): Promise<readonly LedgerItem[]>
  /**
   * The ledger with what the device holds of it: `{ items, complete, from, dropped }`;
   * `{ fetch: true }` first brings history that is on the server only (see `History`).
   */
  history(entity: string, options?: HistoryOptions): Promise<History>
  synced(options?: { readonly timeoutMs?: number | undefined }): Promise<SyncedResult>
  /**
   * The network is back: reset the reconnect backoff and connect at once (a connected socket
   * is pinged instead); also ends a `disconnect()` pause, and tries again after
   * `client_taken`. The browser's `online` event calls it already; `offline` drops the socket
   * at once. A no-op in tabs that do not run the socket.
   */
  reconnect(): void
  /**
   * Pauses syncing: the socket closes and no reconnect is tried until `reconnect()`
   * (`status().paused`). Appends go on into the outbox.
   */
  disconnect(): void
  close(): Promise<void>
}

export type { ClientBugs, Durability, Outcome }

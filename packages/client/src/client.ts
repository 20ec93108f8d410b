/**
 * `createClient`: what an app embeds. It ties the IndexedDB store, the sync loop (leader tab
 * only), the tab channel and an in-memory cache of folded entities together.
 *
 * Terms (DESIGN.md glossary): *pending* are this client's entries not yet received back from
 * the server log (in the outbox, or acked and on their way back); *confirmed* is the state
 * folded from server-ordered entries; *view* is confirmed, then pending in clientSeq order.
 *
 * Invariants:
 * 1. `append` resolves only after the entry and its outbox record are committed together
 *    (see `idb-store.ts`, invariant 1); before that, nothing is shown as appended.
 * 2. `get(entity)` returns the same object until the entity's view changes, so React's
 *    `useSyncExternalStore` can use it as a snapshot. Before the first load it returns a
 *    placeholder (`loaded: false`) and starts the load.
 * 3. A view is always refolded from confirmed state; confirmed state only moves forward by
 *    dense versions (a gap reloads the entity from scratch).
 * 4. Views are folded on demand: start-up reads no ledger; per-entity snapshots in IndexedDB
 *    keep a load to the entries after the snapshot.
 * 5. Every change is told to the other tabs; only the leader tab opens a socket.
 */
import type { Data, Entry, Intent, RandomSource, Schema, StoredEntry } from '@ledgerline/core'
import {
  checkData,
  checkPattern,
  createClientId,
  createHlcClock,
  isEntityName,
  matchesPattern,
  view as foldView,
  fold,
} from '@ledgerline/core'
import type { Cursors } from '@ledgerline/protocol'
import { encodeMessage, ENTRY_DATA_BYTES_MAX, isProtocolError } from '@ledgerline/protocol'
import { ClientError, fromLedgerError } from './errors.ts'
import type { Appended, Counters, Durability, FeedRecord, Outcome, Store } from './idb-store.ts'
import { openStore } from './idb-store.ts'
import {
  APPEND_MANY_ENTRIES_MAX,
  CACHE_ENTITIES_MAX,
  COUNTERS_DELAY_MS,
  OUTBOX_BYTES_MAX,
  OUTBOX_ENTRIES_MAX,
  SNAPSHOT_ENTRIES_MIN,
  SYNCED_TIMEOUT_MS_DEFAULT,
} from './limits.ts'
import type { Sync, SyncState, WebSocketConstructor } from './sync.ts'
import { createSync } from './sync.ts'
import type { TabMessage, Tabs } from './tabs.ts'
import { createTabs } from './tabs.ts'

export type { Outcome } from './idb-store.ts'

export interface ClientOptions {
  /** The relay's sync endpoint, e.g. `wss://relay.example.com/sync`. */
  readonly url: string
  /** A JWT, or a function giving one (called again when the relay says it expired). */
  readonly token: string | (() => string | Promise<string>)
  /** The same schema module the relay loads. */
  readonly schema: Schema
  /** IndexedDB database name; one per user and device (e.g. `ledgerline:acme:till-1`). */
  readonly dbName: string
  /** Tenant of the entries; by default the token's `tenant` claim, or the relay's welcome. */
  readonly tenant?: string | undefined
  /** Entity patterns to receive; default: everything the token may read. */
  readonly scope?: readonly string[] | undefined
  /** Injected outside browsers (Node: `fake-indexeddb`). */
  readonly indexedDB?: IDBFactory | undefined
  /** Injected with `indexedDB` outside browsers (Node: fake-indexeddb's `IDBKeyRange`). */
  readonly IDBKeyRange?: typeof IDBKeyRange | undefined
  /** Injected outside browsers (Node: the `ws` package's `WebSocket`). */
  readonly WebSocket?: WebSocketConstructor | undefined
  /**
   * Durability of append transactions. `strict` (default) asks the browser to flush to disk
   * before `append` resolves; `relaxed` is faster (Chrome's default since 121) but an OS crash
   * or power cut may lose entries that `append` already reported as written.
   * https://developer.chrome.com/blog/indexeddb-durability-mode-now-defaults-to-relaxed/
   */
  readonly durability?: 'strict' | 'relaxed' | undefined
  /** Ask `navigator.storage.persist()` at start (default true). */
  readonly persist?: boolean | undefined
  /** Clock, ms since the epoch (tests inject one). */
  readonly now?: (() => number) | undefined
  /** Random bytes, like `crypto.getRandomValues` (tests inject a seeded one). */
  readonly random?: RandomSource | undefined
  /** Web Locks and BroadcastChannel; `null` turns either off. Defaults to the globals. */
  readonly locks?: LockManager | null | undefined
  readonly BroadcastChannel?: typeof BroadcastChannel | null | undefined
}

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
export interface EntitySnapshot<S = unknown> {
  readonly entity: string
  readonly view: S
  readonly confirmed: S
  /** Version of the last confirmed entry (0: none yet). */
  readonly version: number
  /** Own entries not yet received back, in clientSeq order. */
  readonly pending: readonly Entry[]
  /** False until the entity has been read from IndexedDB. */
  readonly loaded: boolean
}

export interface ClientStatus {
  /** A socket is open and welcomed (for other tabs: as the leader last reported). */
  readonly online: boolean
  /** Entries in flight or catch-up running. */
  readonly syncing: boolean
  /** Catch-up is done; entries now arrive live. */
  readonly live: boolean
  readonly outboxEntries: number
  readonly outboxBytes: number
  /** Local time of the oldest entry in the outbox; `null` when it is empty. */
  readonly oldestPendingAt: number | null
  /** Age of the oldest outbox entry when this status was made; 0 when empty. */
  readonly oldestPendingAgeMs: number
  readonly lastServerContactAt: number | null
  /** `navigator.storage.persist()`'s answer, `null` where it is not available (or not asked). */
  readonly persisted: boolean | null
  readonly correctionsUnseen: number
  readonly clientId: string | null
  /** This tab runs the socket. */
  readonly leader: boolean
  readonly lastError: { readonly kind: string; readonly message: string } | null
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

export type SyncedResult =
  | { readonly _tag: 'synced' }
  | { readonly _tag: 'timeout'; readonly status: ClientStatus }

export interface Client {
  append(entity: string, kind: string, data: Data, options?: AppendOptions): Promise<Entry>
  appendMany(drafts: readonly AppendDraft[]): Promise<readonly Entry[]>
  get<S = unknown>(entity: string): EntitySnapshot<S>
  load<S = unknown>(entity: string): Promise<EntitySnapshot<S>>
  subscribe(target: string, onChange: (entity: string) => void): () => void
  status(): ClientStatus
  onStatus(onChange: (status: ClientStatus) => void): () => void
  corrections(limit?: number): Promise<readonly Correction[]>
  onCorrection(onChange: (correction: Correction) => void): () => void
  markCorrectionsSeen(): Promise<number>
  outcome(entryId: string, options?: { readonly waitMs?: number | undefined }): Promise<Outcome>
  entries(entity: string): Promise<readonly LedgerItem[]>
  history(entity: string): Promise<readonly LedgerItem[]>
  synced(options?: { readonly timeoutMs?: number | undefined }): Promise<SyncedResult>
  /**
   * The network is back: reset the reconnect backoff and connect at once (a connected socket
   * is pinged instead). The browser's `online` event calls it already; `offline` drops the
   * socket at once. A no-op in tabs that do not run the socket.
   */
  reconnect(): void
  close(): Promise<void>
}

interface CacheItem {
  snapshot: EntitySnapshot
  confirmed: unknown
  version: number
  lastChunk: number | undefined
  foldedSinceSnapshot: number
  loading: boolean
  again: boolean
}

/**
 * Creates a client. It opens the database and (in the leader tab) connects in the background;
 * every method waits for the database as needed.
 *
 * @example
 * const client = createClient({ url: 'wss://relay.example.com/sync', token: getToken,
 *   schema, dbName: 'ledgerline:acme:till-1' })
 * await client.append('stock/s7:espresso-1kg', 'stock.moved', { qty: -1 })
 */
export function createClient(options: ClientOptions): Client {
  const now = options.now ?? (() => Date.now())
  const randomBytes: RandomSource =
    options.random ?? ((b) => crypto.getRandomValues(b as Uint8Array<ArrayBuffer>))
  const random = () => {
    const b = new Uint8Array(4)
    randomBytes(b)
    return (
      ((b[0] as number) * 2 ** 24 +
        (b[1] as number) * 2 ** 16 +
        (b[2] as number) * 2 ** 8 +
        (b[3] as number)) /
      2 ** 32
    )
  }
  const idbFactory = options.indexedDB ?? (globalThis as { indexedDB?: IDBFactory }).indexedDB
  const KeyRange =
    options.IDBKeyRange ?? (globalThis as { IDBKeyRange?: typeof IDBKeyRange }).IDBKeyRange
  const WebSocketImpl =
    options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket
  const durability: Durability = options.durability ?? 'strict'
  const schema = options.schema

  const cache = new Map<string, CacheItem>()
  const entityListeners = new Map<string, Set<(entity: string) => void>>()
  const patternListeners = new Map<string, Set<(entity: string) => void>>()
  const statusListeners = new Set<(status: ClientStatus) => void>()
  const correctionListeners = new Set<(c: Correction) => void>()
  const changeWaiters = new Set<() => void>()
  const seenCorrections = new Set<string>()

  let cachedToken: string | undefined
  let tenant: string | undefined = options.tenant
  let counters: Counters | undefined
  // Appends of this tab committed so far: a counters read that overlapped one may be older
  // than what the append wrote, so it is not taken (see `refreshCounters`).
  let appendsCommitted = 0
  let countersTimer: ReturnType<typeof setTimeout> | undefined
  let syncState: Pick<SyncState, 'online' | 'syncing' | 'live' | 'lastServerContactAt'> & {
    lastError: ClientStatus['lastError']
  } = { online: false, syncing: false, live: false, lastServerContactAt: null, lastError: null }
  let persisted: boolean | null = null
  let closed: ClientStatus['closed'] = null
  let sync: Sync | undefined
  let tabs: Tabs | undefined
  let status: ClientStatus = makeStatus()
  let clock: ReturnType<typeof createHlcClock> | undefined
  let clockNode = ''

  const ready: Promise<Store> = (async () => {
    if (idbFactory === undefined || KeyRange === undefined) {
      throw new ClientError(
        'storage',
        'no IndexedDB here: pass options.indexedDB and options.IDBKeyRange',
      )
    }
    const store = await openStore({
      indexedDB: idbFactory,
      IDBKeyRange: KeyRange,
      dbName: options.dbName,
      durability,
      onClosed: (reason) => {
        if (closed !== null) return
        closed = reason
        unlistenNetwork()
        sync?.stop()
        tabs?.close()
        publishStatus()
      },
    })
    await store.init(() => createClientId(randomBytes), now())
    tenant ??= await store.tenant()
    counters = await store.counters()
    publishStatus()
    tabs = createTabs({
      dbName: options.dbName,
      locks: options.locks,
      BroadcastChannel: options.BroadcastChannel,
      onLeader: () => startSync(store),
      onMessage: (m) => onTabMessage(m),
    })
    if (options.persist !== false) void askPersist()
    return store
  })()
  // Browsers tell when the network comes and goes: reconnect at once instead of waiting out
  // the backoff, and stop trusting a socket the moment the network is gone.
  // https://developer.mozilla.org/docs/Web/API/Window/online_event
  const network = globalThis as {
    addEventListener?: (type: string, listener: () => void) => void
    removeEventListener?: (type: string, listener: () => void) => void
  }
  const onOnline = () => sync?.reconnect()
  const onOffline = () => sync?.offline()
  if (typeof network.addEventListener === 'function') {
    network.addEventListener('online', onOnline)
    network.addEventListener('offline', onOffline)
  }
  const unlistenNetwork = () => {
    if (typeof network.removeEventListener !== 'function') return
    network.removeEventListener('online', onOnline)
    network.removeEventListener('offline', onOffline)
  }

  // Callers see the failure through their own calls; keep it from being an unhandled rejection.
  ready.catch((error: unknown) => {
    syncState = { ...syncState, lastError: { kind: 'storage', message: String(error) } }
    publishStatus()
  })

  function startSync(store: Store): void {
    if (closed !== null || WebSocketImpl === undefined) return
    sync = createSync({
      url: options.url,
      WebSocket: WebSocketImpl,
      token: getToken,
      invalidateToken: () => {
        if (typeof options.token === 'function') cachedToken = undefined
      },
      scope: options.scope,
      store,
      now,
      random,
      newClientId: () => createClientId(randomBytes),
      events: {
        state(s) {
          if (s.tenant !== null) tenant ??= s.tenant
          syncState = {
            online: s.online,
            syncing: s.syncing,
            live: s.live,
            lastServerContactAt: s.lastServerContactAt,
            lastError: s.lastError,
          }
          publishStatus()
          wakeWaiters()
          tabs?.post({
            t: 'status',
            online: s.online,
            syncing: s.syncing,
            live: s.live,
            lastServerContactAt: s.lastServerContactAt,
          })
        },
        acked(applied) {
          for (const entity of applied.entities) changed(entity)
          emitCorrections(applied.corrections)
          tabs?.post({
            t: 'changed',
            entities: [...applied.entities],
            outbox: false,
            corrections: applied.corrections.length,
          })
          scheduleCounters()
          wakeWaiters()
        },
        page(applied) {
          for (const entity of applied.entities) changed(entity)
          emitCorrections(applied.corrections)
          if (applied.entities.size > 0 || applied.corrections.length > 0) {
            tabs?.post({
              t: 'changed',
              entities: [...applied.entities],
              outbox: false,
              corrections: applied.corrections.length,
            })
          }
          // Counters move only with own entries (acked ones received back) or corrections; a
          // catch-up page of others' entries costs no extra transaction.
          if (applied.own > 0 || applied.corrections.length > 0) {
            scheduleCounters()
            wakeWaiters()
          }
        },
        reissued() {
          clock = undefined
          scheduleCounters()
          for (const entity of cache.keys()) changed(entity)
          tabs?.post({ t: 'changed', entities: [...cache.keys()], outbox: true, corrections: 0 })
        },
      },
    })
    sync.start()
    publishStatus()
  }

  async function getToken(): Promise<string> {
    if (typeof options.token === 'string') return options.token
    cachedToken ??= await options.token()
    return cachedToken
  }

  async function askPersist(): Promise<void> {
    const storage = (globalThis as { navigator?: { storage?: StorageManager } }).navigator?.storage
    if (storage === undefined || typeof storage.persist !== 'function') return
    try {
      persisted = (await storage.persisted?.()) === true ? true : await storage.persist()
    } catch {
      persisted = false
    }
    publishStatus()
  }

  function onTabMessage(m: TabMessage): void {
    switch (m.t) {
      case 'changed':
        for (const entity of m.entities) changed(entity)
        if (m.outbox) sync?.kick()
        if (m.corrections > 0) void fetchNewCorrections()
        scheduleCounters()
        wakeWaiters()
        return
      case 'status':
        if (tabs?.isLeader() === true) return
        syncState = {
          ...syncState,
          online: m.online,
          syncing: m.syncing,
          live: m.live,
          lastServerContactAt: m.lastServerContactAt,
        }
        publishStatus()
        wakeWaiters()
        return
    }
  }

  function makeStatus(): ClientStatus {
    const oldestPendingAt = counters?.oldestPendingAt ?? null
    return {
      online: syncState.online,
      syncing: syncState.syncing,
      live: syncState.live,
      outboxEntries: counters?.outboxEntries ?? 0,
      outboxBytes: counters?.outboxBytes ?? 0,
      oldestPendingAt,
      oldestPendingAgeMs: oldestPendingAt === null ? 0 : Math.max(0, now() - oldestPendingAt),
      lastServerContactAt: syncState.lastServerContactAt,
      persisted,
      correctionsUnseen: counters?.correctionsUnseen ?? 0,
      clientId: counters?.clientId ?? null,
      leader: tabs?.isLeader() ?? false,
      lastError: syncState.lastError,
      closed,
    }
  }

  function publishStatus(): void {
    const next = makeStatus()
    const keys = Object.keys(next) as (keyof ClientStatus)[]
    if (keys.every((k) => k === 'oldestPendingAgeMs' || next[k] === status[k])) return
    status = next
    for (const l of statusListeners) l(status)
  }

  /** Reads the counters from IndexedDB now (start, `synced`, `markCorrectionsSeen`). */
  async function refreshCounters(): Promise<void> {
    try {
      const store = await ready
      const appendsBefore = appendsCommitted
      const read = await store.counters()
      if (appendsBefore !== appendsCommitted) {
        // An append of this tab committed while this read ran: whichever came first, the
        // counters it set are no older than this read. Read again shortly instead.
        scheduleCounters()
        return
      }
      counters = read
      publishStatus()
    } catch {
      // The database closed under us; `status().closed` says why.
    }
  }

  /**
   * Reads the counters after COUNTERS_DELAY_MS: acks, pages of own entries and other tabs'
   * changes arriving meanwhile share one read, which never queues between appends.
   */
  function scheduleCounters(): void {
    if (countersTimer !== undefined || closed !== null) return
    countersTimer = setTimeout(() => {
      countersTimer = undefined
      void refreshCounters()
    }, COUNTERS_DELAY_MS)
  }

  function emitCorrections(list: readonly FeedRecord[]): void {
    for (const r of list) {
      if (seenCorrections.has(r.id)) continue
      seenCorrections.add(r.id)
      const c: Correction = { id: r.id, of: r.of, entry: r.entry, unseen: r.unseen }
      for (const l of correctionListeners) l(c)
    }
  }

  async function fetchNewCorrections(): Promise<void> {
    try {
      const store = await ready
      emitCorrections((await store.corrections(64)).filter((r) => r.unseen).reverse())
    } catch {
      // As in refreshCounters.
    }
  }

  function wakeWaiters(): void {
    for (const w of changeWaiters) w()
  }

  function typeOf(entity: string) {
    try {
      return schema.typeOf(entity)
    } catch (error) {
      throw fromLedgerError(error)
    }
  }

  // --- the cache of folded entities -------------------------------------------------------

  function notify(entity: string): void {
    for (const l of entityListeners.get(entity) ?? []) l(entity)
    for (const [pattern, set] of patternListeners) {
      if (matchesPattern(pattern, entity)) for (const l of set) l(entity)
    }
  }

  /** Something about `entity` changed in IndexedDB: refresh it if it is cached, tell listeners. */
  function changed(entity: string): void {
    if (cache.has(entity)) void refresh(entity)
    else notify(entity)
  }

  function placeholder(entity: string): CacheItem {
    const type = typeOf(entity)
    const item: CacheItem = {
      snapshot: {
        entity,
        view: type.initial,
        confirmed: type.initial,
        version: 0,
        pending: [],
        loaded: false,
      },
      confirmed: type.initial,
      version: 0,
      lastChunk: undefined,
      foldedSinceSnapshot: 0,
      loading: false,
      again: false,
    }
    cache.set(entity, item)
    evict()
    return item
  }

  function evict(): void {
    if (cache.size <= CACHE_ENTITIES_MAX) return
    for (const entity of cache.keys()) {
      if (cache.size <= CACHE_ENTITIES_MAX) return
      if (!entityListeners.has(entity)) cache.delete(entity)
    }
  }

  async function refresh(entity: string): Promise<void> {
    const item = cache.get(entity)
    if (item === undefined) return
    if (item.loading) {
      item.again = true
      return
    }
    item.loading = true
    try {
      do {
        item.again = false
        await loadInto(entity, item)
      } while (item.again)
    } catch {
      // Closed or failing storage: keep the last snapshot; status tells what went wrong.
    } finally {
      item.loading = false
    }
  }

  async function loadInto(entity: string, item: CacheItem): Promise<void> {
    const store = await ready
    const type = typeOf(entity)
    const key = typeKey(type.type, type.reduce)
    const base =
      item.snapshot.loaded && item.lastChunk !== undefined
        ? { through: item.lastChunk, version: item.version }
        : undefined
    let load = await store.loadEntity(
      entity,
      key,
      base === undefined ? undefined : { ...base, state: item.confirmed },
    )
    let state: unknown =
      base !== undefined ? item.confirmed : (load.snapshot?.state ?? type.initial)
    let version = base !== undefined ? item.version : (load.snapshot?.version ?? 0)
    if (load.stored.length > 0 && (load.stored[0] as StoredEntry).version !== version + 1) {
      // A gap between what is cached (or snapshotted) and what is stored: fold from scratch.
      load = await store.loadEntity(entity, key, null)
      state = type.initial
      version = 0
    }
    for (const e of load.stored) {
      if (e.version !== version + 1)
        throw new ClientError('storage', `ledger of ${entity} has a gap at version ${version + 1}`)
      state = type.reduce(state, e)
      version = e.version
    }
    const lastChunk = load.lastChunk ?? item.lastChunk
    const foldedSinceSnapshot =
      (base !== undefined ? item.foldedSinceSnapshot : 0) + load.stored.length
    const pending = sortPending(load.pending)
    const prev = item.snapshot
    const samePending =
      prev.pending.length === pending.length &&
      prev.pending.every((p, i) => p.id === (pending[i] as Entry).id)
    item.confirmed = state
    item.version = version
    item.lastChunk = lastChunk
    item.foldedSinceSnapshot = foldedSinceSnapshot
    if (!prev.loaded || version !== prev.version || !samePending) {
      item.snapshot = {
        entity,
        view: foldView(type, state, pending),
        confirmed: state,
        version,
        pending,
        loaded: true,
      }
      notify(entity)
    }
    if (foldedSinceSnapshot >= SNAPSHOT_ENTRIES_MIN && lastChunk !== undefined) {
      item.foldedSinceSnapshot = 0
      // A snapshot only saves work later; failing to write one (quota, uncloneable state) is fine.
      store
        .putSnapshot({
          entity,
          version,
          state,
          through: lastChunk,
          typeKey: key,
        })
        .catch(() => {})
    }
  }

  /** This tab appended: show the entries as pending at once, without reading them back. */
  function addPending(entries: readonly Entry[]): void {
    const byEntity = new Map<string, Entry[]>()
    for (const e of entries) {
      const list = byEntity.get(e.entity)
      if (list === undefined) byEntity.set(e.entity, [e])
      else list.push(e)
    }
    for (const [entity, list] of byEntity) {
      const item = cache.get(entity)
      if (item !== undefined && item.snapshot.loaded && !item.loading) {
        const type = typeOf(entity)
        const pending = sortPending([...item.snapshot.pending, ...list])
        item.snapshot = { ...item.snapshot, pending, view: fold(type, item.snapshot.view, list) }
        notify(entity)
      } else {
        changed(entity)
      }
    }
  }

  // --- appends --------------------------------------------------------------------------

  async function appendDrafts(drafts: readonly AppendDraft[]): Promise<readonly Entry[]> {
    if (closed !== null) throw new ClientError('closed', `client is closed (${closed})`)
    if (drafts.length === 0) return []
    if (drafts.length > APPEND_MANY_ENTRIES_MAX) {
      throw new ClientError(
        'invalid',
        `appendMany takes at most ${APPEND_MANY_ENTRIES_MAX} entries, got ${drafts.length}`,
      )
    }
    // Check everything we can before the transaction, so the transaction stays short.
    for (const d of drafts) {
      if (!isEntityName(d.entity))
        throw new ClientError('invalid', `'${String(d.entity)}' is not an entity name (type/id)`)
      typeOf(d.entity)
      try {
        checkData(d.data)
      } catch (error) {
        throw fromLedgerError(error)
      }
      if (d.expect !== undefined && d.intent !== 'request') {
        throw new ClientError('invalid', 'expect is only allowed on requests (intent: "request")')
      }
    }
    const store = await ready
    const entryTenant = tenant ?? tenantFromToken(await getToken())
    if (entryTenant === undefined) {
      throw new ClientError(
        'invalid',
        'tenant unknown: pass options.tenant or use a token with a tenant claim',
      )
    }
    tenant = entryTenant
    const at = now()
    let appended: Appended
    try {
      appended = await store.append(
        (clientId, firstSeq) => {
          if (clock === undefined || clockNode !== clientId) {
            clock = createHlcClock(clientId, now)
            clockNode = clientId
          }
          const c = clock
          return drafts.map((d, i) => {
            const clientSeq = firstSeq + i
            const entry: Entry = {
              id: `${clientId}-${clientSeq}`,
              tenant: entryTenant,
              entity: d.entity,
              kind: d.kind,
              data: d.data,
              intent: d.intent ?? 'fact',
              ...(d.expect === undefined ? {} : { expect: d.expect }),
              ...(d.corrects === undefined ? {} : { corrects: d.corrects }),
              clientId,
              clientSeq,
              hlc: c.tick(),
              occurredAt: at,
            }
            // Validated once, by the store, before it is written (pair assertion, first half).
            const verdict = typeOf(entry.entity).validate?.(entry) ?? true
            if (verdict !== true) throw new ClientError('invalid', `${entry.entity}: ${verdict}`)
            return entry
          })
        },
        { entriesMax: OUTBOX_ENTRIES_MAX, bytesMax: OUTBOX_BYTES_MAX },
        at,
        entryBytes,
      )
    } catch (error) {
      throw fromLedgerError(error)
    }
    const { entries, meta, wasEmpty } = appended
    appendsCommitted++
    if (counters !== undefined) {
      // Counters from what this transaction wrote, without reading IndexedDB again: the meta
      // record it read and rewrote is exact as of its commit (acks and other tabs included).
      counters = {
        ...counters,
        clientId: meta.clientId,
        seqLast: meta.seqLast,
        outboxEntries: meta.outboxEntries,
        outboxBytes: meta.outboxBytes,
        oldestPendingAt: wasEmpty ? at : (counters.oldestPendingAt ?? at),
      }
      publishStatus()
    }
    addPending(entries)
    const entities = [...new Set(entries.map((e) => e.entity))]
    tabs?.post({ t: 'changed', entities, outbox: true, corrections: 0 })
    sync?.kick()
    return entries
  }

  const client: Client = {
    async append(entity, kind, data, appendOptions = {}) {
      const [entry] = await appendDrafts([{ entity, kind, data, ...appendOptions }])
      return entry as Entry
    },

    appendMany: (drafts) => appendDrafts(drafts),

    get<S>(entity: string): EntitySnapshot<S> {
      let item = cache.get(entity)
      if (item === undefined) {
        item = placeholder(entity)
        void refresh(entity)
      } else {
        // Most recently used last, so eviction takes the least recently used first.
        cache.delete(entity)
        cache.set(entity, item)
      }
      return item.snapshot as EntitySnapshot<S>
    },

    async load<S>(entity: string): Promise<EntitySnapshot<S>> {
      const item = cache.get(entity) ?? placeholder(entity)
      if (!item.snapshot.loaded || item.loading) {
        await refresh(entity)
        while (item.loading) await new Promise((r) => setTimeout(r, 1))
      }
      if (!item.snapshot.loaded) await loadInto(entity, item)
      return item.snapshot as EntitySnapshot<S>
    },

    subscribe(target, onChange) {
      const isEntity = isEntityName(target)
      if (!isEntity) {
        try {
          checkPattern(target)
        } catch (error) {
          throw fromLedgerError(error)
        }
      }
      const map = isEntity ? entityListeners : patternListeners
      let set = map.get(target)
      if (set === undefined) map.set(target, (set = new Set()))
      set.add(onChange)
      if (isEntity) client.get(target)
      return () => {
        set.delete(onChange)
        if (set.size === 0) map.delete(target)
      }
    },

    status: () => status,

    onStatus(onChange) {
      statusListeners.add(onChange)
      return () => statusListeners.delete(onChange)
    },

    async corrections(limit = 100) {
      const store = await ready
      return (await store.corrections(limit)).map((r) => ({
        id: r.id,
        of: r.of,
        entry: r.entry,
        unseen: r.unseen,
      }))
    },

    onCorrection(onChange) {
      correctionListeners.add(onChange)
      return () => correctionListeners.delete(onChange)
    },

    async markCorrectionsSeen() {
      const store = await ready
      const marked = await store.markCorrectionsSeen()
      await refreshCounters()
      tabs?.post({ t: 'changed', entities: [], outbox: false, corrections: 0 })
      return marked
    },

    async outcome(entryId, outcomeOptions = {}) {
      const store = await ready
      const deadline = now() + (outcomeOptions.waitMs ?? 0)
      for (;;) {
        let id = entryId
        let result = await store.outcome(id)
        for (let hops = 0; result._tag === 'reissued' && hops < 4; hops++) {
          id = result.as
          result = await store.outcome(id)
        }
        if (result._tag !== 'pending' || now() >= deadline || closed !== null) return result
        await waitForChange(deadline - now())
      }
    },

    async entries(entity) {
      const store = await ready
      const type = typeOf(entity)
      const load = await store.loadEntity(entity, typeKey(type.type, type.reduce), null)
      return [
        ...load.stored.map((entry) => ({ _tag: 'confirmed' as const, entry })),
        ...sortPending(load.pending).map((entry) => ({
          _tag: 'pending' as const,
          entry,
          acked: load.acked.has(entry.id),
        })),
      ]
    },

    history: (entity) => client.entries(entity),

    async synced(syncedOptions = {}) {
      const deadline = now() + (syncedOptions.timeoutMs ?? SYNCED_TIMEOUT_MS_DEFAULT)
      await ready
      for (;;) {
        await refreshCounters()
        const c = counters
        if (
          c !== undefined &&
          status.online &&
          status.live &&
          c.outboxEntries === 0 &&
          c.ackedWaiting === 0 &&
          !sync?.busy()
        ) {
          return { _tag: 'synced' }
        }
        if (closed !== null) throw new ClientError('closed', `client is closed (${closed})`)
        if (now() >= deadline) return { _tag: 'timeout', status }
        await waitForChange(Math.min(250, Math.max(1, deadline - now())))
      }
    },

    reconnect() {
      if (closed === null) sync?.reconnect()
    },

    async close() {
      if (closed === null) closed = 'closed'
      clearTimeout(countersTimer)
      countersTimer = undefined
      unlistenNetwork()
      sync?.stop()
      tabs?.close()
      try {
        const store = await ready
        await sync?.idle()
        store.close()
      } catch {
        // Never opened: nothing to close.
      }
      publishStatus()
      wakeWaiters()
    },
  }
  return client

  function waitForChange(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer)
        changeWaiters.delete(done)
        resolve()
      }
      const timer = setTimeout(done, Math.max(1, ms))
      changeWaiters.add(done)
    })
  }
}

/** The encoded size of an entry on the wire; refuses data over `ENTRY_DATA_BYTES_MAX`. */
function entryBytes(entry: Entry): number {
  const bytes = encodedPushBytes(entry)
  if (bytes > ENTRY_DATA_BYTES_MAX) {
    const dataBytes = bytes - encodedPushBytes({ ...entry, data: null })
    if (dataBytes > ENTRY_DATA_BYTES_MAX) {
      throw new ClientError(
        'too_large',
        `entry data is ${dataBytes} bytes; at most ${ENTRY_DATA_BYTES_MAX} are allowed`,
      )
    }
  }
  return bytes
}

/**
 * The size of a push of `entry` alone. The codec refuses a frame it would not send (one string
 * or binary over ENTRY_DATA_BYTES_MAX, a frame over FRAME_BYTES_MAX): that is the app's data
 * being too large (or unencodable), never a storage failure.
 */
function encodedPushBytes(entry: Entry): number {
  try {
    return encodeMessage({ type: 'push', batch: 0, entries: [entry] }).byteLength
  } catch (error) {
    if (!isProtocolError(error)) throw error
    throw new ClientError(error.kind === 'too_large' ? 'too_large' : 'invalid', error.message, {
      cause: error,
    })
  }
}

function sortPending(entries: readonly Entry[]): Entry[] {
  // One clientId at a time has pending entries in the outbox; acked ones of an older clientId
  // (before a reissue) come first.
  return [...entries].sort((a, b) =>
    a.clientId === b.clientId ? a.clientSeq - b.clientSeq : a.hlc < b.hlc ? -1 : 1,
  )
}

/** The token's `tenant` claim, read without verifying (the relay verifies). */
export function tenantFromToken(token: string): string | undefined {
  const payload = token.split('.')[1]
  if (payload === undefined) return undefined
  try {
    const json = atob(
      payload
        .replace(/-/g, '+')
        .replace(/_/g, '/')
        .padEnd(Math.ceil(payload.length / 4) * 4, '='),
    )
    const claims = JSON.parse(json) as { tenant?: unknown }
    return typeof claims.tenant === 'string' ? claims.tenant : undefined
  } catch {
    return undefined
  }
}

/** A fingerprint of an entity type's fold, so a changed `reduce` invalidates snapshots. */
function typeKey(type: string, reduce: (...args: never[]) => unknown): string {
  const text = `${type}\n${String(reduce)}`
  let hash = 0x811c9dc5
  for (let i = 0; i < text.length; i++)
    hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193) >>> 0
  return `${type}:${hash.toString(16)}:${text.length}`
}

export type { Cursors }

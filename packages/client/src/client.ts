/**
 * `createClient`: what an app embeds. It opens the client store, then puts together the
 * modules that each own one concern and says which event goes where:
 *
 *   environment.ts      the world: clock, randomness, timers, sockets, storage, tabs, network
 *   append.ts           drafts → entries → one outbox write
 *   entity-cache.ts     folded entities for `get` / `load` / `subscribe`
 *   queries.ts          `query` / `subscribeQuery` over the kept views of indexed types
 *   status.ts           `status()` / `onStatus`, and the waits of `outcome` / `synced`
 *   corrections-feed.ts the conflicts inbox
 *   sync.ts             the socket, leader tab only (connection, outbox drain, write queue)
 *   tabs.ts             which tab leads, and the hints tabs send each other
 *
 * Invariants:
 * 1. `append` resolves only after the entry and its outbox record are committed together;
 *    before that, nothing is shown as appended (client store guarantee 2).
 * 2. Every change is told to the cache (listeners), the status, and the other tabs; only the
 *    leader tab opens a socket.
 * 3. Once closed (by the app, or by a newer version of the database in another tab), nothing
 *    more is appended or sent, and the status says why.
 * 4. Own writes are readable at once: when `append` resolves, the cache holds every entity it
 *    wrote to, loaded and folded with the new entries, so `get()` shows them (a load that
 *    fails leaves the placeholder; the entry stays committed).
 * 5. `history` never answers a gap as if it were the whole ledger: what is on the server only
 *    is said (`complete: false`, `from`), and what the operator dropped is named (`dropped`).
 */
import type { Data, Entry, Schema } from '@ledgerline/core'
import { createClientId, foldKey } from '@ledgerline/core'
import { BOOTSTRAP_FOLD_KEYS_MAX } from '@ledgerline/protocol'
import { createAppender, entryBytes } from './append.ts'
import type {
  AppendDraft,
  AppendOptions,
  Client,
  ClientOptions,
  History,
  LedgerItem,
} from './client-api.ts'
import { heldHistory } from './bases.ts'
import { horizonRules } from './horizon.ts'
import type { ClientStore, ClientStoreInit } from './client-store.ts'
import { createCorrectionsFeed } from './corrections-feed.ts'
import { createEntityCache } from './entity-cache.ts'
import { sortPending, typeKey } from './entity-fold.ts'
import { resolveEnvironment } from './environment.ts'
import { ClientError } from './errors.ts'
import { createIdbClientStore } from './idb-client-store.ts'
import { REISSUE_HOPS_MAX, SYNCED_RECHECK_MS_MAX, SYNCED_TIMEOUT_MS_DEFAULT } from './limits.ts'
import { createStatus } from './status.ts'
import type { Sync } from './sync-api.ts'
import { createSync } from './sync.ts'
import type { TabMessage, Tabs } from './tabs.ts'
import { createTabs } from './tabs.ts'
import { createTokenSource, tenantFromToken } from './token.ts'
import { createQueries } from './queries.ts'
import { createRelayList } from './relay-list.ts'
import { createStoreLayer, storeTabMessages } from './store-layer.ts'
import type { Scheduler } from './scheduler.ts'

export type * from './client-api.ts'
export { tenantFromToken }

/**
 * Creates a client. It opens the database and (in the leader tab) connects in the background;
 * every method waits for the database as needed.
 *
 * @example
 * const client = createClient({ url: 'wss://relay.example.com/sync', token: getToken,
 *   schema, dbName: 'ledgerline:acme:till-1' })
 * await client.append('stock/s7:espresso-1kg', 'stock.moved', { qty: -1 })
 */
export function createClient<Sch extends Schema>(options: ClientOptions<Sch>): Client<Sch> {
  // A bad `url` (an empty list, a relay named twice) fails here, not in the background; so
  // does a bad horizon.
  createRelayList(options.url)
  const horizon = horizonRules(options.horizon ?? [])
  const foldKeys = [...options.schema.types.values()]
    .map((t) => foldKey(t))
    .slice(0, BOOTSTRAP_FOLD_KEYS_MAX)
  const env = resolveEnvironment(options)
  const { now, scheduler } = env
  const token = createTokenSource(options.token)
  let tenant: string | undefined = options.tenant
  let sync: Sync | undefined
  let tabs: Tabs | undefined

  /** Other devices' entries the store hub holds (the leader's, or a copy of it). */
  const storeLayer = createStoreLayer()
  const clientStore: Promise<ClientStore> = open()
  const status = createStatus({
    now,
    scheduler,
    clientStore,
    isLeader: () => tabs?.isLeader() ?? false,
  })
  const cache = createEntityCache({
    schema: options.schema,
    clientStore,
    onWarning: options.onWarning,
    storeOf: (entity) => storeLayer.entries(entity),
  })
  const feed = createCorrectionsFeed(clientStore)
  const queries = createQueries({
    schema: options.schema,
    clientStore,
    listen: (pattern, onChange) => cache.subscribe(pattern, onChange),
  })
  const appender = createAppender({
    clientStore,
    typeOf: cache.typeOf,
    tenant: async () => (tenant ??= tenantFromToken(await token.get())),
    now,
  })
  // Reconnect at once when the network is back instead of waiting out the backoff, and stop
  // trusting a socket the moment the network is gone.
  const unlistenNetwork =
    env.network?.listen(
      () => sync?.reconnect(),
      () => sync?.offline(),
    ) ?? (() => {})
  // Callers see the failure through their own calls; keep it from being an unhandled rejection.
  clientStore.catch((error: unknown) => {
    status.setConnection({ lastError: { kind: 'storage', message: String(error) } })
  })

  async function open(): Promise<ClientStore> {
    const init: ClientStoreInit = {
      dbName: options.dbName,
      durability: options.durability ?? 'strict',
      scheduler,
      schema: options.schema,
      onClosed: (reason) => {
        if (!status.close(reason)) return
        unlistenNetwork()
        sync?.stop()
        tabs?.close()
        status.publish()
      },
    }
    const store = await (options.clientStore ?? openIndexedDb)(init)
    // The tenant lives in the database's own meta record (the option, or the first welcome).
    await store.init(() => createClientId(env.randomBytes), now(), options.tenant)
    // Kept views follow the schema: a changed index or fold version rebuilds them here, before
    // any query or append can read or write them.
    await store.prepareViews()
    tenant ??= await store.tenant()
    status.setCounters(await store.counters())
    tabs = createTabs({
      dbName: options.dbName,
      locks: env.locks,
      BroadcastChannel: env.BroadcastChannel,
      defer: (fn) => scheduler.defer(fn),
      onLeader: () => startSync(store),
      onMessage,
    })
    // The store layer lives in the leader's memory: ask for it (only the leader answers).
    tabs.post({ t: 'store_ask' })
    if (options.persist !== false) void askPersist()
    return store
  }

  function openIndexedDb(init: ClientStoreInit): Promise<ClientStore> {
    if (env.indexedDB === undefined || env.IDBKeyRange === undefined) {
      return Promise.reject(
        new ClientError(
          'storage',
          'no IndexedDB here: pass options.indexedDB and options.IDBKeyRange',
        ),
      )
    }
    return createIdbClientStore({ ...init, indexedDB: env.indexedDB, IDBKeyRange: env.IDBKeyRange })
  }

  function startSync(store: ClientStore): void {
    if (status.closed() !== null || env.WebSocket === undefined) return
    sync = createSync({
      url: options.url,
      WebSocket: env.WebSocket,
      token: token.get,
      invalidateToken: token.invalidate,
      renewable: token.renewable,
      scope: options.scope,
      clientStore: store,
      now,
      random: env.random,
      newClientId: () => createClientId(env.randomBytes),
      bytesOf: entryBytes,
      scheduler,
      bugs: options.bugs,
      storeLayer,
      bootstrap: { foldKeys, whole: () => horizon(now()) },
      events: {
        state(s) {
          if (s.tenant !== null) tenant ??= s.tenant
          const { online, syncing, live, lastServerContactAt, heldReasons, paused } = s
          const { relay, headOffice } = s
          status.setConnection({
            online,
            syncing,
            live,
            lastServerContactAt,
            lastError: s.lastError,
            heldReasons,
            paused,
            relay,
            headOffice,
          })
          status.wake()
          tabs?.post({
            t: 'status',
            online,
            syncing,
            live,
            lastServerContactAt,
            heldReasons,
            paused,
            relay,
            headOffice,
          })
        },
        store(entities) {
          for (const entity of entities) cache.storeChanged(entity)
          const lists = [...entities].map((e) => [e, storeLayer.entries(e)] as const)
          for (const m of storeTabMessages(lists, false)) tabs?.post(m)
        },
        acked(applied) {
          // Corrections come as references: their bodies, and the feed, come with the pages.
          // An entry kept as acked is pending as before: its entity is not read back for it.
          for (const entity of applied.changed) cache.changed(entity)
          tellTabs([...applied.changed], false, 0)
          status.scheduleCounters()
          status.wake()
        },
        page(applied) {
          // Entries that follow what the cache folded are folded in memory, not read back.
          cache.stored(applied.entities, applied.chunks, new Set(applied.ownReceived))
          feed.tell(applied.corrections)
          if (applied.entities.size > 0 || applied.corrections.length > 0)
            tellTabs([...applied.entities], false, applied.corrections.length)
          // Counters move only with own entries (acked ones received back) or corrections; a
          // catch-up page of others' entries costs no extra transaction.
          if (applied.own > 0 || applied.corrections.length > 0) {
            status.scheduleCounters()
            status.wake()
          }
        },
        reissued() {
          appender.resetClock()
          status.scheduleCounters()
          for (const entity of cache.entities()) cache.changed(entity)
          tellTabs(cache.entities(), true, 0)
        },
        reset() {
          cache.reset()
          queries.refreshAll()
          status.scheduleCounters()
          tabs?.post({ t: 'changed', entities: [], outbox: true, corrections: 0, reset: true })
        },
      },
    })
    sync.start()
    status.publish()
  }

  async function askPersist(): Promise<void> {
    const storage = env.storage
    if (storage === null) return
    let persisted: boolean
    try {
      persisted = (await storage.persisted?.()) === true ? true : await storage.persist()
    } catch {
      persisted = false
    }
    status.setPersisted(persisted)
  }

  function onMessage(m: TabMessage): void {
    switch (m.t) {
      case 'changed':
        if (m.reset === true) {
          cache.reset()
          queries.refreshAll()
        }
        for (const entity of m.entities) cache.changed(entity)
        if (m.outbox) sync?.kick()
        if (m.corrections > 0) void feed.fetchNew()
        status.scheduleCounters()
        status.wake()
        return
      case 'status': {
        if (tabs?.isLeader() === true) return
        const { online, syncing, live, lastServerContactAt } = m
        status.setConnection({
          online,
          syncing,
          live,
          lastServerContactAt,
          heldReasons: m.heldReasons ?? [],
          paused: m.paused ?? false,
          relay: m.relay ?? null,
          headOffice: m.headOffice ?? 'unknown',
        })
        status.wake()
        return
      }
      case 'store': {
        if (tabs?.isLeader() === true) return
        const changed = new Set(m.whole === true ? storeLayer.clear() : [])
        for (const [entity, entries] of m.entities) {
          for (const e of storeLayer.replace(entity, entries)) changed.add(e)
        }
        for (const entity of changed) cache.storeChanged(entity)
        return
      }
      case 'store_ask':
        if (tabs?.isLeader() !== true) return
        for (const message of storeTabMessages(storeLayer.all(), true)) tabs.post(message)
        return
    }
  }

  function tellTabs(entities: string[], outbox: boolean, corrections: number): void {
    tabs?.post({ t: 'changed', entities, outbox, corrections })
  }

  function closedError(): ClientError {
    return new ClientError('closed', `client is closed (${String(status.closed())})`)
  }

  async function appendDrafts(drafts: readonly AppendDraft[]): Promise<readonly Entry[]> {
    if (status.closed() !== null) throw closedError()
    if (drafts.length === 0) return []
    const entities = [...new Set(drafts.map((d) => d.entity))]
    // Invariant 4: the entities nothing has loaded are read in the append's own write.
    const wanted = entities
      .filter((entity) => cache.needsLoad(entity))
      .map((entity) => ({ entity, typeKey: typeKey(cache.typeOf(entity)) }))
    const { appended, at } = await appender.append(drafts, wanted)
    const { entries, meta, wasEmpty, loads } = appended
    status.appended(meta, at, wasEmpty)
    const primed = new Set<string>()
    for (const [entity, load] of loads) if (cache.prime(entity, load)) primed.add(entity)
    cache.addPending(primed.size === 0 ? entries : entries.filter((e) => !primed.has(e.entity)))
    tellTabs(entities, true, 0)
    sync?.kick()
    // Invariant 4: read your own write. A loaded entity got the entries folded in above, a
    // primed one read them in the append; any other (its load began meanwhile) is loaded now.
    const left = entities.filter((entity) => !primed.has(entity) && !cache.get(entity).loaded)
    if (left.length > 0)
      await Promise.all(left.map((entity) => cache.load(entity).catch(() => undefined)))
    return entries
  }

  const append = async (
    entity: string,
    kind: string,
    data: Data,
    appendOptions: AppendOptions = {},
  ): Promise<Entry> => {
    const [entry] = await appendDrafts([{ entity, kind, data, ...appendOptions }])
    return entry as Entry
  }

  const client: Client<Sch> = {
    append: append as Client<Sch>['append'],
    appendMany: (drafts) => appendDrafts(drafts as readonly AppendDraft[]),
    get: (entity) => cache.get(entity),
    load: (entity) => cache.load(entity),
    subscribe: (target, onChange) => cache.subscribe(target, onChange),
    query: (pattern, queryOptions) => queries.query(pattern, queryOptions),
    subscribeQuery: (pattern, queryOptions, onResult) =>
      queries.subscribeQuery(pattern, queryOptions, onResult),
    status: () => status.status(),
    onStatus: (onChange) => status.onStatus(onChange),
    corrections: (limit = 100) => feed.list(limit),
    onCorrection: (onChange) => feed.onCorrection(onChange),

    async markCorrectionsSeen() {
      const marked = await feed.markSeen()
      await status.refreshCounters()
      tellTabs([], false, 0)
      return marked
    },

    async outcome(entryId, outcomeOptions = {}) {
      const store = await clientStore
      const deadline = now() + (outcomeOptions.waitMs ?? 0)
      for (;;) {
        let result = await store.outcome(entryId)
        for (let hops = 0; result._tag === 'reissued' && hops < REISSUE_HOPS_MAX; hops++)
          result = await store.outcome(result.as)
        if (result._tag !== 'outbox' || now() >= deadline || status.closed() !== null) return result
        await status.waitForChange(deadline - now())
      }
    },

    async entries(entity): Promise<readonly LedgerItem[]> {
      return (await client.history(entity)).items
    },

    async history(entity, historyOptions = {}): Promise<History> {
      const store = await clientStore
      cache.typeOf(entity) // an unknown type or a bad name fails here, as in `entries`
      let stored = await store.loadHistory(entity)
      let held = heldHistory(stored.base, stored.stored)
      if (historyOptions.fetch === true && !held.complete && held.dropped === undefined) {
        if (status.closed() !== null) throw closedError()
        if (sync === undefined) {
          throw new ClientError(
            'offline',
            `history of ${entity} is on the server only, and this tab does not hold the connection (another tab leads): ask in that tab, or again later`,
          )
        }
        // Invariant 5: entries below the first held version come from the relay.
        await sync.fetchHistory(entity, held.from)
        stored = await store.loadHistory(entity)
        held = heldHistory(stored.base, stored.stored)
      }
      return {
        entity,
        items: [
          ...held.entries.map((entry) => ({ _tag: 'confirmed' as const, entry })),
          ...sortPending(stored.pending).map((entry) => ({
            _tag: 'pending' as const,
            entry,
            acked: stored.acked.has(entry.id),
          })),
        ],
        complete: held.complete,
        from: held.from,
        dropped: held.dropped,
      }
    },

    async synced(syncedOptions = {}) {
      const deadline = now() + (syncedOptions.timeoutMs ?? SYNCED_TIMEOUT_MS_DEFAULT)
      // Every wait is bounded by the deadline: a client store slow to answer (its open blocked,
      // or a counters read queued behind a large catch-up's page writes) never stretches it.
      if (await within(scheduler, clientStore, deadline - now())) await clientStore
      for (;;) {
        const read = await within(scheduler, status.refreshCounters(), deadline - now())
        const c = status.counters()
        const s = status.status()
        if (
          read &&
          c !== undefined &&
          s.online &&
          s.live &&
          c.outboxEntries === 0 &&
          c.ackedWaiting === 0 &&
          !sync?.busy()
        ) {
          return { _tag: 'synced' }
        }
        if (status.closed() !== null) throw closedError()
        if (now() >= deadline) return { _tag: 'timeout', status: s }
        await status.waitForChange(Math.min(SYNCED_RECHECK_MS_MAX, Math.max(1, deadline - now())))
      }
    },

    reconnect() {
      if (status.closed() === null) sync?.reconnect()
    },

    disconnect() {
      if (status.closed() === null) sync?.disconnect()
    },

    async close() {
      status.close('closed')
      unlistenNetwork()
      sync?.stop()
      tabs?.close()
      try {
        const store = await clientStore
        await sync?.idle()
        await store.close()
      } catch {
        // Never opened: nothing to close.
      }
      status.publish()
      status.wake()
    },
  }
  return client
}

/** True once `work` settled (fulfilled or not), false when `ms` passed first. */
function within(scheduler: Scheduler, work: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = scheduler.setTimeout(() => resolve(false), Math.max(1, ms))
    const settled = () => {
      scheduler.clearTimeout(timer)
      resolve(true)
    }
    work.then(settled, settled)
  })
}

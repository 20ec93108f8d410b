/**
 * The entity cache and folding: an in-memory `EntityState` per entity the app reads, folded on
 * demand from the client store (a snapshot, then the confirmed entries after it, then own
 * pending entries), kept up to date as entries arrive, and the listeners of `subscribe`.
 *
 *   get(entity) ─► cached? ─no─► placeholder (loaded: false) + load
 *   changed(entity) ─► cached? ─► refold from what is cached: only entries after it are read
 *   addPending(entries) ─► this tab appended: fold them onto the view without a read
 *
 * Terms: the *base* of a cached entity is its confirmed state, version and last chunk; a
 * *refold* reads only what the client store holds after the base; a *placeholder* is the state
 * handed out before the first load (the entity type's initial state, `loaded: false`).
 *
 * Invariants:
 * 1. `get(entity)` returns the same object until the entity's view changes (React's
 *    `useSyncExternalStore` compares with `Object.is`).
 * 2. A view is always folded from confirmed state, then the store layer (other devices'
 *    entries a store hub holds, in hub order), then pending entries in clientSeq order;
 *    confirmed state only moves forward by dense versions: a gap between the base and what is
 *    stored folds the entity from version 1 again (or from the relay snapshot a bootstrap kept,
 *    which stands for versions 1 to its own).
 * 3. One load per entity runs at a time; a change during a load loads again after it.
 * 4. Start-up reads no ledger; a snapshot is written after SNAPSHOT_ENTRIES_MIN entries folded
 *    since the last, so a later load starts from it. Failing to write one loses nothing.
 *    Snapshots are keyed by the entity type's fold `version` (`snapshot-keys.ts`); one whose
 *    `reduce` source differs while the version does not is still used, and `onWarning` is told
 *    once per entity type ("reduce changed but version did not").
 * 5. At most CACHE_ENTITIES_MAX entities are cached; the least recently read without a
 *    listener go first.
 * 6. After `reset()` (confirmed history was dropped: another server log) no cached base is
 *    used again: every entity is folded from what the client store holds now.
 * 7. This tab's appends show at once and need no read of their own: a loaded entity folds them
 *    onto its view, also while a load is in flight (that load may have read the store before
 *    the append committed, so what it answers is joined with the entries appended meanwhile,
 *    each once: an id it already holds, pending or confirmed, is not added again); an entity
 *    not loaded adopts the load the append read in its own write (`prime`).
 * 8. A stored page needs no read either: a cached entity, loaded and with no load in flight,
 *    whose new entries follow its version densely folds them in memory and drops the pending
 *    entries received back, as a load of the store would then answer; any other loads again.
 *
 * How a view is composed, pending entries sorted and snapshots written: `entity-fold.ts` (its
 * invariants 1 to 3 are the parts of invariants 2, 4 and 7 it implements).
 */
import type { Entry, Schema, StoredEntry } from '@ledgerline/core'
import { fold, isEntityName, checkPattern, matchesPattern } from '@ledgerline/core'
import type { ClientWarning, EntityState } from './client-api.ts'
import type { ChunkRecord, ClientStore, EntityBase, EntityLoad } from './client-store.ts'
import { ClientError, fromLedgerError } from './errors.ts'
import {
  composeView,
  createSnapshotWriter,
  sortPending,
  typeKey,
  withRecent,
} from './entity-fold.ts'
import { CACHE_ENTITIES_MAX } from './limits.ts'
import { reduceSource } from './snapshot-keys.ts'

export interface EntityCacheOptions {
  readonly schema: Schema
  readonly clientStore: Promise<Pick<ClientStore, 'loadEntity' | 'putSnapshot'>>
  /** Default CACHE_ENTITIES_MAX. */
  readonly entitiesMax?: number | undefined
  /** Development warnings (invariant 4); default: none. */
  readonly onWarning?: ((warning: ClientWarning) => void) | undefined
  /** The store layer of `entity` (`store-layer.ts`), in hub order; default: none. */
  readonly storeOf?: ((entity: string) => readonly Entry[]) | undefined
}

export interface EntityCache {
  get<S>(entity: string): EntityState<S>
  load<S>(entity: string): Promise<EntityState<S>>
  /** `target` is an entity or a pattern; `onChange(entity)` after each change. */
  subscribe(target: string, onChange: (entity: string) => void): () => void
  /** Something about `entity` changed in the client store: refold it if cached, tell listeners. */
  changed(entity: string): void
  /** This tab appended `entries`: show them as pending at once, without reading them back. */
  addPending(entries: readonly Entry[]): void
  /** Not cached, or a placeholder no load is reading yet: an append may read its load. */
  needsLoad(entity: string): boolean
  /**
   * Adopts `load`, read inside the append's write (invariant 7), for an entity that still
   * `needsLoad`; false when it no longer does or the load does not fold (then load it).
   */
  prime(entity: string, load: EntityLoad): boolean
  /**
   * A page write stored `chunks` (with entries of `entities`) and deleted the acked records of
   * `received` (own entries back): fold them onto each cached entity they follow (invariant 8),
   * else load it again.
   */
  stored(
    entities: Iterable<string>,
    chunks: readonly Pick<ChunkRecord, 'n' | 'entries'>[],
    received: ReadonlySet<string>,
  ): void
  /** The store layer of `entity` changed: fold its view again from what is cached (no read). */
  storeChanged(entity: string): void
  /** Confirmed history was dropped (invariant 6): fold every cached entity again. */
  reset(): void
  /** The cached entities. */
  entities(): string[]
  /** The entity type of `entity`, or a `ClientError` (`invalid`, `unknown_type`). */
  typeOf(entity: string): ReturnType<Schema['typeOf']>
}

interface CacheItem {
  current: EntityState
  confirmed: unknown
  version: number
  lastChunk: number | undefined
  foldedSinceSnapshot: number
  loading: Promise<void> | undefined
  again: boolean
  /** Fold from the client store's history alone, and show the result (invariant 6). */
  rebase: boolean
  /** Entries this tab appended while a load was in flight (invariant 7). */
  recent: Entry[]
}

/**
 * @example
 * const cache = createEntityCache({ schema, clientStore })
 * cache.subscribe('stock/s1:espresso', () => render(cache.get('stock/s1:espresso').view))
 */
export function createEntityCache(options: EntityCacheOptions): EntityCache {
  const { schema } = options
  const noStore: readonly Entry[] = []
  const storeOf = options.storeOf ?? (() => noStore)
  const entitiesMax = options.entitiesMax ?? CACHE_ENTITIES_MAX
  const cache = new Map<string, CacheItem>()
  const { maybeSnapshot, warnStale } = createSnapshotWriter(options)
  const entityListeners = new Map<string, Set<(entity: string) => void>>()
  const patternListeners = new Map<string, Set<(entity: string) => void>>()

  function typeOf(entity: string) {
    try {
      return schema.typeOf(entity)
    } catch (error) {
      throw fromLedgerError(error)
    }
  }

  function notify(entity: string): void {
    for (const l of entityListeners.get(entity) ?? []) l(entity)
    for (const [pattern, set] of patternListeners) {
      if (matchesPattern(pattern, entity)) for (const l of set) l(entity)
    }
  }

  function changed(entity: string): void {
    if (cache.has(entity)) void refresh(entity)
    else notify(entity)
  }

  function placeholder(entity: string): CacheItem {
    const type = typeOf(entity)
    const item: CacheItem = {
      current: {
        entity,
        view: type.initial,
        confirmed: type.initial,
        version: 0,
        pending: [],
        store: noStore,
        loaded: false,
      },
      confirmed: type.initial,
      version: 0,
      lastChunk: undefined,
      foldedSinceSnapshot: 0,
      loading: undefined,
      again: false,
      rebase: false,
      recent: [],
    }
    cache.set(entity, item)
    evict()
    return item
  }

  function evict(): void {
    if (cache.size <= entitiesMax) return
    for (const entity of cache.keys()) {
      if (cache.size <= entitiesMax) return
      if (!entityListeners.has(entity)) cache.delete(entity)
    }
  }

  /** Invariant 3: one load at a time per entity, again while changes arrived during it. */
  function refresh(entity: string): Promise<void> {
    const item = cache.get(entity)
    if (item === undefined) return Promise.resolve()
    if (item.loading !== undefined) {
      item.again = true
      return Promise.resolve()
    }
    // The body always yields first (it awaits the client store), so `loading` is set before
    // its `finally` can clear it.
    const loading = (async () => {
      try {
        do {
          item.again = false
          await loadInto(entity, item)
        } while (item.again)
      } catch {
        // Closed or failing storage: keep the last state; status tells what went wrong.
      } finally {
        item.loading = undefined
      }
    })()
    item.loading = loading
    return loading
  }

  async function loadInto(entity: string, item: CacheItem): Promise<void> {
    const clientStore = await options.clientStore
    const type = typeOf(entity)
    const key = typeKey(type)
    const rebase = item.rebase
    item.rebase = false
    // Invariant 7: entries appended from here on may be missing from what this load reads.
    item.recent = []
    const base =
      item.current.loaded && item.lastChunk !== undefined && !rebase
        ? { through: item.lastChunk, version: item.version }
        : undefined
    const load = await clientStore.loadEntity(
      entity,
      key,
      base === undefined ? undefined : { ...base, state: item.confirmed },
    )
    try {
      if (adopt(entity, item, load, base, rebase, false)) return
      // Invariant 2: a gap between what is cached (or snapshotted) and what is stored.
      adopt(entity, item, await clientStore.loadEntity(entity, key, null), base, rebase, true)
    } finally {
      item.recent = [] // joined into the view above, or the next load reads them
    }
  }

  /**
   * Folds `load` into `item` and shows it when it changed; false (nothing changed) when the
   * stored entries do not follow the base or snapshot and `scratch` (from version 1) is not set.
   */
  function adopt(
    entity: string,
    item: CacheItem,
    load: EntityLoad,
    base: Omit<EntityBase, 'state'> | undefined,
    rebase: boolean,
    scratch: boolean,
  ): boolean {
    const type = typeOf(entity)
    const source = reduceSource(type.type, type.reduce)
    if (load.snapshotSource !== undefined && load.snapshotSource !== source) warnStale(type)
    // A load from version 1 may start from a relay snapshot (a base: `bases.ts`); a load after
    // the cached base may start from a newer base than it (invariant 2: still dense).
    const cached = !scratch && base !== undefined && (load.snapshot?.version ?? 0) <= base.version
    let state: unknown = cached ? item.confirmed : (load.snapshot?.state ?? type.initial)
    let version = cached ? item.version : (load.snapshot?.version ?? 0)
    if (
      !scratch &&
      load.stored.length > 0 &&
      (load.stored[0] as StoredEntry).version !== version + 1
    )
      return false
    for (const e of load.stored) {
      if (e.version !== version + 1)
        throw new ClientError('storage', `ledger of ${entity} has a gap at version ${version + 1}`)
      state = type.reduce(state, e)
      version = e.version
    }
    const lastChunk = rebase ? load.lastChunk : (load.lastChunk ?? item.lastChunk)
    const foldedSinceSnapshot =
      (base !== undefined ? item.foldedSinceSnapshot : 0) + load.stored.length
    const pending = sortPending(withRecent(load, item.recent))
    const prev = item.current
    const samePending =
      prev.pending.length === pending.length &&
      prev.pending.every((p, i) => p.id === (pending[i] as Entry).id)
    const store = storeOf(entity)
    item.confirmed = state
    item.version = version
    item.lastChunk = lastChunk
    item.foldedSinceSnapshot = foldedSinceSnapshot
    if (!prev.loaded || rebase || version !== prev.version || !samePending || store !== prev.store)
      show(entity, item, type, pending)
    maybeSnapshot(entity, item, type, source)
    return true
  }

  /**
   * Shows `item`'s confirmed state with the store layer and `pending` folded on (invariant 2),
   * and tells the listeners.
   */
  function show(
    entity: string,
    item: CacheItem,
    type: ReturnType<Schema['typeOf']>,
    pending: Entry[],
  ): void {
    const { confirmed, version } = item
    const store = storeOf(entity)
    const view = composeView(type, confirmed, store, pending)
    item.current = { entity, view, confirmed, version, pending, store, loaded: true }
    notify(entity)
  }

  /** Invariant 8: false when `entries` do not follow what `item` folded (then load it). */
  function foldStored(
    entity: string,
    item: CacheItem,
    entries: readonly StoredEntry[],
    last: number,
    received: ReadonlySet<string>,
  ): boolean {
    const type = typeOf(entity)
    const sorted = [...entries].sort((a, b) => a.version - b.version)
    let state = item.confirmed
    let version = item.version
    for (const e of sorted) {
      if (e.version !== version + 1) return false
      version = e.version
    }
    for (const e of sorted) state = type.reduce(state, e)
    const pending = item.current.pending.filter((e) => !received.has(e.id))
    item.confirmed = state
    item.version = version
    item.lastChunk = Math.max(item.lastChunk ?? 0, last)
    item.foldedSinceSnapshot += sorted.length
    show(entity, item, type, pending)
    maybeSnapshot(entity, item, type, reduceSource(type.type, type.reduce))
    return true
  }

  function needsLoad(entity: string): boolean {
    const item = cache.get(entity)
    return item === undefined || (!item.current.loaded && item.loading === undefined)
  }

  function get<S>(entity: string): EntityState<S> {
    let item = cache.get(entity)
    if (item === undefined) {
      item = placeholder(entity)
      void refresh(entity)
    } else {
      // Most recently used last, so eviction takes the least recently used first.
      cache.delete(entity)
      cache.set(entity, item)
    }
    return item.current as EntityState<S>
  }

  return {
    get,
    async load<S>(entity: string): Promise<EntityState<S>> {
      const item = cache.get(entity) ?? placeholder(entity)
      if (!item.current.loaded || item.loading !== undefined) {
        await refresh(entity)
        while (item.loading !== undefined) await item.loading
      }
      if (!item.current.loaded) await loadInto(entity, item)
      return item.current as EntityState<S>
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
      if (isEntity) get(target)
      return () => {
        set.delete(onChange)
        if (set.size === 0) map.delete(target)
      }
    },
    changed,
    addPending(entries) {
      const byEntity = new Map<string, Entry[]>()
      for (const e of entries) {
        const list = byEntity.get(e.entity)
        if (list === undefined) byEntity.set(e.entity, [e])
        else list.push(e)
      }
      for (const [entity, list] of byEntity) {
        const item = cache.get(entity)
        if (item !== undefined && item.current.loaded) {
          // Invariant 7: a load in flight joins these with what it read.
          if (item.loading !== undefined) item.recent.push(...list)
          const type = typeOf(entity)
          const pending = sortPending([...item.current.pending, ...list])
          item.current = { ...item.current, pending, view: fold(type, item.current.view, list) }
          notify(entity)
        } else {
          changed(entity)
        }
      }
    },
    needsLoad,
    stored(entities, chunks, received) {
      const byEntity = new Map<string, { entries: StoredEntry[]; last: number }>()
      for (const chunk of chunks) {
        for (const e of chunk.entries) {
          const found = byEntity.get(e.entity)
          if (found === undefined) byEntity.set(e.entity, { entries: [e], last: chunk.n })
          else {
            found.entries.push(e)
            found.last = Math.max(found.last, chunk.n)
          }
        }
      }
      for (const entity of entities) {
        const item = cache.get(entity)
        const page = byEntity.get(entity)
        const folded =
          item !== undefined &&
          page !== undefined &&
          item.current.loaded &&
          item.loading === undefined &&
          !item.rebase &&
          foldStored(entity, item, page.entries, page.last, received)
        if (!folded) changed(entity)
      }
    },
    prime(entity, load) {
      if (!needsLoad(entity)) return false
      const item = cache.get(entity) ?? placeholder(entity)
      const rebase = item.rebase
      item.rebase = false
      try {
        return adopt(entity, item, load, undefined, rebase, false)
      } catch {
        return false
      }
    },
    storeChanged(entity) {
      const item = cache.get(entity)
      if (item === undefined || !item.current.loaded || item.loading !== undefined) {
        changed(entity)
        return
      }
      const store = storeOf(entity)
      if (store === item.current.store) return
      const type = typeOf(entity)
      item.current = {
        ...item.current,
        store,
        view: composeView(type, item.confirmed, store, item.current.pending),
      }
      notify(entity)
    },
    reset() {
      for (const [entity, item] of cache) {
        // Invariant 6: no base survives; the next load reads from version 1 and is shown.
        item.rebase = true
        void refresh(entity)
      }
    },
    entities: () => [...cache.keys()],
    typeOf,
  }
}

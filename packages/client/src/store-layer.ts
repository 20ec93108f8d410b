/**
 * The store layer: other devices' entries a store hub holds that head office has not confirmed,
 * per entity in the hub's order, kept in memory (the hub sends it again on every subscribe).
 * The sync loop fills it from `store` messages in the leader tab; other tabs hold a copy the
 * leader keeps up to date over the BroadcastChannel (`replace`).
 *
 *   store {reset}  ─► the layer starts again from the message's entries
 *   store {entries, removed} ─► add after what is held / removed ids are *leaving*
 *   entries page stored ─► confirmed ids leave the layer (head office's copy is `confirmed`)
 *   STORE_LEAVING_MS after a removal ─► `expire`: leaving ids go (refused, or never paged)
 *   welcome from head office ─► cleared (no hub between: nothing is provisional)
 *
 * Terms: *own* entries are those of this database's clientIds (they are pending, not store).
 *
 * Invariants:
 * 1. Own entries never enter the layer; an id is held at most once.
 * 2. At most STORE_LAYER_ENTRIES_MAX entries are held; past it the oldest go first (the layer
 *    only shows, it never keeps anything: every entry of it is in some device's outbox).
 * 3. Each call answers the entities whose layer changed, so only those are folded again; an
 *    entity's list is a new array when it changed and the same one otherwise.
 * 4. An entry the hub removed stays until its page is stored or STORE_LEAVING_MS passed,
 *    whichever comes first: the hub may tell the removal before the page that confirms it, and
 *    a view must neither miss the entry nor count it twice in between.
 */
import type { Entry } from '@ledgerline/core'
import type { StoreMessage } from '@ledgerline/protocol'
import { STORE_LAYER_ENTRIES_MAX, STORE_LEAVING_MS, TAB_STORE_ENTRIES_MAX } from './limits.ts'
import type { TabMessage } from './tabs.ts'

export interface StoreLayer {
  /** The entity's store entries in hub order (the same array until it changes). */
  entries(entity: string): readonly Entry[]
  /** Applies a `store` message at `now`; `own` are this database's clientIds. */
  apply(message: StoreMessage, own: readonly string[], now?: number): ReadonlySet<string>
  /** Leaving entries removed STORE_LEAVING_MS before `now` go (invariant 4). */
  expire(now: number): ReadonlySet<string>
  /** When the next leaving entry is due to go; undefined when none is leaving. */
  nextExpiry(): number | undefined
  /** Ids head office confirmed (they came in a page): they leave the layer. */
  confirmed(ids: Iterable<string>): ReadonlySet<string>
  /** Replaces one entity's list (another tab's layer, as its leader sent it). */
  replace(entity: string, entries: readonly Entry[]): ReadonlySet<string>
  clear(): ReadonlySet<string>
  /** Every entity with store entries, with them. */
  all(): [string, readonly Entry[]][]
  size(): number
}

/**
 * @example
 * const layer = createStoreLayer()
 * const changed = layer.apply(message, meta.clientIds)
 */
export function createStoreLayer(entriesMax = STORE_LAYER_ENTRIES_MAX): StoreLayer {
  const byEntity = new Map<string, readonly Entry[]>()
  /** Id → entity, in arrival order (for invariants 1 and 2). */
  const held = new Map<string, string>()
  /** Ids the hub removed, with when they go (invariant 4), in removal order. */
  const leaving = new Map<string, number>()
  const none: readonly Entry[] = []

  function remove(ids: Iterable<string>, changed: Set<string>): void {
    const gone = new Map<string, Set<string>>()
    for (const id of ids) {
      const entity = held.get(id)
      if (entity === undefined) continue
      held.delete(id)
      leaving.delete(id)
      let set = gone.get(entity)
      if (set === undefined) gone.set(entity, (set = new Set()))
      set.add(id)
    }
    for (const [entity, set] of gone) {
      const left = (byEntity.get(entity) ?? none).filter((e) => !set.has(e.id))
      if (left.length === 0) byEntity.delete(entity)
      else byEntity.set(entity, left)
      changed.add(entity)
    }
  }

  function add(entries: readonly Entry[], own: ReadonlySet<string>, changed: Set<string>): void {
    const added = new Map<string, Entry[]>()
    for (const e of entries) {
      if (own.has(e.clientId) || held.has(e.id)) continue
      held.set(e.id, e.entity)
      let list = added.get(e.entity)
      if (list === undefined) added.set(e.entity, (list = []))
      list.push(e)
    }
    for (const [entity, list] of added) {
      byEntity.set(entity, [...(byEntity.get(entity) ?? none), ...list])
      changed.add(entity)
    }
    // Invariant 2: the oldest go first.
    if (held.size > entriesMax) {
      const over = held.size - entriesMax
      remove([...held.keys()].slice(0, over), changed)
    }
  }

  function clear(): ReadonlySet<string> {
    const changed = new Set(byEntity.keys())
    byEntity.clear()
    held.clear()
    leaving.clear()
    return changed
  }

  return {
    entries: (entity) => byEntity.get(entity) ?? none,
    apply(message, own, now = 0) {
      const changed = message.reset ? new Set(clear()) : new Set<string>()
      for (const id of message.removed) {
        if (held.has(id) && !leaving.has(id)) leaving.set(id, now + STORE_LEAVING_MS)
      }
      add(message.entries, new Set(own), changed)
      return changed
    },
    expire(now) {
      const changed = new Set<string>()
      const due: string[] = []
      for (const [id, at] of leaving) if (at <= now) due.push(id)
      remove(due, changed)
      return changed
    },
    nextExpiry() {
      let first: number | undefined
      for (const at of leaving.values()) first = first === undefined ? at : Math.min(first, at)
      return first
    },
    confirmed(ids) {
      const changed = new Set<string>()
      remove(ids, changed)
      return changed
    },
    replace(entity, entries) {
      const changed = new Set<string>([entity])
      remove(
        (byEntity.get(entity) ?? none).map((e) => e.id),
        changed,
      )
      add(
        entries.filter((e) => e.entity === entity),
        new Set(),
        changed,
      )
      return changed
    },
    clear,
    all: () => [...byEntity],
    size: () => held.size,
  }
}

/**
 * The tab messages that carry `lists` to the other tabs, at most `entriesMax` entries each (an
 * entity's list longer than that goes as its newest `entriesMax`); `whole`: the lists are the
 * whole layer (the first message says so, and the tab drops what is not named).
 *
 * @example
 * for (const m of storeTabMessages(layer.all(), true)) tabs.post(m)
 */
export function storeTabMessages(
  lists: readonly (readonly [string, readonly Entry[]])[],
  whole: boolean,
  entriesMax = TAB_STORE_ENTRIES_MAX,
): TabMessage[] {
  const messages: TabMessage[] = []
  let batch: (readonly [string, readonly Entry[]])[] = []
  let count = 0
  const flush = () => {
    messages.push({ t: 'store', entities: batch, whole: whole && messages.length === 0 })
    batch = []
    count = 0
  }
  for (const [entity, entries] of lists) {
    const list = entries.length > entriesMax ? entries.slice(-entriesMax) : entries
    if (count + list.length > entriesMax && batch.length > 0) flush()
    batch.push([entity, list])
    count += list.length
  }
  if (batch.length > 0 || (whole && messages.length === 0)) flush()
  return messages
}

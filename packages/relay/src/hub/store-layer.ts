/**
 * The *store layer* of a hub's subscriptions: other devices' fact entries the hub holds in its
 * store queue that head office has not confirmed, sent in `store` messages beside the `entries`
 * pages (protocol invariant 5).
 *
 * Terms: a *watcher* is one subscription of one session (tenant, clientId, scope, read grants);
 * its *layer* is the set of queued ids it was sent and not yet told removed.
 *
 *   subscribe ─► reset (paged: the first message `reset: true`, the rest add) ─► live:
 *   queued rows ─► add to each watcher they match      settled ids ─► removed from each layer
 *
 * Invariants:
 * 1. A watcher is sent only fact entries of its tenant that its scope and its read grants match,
 *    never the subscriber's own clientId's, never held entries (the hub refused them) and never
 *    requests (they are not decided).
 * 2. Every `store` message holds at most `PAGE_ENTRIES_MAX` entries and `PAGE_ENTRIES_MAX`
 *    removed ids; the reset of a layer larger than that is several messages, the first with
 *    `reset: true`.
 * 3. An id leaves a layer (`removed`) only after it was added to it, once.
 * 4. A watcher's layer is bounded by the store queue's bound (`HUB_QUEUE_ENTRIES_MAX`).
 */
import { matchesAny } from '@ledgerline/core'
import type { Entry } from '@ledgerline/core'
import { PAGE_ENTRIES_MAX } from '@ledgerline/protocol'
import type { StoreMessage } from '@ledgerline/protocol'
import type { QueuedEntry } from './hub-queue.ts'
import type { HubStore } from './hub-store.ts'

/** One subscription's view of the store layer. */
export interface StoreWatcher {
  readonly tenant: string
  readonly clientId: string
  readonly sub: number
  readonly scope: readonly string[]
  read(): readonly string[]
  /** Sends a `store` message unless the session is slow or closed. */
  send(message: StoreMessage): void
}

export interface StoreLayer {
  /** Sends the watcher its reset, then keeps it live; returns the detach. */
  watch(watcher: StoreWatcher): () => void
  close(): void
}

/**
 * @example
 * const layer = createStoreLayer(hubStore)
 * const detach = layer.watch({ tenant, clientId, sub: 1, scope: ['*'], read: () => ['*'], send })
 */
export function createStoreLayer(store: HubStore): StoreLayer {
  const watchers = new Map<StoreWatcher, Set<string>>()
  const stopQueued = store.onQueued((rows) => {
    for (const [w, layer] of watchers) {
      const adds = rows.filter((r) => visible(w, r)).map((r) => r.entry)
      for (const part of pages(adds)) {
        for (const e of part) layer.add(e.id)
        w.send({ type: 'store', sub: w.sub, entries: part, removed: [], reset: false })
      }
    }
  })
  const stopSettled = store.onSettled((ids) => {
    for (const [w, layer] of watchers) {
      const removed = ids.filter((id) => layer.delete(id))
      for (const part of pages(removed)) {
        w.send({ type: 'store', sub: w.sub, entries: [], removed: part, reset: false })
      }
    }
  })
  return {
    watch(w) {
      const layer = new Set<string>()
      watchers.set(w, layer)
      let after = 0
      let first = true
      // Invariant 2: the reset in pages; the queue is read in arrival order, bounded per read.
      for (;;) {
        const rows = store.openFacts(w.tenant, after, PAGE_ENTRIES_MAX)
        const page = rows.filter((r) => visible(w, r)).map((r) => r.entry)
        for (const e of page) layer.add(e.id)
        if (page.length > 0 || first) {
          w.send({ type: 'store', sub: w.sub, entries: page, removed: [], reset: first })
          first = false
        }
        if (rows.length < PAGE_ENTRIES_MAX) break
        after = (rows.at(-1) as QueuedEntry).seq
      }
      return () => void watchers.delete(w)
    },
    close() {
      stopQueued()
      stopSettled()
      watchers.clear()
    },
  }
}

/** Invariant 1. */
function visible(w: StoreWatcher, r: QueuedEntry): boolean {
  const e = r.entry
  return (
    r.held === null &&
    r.result === null &&
    e.intent === 'fact' &&
    e.tenant === w.tenant &&
    e.clientId !== w.clientId &&
    matchesAny(w.scope, e.entity) &&
    matchesAny(w.read(), e.entity)
  )
}

function pages<T extends Entry | string>(items: readonly T[]): T[][] {
  const out: T[][] = []
  for (let i = 0; i < items.length; i += PAGE_ENTRIES_MAX) {
    out.push(items.slice(i, i + PAGE_ENTRIES_MAX))
  }
  return out
}

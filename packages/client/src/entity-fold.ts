/**
 * The folding helpers and the snapshot writer of the entity cache (`entity-cache.ts`): how a view
 * is composed from confirmed state, the store layer and pending entries, the order pending
 * entries fold in, and when a snapshot of confirmed state is written.
 *
 * Terms as in `entity-cache.ts`: *confirmed* state is what the log's entries folded to; the
 * *store layer* is other devices' entries a store hub holds; *pending* entries are own entries
 * not acked yet; a *snapshot* is confirmed state saved with the chunk it was folded through.
 *
 * Invariants (the parts of `entity-cache.ts` invariants 2, 4 and 7 that live here):
 * 1. A view is confirmed state, then the store layer in hub order, then own pending entries in
 *    clientSeq order (`entity-cache.ts` invariant 2).
 * 2. A snapshot is written after SNAPSHOT_ENTRIES_MIN entries folded since the last, keyed by
 *    the entity type's fold version; failing to write one loses nothing; a snapshot whose
 *    `reduce` source differs is warned about once per entity type (`entity-cache.ts` invariant 4).
 * 3. A load's pending entries are joined with those appended since it began, each once
 *    (`entity-cache.ts` invariant 7).
 */
import type { Entry, Schema } from '@ledgerline/core'
import { fold, view as foldView } from '@ledgerline/core'
import type { ClientWarning } from './client-api.ts'
import type { ClientStore, EntityLoad } from './client-store.ts'
import { SNAPSHOT_ENTRIES_MIN } from './limits.ts'
import { snapshotTypeKey } from './snapshot-keys.ts'

type EntityType = ReturnType<Schema['typeOf']>

/** What a cached entity has folded, as the snapshot writer reads and resets it. */
export interface FoldProgress {
  readonly confirmed: unknown
  readonly version: number
  readonly lastChunk: number | undefined
  foldedSinceSnapshot: number
}

export interface SnapshotWriterOptions {
  readonly clientStore: Promise<Pick<ClientStore, 'putSnapshot'>>
  readonly onWarning?: ((warning: ClientWarning) => void) | undefined
}

export interface SnapshotWriter {
  /** Writes a snapshot of `item` when enough was folded since the last (invariant 2). */
  maybeSnapshot(entity: string, item: FoldProgress, type: EntityType, source: string): void
  /** A snapshot folded by another `reduce` was read: told once per entity type (invariant 2). */
  warnStale(type: EntityType): void
}

/**
 * @example
 * const snapshots = createSnapshotWriter({ clientStore, onWarning })
 * snapshots.maybeSnapshot(entity, item, type, reduceSource(type.type, type.reduce))
 */
export function createSnapshotWriter(options: SnapshotWriterOptions): SnapshotWriter {
  const warned = new Set<string>()
  /** Invariant 2: a snapshot after SNAPSHOT_ENTRIES_MIN entries folded since the last. */
  function maybeSnapshot(
    entity: string,
    item: FoldProgress,
    type: EntityType,
    source: string,
  ): void {
    const through = item.lastChunk
    if (item.foldedSinceSnapshot < SNAPSHOT_ENTRIES_MIN || through === undefined) return
    item.foldedSinceSnapshot = 0
    const snapshot = {
      entity,
      version: item.version,
      state: item.confirmed,
      through,
      typeKey: typeKey(type),
      source,
    }
    // A snapshot only saves work later; failing to write one is fine.
    void options.clientStore.then((s) => s.putSnapshot(snapshot)).catch(() => {})
  }

  /** Invariant 2: told once per entity type. */
  function warnStale(type: EntityType): void {
    if (warned.has(type.type) || options.onWarning === undefined) return
    warned.add(type.type)
    options.onWarning({
      kind: 'reduce_changed',
      message: `entity type '${type.type}': reduce changed but version did not (still ${type.version}); snapshots folded by the old reduce are used as they are: raise version in defineEntity if what reduce computes changed`,
      type: type.type,
    })
  }

  return { maybeSnapshot, warnStale }
}

/** Invariant 3: a load's pending entries, and those appended since it began that it lacks. */
export function withRecent(load: EntityLoad, recent: readonly Entry[]): readonly Entry[] {
  if (recent.length === 0) return load.pending
  const known = new Set<string>()
  for (const e of load.pending) known.add(e.id)
  for (const e of load.stored) known.add(e.id)
  return [...load.pending, ...recent.filter((e) => !known.has(e.id))]
}

/**
 * Invariant 1: the view is confirmed state, then the store layer in hub order, then own
 * pending entries in clientSeq order.
 */
export function composeView(
  type: EntityType,
  confirmed: unknown,
  store: readonly Entry[],
  pending: readonly Entry[],
): unknown {
  return foldView(type, store.length === 0 ? confirmed : fold(type, confirmed, store), pending)
}

/** Own pending entries in the order the view folds them. */
export function sortPending(entries: readonly Entry[]): Entry[] {
  // One clientId at a time has entries in the outbox; acked ones of an older clientId (before
  // a reissue) come first.
  return [...entries].sort((a, b) =>
    a.clientId === b.clientId ? a.clientSeq - b.clientSeq : a.hlc < b.hlc ? -1 : 1,
  )
}

/** The snapshot key of an entity type: its name and fold version (invariant 2). */
export function typeKey(type: { readonly type: string; readonly version?: number }): string {
  return snapshotTypeKey(type.type, type.version ?? 1)
}

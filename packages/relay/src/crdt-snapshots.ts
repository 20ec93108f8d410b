/**
 * The CRDT snapshot policy of the server log, apart from any endpoint: every writer (the `/sync`
 * push path, the y-websocket endpoint, tests) gets snapshots through `withCrdtSnapshots`, on
 * any `LogStore` (SQLite or PostgreSQL).
 *
 * Terms: a *snapshot* is a server-made entry (`yjs.snapshot` / `automerge.snapshot`) whose data
 * `{ through, state }` is the state folded by the entity type over every version up to
 * `through`. A *book* is what the relay remembers of an entity: where its latest snapshot is and
 * what was appended since.
 *
 * Policy: after a commit to a CRDT entity, when at least `SNAPSHOT_UPDATES_EVERY` entries or
 * `SNAPSHOT_BYTES_EVERY` bytes were appended since the latest snapshot, the relay folds the
 * ledger from that snapshot (parts joined, `crdt-parts.ts` of the model) and appends a new one.
 * A state over one entry (`CRDT_PART_BYTES_MAX`) is written in parts; one over
 * `SNAPSHOT_STATE_BYTES_MAX` is not snapshotted (the ledger keeps its history, catch-up reads it
 * all) and is retried after another `SNAPSHOT_BYTES_EVERY` bytes. While an update in parts is
 * incomplete, no snapshot is written (a reader starting at it would never see that update's
 * first parts).
 *
 * Invariants:
 * 1. A snapshot (or its first part) is appended as a request with `expect` = the version it
 *    covers, so it lands right after that version or not at all; its other parts follow as
 *    facts, once the first landed (updates may land between them: a fold joins the snapshot and
 *    keeps them). Ids `<last entry id>~snapshot~<part>` are the same on every relay, so two
 *    relays that race make one snapshot. A snapshot says what it covers in `data.through`
 *    only: it has no `corrects`, so no corrections feed or ack takes it for a correction of the
 *    entry it follows (issue 13 case 5; `isLogCorrection` of core also refuses the snapshots
 *    older builds wrote with `corrects`).
 * 1a. A reader starts at the latest *complete* snapshot: a snapshot whose parts are not all in
 *    the ledger (a relay stopped between them) is passed over.
 * 2. One decision per entity at a time; a snapshot failure never fails the append it follows
 *    (it goes to `onError`).
 * 3. At most `SNAPSHOT_CACHE_ENTITIES_MAX` books are kept (LRU); reads are paged by
 *    `CRDT_READ_PAGE_ENTRIES`.
 */
import type { CrdtKind, Entry, Schema, StoredEntry } from '@ledgerline/core'
import {
  createCrdtJoiner,
  CRDT_PART_BYTES_MAX,
  crdtSnapshotKind,
  isCrdtSnapshot,
  readCrdtPart,
  SERVER_CLIENT_ID,
  splitCrdtBytes,
} from '@ledgerline/core'
import {
  CRDT_READ_PAGE_ENTRIES,
  SNAPSHOT_BYTES_EVERY,
  SNAPSHOT_CACHE_ENTITIES_MAX,
  SNAPSHOT_STATE_BYTES_MAX,
  SNAPSHOT_UPDATES_EVERY,
} from './limits.ts'
import type { AppendItem, LogStore, Pusher } from './log-store.ts'
import { ledgerSnapshotsOf, logRetentionOf, passedThrough } from '@ledgerline/log'

/** What `maybeSnapshot` did; an expected outcome, never thrown. */
export type SnapshotOutcome =
  | { readonly _tag: 'appended'; readonly version: number; readonly through: number }
  | {
      readonly _tag: 'skipped'
      readonly reason: 'not_crdt' | 'empty' | 'below_policy' | 'too_large' | 'raced'
    }

export interface Snapshotter {
  /** Applies the snapshot policy to one entity after a commit. Never rejects on a race. */
  maybeSnapshot(tenant: string, entity: string): Promise<SnapshotOutcome>
  /** Waits for the snapshots in progress (tests, shutdown). */
  idle(): Promise<void>
}

/**
 * Makes the snapshot writer of a relay. It keeps, per entity, where the latest snapshot is and
 * what was appended since, so deciding costs one read of the new entries.
 *
 * @example
 * const snapshots = createSnapshotter(store, schema)
 * await snapshots.maybeSnapshot('acme', 'catalog/s7') // { _tag: 'skipped', reason: 'below_policy' }
 */
export function createSnapshotter(
  store: LogStore,
  schema: Schema | undefined,
  options: { readonly now?: (() => number) | undefined } = {},
): Snapshotter {
  const now = options.now ?? Date.now
  const books = new Map<string, SnapshotBook>()
  const running = new Map<string, Promise<SnapshotOutcome>>()

  async function run(tenant: string, entity: string): Promise<SnapshotOutcome> {
    const type = schema?.find(entity)
    if (type?.crdt === undefined) return { _tag: 'skipped', reason: 'not_crdt' }
    const head = await store.head(tenant, entity)
    if (head.version === 0) return { _tag: 'skipped', reason: 'empty' }
    const key = `${tenant}\0${entity}`
    let book = books.get(key)
    if (book === undefined) {
      book = await scanBack(store, tenant, entity, head.version)
    } else {
      books.delete(key) // re-inserted below: the Map's order is the LRU order
      await scanForward(store, tenant, entity, book, head.version)
    }
    books.set(key, book)
    if (books.size > SNAPSHOT_CACHE_ENTITIES_MAX) {
      books.delete(books.keys().next().value as string)
    }
    if (book.updates < SNAPSHOT_UPDATES_EVERY && book.bytes < SNAPSHOT_BYTES_EVERY) {
      return { _tag: 'skipped', reason: 'below_policy' }
    }
    if (book.bytes < book.retryAtBytes) return { _tag: 'skipped', reason: 'too_large' }
    const entries = await readRange(store, tenant, entity, Math.max(1, book.snapshotVersion))
    const last = entries[entries.length - 1]
    if (last === undefined || last.clientId === SERVER_CLIENT_ID) {
      return { _tag: 'skipped', reason: 'raced' }
    }
    const crdt = type.crdt
    const joiner = createCrdtJoiner(crdt)
    let state = type.initial
    for (const e of entries) for (const whole of joiner.add(e)) state = type.reduce(state, whole)
    // An update in parts not complete yet: a snapshot now would cut it in two. Next commit.
    if (joiner.hasOpenUpdate()) return { _tag: 'skipped', reason: 'raced' }
    if (!(state instanceof Uint8Array) || state.length > SNAPSHOT_STATE_BYTES_MAX) {
      book.retryAtBytes = book.bytes + SNAPSHOT_BYTES_EVERY
      return { _tag: 'skipped', reason: 'too_large' }
    }
    const [first, ...rest] = snapshotEntries(last, crdt, state, now())
    const [result] = await store.append(tenant, [{ entry: first as Entry }])
    if (result === undefined || (result.status !== 'appended' && result.status !== 'duplicate')) {
      return { _tag: 'skipped', reason: 'raced' }
    }
    if (rest.length > 0) {
      // Invariant 1: the other parts only after the first landed.
      const results = await store.append(
        tenant,
        rest.map((entry) => ({ entry })),
      )
      const failed = results.find((r) => r.status !== 'appended' && r.status !== 'duplicate')
      if (failed !== undefined) throw new Error(`snapshot part not appended: ${failed.status}`)
    }
    book.snapshotVersion = result.version
    book.scannedThrough = result.version
    book.updates = 0
    book.bytes = 0
    book.retryAtBytes = 0
    return { _tag: 'appended', version: result.version, through: last.version }
  }

  return {
    maybeSnapshot(tenant, entity) {
      // One decision per entity at a time; a call that arrives meanwhile joins the next run.
      const key = `${tenant}\0${entity}`
      const previous = running.get(key) ?? Promise.resolve(undefined)
      const next = previous
        .catch(() => undefined)
        .then(() => run(tenant, entity))
        .finally(() => {
          if (running.get(key) === next) running.delete(key)
        })
      running.set(key, next)
      return next
    },
    async idle() {
      while (running.size > 0) await Promise.allSettled(running.values())
    },
  }
}

/**
 * Wraps a server log so that every append to a CRDT entity is followed by `maybeSnapshot` for
 * it, once the append is durable. This is the one hook the relay needs: `createRelay` wraps its
 * store, and every writer (the `/sync` push path, the `/yjs/` endpoint, tests) gets snapshots.
 * Snapshot failures never fail the append they follow; they are reported to `onError`.
 *
 * @example
 * const store = withCrdtSnapshots(await createSqliteStore({ file, schema }), schema)
 */
export function withCrdtSnapshots(
  store: LogStore,
  schema: Schema | undefined,
  options: { readonly onError?: ((error: unknown) => void) | undefined } = {},
): LogStore & { readonly snapshots: Snapshotter } {
  const snapshots = createSnapshotter(store, schema)
  const onError = options.onError ?? (() => {})
  const wrapped: LogStore & { readonly snapshots: Snapshotter } = {
    partitions: store.partitions,
    snapshots,
    // Ledger snapshots (`ledger-snapshots.ts`) pass through untouched.
    ...ledgerSnapshotsOf(store),
    // So does retention (`log-retention.ts`).
    ...logRetentionOf(store),
    async append(tenant: string, items: readonly AppendItem[], pusher?: Pusher | undefined) {
      const results = await store.append(tenant, items, pusher)
      const touched = new Set<string>()
      for (const [i, item] of items.entries()) {
        const r = results[i]
        if (r === undefined || r.status !== 'appended') continue
        if (isCrdtSnapshot(item.entry)) continue
        if (schema?.find(item.entry.entity)?.crdt !== undefined) touched.add(item.entry.entity)
      }
      for (const entity of touched) snapshots.maybeSnapshot(tenant, entity).catch(onError)
      return results
    },
    ...passedThrough(store),
    async close() {
      await snapshots.idle()
      await store.close()
    },
  }
  return wrapped
}

/**
 * The entries a new reader of a CRDT entity needs: from its latest snapshot (inclusive) to its
 * head, or the whole ledger when it has no snapshot. Bounded by the snapshot policy.
 *
 * @example
 * const entries = await readFromLatestSnapshot(store, 'acme', 'doc/catalog')
 * // [yjs.snapshot{through: 400}, yjs.update, yjs.update]
 */
export async function readFromLatestSnapshot(
  store: LogStore,
  tenant: string,
  entity: string,
): Promise<StoredEntry[]> {
  const head = await store.head(tenant, entity)
  if (head.version === 0) return []
  const book = await scanBack(store, tenant, entity, head.version)
  return readRange(store, tenant, entity, Math.max(1, book.snapshotVersion))
}

interface SnapshotBook {
  /** Version of the latest complete snapshot (its first part); 0 when the ledger has none. */
  snapshotVersion: number
  /** The last version counted. */
  scannedThrough: number
  /** Entries and data bytes after the latest snapshot. */
  updates: number
  bytes: number
  /** After a too-large state: do not try again before `bytes` reaches this. */
  retryAtBytes: number
  /** A snapshot in parts seen going forward and not complete yet. */
  partial: { group: string; first: number; seen: Set<number>; parts: number } | undefined
}

// Finds the latest complete snapshot by reading pages backwards from the head. The policy puts
// one at most about SNAPSHOT_UPDATES_EVERY entries back, unless states were too large.
async function scanBack(
  store: LogStore,
  tenant: string,
  entity: string,
  headVersion: number,
): Promise<SnapshotBook> {
  const book: SnapshotBook = {
    snapshotVersion: 0,
    scannedThrough: headVersion,
    updates: 0,
    bytes: 0,
    retryAtBytes: 0,
    partial: undefined,
  }
  // Parts of snapshots seen so far (all of them lie after their first part: we go backwards).
  const seen = new Map<string, Set<number>>()
  let upTo = headVersion
  while (upTo >= 1) {
    const from = Math.max(1, upTo - CRDT_READ_PAGE_ENTRIES + 1)
    const page = await store.readEntity(tenant, entity, from, upTo - from + 1)
    for (let i = page.length - 1; i >= 0; i--) {
      const e = page[i] as StoredEntry
      if (e.version > upTo) continue
      const snapshot = snapshotOf(e)
      if (snapshot === 'whole') {
        book.snapshotVersion = e.version
        return book
      }
      if (snapshot !== undefined) {
        const parts = seen.get(snapshot.group) ?? new Set<number>()
        parts.add(snapshot.part)
        seen.set(snapshot.group, parts)
        if (snapshot.part === 0 && parts.size === snapshot.parts) {
          book.snapshotVersion = e.version
          return book
        }
        continue
      }
      book.updates++
      book.bytes += dataBytes(e)
    }
    upTo = from - 1
  }
  return book
}

async function scanForward(
  store: LogStore,
  tenant: string,
  entity: string,
  book: SnapshotBook,
  headVersion: number,
): Promise<void> {
  while (book.scannedThrough < headVersion) {
    const page = await store.readEntity(
      tenant,
      entity,
      book.scannedThrough + 1,
      CRDT_READ_PAGE_ENTRIES,
    )
    if (page.length === 0) return
    for (const e of page) {
      book.scannedThrough = e.version
      const snapshot = snapshotOf(e)
      if (snapshot === undefined) {
        book.updates++
        book.bytes += dataBytes(e)
        continue
      }
      let complete = snapshot === 'whole' ? e.version : undefined
      if (snapshot !== 'whole') {
        if (snapshot.part === 0) {
          book.partial = {
            group: snapshot.group,
            first: e.version,
            seen: new Set(),
            parts: snapshot.parts,
          }
        }
        const partial = book.partial
        if (partial !== undefined && partial.group === snapshot.group) {
          partial.seen.add(snapshot.part)
          if (partial.seen.size === partial.parts) complete = partial.first
        }
      }
      if (complete !== undefined) {
        // Updates between a snapshot's parts were folded into it by readers (crdt-parts.ts
        // invariant 3), yet count them again: a few bytes early is fine.
        book.snapshotVersion = complete
        book.partial = undefined
        book.updates = 0
        book.bytes = 0
        book.retryAtBytes = 0
      }
    }
  }
}

export async function readRange(
  store: LogStore,
  tenant: string,
  entity: string,
  fromVersion: number,
): Promise<StoredEntry[]> {
  const out: StoredEntry[] = []
  let from = fromVersion
  for (;;) {
    const page = await store.readEntity(tenant, entity, from, CRDT_READ_PAGE_ENTRIES)
    out.push(...page)
    if (page.length < CRDT_READ_PAGE_ENTRIES) return out
    from = (page[page.length - 1] as StoredEntry).version + 1
  }
}

/**
 * The entries of a snapshot of `state` covering the ledger through `last` (invariant 1): one,
 * or its parts, each at most `CRDT_PART_BYTES_MAX` bytes of state.
 *
 * @example
 * snapshotEntries(last, 'yjs', state, Date.now()) // [{ id: '<last id>~snapshot~0', … }, …]
 */
export function snapshotEntries(
  last: StoredEntry,
  crdt: CrdtKind,
  state: Uint8Array,
  occurredAt: number,
): Entry[] {
  const make = (part: number, data: Entry['data']): Entry => ({
    id: `${last.id}~snapshot~${part}`,
    tenant: last.tenant,
    entity: last.entity,
    kind: crdtSnapshotKind(crdt),
    data,
    intent: part === 0 ? 'request' : 'fact',
    ...(part === 0 ? { expect: last.version } : {}),
    clientId: SERVER_CLIENT_ID,
    clientSeq: 0,
    hlc: last.hlc,
    occurredAt,
  })
  if (state.length <= CRDT_PART_BYTES_MAX) return [make(0, { through: last.version, state })]
  const chunks = splitCrdtBytes(state)
  const group = `${last.id}~snapshot~0`
  return chunks.map((bytes, part) =>
    make(part, { through: last.version, group, part, parts: chunks.length, bytes }),
  )
}

/** A server snapshot: `'whole'`, its part, or undefined for any other entry. */
function snapshotOf(
  e: Entry,
): 'whole' | { group: string; part: number; parts: number } | undefined {
  if (!isCrdtSnapshot(e)) return undefined
  const kind = e.kind.slice(0, -'.snapshot'.length)
  if (kind !== 'yjs' && kind !== 'automerge') return 'whole'
  const part = readCrdtPart(e, kind)
  return part === undefined ? 'whole' : part
}

function dataBytes(entry: Entry): number {
  if (entry.data instanceof Uint8Array) return entry.data.length
  const bytes = (entry.data as { bytes?: unknown } | null)?.bytes
  return bytes instanceof Uint8Array ? bytes.length : 0
}

/**
 * The IndexedDB database under the client store: its layout, opening and upgrading it, and the
 * one way to run a transaction on it. The record families each have their module
 * (`idb-outbox.ts`, `idb-outcomes.ts`, `idb-history.ts`, `idb-snapshots.ts`, `idb-feed.ts`);
 * `idb-client-store.ts` puts them together.
 *
 * Layout (database version 5; *object store* is IndexedDB's word for a table):
 *
 *   meta       'client'  → ClientMeta   clientId, last clientSeq, outbox counters, feed counters
 *              'cursors' → CursorsRecord  per-partition offsets received, with the scope and
 *                          tenant, the last chunk number and how far the ledger index reaches
 *   outbox     [clientId, clientSeq] → { entry, bytes, at }     own entries not yet acked
 *                index 'id' (unique), index 'entity'
 *   acked      id → { entry, version, partition, offset }       acked, not yet received back
 *                index 'entity'                                  through the subscription
 *   chunks     n → { partition, first, last, entries }           confirmed history
 *   staged     n → { entities: [entity, chunk n…][] }            ledger keys not yet indexed
 *   ledgers    [entity, last chunk n] → { chunks: n[] }          the per-entity index
 *   snapshots  entity → { version, state, through: chunk n }     folded state up to a chunk
 *   basePages  [first, last] → { first, last, bases: BaseRecord[] }  relay snapshots kept by a
 *                          bootstrap, in name order, pages never overlapping (`idb-bases.ts`)
 *   outcomes   id → { n, outcome }                               appended/duplicate/refused
 *   feed       id → { n, entry, unseen }                         corrections of own entries
 *   views      entity → ViewRecord { view, confirmed, keys }     kept views of indexed types
 *                index 'key' (multiEntry over keys: [type, index, value])
 *   meta       'views'   → ViewDefinitions                 definition key of each kept type
 *
 * Upgrades: 1 → 2 converts layout 1's pages into chunks (one chunk per page, numbered in key
 * order, so per partition in offset order) with their per-entity index, keeps the cursors (with
 * the last chunk number), converts each snapshot to the chunk of its page (one whose page is
 * gone is dropped), copies the tenant into the meta record, and deletes the pages, all inside
 * the upgrade transaction: an upgrade applied offline (a PWA update) shows the confirmed state
 * at once. 2 → 3 adds the empty `views` object store; with no stored definitions, the first
 * `prepareViews` builds every kept type from the stored history (`idb-views.ts`). 3 → 4 adds
 * the empty `bases` object store (relay snapshots kept by a bootstrap, `bases.ts`), one record
 * per entity. 4 → 5 moves those bases, in name order, into `basePages` records of up to
 * BASE_PAGE_ENTRIES_MAX each and deletes `bases`: writing one record per entity dominated a
 * bootstrap in Chromium. The outbox, acked entries, outcomes and the corrections feed are kept
 * as they are.
 * A database of a NEWER layout than this build knows (a stale service worker, an old tab) is
 * not opened: `version` error, nothing touched.
 *
 * Invariants:
 * 1. Nothing is awaited inside a transaction except that transaction's own requests (idb:
 *    "Do not await other things between the start and end of your transaction",
 *    https://github.com/jakearchibald/idb#transaction-lifetime). On any failure the transaction
 *    is aborted, so nothing is half-written, and the error becomes a `ClientError` (a quota
 *    failure, also wrapped in an AbortError, is `storage_full`).
 * 2. Opening never hangs: when an older tab blocks the upgrade for OPEN_BLOCKED_MS_MAX, it
 *    fails with `upgrade_blocked`; an open connection closes itself at once when a newer
 *    version asks, and says so through `onClosed`.
 * 3. Upgrade blocks only ever get added (`if (oldVersion < 3) …`), and each leaves the layout
 *    its version names; how a block carries data over may improve (1 → 2 used to drop history
 *    and now converts it), never what it leaves.
 */
import type { StoredEntry } from '@ledgerline/core'
import { assert } from '@ledgerline/core'
import type { DBSchema, IDBPDatabase, IDBPTransaction, StoreNames } from 'idb'
import { wrap } from 'idb'
import type {
  AckedRecord,
  BaseRecord,
  ChunkRecord,
  ClientMeta,
  ClientStoreClosedReason,
  CursorsRecord,
  Durability,
  FeedRecord,
  OutboxRecord,
  OutcomeRecord,
  SnapshotRecord,
  StagedRecord,
} from './client-store.ts'
import { ClientError, toStorageError } from './errors.ts'
import { BASE_PAGE_ENTRIES_MAX, OPEN_BLOCKED_MS_MAX } from './limits.ts'
import { snapshotTypeKey } from './snapshot-keys.ts'
import type { ViewDefinitions, ViewRecord } from './views.ts'
import type { Scheduler } from './scheduler.ts'

/**
 * Version of the database layout. History:
 * 1 — first layout (Ledgerline 0.1.0).
 * 2 — confirmed history in chunks with a staged per-entity index (Ledgerline 0.1.0).
 * 3 — kept views of entity types that declare indexes, for `query` (Ledgerline 0.1.0).
 * 4 — bases: the relay's ledger snapshots a bootstrap keeps (compaction).
 * 5 — base pages: those bases stored a run of sorted names per record (compaction).
 */
export const DB_VERSION = 5

export interface LedgerIndexRecord {
  readonly entity: string
  /** The last of `chunks`. */
  readonly last: number
  /** Chunks holding entries of `entity`, ascending. */
  readonly chunks: readonly number[]
}

/** Bases of a run of names, in name order (`idb-bases.ts`); key [first, last]. */
export interface BasePageRecord {
  readonly first: string
  readonly last: string
  readonly bases: readonly BaseRecord[]
}

export interface LedgerDb extends DBSchema {
  meta: { key: string; value: ClientMeta | CursorsRecord | ViewDefinitions }
  outbox: {
    key: [string, number]
    value: OutboxRecord
    indexes: { id: string; entity: string }
  }
  acked: { key: string; value: AckedRecord; indexes: { entity: string } }
  chunks: { key: number; value: ChunkRecord }
  staged: { key: number; value: StagedRecord }
  ledgers: { key: [string, number]; value: LedgerIndexRecord }
  snapshots: { key: string; value: SnapshotRecord }
  basePages: { key: [string, string]; value: BasePageRecord }
  outcomes: { key: string; value: OutcomeRecord; indexes: { n: number } }
  feed: { key: string; value: FeedRecord; indexes: { n: number } }
  views: { key: string; value: ViewRecord; indexes: { key: [string, string, string | number] } }
}

export type Db = IDBPDatabase<LedgerDb>
type Names = StoreNames<LedgerDb>

/** Registers a request `body` does not await, so its failure is seen and never unhandled. */
export type Track = <P>(p: Promise<P>) => Promise<P>

/** Runs `body` in one transaction over `names` (invariant 1). */
export type Run = <N extends Names, M extends IDBTransactionMode, T>(
  names: N[],
  mode: M,
  durability: Durability,
  body: (tx: IDBPTransaction<LedgerDb, N[], M>, track: Track) => Promise<T>,
) => Promise<T>

export interface IdbDatabaseOptions {
  readonly indexedDB: IDBFactory
  readonly dbName: string
  /** Layout version to open; tests use a higher one to play a newer tab. */
  readonly version?: number | undefined
  readonly scheduler: Scheduler
  /** Called when the connection closed itself for a newer version, or was terminated. */
  readonly onClosed: (reason: ClientStoreClosedReason) => void
}

/**
 * Opens (and creates or upgrades) the database (invariant 2).
 *
 * @example
 * const db = await openIdbDatabase({ indexedDB, dbName: 'till-1', scheduler, onClosed })
 */
export function openIdbDatabase(options: IdbDatabaseOptions): Promise<Db> {
  const { scheduler } = options
  return new Promise<Db>((resolve, reject) => {
    let request: IDBOpenDBRequest
    const version = options.version ?? DB_VERSION
    try {
      request = options.indexedDB.open(options.dbName, version)
    } catch (error) {
      reject(toStorageError(error))
      return
    }
    let blockedTimer: unknown
    let gaveUp = false
    request.onupgradeneeded = (event) => {
      const tx = request.transaction
      assert(tx !== null, 'an upgrade runs in a versionchange transaction')
      upgrade(wrap(request.result) as unknown as Db, event.oldVersion, tx)
    }
    // https://developer.mozilla.org/en-US/docs/Web/API/IDBOpenDBRequest/blocked_event: the
    // upgrade waits until every older connection closes. Never wait silently.
    request.onblocked = () => {
      blockedTimer ??= scheduler.setTimeout(() => {
        gaveUp = true
        reject(
          new ClientError(
            'upgrade_blocked',
            `database '${options.dbName}' is held open by another tab of an older version: close other tabs and reload`,
          ),
        )
      }, OPEN_BLOCKED_MS_MAX)
    }
    request.onerror = () => {
      scheduler.clearTimeout(blockedTimer)
      const error = request.error
      if (error?.name === 'VersionError') {
        // https://w3c.github.io/IndexedDB/#opening: a database of a higher version than asked
        // for fails to open with a VersionError and stays as it is.
        void storedVersion(options.indexedDB, options.dbName).then((found) => {
          reject(
            new ClientError(
              'version',
              `database '${options.dbName}' has layout ${found ?? 'newer'}; this build of Ledgerline reads layouts up to ${version}: an older app (a stale service worker or tab) opened it; reload to get the newer app. Nothing was changed.`,
              { cause: error },
            ),
          )
        })
        return
      }
      reject(toStorageError(error))
    }
    request.onsuccess = () => {
      scheduler.clearTimeout(blockedTimer)
      const raw = request.result
      if (gaveUp) {
        // The caller was already told `upgrade_blocked`; do not leave a connection behind.
        raw.close()
        return
      }
      // A newer version wants to open: close at once so its upgrade is not blocked, and tell
      // the client (it stops and asks for a reload).
      raw.onversionchange = () => {
        raw.close()
        options.onClosed('versionchange')
      }
      // Abnormal close (storage wiped under us, disk error).
      raw.onclose = () => options.onClosed('terminated')
      resolve(wrap(raw) as unknown as Db)
    }
  })
}

/** The one way to run transactions on a database, and to close it. */
export interface Runner {
  readonly run: Run
  /**
   * Refuses new transactions (kind `closed`), waits for the running ones, then closes the
   * connection: once it resolves, a deleteDatabase, an upgrade or a restore of the database is
   * not blocked by this connection (Chromium fires `blocked` at a connection whose close is
   * pending on a running transaction). Closing twice closes once.
   */
  close(): Promise<void>
}

/**
 * The transaction runner of `db`: `body` may await only requests of `tx`; on any failure the
 * transaction is aborted and the error becomes a `ClientError` (quota → `storage_full`).
 *
 * @example
 * const { run, close } = createRunner(db)
 * await run(['meta'], 'readonly', 'default', async (tx) => tx.objectStore('meta').get('client'))
 * await close()
 */
export function createRunner(db: Db): Runner {
  const running = new Set<Promise<unknown>>()
  let closing: Promise<void> | undefined
  async function transact<N extends Names, M extends IDBTransactionMode, T>(
    names: N[],
    mode: M,
    durability: Durability,
    body: (tx: IDBPTransaction<LedgerDb, N[], M>, track: Track) => Promise<T>,
  ): Promise<T> {
    let tx: IDBPTransaction<LedgerDb, N[], M>
    try {
      tx = db.transaction(names, mode, { durability })
    } catch (error) {
      throw toStorageError(error)
    }
    const pending: Promise<unknown>[] = []
    // Requests not awaited by `body` are tracked so their failure is seen (and never left as an
    // unhandled rejection when the transaction aborts).
    const track: Track = (p) => {
      p.catch(noop)
      pending.push(p)
      return p
    }
    tx.done.catch(noop)
    try {
      const result = await body(tx, track)
      await Promise.all(pending)
      await tx.done
      return result
    } catch (error) {
      try {
        tx.abort()
      } catch {
        // Already finished or aborted: nothing more to undo.
      }
      throw toStorageError(error, tx.error)
    }
  }
  const run: Run = (names, mode, durability, body) => {
    if (closing !== undefined) {
      return Promise.reject(new ClientError('closed', 'the client store is closed'))
    }
    const done = transact(names, mode, durability, body)
    const settled = done.then(noop, noop)
    running.add(settled)
    void settled.then(() => running.delete(settled))
    return done
  }
  return {
    run,
    close() {
      closing ??= (async () => {
        while (running.size > 0) await Promise.all(running)
        db.close()
      })()
      return closing
    },
  }
}

/**
 * The version of an existing database, read without upgrading it (`open` without a version
 * opens the current one as it is); undefined when it cannot be read.
 */
function storedVersion(indexedDB: IDBFactory, name: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    let request: IDBOpenDBRequest
    try {
      request = indexedDB.open(name)
    } catch {
      resolve(undefined)
      return
    }
    request.onsuccess = () => {
      const version = request.result.version
      request.result.close()
      resolve(version)
    }
    request.onerror = () => resolve(undefined)
    request.onblocked = () => resolve(undefined)
  })
}

/** Deletes the oldest records (by index `n`) beyond `max`. */
/**
 * Deletes the records numbered `below` or lower (index `n`), reading only their keys: the
 * store is not walked, so its cost does not grow with its size (a `count()` walks every record).
 */
export async function pruneOlder(
  store: {
    index(name: 'n'): { getAllKeys(q: IDBKeyRange): Promise<string[]> }
    delete(key: string): Promise<void>
  },
  KeyRange: typeof IDBKeyRange,
  below: number,
  track: Track,
): Promise<void> {
  if (below < 1) return
  const old = await store.index('n').getAllKeys(KeyRange.upperBound(below))
  for (const key of old) void track(store.delete(key))
}

export async function prune(
  store: {
    count(): Promise<number>
    index(name: 'n'): { getAllKeys(q?: null, c?: number): Promise<string[]> }
    delete(key: string): Promise<void>
  },
  max: number,
  track: Track,
): Promise<void> {
  const count = await store.count()
  if (count <= max) return
  const oldest = await store.index('n').getAllKeys(null, count - max)
  for (const key of oldest) void track(store.delete(key))
}

/**
 * Runs inside the versionchange transaction `tx`, used raw: wrapping it would add a `done`
 * promise that rejects, unobserved, when an upgrade is given up (`upgrade_blocked`).
 */
function upgrade(db: Db, oldVersion: number, tx: IDBTransaction): void {
  if (oldVersion < 1) {
    db.createObjectStore('meta')
    const outbox = db.createObjectStore('outbox', { keyPath: ['clientId', 'clientSeq'] })
    outbox.createIndex('id', 'id', { unique: true })
    outbox.createIndex('entity', 'entity')
    const acked = db.createObjectStore('acked', { keyPath: 'id' })
    acked.createIndex('entity', 'entity')
    // Layout 1's object store, typed loosely: layout 2 no longer has it (see below).
    const legacy = db as unknown as IDBPDatabase
    const pages = legacy.createObjectStore('pages', { keyPath: ['partition', 'first'] })
    pages.createIndex('entity', 'keys', { multiEntry: true })
    db.createObjectStore('snapshots', { keyPath: 'entity' })
    db.createObjectStore('outcomes', { keyPath: 'id' }).createIndex('n', 'n')
    db.createObjectStore('feed', { keyPath: 'id' }).createIndex('n', 'n')
  }
  if (oldVersion < 2) {
    // Layout 1's pages (one index key per entity per page) give way to chunks with a ledger
    // index, converted here, in this transaction (see the header).
    db.createObjectStore('chunks', { keyPath: 'n' })
    db.createObjectStore('staged', { keyPath: 'n' })
    db.createObjectStore('ledgers', { keyPath: ['entity', 'last'] })
    convertLayout1(db, tx)
  }
  if (oldVersion < 3) {
    // Empty: the first `prepareViews` finds no definitions and builds every kept type.
    db.createObjectStore('views', { keyPath: 'entity' }).createIndex('key', 'keys', {
      multiEntry: true,
    })
  }
  if (oldVersion < 4) {
    // Empty: only a bootstrap writes bases. Layout 5 no longer has it (typed loosely).
    ;(db as unknown as IDBPDatabase).createObjectStore('bases', { keyPath: 'entity' })
  }
  if (oldVersion < 5) {
    db.createObjectStore('basePages', { keyPath: ['first', 'last'] })
    convertBases(db, tx)
  }
  // Later versions add `if (oldVersion < 6) { … }` here, never edit what the blocks above leave.
  // (Block 2's conversion runs on in request callbacks: a later block that reads chunks must
  // chain after it.)
}

/** Layout 1's records (Ledgerline 0.1.0), as far as the conversion reads them. */
interface Layout1Page {
  readonly partition: number
  readonly first: number
  readonly last: number
  readonly entries: readonly StoredEntry[]
}
interface Layout1Snapshot {
  readonly entity: string
  readonly version: number
  readonly state: unknown
  readonly partition: number
  /** First offset of the last page folded into `state`. */
  readonly through: number
  readonly typeKey: string
}

/**
 * Layout 1 → 2 inside the versionchange transaction `tx`: pages become chunks (one each, in
 * key order) with their `ledgers` index, cursors get the last chunk number, snapshots point at
 * their page's chunk, the tenant joins the meta record, and the pages go. Raw requests, chained
 * in their callbacks (the transaction stays active while requests are pending).
 */
function convertLayout1(db: Db, tx: IDBTransaction): void {
  const pages = tx.objectStore('pages')
  const chunks = tx.objectStore('chunks')
  const index = new Map<string, number[]>()
  const chunkOfPage = new Map<string, number>()
  let n = 0
  const reading = pages.openCursor()
  reading.onsuccess = () => {
    const cursor = reading.result
    if (cursor !== null) {
      const page = cursor.value as Layout1Page
      n++
      chunks.put({
        n,
        partition: page.partition,
        first: page.first,
        last: page.last,
        entries: page.entries,
      } satisfies ChunkRecord)
      for (const entity of new Set(page.entries.map((e) => e.entity))) {
        const list = index.get(entity)
        if (list === undefined) index.set(entity, [n])
        else list.push(n)
      }
      chunkOfPage.set(`${page.partition}:${page.first}`, n)
      cursor.continue()
      return
    }
    const ledgers = tx.objectStore('ledgers')
    for (const [entity, list] of index) {
      ledgers.put({ entity, last: list.at(-1) as number, chunks: list } satisfies LedgerIndexRecord)
    }
    convertMeta(tx, n)
    convertSnapshots(tx, chunkOfPage)
    ;(db as unknown as IDBPDatabase).deleteObjectStore('pages')
  }
}

/** Cursors keep their offsets and learn the last chunk; the tenant joins the meta record. */
function convertMeta(tx: IDBTransaction, chunkLast: number): void {
  const meta = tx.objectStore('meta')
  const reading = meta.get('cursors')
  reading.onsuccess = () => {
    const old = reading.result as Omit<CursorsRecord, 'chunkLast' | 'stagedKeys'> | undefined
    if (old === undefined) return
    meta.put({ ...old, chunkLast, stagedKeys: 0 } satisfies CursorsRecord, 'cursors')
    const client = meta.get('client')
    client.onsuccess = () => {
      const found = client.result as Partial<ClientMeta> | undefined
      if (found !== undefined && (found.tenant === undefined || found.tenant === null))
        meta.put({ ...found, tenant: old.tenant }, 'client')
    }
  }
}

/**
 * A layout-1 snapshot named a page; it now names that page's chunk. Its type key (layout 1's
 * fingerprint of `reduce`'s source) becomes fold version 1 with that fingerprint kept as its
 * source, so a `reduce` changed since warns (entity-cache.ts). One whose page is gone is dropped.
 */
function convertSnapshots(tx: IDBTransaction, chunkOfPage: ReadonlyMap<string, number>): void {
  const reading = tx.objectStore('snapshots').openCursor()
  reading.onsuccess = () => {
    const cursor = reading.result
    if (cursor === null) return
    const old = cursor.value as Layout1Snapshot
    const through = chunkOfPage.get(`${old.partition}:${old.through}`)
    if (through === undefined || typeof old.typeKey !== 'string') {
      cursor.delete()
    } else {
      const type = old.typeKey.split(':')[0] as string
      cursor.update({
        entity: old.entity,
        version: old.version,
        state: old.state,
        through,
        typeKey: snapshotTypeKey(type, 1),
        source: old.typeKey,
      } satisfies SnapshotRecord)
    }
    cursor.continue()
  }
}

/**
 * Layout 4 → 5 inside the versionchange transaction `tx`: the per-entity `bases` records, read
 * in key (name) order, become pages of up to BASE_PAGE_ENTRIES_MAX, and `bases` goes. Raw
 * requests, chained in their callbacks, as `convertLayout1`.
 */
function convertBases(db: Db, tx: IDBTransaction): void {
  const pages = tx.objectStore('basePages')
  let run: BaseRecord[] = []
  const flush = () => {
    if (run.length === 0) return
    const first = (run[0] as BaseRecord).entity
    const last = (run.at(-1) as BaseRecord).entity
    pages.put({ first, last, bases: run } satisfies BasePageRecord)
    run = []
  }
  const reading = tx.objectStore('bases').openCursor()
  reading.onsuccess = () => {
    const cursor = reading.result
    if (cursor !== null) {
      run.push(cursor.value as BaseRecord)
      if (run.length === BASE_PAGE_ENTRIES_MAX) flush()
      cursor.continue()
      return
    }
    flush()
    ;(db as unknown as IDBPDatabase).deleteObjectStore('bases')
  }
}

function noop(): void {}

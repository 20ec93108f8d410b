/**
 * `createIdbClientStore`: the client store over IndexedDB, one database (`dbName`) per user and
 * device. It opens the database (`idb-database.ts`, which also describes the layout) and puts
 * the record families together: the outbox (`idb-outbox.ts`), outcomes (`idb-outcomes.ts`),
 * confirmed history (`idb-history.ts`), snapshots (`idb-snapshots.ts`), the corrections feed
 * (`idb-feed.ts`), restore recovery (`idb-recovery.ts`) and kept views (`idb-views.ts`). What each method guarantees is stated on `ClientStore` (`client-store.ts`)
 * and proved by `runClientStoreContract`.
 *
 * Invariants:
 * 1. Every method is one IndexedDB transaction (`createRunner`): atomic, aborted on any failure.
 * 2. Appends use the configured durability (`strict` by default: flushed to disk before the
 *    promise resolves), and so do the writes of restore recovery (they move or put back outbox
 *    records); history, acks, snapshots and the feed use `relaxed`, because each can be
 *    fetched or rebuilt again.
 * 3. The client store closes itself when a newer version of the database asks, and tells `onClosed`.
 */
import type { ClientStore, ClientStoreInit } from './client-store.ts'
import { createRunner, openIdbDatabase } from './idb-database.ts'
import { createIdbFeed } from './idb-feed.ts'
import { createIdbHistory } from './idb-history.ts'
import { createIdbOutbox } from './idb-outbox.ts'
import { createIdbOutcomes } from './idb-outcomes.ts'
import { createIdbRecovery } from './idb-recovery.ts'
import { createIdbSnapshots } from './idb-snapshots.ts'
import { realScheduler } from './environment.ts'
import { createIdbViews } from './idb-views.ts'
import { viewTypesOf } from './views.ts'

export { DB_VERSION } from './idb-database.ts'

export interface IdbClientStoreOptions extends Partial<ClientStoreInit> {
  readonly indexedDB: IDBFactory
  /** The key-range class matching `indexedDB` (Node: fake-indexeddb's). */
  readonly IDBKeyRange: typeof IDBKeyRange
  readonly dbName: string
  /** Layout version to open; tests use a higher one to play a newer tab. */
  readonly version?: number | undefined
}

/**
 * Opens (and creates or upgrades) the database. When another tab holds an older version open,
 * it is asked to close (its `versionchange` handler does); if it has not after
 * `OPEN_BLOCKED_MS_MAX`, opening fails with kind `upgrade_blocked` instead of hanging.
 *
 * @example
 * const store = await createIdbClientStore({ indexedDB, IDBKeyRange, dbName: 'till-1' })
 * await store.init(() => createClientId(random), Date.now())
 */
export async function createIdbClientStore(options: IdbClientStoreOptions): Promise<ClientStore> {
  const db = await openIdbDatabase({
    indexedDB: options.indexedDB,
    dbName: options.dbName,
    version: options.version,
    scheduler: options.scheduler ?? realScheduler,
    onClosed: options.onClosed ?? noop,
  })
  const { run, close } = createRunner(db)
  const KeyRange = options.IDBKeyRange
  const types = viewTypesOf(options.schema)
  return {
    ...createIdbOutbox(run, KeyRange, options.durability ?? 'strict', types),
    ...createIdbOutcomes(run, KeyRange, types),
    ...createIdbHistory(run, KeyRange, types),
    ...createIdbSnapshots(run),
    ...createIdbFeed(run),
    ...createIdbRecovery(run, KeyRange, types),
    ...createIdbViews(run, KeyRange, types),
    close,
  }
}

function noop(): void {}

// An IndexedDB client store on fake-indexeddb for the idb-*.test.ts files, and appends of
// plain stock entries.
import 'fake-indexeddb/auto'
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb'
import type { ClientStore } from '../src/client-store.ts'
import { createIdbClientStore } from '../src/idb-client-store.ts'
import type { Scheduler } from '../src/scheduler.ts'
import { CLIENT, entry, NOW } from './entries.ts'

export async function openIdb(
  options: {
    factory?: IDBFactory
    dbName?: string
    version?: number
    scheduler?: Scheduler
    onClosed?: (reason: string) => void
  } = {},
): Promise<ClientStore> {
  return createIdbClientStore({
    indexedDB: options.factory ?? new IDBFactory(),
    IDBKeyRange,
    dbName: options.dbName ?? 'db',
    durability: 'strict',
    version: options.version,
    ...(options.scheduler === undefined ? {} : { scheduler: options.scheduler }),
    onClosed: options.onClosed ?? (() => {}),
  })
}

export async function freshIdb(factory = new IDBFactory()): Promise<ClientStore> {
  const store = await openIdb({ factory })
  await store.init(() => CLIENT, NOW)
  return store
}

export function appendTo(store: ClientStore, count: number, entity = 'stock/a') {
  return store.append(
    (clientId, first) =>
      Array.from({ length: count }, (_, i) => entry(clientId, first + i, entity)),
    { entriesMax: 1000, bytesMax: 1e9 },
    NOW,
    () => 100,
  )
}

export type {
  AppendDraft,
  AppendOptions,
  Client,
  ClientBugs,
  ClientErrorStatusKind,
  ClientOptions,
  ClientStatus,
  ClientWarning,
  Correction,
  EntityState,
  History,
  HistoryOptions,
  HorizonOption,
  LedgerItem,
  QueryOptions,
  QueryResult,
  QueryRow,
  SyncedResult,
  WhereRange,
} from './client-api.ts'
export { createClient, tenantFromToken } from './client.ts'
export type * from './client-store.ts'
export type { ClientEnvironmentOptions, ClientNetwork, PersistentStorage } from './environment.ts'
export { realScheduler } from './environment.ts'
export type { ClientErrorKind, StorageFullError } from './errors.ts'
export { CLIENT_ERROR_KINDS, ClientError, isQuotaError, isStorageFull } from './errors.ts'
export type { IdbClientStoreOptions } from './idb-client-store.ts'
export { createIdbClientStore, DB_VERSION } from './idb-client-store.ts'
export type { MemoryClientDatabase, MemoryClientStoreOptions } from './memory-client-store.ts'
export { createMemoryClientDatabase, createMemoryClientStore } from './memory-client-store.ts'
export type { Scheduler, TimerHandle } from './scheduler.ts'
export type { TransportEvent, WebSocketConstructor, WebSocketLike } from './transport.ts'
export * from './limits.ts'
export type { IndexKey, ViewDefinitions, ViewRecord } from './views.ts'

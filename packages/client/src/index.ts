export type {
  AppendDraft,
  AppendOptions,
  Client,
  ClientOptions,
  ClientStatus,
  Correction,
  EntitySnapshot,
  LedgerItem,
  Outcome,
  SyncedResult,
} from './client.ts'
export { createClient, tenantFromToken } from './client.ts'
export type { ClientErrorKind, StorageFullError } from './errors.ts'
export { CLIENT_ERROR_KINDS, ClientError, isQuotaError, isStorageFull } from './errors.ts'
export { DB_VERSION } from './idb-store.ts'
export type { WebSocketConstructor, WebSocketLike } from './sync.ts'
export * from './limits.ts'

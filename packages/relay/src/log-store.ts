/**
 * The server log's interface lives in `@ledgerline/log` (with the one planner and the one
 * group commit); the relay re-exports it so `@ledgerline/relay` users keep one import.
 */
export type {
  AppendItem,
  AppendResult,
  ClientRecord,
  ClientTakenResult,
  EntityHead,
  LogStore,
  LogStoreOptions,
  Pusher,
} from '@ledgerline/log'
export { isLogStoreError, LogStoreError } from '@ledgerline/log'

export type { ClientLike, EntitySnapshot, MaybePromise } from './client-like.ts'
export {
  createCorrectionsStore,
  createEntityStore,
  createReadStore,
  createStatusStore,
  type ExternalStore,
} from './stores.ts'
export {
  LedgerlineProvider,
  useClient,
  useCorrections,
  useEntity,
  useStatus,
  useStore,
  type LedgerlineProviderProps,
} from './hooks.ts'

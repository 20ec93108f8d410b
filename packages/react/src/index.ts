export type { ClientLike, EntityState, MaybePromise } from './client-like.ts'
export {
  createCorrectionsStore,
  createEntityStore,
  createReadStore,
  createStatusStore,
  type ExternalStore,
} from './external-stores.ts'
export {
  LedgerlineProvider,
  useClient,
  useCorrections,
  useEntity,
  useStatus,
  useStore,
  type LedgerlineProviderProps,
} from './hooks.ts'

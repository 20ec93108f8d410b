export type {
  ClientLike,
  EntityState,
  MaybePromise,
  QueryOptionsLike,
  QueryResultLike,
} from './client-like.ts'
export {
  createCorrectionsStore,
  createEntityStore,
  createQueryStore,
  createReadStore,
  createStatusStore,
  type ExternalStore,
} from './external-stores.ts'
export {
  LedgerlineProvider,
  useClient,
  useCorrections,
  useEntity,
  useQuery,
  useStatus,
  useStore,
  type LedgerlineProviderProps,
} from './hooks.ts'

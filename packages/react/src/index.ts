export type {
  ClientLike,
  EntityState,
  MaybePromise,
  OutcomeLike,
  QueryOptionsLike,
  QueryResultLike,
} from './client-like.ts'
export {
  createCorrectionsStore,
  createEntityStore,
  createOutcomeStore,
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
  useOutcome,
  useQuery,
  useStatus,
  useStore,
  type LedgerlineProviderProps,
} from './hooks.ts'

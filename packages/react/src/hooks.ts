/**
 * React bindings: a provider that hands one client to a tree, and hooks that read entities,
 * status and corrections through `useSyncExternalStore`, so a component re-renders exactly when
 * what it reads changed, and concurrent rendering never sees a torn value.
 *
 * Invariants:
 * 1. One external store per (client, entity) per component; it is remade only when either
 *    changes.
 * 2. Hooks never append: writes go through `useClient()`.
 */
import {
  createContext,
  createElement,
  useContext,
  useMemo,
  useSyncExternalStore,
  type ReactNode,
} from 'react'
import type {
  ClientLike,
  EntityState,
  OutcomeLike,
  QueryOptionsLike,
  QueryResultLike,
} from './client-like.ts'
import {
  createCorrectionsStore,
  createEntityStore,
  createOutcomeStore,
  createQueryStore,
  createStatusStore,
  type ExternalStore,
} from './external-stores.ts'

const ClientContext = createContext<ClientLike | null>(null)

export interface LedgerlineProviderProps<C extends ClientLike> {
  readonly client: C
  readonly children?: ReactNode
}

/**
 * Makes `client` available to the hooks below it.
 *
 * @example
 * createRoot(el).render(<LedgerlineProvider client={client}><App /></LedgerlineProvider>)
 */
export function LedgerlineProvider<C extends ClientLike>(props: LedgerlineProviderProps<C>) {
  return createElement(ClientContext.Provider, { value: props.client }, props.children)
}

/**
 * The client of the nearest `LedgerlineProvider`; throws when there is none (a programmer
 * error: the tree is wired wrongly).
 *
 * @example
 * const client = useClient<LedgerlineClient>()
 * await client.append('stock/s1:espresso', 'stock.received', { qty: 6 })
 */
export function useClient<C extends ClientLike = ClientLike>(): C {
  const client = useContext(ClientContext)
  if (client === null) throw new Error('useClient needs a <LedgerlineProvider client={…}> above')
  return client as C
}

/**
 * One entity's state (`view`, `confirmed`, `version`, `pending`, and `store`: other devices'
 * entries the store hub holds, not yet confirmed), or `undefined` while the client still loads
 * it.
 *
 * @example
 * const stock = useEntity<{ onHand: number }>('stock/s1:espresso')
 * return <span>{stock?.view.onHand}</span>
 */
export function useEntity<S>(entity: string): EntityState<S> | undefined {
  const client = useClient()
  const store = useMemo(() => createEntityStore<S>(client, entity), [client, entity])
  return useStore(store)
}

/**
 * The client's status (`online`, `outboxEntries`, `oldestOutboxAt`, …), or `undefined` before
 * the first read settles. The three stages of own entries: `deviceEntries` (only in this
 * register), `storedEntries` (in the store, durable on the hub), and `headOffice` (whether head
 * office is reached); `relay` says which relay the client syncs through.
 *
 * @example
 * const status = useStatus<ClientStatus>()
 * return <span>{status?.online ? 'online' : 'offline'}</span>
 */
export function useStatus<T = unknown>(): T | undefined {
  const client = useClient()
  const store = useMemo(() => createStatusStore<T>(client), [client])
  return useStore(store)
}

/**
 * Where one own entry is: `{ _tag: 'outbox', stage: 'device' | 'store' }` (on this device, or
 * durable on the store hub), then head office's answer (`appended`, `refused`, …); `undefined`
 * before the first read. For a receipt badge that moves through the three stages.
 *
 * @example
 * const outcome = useOutcome(sale.id)
 * return <Badge>{outcome?._tag === 'outbox' ? `in ${outcome.stage}` : 'at head office'}</Badge>
 */
export function useOutcome(entryId: string): OutcomeLike | undefined {
  const client = useClient()
  const store = useMemo(() => createOutcomeStore(client, entryId), [client, entryId])
  return useStore(store)
}

/**
 * The corrections feed: every correction the relay appended against this client's entries.
 *
 * @example
 * const corrections = useCorrections()
 * return <Badge count={corrections.length} />
 */
export function useCorrections<T = unknown>(): readonly T[] {
  const client = useClient()
  const store = useMemo(() => createCorrectionsStore<T>(client), [client])
  return useStore(store)
}

/**
 * A live query (`client.subscribeQuery`): the rows of one entity type through an index its
 * schema declares, `undefined` until the first result; re-renders when the result changes.
 * The options are compared by value (JSON), so an inline object does not resubscribe.
 *
 * @example
 * const today = useQuery<Order>('order/*', { where: { byDay: '2026-12-01' } })
 * return <ul>{today?.rows.map((r) => <li key={r.entity}>{r.view.total}</li>)}</ul>
 */
export function useQuery<S>(
  pattern: string,
  options?: QueryOptionsLike | undefined,
): QueryResultLike<S> | undefined {
  const client = useClient()
  const key = JSON.stringify(options ?? null)
  const store = useMemo(() => createQueryStore<S>(client, pattern, options), [client, pattern, key])
  return useStore(store)
}

/** Reads any `ExternalStore` (for external stores made with `createReadStore`). */
export function useStore<T>(store: ExternalStore<T>): T {
  return useSyncExternalStore(store.subscribe, store.getSnapshot, store.getSnapshot)
}

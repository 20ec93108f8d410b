/**
 * The part of the Ledgerline client the hooks use.
 *
 * The hooks depend on this narrow shape rather than on the whole client, so a test (or an
 * app wrapping the client) can hand them any object that keeps these promises:
 *
 * 1. `subscribe(entity, onChange)` calls `onChange` after every change of the entity's view
 *    (local append, ack, entries from the relay) and returns a function that stops it.
 * 2. `get(entity)` returns the entity's current state (`EntityState`), or a promise of it while
 *    the client still loads the ledger from its client store.
 * 3. `onStatus` and `onCorrection` call back after every change and return an unsubscribe.
 * 4. `subscribeQuery(pattern, options, onResult)` (for `useQuery`) calls back with the first
 *    result and then with every changed one, and returns an unsubscribe.
 * 5. `outcome(entryId)` (for `useOutcome`) answers where an own entry is; a change of it is
 *    always followed by an `onStatus` call (the outbox counters move with it).
 */

/**
 * One entity as the client folds it: confirmed, the store layer (other devices' entries a store
 * hub holds that head office has not confirmed), own pending entries, and the view of them all.
 */
export interface EntityState<S = unknown> {
  readonly view: S
  readonly confirmed: S
  readonly version: number
  readonly pending: readonly unknown[]
  /** Empty unless the client syncs through a store hub. */
  readonly store: readonly unknown[]
}

/** Where one own entry is (`client.outcome(id)`): a stage, or head office's answer. */
export interface OutcomeLike {
  readonly _tag: string
  /** For `outbox`: `device` (only on this device) or `store` (durable on the store hub). */
  readonly stage?: 'device' | 'store' | undefined
}

export type MaybePromise<T> = T | Promise<T>

export interface ClientLike {
  get(entity: string): MaybePromise<EntityState>
  subscribe(entity: string, onChange: () => void): () => void
  status(): MaybePromise<unknown>
  onStatus(onChange: () => void): () => void
  corrections(): MaybePromise<readonly unknown[]>
  onCorrection(onChange: () => void): () => void
  /** For `useOutcome`: where one own entry is now. */
  outcome?(entryId: string): Promise<OutcomeLike>
  subscribeQuery?(
    pattern: string,
    options: QueryOptionsLike | undefined,
    onResult: (result: QueryResultLike) => void,
  ): () => void
}

/** A query's options as the client takes them (`where`, `orderBy`, `limit`). */
export type QueryOptionsLike = object

/** A query's result as the client gives it: rows of views, and whether rows were cut. */
export interface QueryResultLike<S = unknown> {
  readonly rows: readonly { readonly entity: string; readonly view: S; readonly version: number }[]
  readonly more: boolean
}

/**
 * The typed error of `append` outside business outcomes. Business outcomes are results
 * (`AckResult`); a store's own failures (a disk or database error) are the store's errors.
 */

export const LOG_STORE_ERROR_KINDS = [
  /** The commit queue is full (`COMMIT_QUEUE_ENTRIES_MAX`): retry after a backoff. */
  'overloaded',
  /** The store is closed or closing: nothing was accepted. */
  'closed',
  /** The caller broke the interface (an item of another tenant): a bug, nothing was written. */
  'invalid',
  /** A read from below an entity's first kept version (`log-retention.ts` invariant 4). */
  'history_dropped',
] as const
export type LogStoreErrorKind = (typeof LOG_STORE_ERROR_KINDS)[number]

/**
 * Rejected by `LogStore.append` for the kinds above; nothing of the call was recorded.
 *
 * @example
 * store.append(tenant, items).catch((e) => isLogStoreError(e, 'overloaded') && backOff())
 */
export class LogStoreError extends Error {
  readonly kind: LogStoreErrorKind
  constructor(kind: LogStoreErrorKind, message: string) {
    super(message)
    this.name = 'LogStoreError'
    this.kind = kind
  }
}

/**
 * True for a `LogStoreError`, of `kind` when given.
 *
 * @example
 * isLogStoreError(new LogStoreError('closed', 'closed'), 'closed') // true
 */
export function isLogStoreError(error: unknown, kind?: LogStoreErrorKind): error is LogStoreError {
  return error instanceof LogStoreError && (kind === undefined || error.kind === kind)
}

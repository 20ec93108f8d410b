/**
 * The client's one error class, `ClientError`, thrown at the package edge for failures the app
 * must handle (storage full, outbox full, bad input, closed client). Business outcomes of entries
 * (refused, corrected) are never errors: they are tagged unions from `outcome()` and the
 * corrections feed.
 *
 * Invariants:
 * 1. When `append`/`appendMany` throws, nothing of the call was written (IndexedDB transactions
 *    are atomic and the client aborts the transaction on any failure).
 * 2. A quota failure always has kind `storage_full`, whether the browser reported it as a
 *    `QuotaExceededError` or wrapped it in an `AbortError`.
 * 3. Bad input is never reported as `storage`: an entry refused by core's validation, also
 *    inside a write, is `invalid` (or `unknown_type`).
 */
import { LedgerError } from '@ledgerline/core'

export const CLIENT_ERROR_KINDS = [
  /** The browser refused the write for lack of space. Free space (or sync) and retry. */
  'storage_full',
  /** The outbox holds `OUTBOX_ENTRIES_MAX` entries or `OUTBOX_BYTES_MAX` bytes. Sync, then retry. */
  'outbox_full',
  /** The entry, entity or option is malformed (the message names the field). */
  'invalid',
  /** The schema has no entity type for the entity. */
  'unknown_type',
  /** An entry's data is larger than the protocol allows. */
  'too_large',
  /** The database could not be opened or failed (see `cause`). */
  'storage',
  /** Another tab holds an older version of the database open and did not close it in time. */
  'upgrade_blocked',
  /**
   * The database has a newer layout than this build reads (an older app opened it: a stale
   * service worker or tab). Nothing was changed; reload to get the newer app.
   */
  'version',
  /** The client was closed, or its database connection was closed by a newer tab. */
  'closed',
  /** A wait (`synced`) ran past its time. */
  'timeout',
  /**
   * It needs the relay and none is there: not connected, the tab does not hold the connection,
   * or the relay keeps no snapshots (history on demand). Nothing was lost; retry when online.
   */
  'offline',
  /** Too many requests of one kind wait already (history fetches: FETCH_WAITING_MAX). */
  'busy',
] as const
export type ClientErrorKind = (typeof CLIENT_ERROR_KINDS)[number]

/**
 * @example
 * try { await client.append('stock/a', 'stock.moved', { qty: 1 }) }
 * catch (e) { if (isStorageFull(e)) showBanner('Storage is full') }
 */
export class ClientError extends Error {
  readonly kind: ClientErrorKind
  constructor(kind: ClientErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'ClientError'
    this.kind = kind
  }
}

/** A `ClientError` of kind `storage_full`. */
export type StorageFullError = ClientError & { readonly kind: 'storage_full' }

/**
 * True when `error` is a `ClientError` of kind `storage_full`.
 *
 * @example
 * if (isStorageFull(error)) showBanner('Storage is full: sync or free space, then retry')
 */
export function isStorageFull(error: unknown): error is StorageFullError {
  return error instanceof ClientError && error.kind === 'storage_full'
}

/**
 * True when `error` is, or wraps, a quota failure. Browsers report quota exhaustion as a
 * `QuotaExceededError` DOMException, but it may also surface as an `AbortError` of the
 * transaction with the quota error as its cause or as the transaction's `error`
 * (https://dexie.org/docs/DexieErrors/Dexie.QuotaExceededError). Legacy code 22 is checked too.
 */
export function isQuotaError(error: unknown, depth = 0): boolean {
  if (depth > 4 || typeof error !== 'object' || error === null) return false
  const e = error as {
    name?: unknown
    code?: unknown
    message?: unknown
    cause?: unknown
    inner?: unknown
  }
  if (e.name === 'QuotaExceededError' || e.code === 22) return true
  if (e.name === 'AbortError' && typeof e.message === 'string' && /quota/i.test(e.message))
    return true
  return isQuotaError(e.cause, depth + 1) || isQuotaError(e.inner, depth + 1)
}

/**
 * Turns a failure inside a client store write into a `ClientError`. An entry that fails its
 * validation there is bad input of the app (`invalid`, `unknown_type`), not a storage failure.
 */
export function toStorageError(error: unknown, txError?: unknown): ClientError {
  if (error instanceof ClientError) return error
  if (error instanceof LedgerError) return fromLedgerError(error) as ClientError
  if (isQuotaError(error) || isQuotaError(txError)) {
    return new ClientError('storage_full', 'the browser refused the write: storage is full', {
      cause: txError ?? error,
    })
  }
  const name = (error as { name?: unknown } | null)?.name
  if (name === 'InvalidStateError' || name === 'TransactionInactiveError') {
    return new ClientError('closed', `database is not usable: ${String(name)}`, { cause: error })
  }
  return new ClientError('storage', `client store failed: ${describe(error)}`, { cause: error })
}

/** Turns a `LedgerError` from core into the matching `ClientError`. */
export function fromLedgerError(error: unknown): unknown {
  if (!(error instanceof LedgerError)) return error
  return new ClientError(
    error.kind === 'unknown_type' ? 'unknown_type' : 'invalid',
    error.message,
    {
      cause: error,
    },
  )
}

function describe(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`
  return String(error)
}

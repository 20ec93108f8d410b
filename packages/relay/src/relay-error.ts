/**
 * The relay's one error class for thrown failures at its edges (a store that cannot open, a bad
 * option, a schema module without a schema). Business outcomes are results (`AckResult`), and
 * what a client did wrong is a wire `error` message; neither throws.
 */

export const RELAY_ERROR_KINDS = [
  /** An option or flag is missing or wrong. */
  'config',
  /** The log cannot guarantee durability (WAL or synchronous=FULL did not stick). */
  'durability',
  /** The log file was made by a newer Ledgerline (its schema version is unknown). */
  'store_version',
  /** The log failed to read or write. */
  'store_failed',
  /** The log is closed or closing. */
  'store_closed',
  /** A schema module could not be loaded or has no schema as its default export. */
  'schema_module',
  /** The relay is not available in this build (e.g. a store backend). */
  'unavailable',
  /** The data directory is held by another relay (`data-dir-lock.ts`). */
  'locked',
] as const
export type RelayErrorKind = (typeof RELAY_ERROR_KINDS)[number]

/**
 * Thrown by the relay and its stores.
 *
 * @example
 * try { await createSqliteStore({ file }) } catch (e) { if (e instanceof RelayError) e.kind }
 */
export class RelayError extends Error {
  readonly kind: RelayErrorKind
  constructor(kind: RelayErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'RelayError'
    this.kind = kind
  }
}

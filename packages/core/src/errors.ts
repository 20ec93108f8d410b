/**
 * Errors of the pure model.
 *
 * Two kinds live here (see STYLE.md, Errors):
 * - `LedgerError`: bad input handed to a public function (an entity name with a space, an entry
 *   without a kind, an unknown entity type). It carries a `kind` from a closed set and a message
 *   that names the field, so callers can branch on `kind` and people can read `message`.
 * - `assert` / `unreachable`: programmer errors, states that cannot happen. They crash.
 */

export const LEDGER_ERROR_KINDS = [
  'invalid_entity',
  'invalid_tenant',
  'invalid_pattern',
  'invalid_entry',
  'invalid_entity_type',
  'unknown_type',
  'invalid_hlc',
  'invalid_argument',
] as const
export type LedgerErrorKind = (typeof LEDGER_ERROR_KINDS)[number]

/**
 * Thrown by `core` for bad input. Nothing has been changed when it is thrown: every function of
 * `core` is pure.
 *
 * @example
 * try { parseEntityName('no slash') } catch (e) { if (e instanceof LedgerError) e.kind }
 */
export class LedgerError extends Error {
  readonly kind: LedgerErrorKind
  constructor(kind: LedgerErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'LedgerError'
    this.kind = kind
  }
}

/** Crashes on a broken invariant of our own code; never use it for input checks. */
export function assert(condition: unknown, message = 'assertion failed'): asserts condition {
  if (!condition) throw new Error(`Ledgerline bug: ${message}`)
}

/** For the default branch of a switch over a closed union. */
export function unreachable(value: never): never {
  throw new Error(`Ledgerline bug: unreachable case ${JSON.stringify(value)}`)
}

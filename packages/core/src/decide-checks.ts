/**
 * The checks and the reason clipping that the decision (`decide.ts`) and the corrections it
 * builds (`corrections.ts`) share.
 *
 * Terms: a *reason* is the text a refusal, a deferral or a `ledger.correction_failed` carries;
 * it may come from schema code (a thrown error, a `validate` verdict) of any length.
 *
 * Invariants (numbered as in `decide.ts`):
 * 13. A reason is at most `REASON_LENGTH_MAX` characters (clipped with `…`), so an ack that
 *    carries it still fits its limits.
 * 7. A `now` that is not a finite, non-negative number of ms is a `LedgerError`
 *    `invalid_argument`.
 */
import { LedgerError } from './errors.ts'
import { REASON_LENGTH_MAX } from './limits.ts'

/**
 * Throws unless `now` is a usable clock reading (invariant 7).
 *
 * @example
 * checkNow(Date.now()) // nothing; checkNow(Number.NaN) throws LedgerError invalid_argument
 */
export function checkNow(now: number): void {
  if (typeof now !== 'number' || !Number.isFinite(now) || now < 0) {
    throw new LedgerError('invalid_argument', 'now must be a non-negative number of ms')
  }
}

/**
 * The reason a thrown value gives, clipped (invariant 13).
 *
 * @example
 * errorReason(new Error('rule exploded')) // 'rule exploded'
 */
export function errorReason(error: unknown): string {
  return clipReason(error instanceof Error ? error.message : String(error))
}

/**
 * Reasons come from schema code and can be any length; an ack must still fit its limits.
 *
 * @example
 * clipReason('x'.repeat(10_000)).length // REASON_LENGTH_MAX, ending in '…'
 */
export function clipReason(reason: string): string {
  return reason.length <= REASON_LENGTH_MAX ? reason : `${reason.slice(0, REASON_LENGTH_MAX - 1)}…`
}

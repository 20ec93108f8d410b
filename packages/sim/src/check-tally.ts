/**
 * The named checks of a product simulation and their tally: how many times each check failed,
 * and the first messages of each, in the order a reader wants them.
 *
 * Terms: a *violation* is one failure of a named check, with its message.
 *
 * Invariants:
 * 1. Every violation counts under its check; at most `SIM_VIOLATIONS_KEPT_MAX` messages per
 *    check are kept (the count is never capped).
 * 2. The kept messages come out by check: what stopped the run first (`liveness`, `crashes`),
 *    then the others in `PRODUCT_CHECKS` order, each check's in the order they were found.
 */
import { SIM_VIOLATIONS_KEPT_MAX } from './limits.ts'

export const PRODUCT_CHECKS = [
  'exactly-once',
  'ids',
  'offsets',
  'versions',
  'client-order',
  'acks',
  'corrections',
  'requests',
  'oracle',
  'convergence',
  'store-layer',
  'outbox',
  'liveness',
  'crashes',
] as const
export type ProductCheck = (typeof PRODUCT_CHECKS)[number]

/** Records one violation of `check` (invariant 1). */
export type Violate = (check: ProductCheck, message: string) => void

export interface CheckTally {
  /** Violations per check; a check may add to its count directly (invariant 1). */
  readonly counts: Record<ProductCheck, number>
  readonly violate: Violate
  /** The kept messages, ordered (invariant 2). */
  violations(): string[]
}

/**
 * @example
 * const tally = createCheckTally()
 * tally.violate('acks', 'till-1 was acked e-1 at 0/3; not there')
 */
export function createCheckTally(): CheckTally {
  const counts = Object.fromEntries(PRODUCT_CHECKS.map((c) => [c, 0])) as Record<
    ProductCheck,
    number
  >
  const kept = new Map<ProductCheck, string[]>(PRODUCT_CHECKS.map((c) => [c, []]))
  const violate = (check: ProductCheck, message: string) => {
    counts[check]++
    const list = kept.get(check) as string[]
    if (list.length < SIM_VIOLATIONS_KEPT_MAX) list.push(`${check}: ${message}`)
  }
  return {
    counts,
    violate,
    violations() {
      // What stopped the run first, then what it broke, each check's first messages together.
      const order: ProductCheck[] = [
        'liveness',
        'crashes',
        ...PRODUCT_CHECKS.filter((c) => c !== 'liveness' && c !== 'crashes'),
      ]
      return order.flatMap((c) => kept.get(c) as string[])
    },
  }
}

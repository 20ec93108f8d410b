/**
 * Named crash points of the product simulation: moments on the write and sync paths at which
 * the world cuts a till's power or kills the relay, found from outside the product (the disk,
 * the wire, the store the sessions see), so no product code carries a hook.
 *
 *   till.commit.after    an IndexedDB readwrite transaction completed; the app has not heard yet
 *   till.push.after      a till sent a push; it is in flight
 *   relay.append.before  a push reached the log's `append`; nothing is decided yet
 *   relay.commit.after   the log committed a call; its ack is not sent yet
 *
 * Invariants:
 * 1. Every point is hit through `hit()`, which counts it, so a run reports which points it
 *    reached and how often each fired.
 * 2. Decisions come from the crash points' own stream: they replay from the root seed.
 * 3. Points fire only while enabled (off after the heal, so a run can drain).
 */
import type { Prng } from '@ledgerline/testkit'

export const PRODUCT_CRASH_POINTS = [
  'till.commit.after',
  'till.push.after',
  'relay.append.before',
  'relay.commit.after',
] as const
export type ProductCrashPoint = (typeof PRODUCT_CRASH_POINTS)[number]

export interface ProductCrashPoints {
  /** True when the node must crash here, now; counts the hit (invariant 1). */
  hit(point: ProductCrashPoint): boolean
  setEnabled(enabled: boolean): void
  readonly stats: {
    readonly hits: Record<ProductCrashPoint, number>
    readonly fired: Record<ProductCrashPoint, number>
  }
}

/**
 * @example
 * const points = createProductCrashPoints(rng.fork('points'), 0.01)
 * if (points.hit('relay.commit.after')) relay.crash()
 */
export function createProductCrashPoints(rng: Prng, rate: number): ProductCrashPoints {
  const zero = () =>
    Object.fromEntries(PRODUCT_CRASH_POINTS.map((p) => [p, 0])) as Record<ProductCrashPoint, number>
  const stats = { hits: zero(), fired: zero() }
  let enabled = true
  return {
    hit(point) {
      stats.hits[point]++
      if (!enabled || !rng.chance(rate)) return false
      stats.fired[point]++
      return true
    },
    setEnabled(on) {
      enabled = on
    },
    stats,
  }
}

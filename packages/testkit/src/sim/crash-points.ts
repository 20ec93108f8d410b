/**
 * Named crash points (FoundationDB's BUGGIFY, scoped to the write and sync paths). At each point
 * the simulation may crash the node, delay the step, or make it throw; in production code the
 * same places would be a no-op.
 *
 *   client write  : append.beforeTx ─► [local tx] ─► append.afterTx ─► resolve
 *   client sync   : push.afterSend ─► … ─► ack.beforeDelete ─► [outbox delete tx]
 *                   page.beforeTx ─► [page tx]
 *   relay append  : push.beforeAppend ─► log.beforeCommit ─► [commit] ─► log.afterCommit
 *                   ─► [ack sent] ─► fanout.afterCommit ─► [live pages]
 *
 * Invariants:
 * 1. Every point is hit through `hit()`, which counts it, so a run reports which points it
 *    exercised and how often each one fired.
 * 2. A point only takes actions it allows (`throw` is meaningless after a commit has resolved
 *    for the app, so those points never throw).
 * 3. Decisions come from the crash points' own stream: they replay from the root seed.
 */
import type { Prng } from './prng.ts'

export const CRASH_POINTS = [
  'client.append.beforeTx',
  'client.append.afterTx',
  'client.push.afterSend',
  'client.ack.beforeDelete',
  'client.page.beforeTx',
  'relay.push.beforeAppend',
  'relay.log.beforeCommit',
  'relay.log.afterCommit',
  'relay.fanout.afterCommit',
] as const
export type CrashPoint = (typeof CRASH_POINTS)[number]

export type CrashAction = 'continue' | 'crash' | 'delay' | 'throw'

const THROWS: ReadonlySet<CrashPoint> = new Set<CrashPoint>([
  'client.append.beforeTx',
  'relay.push.beforeAppend',
  'relay.log.beforeCommit',
  'relay.log.afterCommit',
])

export interface CrashRates {
  readonly crash: number
  readonly delay: number
  readonly throw: number
}

export interface CrashPointStats {
  readonly hits: Record<CrashPoint, number>
  readonly crashes: Record<CrashPoint, number>
  readonly delays: Record<CrashPoint, number>
  readonly throws: Record<CrashPoint, number>
}

export interface CrashPoints {
  /** Decides what happens at `point` this time, and counts it. */
  hit(point: CrashPoint): CrashAction
  /** Turns faults on or off (off while healing and draining). */
  setEnabled(enabled: boolean): void
  readonly stats: CrashPointStats
}

/**
 * @example
 * const points = createCrashPoints(rng.fork('points'), { crash: 0.01, delay: 0.05, throw: 0.01 })
 * if (points.hit('relay.log.beforeCommit') === 'crash') crashServer()
 */
export function createCrashPoints(rng: Prng, rates: CrashRates): CrashPoints {
  const zero = () =>
    Object.fromEntries(CRASH_POINTS.map((p) => [p, 0])) as Record<CrashPoint, number>
  const stats: CrashPointStats = { hits: zero(), crashes: zero(), delays: zero(), throws: zero() }
  let enabled = true
  return {
    hit(point) {
      stats.hits[point]++
      if (!enabled) return 'continue'
      const x = rng.float()
      if (x < rates.crash) {
        stats.crashes[point]++
        return 'crash'
      }
      if (x < rates.crash + rates.delay) {
        stats.delays[point]++
        return 'delay'
      }
      if (THROWS.has(point) && x < rates.crash + rates.delay + rates.throw) {
        stats.throws[point]++
        return 'throw'
      }
      return 'continue'
    },
    setEnabled(on) {
      enabled = on
    },
    stats,
  }
}

/**
 * Hybrid logical clock.
 *
 * A timestamp is `<ms>:<count>:<node>` with `ms` as 15 decimal digits and `count` as 5, so
 * timestamps sort as strings. `node` is the client id (or `server`), which breaks ties.
 *
 * Invariants:
 * 1. `tick()` returns strictly increasing timestamps, also when the wall clock jumps backwards:
 *    the clock keeps the largest time it has seen and counts up within it.
 * 2. `receive(remote)` moves the clock past `remote`, so what a node sends after hearing an
 *    entry is ordered after it.
 * 3. A remote time further than `driftMsMax` ahead of the wall clock is refused (a typed error),
 *    so one bad clock cannot drag every other node into the future.
 */
import { LedgerError } from './errors.ts'

export interface Hlc {
  readonly ms: number
  readonly count: number
  readonly node: string
}

export interface HlcClock {
  /** A new timestamp for a local event or a send. */
  tick(): string
  /** Merges a timestamp heard from elsewhere. */
  receive(remote: string): void
  /** The last timestamp given out or merged, without advancing. */
  peek(): string
}

const MS_DIGITS = 15
const COUNT_DIGITS = 5
const COUNT_MAX = 99_999
const HLC_RE = /^(\d{15}):(\d{5}):([A-Za-z0-9_-]{1,64})$/
const NODE_RE = /^[A-Za-z0-9_-]{1,64}$/
/** Default refusal threshold for remote times ahead of the wall clock: one day. */
export const HLC_DRIFT_MS_MAX = 24 * 60 * 60 * 1000

/**
 * @example
 * const clock = createHlcClock('3f1c…', () => Date.now())
 * clock.tick() // '001732700000000:00000:3f1c…'
 */
export function createHlcClock(
  node: string,
  now: () => number,
  options: { driftMsMax?: number; last?: string } = {},
): HlcClock {
  if (typeof node !== 'string' || !NODE_RE.test(node)) {
    throw new LedgerError('invalid_argument', 'hlc node must be 1..64 of A-Z a-z 0-9 _ -')
  }
  if (typeof now !== 'function') {
    throw new LedgerError('invalid_argument', 'hlc needs a wall clock function')
  }
  const driftMsMax = options.driftMsMax ?? HLC_DRIFT_MS_MAX
  if (typeof driftMsMax !== 'number' || !(driftMsMax >= 0)) {
    throw new LedgerError('invalid_argument', 'hlc driftMsMax must be a non-negative number')
  }
  // A wall clock that returns NaN would silently disable the drift check: refuse it.
  const wallMs = () => {
    const wall = now()
    if (typeof wall !== 'number' || !Number.isFinite(wall)) {
      throw new LedgerError('invalid_argument', `hlc wall clock returned ${String(wall)}`)
    }
    return Math.floor(wall)
  }
  let ms = 0
  let count = 0
  if (options.last !== undefined) {
    const last = decodeHlc(options.last)
    ms = last.ms
    count = last.count
  }
  const advance = (floorMs: number, floorCount: number) => {
    const wall = wallMs()
    if (wall > floorMs) {
      ms = wall
      count = 0
    } else {
      ms = floorMs
      count = floorCount + 1
      if (count > COUNT_MAX) {
        ms += 1
        count = 0
      }
    }
  }
  return {
    tick() {
      advance(ms, count)
      return encodeHlc({ ms, count, node })
    },
    receive(remote) {
      const r = decodeHlc(remote)
      const wall = wallMs()
      if (r.ms - wall > driftMsMax) {
        throw new LedgerError(
          'invalid_hlc',
          `remote clock is ${r.ms - wall} ms ahead, over ${driftMsMax}`,
        )
      }
      if (r.ms > ms || (r.ms === ms && r.count > count)) {
        ms = r.ms
        count = r.count
      }
      advance(ms, count)
    },
    peek() {
      return encodeHlc({ ms, count, node })
    },
  }
}

/** @example encodeHlc({ ms: 5, count: 1, node: 'a' }) // '000000000000005:00001:a' */
export function encodeHlc(hlc: Hlc): string {
  if (typeof hlc !== 'object' || hlc === null || typeof hlc.node !== 'string') {
    throw new LedgerError('invalid_hlc', 'hlc must be { ms, count, node }')
  }
  if (!NODE_RE.test(hlc.node)) {
    throw new LedgerError('invalid_hlc', 'hlc node must be 1..64 of A-Z a-z 0-9 _ -')
  }
  if (!Number.isSafeInteger(hlc.ms) || hlc.ms < 0 || hlc.ms >= 10 ** MS_DIGITS) {
    throw new LedgerError('invalid_hlc', 'hlc ms must be a non-negative integer below 10^15')
  }
  if (!Number.isSafeInteger(hlc.count) || hlc.count < 0 || hlc.count > COUNT_MAX) {
    throw new LedgerError('invalid_hlc', `hlc count must be 0..${COUNT_MAX}`)
  }
  return `${String(hlc.ms).padStart(MS_DIGITS, '0')}:${String(hlc.count).padStart(COUNT_DIGITS, '0')}:${hlc.node}`
}

/** @example decodeHlc('000000000000005:00001:a') // { ms: 5, count: 1, node: 'a' } */
export function decodeHlc(text: unknown): Hlc {
  const match = typeof text === 'string' ? HLC_RE.exec(text) : null
  if (match === null)
    throw new LedgerError('invalid_hlc', `hlc must look like '<15 digits>:<5 digits>:<node>'`)
  return { ms: Number(match[1]), count: Number(match[2]), node: match[3] as string }
}

/** Checks a timestamp and returns it. */
export function checkHlc(text: unknown): string {
  decodeHlc(text)
  return text as string
}

/** Orders timestamps (both must be valid: fixed widths make string order time order): negative, zero or positive like `Array.prototype.sort` wants. */
export function compareHlc(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

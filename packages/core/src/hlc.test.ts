// Goal: the hybrid logical clock gives strictly increasing, string-sortable timestamps even when
// the wall clock jumps backwards or stalls, moves past what it receives, and refuses remote
// times too far ahead. Method: a scripted fake wall clock, encode/decode tables, and a property
// (fixed seed) over random wall-clock sequences with backward jumps and random receives.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { LedgerError } from './errors.ts'
import {
  checkHlc,
  compareHlc,
  createHlcClock,
  decodeHlc,
  encodeHlc,
  HLC_DRIFT_MS_MAX,
} from './hlc.ts'

function ledgerError(fn: () => unknown): LedgerError {
  try {
    fn()
  } catch (error) {
    if (error instanceof LedgerError) return error
    throw new Error(`expected a LedgerError, got ${String(error)}`)
  }
  throw new Error('expected a LedgerError, nothing was thrown')
}

describe('encodeHlc / decodeHlc', () => {
  it('round-trips and pads to fixed widths', () => {
    expect(encodeHlc({ ms: 5, count: 1, node: 'a' })).toBe('000000000000005:00001:a')
    expect(decodeHlc('000000000000005:00001:a')).toEqual({ ms: 5, count: 1, node: 'a' })
    expect(checkHlc('001732700000000:00000:server')).toBe('001732700000000:00000:server')
  })

  it.each([
    [{ ms: -1, count: 0, node: 'a' }, 'ms'],
    [{ ms: 1e15, count: 0, node: 'a' }, 'ms'],
    [{ ms: 1.5, count: 0, node: 'a' }, 'ms'],
    [{ ms: 1, count: 100_000, node: 'a' }, 'count'],
    [{ ms: 1, count: 0, node: 'a:b' }, 'node'],
    [{ ms: 1, count: 0, node: '' }, 'node'],
    [null, 'hlc must be'],
  ])('encodeHlc refuses %j', (hlc, field) => {
    const error = ledgerError(() => encodeHlc(hlc as never))
    expect(error.kind).toBe('invalid_hlc')
    expect(error.message).toContain(field)
  })

  it.each([['5:1:a'], ['000000000000005:00001:'], ['000000000000005:00001:a b'], [5], [null]])(
    'decodeHlc refuses %j',
    (text) => {
      expect(ledgerError(() => decodeHlc(text)).kind).toBe('invalid_hlc')
    },
  )

  it('compareHlc orders by time, then count, then node', () => {
    const a = encodeHlc({ ms: 1, count: 9, node: 'z' })
    const b = encodeHlc({ ms: 2, count: 0, node: 'a' })
    const c = encodeHlc({ ms: 2, count: 0, node: 'b' })
    expect([c, b, a].sort(compareHlc)).toEqual([a, b, c])
    expect(compareHlc(a, a)).toBe(0)
  })
})

describe('createHlcClock', () => {
  it('follows the wall clock and counts within a millisecond', () => {
    let wall = 1000
    const clock = createHlcClock('n1', () => wall)
    expect(clock.tick()).toBe('000000000001000:00000:n1')
    expect(clock.tick()).toBe('000000000001000:00001:n1')
    wall = 2000.7
    expect(clock.tick()).toBe('000000000002000:00000:n1')
    expect(clock.peek()).toBe('000000000002000:00000:n1')
  })

  it('stays monotonic when the wall clock jumps backwards', () => {
    let wall = 5000
    const clock = createHlcClock('n1', () => wall)
    const first = clock.tick()
    wall = 10
    const second = clock.tick()
    expect(compareHlc(first, second)).toBeLessThan(0)
    expect(decodeHlc(second)).toEqual({ ms: 5000, count: 1, node: 'n1' })
  })

  it('carries into the next millisecond when the count is full', () => {
    const clock = createHlcClock('n1', () => 0, { last: '000000000000007:99999:n1' })
    expect(clock.tick()).toBe('000000000000008:00000:n1')
  })

  it('resumes after `last` so a restarted client never reuses a timestamp', () => {
    const clock = createHlcClock('n1', () => 100, { last: '000000000000500:00003:n1' })
    expect(clock.tick()).toBe('000000000000500:00004:n1')
  })

  it('moves past a received timestamp', () => {
    const clock = createHlcClock('n1', () => 100)
    clock.receive('000000000000900:00004:n2')
    expect(compareHlc(clock.tick(), '000000000000900:00004:n2')).toBeGreaterThan(0)
    expect(clock.peek()).toBe('000000000000900:00006:n1')
  })

  it('refuses a remote time further ahead than driftMsMax and keeps its state', () => {
    const clock = createHlcClock('n1', () => 1000, { driftMsMax: 500 })
    const before = clock.tick()
    const error = ledgerError(() => clock.receive('000000000001501:00000:n2'))
    expect(error.kind).toBe('invalid_hlc')
    expect(error.message).toContain('501 ms ahead, over 500')
    expect(clock.peek()).toBe(before)
    clock.receive('000000000001500:00000:n2')
    expect(clock.peek()).toBe('000000000001500:00001:n1')
    expect(HLC_DRIFT_MS_MAX).toBe(86_400_000)
  })

  it.each([
    [['bad node', () => 0, {}], 'node'],
    [['n1', 'not a function', {}], 'wall clock'],
    [['n1', () => 0, { driftMsMax: -1 }], 'driftMsMax'],
    [['n1', () => 0, { last: 'garbage' }], 'hlc must look like'],
  ])('refuses bad arguments %#', (args, text) => {
    const error = ledgerError(() => createHlcClock(...(args as Parameters<typeof createHlcClock>)))
    expect(error.message).toContain(text)
  })

  it('refuses a wall clock that returns NaN rather than skipping the drift check', () => {
    const clock = createHlcClock('n1', () => Number.NaN)
    expect(ledgerError(() => clock.tick()).message).toContain('NaN')
    expect(ledgerError(() => clock.receive('000000000000001:00000:n2')).kind).toBe(
      'invalid_argument',
    )
  })

  it('is strictly increasing under random wall clocks with backward jumps (seed 42)', () => {
    const step = fc.oneof(
      fc.record({ op: fc.constant('tick' as const), wall: fc.integer({ min: 0, max: 5000 }) }),
      fc.record({
        op: fc.constant('receive' as const),
        wall: fc.integer({ min: 0, max: 5000 }),
        remoteMs: fc.integer({ min: 0, max: 6000 }),
        remoteCount: fc.integer({ min: 0, max: 99_998 }),
      }),
    )
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 60 }), (steps) => {
        let wall = 0
        const clock = createHlcClock('n1', () => wall, { driftMsMax: 10_000 })
        let last = clock.peek()
        for (const s of steps) {
          wall = s.wall
          // After a tick the clock is at or past the wall; after a receive, past the remote.
          let floor = s.wall * 100_000 - 1
          if (s.op === 'tick') clock.tick()
          else {
            clock.receive(encodeHlc({ ms: s.remoteMs, count: s.remoteCount, node: 'n2' }))
            floor = s.remoteMs * 100_000 + s.remoteCount
          }
          const next = clock.peek()
          expect(compareHlc(last, next)).toBeLessThan(0)
          expect(decodeHlc(next).ms * 100_000 + decodeHlc(next).count).toBeGreaterThan(floor)
          last = next
        }
      }),
      { seed: 42, numRuns: 150 },
    )
  })
})

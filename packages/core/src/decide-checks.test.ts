// Goal: a reason never outgrows REASON_LENGTH_MAX whatever schema code throws, and a clock
// reading the decision cannot use is bad input. Method: reasons at, just over and far over the
// limit, thrown values that are and are not Errors, and the `now` values decide() must refuse.
import { describe, expect, it } from 'vitest'
import { checkNow, clipReason, errorReason } from './decide-checks.ts'
import { LedgerError } from './errors.ts'
import { REASON_LENGTH_MAX } from './limits.ts'

describe('decide checks', () => {
  it('keeps a reason that fits and clips a longer one to the limit, ending in …', () => {
    const fits = 'x'.repeat(REASON_LENGTH_MAX)
    expect(clipReason(fits)).toBe(fits)
    const clipped = clipReason(`${fits}y`)
    expect(clipped).toHaveLength(REASON_LENGTH_MAX)
    expect(clipped.endsWith('…')).toBe(true)
    expect(clipped.startsWith('x'.repeat(REASON_LENGTH_MAX - 1))).toBe(true)
  })

  it('takes the message of an Error, the string of anything else, both clipped', () => {
    expect(errorReason(new Error('rule exploded'))).toBe('rule exploded')
    expect(errorReason(42)).toBe('42')
    expect(errorReason(new Error('z'.repeat(10_000)))).toHaveLength(REASON_LENGTH_MAX)
  })

  it.each([Number.NaN, -1, Number.POSITIVE_INFINITY, '5' as unknown as number])(
    'refuses now = %s with LedgerError invalid_argument',
    (now) => {
      expect(() => checkNow(now)).toThrow(LedgerError)
      expect(() => checkNow(now)).toThrow('now must be a non-negative number of ms')
    },
  )

  it('accepts zero and a real clock reading', () => {
    expect(() => checkNow(0)).not.toThrow()
    expect(() => checkNow(1_732_700_000_000)).not.toThrow()
  })
})

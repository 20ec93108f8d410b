// Goal: refusals reach the cashier as sentences, never as rule names; an unknown gift card and
// a short balance read differently. Method: map the schema's real refusal reasons.
import { describe, expect, it } from 'vitest'
import { refusalWords, refusedRules } from './words.ts'

describe('refusalWords', () => {
  it('tells an unknown gift card from a short balance', () => {
    const unknown = refusalWords(
      { code: 'invariant', reason: 'cardIssued: unknown gift card' },
      'gift card GC-NONE',
    )
    expect(unknown).toBe('Unknown gift card GC-NONE: check the code on the card.')
    const short = refusalWords(
      { code: 'invariant', reason: 'balanceNonNegative: not enough balance on the gift card' },
      'gift card GC-5',
    )
    expect(short).toBe('Not enough balance on gift card GC-5.')
  })

  it('never shows a rule name', () => {
    for (const reason of [
      'cardIssued: unknown gift card',
      'refundWithinCaptured: refund exceeds what was captured',
      'closeOnce: the business day is already closed',
      'somethingNew: x',
    ]) {
      const words = refusalWords({ code: 'invariant', reason }, 'gift card GC-1')
      for (const rule of refusedRules(reason)) expect(words).not.toContain(rule)
      expect(words).not.toMatch(/[a-z][A-Z]/)
    }
    expect(refusedRules('a: x; bC: y')).toEqual(['a', 'bC'])
  })
})

// Goal: money turns into text one way everywhere, with no negative zero. Method: format the
// edges (zero, rounding to zero, negative amounts, deductions).
import { describe, expect, it } from 'vitest'
import { formatCents, formatDeduction, parseCents } from './money.ts'

describe('money', () => {
  it('never shows a negative zero', () => {
    expect(formatCents(-0.4)).toBe('$0.00')
    expect(formatCents(-0)).toBe('$0.00')
    expect(formatDeduction(0)).toBe('$0.00')
    expect(formatDeduction(-0.2)).toBe('$0.00')
  })

  it('formats amounts and deductions', () => {
    expect(formatCents(1250)).toBe('$12.50')
    expect(formatCents(-305)).toBe('-$3.05')
    expect(formatDeduction(125)).toBe('−$1.25')
  })

  it('parses what a cashier types', () => {
    expect(parseCents('12.5')).toBe(1250)
    expect(parseCents('$0.05')).toBe(5)
    expect(parseCents('abc')).toBeUndefined()
    expect(parseCents('1.234')).toBeUndefined()
  })
})

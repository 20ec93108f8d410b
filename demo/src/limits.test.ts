// Goal: offline limits refuse exactly the sales beyond them, and never a sale taken online.
// Method: call the pure check at the edges of each limit.
import { describe, expect, it } from 'vitest'
import { offlineRefusal } from './limits.ts'
import { cartTotals } from './sale.ts'

const limits = { perSaleMax: 10_000, storedMax: 25_000, forwardHours: 24 }
const none = { amount: 0, oldestAt: null }

describe('offlineRefusal', () => {
  it('allows anything online', () => {
    expect(
      offlineRefusal(limits, true, 1_000_000, { amount: 1e9, oldestAt: 0 }, 1e12),
    ).toBeUndefined()
  })
  it('caps one sale, the stored total, and the time to forward', () => {
    expect(offlineRefusal(limits, false, 10_000, none, 0)).toBeUndefined()
    expect(offlineRefusal(limits, false, 10_001, none, 0)).toMatch(/limited to \$100\.00 each/)
    expect(offlineRefusal(limits, false, 5_000, { amount: 20_000, oldestAt: 0 }, 0)).toBeUndefined()
    expect(offlineRefusal(limits, false, 5_001, { amount: 20_000, oldestAt: 0 }, 0)).toMatch(
      /already holds \$200\.00/,
    )
    const day = 24 * 3_600_000
    expect(
      offlineRefusal(limits, false, 100, { amount: 100, oldestAt: 0 }, day - 1),
    ).toBeUndefined()
    expect(offlineRefusal(limits, false, 100, { amount: 100, oldestAt: 0 }, day)).toMatch(
      /older than 24 h/,
    )
  })
})

describe('cartTotals', () => {
  it('keeps integer cents with a rounded percentage discount', () => {
    const t = cartTotals([{ sku: 'a', name: 'A', qty: 3, unitPrice: 333 }], 10)
    expect(t).toEqual({ subtotal: 999, discount: 100, total: 899 })
  })
})

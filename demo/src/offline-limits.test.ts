// Goal: offline limits refuse exactly the card payments beyond them, never cash, and never a
// sale taken online. Method: call the pure check at the edges of each limit.
import { describe, expect, it } from 'vitest'
import { offlineRefusal } from './offline-limits.ts'

const limits = { perSaleMax: 10_000, storedMax: 25_000, forwardHours: 24 }
const none = { amount: 0, oldestAt: null }
const card = (amount: number) => [{ method: 'card' as const, amount }]

describe('offlineRefusal', () => {
  it('allows anything online', () => {
    expect(
      offlineRefusal(limits, true, card(1_000_000), { amount: 1e9, oldestAt: 0 }, 1e12),
    ).toBeUndefined()
  })

  it('caps one card payment, the card total held, and the time to forward', () => {
    expect(offlineRefusal(limits, false, card(10_000), none, 0)).toBeUndefined()
    expect(offlineRefusal(limits, false, card(10_001), none, 0)).toMatch(
      /limited to \$100\.00 per sale/,
    )
    expect(offlineRefusal(limits, false, card(5_000), { amount: 20_000, oldestAt: 0 }, 0)).toBe(
      undefined,
    )
    expect(offlineRefusal(limits, false, card(5_001), { amount: 20_000, oldestAt: 0 }, 0)).toMatch(
      /already holds \$200\.00/,
    )
    const day = 24 * 3_600_000
    expect(
      offlineRefusal(limits, false, card(100), { amount: 100, oldestAt: 0 }, day - 1),
    ).toBeUndefined()
    expect(offlineRefusal(limits, false, card(100), { amount: 100, oldestAt: 0 }, day)).toMatch(
      /within 24 h/,
    )
  })

  it('the offline limit is card risk only: cash is never refused by it', () => {
    // Goal: a store without internet keeps taking cash of any amount; only cards stored
    // offline are capped. Method: the same $500 sale as cash and as card, and cash while the
    // card limits are all used up.
    expect(offlineRefusal(limits, false, [{ method: 'cash', amount: 50_000 }], none, 0)).toBe(
      undefined,
    )
    expect(offlineRefusal(limits, false, [{ method: 'card', amount: 10_001 }], none, 0)).toMatch(
      /card/i,
    )
    const spent = { amount: 25_000, oldestAt: 0 }
    expect(
      offlineRefusal(limits, false, [{ method: 'cash', amount: 1 }], spent, 48 * 3_600_000),
    ).toBeUndefined()
  })

  it('a split sale is judged by its card part only', () => {
    const split = [
      { method: 'giftcard' as const, amount: 40_000 },
      { method: 'card' as const, amount: 9_000 },
    ]
    expect(offlineRefusal(limits, false, split, none, 0)).toBeUndefined()
  })
})

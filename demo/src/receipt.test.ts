// Goal: the emailed receipt says what the printed one says: lines, the exact discount, each
// tender and the change. Method: build a split-tender receipt and read its text and link.
import { describe, expect, it } from 'vitest'
import { receiptMailto, receiptText, type Receipt } from './receipt.ts'

const receipt: Receipt = {
  orderId: 's1-r1-abc123',
  storeName: 'Harbour Street',
  registerName: 'Register 1',
  lines: [{ sku: 'mug', name: 'Enamel mug', qty: 1, unitPrice: 1800 }],
  subtotal: 1800,
  discount: 225,
  discountPercent: 12.5,
  total: 1575,
  tenders: [
    { method: 'giftcard', amount: 500, card: 'GC-5' },
    { method: 'cash', amount: 1075, tendered: 2000 },
  ],
  at: Date.UTC(2025, 0, 2, 10, 0),
}

describe('receipt', () => {
  it('lists lines, the exact discount, each tender and the change', () => {
    const text = receiptText(receipt)
    expect(text).toContain('1 × Enamel mug  $18.00')
    expect(text).toContain('Discount 12.5 %  −$2.25')
    expect(text).toContain('Total  $15.75')
    expect(text).toContain('Gift card GC-5  $5.00')
    expect(text).toContain('Cash  $10.75')
    expect(text).toContain('Change  $9.25')
    expect(text).not.toContain('−$0.00')
  })

  it('mails it to the card contact when that is an email address', () => {
    const card = {
      ...receipt,
      tenders: [
        {
          method: 'card' as const,
          amount: 1575,
          last4: '4242',
          contact: 'kim@example.com',
          offline: false,
        },
      ],
    }
    expect(receiptMailto(card)).toMatch(
      /^mailto:kim%40example\.com\?subject=Your%20receipt%20R1-ABC123/,
    )
    expect(decodeURIComponent(receiptMailto(receipt))).toContain('Total  $15.75')
  })
})

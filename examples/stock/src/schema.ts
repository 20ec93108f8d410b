// The schema the app and the relay both load (`ledgerline-relay --schema ./src/schema.ts`).
// Each kind's data is declared with a valibot schema: `reduce` reads it typed, and a wrong
// shape or an undeclared kind is refused on the device and on the relay alike.
import { defineEntity, defineSchema } from '@ledgerline/core'
import * as v from 'valibot'

export interface Stock {
  readonly onHand: number
}

export const stock = defineEntity({
  type: 'stock',
  initial: { onHand: 0 } as Stock,
  kinds: {
    'stock.moved': v.object({
      qty: v.pipe(v.number(), v.integer('a quantity is a whole number')),
    }),
    'stock.oversold': v.object({ short: v.number(), sale: v.string() }),
  },
  reduce: (s, e) => (e.kind === 'stock.moved' ? { onHand: s.onHand + e.data.qty } : s),
  invariants: { nonNegative: (s) => s.onHand >= 0 || 'stock below zero' },
  // Two devices that sold the last unit offline both keep their sale; the relay appends this.
  correct: (s, _broken, e) => [{ kind: 'stock.oversold', data: { short: -s.onHand, sale: e.id } }],
})

export default defineSchema(stock)

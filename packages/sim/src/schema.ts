/**
 * The schema of the product simulation: the model simulation's point-of-sale types (stock,
 * orders, gift cards, a counter) and two more, each there to reach a path the faults need.
 *
 * - `loyalty/<member>`: fact `loyalty.earned {points}`. A relay may start without this type
 *   (a rollout in the wrong order: the app ships it first) and learn it at an upgrade.
 * - `bin/<store>:<sku>`: facts `bin.filled {qty}` and `bin.picked {qty, note}`; invariant
 *   `nonNegative`; an over-pick is followed by `bin.short {short, sale, note, recent}`, which
 *   copies the sale's note and carries the bin's recent moves (`SIM_BIN_RECENT_BYTES`): a long
 *   note makes a correction too large for an entry, and a burst of over-picks makes an ack too
 *   large for a frame.
 *
 * Invariants:
 * 1. Every `reduce` is pure and total over its kinds; unknown kinds leave state as is.
 * 2. Every op's data carries its tag (`op`), which no `reduce` reads.
 */
import type { Schema } from '@ledgerline/core'
import { defineEntity, defineSchema } from '@ledgerline/core'
import { simCounter, simGiftCard, simOrder, simStock } from '@ledgerline/testkit'
import { SIM_BIN_RECENT_BYTES } from './limits.ts'

export interface LoyaltyState {
  readonly points: number
}
export interface BinState {
  readonly onHand: number
}

export const simLoyalty = defineEntity<LoyaltyState>({
  type: 'loyalty',
  initial: { points: 0 },
  reduce: (s, e) =>
    e.kind === 'loyalty.earned' ? { points: s.points + (e.data.points as number) } : s,
})

export const simBin = defineEntity<BinState>({
  type: 'bin',
  initial: { onHand: 0 },
  reduce: (s, e) => {
    switch (e.kind) {
      case 'bin.filled':
        return { onHand: s.onHand + (e.data.qty as number) }
      case 'bin.picked':
        return { onHand: s.onHand - (e.data.qty as number) }
      case 'bin.short':
        return { onHand: s.onHand + (e.data.short as number) }
      default:
        return s
    }
  },
  invariants: { nonNegative: (s) => s.onHand >= 0 || 'bin below zero' },
  correct: (s, _broken, e) => [
    {
      kind: 'bin.short',
      data: {
        short: -s.onHand,
        sale: e.id,
        note: e.data.note ?? '',
        recent: 'r'.repeat(SIM_BIN_RECENT_BYTES),
      },
    },
  ],
})

/** What the app (every till) folds with: every type. */
export const productSchema: Schema = defineSchema(
  simStock,
  simOrder,
  simGiftCard,
  simCounter,
  simLoyalty,
  simBin,
)

/** A relay that has not learned `loyalty` yet (the wrong-order rollout). */
export const productSchemaBeforeLoyalty: Schema = defineSchema(
  simStock,
  simOrder,
  simGiftCard,
  simCounter,
  simBin,
)

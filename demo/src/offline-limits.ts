/**
 * Offline limits, as card vendors set them for store-and-forward: a cap per card payment, a
 * cap on the card payments held unforwarded on one register, and a deadline to forward them.
 * They exist for card risk (a card stored offline may be declined later), so cash and gift
 * cards are never refused by them. A card payment beyond any of them is refused before
 * anything is appended, with a message the cashier can act on.
 */
import { formatCents } from './money.ts'
import type { TenderPart } from './schema.ts'
import type { OfflineLimits } from './session.ts'

/** Card payments this register took and has not yet forwarded to head office. */
export interface PendingCardRisk {
  readonly amount: number
  readonly oldestAt: number | null
}

/**
 * Why a sale paid with `tenders` may not be taken now, or `undefined` when it may.
 *
 * @example
 * offlineRefusal(limits, false, [{ method: 'cash', amount: 90_000 }], pending, Date.now()) // undefined
 */
export function offlineRefusal(
  limits: OfflineLimits,
  online: boolean,
  tenders: readonly TenderPart[],
  pending: PendingCardRisk,
  now: number,
): string | undefined {
  if (online) return undefined
  let card = 0
  for (const t of tenders) if (t.method === 'card') card += t.amount
  if (card === 0) return undefined
  if (card > limits.perSaleMax) {
    return `Cards taken offline are limited to ${formatCents(limits.perSaleMax)} per sale; this card payment is ${formatCents(card)}. Take cash, or wait for the connection.`
  }
  if (pending.amount + card > limits.storedMax) {
    return `This register already holds ${formatCents(pending.amount)} of card payments not yet sent to head office; the offline card limit is ${formatCents(limits.storedMax)}. Take cash, or reconnect to send them first.`
  }
  const left = forwardTimeLeftMs(limits, pending.oldestAt, now)
  if (left !== undefined && left <= 0) {
    return `Card payments taken offline must reach head office within ${limits.forwardHours} h, and the oldest has waited longer. Take cash, or reconnect first.`
  }
  return undefined
}

/** Time left before the oldest unforwarded card payment passes the forward deadline. */
export function forwardTimeLeftMs(
  limits: OfflineLimits,
  oldestAt: number | null,
  now: number,
): number | undefined {
  if (oldestAt === null) return undefined
  return oldestAt + limits.forwardHours * 3_600_000 - now
}

export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000))
  if (s < 60) return `${s}s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`
}

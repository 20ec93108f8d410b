/**
 * Offline limits, as card vendors set them for store-and-forward: a cap per sale, a cap on the
 * total held unsynced on one register, and a deadline to forward. A sale beyond any of them is
 * refused before anything is appended, with a message the cashier can act on.
 */
import { formatCents } from './money.ts'
import type { OfflineLimits } from './session.ts'

export interface PendingTotals {
  readonly amount: number
  readonly oldestAt: number | null
}

/** Why a sale of `total` cents may not be taken now, or `undefined` when it may. */
export function offlineRefusal(
  limits: OfflineLimits,
  online: boolean,
  total: number,
  pending: PendingTotals,
  now: number,
): string | undefined {
  if (online) return undefined
  if (total > limits.perSaleMax) {
    return `Offline sales are limited to ${formatCents(limits.perSaleMax)} each; this one is ${formatCents(total)}. Split the sale or wait for the connection.`
  }
  if (pending.amount + total > limits.storedMax) {
    return `This register already holds ${formatCents(pending.amount)} of unsynced sales; the offline limit is ${formatCents(limits.storedMax)}. Reconnect to forward them first.`
  }
  const left = forwardTimeLeftMs(limits, pending.oldestAt, now)
  if (left !== undefined && left <= 0) {
    return `Unsynced sales are older than ${limits.forwardHours} h, the time allowed to forward them. Reconnect before taking more sales offline.`
  }
  return undefined
}

/** Time left before the oldest unsynced sale passes the forward deadline. */
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

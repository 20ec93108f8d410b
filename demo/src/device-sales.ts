/**
 * What each register signed in on this device still has to send, remembered in localStorage
 * so the sign-in can warn: every register keeps its sales in its own database, and a device
 * signed in as another register would not send them.
 *
 * Invariants:
 * 1. A register's record is written whenever its outbox changes while it is signed in, and
 *    is removed once the outbox is empty: a warning may be late to go, never missing.
 * 2. Unreadable records are ignored, never thrown.
 */
import type { Session } from './session.ts'
import { subjectOf } from './session.ts'

export interface DeviceSales {
  readonly store: string
  readonly register: string
  /** Sales not yet at head office. */
  readonly sales: number
  readonly amount: number
  /** Entries of any kind not yet at head office (sales, counts, shifts, notes). */
  readonly outbox: number
  readonly at: number
}

const KEY = 'ledgerline.unsent'

/** Records what `session` still has to send (invariant 1). */
export function rememberUnsent(
  session: Session,
  unsent: Omit<DeviceSales, 'store' | 'register'>,
  storage: Storage = localStorage,
): void {
  const all = readAll(storage)
  const key = subjectOf(session)
  if (unsent.outbox === 0) {
    if (all[key] === undefined) return
    delete all[key]
  } else {
    all[key] = { ...unsent, store: session.store, register: session.register }
  }
  storage.setItem(KEY, JSON.stringify(all))
}

/** Registers of this device, other than `chosen`, that still hold something to send. */
export function otherRegistersUnsent(
  chosen: Session,
  storage: Storage = localStorage,
): DeviceSales[] {
  const key = subjectOf(chosen)
  return Object.entries(readAll(storage))
    .filter(([k, v]) => k !== key && v.outbox > 0)
    .map(([, v]) => v)
}

function readAll(storage: Storage): Record<string, DeviceSales> {
  try {
    const parsed: unknown = JSON.parse(storage.getItem(KEY) ?? '{}')
    if (typeof parsed !== 'object' || parsed === null) return {}
    const out: Record<string, DeviceSales> = {}
    for (const [k, v] of Object.entries(parsed as Record<string, Partial<DeviceSales>>)) {
      if (
        typeof v?.store === 'string' &&
        typeof v.register === 'string' &&
        typeof v.outbox === 'number' &&
        typeof v.sales === 'number' &&
        typeof v.amount === 'number'
      ) {
        out[k] = {
          store: v.store,
          register: v.register,
          sales: v.sales,
          amount: v.amount,
          outbox: v.outbox,
          at: v.at ?? 0,
        }
      }
    }
    return out
  } catch {
    return {}
  }
}

/**
 * The relay's global bounds on connections, shared by `/sync` and `/yjs`: open sockets per relay
 * and per tenant. Past one the relay answers `overloaded` with a retry hint (an upgrade gets 503)
 * instead of growing. (Entries waiting for commit are bounded by `commit-queue.ts`.)
 *
 * Terms: a *socket* is reserved from the moment an upgrade is accepted for handling until its
 * connection closes (or the upgrade fails); a *tenant seat* from `welcome` (for `/yjs`: from the
 * upgrade) until close.
 *
 * Invariants:
 * 1. At most `connectionsMax` sockets are reserved at once, and at most `tenantConnectionsMax`
 *    seats per tenant; every reservation is released exactly once (`release` is idempotent).
 */
import type { RelayLimits } from './limits.ts'

/** A reservation; `release` gives it back (once, whatever how often it is called). */
export interface Seat {
  release(): void
}

export interface RelayGates {
  /** A socket of the relay, or undefined past `connectionsMax`. */
  socket(): Seat | undefined
  /** A seat of `tenant`, or undefined past `tenantConnectionsMax`. */
  tenant(tenant: string): Seat | undefined
  /** Sockets reserved now. */
  sockets(): number
}

/**
 * @example
 * const gates = createRelayGates(limits)
 * const seat = gates.socket() // undefined: answer 503
 */
export function createRelayGates(
  limits: Pick<RelayLimits, 'connectionsMax' | 'tenantConnectionsMax'>,
): RelayGates {
  let sockets = 0
  const tenants = new Map<string, number>()
  return {
    socket() {
      if (sockets >= limits.connectionsMax) return undefined
      sockets++
      return once(() => sockets--)
    },
    tenant(tenant) {
      const seats = tenants.get(tenant) ?? 0
      if (seats >= limits.tenantConnectionsMax) return undefined
      tenants.set(tenant, seats + 1)
      return once(() => {
        const left = (tenants.get(tenant) ?? 1) - 1
        if (left === 0) tenants.delete(tenant)
        else tenants.set(tenant, left)
      })
    },
    sockets: () => sockets,
  }
}

function once(release: () => void): Seat {
  let done = false
  return {
    release() {
      if (done) return
      done = true
      release()
    },
  }
}

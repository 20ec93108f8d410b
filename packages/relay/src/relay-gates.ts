/**
 * The relay's global bounds, shared by every connection: open sockets per relay and per tenant,
 * and entries pushed but not yet answered. Past one the relay answers `overloaded` with a retry
 * hint (an upgrade gets 503) instead of growing.
 *
 * Terms: a *socket* is reserved from the moment an upgrade is accepted for handling until its
 * connection closes (or the upgrade fails); a *tenant seat* from `welcome` (for `/yjs`: from the
 * upgrade) until close.
 *
 * Invariants:
 * 1. At most `connectionsMax` sockets are reserved at once, and at most `tenantConnectionsMax`
 *    seats per tenant; every reservation is released exactly once (`release` is idempotent).
 * 2. At most `commitQueueEntriesMax` pushed entries wait for their ack, over every connection;
 *    a push that would pass it is refused before anything reaches the log. A push bigger than
 *    the bound is admitted when nothing else waits, so no push is refused forever.
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
  /** Admits a push of `entries`, or undefined when the commit queue is full. */
  push(entries: number): Seat | undefined
  /** Sockets reserved now. */
  sockets(): number
  /** Pushed entries waiting for their ack now. */
  queuedEntries(): number
}

/**
 * @example
 * const gates = createRelayGates(limits)
 * const seat = gates.socket() // undefined: answer 503
 */
export function createRelayGates(
  limits: Pick<RelayLimits, 'connectionsMax' | 'tenantConnectionsMax' | 'commitQueueEntriesMax'>,
): RelayGates {
  let sockets = 0
  let queued = 0
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
    push(entries) {
      if (queued > 0 && queued + entries > limits.commitQueueEntriesMax) return undefined
      queued += entries
      return once(() => (queued -= entries))
    },
    sockets: () => sockets,
    queuedEntries: () => queued,
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

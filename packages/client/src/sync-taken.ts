/**
 * The `client_taken` move of the sync loop (`sync.ts`): what the client does when the log says
 * another subject holds this clientId.
 *
 *   client_taken(log) ─► beginSession(log, high 0) ─► same log, nothing pending: stay parked
 *                                                 └► recovering ─► settle (move) ─► reconnect
 *
 * Terms: *parked* means the connection stays closed until the app acts (`connection.ts`); a
 * *move* puts the outbox under a new clientId (`restore-recovery.ts`).
 *
 * Invariants (`sync.ts` invariant 8):
 * 1. `client_taken` parks the connection, unless it names a log other than the one this
 *    database last saw (restored or replaced since: the binding of the clientId may be what was
 *    lost), or a recovery is pending (`recovering`: the log changed and the move did not happen
 *    yet). Then, in the writes a welcome's recovery makes, what the database holds of the
 *    clientId goes back into the outbox, history goes with the old log, and the outbox moves to
 *    a new clientId; the connection reconnects as it. The log holds nothing of this device under
 *    a clientId it binds to another subject (the first record binds), so nothing lands twice and
 *    nothing is attributed to the other subject. The new identity is recorded first, so a
 *    second `client_taken` from the same log, under the new clientId, parks: at most one move
 *    per log change.
 * 2. One move runs at a time: a `client_taken` while one runs (or once stopped) is ignored.
 */
import type { Entry } from '@ledgerline/core'
import type { LogIdentity } from '@ledgerline/protocol'
import type { ClientStore } from './client-store.ts'
import type { Recovery } from './restore-recovery.ts'

export interface TakenMoveOptions {
  readonly clientStore: Pick<ClientStore, 'tenant' | 'beginSession'>
  readonly recovery: Pick<Recovery, 'settle'>
  /** The encoded size of an entry (for entries put back into the outbox). */
  readonly bytesOf?: ((entry: Entry) => number) | undefined
  readonly stopped: () => boolean
  /** The clientId the last hello said. */
  readonly clientId: () => string
  /** Say hello again (another tab moved the outbox). */
  readonly reconnect: () => void
  /** Confirmed history was dropped: the refusal came from another log. */
  readonly logChanged: () => void
  /** The outbox moved to a new clientId: forget what was kept by id, tell, reconnect. */
  readonly moved: (renamed: ReadonlyMap<string, string>) => void
  readonly failed: (message: string) => void
}

/**
 * Invariant 1: `client_taken` from `log`. The session-start write a welcome makes (put back,
 * drop history, record the log) with no high-water mark (the log holds nothing of ours under
 * a clientId it binds to another subject), then the move, then a reconnect.
 *
 * @example
 * const onTaken = createTakenMove({ clientStore, recovery, stopped, clientId, reconnect,
 *   logChanged, moved, failed })
 * void onTaken(log)
 */
export function createTakenMove(options: TakenMoveOptions): (log: LogIdentity) => Promise<void> {
  const { clientStore, recovery } = options
  /** Invariant 2: a move after `client_taken` is under way (a second refusal waits for it). */
  let taking = false
  return async (log) => {
    if (taking || options.stopped()) return
    taking = true
    try {
      const from = options.clientId()
      const tenant = await clientStore.tenant()
      // No tenant: never welcomed, so no log ever bound this clientId to this database.
      if (tenant === undefined) return
      const begun = await clientStore.beginSession(
        { clientId: from, tenant, log, high: 0 },
        options.bytesOf ?? (() => 0),
      )
      if (options.stopped()) return
      if (begun._tag === 'stale') {
        // Another tab moved the outbox since the hello: say hello as the new id.
        options.reconnect()
        return
      }
      if (!begun.recovering) return // the log this database last saw: stay parked
      if (begun.logChanged) options.logChanged()
      const settled = await recovery.settle(
        {
          from,
          high: 0,
          deviceSecret: begun.meta.deviceSecret,
          clientIds: begun.meta.clientIds,
          recovering: true,
        },
        0,
      )
      if (options.stopped() || settled._tag !== 'moved') return
      options.moved(settled.renamed)
    } catch (error) {
      options.failed(error instanceof Error ? error.message : String(error))
    } finally {
      taking = false
    }
  }
}

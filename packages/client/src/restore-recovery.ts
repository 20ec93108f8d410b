/**
 * Restore recovery, the sync loop's half (issue 12 cases 1, 2 and 4): what a welcomed session
 * does when this database was restored from a copy, or the server log was.
 *
 *   welcome ─► beginSession: restored? log changed (put back what it lacks, drop history)?
 *      │                      └─ either: `recovering` (kept in the meta record: crash-safe)
 *      ▼
 *   confirm: the outbox up to the log's high-water mark is re-sent under its own ids
 *      duplicate / same refusal ─► done (the record goes)     id_conflict ─► counted
 *      ▼
 *   settle: recovering or a conflict ─► reissue: the whole outbox (conflicting, deferred and
 *           everything above the mark) to a new clientId, in clientSeq order, one write;
 *           reconnect as it.           otherwise ─► lift: drain as usual
 *
 * Terms: the *derived* clientId of a move is SHA-256 of (device secret, old clientId,
 * high-water mark), cut to 128 bits: the same restore done twice derives the same id and the
 * same entries (dedupe makes the second a no-op); a *hop* is one move.
 *
 * Invariants:
 * 1. No clientSeq is ever sent with two different entries: nothing above the high-water mark
 *    goes out under the old clientId once the log is known to hold some of this device's
 *    clientSeqs it did not expect, and what moves gets a clientId the log has not bound yet
 *    (a derived one that turns out used meets `id_conflict` and moves on).
 * 2. At most REISSUE_HOPS_MAX derived moves follow each other without a clean session between;
 *    past that the next id is random (128 bits), so recovery always ends.
 * 3. A derived id is never one this database used before (a cycle): a random one is taken.
 */
import { sha256 } from '@ledgerline/core'
import type { ClientStore } from './client-store.ts'
import { REISSUE_HOPS_MAX } from './limits.ts'

export interface RecoveryOptions {
  readonly clientStore: Pick<ClientStore, 'reissue'>
  /** A random clientId (the fallback of invariant 2). */
  readonly randomClientId: () => string
}

/** One welcomed session's view of recovery. */
export interface RecoverySession {
  /** The clientId the hello said. */
  readonly from: string
  /** The welcome's high-water mark for it. */
  readonly high: number
  readonly deviceSecret: string
  /** Every clientId this database used. */
  readonly clientIds: readonly string[]
  /** `beginSession` said so: the move happens whatever the confirm phase meets. */
  readonly recovering: boolean
}

export type Settled =
  /** Nothing to recover: drain as usual. */
  | { readonly _tag: 'lift' }
  /** The outbox moved (`renamed`: old id → new id); reconnect as the new clientId. */
  | { readonly _tag: 'moved'; readonly renamed: ReadonlyMap<string, string>; readonly to: string }

export interface Recovery {
  /** The confirm phase of `session` ended with `conflicts` id conflicts: move, or lift. */
  settle(session: RecoverySession, conflicts: number): Promise<Settled>
}

/**
 * @example
 * const recovery = createRecovery({ clientStore, randomClientId: () => createClientId(random) })
 * const settled = await recovery.settle(session, conflicts)
 */
export function createRecovery(options: RecoveryOptions): Recovery {
  let hops = 0
  return {
    async settle(session, conflicts) {
      if (!session.recovering && conflicts === 0) {
        hops = 0
        return { _tag: 'lift' }
      }
      let to = deriveClientId(session.deviceSecret, session.from, session.high)
      // Invariants 2 and 3.
      if (hops >= REISSUE_HOPS_MAX || session.clientIds.includes(to)) to = options.randomClientId()
      hops++
      const renamed = await options.clientStore.reissue(session.from, to)
      return { _tag: 'moved', renamed, to }
    },
  }
}

/**
 * The clientId restore recovery moves to from `from` at high-water mark `high`.
 *
 * @example
 * deriveClientId('ab'.repeat(16), 'cd'.repeat(16), 3) // 32 hex digits, the same every time
 */
export function deriveClientId(deviceSecret: string, from: string, high: number): string {
  const digest = sha256(
    new TextEncoder().encode(`ledgerline-reissue\n${deviceSecret}\n${from}\n${high}`),
  )
  let hex = ''
  for (const byte of digest.subarray(0, 16)) hex += byte.toString(16).padStart(2, '0')
  return hex
}

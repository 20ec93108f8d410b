/**
 * The recorded history of a simulation run: what clients were promised, for the checkers to
 * compare against what the server log holds at the end (Jepsen's total-queue shape: what goes
 * in must come out, once).
 *
 * Terms: an entry is *committed* when the local transaction that allocated its clientSeq
 * completed (from then on it must reach the server log); it is *resolved* when `append()` told
 * the app so (a crash between the two leaves it committed but not resolved). An *ack* is what
 * the relay answered for an entry, as the client received it.
 *
 * Invariants:
 * 1. Records are only added, never changed: a checker sees every promise ever made.
 * 2. An id is committed at most once per client database; a clientSeq reused after a crash
 *    that discarded its transaction is a new promise only if the first was never committed.
 */
import type { Entry } from '@ledgerline/core'
import type { AckResult } from '@ledgerline/protocol'

export interface CommittedRecord {
  readonly client: string
  readonly entry: Entry
}

export interface AckRecord {
  readonly client: string
  readonly result: AckResult
}

export interface SimHistory {
  readonly committed: Map<string, CommittedRecord>
  readonly resolved: Set<string>
  readonly acks: AckRecord[]
  /** Ids committed a second time (a clientSeq reused after it was committed): always a bug. */
  readonly reused: string[]
}

/** @example const history = createSimHistory() */
export function createSimHistory(): SimHistory {
  return { committed: new Map(), resolved: new Set(), acks: [], reused: [] }
}

/**
 * What happened in a product simulation run, as the world saw it: every sale the app tried
 * (an *op*), what `append` answered, the entries each till resolved, the acks that reached each
 * till over the wire, the dials, and what the impostor made. The checkers compare it with the
 * server log at the end.
 *
 * Terms: an *op* is one `append` the app made, tagged in its data (`data.op`) so that it can be
 * found in the log under whatever id it travels (a restored device re-sends under new ids); it
 * is *resolved* when `append` resolved for the app (its entry is then promised: it must reach
 * the log exactly once), *failed* when `append` threw, *cut* when the till died first.
 *
 * Invariants:
 * 1. Records are only added, never changed, except an op's outcome, set once.
 * 2. Only a live till records: what a crashed browser's leftover tasks do is not a promise.
 */
import type { Entry } from '@ledgerline/core'
import type { AckResult } from '@ledgerline/protocol'
import { businessKey, contentKey } from './content.ts'

export interface OpRecord {
  readonly op: string
  readonly till: string
  readonly entity: string
  readonly kind: string
  readonly intent: 'fact' | 'request'
  /** `businessKey` of what the app asked for. */
  readonly business: string
  outcome: 'pending' | 'resolved' | 'failed' | 'cut'
  /** The entry `append` resolved with. */
  entry?: Entry | undefined
  failure?: string | undefined
  /** Made on a disk that was later restored from an older copy: the device forgot it. */
  forgotten?: boolean | undefined
  /** Simulated time the app asked. */
  readonly at: number
}

export interface EntryMade {
  readonly by: string
  readonly key: string
  readonly business: string
  /** The op it was made for (none for the impostor's). */
  readonly op?: string | undefined
}

export interface SimHistory {
  readonly ops: Map<string, OpRecord>
  /** Every entry a till resolved, and every one the impostor sent, by id. */
  readonly made: Map<string, EntryMade[]>
  readonly acks: { readonly till: string; readonly result: AckResult; readonly at: number }[]
  /** Simulated time the server log was last put back to an older copy (acks before it are void). */
  logRestoredAt: number | undefined
  /** Simulated times of each till's dials. */
  readonly dials: Map<string, number[]>
  /** Ops the impostor made (they are not promises to anyone). */
  readonly impostorOps: Set<string>
  /**
   * The id each op was last pushed under, as the wire saw it: restore recovery moves an entry
   * to a new clientId (the app's `outcome` follows it, the log decides it under the new id).
   */
  readonly pushedAs: Map<string, string>
  /** Simulated time each op was last pushed. */
  readonly pushedAt: Map<string, number>
  /** Each till disk restore: when its copy was taken and when it was put back. */
  readonly diskRestores: { readonly till: string; readonly copiedAt: number; readonly at: number }[]
  started(op: Omit<OpRecord, 'outcome'>): void
  resolved(op: string, entry: Entry): void
  failed(op: string, failure: string): void
  /** A till died: its pending ops will never be answered to the app. */
  cut(till: string): void
  /** The till's disk went back to a copy taken at `since`: what it made after is forgotten. */
  forgot(till: string, since: number): void
  madeBy(by: string, entry: Entry, op?: string | undefined): void
}

/** @example const history = createSimHistory() */
export function createSimHistory(): SimHistory {
  const ops = new Map<string, OpRecord>()
  const made = new Map<string, EntryMade[]>()
  const history: SimHistory = {
    ops,
    made,
    acks: [],
    logRestoredAt: undefined,
    dials: new Map(),
    impostorOps: new Set(),
    pushedAs: new Map(),
    pushedAt: new Map(),
    diskRestores: [],
    started(op) {
      ops.set(op.op, { ...op, outcome: 'pending' })
    },
    resolved(op, entry) {
      const record = ops.get(op)
      if (record === undefined || record.outcome !== 'pending') return
      record.outcome = 'resolved'
      record.entry = entry
      history.madeBy(record.till, entry, op)
    },
    failed(op, failure) {
      const record = ops.get(op)
      if (record === undefined || record.outcome !== 'pending') return
      record.outcome = 'failed'
      record.failure = failure
    },
    cut(till) {
      for (const record of ops.values()) {
        if (record.till === till && record.outcome === 'pending') record.outcome = 'cut'
      }
    },
    forgot(till, since) {
      for (const record of ops.values()) {
        if (record.till === till && record.at >= since) record.forgotten = true
      }
    },
    madeBy(by, entry, op) {
      const list = made.get(entry.id) ?? []
      const key = contentKey(entry)
      if (!list.some((m) => m.key === key)) list.push({ by, key, business: businessKey(entry), op })
      made.set(entry.id, list)
    },
  }
  return history
}

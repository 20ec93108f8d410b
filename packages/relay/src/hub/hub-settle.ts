/**
 * Settling a store hub's queue rows (`hub-store.ts`): head office's results written into the
 * rows they answer, from the forwarder's pushes (`settle`) or from the mirror's pages (an entry
 * head office appended settles its row with its positions), and the settled rows kept bounded.
 *
 * Terms: as in `hub-store.ts`; a *moved copy* is an entry a register's restore recovery queued
 * again under another clientId of the same subject, naming the original's id as its `origin`.
 *
 *   mirror page entry ─► its own row ─► `appended` at its positions
 *                    └─► its origin's open row (invariant 2) ─► `duplicate` at the same positions
 *   forwarder results ─► each row ─► the result
 *                    └─► rows whose copy it was (invariant 2) ─► the copy's decision
 *   after the transaction ─► prune (invariant 1) ─► onSettled listeners
 *
 * Invariants:
 * 1. At most about `HUB_SETTLED_KEEP_MAX` settled rows are kept (pruned oldest first, in steps
 *    of a tenth); open rows are never pruned.
 * 2. An open row whose entry a register's restore recovery moved (a copy under another clientId
 *    of the same subject naming the row's id as its `origin`, the same `recoveryDigest`) gets
 *    the copy's decision: `duplicate` at the copy's position once the copy is in the mirror (as
 *    head office answers the original once a copy of it landed, `append-plan.ts` invariant 12),
 *    or the copy's refusal when the forwarder settles the copy's own row with one. Head office
 *    would refuse the forwarded original `seq_gap` for good after a log change (the restored log
 *    lacks the clientSeqs before it, which the register confirmed and dropped), so the row would
 *    never settle and the hub never drain; and the store layer would show it beside its copy.
 *    Only rows queued before the last log change (`log_changed_seq` in meta) settle so: on the
 *    log a row was queued for, head office answers the forwarded original `duplicate` itself and
 *    so uses up its clientSeq; settled here, it would leave head office's mark of that clientId
 *    below the clientId's later open rows (ones a restored device lost but the hub holds), which
 *    head office would then refuse `seq_gap` for good (seed 179).
 */
import { recoveryDigest, sameDigest } from '@ledgerline/core'
import type { Entry } from '@ledgerline/core'
import type { AckResult } from '@ledgerline/protocol'
import { decodeEntryBody } from '../entry-body.ts'
import type { HubSql } from './hub-sql.ts'
import { HUB_SETTLED_KEEP_MAX } from './hub-limits.ts'

/** The settling half of a hub store; its writes run in the caller's transaction. */
export interface HubSettler {
  /**
   * In the caller's transaction: the row of `entry`, which head office appended with `result`,
   * and the open row it is a moved copy of (invariant 2). Returns the ids settled.
   */
  mirrored(entry: Entry, result: AckResult): string[]
  /** In the caller's transaction: head office's results for queued entries; the ids settled. */
  settle(results: readonly AckResult[]): string[]
  /** After the transaction that settled `ids`: prune (invariant 1) and tell the listeners. */
  settled(ids: readonly string[]): void
  /** Ids settled (the entry left the store layer), told after each settling transaction. */
  onSettled(listener: (ids: readonly string[]) => void): () => void
  /**
   * In the transaction of a welcome from another log: drops every settled row and notes the
   * last queue seq as the log change (invariant 2); returns that seq for `logChangedAt`.
   */
  forgetLog(): number
  /** After that transaction committed: rows up to `seq` were queued for the lost log. */
  logChangedAt(seq: number): void
}

/** The settler of the hub file `sql` prepared; reads the last log change from its meta. */
export function createHubSettler(sql: HubSql): HubSettler {
  const listeners = new Set<(ids: readonly string[]) => void>()
  /** Invariant 2: the highest queue seq at the last log change (0: none seen). */
  let logChangedSeq = Number(sql.meta.get('log_changed_seq')?.value ?? 0)
  let settledSincePrune = 0

  /**
   * Invariant 2: the open row of `origin` gets the decision its moved copy `copy` got
   * (`decided`; landed: `duplicate` at the copy's position), when the copy has the row's content
   * (`recoveryDigest`) and is of the row's subject: `subject` (the copy's queue row) or the
   * hub's binding of its clientId, if any, and was queued before the last log change. True when
   * a row was settled.
   */
  const settleOrigin = (
    origin: string,
    copy: Entry,
    decided: AckResult,
    subject?: string,
  ): boolean => {
    if (!isDecision(decided)) return false
    const row = sql.queued.get(copy.tenant, origin)
    if (row === undefined || row.result !== null) return false
    // Head office of the row's own log answers the original itself (`duplicate`).
    if (row.seq > logChangedSeq) return false
    const bound = subject ?? sql.client.get(copy.tenant, copy.clientId)?.subject
    if (bound !== undefined && bound !== null && bound !== row.subject) return false
    const original = decodeEntryBody(row.body)
    if (!sameDigest(recoveryDigest(original), recoveryDigest(copy))) return false
    const result: AckResult =
      decided.status === 'appended' || decided.status === 'duplicate'
        ? { ...decided, id: origin, status: 'duplicate', corrections: [] }
        : { ...decided, id: origin }
    return sql.settle.run(JSON.stringify(result), copy.tenant, origin).changes > 0
  }

  return {
    mirrored(entry, result) {
      const ids: string[] = []
      if (sql.settle.run(JSON.stringify(result), entry.tenant, entry.id).changes > 0) {
        ids.push(entry.id)
      }
      if (entry.origin !== undefined && settleOrigin(entry.origin, entry, result)) {
        ids.push(entry.origin)
      }
      return ids
    },

    settle(results) {
      const ids: string[] = []
      for (const r of results) {
        if (sql.settleAny.run(JSON.stringify(r), r.id).changes === 0) continue
        ids.push(r.id)
        // Invariant 2: a moved copy's decision is its origin's too.
        for (const row of sql.queuedAny.all(r.id)) {
          const copy = decodeEntryBody(row.body)
          if (copy.origin !== undefined && settleOrigin(copy.origin, copy, r, row.subject)) {
            ids.push(copy.origin)
          }
        }
      }
      return ids
    },

    settled(ids) {
      if (ids.length === 0) return
      // Invariant 1: the oldest settled rows past `HUB_SETTLED_KEEP_MAX` go.
      settledSincePrune += ids.length
      if (settledSincePrune >= HUB_SETTLED_KEEP_MAX / 10) {
        settledSincePrune = 0
        sql.prune.run(HUB_SETTLED_KEEP_MAX)
      }
      for (const l of listeners) l(ids)
    },

    onSettled(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },

    forgetLog() {
      sql.dropSettled.run()
      // Invariant 2: the rows still open were queued for the lost history.
      const seq = sql.lastSeq.get()?.seq ?? 0
      sql.setMeta.run('log_changed_seq', String(seq))
      return seq
    },

    logChangedAt(seq) {
      logChangedSeq = seq
    },
  }
}

/** A decision of head office's that settles a row (`forwarder.ts` `isFinal`, less id_conflict). */
function isDecision(r: AckResult): boolean {
  if (r.status === 'appended' || r.status === 'duplicate') return true
  return r.status === 'refused' && r.code !== 'seq_gap'
}

/**
 * The results the planner answers with, built from what it decided or recorded: a fresh
 * append's result, a duplicate's (the original result again), a deferral's, and the references
 * to the corrections an ack lists.
 *
 * Terms: a result is *visible* to a pusher when it lists only the corrections the pusher may
 * read; a *legacy deferral* is a refusal `unknown_type` recorded by an older Ledgerline, read as
 * a deferral.
 *
 * Invariants (numbered as in `append-plan.ts`):
 * 8. Results list corrections as references, only those the call's pusher may read (`visible`);
 *    records keep every one, so each pusher of a resend gets its own view. A call without a
 *    pusher (the log's own) sees every correction.
 * 10. A duplicate's result is the original's with `status: 'duplicate'`: the same version,
 *    partition, offset and `committedAt`.
 */
import { matchesAny } from '@ledgerline/core'
import type { Decision, StoredEntry } from '@ledgerline/core'
import type { CorrectionRef } from '@ledgerline/protocol'
import type { Pusher } from './log-store.ts'
import type { AppendedResult, DeferredResult, Recorded } from './plan-types.ts'

/**
 * The result a stored entry was appended with when nothing corrects it (a correction's own).
 *
 * @example
 * resultOf(correction) // { id, status: 'appended', version, partition, offset, committedAt, corrections: [] }
 */
export function resultOf(stored: StoredEntry): AppendedResult {
  return {
    id: stored.id,
    status: 'appended',
    version: stored.version,
    partition: stored.partition,
    offset: stored.offset,
    committedAt: stored.committedAt,
    corrections: [],
  }
}

/**
 * Where a correction landed, as an ack names it (the body travels on the subscription).
 *
 * @example
 * correctionRef(stored) // { id, entity, kind, version, partition, offset }
 */
export function correctionRef(stored: StoredEntry): CorrectionRef {
  return {
    id: stored.id,
    entity: stored.entity,
    kind: stored.kind,
    version: stored.version,
    partition: stored.partition,
    offset: stored.offset,
  }
}

/** A refusal `unknown_type`, recorded before the log deferred unknown types (invariant 4). */
export function isLegacyDeferral(record: Recorded): boolean {
  return record._tag === 'refusal' && (record.result.code as string) === 'unknown_type'
}

/** The original result again, as the pusher of the resend may see it (invariant 10). */
export function duplicateOf(result: AppendedResult, pusher: Pusher | undefined): AppendedResult {
  return visible({ ...result, status: 'duplicate' }, pusher)
}

/** Invariant 8: the corrections the pusher may read. */
export function visible(result: AppendedResult, pusher: Pusher | undefined): AppendedResult {
  if (pusher === undefined || result.corrections.length === 0) return result
  const read = pusher.grants.read
  const shown = result.corrections.filter((c) => matchesAny(read, c.entity))
  return shown.length === result.corrections.length ? result : { ...result, corrections: shown }
}

export function deferredOf(
  id: string,
  decision: Extract<Decision, { _tag: 'defer' }>,
): DeferredResult {
  return {
    id,
    status: 'deferred',
    code: decision.code,
    reason: decision.reason,
    retryAfterMs: decision.retryAfterMs,
  }
}

/**
 * One entry's decision as the planner asks for it: `decide()` of core with the log's checks
 * when the log has a schema, else `decidePlain`, the same outcome without re-validating an entry
 * the log already validated.
 *
 * Terms: a *plain* log has no schema: it folds no state and checks only clocks, `corrects` and
 * a request's `expect`.
 *
 * Invariants (numbered as in `append-plan.ts`):
 * 5. Corrections are sized like entries (encoded data at most `ENTRY_DATA_BYTES_MAX`,
 *    `checkCorrectionSize`) and folded into every ledger they touch by `decide()` before they
 *    are planned, so no stored ledger holds an entry its own type cannot fold.
 * 11. `decidePlain` gives the outcome `decide(undefined, …)` gives for a validated entry: a
 *    deferral for a clock ahead, the `corrects` check, `conflict` for a request whose `expect`
 *    is not the version, else an append with no state and no corrections.
 */
import { clockAhead, correctsDecision, decide } from '@ledgerline/core'
import type { CorrectsCheck, Decision, Entry } from '@ledgerline/core'
import { ENTRY_DATA_BYTES_MAX, entryDataBytes } from '@ledgerline/protocol'
import type { PlanContext, PlanHeadState } from './plan-types.ts'

/** What `decideEntry` asks of the planner beyond the entry's head. */
export interface EntryChecks {
  /** The folded state of another entity of the tenant (may throw `PlanMiss`). */
  readonly stateOf: (entity: string) => unknown
  readonly checkCorrects: (id: string) => CorrectsCheck
}

/**
 * Decides one entry on its entity's head (invariants 5 and 11).
 *
 * @example
 * decideEntry(context, head, entry, { stateOf, checkCorrects }) // { _tag: 'append', … }
 */
export function decideEntry(
  context: PlanContext,
  head: PlanHeadState,
  entry: Entry,
  checks: EntryChecks,
): Decision {
  const schema = context.schema
  if (schema === undefined) {
    return decidePlain(head.version, entry, context.committedAt, checks.checkCorrects)
  }
  return decide(schema, { state: head.state, version: head.version }, entry, context.committedAt, {
    stateOf: checks.stateOf,
    checkCorrection: checkCorrectionSize,
    checkCorrects: checks.checkCorrects,
  })
}

/**
 * The log's check of a correction before it is planned (invariant 5): its data must fit an
 * entry, or no reader could ever decode the page that holds it.
 *
 * @example
 * checkCorrectionSize(correction) // true, or 'stock.oversold data is 70000 bytes encoded, …'
 */
export function checkCorrectionSize(correction: Entry): true | string {
  const bytes = entryDataBytes(correction.data)
  if (bytes <= ENTRY_DATA_BYTES_MAX) return true
  return `${correction.kind} data is ${bytes} bytes encoded, over ENTRY_DATA_BYTES_MAX (${ENTRY_DATA_BYTES_MAX})`
}

/**
 * `decide()` of a plain log (no schema), without its input checks: entries reach the log
 * already validated (`AppendItem`), and on the hot path of a plain log re-validating every entry
 * was the largest cost after the storage itself. The outcome is the one `decide(undefined, …)`
 * gives.
 */
export function decidePlain(
  version: number,
  entry: Entry,
  now: number,
  checkCorrects: (id: string) => CorrectsCheck,
): Decision {
  const ahead = clockAhead(entry, now)
  if (ahead !== undefined) return ahead
  if (entry.corrects !== undefined) {
    const corrects = correctsDecision(entry, { checkCorrects })
    if (corrects !== undefined) return corrects
  }
  if (entry.intent === 'request' && entry.expect !== undefined && entry.expect !== version) {
    return {
      _tag: 'refuse',
      code: 'conflict',
      reason: `expected version ${entry.expect}, entity is at ${version}`,
    }
  }
  return PLAIN_APPEND
}

const PLAIN_APPEND: Decision = {
  _tag: 'append',
  state: null,
  corrections: [],
  broken: [],
  others: new Map(),
}

/**
 * The log's own entries: the corrections a type's `correct` rule drafts, turned into entries
 * with deterministic ids (or one `ledger.correction_failed` when the rule misbehaves), and the
 * predicates that tell a log correction and a CRDT snapshot from everything else. `decide.ts`
 * decides when corrections are due and folds them; this module only makes and recognises them.
 *
 * Terms: a *draft* is what `correct` returns (kind, data, optional entity and rule); a
 * *correction* is the entry made of it, by the server log (`clientId` `server`), naming the
 * entry it compensates for in `corrects`.
 *
 * Invariants (numbered as in `decide.ts`):
 * 2. Correction ids come from (entry id, rule, index), the index counted per rule
 *    case-insensitively: the same entry always yields the same corrections (guarantee 7).
 * 6. A `correct` rule that throws or returns junk (no array, too many drafts, a bad kind, data,
 *    entity or rule) never throws out of `buildCorrections`: it yields one
 *    `ledger.correction_failed` correction on the entry's own entity that records why. Bad input
 *    (a type without `correct`, no broken invariant, a malformed entry) is a `LedgerError`.
 * 12. A correction is `isLogCorrection` and a snapshot is `isCrdtSnapshot`, never both: a
 *    client's own `corrects` is neither.
 */
import type { Data, Entry } from './entry.ts'
import { checkData, checkKind, validateEntry } from './entry.ts'
import { parseEntityName } from './entity-name.ts'
import { LedgerError } from './errors.ts'
import { correctionId, SERVER_CLIENT_ID } from './ids.ts'
import { CORRECTIONS_PER_ENTRY_MAX } from './limits.ts'
import type { Broken, CrdtKind, EntityType } from './schema.ts'
import { checkEntityType } from './schema.ts'
import { checkNow, clipReason, errorReason } from './decide-checks.ts'

/** The kind of the correction that records a schema bug instead of its drafts (invariant 6). */
export const CORRECTION_FAILED = 'ledger.correction_failed'

/**
 * Runs the type's `correct` rule and turns its drafts into entries with deterministic ids.
 * A rule that throws or returns malformed drafts yields one `ledger.correction_failed` entry
 * instead, so the fact is still appended and the failure is visible in the ledger.
 *
 * @example
 * buildCorrections(stock, { onHand: -1 }, [{ rule: 'nonNegative', reason: '…' }], sale, now)
 * // [{ id: `${sale.id}~nonnegative~0`, kind: 'stock.oversold', corrects: sale.id, … }]
 */
export function buildCorrections<S>(
  type: EntityType<S>,
  state: S,
  broken: readonly Broken[],
  entry: Entry,
  now: number,
): Entry[] {
  checkEntityType(type)
  if (typeof type.correct !== 'function') {
    throw new LedgerError('invalid_argument', `entity type '${type.type}' has no correct rule`)
  }
  if (!Array.isArray(broken) || broken.length === 0) {
    throw new LedgerError('invalid_argument', 'broken must list at least one broken invariant')
  }
  validateEntry(entry)
  checkNow(now)
  try {
    const drafts: unknown = type.correct(state, broken, entry)
    if (!Array.isArray(drafts)) {
      throw new LedgerError('invalid_entity_type', 'correct must return an array')
    }
    if (drafts.length > CORRECTIONS_PER_ENTRY_MAX) {
      throw new LedgerError(
        'invalid_entity_type',
        `correct returned over ${CORRECTIONS_PER_ENTRY_MAX} entries`,
      )
    }
    const firstRule = (broken[0] as Broken).rule
    // Keyed by the lower-cased rule, as in the id: `Short` and `short` share one index series.
    const perRule = new Map<string, number>()
    return drafts.map((value: unknown, i) => {
      if (typeof value !== 'object' || value === null) {
        throw new LedgerError('invalid_entity_type', `correction draft ${i} must be an object`)
      }
      const draft = value as Record<string, unknown>
      const kind = checkKind(draft.kind)
      const data = checkData(draft.data)
      const entity = draft.entity === undefined ? entry.entity : draft.entity
      parseEntityName(entity)
      const rule = draft.rule === undefined ? firstRule : draft.rule
      if (typeof rule !== 'string') {
        throw new LedgerError('invalid_entity_type', `correction draft ${i} rule must be a string`)
      }
      const index = perRule.get(rule.toLowerCase()) ?? 0
      perRule.set(rule.toLowerCase(), index + 1)
      return correctionEntry(
        entry,
        correctionId(entry.id, rule, index),
        entity as string,
        kind,
        data,
        now,
      )
    })
  } catch (error) {
    return [failedCorrection(broken, entry, now, errorReason(error))]
  }
}

/**
 * True when `entry` is one of the log's own corrections: made by the server log
 * (`clientId` `server`), naming the entry it compensates for in `corrects`, with the id derived
 * from it. The one predicate for what a corrections feed shows and what an ack lists: a
 * client's own `corrects` (a refund naming its sale) is not a correction of the log, and a CRDT
 * snapshot is not one either (logs written before snapshots had `data.through` alone gave them
 * `corrects`; they still read, and are still not corrections).
 *
 * @example
 * isLogCorrection(oversold) // true
 * isLogCorrection(refund)   // false: a client entry
 */
export function isLogCorrection(entry: Entry): boolean {
  return (
    entry.clientId === SERVER_CLIENT_ID &&
    entry.corrects !== undefined &&
    entry.id.startsWith(`${entry.corrects}~`) &&
    !isCrdtSnapshot(entry)
  )
}

/** The kind of the server log's snapshots of a CRDT entity type (`yjs.snapshot`, …). */
export function crdtSnapshotKind(crdt: CrdtKind): string {
  return `${crdt}.snapshot`
}

/**
 * True when `entry` is a CRDT snapshot made by the server log (`yjs.snapshot`,
 * `automerge.snapshot`); its `data.through` says the last version it covers.
 *
 * @example
 * isCrdtSnapshot({ ...entry, clientId: 'server', kind: 'yjs.snapshot' }) // true
 */
export function isCrdtSnapshot(entry: Entry): boolean {
  return entry.clientId === SERVER_CLIENT_ID && CRDT_SNAPSHOT_KINDS.has(entry.kind)
}

// Every CRDT kind (the record keeps the list complete), as snapshot kinds.
const CRDT_SNAPSHOT_KINDS: ReadonlySet<string> = new Set(
  (Object.keys({ yjs: true, automerge: true } satisfies Record<CrdtKind, true>) as CrdtKind[]).map(
    crdtSnapshotKind,
  ),
)

/**
 * The fact's one `ledger.correction_failed` on its own entity, recording the broken rules and
 * why the drafts could not be appended (invariant 6).
 */
export function failedCorrection(
  broken: readonly Broken[],
  entry: Entry,
  now: number,
  reason: string,
): Entry {
  reason = clipReason(reason)
  const rule = (broken[0] as Broken).rule
  return correctionEntry(
    entry,
    correctionId(entry.id, rule, 0),
    entry.entity,
    CORRECTION_FAILED,
    {
      rules: broken.map((b) => b.rule),
      reason,
    },
    now,
  )
}

function correctionEntry(
  entry: Entry,
  id: string,
  entity: string,
  kind: string,
  data: Data,
  now: number,
): Entry {
  return {
    id,
    tenant: entry.tenant,
    entity,
    kind,
    data,
    intent: 'fact',
    corrects: entry.id,
    clientId: SERVER_CLIENT_ID,
    clientSeq: 0,
    hlc: entry.hlc,
    occurredAt: now,
  }
}

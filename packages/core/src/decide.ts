/**
 * The server log's decision for one entry: the write semantics of the design in one pure
 * function, so every store (SQLite, PostgreSQL, the simulation's) decides alike.
 *
 *   fact    ──validate──► append; if invariants break after it, append the type's corrections
 *   request ──validate──► expect == version? invariants hold after it? ──► append : refuse
 *
 * Invariants:
 * 1. A valid fact is never refused for a business reason (guarantee 7).
 * 2. Correction ids come from (entry id, rule, index): the same entry always yields the same
 *    corrections (guarantee 7).
 * 3. A refused request changes nothing; the caller gets the reason and the current version.
 * 4. Corrections are appended right after the offending entry, in the same transaction; by
 *    default to the same entity, or to another entity of the same tenant that a draft names.
 * 5. Corrections are not themselves checked against invariants: a correction never cascades.
 */
import type { Entry } from './entry.ts'
import { checkData, checkKind } from './entry.ts'
import { parseEntityName } from './entity-name.ts'
import { LedgerError } from './errors.ts'
import { checkInvariants, fold } from './fold.ts'
import { correctionId, SERVER_CLIENT_ID } from './ids.ts'
import { CORRECTIONS_PER_ENTRY_MAX } from './limits.ts'
import type { Broken, EntityType, Schema } from './schema.ts'

/** Why a request (or a malformed entry) was refused. A closed set. */
export type RefusalCode =
  /** `expect` did not equal the entity's version. */
  | 'conflict'
  /** A request would break an invariant. */
  | 'invariant'
  /** The entity type's `validate` refused the entry's shape. */
  | 'invalid'
  /** The schema has no type for the entity. */
  | 'unknown_type'

export type Decision<S = unknown> =
  | {
      readonly _tag: 'append'
      /** State of the entry's entity after the entry and its own-entity corrections. */
      readonly state: S
      /** Correction entries to append right after the entry, in order. */
      readonly corrections: readonly Entry[]
      readonly broken: readonly Broken[]
    }
  | { readonly _tag: 'refuse'; readonly code: RefusalCode; readonly reason: string }

export interface Head<S = unknown> {
  readonly state: S
  /** The entity's current version (0 for an empty ledger). */
  readonly version: number
}

/**
 * Decides `entry` against the head of its entity. `schema` undefined means a plain log: every
 * well-formed entry is appended. `now` stamps corrections' `occurredAt`.
 *
 * @example
 * decide(schema, { state: { onHand: 0 }, version: 3 }, sale, Date.now())
 * // { _tag: 'append', corrections: [stock.oversold…], … }
 */
export function decide(
  schema: Schema | undefined,
  head: Head,
  entry: Entry,
  now: number,
): Decision {
  if (schema === undefined) return appendPlain(head, entry)
  const type = schema.find(entry.entity)
  if (type === undefined) {
    return { _tag: 'refuse', code: 'unknown_type', reason: `no entity type for '${entry.entity}'` }
  }
  return decideTyped(type, head, entry, now)
}

/** `decide` for a known entity type. */
export function decideTyped<S>(
  type: EntityType<S>,
  head: Head<S>,
  entry: Entry,
  now: number,
): Decision<S> {
  if (type.validate !== undefined) {
    let verdict: true | string
    try {
      verdict = type.validate(entry)
    } catch (error) {
      verdict = `validate threw: ${error instanceof Error ? error.message : String(error)}`
    }
    if (verdict !== true) return { _tag: 'refuse', code: 'invalid', reason: String(verdict) }
  }
  if (entry.intent === 'request' && entry.expect !== undefined && entry.expect !== head.version) {
    return {
      _tag: 'refuse',
      code: 'conflict',
      reason: `expected version ${entry.expect}, entity is at ${head.version}`,
    }
  }
  let after: S
  try {
    after = type.reduce(head.state, entry)
  } catch (error) {
    return { _tag: 'refuse', code: 'invalid', reason: `reduce threw: ${message(error)}` }
  }
  const broken = checkInvariants(type, after)
  if (entry.intent === 'request') {
    if (broken.length > 0) {
      return {
        _tag: 'refuse',
        code: 'invariant',
        reason: broken.map((b) => `${b.rule}: ${b.reason}`).join('; '),
      }
    }
    return { _tag: 'append', state: after, corrections: [], broken }
  }
  if (broken.length === 0 || type.correct === undefined) {
    return { _tag: 'append', state: after, corrections: [], broken }
  }
  const corrections = buildCorrections(type, after, broken, entry, now)
  const own = corrections.filter((c) => c.entity === entry.entity)
  return { _tag: 'append', state: fold(type, after, own), corrections, broken }
}

/**
 * Runs the type's `correct` rule and turns its drafts into entries with deterministic ids.
 * A rule that throws or returns malformed drafts yields one `ledger.correction_failed` entry
 * instead, so the fact is still appended and the failure is visible in the ledger.
 */
export function buildCorrections<S>(
  type: EntityType<S>,
  state: S,
  broken: readonly Broken[],
  entry: Entry,
  now: number,
): Entry[] {
  const firstRule = (broken[0] as Broken).rule
  let drafts: readonly {
    kind: string
    data: unknown
    rule?: string | undefined
    entity?: string | undefined
  }[]
  try {
    drafts = (type.correct as NonNullable<EntityType<S>['correct']>)(state, broken, entry)
    if (!Array.isArray(drafts))
      throw new LedgerError('invalid_entity_type', 'correct must return an array')
    if (drafts.length > CORRECTIONS_PER_ENTRY_MAX) {
      throw new LedgerError(
        'invalid_entity_type',
        `correct returned over ${CORRECTIONS_PER_ENTRY_MAX} entries`,
      )
    }
    for (const d of drafts) {
      checkKind(d.kind)
      checkData(d.data)
      if (d.entity !== undefined) parseEntityName(d.entity)
    }
  } catch (error) {
    drafts = [
      {
        kind: 'ledger.correction_failed',
        data: { rules: broken.map((b) => b.rule), reason: message(error) },
        rule: firstRule,
      },
    ]
  }
  const perRule = new Map<string, number>()
  return drafts.map((draft) => {
    const rule = draft.rule ?? firstRule
    const index = perRule.get(rule) ?? 0
    perRule.set(rule, index + 1)
    return {
      id: correctionId(entry.id, rule, index),
      tenant: entry.tenant,
      entity: draft.entity ?? entry.entity,
      kind: draft.kind,
      data: draft.data as Entry['data'],
      intent: 'fact' as const,
      corrects: entry.id,
      clientId: SERVER_CLIENT_ID,
      clientSeq: 0,
      hlc: entry.hlc,
      occurredAt: now,
    }
  })
}

/** True when `entry` was made by the server log to compensate for another entry. */
export function isCorrection(entry: Entry): boolean {
  return entry.clientId === SERVER_CLIENT_ID && entry.corrects !== undefined
}

function appendPlain(head: Head, entry: Entry): Decision {
  if (entry.intent === 'request' && entry.expect !== undefined && entry.expect !== head.version) {
    return {
      _tag: 'refuse',
      code: 'conflict',
      reason: `expected version ${entry.expect}, entity is at ${head.version}`,
    }
  }
  return { _tag: 'append', state: head.state, corrections: [], broken: [] }
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

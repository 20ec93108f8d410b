/**
 * The server log's decision for one entry: the write semantics of the design in one pure
 * function, so every store (SQLite, PostgreSQL, the simulation's) decides alike.
 *
 *   entry   ──clock ahead? no type?──► defer (not a decision: decided again when resent)
 *           ──corrects names no entry it may write?──► refuse invalid
 *   fact    ──validate──► append; if invariants break after it, append the type's corrections
 *   request ──validate──► expect == version? invariants hold after it? ──► append : refuse
 *
 * The corrections themselves (their ids, `ledger.correction_failed` for a misbehaving rule,
 * `isLogCorrection`, `isCrdtSnapshot`) are made in `corrections.ts`; the argument checks and
 * reason clipping in `decide-checks.ts`.
 *
 * Invariants (`corrections.ts` restates 2 and 6 for what it builds and adds 12;
 * `decide-checks.ts` adds 13):
 * 1. A valid fact is never refused for a business reason (guarantee 7).
 * 2. Correction ids are deterministic (`corrections.ts`): deciding an entry again yields the same
 *    corrections (guarantee 7).
 * 3. A refused request changes nothing; the caller gets the reason and the current version.
 * 4. Corrections are appended right after the offending entry, in the same transaction; by
 *    default to the same entity, or to another entity of the same tenant that a draft names.
 * 5. Corrections are not themselves checked against invariants: a correction never cascades.
 * 6. A schema bug (a `correct` rule that throws or returns junk, a `reduce` that throws on a
 *    correction) never throws out of `decide`: the fact is appended with one
 *    `ledger.correction_failed` correction on its own entity that records why.
 * 7. Bad input (a malformed entry or head, a value that is not a schema) is a `LedgerError`.
 * 8. One guarded fold path for every correction: own-entity and cross-entity corrections are
 *    all folded here, into the entry's state and (through `context.stateOf`) into the state of
 *    each other entity they name, before any is appended. If any `reduce` throws, or
 *    `context.checkCorrection` refuses one (the log's size limit), none of them is appended and
 *    the fact gets one `ledger.correction_failed` instead: no ledger ever holds an entry its own
 *    type cannot fold.
 * 9. A correction to an entity type that declares kinds must be of a declared kind with valid
 *    data (`validateKind`), like any entry appended to it; one that is not is a schema bug and
 *    takes the path of invariant 8.
 * 10. What the log cannot decide yet is deferred, never refused: a client entry whose `hlc` wall
 *    time or `occurredAt` is more than `ENTRY_CLOCK_SKEW_MS_MAX` ahead of `now` (`clock_ahead`),
 *    or whose entity has no type in the schema (`unknown_type`: the relay is behind the app).
 *    A deferral is not a decision; the log decides the entry again when it is resent.
 * 11. Only the log corrects other entries: a client entry's `corrects` must pass
 *    `context.checkCorrects` (the named entry exists in the log, and the pusher may write its
 *    entity), else the entry is refused `invalid`. Entries made by the log are not checked.
 */
import { buildCorrections, CORRECTION_FAILED, failedCorrection } from './corrections.ts'
import { checkNow, clipReason, errorReason } from './decide-checks.ts'
import type { Entry } from './entry.ts'
import { validateEntry } from './entry.ts'
import { LedgerError } from './errors.ts'
import { checkInvariants, fold } from './fold.ts'
import { validateKind } from './kinds.ts'
import { SERVER_CLIENT_ID } from './ids.ts'
import {
  DEFERRAL_RETRY_MS_MAX,
  DEFERRAL_RETRY_MS_MIN,
  ENTRY_CLOCK_SKEW_MS_MAX,
  UNKNOWN_TYPE_RETRY_MS,
} from './limits.ts'
import type { Broken, EntityType, Schema } from './schema.ts'
import { checkEntityType, isSchema } from './schema.ts'

/** Why a request (or a malformed entry) was refused: a decision. A closed set. */
export type RefusalCode =
  /** `expect` did not equal the entity's version. */
  | 'conflict'
  /** A request would break an invariant. */
  | 'invariant'
  /**
   * The entity type's `validate` refused the entry's shape, its `reduce` cannot fold it, or its
   * `corrects` names no entry the pusher may correct.
   */
  | 'invalid'

/** Every `RefusalCode`, for runtime checks (the wire decoder); the record keeps it complete. */
export const REFUSAL_CODES = Object.keys({
  conflict: true,
  invariant: true,
  invalid: true,
} satisfies Record<RefusalCode, true>) as readonly RefusalCode[]

/**
 * Why the log cannot decide an entry yet (invariant 9). Not a decision: the entry is decided
 * again when it is resent. A closed set, the wire's `deferred` codes.
 */
export type DeferralCode =
  /** The schema has no type for the entity: the relay is behind the app. */
  | 'unknown_type'
  /** The entry's clock is more than `ENTRY_CLOCK_SKEW_MS_MAX` ahead of the log's. */
  | 'clock_ahead'

/** What `context.checkCorrects` says of a client entry's `corrects` (invariant 10). */
export type CorrectsCheck =
  | { readonly _tag: 'ok' }
  /** The named entry is not in the log, or the pusher may not write its entity. */
  | { readonly _tag: 'refuse'; readonly reason: string }
  /** The named entry is deferred itself: this one waits for the same thing. */
  | { readonly _tag: 'defer'; readonly code: DeferralCode; readonly reason: string }

export type Decision<S = unknown> =
  | {
      readonly _tag: 'append'
      /** State of the entry's entity after the entry and its own-entity corrections. */
      readonly state: S
      /** Correction entries to append right after the entry, in order. */
      readonly corrections: readonly Entry[]
      readonly broken: readonly Broken[]
      /**
       * States of the other entities the corrections were folded into (invariant 8), by entity
       * name; empty when no correction names another entity of a known type.
       */
      readonly others: ReadonlyMap<string, unknown>
    }
  | { readonly _tag: 'refuse'; readonly code: RefusalCode; readonly reason: string }
  | {
      readonly _tag: 'defer'
      readonly code: DeferralCode
      readonly reason: string
      /** When a resend may be decided otherwise; see `deferral`. */
      readonly retryAfterMs: number
    }

export interface Head<S = unknown> {
  readonly state: S
  /** The entity's current version (0 for an empty ledger). */
  readonly version: number
}

/** What `decide` may ask of the log beyond the entry's own head (invariant 8). */
export interface DecideContext {
  /**
   * The current state of another entity of the entry's tenant that a correction names. Called
   * at most once per entity, outside any guard, so whatever it throws (a store's "not loaded
   * yet") passes through. Without it, corrections to other entities are appended unfolded.
   */
  readonly stateOf?: ((entity: string) => unknown) | undefined
  /**
   * Checks one correction before it may be appended; a string says why it may not (the log
   * sizes corrections like entries). Without it, every well-formed correction may.
   */
  readonly checkCorrection?: ((correction: Entry) => true | string) | undefined
  /**
   * Checks the entry a client entry's `corrects` names (invariant 10). Called outside any
   * guard, like `stateOf`. Without it, `corrects` is not checked (a caller that has no log).
   */
  readonly checkCorrects?: ((corrects: string) => CorrectsCheck) | undefined
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
  context: DecideContext = {},
): Decision {
  if (schema !== undefined && !isSchema(schema)) {
    throw new LedgerError('invalid_argument', 'schema must be made by defineSchema or undefined')
  }
  checkInputs(head, entry, now)
  const ahead = clockAhead(entry, now)
  if (ahead !== undefined) return ahead
  const type = schema?.find(entry.entity)
  if (schema !== undefined && type === undefined) {
    return deferral('unknown_type', `no entity type for '${entry.entity}'`)
  }
  const corrects = correctsDecision(entry, context)
  if (corrects !== undefined) return corrects
  if (type === undefined) return appendPlain(head, entry)
  return decideChecked(type, head, entry, now, schema, context)
}

/**
 * The deferral of a client entry whose clock is more than `ENTRY_CLOCK_SKEW_MS_MAX` ahead of
 * `now` (invariant 9), or `undefined`. Entries made by the log are never deferred.
 *
 * @example
 * clockAhead({ ...entry, occurredAt: Date.now() + 86_400_000 }, Date.now())
 * // { _tag: 'defer', code: 'clock_ahead', reason: '…', retryAfterMs: 3_600_000 }
 */
export function clockAhead(entry: Entry, now: number): Decision | undefined {
  if (entry.clientId === SERVER_CLIENT_ID) return undefined
  const wall = Number(entry.hlc.slice(0, 15))
  const aheadMs = Math.max(wall, entry.occurredAt) - now
  if (!(aheadMs > ENTRY_CLOCK_SKEW_MS_MAX)) return undefined
  const which = wall >= entry.occurredAt ? 'hlc' : 'occurredAt'
  return deferral(
    'clock_ahead',
    `${which} is ${Math.round(aheadMs / 1000)} s ahead of the log's clock; at most ${ENTRY_CLOCK_SKEW_MS_MAX / 1000} s are allowed`,
    aheadMs - ENTRY_CLOCK_SKEW_MS_MAX,
  )
}

/**
 * A deferral with its retry hint: `unknown_type` after `UNKNOWN_TYPE_RETRY_MS`; `clock_ahead`
 * once the clock is within the skew (`waitMs`), within `DEFERRAL_RETRY_MS_MIN..MAX`.
 *
 * @example
 * deferral('unknown_type', "no entity type for 'loyalty/7'") // retryAfterMs 60_000
 */
export function deferral(code: DeferralCode, reason: string, waitMs?: number): Decision {
  const wanted = code === 'unknown_type' ? UNKNOWN_TYPE_RETRY_MS : (waitMs ?? 0)
  const retryAfterMs = Math.min(
    DEFERRAL_RETRY_MS_MAX,
    Math.max(DEFERRAL_RETRY_MS_MIN, Math.ceil(wanted)),
  )
  return { _tag: 'defer', code, reason: clipReason(reason), retryAfterMs }
}

/**
 * Invariant 10: what a client entry's `corrects` decides (through `context.checkCorrects`), or
 * `undefined` when it decides nothing (no `corrects`, an entry of the log, no check, or `ok`).
 *
 * @example
 * correctsDecision(refund, { checkCorrects: () => ({ _tag: 'refuse', reason: 'not in the log' }) })
 * // { _tag: 'refuse', code: 'invalid', reason: 'not in the log' }
 */
export function correctsDecision(entry: Entry, context: DecideContext): Decision | undefined {
  if (entry.corrects === undefined || entry.clientId === SERVER_CLIENT_ID) return undefined
  if (context.checkCorrects === undefined) return undefined
  const check = context.checkCorrects(entry.corrects)
  if (check._tag === 'ok') return undefined
  if (check._tag === 'defer') return deferral(check.code, check.reason)
  return { _tag: 'refuse', code: 'invalid', reason: clipReason(check.reason) }
}

/**
 * `decide` for a known entity type.
 *
 * @example
 * decideTyped(stock, { state: { onHand: 1 }, version: 1 }, sale, Date.now())
 */
export function decideTyped<S>(
  type: EntityType<S>,
  head: Head<S>,
  entry: Entry,
  now: number,
): Decision<S> {
  checkEntityType(type)
  checkInputs(head, entry, now)
  return decideChecked(type, head, entry, now, undefined, {})
}

function decideChecked<S>(
  type: EntityType<S>,
  head: Head<S>,
  entry: Entry,
  now: number,
  schema: Schema | undefined,
  context: DecideContext,
): Decision<S> {
  if (type.validate !== undefined) {
    let verdict: true | string
    try {
      verdict = type.validate(entry)
    } catch (error) {
      verdict = `validate threw: ${error instanceof Error ? error.message : String(error)}`
    }
    if (verdict !== true)
      return { _tag: 'refuse', code: 'invalid', reason: clipReason(String(verdict)) }
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
    return {
      _tag: 'refuse',
      code: 'invalid',
      reason: clipReason(`reduce threw: ${errorReason(error)}`),
    }
  }
  const broken = checkInvariants(type, after)
  if (entry.intent === 'request') {
    if (broken.length > 0) {
      return {
        _tag: 'refuse',
        code: 'invariant',
        reason: clipReason(broken.map((b) => `${b.rule}: ${b.reason}`).join('; ')),
      }
    }
    return { _tag: 'append', state: after, corrections: [], broken, others: NO_OTHERS }
  }
  if (broken.length === 0 || type.correct === undefined) {
    return { _tag: 'append', state: after, corrections: [], broken, others: NO_OTHERS }
  }
  const corrections = buildCorrections(type, after, broken, entry, now)
  const refusal =
    checkCorrections(corrections, context) ?? checkCorrectionKinds(type, schema, entry, corrections)
  if (refusal !== undefined) return appendFailed(type, after, broken, entry, now, refusal)
  // The other entities' states are read before the guard: a lookup's failure is the caller's
  // (a store that must load more), not a schema bug.
  const targets = new Map<string, { type: EntityType<unknown>; state: unknown }>()
  for (const c of corrections) {
    if (c.entity === entry.entity || targets.has(c.entity)) continue
    const target = schema?.find(c.entity)
    if (target === undefined || context.stateOf === undefined) continue
    targets.set(c.entity, { type: target, state: context.stateOf(c.entity) })
  }
  try {
    let state = after
    for (const c of corrections) {
      if (c.entity === entry.entity) {
        state = type.reduce(state, c)
        continue
      }
      const target = targets.get(c.entity)
      if (target !== undefined) target.state = target.type.reduce(target.state, c)
    }
    const others = new Map<string, unknown>()
    for (const [entity, target] of targets) others.set(entity, target.state)
    return { _tag: 'append', state, corrections, broken, others }
  } catch (error) {
    // `reduce` threw on a correction. Appending corrections that no client can fold would break
    // every view of that entity, so record the failure instead (guarantee 7 still holds).
    const reason = `reduce threw on a correction: ${errorReason(error)}`
    return appendFailed(type, after, broken, entry, now, reason)
  }
}

/** The fact with one `ledger.correction_failed` on its own entity (invariants 6 and 8). */
function appendFailed<S>(
  type: EntityType<S>,
  after: S,
  broken: readonly Broken[],
  entry: Entry,
  now: number,
  reason: string,
): Decision<S> {
  const corrections = [failedCorrection(broken, entry, now, reason)]
  try {
    return {
      _tag: 'append',
      state: fold(type, after, corrections),
      corrections,
      broken,
      others: NO_OTHERS,
    }
  } catch (error) {
    return {
      _tag: 'refuse',
      code: 'invalid',
      reason: clipReason(`reduce threw: ${errorReason(error)}`),
    }
  }
}

/** The first reason `context.checkCorrection` gives for refusing one of `corrections`. */
function checkCorrections(
  corrections: readonly Entry[],
  context: DecideContext,
): string | undefined {
  if (context.checkCorrection === undefined) return undefined
  for (const [i, c] of corrections.entries()) {
    let verdict: true | string
    try {
      verdict = context.checkCorrection(c)
    } catch (error) {
      verdict = `checking it threw: ${errorReason(error)}`
    }
    if (verdict !== true) return `correction ${i} (${c.kind}) refused: ${String(verdict)}`
  }
  return undefined
}

/** Invariant 9: the first correction a typed target type would refuse, and why. */
function checkCorrectionKinds(
  type: Pick<EntityType, 'type' | 'kinds'>,
  schema: Schema | undefined,
  entry: Entry,
  corrections: readonly Entry[],
): string | undefined {
  for (const [i, c] of corrections.entries()) {
    if (c.kind === CORRECTION_FAILED) continue
    const target = c.entity === entry.entity ? type : schema?.find(c.entity)
    if (target?.kinds === undefined) continue
    const verdict = validateKind(target, c.kind, c.data)
    if (verdict !== true) return `correction ${i} (${c.kind}) refused: ${verdict}`
  }
  return undefined
}

const NO_OTHERS: ReadonlyMap<string, unknown> = new Map()

function appendPlain(head: Head, entry: Entry): Decision {
  if (entry.intent === 'request' && entry.expect !== undefined && entry.expect !== head.version) {
    return {
      _tag: 'refuse',
      code: 'conflict',
      reason: `expected version ${entry.expect}, entity is at ${head.version}`,
    }
  }
  return { _tag: 'append', state: head.state, corrections: [], broken: [], others: NO_OTHERS }
}

function checkInputs(head: Head, entry: Entry, now: number): void {
  if (typeof head !== 'object' || head === null) {
    throw new LedgerError('invalid_argument', 'head must be { state, version }')
  }
  if (!Number.isSafeInteger(head.version) || head.version < 0) {
    throw new LedgerError('invalid_argument', 'head version must be a non-negative integer')
  }
  validateEntry(entry)
  checkNow(now)
}

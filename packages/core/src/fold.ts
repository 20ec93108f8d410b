/**
 * Folding ledgers into state.
 *
 * Terms: *confirmed* is the state folded from server-ordered entries (by version); *pending*
 * are this client's own entries not yet acknowledged; *view* is confirmed, then pending in
 * clientSeq order.
 *
 * Invariants:
 * 1. Folding is pure: the same initial state and entries give the same state.
 * 2. A view is always refolded from confirmed: nothing is undone in place.
 * 3. Once every pending entry is confirmed (and no other entries arrived), view equals
 *    confirmed.
 */
import type { Entry, StoredEntry } from './entry.ts'
import { byClientSeq } from './entry.ts'
import { LedgerError } from './errors.ts'
import type { Broken, EntityType } from './schema.ts'
import { checkEntityType } from './schema.ts'

/**
 * Folds entries into `state` with the type's `reduce`, in the order given.
 *
 * @example
 * fold(stock, { onHand: 0 }, [restock, sale]) // { onHand: 4 }
 */
export function fold<S>(type: EntityType<S>, state: S, entries: Iterable<Entry>): S {
  checkEntityType(type)
  if (entries === null || typeof entries !== 'object' || !(Symbol.iterator in entries)) {
    throw new LedgerError('invalid_argument', 'fold needs an iterable of entries')
  }
  let s = state
  for (const entry of entries) s = type.reduce(s, entry)
  return s
}

/**
 * Confirmed state: `initial` folded with stored entries in version order. The entries must be
 * the ledger from version 1 (or from the version after a snapshot's, given as `from`).
 *
 * @example
 * confirmed(stock, entries) // { onHand: 3 }
 */
export function confirmed<S>(
  type: EntityType<S>,
  entries: readonly StoredEntry[],
  from: { state: S; version: number } = { state: type.initial, version: 0 },
): S {
  checkEntityType(type)
  if (!Array.isArray(entries)) throw new LedgerError('invalid_argument', 'entries must be an array')
  if (!Number.isSafeInteger(from.version) || from.version < 0) {
    throw new LedgerError('invalid_argument', 'from.version must be a non-negative integer')
  }
  const sorted = [...entries].sort((a, b) => a.version - b.version)
  let expected = from.version + 1
  for (const entry of sorted) {
    if (entry.version !== expected) {
      throw new LedgerError(
        'invalid_argument',
        `ledger has a gap: expected version ${expected}, got ${entry.version}`,
      )
    }
    expected++
  }
  return fold(type, from.state, sorted)
}

/**
 * View: confirmed state, then this client's pending entries in clientSeq order.
 *
 * @example
 * view(stock, { onHand: 3 }, [pendingSale]) // { onHand: 2 }
 */
export function view<S>(type: EntityType<S>, confirmedState: S, pending: readonly Entry[]): S {
  if (!Array.isArray(pending)) throw new LedgerError('invalid_argument', 'pending must be an array')
  return fold(type, confirmedState, [...pending].sort(byClientSeq))
}

/**
 * The invariants of `type` that `state` breaks, in the order they are declared. An invariant
 * that throws counts as broken, with the error's message as reason: a schema bug must not
 * stop the log.
 *
 * @example
 * checkInvariants(stock, { onHand: -1 }) // [{ rule: 'nonNegative', reason: 'stock below zero' }]
 */
export function checkInvariants<S>(type: EntityType<S>, state: S): Broken[] {
  checkEntityType(type)
  const broken: Broken[] = []
  for (const [rule, invariant] of Object.entries(type.invariants)) {
    let result: true | string
    try {
      result = invariant(state)
    } catch (error) {
      result = `invariant threw: ${error instanceof Error ? error.message : String(error)}`
    }
    if (result !== true)
      broken.push({ rule, reason: typeof result === 'string' ? result : 'broken' })
  }
  return broken
}

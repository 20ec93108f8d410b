/**
 * The folded states of entity heads a store keeps between groups, so planning a group does not
 * refold every ledger it touches. Storage-side help only: the planner decides, this remembers.
 *
 * Terms: a *cached state* is an entity's state folded through some version; it is *current*
 * when that version is the ledger's version read in the transaction that uses it.
 *
 * Invariants:
 * 1. At most `max` entities (LRU: a hit moves to the back, the front is dropped).
 * 2. `remember` takes the heads of a committed plan only (never of one rolled back), and never
 *    replaces a state with an older one (groups in flight may be answered out of order).
 * 3. `foldForward` folds stored entries onto a cached state strictly in version order, and
 *    fails loudly on a gap rather than deciding on a wrong state.
 */
import type { EntityType, StoredEntry } from '@ledgerline/core'
import type { PlanHead, PlanHeadState } from './plan-types.ts'

export interface EntityStates {
  /**
   * The cached state of `key` at `version` if there is one, else the newest cached one below it
   * (fold forward from it), else `undefined` (fold from the start).
   */
  get(key: string, version: number): PlanHead | undefined
  /** Remembers the heads of a committed plan (invariant 2). */
  remember(heads: ReadonlyMap<string, PlanHeadState>): void
}

/**
 * @example
 * const states = createEntityStates(ENTITY_STATES_MAX)
 * states.remember(plan.heads) // after the commit
 */
export function createEntityStates(max: number): EntityStates {
  const states = new Map<string, PlanHead>()
  return {
    get(key, version) {
      const cached = states.get(key)
      if (cached === undefined || cached.version > version) return undefined
      states.delete(key)
      states.set(key, cached)
      return cached
    },
    remember(heads) {
      for (const [key, head] of heads) {
        const cached = states.get(key)
        if (cached !== undefined && cached.version > head.version) continue
        states.delete(key)
        states.set(key, { version: head.version, offset: head.offset, state: head.state })
        if (states.size > max) {
          const oldest = states.keys().next().value
          if (oldest !== undefined) states.delete(oldest)
        }
      }
    },
  }
}

/**
 * Folds `entries` (the ledger after `from.version`, in version order) onto `from`.
 *
 * @example
 * foldForward(stock, { version: 0, offset: 0, state: stock.initial }, ledger)
 */
export function foldForward(
  type: EntityType<unknown>,
  from: PlanHead,
  entries: Iterable<StoredEntry>,
): PlanHead {
  let { version, offset, state } = from
  for (const entry of entries) {
    if (entry.version !== version + 1) {
      throw new Error(`ledger of ${entry.entity} has a gap at version ${version + 1}`)
    }
    state = type.reduce(state, entry)
    version = entry.version
    offset = entry.offset
  }
  return { version, offset, state }
}

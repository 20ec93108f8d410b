/**
 * Named limits of the server log, whatever stores it. A store may be given lower ones (tests);
 * meeting one is an expected outcome or a typed error (`LogStoreError`), never a silent drop.
 */

/** Most entries (items; their corrections not counted) merged into one group transaction. */
export const GROUP_COMMIT_ENTRIES_MAX = 2_000
/**
 * Most entries accepted by `append` and not yet committed, over every connection of a relay.
 * Past it `append` rejects at once with `LogStoreError('overloaded')` (the relay answers the
 * wire error `overloaded`, and the client backs off), so a flood of pushes cannot grow the
 * relay's memory without bound (tens of MB of decoded entries at most). Sized so that a relay
 * at saturation with 100 connections, each with 4 pushes of 100 entries in flight (40,000, the
 * closed loop of `npm run bench -- relay`), is never refused; a store that falls behind a flood
 * is.
 */
export const COMMIT_QUEUE_ENTRIES_MAX = 50_000
/** Entity head states a store keeps in memory (LRU); a miss folds the ledger from storage. */
export const ENTITY_STATES_MAX = 10_000

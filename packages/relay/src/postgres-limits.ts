/**
 * Named limits of the PostgreSQL server log (`postgres-store.ts`). They sit apart from
 * `limits.ts` so the two stores can change without touching one file; `GROUP_COMMIT_ENTRIES_MAX`
 * and `ENTITY_STATES_MAX` are shared with the SQLite log and stay in `limits.ts`.
 */

/** Connections the store opens when it makes its own pool (one of them LISTENs). */
export const PG_POOL_CONNECTIONS_MAX = 8
/**
 * Group transactions one store keeps in flight. With two, the next group waits for the head
 * rows (its reads queued behind the lock) while the current one writes and commits, so the
 * relay's work of planning and answering overlaps the database's work of writing and syncing.
 */
export const PG_GROUPS_IN_FLIGHT_MAX = 2
/**
 * A store keeps one group in flight while other relays have committed within this many ms: their
 * groups then fill the wait for the head rows that a second group of its own would fill.
 */
export const PG_SHARED_LOG_WINDOW_MS = 1_000
/**
 * How often each relay reads the partition heads, in ms: the fallback that finds commits of
 * other relays whose NOTIFY was missed (LISTEN connection lost, relay restarted).
 */
export const PG_POLL_INTERVAL_MS = 1_000
/** Wait before opening the LISTEN connection again after it failed, in ms. */
export const PG_LISTEN_RETRY_MS = 500
/**
 * Attempts of one group transaction that failed for a passing reason (deadlock, lock timeout,
 * a unique violation from a racing relay, a lost connection) before its calls are rejected.
 */
export const PG_APPEND_ATTEMPTS_MAX = 6
/** First wait between attempts, doubled each time, in ms. */
export const PG_APPEND_RETRY_MS = 50
/**
 * How long an append waits for a partition's head row held by another transaction (`lock_timeout`),
 * in ms. Bounded so a stuck session elsewhere makes appends fail and retry, not hang.
 */
export const PG_LOCK_TIMEOUT_MS = 10_000
/** Longest single statement of the store (`statement_timeout`), in ms. */
export const PG_STATEMENT_TIMEOUT_MS = 30_000
/**
 * Most entries folded per query when an entity's state is rebuilt from its ledger: long ledgers
 * are read in pages so one refold never holds a huge result in memory at once.
 */
export const PG_FOLD_PAGE_ENTRIES_MAX = 5_000
/**
 * Rows one step of a migration reads at a time when it rewrites a column from the bodies
 * (digests): bounded memory however large the log.
 */
export const PG_MIGRATION_PAGE_ROWS = 1_000

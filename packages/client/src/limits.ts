/**
 * Named limits of the client. Every queue, batch and wait has one (STYLE.md, Errors: "every
 * queue has a limit"). Hitting one is an expected outcome or a typed `ClientError`, never a
 * silent drop.
 */
import {
  BOOTSTRAP_HORIZON_RULES_MAX,
  CREDIT_PAGES_MAX,
  FRAME_BYTES_MAX,
  PUSH_ENTRIES_MAX,
  PUSH_IN_FLIGHT_MAX,
} from '@ledgerline/protocol'

/** Most entries the outbox holds; `append` fails with kind `outbox_full` beyond it. */
export const OUTBOX_ENTRIES_MAX = 100_000
/** Most encoded bytes the outbox holds; `append` fails with kind `outbox_full` beyond it. */
export const OUTBOX_BYTES_MAX = 64 * 1024 * 1024
/** Most entries one `appendMany` call may write (one transaction). */
export const APPEND_MANY_ENTRIES_MAX = 1_000
/** Most entries in one push batch the client sends. */
export const PUSH_BATCH_ENTRIES_MAX = Math.min(200, PUSH_ENTRIES_MAX)
/** Most encoded bytes in one push batch; well under the relay's frame limit. */
export const PUSH_BATCH_BYTES_MAX = Math.min(256 * 1024, FRAME_BYTES_MAX / 2)
/** Most push batches in flight (sent, not yet acked) at once. */
export const PUSH_BATCHES_IN_FLIGHT_MAX = PUSH_IN_FLIGHT_MAX
/**
 * How long the drain waits after an append before reading the outbox, so appends made back
 * to back are read (and pushed, and acked) as one batch instead of one transaction each.
 */
export const DRAIN_DELAY_MS = 10
/**
 * How long status counters wait after an ack, a page of own entries or another tab's change
 * before they are read again from IndexedDB: one read for many such events. (Appends update
 * them in memory from what their own transaction wrote, without a read.)
 */
export const COUNTERS_DELAY_MS = 50
/** Pages of entries the client lets the relay send ahead (the credit window). */
export const CREDIT_WINDOW_PAGES = Math.min(16, CREDIT_PAGES_MAX)
/** Most received pages stored in one transaction when they arrive back to back. */
export const PAGES_PER_WRITE_MAX = 8
/** Most entries in one stored chunk of confirmed history (loading an entity reads whole chunks). */
export const CHUNK_ENTRIES_MAX = 2_000
/**
 * Staged (entity, chunk) keys after which the ledger index is brought up to date at once; a
 * load reads every staged record, so this bounds the cost of a load too.
 */
export const INDEX_STAGED_KEYS_MAX = 20_000
/** When live, how long staged keys may wait for the ledger index after the last page. */
export const INDEX_DELAY_MS = 1_000
/**
 * How long an entry that failed alone in a batch of one (`too_large` or `internal` from the
 * relay, again and again) is held back before it is tried again; the entries after it go on.
 */
export const FAILED_ENTRY_RETRY_MS = 10 * 60_000
/**
 * Most times one restore recovery moves the outbox to a derived clientId before it takes a
 * random one instead (a derived id may be in use by another copy of the same backup); also the
 * most `reissued` hops `outcome()` follows from an old id.
 */
export const REISSUE_HOPS_MAX = 4
/** Share of a token's lifetime (from `welcome`) after which the client renews it. */
export const RENEW_AT_LIFETIME_SHARE = 0.8
/** Spread of the renewal time, as a share of the lifetime, so tills do not renew at once. */
export const RENEW_JITTER_SHARE = 0.05
/** Least time before expiry a renewed token must add to count as new (not the same token). */
export const RENEW_GAIN_MS_MIN = 1_000
/** Reconnect backoff: first delay, and the cap of the exponential growth. */
export const RECONNECT_MS_MIN = 250
export const RECONNECT_MS_MAX = 30_000
/** How often the client pings a quiet socket, and how long a silent socket is trusted. */
export const PING_INTERVAL_MS = 15_000
export const SILENCE_MS_MAX = 45_000
/** How long `hello` may wait for `welcome` before the socket is dropped. */
export const WELCOME_TIMEOUT_MS = 15_000
/** Entities whose folded state the client keeps in memory (least recently used go first). */
export const CACHE_ENTITIES_MAX = 2_000
/**
 * History fetches (`client.history(entity, { fetch: true })`) waiting for one of the
 * FETCH_IN_FLIGHT_MAX the relay takes at once; more fail with kind `busy`.
 */
export const FETCH_WAITING_MAX = 64
/** Most horizon rules `createClient({ horizon })` takes (the protocol's bound). */
export const HORIZON_RULES_MAX = BOOTSTRAP_HORIZON_RULES_MAX
/** Entries folded since the last snapshot after which a new per-entity snapshot is written. */
export const SNAPSHOT_ENTRIES_MIN = 256
/** Outcomes of acknowledged entries kept for `outcome()`; the oldest are pruned beyond it. */
export const OUTCOMES_MAX = 10_000
/** Corrections kept in the feed; the oldest seen ones are pruned beyond it. */
export const CORRECTIONS_FEED_MAX = 10_000
/** Unseen corrections read (and told to listeners) when another tab says some arrived. */
export const CORRECTIONS_FETCHED_MAX = 64
/** How long opening the database may stay blocked by another tab before it fails. */
export const OPEN_BLOCKED_MS_MAX = 5_000
/** Default wait of `synced()`. */
export const SYNCED_TIMEOUT_MS_DEFAULT = 30_000
/** Longest `synced()` waits between two looks at the counters when nothing tells it of a change. */
export const SYNCED_RECHECK_MS_MAX = 250
/** Rows `query` answers when the app gives no `limit`. */
export const QUERY_ROWS_DEFAULT = 100
/** Most rows one `query` answers (`limit` above it is an `invalid` ClientError); `more` says a cut. */
export const QUERY_ROWS_MAX = 1_000
/** Most live `subscribeQuery` subscriptions of one client; past it `subscribeQuery` throws `invalid`. */
export const QUERY_SUBSCRIPTIONS_MAX = 256
/**
 * Most bases one `basePages` record holds (IndexedDB layout 5, `idb-bases.ts`): a bootstrap's
 * page of snapshots is stored as a few records instead of one per entity, and a load reads one
 * such record for its entity's base, so the record stays small enough to read per load.
 */
export const BASE_PAGE_ENTRIES_MAX = 250
/** Most entity loads asked for together that share one readonly IndexedDB transaction. */
export const LOAD_BATCH_ENTITIES_MAX = 256
/**
 * How often an outbox record a store hub answered `stored` is sent again while it waits for
 * head office's result (each resend answers that result once the hub knows it).
 */
export const STORED_RESEND_MS = 5_000
/**
 * How long a store-layer entry the hub removed stays shown while its confirmed page may still
 * be on the way (a refused one goes after it), so a view never misses it in between.
 */
export const STORE_LEAVING_MS = 2_000
/** Most store-layer entries (other devices' entries a hub holds) kept in memory. */
export const STORE_LAYER_ENTRIES_MAX = 10_000
/** Most store-layer entries in one message to other tabs (a bigger layer goes in several). */
export const TAB_STORE_ENTRIES_MAX = 500
/**
 * While connected to a later relay of `url`'s list, earlier ones are probed: first after
 * PROBE_MS_MIN, the wait doubling after each probe that finds none answering, up to PROBE_MS_MAX.
 */
export const PROBE_MS_MIN = 2_000
export const PROBE_MS_MAX = 60_000
/** How long a probe waits for an earlier relay's welcome. */
export const PROBE_TIMEOUT_MS = 5_000

/**
 * Subscribes with a bootstrap a client makes after `history_dropped` before it gives up until a
 * subscription goes live (`sync.ts` invariant 12): the relay's marks rose during each one.
 */
export const HISTORY_DROPPED_BOOTSTRAPS_MAX = 3

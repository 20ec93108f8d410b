/**
 * Named limits of the wire protocol. Every frame, batch and queue has one. A relay or client
 * that meets a limit answers with an `error` of kind `too_large` (or an expected outcome),
 * never a silent drop. The model's limits are re-exported here so one import gives all.
 */
export {
  ENTITY_NAME_LENGTH_MAX,
  TENANT_LENGTH_MAX,
  KIND_LENGTH_MAX,
  ENTRY_ID_LENGTH_MAX,
  PATTERN_LENGTH_MAX,
  DATA_DEPTH_MAX,
  PARTITIONS_MAX,
} from '@ledgerline/core'

/** Largest encoded frame in either direction; also the relay's `maxPayload`. */
export const FRAME_BYTES_MAX = 1024 * 1024
/** Largest encoded `data` of one entry. */
export const ENTRY_DATA_BYTES_MAX = 64 * 1024
/** Most entries in one `push`. */
export const PUSH_ENTRIES_MAX = 500
/**
 * Most earlier clientIds one `hello` names (a database's most recent ones): the welcome answers
 * a high-water mark for each, so a bounded number of store reads per hello.
 */
export const HELLO_CLIENT_IDS_MAX = 16
/** Most entries in one `entries` page. */
export const PAGE_ENTRIES_MAX = 1000
/** Most patterns in one subscription scope or grant. */
export const SCOPE_PATTERNS_MAX = 64
/** Most subscriptions one connection may hold. */
export const SUBSCRIPTIONS_MAX = 16
/** Longest token in `hello`. */
export const TOKEN_LENGTH_MAX = 8 * 1024
/** Longest human-readable message in `error` or a refusal reason. */
export const MESSAGE_LENGTH_MAX = 1024
/** Most pages a client may grant in one `credit`; also the most outstanding credit. */
export const CREDIT_PAGES_MAX = 64
/** Most `push` batches a client keeps in flight (unacked) at once. */
export const PUSH_IN_FLIGHT_MAX = 4
/** Most corrections reported with one ack result (references: see `CorrectionRef`). */
export const ACK_CORRECTIONS_MAX = 16
/** Longest log id in `welcome.log`. */
export const LOG_ID_LENGTH_MAX = 64
/** Longest token subject in `welcome.subject`. */
export const SUBJECT_LENGTH_MAX = 256
/** Deepest nesting the decoder accepts in any frame. */
export const FRAME_DEPTH_MAX = 40

/** Most fold keys a bootstrap names (entity types of one schema). */
export const BOOTSTRAP_FOLD_KEYS_MAX = 256
/** Most horizon rules a bootstrap names. */
export const BOOTSTRAP_HORIZON_RULES_MAX = 64
/** Most snapshots in one `snapshots` page (the relay also keeps the page under a frame). */
export const SNAPSHOTS_PAGE_MAX = PAGE_ENTRIES_MAX
/** Largest encoded state of one ledger snapshot (a bigger state is not snapshotted). */
export const SNAPSHOT_STATE_BYTES_MAX = 256 * 1024
/** Most `fetch` requests a client may have unanswered at once. */
export const FETCH_IN_FLIGHT_MAX = 4

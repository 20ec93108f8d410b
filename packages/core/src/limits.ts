/**
 * Named limits of the model. Every one is checked where input enters (`validateEntry`,
 * `parseEntityName`, …) and exceeding one is a `LedgerError`, never a silent truncation.
 * `protocol/src/limits.ts` re-exports these beside the wire limits.
 */

/** Longest entity name, `type/id` together. */
export const ENTITY_NAME_LENGTH_MAX = 256
/** Longest entity type, the part before the slash. */
export const ENTITY_TYPE_LENGTH_MAX = 32
/** Longest tenant name. */
export const TENANT_LENGTH_MAX = 64
/** Longest entry kind, e.g. `stock.moved`. */
export const KIND_LENGTH_MAX = 64
/** Longest correction rule name (an invariant's name). */
export const RULE_LENGTH_MAX = 64
/** Longest entry id; correction ids are the longest (`<entry id>~<rule>~<index>`). */
export const ENTRY_ID_LENGTH_MAX = 200
/** Corrections one offending entry may produce. */
export const CORRECTIONS_PER_ENTRY_MAX = 16
/** Largest clientSeq: integers stay exact in JavaScript numbers up to 2^53. */
export const CLIENT_SEQ_MAX = Number.MAX_SAFE_INTEGER
/** Deepest nesting of entry data (objects and arrays). */
export const DATA_DEPTH_MAX = 32
/**
 * Longest reason `decide` gives (a refusal, a failed correction). Equal to the protocol's
 * `MESSAGE_LENGTH_MAX`, so every reason fits in an ack; longer ones are cut with `…`.
 */
export const REASON_LENGTH_MAX = 1024
/** Longest entity pattern in a scope or grant. */
export const PATTERN_LENGTH_MAX = 256
/** Default number of partitions of a server log. Fixed for the life of a log. */
export const PARTITIONS_DEFAULT = 16
/** Most partitions a log may have. */
export const PARTITIONS_MAX = 1024
/** Most kinds one entity type may declare (`defineEntity({ kinds })`). */
export const KINDS_PER_TYPE_MAX = 256
/** Most validator issues a refusal lists; the rest are counted. */
export const KIND_ISSUES_LISTED_MAX = 3
/**
 * How far ahead of the server log's clock an entry's `hlc` wall time or `occurredAt` may be.
 * Further ahead (a till whose clock says the year 30,000, or a day ahead) the log defers the
 * entry (`clock_ahead`): it is decided when resent once the clocks agree, so one bad clock
 * never stamps the log's history with dates from the future.
 */
export const ENTRY_CLOCK_SKEW_MS_MAX = 10 * 60 * 1000
/** Retry hint of an `unknown_type` deferral: a relay learns new types when it is redeployed. */
export const UNKNOWN_TYPE_RETRY_MS = 60 * 1000
/** Least retry hint of any deferral, so a resend loop is never hot. */
export const DEFERRAL_RETRY_MS_MIN = 1000
/** Greatest retry hint of any deferral; clients also resend on every reconnect. */
export const DEFERRAL_RETRY_MS_MAX = 60 * 60 * 1000
/**
 * Most bytes of a CRDT update (or snapshot state) one entry carries: under the protocol's
 * `ENTRY_DATA_BYTES_MAX` (64 KiB) with room for the part's envelope. Bigger ones travel in parts
 * (`crdt-parts.ts`).
 */
export const CRDT_PART_BYTES_MAX = 60 * 1024
/** Most parts of one CRDT update or snapshot: at most 7.5 MiB in all. */
export const CRDT_PARTS_MAX = 128
/** Largest CRDT update or snapshot state, in parts: `CRDT_PARTS_MAX × CRDT_PART_BYTES_MAX`. */
export const CRDT_UPDATE_BYTES_MAX = CRDT_PARTS_MAX * CRDT_PART_BYTES_MAX
/** Groups of parts a fold keeps open at once; past it the oldest is dropped. */
export const CRDT_OPEN_GROUPS_MAX = 16
/** Entries folded while a group is open, past which the fold drops it (never finished). */
export const CRDT_OPEN_GROUP_ENTRIES_MAX = 2_000
/** Bytes an open group may hold (its parts, and the updates folded since it opened). */
export const CRDT_OPEN_GROUP_BYTES_MAX = 2 * CRDT_UPDATE_BYTES_MAX
/** Longest group id of a part. */
export const CRDT_GROUP_LENGTH_MAX = 200

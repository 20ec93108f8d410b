/**
 * Named limits of a store hub (its upstream link, forwarder and store queue). The wire limits it
 * shares with head office (push entries, page entries) are in `@ledgerline/protocol`; the
 * batches it forwards are sized from head office's `welcome.limits`.
 */

/** Open entries the store queue holds at most; past it a register's push is `overloaded`. */
export const HUB_QUEUE_ENTRIES_MAX = 200_000
/**
 * Entries of registers' pushes queued in one transaction (one fsync) at most; pushes that arrive
 * while one commits wait for the next group (the relay's commit queue bounds what waits).
 */
export const HUB_COMMIT_GROUP_ENTRIES_MAX = 2_000
/**
 * Settled queue rows (head office's result known) the hub keeps to answer resends; past it the
 * oldest are pruned. A resend of a pruned entry is answered from the mirror (appended ones) or
 * queued and forwarded again (head office answers it the same way: its decisions are recorded).
 */
export const HUB_SETTLED_KEEP_MAX = 100_000
/** First reconnect delay of the upstream link, ms (doubled per failure, with jitter). */
export const UPSTREAM_BACKOFF_MS_MIN = 250
/** Longest reconnect delay of the upstream link, ms. */
export const UPSTREAM_BACKOFF_MS_MAX = 10_000
/** Pages the upstream subscription may have in flight (credit). */
export const UPSTREAM_CREDIT_PAGES = 4
/** A link silent this long (no frame, ping or pong) is cut and reconnected, ms. */
export const UPSTREAM_SILENCE_MS = 75_000
/**
 * A link quiet this long pings head office (a protocol `ping`; head office's WebSocket pings are
 * answered below what the link reads), so silence is measured on frames alone, ms.
 */
export const UPSTREAM_PING_MS = 25_000
/** The hub token is renewed when this share of its lifetime is left. */
export const UPSTREAM_RENEW_LEAD = 0.2
/**
 * How long the forwarder waits before resending an entry head office refused `seq_gap`, and at
 * least before one it deferred (that one waits the deferral's `retryAfterMs` if longer), ms.
 */
export const FORWARD_RETRY_MS = 500
/**
 * When the upstream is itself a hub (a backup hub in front of the primary), entries it answered
 * `stored` are not sent again for this long, ms; then they are resent to learn head office's
 * result (refusals reach a hub only that way; confirmations also come through the mirror).
 */
export const FORWARD_RESEND_STORED_MS = 5_000
/** Share of head office's `pushBytesMax` a forwarded push may fill (room for the envelope). */
export const FORWARD_BYTES_SHARE = 0.8
/** Open queue rows the forwarder reads per page when it builds a batch. */
export const FORWARD_SCAN_ROWS = 1_000
/** Forwarded batches in flight at once (also at most head office's `pushInFlightMax`). */
export const FORWARD_IN_FLIGHT_MAX = 4
/** Bytes a forwarded entry may take on the wire beyond its encoded body (the push's framing). */
export const ENTRY_ENVELOPE_BYTES = 64
/** How long a token command may run before it counts as failed, ms. */
export const TOKEN_COMMAND_TIMEOUT_MS = 10_000

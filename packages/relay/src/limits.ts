/**
 * Named limits of the relay and its SQLite log. Every queue, batch, timer and buffer of the relay
 * has one here; hitting one is a wire error (`error-kind.ts` of the protocol) or an expected
 * outcome, never a silent drop. The wire limits (frame bytes, push entries, page entries, credit)
 * live in `@ledgerline/protocol` and are shared with clients.
 */
import { CRDT_UPDATE_BYTES_MAX } from '@ledgerline/core'
import { COMMIT_QUEUE_ENTRIES_MAX } from '@ledgerline/log'
import { PAGE_ENTRIES_MAX, PUSH_ENTRIES_MAX } from '@ledgerline/protocol'

// The log's own limits (group commit, the commit queue bound, cached entity states) are named
// in `@ledgerline/log`, whatever store the relay runs on.
export {
  COMMIT_QUEUE_ENTRIES_MAX,
  ENTITY_STATES_MAX,
  GROUP_COMMIT_ENTRIES_MAX,
} from '@ledgerline/log'
/**
 * SQLite page cache of the log, in KiB. Every append touches the hot leaf pages of the entries
 * table and its indexes; with SQLite's 2 MiB default they fall out of the cache once the log
 * passes a few MB, and each insert rereads them from the OS.
 */
export const SQLITE_CACHE_KIB = 64 * 1024
/** How long SQLite waits for a lock held by another connection before failing, in ms. */
export const SQLITE_BUSY_TIMEOUT_MS = 5_000
/**
 * Rows one step of a migration reads at a time when it rewrites a column from the bodies
 * (digests): bounded memory however large the log.
 */
export const SQLITE_MIGRATION_PAGE_ROWS = 1_000
/**
 * Interned refs (tenants, entities, clientIds) the SQLite log keeps in memory per kind
 * (`sqlite-refs.ts`); past it a cache is emptied and refs are read from the file again.
 */
export const SQLITE_REFS_CACHED_MAX = 100_000
/**
 * Requests (a group's write plan, a batch of snapshot puts, a generation bump) waiting for the
 * SQLite writer thread (`sqlite-writer-thread.ts`); one more rejects at once as `overloaded`.
 * The group commit has one group in flight, so appends alone never come near it: it bounds what
 * else crosses the thread (snapshot puts) if the disk stalls.
 */
export const SQLITE_WRITER_REQUESTS_MAX = 64

/**
 * An append that takes longer than this from the call to durable is logged (`slow_commit`): a
 * slow disk, lock waits on PostgreSQL, or a commit queue that is full.
 */
export const SLOW_COMMIT_MS = 1_000
/**
 * After an append failed (a full disk, a stopped database), the readiness check fails for this
 * long unless an append succeeds first (`store-health.ts` invariant 3).
 */
export const WRITE_FAILURE_HOLD_MS = 30_000
/** The readiness check's read of the log must answer within this, else it fails (503). */
export const READY_PROBE_TIMEOUT_MS = 2_000

/**
 * Pages one step of `ledgerline-relay backup` copies: all of them (the most a step takes), so
 * the copy is one read transaction of the live log, one consistent snapshot. A copy in smaller
 * steps restarts whenever the relay commits between two steps and may never finish under load.
 */
export const BACKUP_STEP_PAGES = 0x7fff_ffff

/**
 * Rows `migrate-sqlite` reads (SQLite) and writes (PostgreSQL) at a time: bounded memory however
 * large the log; one multi-row insert per page.
 */
export const SQLITE_EXPORT_PAGE_ROWS = 1_000

/** A socket that has not said a valid `hello` by then is closed (4401). */
export const AUTH_TIMEOUT_MS = 5_000
/** Frames a socket may send while its `hello` is being checked; more is `bad_message`. */
export const HELLO_BACKLOG_MAX = 16
/**
 * Largest frame a socket may send before `welcome`. A hello is small (its token is at most the
 * protocol's `TOKEN_LENGTH_MAX`, 8 KiB); a bigger frame closes the socket (1009) as soon as its
 * header announces the length, so sockets that never authenticate hold no large buffers.
 */
export const PRE_HELLO_FRAME_BYTES_MAX = 16 * 1024
/** Bytes of frames a socket may queue while its `hello` is being checked; more closes it. */
export const HELLO_BACKLOG_BYTES_MAX = 64 * 1024
/**
 * Open WebSocket connections per relay (`/sync` and `/yjs` together). Past it an upgrade is
 * answered 503, so a flood of sockets costs the relay no session state.
 */
export const CONNECTIONS_MAX = 8_000
/** Welcomed connections per tenant; past it `hello` is answered `overloaded` (4503). */
export const TENANT_CONNECTIONS_MAX = 2_000
/**
 * The retry hint (`backoffMsMin` of `overloaded`) the relay sends past a connection cap or a full
 * commit queue; clients add jitter.
 */
export const OVERLOADED_RETRY_MS = 2_000
/**
 * Entries a connection's subscriptions may read from the log per second while catching up (a
 * token bucket of `CATCH_UP_ENTRIES_BURST`): the cost of a catch-up is charged to the
 * connection that asked for it, so re-subscribing in a loop slows down only the one who does it.
 * Reads of the shared tails (live delivery) are not charged.
 */
export const CATCH_UP_ENTRIES_PER_S = 50_000
/** Entries a connection may read at once before the catch-up rate applies. */
export const CATCH_UP_ENTRIES_BURST = 10_000
/**
 * How often a catch-up waiting for room on its socket looks again (`subscriptions.ts`
 * invariant 4): a catch-up page goes out only while the socket's unsent bytes leave room for a
 * whole frame under `bufferedBytesMax`.
 */
export const CATCH_UP_DRAIN_POLL_MS = 20
/** Interval of WebSocket pings; a socket that missed the previous pong is terminated. */
export const HEARTBEAT_INTERVAL_MS = 30_000
/**
 * Bytes queued on one socket beyond which it is closed as a slow consumer (4408). Every frame
 * counts: acks, pages, live entries, errors.
 */
export const BUFFERED_BYTES_MAX = 4 * 1024 * 1024
/**
 * How long a socket cut as a slow consumer may take to read what was queued before its close
 * frame; then it is terminated. Longer than the close handshake: the close frame waits behind
 * up to `BUFFERED_BYTES_MAX` of unread frames.
 */
export const SLOW_CONSUMER_CLOSE_TIMEOUT_MS = 15_000
/** Messages per second one connection may send on average (token bucket refill rate). */
export const RATE_MESSAGES_PER_S = 500
/** Messages one connection may send in a burst (token bucket size). */
export const RATE_MESSAGES_BURST = 1_000
/** Allowed clock skew when checking a token's `exp` and `nbf`, in seconds. */
export const TOKEN_CLOCK_TOLERANCE_S = 5
/** How long `close()` waits for appends in flight before closing sockets anyway, in ms. */
export const SHUTDOWN_TIMEOUT_MS = 10_000
/** How long a closing socket may take to finish the close handshake before it is cut, in ms. */
export const CLOSE_HANDSHAKE_TIMEOUT_MS = 2_000
/**
 * Most bytes of entries in one `entries` page, below the protocol's `FRAME_BYTES_MAX` with room
 * for the page's cursors. A single entry bigger than this is sent alone.
 */
export const PAGE_BYTES_MAX = 896 * 1024
/**
 * Most committed entries the relay keeps per (tenant, partition) *tail*: the newest entries,
 * read once after a commit and served to every live subscription whose cursor is inside it.
 * A subscription further behind reads the log itself.
 */
export const TAIL_ENTRIES_MAX = 256
/** Most bytes (encoded entries) one tail keeps beyond its newest entry. */
export const TAIL_BYTES_MAX = 256 * 1024
/** Most tails the relay keeps; the least recently read one is dropped first. */
export const TAILS_MAX = 256
/** Longest token lifetime `/dev/token` hands out, in seconds. */
export const DEV_TOKEN_LIFETIME_S = 12 * 60 * 60
/** Largest body of `POST /dev/upstream` (a `--dev` hub's store internet switch), in bytes. */
export const DEV_UPSTREAM_BODY_BYTES_MAX = 1_024
/** Largest HTTP request path the static file server looks at. */
export const STATIC_PATH_LENGTH_MAX = 1_024

/** Entries appended since the latest CRDT snapshot that make the relay write a new one. */
export const SNAPSHOT_UPDATES_EVERY = 100
/** Bytes of entry data appended since the latest snapshot that make the relay write one. */
export const SNAPSHOT_BYTES_EVERY = 256 * 1024
/**
 * Largest snapshot state: the model's `CRDT_UPDATE_BYTES_MAX` (7.5 MiB). A state over one entry
 * (`CRDT_PART_BYTES_MAX`, 60 KiB) is written in parts.
 */
export const SNAPSHOT_STATE_BYTES_MAX = CRDT_UPDATE_BYTES_MAX
/** Entities whose snapshot bookkeeping a relay keeps in memory. */
export const SNAPSHOT_CACHE_ENTITIES_MAX = 10_000
/** Entries read per page when folding or catching up a CRDT entity. */
export const CRDT_READ_PAGE_ENTRIES = 500
/** Most ms a y-websocket update waits before it is appended to the log. */
export const ROOM_COALESCE_MS = 50
/**
 * Most bytes of updates the y-websocket endpoint coalesces into one append; a bigger update is
 * appended alone, in parts if it is over one entry (`crdt-parts.ts` of the model).
 */
export const ROOM_UPDATE_BYTES_MAX = 48 * 1024
/**
 * Most bytes of updates a room holds that are not yet durable in the log (a sender past it is
 * closed with 1013 and sends again after it reconnects). Room for one largest update.
 */
export const ROOM_PENDING_BYTES_MAX = CRDT_UPDATE_BYTES_MAX + 1024 * 1024
/** Most bytes of updates not yet durable over every room of the endpoint. */
export const YJS_PENDING_BYTES_MAX = 64 * 1024 * 1024
/** Most rooms one y-websocket endpoint keeps open. */
export const ROOMS_MAX = 10_000
/** Most y-websocket connections in one room. */
export const ROOM_CONNECTIONS_MAX = 256
/** Bytes a y-websocket connection may have unsent before it is closed as a slow consumer. */
export const YJS_CONNECTION_BUFFERED_BYTES_MAX = 4 * 1024 * 1024
/**
 * Largest y-websocket frame: one largest CRDT update and its envelope. y-websocket sends a
 * client's whole sync step 2 (all it edited offline) in one frame; the relay appends it in parts.
 */
export const YJS_FRAME_BYTES_MAX = CRDT_UPDATE_BYTES_MAX + 64 * 1024
/**
 * Messages per second one y-websocket connection may send on average (token bucket), as for
 * `/sync`: y-websocket sends one message per document transaction, and a script that edits in a
 * loop makes hundreds a second.
 */
export const YJS_MESSAGES_PER_S = 500
/** Messages one y-websocket connection may send in a burst. */
export const YJS_MESSAGES_BURST = 1_000
/**
 * Bytes of awareness state one y-websocket connection may hold (the sum of its clients' states
 * as encoded); an update past it closes the connection (4413) and is relayed to nobody.
 */
export const YJS_AWARENESS_BYTES_MAX = 64 * 1024

/** The limits a relay can be given (tests lower the timers); defaults are the constants above. */
export interface RelayLimits {
  readonly authTimeoutMs: number
  readonly helloBacklogMax: number
  /** See `HELLO_BACKLOG_BYTES_MAX`. */
  readonly helloBacklogBytesMax: number
  /** See `PRE_HELLO_FRAME_BYTES_MAX`; at least 1 KiB, at most the protocol's frame. */
  readonly preHelloFrameBytesMax: number
  /** See `CONNECTIONS_MAX`. */
  readonly connectionsMax: number
  /** See `TENANT_CONNECTIONS_MAX`. */
  readonly tenantConnectionsMax: number
  /**
   * Entries pushed and not yet answered over every connection of this relay, past which a push is
   * answered `overloaded` (the log's `COMMIT_QUEUE_ENTRIES_MAX` by default; the relay counts
   * them itself, so it holds on any store, also one passed in). A tenth more is kept for small
   * pushes of idle connections (`commit-queue.ts` invariant 1).
   */
  readonly commitQueueEntriesMax: number
  /** See `OVERLOADED_RETRY_MS`. */
  readonly overloadedRetryMs: number
  /** See `CATCH_UP_ENTRIES_PER_S`. */
  readonly catchUpEntriesPerS: number
  /** See `CATCH_UP_ENTRIES_BURST`. */
  readonly catchUpEntriesBurst: number
  /** See `YJS_MESSAGES_PER_S`. */
  readonly yjsMessagesPerS: number
  /** See `YJS_MESSAGES_BURST`. */
  readonly yjsMessagesBurst: number
  /** See `YJS_AWARENESS_BYTES_MAX`. */
  readonly yjsAwarenessBytesMax: number
  /** See `SLOW_CONSUMER_CLOSE_TIMEOUT_MS`. */
  readonly slowConsumerCloseTimeoutMs: number
  readonly heartbeatIntervalMs: number
  readonly bufferedBytesMax: number
  readonly rateMessagesPerS: number
  readonly rateMessagesBurst: number
  readonly tokenClockToleranceS: number
  readonly shutdownTimeoutMs: number
  readonly closeHandshakeTimeoutMs: number
  /** Most entries per `push`; at most the protocol's `PUSH_ENTRIES_MAX`. */
  readonly pushEntriesMax: number
  /** Most entries per `entries` page; at most the protocol's `PAGE_ENTRIES_MAX`. */
  readonly pageEntriesMax: number
  /** Most bytes of entries per page; see `PAGE_BYTES_MAX`. */
  readonly pageBytesMax: number
  /** Most entries per (tenant, partition) tail of the fan-out; see `TAIL_ENTRIES_MAX`. */
  readonly tailEntriesMax: number
}

export const RELAY_LIMITS_DEFAULT: RelayLimits = {
  authTimeoutMs: AUTH_TIMEOUT_MS,
  helloBacklogMax: HELLO_BACKLOG_MAX,
  helloBacklogBytesMax: HELLO_BACKLOG_BYTES_MAX,
  preHelloFrameBytesMax: PRE_HELLO_FRAME_BYTES_MAX,
  connectionsMax: CONNECTIONS_MAX,
  tenantConnectionsMax: TENANT_CONNECTIONS_MAX,
  commitQueueEntriesMax: COMMIT_QUEUE_ENTRIES_MAX,
  overloadedRetryMs: OVERLOADED_RETRY_MS,
  catchUpEntriesPerS: CATCH_UP_ENTRIES_PER_S,
  catchUpEntriesBurst: CATCH_UP_ENTRIES_BURST,
  yjsMessagesPerS: YJS_MESSAGES_PER_S,
  yjsMessagesBurst: YJS_MESSAGES_BURST,
  yjsAwarenessBytesMax: YJS_AWARENESS_BYTES_MAX,
  slowConsumerCloseTimeoutMs: SLOW_CONSUMER_CLOSE_TIMEOUT_MS,
  heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS,
  bufferedBytesMax: BUFFERED_BYTES_MAX,
  rateMessagesPerS: RATE_MESSAGES_PER_S,
  rateMessagesBurst: RATE_MESSAGES_BURST,
  tokenClockToleranceS: TOKEN_CLOCK_TOLERANCE_S,
  shutdownTimeoutMs: SHUTDOWN_TIMEOUT_MS,
  closeHandshakeTimeoutMs: CLOSE_HANDSHAKE_TIMEOUT_MS,
  pushEntriesMax: PUSH_ENTRIES_MAX,
  pageEntriesMax: PAGE_ENTRIES_MAX,
  pageBytesMax: PAGE_BYTES_MAX,
  tailEntriesMax: TAIL_ENTRIES_MAX,
}

// -- ledger snapshots (issue 17; `ledger-snapshots.ts`, the stores' snapshot tables) ----------

/**
 * Rows of the snapshot table one `snapshotsInScope` call reads at most, matching or not: a
 * page of a scope that matches few snapshots comes back short (with `next`) rather than scan a
 * whole tenant inside one read.
 */
export const SNAPSHOT_SCAN_ROWS_MAX = 4_096
/**
 * Entities one `entitySpans` call of a bootstrap reads (`subscriptions.ts` invariant 6); each
 * call is charged one entry to the connection's catch-up budget, as a query.
 */
export const BOOTSTRAP_SPANS_PAGE = 2_048
/**
 * Offset ranges a bootstrap keeps per connection subscription to pass the offsets that hold
 * nothing it sends (one per entity with entries after its snapshot, or with no snapshot).
 * Past it the subscription keeps none and reads its partitions whole, as before snapshots.
 */
export const BOOTSTRAP_SPANS_MAX = 200_000
/**
 * A ledger entity is queued for a new snapshot each time its version reaches a multiple of
 * this: at most this many entries after a snapshot are folded on top of it (by a bootstrapping
 * client or the relay's state cache). 32 gives the bench's 50 entries per entity one snapshot
 * each; a busy entity (thousands of entries a day) gets one every few minutes at most.
 */
export const LEDGER_SNAPSHOT_ENTRIES_EVERY = 32
/**
 * Entities waiting for the snapshot pass. Past it the oldest waiting entity is dropped and
 * counted (`ledgerline_ledger_snapshots_total{outcome="dropped"}`): it is queued again at its
 * next multiple, and the start-up walk or `ledgerline-relay snapshot` catches up.
 */
export const LEDGER_SNAPSHOT_QUEUE_MAX = 10_000
/** Entries the snapshot pass reads from the log at a time while it folds one entity. */
export const LEDGER_SNAPSHOT_READ_PAGE_ENTRIES = 500
/** Entities the start-up walk (and the CLI's) lists from the log at a time. */
export const LEDGER_SNAPSHOT_WALK_PAGE_ENTITIES = 500
/**
 * Entries the walk reads (with the snapshots under them) in one read of the log, folds, and
 * then yields (`ledger-snapshots.ts` invariant 6): the most work an append waits behind while a
 * relay walks. Each entity of a chunk counts for one `LEDGER_SNAPSHOT_READ_PAGE_ENTRIES` page
 * at most.
 */
export const LEDGER_SNAPSHOT_WALK_READ_ENTRIES = 2_048
/**
 * Snapshots the pass (and the walk) writes together: one SQLite transaction, one fsync, for up
 * to this many entities (measured: one fsync each made the walk of a 100,000-entity log run at
 * 70 entities/s on a loaded 2-core machine).
 */
export const LEDGER_SNAPSHOT_WRITE_BATCH = 64

/**
 * Bytes of one retention export file (`retention-export.ts`): a partition's export goes on in a
 * new chunk past it, so no file is too large to copy, check or read back in one go.
 */
export const RETENTION_EXPORT_FILE_BYTES_MAX = 64 * 1024 * 1024
/** Entities retention's export reads from the log at a time. */
export const RETENTION_ENTITIES_PAGE = 500
/** Entries retention's export reads of one entity at a time. */
export const RETENTION_READ_PAGE_ENTRIES = 500
/**
 * Entries one `retention drop` takes out of the hot log (in one transaction, its cuts held in
 * memory): an export of more is refused (`too_large`); export with an earlier `--before` first.
 */
export const RETENTION_DROP_ENTRIES_MAX = 5_000_000

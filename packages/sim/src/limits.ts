/**
 * Named limits and defaults of the product simulation. Deep runs change the counts through the
 * options of `runProductSimulation` (and `scripts/sim.mjs`), never by editing these.
 */

/** Simulated wall clock at the start of every run, ms since the epoch. */
export const SIM_EPOCH_MS = Date.UTC(2026, 0, 1)
/** Fewest and most tills of a run, and most tabs (clients on one database) per till. */
export const SIM_TILLS_MIN = 2
export const SIM_TILLS_MAX = 5
export const SIM_TABS_MAX = 3
/** Partitions of the server log: few, so partitions are shared and offsets dense. */
export const SIM_PARTITIONS = 4
/** Events run before a run is declared runaway (a feedback loop in the product or the world). */
export const SIM_EVENTS_MAX = 3_000_000
/**
 * Events within one simulated second beyond which a run is a hot loop (a retry without a
 * backoff): a busy run makes a few thousand events in a simulated second at most.
 */
export const SIM_EVENTS_PER_SECOND_MAX = 100_000
/**
 * Events within one simulated minute, and minutes in a row over it, that make a hot loop with
 * delays in it (a resend per round trip, a reconnect per backoff floor).
 */
export const SIM_EVENTS_PER_MINUTE_MAX = 20_000
export const SIM_HOT_MINUTES_MAX = 3
/**
 * After the heal, simulated time without progress (no outbox shrinking, no log head moving, no
 * till coming to rest) after which the drain stops: the run did not drain.
 */
export const SIM_STALL_MS_MAX = 15 * 60 * 1000
/** Simulated time allowed after healing for every outbox to drain and every till to catch up. */
export const SIM_DRAIN_MS_MAX = 2 * 60 * 60 * 1000
/** After every till looks drained, the run goes on this long before the checks (pages settle). */
export const SIM_SETTLE_MS = 90_000
/** Violations a check keeps as messages (the counts stay exact). */
export const SIM_VIOLATIONS_KEPT_MAX = 30
/** Messages of each check a failure report prints. */
export const SIM_FAILURE_LINES_PER_CHECK = 4
/** Largest clock skew of a till, either way, and largest backward jump of its clock. */
export const SIM_CLOCK_SKEW_MS_MAX = 5 * 60 * 1000
export const SIM_CLOCK_JUMP_BACK_MS_MAX = 20 * 60 * 1000
/** Link delay bounds of the simulated network, one way, in ms. */
export const SIM_LINK_DELAY_MS_MIN = 1
/** Longest a server keeps a connection it has not noticed is broken (half-open), in ms. */
export const SIM_HALF_OPEN_MS_MAX = 20_000
/** Longest a dial over a partitioned link hangs before it fails, in ms. */
export const SIM_DIAL_FAIL_MS_MAX = 15_000
/** Longest a relaxed IndexedDB commit waits before the device flushes it to disk, in ms. */
export const SIM_RELAXED_FLUSH_MS_MAX = 2_000
/** How long a simulated token check takes on the relay's clock, in ms. */
export const SIM_TOKEN_CHECK_MS = 2
/** Lifetime of the tokens tills get when tokens do not expire mid-run (longer than any run). */
export const SIM_TOKEN_LIFETIME_LONG_S = 48 * 60 * 60
/** Lifetimes of the short tokens of the `expiringTokens` fault, in seconds. */
export const SIM_TOKEN_LIFETIME_SHORT_S_MIN = 5 * 60
export const SIM_TOKEN_LIFETIME_SHORT_S_MAX = 30 * 60
/**
 * The same failure told to one till this many times in a row (an `error` kind and message, or a
 * `seq_gap` on the same entry) with no other ack between: a livelock, the run stops.
 */
export const SIM_SAME_FAILURE_MAX = 40
/**
 * ... within this much simulated time: a client that backs off (protocol 2 doubles its waits up
 * to 30 s) takes far longer to be told the same thing 40 times, and is waiting, not spinning.
 */
export const SIM_SAME_FAILURE_WINDOW_MS = 5 * 60 * 1000
/** Dials of one till within one minute of simulated time beyond which it is in a hot loop. */
export const SIM_DIALS_PER_MINUTE_MAX = 100
/**
 * Times a hub may forward one entry within one minute of simulated time; past it the hub is in a
 * hot loop (finding G: a deferred entry resent every round trip, too few events per minute for
 * the loop's own bound when one entry spins). A gapped entry resent every `FORWARD_RETRY_MS`
 * stays well under it.
 */
export const SIM_FORWARDS_PER_MINUTE_MAX = 200
/** Entries of one offline burst of the `oversized` fault (more than fit one ack frame). */
export const SIM_OVERSIZED_BURST_ENTRIES = 220
/**
 * Bytes of history a `bin.short` correction carries (the bin's recent moves): several KB, so
 * the ack of one full push of over-picks does not fit one frame.
 */
export const SIM_BIN_RECENT_BYTES = 6_000
/** Entries or results one trace note of a frame lists (`trace-notes.ts`); the rest are counted. */
export const SIM_TRACE_NOTE_ITEMS_MAX = 12
/**
 * Simulated time between two looks at a store's registers (`store-watch.ts`): their store
 * layers and the stages of their own entries, with hubs on.
 */
export const SIM_STORE_SAMPLE_MS = 7 * 60 * 1000

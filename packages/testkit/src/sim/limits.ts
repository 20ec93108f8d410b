/**
 * Named limits and defaults of the simulation. Deep runs raise the counts through the options
 * of `runSimulation` (and `scripts/sim.mjs`), never by editing these.
 */

/** Most events the scheduler holds at once; more means a feedback loop in the simulation. */
export const SIM_EVENTS_QUEUED_MAX = 1_000_000
/** Fewest and most clients of a run (the issue asks for 5–20). */
export const SIM_CLIENTS_MIN = 5
export const SIM_CLIENTS_MAX = 20
/** Partitions of the simulated server log: few, so partitions are shared and offsets dense. */
export const SIM_PARTITIONS = 4
/** Entries a simulated client puts in one push. */
export const SIM_PUSH_ENTRIES_MAX = 8
/** Push batches a simulated client keeps unacknowledged (the protocol's PUSH_IN_FLIGHT_MAX). */
export const SIM_PUSH_IN_FLIGHT_MAX = 4
/** Entries per catch-up or live page the simulated relay sends. */
export const SIM_PAGE_ENTRIES_MAX = 50
/** An unacknowledged push older than this makes the client drop the connection and resend. */
export const SIM_ACK_TIMEOUT_MS = 15_000
/** Simulated time allowed after healing for every outbox to drain and every cursor to catch up. */
export const SIM_DRAIN_MS_MAX = 6 * 60 * 60 * 1000
/** Violations a check keeps as messages (the counts stay exact). */
export const SIM_VIOLATIONS_KEPT_MAX = 20
/** Largest clock skew of a client, either way, and largest backward jump of its clock. */
export const SIM_CLOCK_SKEW_MS_MAX = 10 * 60 * 1000
export const SIM_CLOCK_JUMP_BACK_MS_MAX = 30 * 60 * 1000
/**
 * Events queued toward one end of a memory transport connection and not yet delivered; past
 * it the connection is cut (both ends close with 1006), as a network gives up on a peer that
 * does not keep up.
 */
export const MEMORY_TRANSPORT_EVENTS_QUEUED_MAX = 10_000

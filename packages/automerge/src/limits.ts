/**
 * Named limits of `@ledgerline/automerge`. Meeting one is reported through `onError` (an
 * expected outcome), never a silent drop.
 */

/**
 * Most milliseconds a local change waits before it is appended, counted from the first buffered
 * change, so the delay stays bounded while a user keeps editing.
 */
export const AUTOMERGE_COALESCE_MS = 200
/**
 * Most bytes one `automerge.update` entry carries: under the protocol's `ENTRY_DATA_BYTES_MAX`
 * (64 KiB) with room for the entry's envelope.
 */
export const AUTOMERGE_UPDATE_BYTES_MAX = 48 * 1024
/** Most bytes of local changes a binding buffers while appends fail. */
export const AUTOMERGE_BUFFER_BYTES_MAX = 4 * 1024 * 1024

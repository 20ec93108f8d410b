/**
 * Named limits of `@ledgerline/yjs`. Every queue and every entry this package makes has one;
 * meeting one is reported through `onError` (an expected outcome), never a silent drop.
 */

/**
 * Most milliseconds a local Yjs update waits before it is appended. The delay runs from the
 * first buffered update, not from the last, so a user typing without pause still has an entry
 * appended every `YJS_COALESCE_MS`: the delay is bounded.
 */
export const YJS_COALESCE_MS = 200
/**
 * Most bytes one coalesced `yjs.update` entry carries. Kept under the protocol's
 * `ENTRY_DATA_BYTES_MAX` (64 KiB) with room for the entry's envelope: when the buffer would pass
 * it, the buffer is appended first and a new one started.
 */
export const YJS_UPDATE_BYTES_MAX = 48 * 1024
/**
 * Most bytes of local updates a binding buffers while appends fail (quota, closed database).
 * Past it, further local updates are reported as `buffer_full` and stay only in the `Y.Doc`.
 */
export const YJS_BUFFER_BYTES_MAX = 4 * 1024 * 1024

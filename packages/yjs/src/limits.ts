/**
 * Named limits of `@ledgerline/yjs`. Every queue and every entry this package makes has one;
 * meeting one is reported through `onError` (an expected outcome), never a silent drop.
 */
import { CRDT_PART_BYTES_MAX, CRDT_UPDATE_BYTES_MAX } from '@ledgerline/core'

/**
 * Most milliseconds a local Yjs update waits before it is appended. The delay runs from the
 * first buffered update, not from the last, so a user typing without pause still has an entry
 * appended every `YJS_COALESCE_MS`: the delay is bounded.
 */
export const YJS_COALESCE_MS = 200
/**
 * Most bytes one `yjs.update` entry carries: the model's `CRDT_PART_BYTES_MAX` (60 KiB), under
 * the protocol's `ENTRY_DATA_BYTES_MAX` (64 KiB) with room for the entry's envelope. The binding
 * coalesces updates up to it; a bigger update is appended in parts (`yjs.part`).
 */
export const YJS_UPDATE_BYTES_MAX = CRDT_PART_BYTES_MAX
/**
 * Most bytes of local updates a binding buffers while appends fail (quota, closed database):
 * two largest updates (`CRDT_UPDATE_BYTES_MAX`, 7.5 MiB, is what one update may be in parts).
 * Past it, further local updates are reported as `buffer_full` and stay only in the `Y.Doc`.
 */
export const YJS_BUFFER_BYTES_MAX = 2 * CRDT_UPDATE_BYTES_MAX

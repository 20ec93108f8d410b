/**
 * Named limits of `@ledgerline/automerge`. Meeting one is reported through `onError` (an
 * expected outcome), never a silent drop.
 */
import { CRDT_PART_BYTES_MAX, CRDT_UPDATE_BYTES_MAX } from '@ledgerline/core'

/**
 * Most milliseconds a local change waits before it is appended, counted from the first buffered
 * change, so the delay stays bounded while a user keeps editing.
 */
export const AUTOMERGE_COALESCE_MS = 200
/**
 * Most bytes one `automerge.update` entry carries: the model's `CRDT_PART_BYTES_MAX` (60 KiB),
 * under the protocol's `ENTRY_DATA_BYTES_MAX` (64 KiB) with room for the entry's envelope. More
 * changes at once (a document made offline) are appended in parts (`automerge.part`).
 */
export const AUTOMERGE_UPDATE_BYTES_MAX = CRDT_PART_BYTES_MAX
/**
 * Most bytes of local changes a binding buffers while appends fail: two largest updates (in
 * parts, one update may be `CRDT_UPDATE_BYTES_MAX`, 7.5 MiB).
 */
export const AUTOMERGE_BUFFER_BYTES_MAX = 2 * CRDT_UPDATE_BYTES_MAX

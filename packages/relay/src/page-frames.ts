/**
 * Page frames spliced from items encoded once: an `entries` page from its entries' cached bytes
 * (`fanout-tail.ts`), a bootstrap's `snapshots` page from the bytes its size was measured with
 * (`subscriptions.ts` invariant 6), so no item is encoded twice.
 *
 * Invariants:
 * 1. A spliced frame is byte for byte what `encodeMessage` makes of the whole message: a map of
 *    the head's keys, the items' key and array, then the rest's keys (MessagePack fixmaps, so
 *    head and rest have at most 14 keys together).
 * 2. Like `encodeMessage`, a frame over `FRAME_BYTES_MAX` or one the peer's scan would refuse
 *    is never made: `ProtocolError` is thrown.
 */
import { encodeMessage, FRAME_BYTES_MAX, scanFrame } from '@ledgerline/protocol'
import type { LedgerSnapshot, Message } from '@ledgerline/protocol'

/**
 * The frame `{ ...head, [key]: items, ...rest }` (invariant 1); `whole()` makes the message
 * itself, encoded only to throw `encodeMessage`'s own refusal (invariant 2).
 *
 * @example
 * spliceFrame({ type: 'snapshots', sub: 1 }, 'snapshots', [bytes], undefined, () => message)
 */
export function spliceFrame(
  head: Record<string, unknown>,
  key: string,
  items: readonly Uint8Array[],
  rest: Record<string, unknown> | undefined,
  whole: () => Message,
): Uint8Array {
  const headBytes = encodeMessage(head as unknown as Message)
  const restBytes = rest === undefined ? undefined : encodeMessage(rest as unknown as Message)
  const keyBytes = encodeMessage(key as unknown as Message)
  const keys = Object.keys(head).length + 1 + (rest === undefined ? 0 : Object.keys(rest).length)
  const count = items.length
  const arrayHeader =
    count < 16
      ? [0x90 | count]
      : count < 0x10000
        ? [0xdc, count >> 8, count & 0xff]
        : [0xdd, (count >>> 24) & 0xff, (count >> 16) & 0xff, (count >> 8) & 0xff, count & 0xff]
  let size = headBytes.byteLength + keyBytes.byteLength + arrayHeader.length
  if (restBytes !== undefined) size += restBytes.byteLength - 1
  for (const bytes of items) size += bytes.byteLength
  if (size > FRAME_BYTES_MAX) encodeMessage(whole())
  const frame = new Uint8Array(size)
  let pos = 0
  frame.set(headBytes, pos)
  frame[0] = 0x80 | keys
  pos += headBytes.byteLength
  frame.set(keyBytes, pos)
  pos += keyBytes.byteLength
  frame.set(arrayHeader, pos)
  pos += arrayHeader.length
  for (const bytes of items) {
    frame.set(bytes, pos)
    pos += bytes.byteLength
  }
  if (restBytes !== undefined) frame.set(restBytes.subarray(1), pos)
  scanFrame(frame)
  return frame
}

/** A snapshot of a bootstrap with its MessagePack bytes as inside a `snapshots` page. */
export interface EncodedSnapshot {
  readonly snapshot: LedgerSnapshot
  readonly bytes: Uint8Array
}

/** Encodes one snapshot once: its size bounds the page, its bytes go into the frame. */
export function encodedSnapshot(snapshot: LedgerSnapshot): EncodedSnapshot {
  return { snapshot, bytes: encodeMessage(snapshot as unknown as Message) }
}

/** The frame of `{ type: 'snapshots', sub, snapshots }`, spliced (invariants 1–2). */
export function encodeSnapshotsPage(sub: number, page: readonly EncodedSnapshot[]): Uint8Array {
  return spliceFrame(
    { type: 'snapshots', sub },
    'snapshots',
    page.map((s) => s.bytes),
    undefined,
    () => ({ type: 'snapshots', sub, snapshots: page.map((s) => s.snapshot) }),
  )
}

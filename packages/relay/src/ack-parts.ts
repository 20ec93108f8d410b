/**
 * The ack of one push, as the relay sends it: its results with correction references the pusher
 * may read, in parts that each fit in a frame.
 *
 *   results ─► readableRefs (per result: refs of readable entities, six fields each)
 *           ─► encodeAckParts: one frame if it fits, else halves, recursively
 *
 * Invariants (the protocol's `messages.ts` invariant 2):
 * 1. Every part is at most `frameBytesMax` bytes; the parts answer every entry of the push once,
 *    in order (`first` is the index of a part's first result), and only the last is `done`.
 * 2. A correction reference leaves the relay only if the pusher's read grants match its entity
 *    (guarantee 9): a correction on another ledger the pusher cannot read is not even named.
 * 3. A reference carries exactly `id, entity, kind, version, partition, offset`, whatever else
 *    the log handed over, so an ack result stays small (at most `ACK_CORRECTIONS_MAX` refs).
 */
import { matchesAny } from '@ledgerline/core'
import {
  ACK_CORRECTIONS_MAX,
  encodeMessage,
  FRAME_BYTES_MAX,
  isProtocolError,
} from '@ledgerline/protocol'
import type { AckResult, CorrectionRef } from '@ledgerline/protocol'

/**
 * The results with their correction references cut to what `read` grants (invariants 2, 3).
 *
 * @example
 * readableRefs(results, ['order/*']) // corrections of stock/… dropped from every result
 */
export function readableRefs(
  results: readonly AckResult[],
  read: readonly string[],
): readonly AckResult[] {
  return results.map((r) => {
    if (r.status !== 'appended' && r.status !== 'duplicate') return r
    const corrections: CorrectionRef[] = []
    for (const c of r.corrections) {
      if (!matchesAny(read, c.entity)) continue
      if (corrections.length >= ACK_CORRECTIONS_MAX) break
      const { id, entity, kind, version, partition, offset } = c
      corrections.push({ id, entity, kind, version, partition, offset })
    }
    return { ...r, corrections }
  })
}

/**
 * The frames of an ack (invariant 1): usually one; halves of the results while a part is over
 * `frameBytesMax`.
 *
 * @example
 * encodeAckParts(7, results) // [Uint8Array] — or several parts for a large ack
 */
export function encodeAckParts(
  batch: number,
  results: readonly AckResult[],
  frameBytesMax: number = FRAME_BYTES_MAX,
): Uint8Array[] {
  const frames: Uint8Array[] = []
  const encodeRange = (first: number, end: number): void => {
    const frame = tryEncode(batch, results, first, end, frameBytesMax)
    if (frame !== undefined) {
      frames.push(frame)
      return
    }
    if (end - first <= 1) {
      // One result is at most a reason and ACK_CORRECTIONS_MAX refs: this cannot happen.
      throw new Error(`an ack result of entry ${results[first]?.id} does not fit in a frame`)
    }
    const middle = first + Math.ceil((end - first) / 2)
    encodeRange(first, middle)
    encodeRange(middle, end)
  }
  encodeRange(0, results.length)
  return frames
}

function tryEncode(
  batch: number,
  results: readonly AckResult[],
  first: number,
  end: number,
  frameBytesMax: number,
): Uint8Array | undefined {
  let bytes: Uint8Array
  try {
    bytes = encodeMessage({
      type: 'ack',
      batch,
      first,
      results: first === 0 && end === results.length ? results : results.slice(first, end),
      done: end === results.length,
    })
  } catch (error) {
    // Over the protocol's frame: split. Anything else is a bug, and loud.
    if (isProtocolError(error) && error.kind === 'too_large') return undefined
    throw error
  }
  return bytes.byteLength <= frameBytesMax ? bytes : undefined
}

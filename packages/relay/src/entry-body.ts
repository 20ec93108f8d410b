/**
 * How both stores keep an entry's body (its fields without positions, which live in columns):
 * MessagePack, readable by any tool and any Node version. Logs written before Ledgerline 0.1's
 * MessagePack bodies hold `node:v8` serialisations; they still read, told apart by their first
 * byte, so no migration rewrites history (guarantee 6).
 *
 * Invariants:
 * 1. `encodeEntryBody` writes MessagePack with `undefined` fields left out, so a body reads back
 *    with the keys the entry was sent with; byte arrays stay `Uint8Array`.
 * 2. `decodeEntryBody` reads both formats: a v8 serialisation starts with its version tag 0xFF,
 *    which no MessagePack map (an entry body is one) starts with (0xFF is the fixint -1).
 */
import { deserialize } from 'node:v8'
import { Decoder, Encoder } from '@msgpack/msgpack'
import type { Entry, StoredEntry } from '@ledgerline/core'

/** First byte of every `node:v8` serialisation (`kVersionTag`). */
export const V8_BODY_TAG = 0xff

/**
 * @example
 * const body = encodeEntryBody(entry) // Buffer, MessagePack
 */
export function encodeEntryBody(entry: Entry): Buffer {
  const bytes = encoder.encode(entry)
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

/**
 * @example
 * decodeEntryBody(encodeEntryBody(entry)) // an entry equal to `entry`
 */
export function decodeEntryBody(body: Uint8Array): Entry {
  if (body[0] === V8_BODY_TAG) return deserialize(body) as Entry
  // A plain view: decoded byte arrays are views of what they are cut from, and must be
  // `Uint8Array`s, as the wire gives them, not `Buffer`s.
  return decoder.decode(new Uint8Array(body.buffer, body.byteOffset, body.byteLength)) as Entry
}

/** The columns of a stored entry both stores read (positions in columns, the rest in `body`). */
export interface StoredEntryRow {
  readonly partition: number
  readonly offset: number
  readonly version: number
  readonly committed_at: number
  readonly body: Uint8Array
}

/**
 * @example
 * const stored = storedEntryOf(row) // { ...entry, version, partition, offset, committedAt }
 */
export function storedEntryOf(row: StoredEntryRow): StoredEntry {
  // The decoded body is a fresh object of this call's: the positions are set on it rather than
  // spread into a copy (measured: the copy took four times as long as the decode itself, and
  // every read of the log makes one per entry). Same keys, same order.
  const entry = decodeEntryBody(row.body) as {
    -readonly [K in keyof StoredEntry]?: StoredEntry[K]
  }
  entry.version = row.version
  entry.partition = row.partition
  entry.offset = row.offset
  entry.committedAt = row.committed_at
  return entry as StoredEntry
}

const encoder = new Encoder({ ignoreUndefined: true })
const decoder = new Decoder()

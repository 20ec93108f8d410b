/**
 * A look at a frame's first bytes, before it is decoded: is it a `push`, and of how many
 * entries? Decoding and validating a push of 500 entries costs a few milliseconds; a relay at its
 * commit queue bound answers `overloaded` (or a push over `pushEntriesMax`, `too_large`) from this
 * look, so refusing a flood costs next to nothing.
 *
 * Invariants:
 * 1. It never throws and reads at most the top-level map's keys and scalar values, in one pass.
 * 2. A result is only a hint about a frame that still goes through `decodeMessage` when it is
 *    taken: `undefined` (not a push, or a layout it does not follow) changes nothing, and a
 *    refusal from the hint is one the full decode would lead to or that is harmless to a valid
 *    frame (`overloaded`: the client resends).
 */

/**
 * The entry count of a MessagePack `push` frame, or undefined when `bytes` is not one this can
 * read: a top-level map whose keys come before `entries` are strings with scalar values.
 *
 * @example
 * peekPushEntries(encodeMessage({ type: 'push', batch: 1, entries })) // entries.length
 */
export function peekPushEntries(bytes: Uint8Array): number | undefined {
  let pos = 0
  const end = bytes.length
  const u8 = (): number => (pos < end ? (bytes[pos++] as number) : -1)
  const uint = (size: number): number => {
    let n = 0
    for (let i = 0; i < size; i++) {
      const b = u8()
      if (b < 0) return -1
      n = n * 256 + b
    }
    return n
  }
  const head = u8()
  let keys: number
  if (head >= 0x80 && head <= 0x8f) keys = head & 0x0f
  else if (head === 0xde) keys = uint(2)
  else if (head === 0xdf) keys = uint(4)
  else return undefined
  let isPush = false
  let entries: number | undefined
  for (let k = 0; k < keys && entries === undefined; k++) {
    const key = readString()
    if (key === undefined) return undefined
    if (key === 'entries') {
      const h = u8()
      if (h >= 0x90 && h <= 0x9f) entries = h & 0x0f
      else if (h === 0xdc) entries = uint(2)
      else if (h === 0xdd) entries = uint(4)
      else return undefined
    } else if (key === 'type') {
      const value = readString()
      if (value === undefined) return undefined
      isPush = value === 'push'
      if (!isPush) return undefined
    } else if (!skipScalar()) return undefined
  }
  return isPush && entries !== undefined && entries >= 0 ? entries : undefined

  function readString(): string | undefined {
    const h = u8()
    let length: number
    if (h >= 0xa0 && h <= 0xbf) length = h & 0x1f
    else if (h === 0xd9) length = uint(1)
    else if (h === 0xda) length = uint(2)
    else return undefined
    // Keys and the type are short ASCII; anything longer is not a layout this follows.
    if (length < 0 || length > 16 || pos + length > end) return undefined
    let out = ''
    for (let i = 0; i < length; i++) out += String.fromCharCode(bytes[pos + i] as number)
    pos += length
    return out
  }

  function skipScalar(): boolean {
    const h = u8()
    if (h < 0) return false
    if (h <= 0x7f || h >= 0xe0 || h === 0xc0 || h === 0xc2 || h === 0xc3) return true
    const size = SCALAR_SIZES[h]
    if (size === undefined || pos + size > end) return false
    pos += size
    return true
  }
}

/** Bytes after the head of each fixed-size MessagePack scalar (ints and floats). */
const SCALAR_SIZES: Readonly<Record<number, number>> = {
  0xcc: 1,
  0xcd: 2,
  0xce: 4,
  0xcf: 8,
  0xd0: 1,
  0xd1: 2,
  0xd2: 4,
  0xd3: 8,
  0xca: 4,
  0xcb: 8,
}

/**
 * Content digests of entries: what the server log keeps beside each entry id so that a resend
 * can be told from another entry that reuses the id (a restored device, a cloned kiosk image).
 *
 * Terms: the *canonical bytes* of an entry are one encoding per value, independent of key order
 * and of the codec that carried it; the *digest* is SHA-256 over them (32 bytes).
 *
 * Invariants:
 * 1. Two entries have the same canonical bytes exactly when they have the same fields with the
 *    same values: key order, `undefined` fields and the wire codec do not matter; `0` and `-0`
 *    are one number (MessagePack may not keep the sign of zero); every other distinct value
 *    (a string and a number, a byte array and an array of numbers) encodes differently.
 * 2. Positions the log assigns (`version`, `partition`, `offset`, `committedAt`) are never part of
 *    the digest: a stored entry has the digest of the entry the client sent.
 * 3. Pure and platform-free: SHA-256 is written here, so `core` needs no crypto module.
 * 4. `recoveryDigest` leaves out what restore recovery changes when it moves an entry (its
 *    numbering, the `corrects` renamed with it, `origin`); an entry without `origin` has the
 *    same `entryDigest` as before `origin` existed.
 */
import type { Data, Entry } from './entry.ts'

/** The fields of an entry that make its content, sorted as the canonical map encoding sorts. */
const CONTENT_FIELDS = (
  [
    'id',
    'tenant',
    'entity',
    'kind',
    'data',
    'intent',
    'expect',
    'corrects',
    'clientId',
    'clientSeq',
    'hlc',
    'occurredAt',
    'origin',
  ] as const satisfies readonly (keyof Entry)[]
).toSorted()

/**
 * The content fields that restore recovery never changes: every field but the numbering (`id`,
 * `clientId`, `clientSeq`), the `corrects` that names a moved entry by its new id, and `origin`.
 */
const RECOVERY_FIELDS = CONTENT_FIELDS.filter(
  (field) =>
    field !== 'id' &&
    field !== 'clientId' &&
    field !== 'clientSeq' &&
    field !== 'corrects' &&
    field !== 'origin',
)

/**
 * SHA-256 of the entry's canonical content (32 bytes); `digestHex` prints it.
 *
 * @example
 * digestHex(entryDigest(entry)) === digestHex(entryDigest({ ...entry })) // same content
 */
export function entryDigest(entry: Entry, hash: Hash = sha256): Uint8Array {
  return digestOf(entry, CONTENT_FIELDS, hash)
}

/**
 * SHA-256 of the entry's content without its numbering (invariant 4): the same entry moved to
 * another clientId by restore recovery, once or twice, under any clientSeq, has the same one.
 *
 * @example
 * recoveryDigest(entry) equals recoveryDigest({ ...entry, id: `${c2}-1`, clientId: c2, clientSeq: 1 })
 */
export function recoveryDigest(entry: Entry, hash: Hash = sha256): Uint8Array {
  return digestOf(entry, RECOVERY_FIELDS, hash)
}

function digestOf(entry: Entry, fields: readonly (keyof Entry)[], hash: Hash): Uint8Array {
  // The canonical encoding of the map of the fields, written without building the map.
  shared.reset()
  let count = 0
  for (const field of fields) if (entry[field] !== undefined) count++
  shared.byte(TAG_MAP)
  shared.uint32(count)
  for (const field of fields) {
    const value = entry[field]
    if (value === undefined) continue
    shared.text(field)
    writeValue(shared, value)
  }
  return hash(shared.finish())
}

/** Two digests are the same. */
export function sameDigest(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

export function digestHex(digest: Uint8Array): string {
  return toHex(digest)
}

/**
 * A SHA-256 implementation: `sha256` below by default; a platform's faster one may be passed
 * (the relay passes Node's), as long as it computes the same function.
 */
export type Hash = (bytes: Uint8Array) => Uint8Array

/**
 * One encoding per value: a tag byte, then the value (numbers as IEEE 754 big-endian, strings
 * and byte arrays with a 32-bit length, maps with their keys sorted).
 *
 * @example
 * canonicalBytes({ b: 1, a: 2 }) // equals canonicalBytes({ a: 2, b: 1 })
 */
export function canonicalBytes(value: Data): Uint8Array {
  shared.reset()
  writeValue(shared, value)
  // A copy: the shared buffer is reused by the next call.
  return shared.finish().slice()
}

/**
 * SHA-256 (FIPS 180-4) of `bytes`.
 *
 * @example
 * digestHex(sha256(new Uint8Array())) // 'e3b0c442…b855'
 */
export function sha256(bytes: Uint8Array): Uint8Array {
  const h = Uint32Array.from(H0)
  const w = new Uint32Array(64)
  const bitLength = bytes.length * 8
  // Message, a 1 bit, zeros, then the 64-bit length: a multiple of 64 bytes.
  const padded = new Uint8Array(Math.ceil((bytes.length + 9) / 64) * 64)
  padded.set(bytes)
  padded[bytes.length] = 0x80
  const view = new DataView(padded.buffer)
  view.setUint32(padded.length - 8, Math.floor(bitLength / 2 ** 32))
  view.setUint32(padded.length - 4, bitLength >>> 0)
  for (let block = 0; block < padded.length; block += 64) {
    for (let t = 0; t < 16; t++) w[t] = view.getUint32(block + t * 4)
    for (let t = 16; t < 64; t++) {
      const a = w[t - 15] as number
      const b = w[t - 2] as number
      const s0 = rotr(a, 7) ^ rotr(a, 18) ^ (a >>> 3)
      const s1 = rotr(b, 17) ^ rotr(b, 19) ^ (b >>> 10)
      w[t] = ((w[t - 16] as number) + s0 + (w[t - 7] as number) + s1) >>> 0
    }
    let a = h[0] as number
    let b = h[1] as number
    let c = h[2] as number
    let d = h[3] as number
    let e = h[4] as number
    let f = h[5] as number
    let g = h[6] as number
    let k = h[7] as number
    for (let t = 0; t < 64; t++) {
      const s1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)
      const ch = (e & f) ^ (~e & g)
      const t1 = (k + s1 + ch + (K[t] as number) + (w[t] as number)) >>> 0
      const s0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)
      const maj = (a & b) ^ (a & c) ^ (b & c)
      const t2 = (s0 + maj) >>> 0
      k = g
      g = f
      f = e
      e = (d + t1) >>> 0
      d = c
      c = b
      b = a
      a = (t1 + t2) >>> 0
    }
    h[0] = ((h[0] as number) + a) >>> 0
    h[1] = ((h[1] as number) + b) >>> 0
    h[2] = ((h[2] as number) + c) >>> 0
    h[3] = ((h[3] as number) + d) >>> 0
    h[4] = ((h[4] as number) + e) >>> 0
    h[5] = ((h[5] as number) + f) >>> 0
    h[6] = ((h[6] as number) + g) >>> 0
    h[7] = ((h[7] as number) + k) >>> 0
  }
  const digest = new Uint8Array(32)
  const out = new DataView(digest.buffer)
  for (let i = 0; i < 8; i++) out.setUint32(i * 4, h[i] as number)
  return digest
}

function toHex(bytes: Uint8Array): string {
  let hex = ''
  for (const byte of bytes) hex += HEX[byte]
  return hex
}

// ---------------------------------------------------------------------------------------------

const TAG_NULL = 0
const TAG_FALSE = 1
const TAG_TRUE = 2
const TAG_NUMBER = 3
const TAG_STRING = 4
const TAG_BYTES = 5
const TAG_ARRAY = 6
const TAG_MAP = 7

function writeValue(out: ByteWriter, value: Data): void {
  if (value === null) return out.byte(TAG_NULL)
  if (value === false) return out.byte(TAG_FALSE)
  if (value === true) return out.byte(TAG_TRUE)
  if (typeof value === 'number') {
    out.byte(TAG_NUMBER)
    return out.float64(value === 0 ? 0 : value)
  }
  if (typeof value === 'string') {
    out.byte(TAG_STRING)
    return out.text(value)
  }
  if (value instanceof Uint8Array) {
    out.byte(TAG_BYTES)
    out.uint32(value.length)
    return out.bytes(value)
  }
  if (Array.isArray(value)) {
    out.byte(TAG_ARRAY)
    out.uint32(value.length)
    for (const item of value as readonly Data[]) writeValue(out, item)
    return
  }
  const map = value as Readonly<Record<string, Data>>
  const keys = Object.keys(map)
    .filter((key) => map[key] !== undefined)
    .sort()
  out.byte(TAG_MAP)
  out.uint32(keys.length)
  for (const key of keys) {
    out.text(key)
    writeValue(out, map[key] as Data)
  }
}

/** A growable byte buffer. */
class ByteWriter {
  #buf = new Uint8Array(256)
  #view = new DataView(this.#buf.buffer)
  #len = 0

  byte(b: number): void {
    this.#room(1)
    this.#buf[this.#len++] = b
  }

  uint32(n: number): void {
    this.#room(4)
    this.#view.setUint32(this.#len, n)
    this.#len += 4
  }

  float64(n: number): void {
    this.#room(8)
    this.#view.setFloat64(this.#len, n)
    this.#len += 8
  }

  bytes(b: Uint8Array): void {
    this.#room(b.length)
    this.#buf.set(b, this.#len)
    this.#len += b.length
  }

  /** UTF-8 with a 32-bit byte length; a lone surrogate becomes U+FFFD, as TextEncoder does. */
  text(s: string): void {
    const start = this.#len
    this.uint32(0)
    this.#room(s.length * 3)
    let len = this.#len
    const buf = this.#buf
    for (let i = 0; i < s.length; i++) {
      let c = s.charCodeAt(i)
      if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
        const next = s.charCodeAt(i + 1)
        if (next >= 0xdc00 && next <= 0xdfff) {
          c = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00)
          i++
        } else c = 0xfffd
      } else if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd
      if (c < 0x80) buf[len++] = c
      else if (c < 0x800) {
        buf[len++] = 0xc0 | (c >> 6)
        buf[len++] = 0x80 | (c & 0x3f)
      } else if (c < 0x10000) {
        buf[len++] = 0xe0 | (c >> 12)
        buf[len++] = 0x80 | ((c >> 6) & 0x3f)
        buf[len++] = 0x80 | (c & 0x3f)
      } else {
        buf[len++] = 0xf0 | (c >> 18)
        buf[len++] = 0x80 | ((c >> 12) & 0x3f)
        buf[len++] = 0x80 | ((c >> 6) & 0x3f)
        buf[len++] = 0x80 | (c & 0x3f)
      }
    }
    this.#view.setUint32(start, len - start - 4)
    this.#len = len
  }

  reset(): void {
    this.#len = 0
  }

  finish(): Uint8Array {
    return this.#buf.subarray(0, this.#len)
  }

  #room(n: number): void {
    if (this.#len + n <= this.#buf.length) return
    let size = this.#buf.length * 2
    while (size < this.#len + n) size *= 2
    const next = new Uint8Array(size)
    next.set(this.#buf.subarray(0, this.#len))
    this.#buf = next
    this.#view = new DataView(next.buffer)
  }
}

// One writer for every call: canonical encoding runs once per appended entry on the relay, and
// growing a fresh buffer each time was half its cost.
const shared = new ByteWriter()

function rotr(x: number, n: number): number {
  return (x >>> n) | (x << (32 - n))
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'))

const H0 = [
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
]

const K = [
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]

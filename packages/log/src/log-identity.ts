/**
 * The identity of a server log (`LogStore.identity()`, `welcome.log`): an id made at random when
 * the log is created and a generation an operator raises after restoring or replacing it.
 *
 * Invariants:
 * 1. An id is `LOG_ID_BYTES` random bytes in base64url (22 characters of `A-Z a-z 0-9 - _`), so
 *    two logs never share one, and it fits `LOG_ID_LENGTH_MAX` on the wire.
 * 2. A generation is a positive integer; a new log starts at `LOG_GENERATION_FIRST`.
 */
import type { RandomSource } from '@ledgerline/core'

/** Random bytes in a log id: 128 bits, like a client id. */
export const LOG_ID_BYTES = 16
/** The generation of a new log. */
export const LOG_GENERATION_FIRST = 1

/**
 * A new random log id.
 *
 * @example
 * createLogId((b) => crypto.getRandomValues(b)) // 'q3Jx…' (22 characters)
 */
export function createLogId(random: RandomSource): string {
  const bytes = new Uint8Array(LOG_ID_BYTES)
  random(bytes)
  let bits = 0
  let value = 0
  let out = ''
  for (const byte of bytes) {
    // At most 13 bits are pending; the mask keeps the shifts inside 32-bit integers.
    value = ((value << 8) | byte) & 0xffff
    bits += 8
    while (bits >= 6) {
      bits -= 6
      out += BASE64URL[(value >> bits) & 0x3f]
    }
  }
  if (bits > 0) out += BASE64URL[(value << (6 - bits)) & 0x3f]
  return out
}

/**
 * Randomness without a platform, for logs that need no secrecy of their id (the memory store,
 * a simulation passes its own seeded source): `Math.random`, which is enough for uniqueness.
 */
export const mathRandom: RandomSource = (bytes) => {
  for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256)
}

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

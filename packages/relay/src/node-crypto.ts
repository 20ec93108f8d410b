/**
 * Node's crypto for the server log's stores: SHA-256 for content digests (`entryDigest` of
 * `@ledgerline/core` computes the same function in plain TypeScript, about 2.5 times slower) and
 * randomness for new log ids.
 *
 * Invariants:
 * 1. `nodeSha256` returns exactly what core's `sha256` returns for the same bytes.
 */
import { createHash, randomFillSync } from 'node:crypto'
import type { Hash, RandomSource } from '@ledgerline/core'

/**
 * @example
 * entryDigest(entry, nodeSha256) // the same 32 bytes as entryDigest(entry)
 */
export const nodeSha256: Hash = (bytes) => createHash('sha256').update(bytes).digest()

/** Cryptographic randomness (`crypto.randomFillSync`). */
export const nodeRandom: RandomSource = (bytes) => {
  randomFillSync(bytes)
}

/** A digest as a `Buffer` view (what `better-sqlite3` and `pg` bind as a BLOB / bytea). */
export function digestBuffer(digest: Uint8Array): Buffer {
  return Buffer.isBuffer(digest)
    ? digest
    : Buffer.from(digest.buffer, digest.byteOffset, digest.byteLength)
}

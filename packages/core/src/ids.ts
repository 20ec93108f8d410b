/**
 * Identifiers: client ids, entry ids and correction ids.
 *
 * Invariants:
 * 1. A client id is 128 random bits as 32 lowercase hex digits; a client keeps it for the life
 *    of its database and takes a new one when the database is found wiped.
 * 2. An entry id is `<clientId>-<clientSeq>`: unique because clientSeq is gap-free per client
 *    and never reused.
 * 3. A correction id is `<entry id>~<rule>~<index>`: the same offending entry, rule and index
 *    always give the same id, so retries and several relays make one correction, not many.
 */
import { LedgerError } from './errors.ts'
import { ENTRY_ID_LENGTH_MAX, RULE_LENGTH_MAX } from './limits.ts'

/** Fills `bytes` with random values, like `crypto.getRandomValues`. Injected: `core` has no IO. */
export type RandomSource = (bytes: Uint8Array) => void

/** The `clientId` of entries made by the server log itself (corrections). */
export const SERVER_CLIENT_ID = 'server'

const CLIENT_ID_RE = /^[0-9a-f]{32}$/
// A client entry id, then one `~rule~index` per level of correction. Indexes have no leading
// zeros so one correction has exactly one spelling.
const ENTRY_ID_RE = /^[0-9a-f]{32}-[1-9][0-9]{0,15}(?:~[a-z0-9_.-]+~(?:0|[1-9][0-9]*))*$/
const RULE_RE = /^[a-z0-9_.-]+$/

/**
 * Makes a new random client id.
 *
 * @example
 * createClientId((b) => crypto.getRandomValues(b)) // '3f1c…' (32 hex digits)
 */
export function createClientId(random: RandomSource): string {
  const bytes = new Uint8Array(16)
  random(bytes)
  let out = ''
  for (const byte of bytes) out += byte.toString(16).padStart(2, '0')
  if (out === '0'.repeat(32)) {
    throw new LedgerError('invalid_argument', 'random source returned only zeros')
  }
  return out
}

/** True when `value` is a client id (32 lowercase hex digits). */
export function isClientId(value: unknown): value is string {
  return typeof value === 'string' && CLIENT_ID_RE.test(value)
}

/**
 * The id of a client's entry.
 *
 * @example
 * entryId('3f1c…', 42) // '3f1c…-42'
 */
export function entryId(clientId: string, clientSeq: number): string {
  if (!isClientId(clientId))
    throw new LedgerError('invalid_argument', 'clientId must be 32 hex digits')
  if (!Number.isSafeInteger(clientSeq) || clientSeq < 1) {
    throw new LedgerError('invalid_argument', 'clientSeq must be a positive safe integer')
  }
  return `${clientId}-${clientSeq}`
}

/**
 * The id of the `index`-th correction that `rule` makes for entry `offendingId`.
 *
 * @example
 * correctionId('3f1c…-42', 'nonNegative', 0) // '3f1c…-42~nonnegative~0'
 */
export function correctionId(offendingId: string, rule: string, index: number): string {
  if (!isEntryId(offendingId))
    throw new LedgerError('invalid_argument', 'offending id must be an entry id')
  if (typeof rule !== 'string') throw new LedgerError('invalid_argument', 'rule must be a string')
  // Lower-cased so ids stay within the id alphabet; `defineEntity` refuses invariant names
  // that differ only in case, so two rules never share ids.
  const normalized = rule.toLowerCase()
  if (normalized.length === 0 || normalized.length > RULE_LENGTH_MAX || !RULE_RE.test(normalized)) {
    throw new LedgerError(
      'invalid_argument',
      `rule '${rule}' must be 1..${RULE_LENGTH_MAX} of a-z 0-9 _ . -`,
    )
  }
  if (!Number.isSafeInteger(index) || index < 0) {
    throw new LedgerError('invalid_argument', 'correction index must be a non-negative integer')
  }
  const id = `${offendingId}~${normalized}~${index}`
  if (id.length > ENTRY_ID_LENGTH_MAX) {
    throw new LedgerError('invalid_argument', `correction id longer than ${ENTRY_ID_LENGTH_MAX}`)
  }
  return id
}

/** True when `value` is an entry id or a correction id. */
export function isEntryId(value: unknown): value is string {
  return typeof value === 'string' && value.length <= ENTRY_ID_LENGTH_MAX && ENTRY_ID_RE.test(value)
}

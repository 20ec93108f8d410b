/**
 * The relay's configuration, checked once at start: a mistake fails `createRelay` with
 * `RelayError('config')` naming it (the CLI exits with code 2), instead of stalling every client
 * later (a browser Origin that never matches, a push limit no client can meet).
 *
 * Invariants:
 * 1. Every `--allowed-origins` entry is an origin as browsers send it: `http:` or `https:`,
 *    a host, an optional port, nothing else (no path, query or wildcard).
 * 2. An HS256 secret has at least `HS256_SECRET_BYTES_MIN` bytes (UTF-8), as RFC 7518 §3.2
 *    requires of a key for HS256.
 * 3. Every limit is a finite number in its range, and the limits agree with the protocol's:
 *    pushes and pages within `PUSH_ENTRIES_MAX`, `PAGE_ENTRIES_MAX` and a frame.
 */
import { FRAME_BYTES_MAX, PAGE_ENTRIES_MAX, PUSH_ENTRIES_MAX } from '@ledgerline/protocol'
import type { AuthOptions } from './auth.ts'
import type { RelayLimits } from './limits.ts'
import { RelayError } from './relay-error.ts'

/** Least bytes of an HS256 secret (RFC 7518 §3.2: a key at least as long as the hash). */
export const HS256_SECRET_BYTES_MIN = 32
/** Bytes of a page's envelope (type, sub, cursors of every partition) beside its entries. */
export const PAGE_ENVELOPE_BYTES_MAX = 64 * 1024

/**
 * Throws `RelayError('config')` for the first mistake (invariants 1-3).
 *
 * @example
 * checkRelayConfig({ allowedOrigins: ['pos.example.com'], auth, limits })
 * // RelayError: --allowed-origins entry 'pos.example.com' is not an origin: …
 */
export function checkRelayConfig(config: {
  readonly allowedOrigins: readonly string[]
  readonly auth: AuthOptions
  readonly limits: RelayLimits
}): void {
  for (const origin of config.allowedOrigins) checkOrigin(origin)
  const secret = config.auth.secret
  if (secret !== undefined && secret !== '') {
    const bytes = new TextEncoder().encode(secret).length
    if (bytes < HS256_SECRET_BYTES_MIN) {
      throw new RelayError(
        'config',
        `the HS256 secret is ${bytes} bytes; it needs at least ${HS256_SECRET_BYTES_MIN} ` +
          '(e.g. openssl rand -base64 32)',
      )
    }
  }
  checkLimits(config.limits)
}

/**
 * The origin a browser would send for this allowlist entry (invariant 1).
 *
 * @example
 * checkOrigin('https://POS.example.com:443') // 'https://pos.example.com'
 */
export function checkOrigin(entry: string): string {
  const refuse = (why: string) =>
    new RelayError(
      'config',
      `--allowed-origins entry '${entry}' is not an origin: ${why} (write it as https://host[:port])`,
    )
  if (!/^https?:\/\//i.test(entry)) throw refuse('it has no http:// or https:// scheme')
  let url: URL
  try {
    url = new URL(entry)
  } catch {
    throw refuse('it does not parse as a URL')
  }
  if (url.host === '' || url.username !== '' || url.password !== '') throw refuse('bad host')
  if ((url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '') {
    throw refuse('an origin has no path, query or fragment')
  }
  if (entry.includes('*')) throw refuse('wildcards are not supported')
  return url.origin
}

function checkLimits(limits: RelayLimits): void {
  for (const [name, value] of Object.entries(limits)) {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      throw new RelayError('config', `limit ${name} must be a non-negative number, got ${value}`)
    }
  }
  const range = (name: keyof RelayLimits, min: number, max: number, why: string) => {
    const value = limits[name]
    if (!Number.isSafeInteger(value) || value < min || value > max) {
      throw new RelayError('config', `limit ${name} must be an integer in ${min}..${max} (${why})`)
    }
  }
  range('pushEntriesMax', 1, PUSH_ENTRIES_MAX, 'PUSH_ENTRIES_MAX of the protocol')
  range('pageEntriesMax', 1, PAGE_ENTRIES_MAX, 'PAGE_ENTRIES_MAX of the protocol')
  range(
    'pageBytesMax',
    1,
    FRAME_BYTES_MAX - PAGE_ENVELOPE_BYTES_MAX,
    'a page and its envelope fit in FRAME_BYTES_MAX',
  )
  range('preHelloFrameBytesMax', 1024, FRAME_BYTES_MAX, 'a hello must fit; at most a frame')
  range('tailEntriesMax', 1, Number.MAX_SAFE_INTEGER, 'a tail holds entries')
  range('rateMessagesBurst', 1, Number.MAX_SAFE_INTEGER, 'one message must pass')
  range('yjsMessagesBurst', 1, Number.MAX_SAFE_INTEGER, 'one message must pass')
  range('connectionsMax', 1, Number.MAX_SAFE_INTEGER, 'one connection must pass')
  range('tenantConnectionsMax', 1, Number.MAX_SAFE_INTEGER, 'one connection must pass')
  range('commitQueueEntriesMax', 1, Number.MAX_SAFE_INTEGER, 'one push must pass')
  range('catchUpEntriesBurst', 1, Number.MAX_SAFE_INTEGER, 'one read must pass')
  if (limits.rateMessagesPerS <= 0 || limits.yjsMessagesPerS <= 0) {
    throw new RelayError('config', 'message rates must be above 0')
  }
  if (limits.catchUpEntriesPerS <= 0) {
    throw new RelayError('config', 'limit catchUpEntriesPerS must be above 0')
  }
}

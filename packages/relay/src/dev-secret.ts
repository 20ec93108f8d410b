/**
 * The secret a `--dev` relay signs its `/dev/token` tokens with when no key is configured. It
 * is kept in the data directory, so restarting the relay on the same directory keeps every
 * token it handed out valid (registers need no new token after a restart).
 *
 * Terms: `<data>/dev-secret` holds 32 random bytes as base64url text and nothing else.
 *
 * Invariants:
 * 1. The file is created once, with mode 0600, exclusively (`wx`): two relays starting on one
 *    new directory end up with the same secret, never with two.
 * 2. An existing file is used as it is; one that others may read (any group or other mode
 *    bit), or that does not hold a secret, is a `RelayError('config')` naming the file, never
 *    silently replaced: replacing it would invalidate the tokens it signed.
 * 3. Only dev mode without a key uses it: a configured secret or key always wins.
 */
import { randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import type { AuthOptions } from './auth.ts'
import { RelayError } from './relay-error.ts'

/** The file inside the data directory. */
export const DEV_SECRET_FILE = 'dev-secret'

const SECRET_RE = /^[A-Za-z0-9_-]{43,512}$/

/**
 * The auth options of a `--dev` relay without a key: `auth` with the data directory's secret,
 * made on first use. `note` hears one line saying where the secret is.
 *
 * @example
 * const auth = devSecret({ dataDir: './ledgerline-data', auth: {} }, console.error)
 * // auth.secret is the content of ./ledgerline-data/dev-secret
 */
export function devSecret(
  options: { readonly dataDir?: string | undefined; readonly auth: AuthOptions },
  note: (line: string) => void = () => undefined,
): AuthOptions {
  const dir = resolve(options.dataDir ?? '.')
  const { secret, created } = loadDevSecret(dir)
  note(
    `ledgerline relay: --dev ${created ? 'made its token secret in' : 'uses the token secret in'} ` +
      `${join(dir, DEV_SECRET_FILE)}; tokens stay valid across restarts on this directory.`,
  )
  return { ...options.auth, secret }
}

/**
 * Reads `<dir>/dev-secret`, or makes it (invariants 1 and 2).
 *
 * @example
 * loadDevSecret('./ledgerline-data') // { secret: 'q3…', created: true }
 */
export function loadDevSecret(dir: string): { secret: string; created: boolean } {
  mkdirSync(dir, { recursive: true })
  const file = join(dir, DEV_SECRET_FILE)
  const made = randomBytes(32).toString('base64url')
  try {
    writeFileSync(file, `${made}\n`, { mode: 0o600, flag: 'wx' })
    return { secret: made, created: true }
  } catch (error) {
    if ((error as { code?: unknown }).code !== 'EEXIST') {
      throw new RelayError('config', `cannot write ${file}: ${(error as Error).message}`, {
        cause: error,
      })
    }
  }
  const mode = statSync(file).mode & 0o777
  if ((mode & 0o077) !== 0) {
    throw new RelayError(
      'config',
      `${file} may be read by others (mode ${mode.toString(8)}); run chmod 600 on it`,
    )
  }
  const secret = readFileSync(file, 'utf8').trim()
  if (!SECRET_RE.test(secret)) {
    throw new RelayError(
      'config',
      `${file} does not hold a dev secret; delete it to make a new one (tokens it signed stop working)`,
    )
  }
  return { secret, created: false }
}

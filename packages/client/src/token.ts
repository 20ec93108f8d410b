/**
 * The token: the app's JWT (or the function that gives one), asked for lazily and again when
 * the relay says it expired or it is time to renew it, and the claims read from it.
 *
 * Invariants:
 * 1. A token function is called at most once until the token is invalidated (after
 *    `token_expired` or `unauthorized`, or to renew it); a string token is used as it is and
 *    cannot be renewed.
 * 2. Claims (`tenant`, `exp`) are read without verifying the token: the relay verifies it, and
 *    an entry with a wrong tenant is refused there.
 */

export interface TokenSource {
  get(): Promise<string>
  /** Drops a cached token so the next `get()` asks the app's function again. */
  invalidate(): void
  /** A function gives the token, so a new one can be asked for before this one expires. */
  readonly renewable: boolean
}

/**
 * @example
 * const token = createTokenSource(async () => (await fetch('/api/token')).text())
 * await token.get()
 */
export function createTokenSource(token: string | (() => string | Promise<string>)): TokenSource {
  let cached: string | undefined
  return {
    renewable: typeof token === 'function',
    async get() {
      if (typeof token === 'string') return token
      cached ??= await token()
      return cached
    },
    invalidate() {
      if (typeof token === 'function') cached = undefined
    },
  }
}

/**
 * The token's `tenant` claim, read without verifying (the relay verifies).
 *
 * @example
 * tenantFromToken('x.eyJ0ZW5hbnQiOiJ0MSJ9.y') // 't1'
 */
export function tenantFromToken(token: string): string | undefined {
  const tenant = claimsOf(token)?.tenant
  return typeof tenant === 'string' ? tenant : undefined
}

/**
 * When the token says it expires (its `exp` claim, in ms), read without verifying; undefined
 * for a token without one (or not a JWT).
 *
 * @example
 * expiresAtOf('x.eyJleHAiOjEwfQ.y') // 10000
 */
export function expiresAtOf(token: string): number | undefined {
  const exp = claimsOf(token)?.exp
  return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : undefined
}

function claimsOf(token: string): Record<string, unknown> | undefined {
  const payload = token.split('.')[1]
  if (payload === undefined) return undefined
  try {
    const json = atob(
      payload
        .replace(/-/g, '+')
        .replace(/_/g, '/')
        .padEnd(Math.ceil(payload.length / 4) * 4, '='),
    )
    const claims = JSON.parse(json) as unknown
    return typeof claims === 'object' && claims !== null
      ? (claims as Record<string, unknown>)
      : undefined
  } catch {
    return undefined
  }
}

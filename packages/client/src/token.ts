/**
 * The token: the app's JWT (or the function that gives one), asked for lazily and again when
 * the relay says it expired, and the tenant claim read from it.
 *
 * Invariants:
 * 1. A token function is called at most once until the token is invalidated (after
 *    `token_expired` or `unauthorized`); a string token is used as it is.
 * 2. The tenant claim is read without verifying the token: the relay verifies it, and an
 *    entry with a wrong tenant is refused there.
 */

export interface TokenSource {
  get(): Promise<string>
  /** Drops a cached token so the next `get()` asks the app's function again. */
  invalidate(): void
}

/**
 * @example
 * const token = createTokenSource(async () => (await fetch('/api/token')).text())
 * await token.get()
 */
export function createTokenSource(token: string | (() => string | Promise<string>)): TokenSource {
  let cached: string | undefined
  return {
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
  const payload = token.split('.')[1]
  if (payload === undefined) return undefined
  try {
    const json = atob(
      payload
        .replace(/-/g, '+')
        .replace(/_/g, '/')
        .padEnd(Math.ceil(payload.length / 4) * 4, '='),
    )
    const claims = JSON.parse(json) as { tenant?: unknown }
    return typeof claims.tenant === 'string' ? claims.tenant : undefined
  } catch {
    return undefined
  }
}

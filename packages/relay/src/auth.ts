/**
 * Tokens: how a relay checks the JWT of a `hello`, and how tokens are made (tests, `/dev/token`).
 *
 * Terms: *grants* are the read and write entity patterns of a token, within its one *tenant*.
 *
 * Invariants:
 * 1. Algorithms are pinned by key kind: HS256 for a shared secret; ES256, RS256 or EdDSA as the
 *    public key is; the JWKS algorithms for a JWKS file. `alg: none` and algorithm confusion
 *    (an HS token checked with a public key) never verify.
 * 2. Issuer, audience and `exp` are required and checked; `nbf` is checked when present; the
 *    clock tolerance is `TOKEN_CLOCK_TOLERANCE_S`.
 * 3. A token verifies only with a valid tenant, a subject, and read/write lists of valid
 *    patterns (at most `SCOPE_PATTERNS_MAX` each); anything else is `unauthorized`.
 * 4. A `forward` list (store hubs, `grants.forward`) is optional; when present it holds valid
 *    patterns like `read` and `write`, and only a token that has it may forward other devices'
 *    entries (`session-push.ts`).
 * 5. An expired token is told apart (`token_expired`), so a client refreshes instead of giving up.
 */
import { createPublicKey, type KeyObject } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createLocalJWKSet, errors, jwtVerify, SignJWT } from 'jose'
import type { JWTVerifyGetKey, JSONWebKeySet } from 'jose'
import { checkPattern, checkTenant } from '@ledgerline/core'
import { SCOPE_PATTERNS_MAX } from '@ledgerline/protocol'
import type { Grants } from '@ledgerline/protocol'
import { TOKEN_CLOCK_TOLERANCE_S } from './limits.ts'
import { RelayError } from './relay-error.ts'

/** Where a relay's token keys come from; exactly one of `secret`, `publicKeyFile`, `jwksFile`. */
export interface AuthOptions {
  /** Shared secret for HS256 (several relays with the same secret accept the same tokens). */
  readonly secret?: string | undefined
  /** PEM file of a public key (EC P-256 → ES256, RSA → RS256, Ed25519 → EdDSA). */
  readonly publicKeyFile?: string | undefined
  /** JSON Web Key Set file (`{ "keys": [...] }`) of public keys. */
  readonly jwksFile?: string | undefined
  /** Expected `iss`; default `ledgerline`. */
  readonly issuer?: string | undefined
  /** Expected `aud`; default `ledgerline-relay`. */
  readonly audience?: string | undefined
}

export const TOKEN_ISSUER_DEFAULT = 'ledgerline'
export const TOKEN_AUDIENCE_DEFAULT = 'ledgerline-relay'

/** The checked claims of a token. */
export interface TokenClaims {
  readonly sub: string
  readonly tenant: string
  readonly grants: Grants
  /** ms since the epoch. */
  readonly expiresAt: number
  /**
   * When the check stops accepting the token (ms since the epoch): `expiresAt` plus the clock
   * tolerance. A session of the token lives until then, so a `hello` it passed is not followed
   * at once by `token_expired` (a welcome that resets the client's backoff, again and again).
   */
  readonly acceptedUntil: number
}

export type TokenCheck =
  | { readonly _tag: 'valid'; readonly claims: TokenClaims }
  | {
      readonly _tag: 'invalid'
      readonly kind: 'unauthorized' | 'token_expired'
      readonly message: string
    }

export type TokenVerifier = (token: string) => Promise<TokenCheck>

/**
 * Makes the token check of a relay from its auth options.
 *
 * @example
 * const verify = createTokenVerifier({ secret: process.env.LEDGERLINE_SECRET })
 * const check = await verify(token) // { _tag: 'valid', claims } | { _tag: 'invalid', kind, message }
 */
export function createTokenVerifier(
  options: AuthOptions,
  toleranceS: number = TOKEN_CLOCK_TOLERANCE_S,
  /** The clock `exp` and `nbf` are checked against (a simulation passes its own). */
  now: () => number = Date.now,
): TokenVerifier {
  const sources = [options.secret, options.publicKeyFile, options.jwksFile].filter(
    (s) => s !== undefined && s !== '',
  )
  if (sources.length !== 1) {
    throw new RelayError(
      'config',
      'auth needs exactly one of secret, publicKeyFile or jwksFile (or dev mode, which makes a secret)',
    )
  }
  const issuer = options.issuer ?? TOKEN_ISSUER_DEFAULT
  const audience = options.audience ?? TOKEN_AUDIENCE_DEFAULT
  let key: Uint8Array | KeyObject | JWTVerifyGetKey
  let algorithms: string[]
  if (options.secret !== undefined && options.secret !== '') {
    key = new TextEncoder().encode(options.secret)
    algorithms = ['HS256']
  } else if (options.publicKeyFile !== undefined && options.publicKeyFile !== '') {
    const pem = readKeyFile(options.publicKeyFile)
    let publicKey: KeyObject
    try {
      publicKey = createPublicKey(pem)
    } catch (error) {
      throw new RelayError('config', `${options.publicKeyFile} is not a PEM public key`, {
        cause: error,
      })
    }
    key = publicKey
    algorithms = [algorithmOf(publicKey, options.publicKeyFile)]
  } else {
    const file = options.jwksFile as string
    let jwks: JSONWebKeySet
    try {
      jwks = JSON.parse(readKeyFile(file)) as JSONWebKeySet
      if (!Array.isArray(jwks.keys)) throw new Error('no "keys" array')
    } catch (error) {
      throw new RelayError('config', `${file} is not a JSON Web Key Set`, { cause: error })
    }
    key = createLocalJWKSet(jwks)
    algorithms = ['ES256', 'RS256', 'EdDSA']
  }
  const verifyOptions = {
    issuer,
    audience,
    algorithms,
    clockTolerance: toleranceS,
    requiredClaims: ['exp', 'sub', 'iss', 'aud'],
  }
  return async (token) => {
    if (typeof token !== 'string' || token.length === 0) {
      return { _tag: 'invalid', kind: 'unauthorized', message: 'token missing' }
    }
    let payload: Record<string, unknown>
    try {
      const checks = { ...verifyOptions, currentDate: new Date(now()) }
      const result =
        typeof key === 'function'
          ? await jwtVerify(token, key, checks)
          : await jwtVerify(token, key, checks)
      payload = result.payload as Record<string, unknown>
    } catch (error) {
      if (error instanceof errors.JWTExpired) {
        return { _tag: 'invalid', kind: 'token_expired', message: 'token expired' }
      }
      return {
        _tag: 'invalid',
        kind: 'unauthorized',
        message: `token refused: ${error instanceof Error ? error.message : 'invalid'}`,
      }
    }
    return checkClaims(payload, toleranceS)
  }
}

export interface SignTokenOptions {
  /** HS256 shared secret, the same the relay was given. */
  readonly secret: string
  readonly tenant: string
  readonly sub: string
  readonly read: readonly string[]
  readonly write: readonly string[]
  /** Store hubs: entity patterns the hub may forward other devices' entries for. */
  readonly forward?: readonly string[] | undefined
  /** Lifetime from now; default 3600. Negative makes an already expired token (tests). */
  readonly expiresInS?: number | undefined
  /** Makes the token valid only this many seconds from now (`nbf`). */
  readonly notBeforeS?: number | undefined
  readonly issuer?: string | undefined
  readonly audience?: string | undefined
  /** The clock `iat`, `exp` and `nbf` count from; default `Date.now` (a simulation passes its own). */
  readonly now?: (() => number) | undefined
}

/**
 * Signs an HS256 token a relay with the same secret accepts.
 *
 * @example
 * const token = await signToken({ secret, tenant: 'acme', sub: 'till-1', read: ['*'], write: ['*'] })
 */
export async function signToken(options: SignTokenOptions): Promise<string> {
  const nowS = Math.floor((options.now ?? Date.now)() / 1000)
  const jwt = new SignJWT({
    tenant: options.tenant,
    read: [...options.read],
    write: [...options.write],
    ...(options.forward === undefined ? {} : { forward: [...options.forward] }),
  })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(options.sub)
    .setIssuer(options.issuer ?? TOKEN_ISSUER_DEFAULT)
    .setAudience(options.audience ?? TOKEN_AUDIENCE_DEFAULT)
    .setIssuedAt(nowS)
    .setExpirationTime(nowS + (options.expiresInS ?? 3600))
  if (options.notBeforeS !== undefined) jwt.setNotBefore(nowS + options.notBeforeS)
  return await jwt.sign(new TextEncoder().encode(options.secret))
}

// ---------------------------------------------------------------------------------------------

function checkClaims(payload: Record<string, unknown>, toleranceS: number): TokenCheck {
  try {
    const sub = payload.sub
    if (typeof sub !== 'string' || sub.length === 0 || sub.length > 256) {
      throw new Error('sub must be a non-empty string')
    }
    const tenant = checkTenant(payload.tenant)
    const read = patterns(payload.read, 'read')
    const write = patterns(payload.write, 'write')
    const forward = payload.forward === undefined ? undefined : patterns(payload.forward, 'forward')
    const exp = payload.exp
    if (typeof exp !== 'number') throw new Error('exp must be a number')
    return {
      _tag: 'valid',
      claims: {
        sub,
        tenant,
        grants: forward === undefined ? { read, write } : { read, write, forward },
        expiresAt: exp * 1000,
        acceptedUntil: (exp + toleranceS) * 1000,
      },
    }
  } catch (error) {
    return {
      _tag: 'invalid',
      kind: 'unauthorized',
      message: `token claims refused: ${error instanceof Error ? error.message : 'invalid'}`,
    }
  }
}

function patterns(value: unknown, name: string): string[] {
  if (!Array.isArray(value) || value.length > SCOPE_PATTERNS_MAX) {
    throw new Error(`${name} must be a list of at most ${SCOPE_PATTERNS_MAX} entity patterns`)
  }
  return value.map((p) => checkPattern(p))
}

function algorithmOf(key: KeyObject, file: string): string {
  const type = key.asymmetricKeyType
  if (type === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ES256'
  if (type === 'rsa') return 'RS256'
  if (type === 'ed25519') return 'EdDSA'
  throw new RelayError(
    'config',
    `${file}: key type ${String(type)} is not supported (use EC P-256, RSA or Ed25519)`,
  )
}

function readKeyFile(file: string): string {
  try {
    return readFileSync(file, 'utf8')
  } catch (error) {
    throw new RelayError('config', `cannot read key file ${file}`, { cause: error })
  }
}

/**
 * Who is signed in in this window: store, register (or head office), and each register's
 * offline limits. The session lives in sessionStorage, so a register that reloads (offline
 * too) opens as itself while a second window of the same browser can be a second register;
 * the last choice is remembered to prefill the sign-in. The token is never stored: it is
 * fetched from the relay's development issuer when the client connects.
 */
import { TENANT } from './catalog.ts'

export interface Session {
  readonly store: string
  /** `r1`, `r2`, … or `hq` for head office. */
  readonly register: string
}

export interface OfflineLimits {
  /** Largest sale taken while offline, in cents. */
  readonly perSaleMax: number
  /** Largest total of unsynced sales held on this register, in cents. */
  readonly storedMax: number
  /** Hours an unsynced sale may wait before it must be forwarded. */
  readonly forwardHours: number
}

export const DEFAULT_LIMITS: OfflineLimits = {
  perSaleMax: 25_000,
  storedMax: 100_000,
  forwardHours: 24,
}

const SESSION_KEY = 'ledgerline.session'
const LAST_KEY = 'ledgerline.lastSession'
const LIMITS_KEY = 'ledgerline.limits'

export function loadSession(): Session | undefined {
  return readSession(sessionStorage.getItem(SESSION_KEY))
}

/** The session last signed in on this browser, to prefill the sign-in. */
export function lastSession(): Session | undefined {
  return readSession(localStorage.getItem(LAST_KEY))
}

function readSession(raw: string | null): Session | undefined {
  try {
    if (raw === null) return undefined
    const s = JSON.parse(raw) as Partial<Session>
    return typeof s.store === 'string' && typeof s.register === 'string'
      ? { store: s.store, register: s.register }
      : undefined
  } catch {
    return undefined
  }
}

export function saveSession(session: Session | undefined): void {
  if (session === undefined) {
    sessionStorage.removeItem(SESSION_KEY)
    return
  }
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(session))
  localStorage.setItem(LAST_KEY, JSON.stringify(session))
}

export function loadLimits(session: Session): OfflineLimits {
  try {
    const raw = localStorage.getItem(`${LIMITS_KEY}.${subjectOf(session)}`)
    return raw === null ? DEFAULT_LIMITS : { ...DEFAULT_LIMITS, ...(JSON.parse(raw) as object) }
  } catch {
    return DEFAULT_LIMITS
  }
}

export function saveLimits(session: Session, limits: OfflineLimits): void {
  localStorage.setItem(`${LIMITS_KEY}.${subjectOf(session)}`, JSON.stringify(limits))
}

/** The token's subject: one per register, so the relay's log says which register wrote what. */
export function subjectOf(session: Session): string {
  return `${session.store}-${session.register}`
}

/**
 * Why no token came: the issuer said no (`refused`: sign in again), or it could not be asked
 * (`unreachable`: no answer, or an answer that is no token).
 */
export class TokenError extends Error {
  readonly kind: 'refused' | 'unreachable'
  constructor(kind: 'refused' | 'unreachable', message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'TokenError'
    this.kind = kind
  }
}

/** Asks the relay's development issuer for a token (dev mode only); throws `TokenError`. */
export async function fetchDevToken(
  session: Session,
): Promise<{ token: string; expiresAt: number }> {
  const url = `/dev/token?tenant=${encodeURIComponent(TENANT)}&sub=${encodeURIComponent(subjectOf(session))}`
  let res: Response
  try {
    res = await fetch(url, { cache: 'no-store' })
  } catch (error) {
    throw new TokenError('unreachable', 'the token issuer did not answer', { cause: error })
  }
  if (res.status === 401 || res.status === 403) {
    throw new TokenError('refused', `the token issuer refused this register (${res.status})`)
  }
  if (!res.ok) throw new TokenError('unreachable', `the token issuer answered ${res.status}`)
  let body: { token?: unknown; expiresAt?: unknown }
  try {
    body = (await res.json()) as { token?: unknown; expiresAt?: unknown }
  } catch (error) {
    throw new TokenError('unreachable', 'the token issuer sent no token', { cause: error })
  }
  if (typeof body.token !== 'string') {
    throw new TokenError('unreachable', 'the token issuer sent no token')
  }
  // `expiresAt` may be seconds or milliseconds since the epoch; without it, trust ten minutes.
  const raw = typeof body.expiresAt === 'number' ? body.expiresAt : Date.now() + 600_000
  return { token: body.token, expiresAt: raw < 1e12 ? raw * 1000 : raw }
}

/** Today's business date in the register's local time, `YYYY-MM-DD`. */
export function businessDate(now = new Date()): string {
  const m = String(now.getMonth() + 1).padStart(2, '0')
  const d = String(now.getDate()).padStart(2, '0')
  return `${now.getFullYear()}-${m}-${d}`
}

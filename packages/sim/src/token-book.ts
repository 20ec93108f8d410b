/**
 * The tokens of a run: real HS256 JWTs, signed before the run starts (signing is WebCrypto,
 * real work the loop must not wait for at random moments) for simulated issue times, and
 * handed out by the app's token function as its server would at that moment.
 *
 * Terms: a *subject* is a token's `sub` (one per till, one for the impostor); a token is
 * *current* at a time when it was issued by then and has not expired.
 *
 * Invariants:
 * 1. Tokens depend only on the seed and the options: the same run signs the same tokens.
 * 2. `current` answers the newest token issued by `at`; `stale` the newest already expired one
 *    (what a token function with a stale cache returns), or the current one if none expired.
 */
import { signToken } from '@ledgerline/relay'
import { SIM_EPOCH_MS } from './limits.ts'

export interface TokenBook {
  current(subject: string, at: number): string
  stale(subject: string, at: number): string
}

export interface TokenBookOptions {
  readonly secret: string
  readonly tenant: string
  /** Subjects and their grants. */
  readonly subjects: readonly {
    readonly sub: string
    readonly read: readonly string[]
    readonly write: readonly string[]
    /** A store hub's forward grant. */
    readonly forward?: readonly string[] | undefined
  }[]
  readonly lifetimeS: number
  /** Tokens are issued every `lifetimeS / 2` from the epoch until `untilMs` (simulated). */
  readonly untilMs: number
}

/**
 * @example
 * const book = await createTokenBook({ secret, tenant, subjects, lifetimeS: 600, untilMs })
 * createClient({ …, token: () => book.current('till-1', relay.now()) })
 */
export async function createTokenBook(options: TokenBookOptions): Promise<TokenBook> {
  const stepMs = Math.max(1_000, Math.floor((options.lifetimeS * 1000) / 2))
  const issued = new Map<string, { at: number; exp: number; token: string }[]>()
  for (const subject of options.subjects) {
    const list: { at: number; exp: number; token: string }[] = []
    for (let at = SIM_EPOCH_MS; at <= SIM_EPOCH_MS + options.untilMs + stepMs; at += stepMs) {
      const token = await signToken({
        secret: options.secret,
        tenant: options.tenant,
        sub: subject.sub,
        read: subject.read,
        write: subject.write,
        forward: subject.forward,
        expiresInS: options.lifetimeS,
        now: () => at,
      })
      list.push({ at, exp: at + options.lifetimeS * 1000, token })
    }
    issued.set(subject.sub, list)
  }
  const find = (subject: string, at: number, stale: boolean) => {
    const list = issued.get(subject)
    if (list === undefined || list.length === 0) throw new Error(`sim: no tokens for ${subject}`)
    let current = list[0] as (typeof list)[number]
    let expired: (typeof list)[number] | undefined
    for (const t of list) {
      if (t.at > at) break
      current = t
      if (t.exp <= at) expired = t
    }
    return (stale ? (expired ?? current) : current).token
  }
  return {
    current: (subject, at) => find(subject, at, false),
    stale: (subject, at) => find(subject, at, true),
  }
}

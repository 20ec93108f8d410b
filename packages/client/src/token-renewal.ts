/**
 * Token renewal on a live socket: at about RENEW_AT_LIFETIME_SHARE of the token's lifetime the
 * app's token function is asked again and the new token sent as `renew`; the relay answers
 * `renewed` with its expiry, and the next renewal is armed from it. Acks and subscriptions in
 * flight are untouched: the socket stays open (issue 12 case 8).
 *
 *   welcome(expiresAt, serverTime) ─► wait lifetime × (0.8 ± jitter) ─► token() ─► renew ─┐
 *        ▲                                                                               │
 *        └──────────────── renewed(expiresAt) ◄──────────────────────────────────────────┘
 *
 * Terms: the *lifetime* is measured on the relay's clock (`serverTime` of the welcome against
 * ours gives the skew), so a till whose clock is off still renews in time; a token *gains*
 * when it expires at least RENEW_GAIN_MS_MIN later than the one in use.
 *
 * Invariants:
 * 1. One renewal at a time per socket; nothing is sent after `stop()`.
 * 2. A token that does not gain (the same string, an `exp` no later, or a `renewed` expiry no
 *    later) is not taken: the token function is asked again after a backoff that doubles from
 *    RECONNECT_MS_MIN, at most half the time left, and the failure is reported. So is a token
 *    function that throws (`token_unavailable`). Never a loop without a wait.
 */
import type { RenewMessage } from '@ledgerline/protocol'
import type { ConnectionErrorKind } from './connection.ts'
import {
  RECONNECT_MS_MIN,
  RENEW_AT_LIFETIME_SHARE,
  RENEW_GAIN_MS_MIN,
  RENEW_JITTER_SHARE,
} from './limits.ts'
import type { Scheduler, TimerHandle } from './scheduler.ts'
import { expiresAtOf } from './token.ts'

export interface RenewalOptions {
  /** The app's token (a fresh one after `invalidateToken`). */
  readonly token: () => Promise<string>
  readonly invalidateToken: () => void
  readonly now: () => number
  /** A float in [0, 1) for the jitter. */
  readonly random: () => number
  readonly scheduler: Scheduler
  /** Sends on the socket; false when it is gone. */
  readonly send: (message: RenewMessage) => boolean
  /** A renewal took effect: `token` is the session's token now. */
  readonly renewed: (token: string) => void
  readonly failed: (kind: ConnectionErrorKind, message: string) => void
}

/** The session as welcomed: its token, when it expires, and the relay's clock minus ours. */
export interface RenewalSession {
  readonly token: string
  readonly expiresAt: number
  readonly skewMs: number
}

export interface Renewal {
  /** The relay's `renewed`: the token sent last is in force until `expiresAt`. */
  renewed(expiresAt: number): void
  stop(): void
}

/**
 * @example
 * const renewal = startRenewal({ token, invalidateToken, now, random, scheduler, send, renewed,
 *   failed }, { token: current, expiresAt: welcome.expiresAt, skewMs })
 */
export function startRenewal(options: RenewalOptions, session: RenewalSession): Renewal {
  const { scheduler } = options
  let current = { token: session.token, expiresAt: session.expiresAt }
  let pending: string | undefined
  let retries = 0
  let stopped = false
  let timer: TimerHandle | undefined
  const relayNow = () => options.now() + session.skewMs

  const arm = (delayMs: number) => {
    scheduler.clearTimeout(timer)
    timer = scheduler.setTimeout(
      () => {
        timer = undefined
        void renew()
      },
      Math.max(0, delayMs),
    )
  }
  const armFromLifetime = () => {
    const lifetime = current.expiresAt - relayNow()
    const share = RENEW_AT_LIFETIME_SHARE + (options.random() * 2 - 1) * RENEW_JITTER_SHARE
    retries = 0
    arm(lifetime * share)
  }
  /** Invariant 2: ask again later, never at once. */
  const retryLater = (kind: ConnectionErrorKind, why: string) => {
    const left = current.expiresAt - relayNow()
    const delay = Math.min(RECONNECT_MS_MIN * 2 ** Math.min(retries++, 16), Math.max(left / 2, 0))
    options.failed(
      kind,
      `${why}; asking again in ${Math.round(Math.max(delay, RECONNECT_MS_MIN))} ms`,
    )
    arm(Math.max(delay, RECONNECT_MS_MIN))
  }

  async function renew(): Promise<void> {
    if (stopped) return
    options.invalidateToken()
    let next: string
    try {
      next = await options.token()
    } catch (error) {
      if (!stopped)
        retryLater(
          'token_unavailable',
          `the token function failed: ${error instanceof Error ? error.message : String(error)}`,
        )
      return
    }
    if (stopped) return
    const exp = expiresAtOf(next)
    if (
      next === current.token ||
      (exp !== undefined && exp < current.expiresAt + RENEW_GAIN_MS_MIN)
    ) {
      retryLater('token_expired', 'the token function gave no token that outlives the one in use')
      return
    }
    pending = next
    options.send({ type: 'renew', token: next })
  }

  armFromLifetime()
  return {
    renewed(expiresAt) {
      const token = pending
      pending = undefined
      if (stopped || token === undefined) return
      if (expiresAt < current.expiresAt + RENEW_GAIN_MS_MIN) {
        retryLater('token_expired', 'the relay renewed the session without extending it')
        return
      }
      current = { token, expiresAt }
      options.renewed(token)
      armFromLifetime()
    },
    stop() {
      stopped = true
      scheduler.clearTimeout(timer)
      timer = undefined
    },
  }
}

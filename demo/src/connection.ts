/**
 * Why a register is or is not sending its sales to head office, in a cashier's words. The
 * client already knows (`status().online`, `lastError`, `lastServerContactAt`), the browser
 * knows whether it has a network, and the token source knows whether sign-in was refused;
 * this turns the three into one reason.
 *
 *   browser offline / "simulate offline"          → no network
 *   connected                                     → online (or sending, while sales go out)
 *   connected to a store hub that cannot reach    → store only: the store works as one, its
 *     head office                                   sales wait on the hub for head office
 *   token refused or expired, relay said no       → not authorised: sign in again
 *   anything else that keeps the socket closed    → head office unreachable
 *
 * The store hub's reason comes from the client's status (`relay.role`, and `headOffice` as the
 * hub reports it), never from a guess.
 *
 * Invariants:
 * 1. Pure: the same inputs give the same reason; the only clock is `sinceOpenMs`.
 * 2. A reason lasts only as long as its cause: each input that caused it, once gone, gives
 *    another reason (nothing is latched).
 */
import type { TokenProblem } from './pos-client.ts'

export type ConnectionReason =
  | { readonly _tag: 'online' }
  | { readonly _tag: 'sending' }
  | { readonly _tag: 'store_only' }
  | { readonly _tag: 'connecting' }
  | { readonly _tag: 'no_network' }
  | { readonly _tag: 'not_authorised'; readonly expired: boolean }
  | { readonly _tag: 'head_office_unreachable' }

export interface ConnectionInput {
  /** `undefined` before the client's first status. */
  readonly status:
    | {
        readonly online: boolean
        readonly syncing: boolean
        readonly outboxEntries: number
        readonly lastServerContactAt: number | null
        readonly lastError: { readonly kind: string; readonly message: string } | null
        readonly relay?: { readonly role: 'head_office' | 'hub' } | null | undefined
        readonly headOffice?: 'reachable' | 'unreachable' | 'unknown' | undefined
      }
    | undefined
  /** The browser has no network, or the register's "simulate offline" switch is on. */
  readonly networkOff: boolean
  readonly token: TokenProblem
  /** Time since this client was opened. */
  readonly sinceOpenMs: number
}

/** How long a new client may try before "connecting" becomes "head office unreachable". */
export const CONNECTING_GRACE_MS = 5_000

/** Relay error kinds that mean this register's sign-in is not accepted. */
const REFUSED_KINDS: ReadonlySet<string> = new Set(['unauthorized', 'forbidden'])

/**
 * @example
 * connectionReason({ status, networkOff: !navigator.onLine, token: null, sinceOpenMs: 9_000 })
 * // { _tag: 'head_office_unreachable' }
 */
export function connectionReason(input: ConnectionInput): ConnectionReason {
  const { status } = input
  if (input.networkOff) return { _tag: 'no_network' }
  if (status?.online === true) {
    if (status.relay?.role === 'hub' && status.headOffice === 'unreachable') {
      return { _tag: 'store_only' }
    }
    return status.outboxEntries > 0 || status.syncing ? { _tag: 'sending' } : { _tag: 'online' }
  }
  const kind = status?.lastError?.kind
  if (input.token === 'refused' || (kind !== undefined && REFUSED_KINDS.has(kind))) {
    return { _tag: 'not_authorised', expired: false }
  }
  if (kind === 'token_expired') return { _tag: 'not_authorised', expired: true }
  const neverAnswered = status === undefined || status.lastServerContactAt === null
  if (input.token === null && kind === undefined && neverAnswered) {
    if (input.sinceOpenMs < CONNECTING_GRACE_MS) return { _tag: 'connecting' }
  }
  return { _tag: 'head_office_unreachable' }
}

export interface ReasonWords {
  /** One word for the status bar's badge (and the e2e tests): online, sending, store or offline. */
  readonly badge: 'online' | 'sending' | 'store' | 'offline'
  readonly title: string
  readonly detail: string
}

export function reasonWords(reason: ConnectionReason): ReasonWords {
  switch (reason._tag) {
    case 'online':
      return { badge: 'online', title: 'Online', detail: 'Every sale is at head office.' }
    case 'sending':
      return { badge: 'sending', title: 'Sending', detail: 'Sending sales to head office…' }
    case 'store_only':
      return {
        badge: 'store',
        title: 'Store internet down',
        detail:
          'This register reaches the store hub, not head office. The store’s registers see each other’s sales; they go to head office when the store’s internet is back.',
      }
    case 'connecting':
      return { badge: 'offline', title: 'Connecting', detail: 'Connecting to head office…' }
    case 'no_network':
      return {
        badge: 'offline',
        title: 'No network',
        detail:
          'This register has no network. Sales are kept here and sent to head office when the network is back.',
      }
    case 'not_authorised':
      return {
        badge: 'offline',
        title: 'Not authorised',
        detail: `Head office ${reason.expired ? 'no longer accepts this register’s sign-in (it expired)' : 'refused this register’s sign-in'}. Sales are kept here; sign in again to send them.`,
      }
    case 'head_office_unreachable':
      return {
        badge: 'offline',
        title: 'Head office unreachable',
        detail:
          'The network is up, but head office does not answer. Sales are kept here and sent when it answers.',
      }
    default:
      return unreachable(reason)
  }
}

function unreachable(x: never): never {
  throw new Error(`unhandled connection reason ${JSON.stringify(x)}`)
}

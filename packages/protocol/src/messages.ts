/**
 * Wire messages. One type per message; `type` is the discriminant; each says who sends it.
 *
 *   client                                 relay
 *     hello {token, clientId, protocol} ──►
 *                                       ◄── welcome {tenant, grants, partitions, …}
 *     push {batch, entries}             ──►
 *                                       ◄── ack {batch, results[]}   (one result per entry, in order)
 *     subscribe {sub, scope, cursors}   ──►
 *                                       ◄── entries {sub, entries, cursors, live}   (pages, then live)
 *     credit {sub, pages}               ──►   (flow control: pages the client can take)
 *     ping {t}                          ◄─►   pong {t}
 *                                       ◄── error {kind, message, backoffMsMin}
 *
 * Invariants:
 * 1. Nothing but `hello` is accepted before `welcome`.
 * 2. `ack.results[i]` answers `push.entries[i]`.
 * 3. Within a subscription, entries of a partition arrive in offset order without gaps
 *    (entries outside the scope are skipped, but cursors still pass them).
 * 4. A relay sends at most as many `entries` pages as the client has granted by `credit`
 *    (the subscription's initial `credit` included).
 */
import type { Entry, RefusalCode, StoredEntry } from '@ledgerline/core'
import type { ErrorKind } from './error-kind.ts'

/** Per-partition offsets a client has received up to (0 or absent: nothing yet). */
export type Cursors = Readonly<Record<number, number>>

/** Client → relay: first message on a socket. */
export interface HelloMessage {
  readonly type: 'hello'
  readonly protocol: number
  /** A JWT. Travels here, never in the URL. */
  readonly token: string
  readonly clientId: string
}

/** What a token allows: read and write patterns over entity names within one tenant. */
export interface Grants {
  readonly read: readonly string[]
  readonly write: readonly string[]
}

/** Relay → client: the hello was accepted. */
export interface WelcomeMessage {
  readonly type: 'welcome'
  readonly protocol: number
  readonly tenant: string
  readonly grants: Grants
  /** The server log's partition count (fixed). */
  readonly partitions: number
  /** Highest clientSeq of this client the log holds (its high-water mark); 0 if none. */
  readonly clientSeqHigh: number
  /** Relay clock, ms since the epoch. */
  readonly serverTime: number
  /** When the token expires, ms since the epoch. */
  readonly expiresAt: number
}

/** Client → relay: entries to append, in clientSeq order. */
export interface PushMessage {
  readonly type: 'push'
  /** Client-chosen batch number, echoed in the ack. */
  readonly batch: number
  readonly entries: readonly Entry[]
}

export type AckResult =
  | {
      readonly id: string
      /** `appended` now, or `duplicate`: appended before; the original positions are returned. */
      readonly status: 'appended' | 'duplicate'
      readonly version: number
      readonly partition: number
      readonly offset: number
      readonly committedAt: number
      /** Corrections the log appended right after this entry. */
      readonly corrections: readonly StoredEntry[]
    }
  | {
      readonly id: string
      readonly status: 'refused'
      readonly code: RefusalCode | 'forbidden' | 'seq_gap'
      readonly reason: string
      /** The entity's version at refusal, for a client to rebase a request. */
      readonly head: number
    }

/** Relay → client: the outcome of each entry of a push, after it is durable. */
export interface AckMessage {
  readonly type: 'ack'
  readonly batch: number
  readonly results: readonly AckResult[]
}

/** Client → relay: receive entries in `scope` from `cursors` on. */
export interface SubscribeMessage {
  readonly type: 'subscribe'
  /** Client-chosen subscription number. */
  readonly sub: number
  /** Entity patterns; each must fall within the token's read grants. */
  readonly scope: readonly string[]
  readonly cursors: Cursors
  /** Pages the client can take now. */
  readonly credit: number
}

/** Relay → client: a page of entries of one subscription. */
export interface EntriesMessage {
  readonly type: 'entries'
  readonly sub: number
  /** In offset order per partition. */
  readonly entries: readonly StoredEntry[]
  /** Cursors after this page: the client stores them with the page. */
  readonly cursors: Cursors
  /** True once catch-up is done: this page and the ones after it are live. */
  readonly live: boolean
}

/** Client → relay: the client can take `pages` more pages of subscription `sub`. */
export interface CreditMessage {
  readonly type: 'credit'
  readonly sub: number
  readonly pages: number
}

/** Either side: liveness check. */
export interface PingMessage {
  readonly type: 'ping'
  readonly t: number
}

/** Either side: answer to ping, echoing `t`. */
export interface PongMessage {
  readonly type: 'pong'
  readonly t: number
}

/** Relay → client: something went wrong; see `error-kind.ts` for retry and backoff. */
export interface ErrorMessage {
  readonly type: 'error'
  readonly kind: ErrorKind
  readonly message: string
  readonly backoffMsMin: number
}

export type ClientMessage =
  | HelloMessage
  | PushMessage
  | SubscribeMessage
  | CreditMessage
  | PingMessage
  | PongMessage
export type RelayMessage =
  | WelcomeMessage
  | AckMessage
  | EntriesMessage
  | ErrorMessage
  | PingMessage
  | PongMessage
export type Message = ClientMessage | RelayMessage
export type MessageType = Message['type']

export const MESSAGE_TYPES = [
  'hello',
  'welcome',
  'push',
  'ack',
  'subscribe',
  'entries',
  'credit',
  'ping',
  'pong',
  'error',
] as const satisfies readonly MessageType[]

export const isHelloMessage = (m: Message): m is HelloMessage => m.type === 'hello'
export const isWelcomeMessage = (m: Message): m is WelcomeMessage => m.type === 'welcome'
export const isPushMessage = (m: Message): m is PushMessage => m.type === 'push'
export const isAckMessage = (m: Message): m is AckMessage => m.type === 'ack'
export const isSubscribeMessage = (m: Message): m is SubscribeMessage => m.type === 'subscribe'
export const isEntriesMessage = (m: Message): m is EntriesMessage => m.type === 'entries'
export const isCreditMessage = (m: Message): m is CreditMessage => m.type === 'credit'
export const isPingMessage = (m: Message): m is PingMessage => m.type === 'ping'
export const isPongMessage = (m: Message): m is PongMessage => m.type === 'pong'
export const isErrorMessage = (m: Message): m is ErrorMessage => m.type === 'error'

/**
 * Wire messages. One type per message; `type` is the discriminant; each says who sends it.
 *
 *   client                                 relay
 *     hello {token, clientId, protocol} ──►
 *                                       ◄── welcome {tenant, subject, grants, log, limits, …}
 *     push {batch, entries}             ──►
 *                                       ◄── ack {batch, first, results[], done}   (in parts)
 *     subscribe {sub, scope, cursors, bootstrap?} ──►
 *                                       ◄── snapshots {sub, snapshots}   (bootstrap only, first)
 *                                       ◄── entries {sub, entries, cursors, live}   (pages, then live)
 *     fetch {req, entity, before}       ──►
 *                                       ◄── fetched {req, entity, entries, done, dropped?} (pages)
 *     credit {sub, pages}               ──►   (flow control: pages the client can take)
 *     renew {token}                     ──►
 *                                       ◄── renewed {expiresAt, grants}
 *                                       ◄── store {sub, entries, removed, reset}   (hubs only)
 *                                       ◄── upstream {connected, since}             (hubs only)
 *     ping {t}                          ◄─►   pong {t}
 *                                       ◄── error {kind, message, backoffMsMin}
 *
 * Invariants:
 * 1. Nothing but `hello` is accepted before `welcome`.
 * 2. The parts of a push's ack come in order: `results[i]` answers `push.entries[first + i]`;
 *    together they answer every entry once, and the last part has `done: true`. A part is never
 *    larger than a frame, so an ack can always be sent.
 * 3. Within a subscription, entries of a partition arrive in offset order without gaps
 *    (entries outside the scope are skipped, but cursors still pass them).
 * 4. A relay sends at most as many `entries` pages as the client has granted by `credit`
 *    (the subscription's initial `credit` included).
 * 5. A store hub (`welcome.role === 'hub'`) relays head office's order unchanged: `entries`
 *    pages, cursors, versions, offsets and every decision come from head office. What the hub
 *    holds that head office has not confirmed travels apart, in `store` messages, and is never
 *    given a position; an ack result `stored` means "durable in the store, not yet at head
 *    office", and the client keeps its outbox record until head office's own result arrives.
 * 6. Bootstrap (`subscribe.bootstrap`, only to a relay whose `welcome.snapshots` is true): the
 *    relay first sends `snapshots` pages — for entities of the scope, the ledger snapshot it
 *    holds under one of the client's fold keys — and from then on leaves out of the
 *    subscription's `entries` pages every entry of a snapshotted entity at or below the
 *    snapshot's version; cursors pass them as they pass entries outside the scope (invariant 3).
 *    Every other entry comes as without bootstrap, so snapshot + later entries is the whole
 *    entity, under concurrent appends too: the log below a snapshot's version never changes. A
 *    client that resubscribes before it saw `live` sends `bootstrap` again with its cursors.
 * 7. `snapshots` pages count against credit like `entries` pages (invariant 4).
 */
import type { Data, Entry, RefusalCode, StoredEntry } from '@ledgerline/core'
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
  /**
   * Earlier clientIds of this database (restore recovery moved it off them), most recent last,
   * at most `HELLO_CLIENT_IDS_MAX`; the welcome answers their high-water marks. Optional: added
   * within protocol 2 (a relay that does not know it ignores it).
   */
  readonly clientIds?: readonly string[] | undefined
}

/** One earlier clientId's high-water mark, as `welcome` answers it. */
export interface ClientSeqHigh {
  readonly clientId: string
  readonly high: number
}

/** What a token allows: read and write patterns over entity names within one tenant. */
export interface Grants {
  readonly read: readonly string[]
  readonly write: readonly string[]
  /**
   * Store hubs only: entity patterns the hub may forward other devices' entries for (each under
   * the device's own clientId and subject, see `PushMessage.subjects`). Absent for devices.
   */
  readonly forward?: readonly string[] | undefined
}

/** Which kind of relay a client talks to. */
export type RelayRole = 'head_office' | 'hub'

/** A store hub's link to head office, as the hub last saw it. */
export interface UpstreamState {
  readonly connected: boolean
  /** When the link last changed state, ms since the epoch (hub clock). */
  readonly since: number
}

/**
 * Which server log a relay serves: `id` is made when the log is created; `generation` starts at 1
 * and is raised by an operator after the log is restored from a backup or replaced. A client
 * that meets another id or a higher generation recovers (its cursors and positions belong to
 * another history).
 */
export interface LogIdentity {
  readonly id: string
  readonly generation: number
}

/** What a relay accepts from this connection; clients size their batches from it. */
export interface RelayLimitsAdvertised {
  /** Most entries in one `push`. */
  readonly pushEntriesMax: number
  /** Most bytes of one encoded `push` frame. */
  readonly pushBytesMax: number
  /** Most bytes of one entry's encoded `data`. */
  readonly entryDataBytesMax: number
  /** Most `push` batches unacked at once. */
  readonly pushInFlightMax: number
}

/** Relay → client: the hello was accepted. */
export interface WelcomeMessage {
  readonly type: 'welcome'
  readonly protocol: number
  readonly tenant: string
  /** The token subject this connection acts as; the hello's clientId is bound to it. */
  readonly subject: string
  readonly grants: Grants
  /**
   * `hub`: a store hub in front of head office (invariant 5); `head_office`: the log itself. A
   * welcome without it (from a relay of protocol 2) decodes as `head_office`.
   */
  readonly role: RelayRole
  /** Hubs only: the link to head office now. */
  readonly upstream?: UpstreamState | undefined
  /** Head office's log (a hub names the log it forwards to, never one of its own). */
  readonly log: LogIdentity
  readonly limits: RelayLimitsAdvertised
  /** The server log's partition count (fixed). */
  readonly partitions: number
  /**
   * True when the relay keeps ledger snapshots: it answers `subscribe.bootstrap` and `fetch`
   * (invariant 6). Absent (older relays, store hubs): send neither.
   */
  readonly snapshots?: boolean | undefined
  /** Highest clientSeq of this client the log holds (its high-water mark); 0 if none. */
  readonly clientSeqHigh: number
  /**
   * The high-water marks of the hello's earlier `clientIds` that the log binds to this subject
   * or to no one, in the hello's order; another subject's are left out (nothing of them is
   * told). Absent when the hello named none, or from a relay that does not know the field.
   */
  readonly clientSeqHighs?: readonly ClientSeqHigh[] | undefined
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
  /**
   * Sent by store hubs only (a token with `grants.forward`): the token subject of each clientId
   * whose entries the push forwards, as the hub verified it. Head office binds and checks
   * clientIds against these subjects instead of the hub's own.
   */
  readonly subjects?: Readonly<Record<string, string>> | undefined
}

/**
 * Where a correction the log appended after an entry landed. The correction itself travels on
 * the subscription like every entry; an ack only points at it (so an ack stays small).
 */
export interface CorrectionRef {
  readonly id: string
  readonly entity: string
  readonly kind: string
  readonly version: number
  readonly partition: number
  readonly offset: number
}

/** Why a refused entry was refused: a decision, recorded and answered the same way forever. */
export type AckRefusalCode = Exclude<RefusalCode, 'unknown_type'> | 'forbidden' | 'seq_gap'

/**
 * Why the relay could not decide an entry yet. Not a decision: the relay is behind (it has no
 * type for the entity yet) or the entry's clock is too far ahead of the relay's. The clientSeq
 * is used up, later entries go on, and a resend is decided again.
 */
export type DeferralCode = 'unknown_type' | 'clock_ahead'

export type AckResult =
  | {
      readonly id: string
      /** `appended` now, or `duplicate`: appended before; the original positions are returned. */
      readonly status: 'appended' | 'duplicate'
      readonly version: number
      readonly partition: number
      readonly offset: number
      readonly committedAt: number
      /** Corrections the log appended right after this entry, those the pusher may read. */
      readonly corrections: readonly CorrectionRef[]
    }
  | {
      readonly id: string
      /** A decision, recorded (except `seq_gap`, which asks for a resend in order). */
      readonly status: 'refused'
      readonly code: AckRefusalCode
      readonly reason: string
      /** The entity's version at refusal, for a client to rebase a request. */
      readonly head: number
    }
  | {
      readonly id: string
      /**
       * The log holds another entry under this id (its content differs): this device reused a
       * clientSeq (a restored or copied database). Nothing is recorded; the client re-sends the
       * entry under a new clientId and never drops it.
       */
      readonly status: 'id_conflict'
      readonly reason: string
    }
  | {
      readonly id: string
      /**
       * Store hubs only: the entry is durable in the store and on its way to head office, which
       * has not confirmed it yet. Not a decision: the client keeps its outbox record (the hub
       * may be lost with its disk) until head office's own result reaches it.
       */
      readonly status: 'stored'
    }
  | {
      readonly id: string
      /** Not decided yet (see `DeferralCode`); send again after `retryAfterMs`. */
      readonly status: 'deferred'
      readonly code: DeferralCode
      readonly reason: string
      readonly retryAfterMs: number
    }

/**
 * Relay → client: the outcome of entries of a push, after they are durable, in one or more parts
 * (invariant 2).
 */
export interface AckMessage {
  readonly type: 'ack'
  readonly batch: number
  /** Index in the push of `results[0]`. */
  readonly first: number
  readonly results: readonly AckResult[]
  /** This part answers the push's last entry. */
  readonly done: boolean
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
  /** Start from ledger snapshots (invariant 6); absent: every entry of the scope. */
  readonly bootstrap?: BootstrapRequest | undefined
}

/** What a bootstrapping client can start from, and what it wants whole. */
export interface BootstrapRequest {
  /**
   * The fold keys (`type@version`, `foldKeyOf`) of the client's schema: a snapshot under any
   * other key is never sent (a changed reduce never starts from an old state).
   */
  readonly foldKeys: readonly string[]
  /**
   * The client's horizon: entities matching `pattern` whose snapshot covers an entry committed
   * at or after `since` (ms since the epoch) come whole, without a snapshot.
   */
  readonly whole: readonly HorizonRule[]
}

export interface HorizonRule {
  readonly pattern: string
  readonly since: number
}

/**
 * One entity's folded state through `version`, made by the relay from the log (derived data
 * beside the log, never an entry): the state after folding versions 1..`version` with the
 * reduce named by `foldKey`. `partition`/`offset`/`committedAt` are those of the entry at
 * `version`.
 */
export interface LedgerSnapshot {
  readonly entity: string
  readonly foldKey: string
  readonly version: number
  readonly partition: number
  readonly offset: number
  readonly committedAt: number
  readonly state: Data
}

/** Relay → client, bootstrap only: snapshots of the subscription's entities (invariant 6). */
export interface SnapshotsMessage {
  readonly type: 'snapshots'
  readonly sub: number
  readonly snapshots: readonly LedgerSnapshot[]
}

/**
 * Client → relay, only to a relay whose `welcome.snapshots` is true: the confirmed entries of
 * one entity below version `before` (history a bootstrap left on the server), answered by
 * `fetched` pages in version order. `req` is the client's number for the request.
 */
export interface FetchMessage {
  readonly type: 'fetch'
  readonly req: number
  readonly entity: string
  readonly before: number
}

/**
 * Relay → client: a page of a `fetch`'s answer, in version order; `done` on the last. When the
 * operator dropped history below version `dropped` (retention), the entries start there and
 * the older ones are gone for good (exported by the operator, never silently missing).
 */
export interface FetchedMessage {
  readonly type: 'fetched'
  readonly req: number
  readonly entity: string
  readonly entries: readonly StoredEntry[]
  readonly done: boolean
  readonly dropped?: number | undefined
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

/** Client → relay: use this token from now on (same tenant and subject), before the old expires. */
export interface RenewMessage {
  readonly type: 'renew'
  readonly token: string
}

/** Relay → client: the renewed token is in force. */
export interface RenewedMessage {
  readonly type: 'renewed'
  readonly expiresAt: number
  readonly grants: Grants
}

/**
 * Relay → client, store hubs only: the *store* layer of a subscription — entries of other
 * devices in the scope that the hub holds and head office has not confirmed, in the hub's order
 * (invariant 5). `reset`: the layer starts again from this message (the first after a
 * subscribe, or after the hub lost track); otherwise `entries` are added after the ones before
 * and `removed` ids leave the layer (head office confirmed them, and they come in `entries`
 * pages, or refused them).
 */
export interface StoreMessage {
  readonly type: 'store'
  readonly sub: number
  readonly entries: readonly Entry[]
  readonly removed: readonly string[]
  readonly reset: boolean
}

/** Relay → client, store hubs only: the hub's link to head office changed. */
export interface UpstreamMessage {
  readonly type: 'upstream'
  readonly connected: boolean
  readonly since: number
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
  /**
   * With `client_taken`: the log that answered (as `welcome.log`). A client that last saw
   * another log (restored or replaced since) can tell a binding that log lost from one it
   * never had. Absent from older relays and other kinds.
   */
  readonly log?: LogIdentity | undefined
}

export type ClientMessage =
  | HelloMessage
  | PushMessage
  | SubscribeMessage
  | FetchMessage
  | CreditMessage
  | RenewMessage
  | PingMessage
  | PongMessage
export type RelayMessage =
  | WelcomeMessage
  | AckMessage
  | EntriesMessage
  | SnapshotsMessage
  | FetchedMessage
  | RenewedMessage
  | StoreMessage
  | UpstreamMessage
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
  'snapshots',
  'fetch',
  'fetched',
  'credit',
  'renew',
  'renewed',
  'store',
  'upstream',
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
export const isSnapshotsMessage = (m: Message): m is SnapshotsMessage => m.type === 'snapshots'
export const isFetchMessage = (m: Message): m is FetchMessage => m.type === 'fetch'
export const isFetchedMessage = (m: Message): m is FetchedMessage => m.type === 'fetched'
export const isCreditMessage = (m: Message): m is CreditMessage => m.type === 'credit'
export const isRenewMessage = (m: Message): m is RenewMessage => m.type === 'renew'
export const isRenewedMessage = (m: Message): m is RenewedMessage => m.type === 'renewed'
export const isStoreMessage = (m: Message): m is StoreMessage => m.type === 'store'
export const isUpstreamMessage = (m: Message): m is UpstreamMessage => m.type === 'upstream'
export const isPingMessage = (m: Message): m is PingMessage => m.type === 'ping'
export const isPongMessage = (m: Message): m is PongMessage => m.type === 'pong'
export const isErrorMessage = (m: Message): m is ErrorMessage => m.type === 'error'

/**
 * Error kinds a relay sends in an `error` message, and close codes it closes sockets with.
 * A closed set: clients switch over it, so adding one is a protocol change.
 *
 * Each kind says whether the client should retry and how long it should back off at least.
 */

/** The frame could not be decoded or a field is wrong. The connection is closed; fix the client. */
export const bad_message = 'bad_message'
export type bad_message = typeof bad_message
/** The client speaks a protocol version the relay does not. Do not retry without upgrading. */
export const unsupported_protocol = 'unsupported_protocol'
export type unsupported_protocol = typeof unsupported_protocol
/** A message other than `hello` arrived before `hello`. */
export const hello_required = 'hello_required'
export type hello_required = typeof hello_required
/** The token is missing, malformed, badly signed, for another audience/issuer, or not yet valid. Retry only with a new token. */
export const unauthorized = 'unauthorized'
export type unauthorized = typeof unauthorized
/** The token expired. Get a fresh token and reconnect at once. */
export const token_expired = 'token_expired'
export type token_expired = typeof token_expired
/** A push or subscription outside the token's grants. Not retried; the entries stay refused. */
export const forbidden = 'forbidden'
export type forbidden = typeof forbidden
/**
 * The hello's clientId belongs to another token subject of the tenant (the first that appended
 * under it). Nothing is recorded. Do not retry with this clientId: a device that changes users
 * opens the database of the new user (one clientId per subject and database).
 */
export const client_taken = 'client_taken'
export type client_taken = typeof client_taken
/** Too many messages or bytes per second. Back off, then retry. */
export const rate_limited = 'rate_limited'
export type rate_limited = typeof rate_limited
/** A frame, batch or entry over a named limit. Split and retry. */
export const too_large = 'too_large'
export type too_large = typeof too_large
/**
 * The relay or its log is overloaded or unavailable for now (connection caps, the commit queue
 * is full). Back off at least `backoffMsMin` (the relay's hint, with jitter), then retry.
 */
export const overloaded = 'overloaded'
export type overloaded = typeof overloaded
/** The socket could not keep up with the entries sent to it. Reconnect and resume from the cursor. */
export const slow_consumer = 'slow_consumer'
export type slow_consumer = typeof slow_consumer
/** The relay is shutting down. Reconnect soon (to it or to another relay). */
export const shutting_down = 'shutting_down'
export type shutting_down = typeof shutting_down
/**
 * The subscription's cursors point below history the operator dropped (retention): the relay
 * no longer holds those entries. Reconnect at once and subscribe with `bootstrap` (snapshots
 * stand for the dropped history); never a silent gap. A reader that cannot bootstrap (the relay
 * offers no snapshots, or its bootstraps keep meeting this) must not subscribe again in a loop:
 * the client stops subscribing after a bounded number (`sync.ts` invariant 12), a store hub's
 * mirror after the first (`upstream-link.ts` invariant 9); pushes go on.
 */
export const history_dropped = 'history_dropped'
export type history_dropped = typeof history_dropped
/** An unexpected failure in the relay. Back off, then retry; nothing acked is lost. */
export const internal = 'internal'
export type internal = typeof internal

export type ErrorKind =
  | bad_message
  | unsupported_protocol
  | hello_required
  | unauthorized
  | token_expired
  | forbidden
  | client_taken
  | rate_limited
  | too_large
  | overloaded
  | slow_consumer
  | shutting_down
  | history_dropped
  | internal

export interface ErrorKindInfo {
  /** Whether reconnecting (after the backoff) can succeed without a change on the client. */
  readonly retry: boolean
  /** Least time to wait before reconnecting, in ms. */
  readonly backoffMsMin: number
  /** WebSocket close code the relay uses when it closes for this kind. */
  readonly closeCode: number
}

export const ERROR_KINDS: Readonly<Record<ErrorKind, ErrorKindInfo>> = {
  bad_message: { retry: false, backoffMsMin: 5_000, closeCode: 4400 },
  unsupported_protocol: { retry: false, backoffMsMin: 60_000, closeCode: 4426 },
  hello_required: { retry: true, backoffMsMin: 1_000, closeCode: 4401 },
  unauthorized: { retry: false, backoffMsMin: 5_000, closeCode: 4401 },
  token_expired: { retry: true, backoffMsMin: 0, closeCode: 4403 },
  forbidden: { retry: false, backoffMsMin: 5_000, closeCode: 4403 },
  client_taken: { retry: false, backoffMsMin: 60_000, closeCode: 4409 },
  rate_limited: { retry: true, backoffMsMin: 1_000, closeCode: 4429 },
  too_large: { retry: false, backoffMsMin: 1_000, closeCode: 4413 },
  overloaded: { retry: true, backoffMsMin: 2_000, closeCode: 4503 },
  slow_consumer: { retry: true, backoffMsMin: 1_000, closeCode: 4408 },
  shutting_down: { retry: true, backoffMsMin: 500, closeCode: 1001 },
  history_dropped: { retry: true, backoffMsMin: 0, closeCode: 4410 },
  internal: { retry: true, backoffMsMin: 2_000, closeCode: 1011 },
}

/** Close codes the relay uses; `ERROR_KINDS[kind].closeCode` maps kinds to these. */
export const CLOSE_CODES = {
  /** Going away: relay shutdown. */
  shuttingDown: 1001,
  /**
   * Policy violation: the `ws` library closes with it when a message arrives in too many
   * fragments or buffered chunks, before the relay sees the message.
   */
  policyViolation: 1008,
  /** A frame over `FRAME_BYTES_MAX` (the `ws` library closes with it). */
  frameTooLarge: 1009,
  internal: 1011,
  badMessage: 4400,
  /** No valid `hello` in time, or an invalid token. */
  unauthorized: 4401,
  /** The token expired (the client refreshes and reconnects) or a grant was violated. */
  tokenExpired: 4403,
  /** The clientId belongs to another subject. */
  clientTaken: 4409,
  slowConsumer: 4408,
  tooLarge: 4413,
  /** Gone: the cursors point below dropped history. */
  historyDropped: 4410,
  unsupportedProtocol: 4426,
  rateLimited: 4429,
  overloaded: 4503,
} as const

export function isErrorKind(value: unknown): value is ErrorKind {
  return typeof value === 'string' && Object.hasOwn(ERROR_KINDS, value)
}

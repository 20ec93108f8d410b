/**
 * One WebSocket connection of the sync endpoint: the protocol state machine of `hello`, `push`,
 * `subscribe` and `credit`, and the fan-out of committed entries to the connection's
 * subscriptions.
 *
 *   open ─► awaiting hello ─hello─► checking token ─valid─► ready ─► closed
 *      │ (auth timeout)                  │ (invalid)            │ (token expiry, bad frame,
 *      └──────────► error + close ◄──────┘                      │  slow consumer, shutdown)
 *                                                               ▼
 *   push ─► grants checked per entry ─► store.append ─► ack (after durable)
 *   subscribe ─► catch-up pages from cursors ─► live marker page ─► live pages on each commit
 *
 * Terms: a *subscription* is a scope with per-partition cursors and credit; its reading and
 * paging live in `subscriptions.ts` (invariants 2–4), the rest of the protocol here.
 *
 * Invariants:
 * 1. Nothing but `hello` is processed before `welcome`; frames that arrive while the token is
 *    being checked wait (at most `helloBacklogMax`) and are processed in order after it.
 * 2. Every entry sent is of the token's tenant and matches the subscription's scope and the read
 *    grants; every other entry is skipped (cursors still pass it). Nothing else ever leaves.
 * 3. Per subscription and partition, entries are sent in offset order without gaps: one pump at
 *    a time reads from the cursor, and a partition stops being dirty only if no commit touched
 *    it during the read and the read reached the head. A tail answers as the log would from a
 *    read started after every commit the subscription was told of (`fanout-tail.ts` 2–3).
 * 4. At most as many `entries` pages are sent as the client granted, each at most
 *    `pageEntriesMax` entries and `pageBytesMax` bytes (one bigger entry goes alone); a socket whose
 *    `bufferedAmount` passes `bufferedBytesMax` is closed as a slow consumer.
 * 5. Acks follow pushes in order, each after the log made its results durable. A push the log
 *    rejects gets no ack: the connection closes (`overloaded` when the commit queue is full,
 *    with the kind's backoff as retry hint; `internal` otherwise), and the client resends.
 * 6. A bad frame closes only this connection (4400); nothing it sent after is processed.
 * 7. On shutdown, appends in flight finish and are acked before the socket closes with 1001.
 */
import { isClientId, LedgerError, matchesAny } from '@ledgerline/core'
import type { Entry } from '@ledgerline/core'
import {
  decodeMessage,
  encodeMessage,
  ERROR_KINDS,
  isProtocolError,
  MESSAGE_LENGTH_MAX,
  PROTOCOL_VERSION,
  PROTOCOL_VERSION_MIN,
  PUSH_IN_FLIGHT_MAX,
  TOKEN_LENGTH_MAX,
} from '@ledgerline/protocol'
import type { ErrorKind, Grants, Message, RelayMessage } from '@ledgerline/protocol'
import type { Logger } from 'pino'
import type { TokenVerifier } from './auth.ts'
import { encodeEntriesPage } from './fanout-tail.ts'
import type { EncodedEntry, FanoutTails } from './fanout-tail.ts'
import { BadMessage, safeInt, Subscriptions } from './subscriptions.ts'
import type { RelayLimits } from './limits.ts'
import { isLogStoreError } from './log-store.ts'
import type { AppendItem, LogStore } from './log-store.ts'
import type { RelayMetrics } from './metrics.ts'
import { RelayError } from './relay-error.ts'
import { NODE_TIMERS } from './timers.ts'
import type { RelayTimers, TimerHandle } from './timers.ts'

export interface SessionContext {
  readonly store: LogStore
  /** The relay's shared tails; told of every commit before the sessions are. */
  readonly tails: FanoutTails
  readonly verify: TokenVerifier
  readonly limits: RelayLimits
  readonly metrics: RelayMetrics
  readonly logger: Logger
  /** Clock and timers; Node's by default (`timers.ts`). */
  readonly timers?: RelayTimers | undefined
}

/**
 * The part of `ws`'s WebSocket a session uses. `ws` fits; so does a simulated socket, which is
 * how the deterministic simulation (`@ledgerline/sim`) runs the real session. What it must
 * guarantee is what `ws` does: `message` and `close` come from the event loop, never from inside
 * `send` or `close`; `close` comes once, last.
 */
export interface SessionSocket {
  readonly readyState: number
  /** The `readyState` of an open socket. */
  readonly OPEN: number
  /** Bytes queued and not yet handed to the network. */
  readonly bufferedAmount: number
  send(data: Uint8Array): void
  close(code?: number, reason?: string): void
  /** Cuts the connection at once, without the closing handshake. */
  terminate(): void
  ping(): void
  on(event: 'message', listener: (data: Buffer, isBinary: boolean) => void): unknown
  on(event: 'pong', listener: () => void): unknown
  on(event: 'error', listener: (error: Error) => void): unknown
  once(event: 'close', listener: () => void): unknown
}

type State = 'awaiting_hello' | 'checking_token' | 'ready' | 'closed'

/**
 * Wires one accepted socket to the log. The relay keeps the returned session to tell it about
 * commits, heartbeats and shutdown.
 *
 * @example
 * wss.on('connection', (ws) => sessions.add(createSession(ws, context)))
 */
export function createSession(ws: SessionSocket, context: SessionContext): Session {
  return new Session(ws, context)
}

export class Session {
  readonly #ws: SessionSocket
  readonly #ctx: SessionContext
  #state: State = 'awaiting_hello'
  #backlog: { data: Buffer; isBinary: boolean }[] = []
  #tenant = ''
  #grants: Grants = { read: [], write: [] }
  #clientId = ''
  readonly #subs: Subscriptions
  #inFlight = new Set<Promise<void>>()
  readonly #timers: RelayTimers
  #tokens: number
  #refilledAt: number
  #alive = true
  #draining = false
  #authTimer: TimerHandle | undefined
  #expiryTimer: TimerHandle | undefined
  #closeTimer: TimerHandle | undefined
  readonly closed: Promise<void>

  constructor(ws: SessionSocket, context: SessionContext) {
    this.#ws = ws
    this.#ctx = context
    this.#timers = context.timers ?? NODE_TIMERS
    this.#refilledAt = this.#timers.now()
    this.#tokens = context.limits.rateMessagesBurst
    this.#subs = new Subscriptions(context, {
      tenant: () => this.#tenant,
      grants: () => this.#grants,
      isReady: () => this.#state === 'ready',
      bufferedAmount: () => this.#ws.bufferedAmount,
      sendEntries: (sub, page, cursors, live) => this.#sendEntries(sub, page, cursors, live),
      sendError: (kind, message) => this.#sendError(kind, message),
      fail: (kind, message) => this.#fail(kind, message),
    })
    context.metrics.connectionOpened()
    this.closed = new Promise((resolve) => {
      ws.once('close', () => {
        this.#onClose()
        resolve()
      })
    })
    ws.on('message', (data, isBinary) => this.#onFrame(data, isBinary))
    ws.on('pong', () => {
      this.#alive = true
    })
    ws.on('error', (error) => {
      // `ws` reports protocol violations (e.g. a frame over maxPayload) here and closes itself.
      context.logger.info({ err: error }, 'socket error')
    })
    this.#authTimer = this.#timers.set(() => {
      if (this.#state === 'awaiting_hello' || this.#state === 'checking_token') {
        this.#fail('unauthorized', `no valid hello within ${context.limits.authTimeoutMs} ms`)
      }
    }, context.limits.authTimeoutMs)
  }

  /** The partitions of a commit: wake the subscriptions (invariant 3). */
  onCommit(partitions: readonly number[]): void {
    if (this.#state !== 'ready') return
    this.#subs.onCommit(partitions)
  }

  /** Heartbeat: terminates a socket that missed the previous ping, then pings again. */
  heartbeat(): void {
    if (this.#state === 'closed') return
    if (!this.#alive) {
      this.#ctx.logger.info('terminating a socket that missed its pong')
      this.#ws.terminate()
      return
    }
    this.#alive = false
    try {
      this.#ws.ping()
    } catch {
      // The socket is already closing; its close event cleans up.
    }
  }

  /** Shutdown step 1: stop taking frames, wait for appends in flight (they are acked). */
  async drain(): Promise<void> {
    this.#draining = true
    while (this.#inFlight.size > 0) await Promise.allSettled(this.#inFlight)
  }

  /** Shutdown step 2: tell the client and close with 1001 (invariant 7). */
  shutDown(): void {
    this.#fail('shutting_down', 'the relay is shutting down')
  }

  terminate(): void {
    this.#ws.terminate()
  }

  // -- frames ---------------------------------------------------------------------------------

  /** `replayed`: a backlog frame, already counted and rate-limited when it arrived. */
  #onFrame(data: Buffer, isBinary: boolean, replayed = false): void {
    if (this.#state === 'closed' || this.#draining) return
    this.#alive = true
    if (!replayed) this.#ctx.metrics.bytesIn(data.byteLength)
    if (!replayed && !this.#takeToken()) {
      this.#fail('rate_limited', `more than ${this.#ctx.limits.rateMessagesPerS} messages/s`)
      return
    }
    if (this.#state === 'checking_token') {
      if (this.#backlog.length >= this.#ctx.limits.helloBacklogMax) {
        this.#fail('bad_message', 'too many frames before welcome')
        return
      }
      this.#backlog.push({ data, isBinary })
      return
    }
    if (!isBinary) {
      this.#fail('bad_message', 'frames must be binary MessagePack')
      return
    }
    let message: Message
    try {
      message = decodeMessage(new Uint8Array(data.buffer, data.byteOffset, data.byteLength))
    } catch (error) {
      // The codec says which: a limit that splitting satisfies (too_large) or a bad field.
      const kind =
        isProtocolError(error) && error.kind === 'too_large' ? 'too_large' : 'bad_message'
      this.#fail(kind, error instanceof Error ? error.message : 'undecodable frame')
      return
    }
    try {
      this.#dispatch(message)
    } catch (error) {
      if (error instanceof BadMessage || error instanceof LedgerError) {
        this.#fail('bad_message', error.message)
        return
      }
      this.#ctx.logger.error({ err: error }, 'unexpected failure handling a frame')
      this.#fail('internal', 'unexpected relay failure')
    }
  }

  #dispatch(message: Message): void {
    if (typeof message !== 'object' || message === null || typeof message.type !== 'string') {
      throw new BadMessage('a message must be a map with a type')
    }
    if (this.#state === 'awaiting_hello') {
      if (message.type !== 'hello') {
        this.#fail('hello_required', `'${message.type}' before hello`)
        return
      }
      this.#onHello(message as unknown as Record<string, unknown>)
      return
    }
    const m = message as unknown as Record<string, unknown>
    switch (message.type) {
      case 'push':
        return this.#onPush(m)
      case 'subscribe':
        return this.#subs.subscribe(m)
      case 'credit':
        return this.#subs.credit(m)
      case 'ping':
        return this.#send({ type: 'pong', t: safeInt(m.t, 't') })
      case 'pong':
        return
      case 'hello':
        throw new BadMessage('hello after welcome')
      default:
        throw new BadMessage(`unknown message type '${String(message.type).slice(0, 32)}'`)
    }
  }

  // -- hello ----------------------------------------------------------------------------------

  #onHello(m: Record<string, unknown>): void {
    if (
      typeof m.protocol !== 'number' ||
      m.protocol < PROTOCOL_VERSION_MIN ||
      m.protocol > PROTOCOL_VERSION
    ) {
      this.#fail(
        'unsupported_protocol',
        `protocol ${String(m.protocol)} not spoken; this relay speaks ${PROTOCOL_VERSION_MIN}..${PROTOCOL_VERSION}`,
      )
      return
    }
    if (!isClientId(m.clientId)) throw new BadMessage('hello clientId must be 32 hex digits')
    if (m.token === undefined || m.token === '') {
      this.#fail('unauthorized', 'token missing')
      return
    }
    if (typeof m.token !== 'string' || m.token.length > TOKEN_LENGTH_MAX) {
      this.#fail('unauthorized', 'token malformed')
      return
    }
    const clientId = m.clientId
    this.#state = 'checking_token'
    void this.#ctx
      .verify(m.token)
      .then(async (check) => {
        if (this.#state !== 'checking_token') return
        if (check._tag === 'invalid') {
          this.#fail(check.kind, check.message)
          return
        }
        const { claims } = check
        const high = await this.#ctx.store.clientHigh(claims.tenant, clientId)
        if (this.#state !== 'checking_token') return
        this.#tenant = claims.tenant
        this.#grants = claims.grants
        this.#clientId = clientId
        this.#state = 'ready'
        this.#timers.clear(this.#authTimer)
        this.#armExpiry(claims.expiresAt)
        this.#send({
          type: 'welcome',
          protocol: PROTOCOL_VERSION,
          tenant: claims.tenant,
          grants: claims.grants,
          partitions: this.#ctx.store.partitions,
          clientSeqHigh: high,
          serverTime: this.#timers.now(),
          expiresAt: claims.expiresAt,
        })
        const backlog = this.#backlog
        this.#backlog = []
        for (const frame of backlog) {
          if (this.#state !== 'ready') break
          this.#onFrame(frame.data, frame.isBinary, true)
        }
      })
      .catch((error: unknown) => {
        this.#ctx.logger.error({ err: error }, 'hello failed')
        this.#fail('internal', 'could not read the log')
      })
  }

  #armExpiry(expiresAt: number): void {
    const delay = expiresAt - this.#timers.now()
    // setTimeout holds at most 2^31-1 ms; re-arm for tokens that live longer than ~24 days.
    this.#expiryTimer = this.#timers.set(
      () => {
        if (this.#timers.now() >= expiresAt) this.#fail('token_expired', 'token expired')
        else this.#armExpiry(expiresAt)
      },
      Math.max(0, Math.min(delay, 2 ** 31 - 1)),
    )
  }

  // -- push -----------------------------------------------------------------------------------

  #onPush(m: Record<string, unknown>): void {
    const batch = safeInt(m.batch, 'batch')
    if (!Array.isArray(m.entries)) throw new BadMessage('push entries must be a list')
    if (m.entries.length > this.#ctx.limits.pushEntriesMax) {
      this.#fail(
        'too_large',
        `push of ${m.entries.length} entries; at most ${this.#ctx.limits.pushEntriesMax}`,
      )
      return
    }
    if (this.#inFlight.size >= PUSH_IN_FLIGHT_MAX) {
      this.#fail('rate_limited', `more than ${PUSH_IN_FLIGHT_MAX} pushes in flight`)
      return
    }
    const items: AppendItem[] = []
    // `decodeMessage` validated every entry fully (`validateMessage` → core's `validateEntry`)
    // and copied it into a fresh object: validating again here only costs time per entry.
    for (const entry of m.entries as Entry[]) {
      if (entry.clientId !== this.#clientId) {
        // Not recorded: another client's clientSeq must never be used up by this connection.
        throw new BadMessage(`entry ${entry.id} is not of this connection's client`)
      }
      if (entry.tenant !== this.#tenant) {
        items.push({ entry, refuse: { code: 'forbidden', reason: 'entry of another tenant' } })
      } else if (!matchesAny(this.#grants.write, entry.entity)) {
        items.push({
          entry,
          refuse: { code: 'forbidden', reason: `no write grant for ${entry.entity}` },
        })
      } else {
        items.push({ entry })
      }
    }
    const started = performance.now()
    const done = this.#ctx.store.append(this.#tenant, items).then(
      (results) => {
        this.#ctx.metrics.appended(results, performance.now() - started)
        this.#send({ type: 'ack', batch, results })
      },
      (error: unknown) => {
        if (isLogStoreError(error, 'overloaded')) {
          // Nothing of the push was recorded: the client backs off (`backoffMsMin` of the
          // error is the retry hint) and resends the same entries.
          this.#ctx.metrics.overloaded()
          this.#fail('overloaded', `the log is overloaded, retry later: ${error.message}`)
          return
        }
        if (
          isLogStoreError(error, 'closed') ||
          (error instanceof RelayError && error.kind === 'store_closed')
        ) {
          this.#fail('shutting_down', 'the log is closing')
          return
        }
        this.#ctx.logger.error({ err: error }, 'append failed')
        this.#fail('internal', 'the log could not append; resend after reconnecting')
      },
    )
    this.#inFlight.add(done)
    void done.finally(() => this.#inFlight.delete(done))
  }

  // -- sending and closing --------------------------------------------------------------------

  #send(message: RelayMessage): void {
    if (this.#ws.readyState !== this.#ws.OPEN) return
    let bytes: Uint8Array
    try {
      bytes = encodeMessage(message)
    } catch (error) {
      // Only an ack whose corrections pass FRAME_BYTES_MAX gets here; the client resends and
      // gets the same answer, so this is a relay limit to raise, reported loudly.
      this.#ctx.logger.error({ err: error, type: message.type }, 'cannot encode a message')
      if (message.type !== 'error') this.#fail('internal', `cannot send ${message.type}`)
      return
    }
    this.#ctx.metrics.bytesOut(bytes.byteLength)
    this.#ws.send(bytes)
  }

  /** An `entries` page, spliced from the entries' shared bytes (`encodeEntriesPage`). */
  #sendEntries(
    sub: number,
    page: readonly EncodedEntry[],
    cursors: Record<number, number>,
    live: boolean,
  ): void {
    if (this.#ws.readyState !== this.#ws.OPEN) return
    let bytes: Uint8Array
    try {
      bytes = encodeEntriesPage(sub, page, cursors, live)
    } catch (error) {
      this.#ctx.logger.error({ err: error, type: 'entries' }, 'cannot encode a message')
      this.#fail('internal', 'cannot send entries')
      return
    }
    this.#ctx.metrics.bytesOut(bytes.byteLength)
    this.#ws.send(bytes)
  }

  #sendError(kind: ErrorKind, message: string): void {
    this.#send({
      type: 'error',
      kind,
      message: message.slice(0, MESSAGE_LENGTH_MAX),
      backoffMsMin: ERROR_KINDS[kind].backoffMsMin,
    })
  }

  /** Sends the error, closes with the kind's code, and cuts the socket if it will not close. */
  #fail(kind: ErrorKind, message: string): void {
    if (this.#state === 'closed') return
    this.#ctx.logger.info({ kind, message, tenant: this.#tenant || undefined }, 'closing socket')
    this.#sendError(kind, message)
    this.#state = 'closed'
    this.#clearTimers()
    try {
      this.#ws.close(ERROR_KINDS[kind].closeCode, kind)
    } catch {
      this.#ws.terminate()
    }
    this.#closeTimer = this.#timers.set(
      () => this.#ws.terminate(),
      this.#ctx.limits.closeHandshakeTimeoutMs,
      { unref: true },
    )
  }

  #onClose(): void {
    if (this.#state !== 'closed') this.#state = 'closed'
    this.#clearTimers()
    this.#timers.clear(this.#closeTimer)
    this.#subs.clear()
    this.#backlog = []
    this.#ctx.metrics.connectionClosed()
  }

  #clearTimers(): void {
    this.#timers.clear(this.#authTimer)
    this.#timers.clear(this.#expiryTimer)
  }

  #takeToken(): boolean {
    const now = this.#timers.now()
    const { rateMessagesPerS, rateMessagesBurst } = this.#ctx.limits
    this.#tokens = Math.min(
      rateMessagesBurst,
      this.#tokens + ((now - this.#refilledAt) * rateMessagesPerS) / 1000,
    )
    this.#refilledAt = now
    if (this.#tokens < 1) return false
    this.#tokens--
    return true
  }
}

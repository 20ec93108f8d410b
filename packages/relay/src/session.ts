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
 * Terms: a *subscription* is a scope with per-partition cursors and credit. The session owns the
 * socket, its state and the frames; three parts own the rest and state their share of the
 * invariants below in their own headers: `session-auth.ts` the identity (`hello`, `renew`,
 * expiry; 1, 8, 9), `session-push.ts` the appends in flight and their acks (5, 7),
 * `subscriptions.ts` the reading and paging (2–4), `session-send.ts` the frames sent and the
 * slow-consumer check (4).
 *
 * Invariants:
 * 1. Nothing but `hello` is processed before `welcome`; frames that arrive while the token is
 *    being checked wait (at most `helloBacklogMax` frames and `helloBacklogBytesMax` bytes) and
 *    are processed in order after it. Until `welcome` no frame may be larger than
 *    `preHelloFrameBytesMax`: the socket is closed as soon as a frame header announces more.
 * 2. Every entry sent is of the token's tenant and matches the subscription's scope and the read
 *    grants; every other entry is skipped (cursors still pass it). Nothing else ever leaves.
 * 3. Per subscription and partition, entries are sent in offset order without gaps: one pump at
 *    a time reads from the cursor, and a partition stops being dirty only if no commit touched
 *    it during the read and the read reached the head. A tail answers as the log would from a
 *    read started after every commit the subscription was told of (`fanout-tail.ts` 2–3).
 * 4. At most as many `entries` pages are sent as the client granted, each at most
 *    `pageEntriesMax` entries and `pageBytesMax` bytes (one bigger entry goes alone). Every frame
 *    counts towards the socket's unsent bytes, acks and pages alike: a socket whose
 *    `bufferedAmount` passes `bufferedBytesMax` is closed as a slow consumer, and takes no push.
 * 5. Acks follow pushes in order, each after the log made it durable; a push refused as a whole
 *    closes the connection and records nothing (`session-push.ts`).
 * 6. A bad frame closes only this connection (4400); nothing it sent after is processed.
 * 7. On shutdown, appends in flight finish and are acked before the socket closes with 1001.
 * 8. A session acts for one (tenant, subject) for its whole life (`session-auth.ts`).
 * 9. A welcomed session holds a seat of its tenant (`session-auth.ts`, `relay-gates.ts`).
 * 10. `welcome.clientSeqHighs` answers only the hello's earlier clientIds the log binds to the
 *    token's subject or to no one (`session-auth.ts`): another subject's marks are never told.
 * 11. On a store hub, every subscription also gets its store layer in `store` messages, and
 *    every welcomed session an `upstream` message when the hub's link changes (`hub/hub.ts`); a
 *    scope is accepted only within what the hub's own read grant mirrors.
 * 12. On a store hub, a session welcomed with head office's log identity ends (`shutting_down`,
 *    retryable) when the hub's link is welcomed by another log (id or generation): the client
 *    connects again, is welcomed with the new identity and runs its log-change recovery, as it
 *    would connected to head office directly (`hub/hub-store.ts` invariant 4).
 * 12. Only a token with `grants.forward` pushes other clients' entries (`session-push.ts`).
 * 13–14. `fetch` (`session-fetch.ts`): read grants checked, `FETCH_IN_FLIGHT_MAX` per
 *    connection (`rate_limited` past it), `fetched` pages bounded like `entries` pages.
 */
import { LedgerError } from '@ledgerline/core'
import { decodeMessage, ERROR_KINDS, FRAME_BYTES_MAX, isProtocolError } from '@ledgerline/protocol'
import type {
  ErrorKind,
  Grants,
  LogIdentity,
  Message,
  RelayMessage,
  UpstreamState,
} from '@ledgerline/protocol'
import type { Logger } from 'pino'
import type { TokenVerifier } from './auth.ts'
import type { CommitQueue } from './commit-queue.ts'
import type { FanoutTails } from './fanout-tail.ts'
import type { SessionHub } from './hub/hub.ts'
import type { RelayLimits } from './limits.ts'
import type { LogStore } from './log-store.ts'
import type { RelayMetrics } from './metrics.ts'
import type { RelayGates, Seat } from './relay-gates.ts'
import { SessionAuth } from './session-auth.ts'
import { SessionFetches } from './session-fetch.ts'
import { SessionPushes } from './session-push.ts'
import { SessionSender } from './session-send.ts'
import { BadMessage, safeInt, Subscriptions } from './subscriptions.ts'
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
  /** The relay's connection caps (tenant seats). */
  readonly gates: RelayGates
  /** The relay's bounded, fair queue in front of the log (`commit-queue.ts`). */
  readonly commits: CommitQueue
  /** Set on a store hub (`hub/hub.ts`): role, upstream state, store layer. */
  readonly hub?: SessionHub | undefined
  /**
   * True when the relay keeps ledger snapshots (head office with a schema, on a store that
   * keeps them): `welcome.snapshots`, and `subscribe.bootstrap` and `fetch` are answered.
   */
  readonly bootstrap?: boolean | undefined
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
  once(event: 'close', listener: (code: number) => void): unknown
}

type State = 'awaiting_hello' | 'checking_token' | 'ready' | 'closed'

/**
 * Wires one accepted socket to the log. The relay keeps the returned session to tell it about
 * commits, heartbeats and shutdown.
 *
 * @example
 * wss.on('connection', (ws) => sessions.add(createSession(ws, context)))
 */
export function createSession(ws: SessionSocket, context: SessionContext, socket?: Seat): Session {
  return new Session(ws, context, socket)
}

export class Session {
  readonly #ws: SessionSocket
  readonly #ctx: SessionContext
  #state: State = 'awaiting_hello'
  #backlog: { data: Buffer; isBinary: boolean }[] = []
  #backlogBytes = 0
  readonly #socketSeat: Seat | undefined
  readonly #sender: SessionSender
  readonly #auth: SessionAuth
  readonly #pushes: SessionPushes
  readonly #subs: Subscriptions
  readonly #fetches: SessionFetches
  readonly #timers: RelayTimers
  #tokens: number
  #refilledAt: number
  #alive = true
  #draining = false
  #authTimer: TimerHandle | undefined
  #closeTimer: TimerHandle | undefined
  /** Why the session closed, for its `connection_closed` line; the client's, unless set. */
  #closeReason: { kind: string; message: string } | undefined
  readonly #openedAt: number
  /** A hub's store layer watchers, by subscription (invariant 11). */
  readonly #storeWatchers = new Map<number, () => void>()
  readonly closed: Promise<void>

  constructor(ws: SessionSocket, context: SessionContext, socket?: Seat) {
    this.#ws = ws
    this.#ctx = context
    this.#socketSeat = socket
    this.#timers = context.timers ?? NODE_TIMERS
    this.#openedAt = this.#timers.now()
    // Invariant 1: until welcome, `ws` refuses a frame as soon as its header is over the bound.
    setMaxPayload(ws, context.limits.preHelloFrameBytesMax)
    this.#refilledAt = this.#timers.now()
    this.#tokens = context.limits.rateMessagesBurst
    this.#sender = new SessionSender(ws, context, {
      fail: (kind, message) => this.#fail(kind, message),
    })
    this.#auth = new SessionAuth(context, this.#timers, {
      isChecking: () => this.#state === 'checking_token',
      isReady: () => this.#state === 'ready',
      startChecking: () => {
        this.#state = 'checking_token'
      },
      welcome: (message) => this.#welcome(message),
      send: (message) => this.#sender.send(message),
      fail: (kind, message) => this.#fail(kind, message),
      taken: (message, log) => this.#fail('client_taken', message, undefined, log),
      overloaded: (message) => this.#overloaded(message),
    })
    this.#pushes = new SessionPushes(context, this, {
      identity: () => this.#auth.identity,
      isSlow: () => this.#sender.isSlow(),
      sendBytes: (bytes) => this.#sender.sendBytes(bytes),
      fail: (kind, message) => this.#fail(kind, message),
      taken: (message) => this.#fail('client_taken', message, undefined, this.#auth.log),
      overloaded: (message) => this.#overloaded(message),
    })
    this.#subs = new Subscriptions(context, {
      tenant: () => this.#auth.identity.tenant,
      grants: () => this.#subscribable(),
      isReady: () => this.#state === 'ready',
      bufferedAmount: () => this.#ws.bufferedAmount,
      sendEntries: (sub, page, cursors, live) => this.#sender.sendEntries(sub, page, cursors, live),
      sendSnapshots: (sub, snapshots) => this.#sender.sendSnapshots(sub, snapshots),
      sendError: (kind, message) => this.#sender.sendError(kind, message),
      fail: (kind, message) => this.#fail(kind, message),
    })
    this.#fetches = new SessionFetches(context, {
      tenant: () => this.#auth.identity.tenant,
      grants: () => this.#subscribable(),
      isReady: () => this.#state === 'ready',
      send: (message) => {
        this.#sender.send(message)
        return this.#state === 'ready'
      },
      sendError: (kind, message) => this.#sender.sendError(kind, message),
      fail: (kind, message) => this.#fail(kind, message),
    })
    context.metrics.connectionOpened()
    this.closed = new Promise((resolve) => {
      ws.once('close', (code: number) => {
        this.#onClose(code)
        resolve()
      })
    })
    ws.on('message', (data, isBinary) => this.#onFrame(data, isBinary))
    ws.on('pong', () => {
      this.#alive = true
    })
    ws.on('error', (error) => {
      // `ws` reports protocol violations (e.g. a frame over maxPayload) here and closes itself.
      context.logger.info({ event: 'socket_error', err: error }, 'socket error')
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

  /** A store hub's link to head office changed: tell a welcomed client (invariant 11). */
  onUpstream(state: UpstreamState): void {
    if (this.#state !== 'ready') return
    const welcomed = this.#auth.log
    const now = this.#ctx.hub?.log()
    if (
      welcomed !== undefined &&
      now !== undefined &&
      (welcomed.id !== now.id || welcomed.generation !== now.generation)
    ) {
      // Invariant 12: head office's log changed under this session (restored, replaced); the
      // register must hello again to see the new `welcome.log` and run its log-change recovery.
      this.#fail('shutting_down', "head office's log changed: connect again")
      return
    }
    this.#sender.send({ type: 'upstream', connected: state.connected, since: state.since })
  }

  /** Heartbeat: terminates a socket that missed the previous ping, then pings again. */
  heartbeat(): void {
    if (this.#state === 'closed') return
    if (!this.#alive) {
      this.#closeReason = { kind: 'heartbeat_missed', message: 'no pong to the last ping' }
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
    await this.#pushes.drain()
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
    if (this.#state !== 'ready' && data.byteLength > this.#ctx.limits.preHelloFrameBytesMax) {
      // Where `ws` could not be told the bound (see `setMaxPayload`), the frame is refused here.
      this.#fail('too_large', `a frame of ${data.byteLength} bytes before welcome`)
      return
    }
    if (this.#state === 'checking_token') {
      const { helloBacklogMax, helloBacklogBytesMax } = this.#ctx.limits
      if (
        this.#backlog.length >= helloBacklogMax ||
        this.#backlogBytes + data.byteLength > helloBacklogBytesMax
      ) {
        this.#fail('bad_message', 'too many frames before welcome')
        return
      }
      this.#backlog.push({ data, isBinary })
      this.#backlogBytes += data.byteLength
      return
    }
    if (!isBinary) {
      this.#fail('bad_message', 'frames must be binary MessagePack')
      return
    }
    if (this.#state === 'ready' && this.#pushes.refusedUndecoded(data)) return
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
      this.#ctx.logger.error(
        { event: 'internal_error', err: error },
        'unexpected failure handling a frame',
      )
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
      this.#auth.hello(message as unknown as Record<string, unknown>)
      return
    }
    const m = message as unknown as Record<string, unknown>
    switch (message.type) {
      case 'push':
        return this.#pushes.push(m)
      case 'subscribe':
        if (this.#subs.subscribe(m)) this.#watchStore(m)
        return
      case 'credit':
        return this.#subs.credit(m)
      case 'fetch':
        return this.#fetches.fetch(m)
      case 'renew':
        return this.#auth.renew(m)
      case 'ping':
        return this.#sender.send({ type: 'pong', t: safeInt(m.t, 't') })
      case 'pong':
        return
      case 'hello':
        throw new BadMessage('hello after welcome')
      default:
        throw new BadMessage(`unknown message type '${String(message.type).slice(0, 32)}'`)
    }
  }

  /** The grants subscriptions are checked against; on a hub, within its mirror (invariant 11). */
  #subscribable(): Grants {
    const grants = this.#auth.identity.grants
    const hub = this.#ctx.hub
    return hub === undefined ? grants : { ...grants, read: hub.readable(grants.read) }
  }

  /** Invariant 11: a hub's subscription also gets its store layer (`hub/store-layer.ts`). */
  #watchStore(m: Record<string, unknown>): void {
    const hub = this.#ctx.hub
    if (hub === undefined || this.#state !== 'ready') return
    const sub = m.sub as number
    this.#storeWatchers.get(sub)?.()
    const { tenant, clientId } = this.#auth.identity
    this.#storeWatchers.set(
      sub,
      hub.watchStore({
        tenant,
        clientId,
        sub,
        // `subscribe` checked the scope's patterns; the layer filters by the read grants too.
        scope: m.scope as readonly string[],
        read: () => this.#auth.identity.grants.read,
        send: (message) => this.#sender.send(message),
      }),
    )
  }

  /** The identity is checked (`session-auth.ts`): ready, the full frame bound, the backlog. */
  #welcome(message: RelayMessage): void {
    this.#state = 'ready'
    const { tenant, subject, clientId } = this.#auth.identity
    this.#ctx.logger.info(
      { event: 'connection_opened', tenant, sub: subject, clientId },
      'connection opened',
    )
    this.#timers.clear(this.#authTimer)
    setMaxPayload(this.#ws, FRAME_BYTES_MAX)
    this.#sender.send(message)
    const backlog = this.#backlog
    this.#backlog = []
    this.#backlogBytes = 0
    for (const frame of backlog) {
      if (this.#state !== 'ready') break
      this.#onFrame(frame.data, frame.isBinary, true)
    }
  }

  // -- closing (frames go out through `session-send.ts`) --------------------------------------

  /** `overloaded` with the relay's retry hint. */
  #overloaded(message: string): void {
    this.#fail('overloaded', message, this.#ctx.limits.overloadedRetryMs)
  }

  /** Sends the error, closes with the kind's code, and cuts the socket if it will not close. */
  #fail(kind: ErrorKind, message: string, backoffMsMin?: number, log?: LogIdentity): void {
    if (this.#state === 'closed') return
    this.#closeReason ??= { kind, message }
    this.#sender.sendError(kind, message, backoffMsMin, log)
    this.#state = 'closed'
    this.#clearTimers()
    try {
      this.#ws.close(ERROR_KINDS[kind].closeCode, kind)
    } catch {
      this.#ws.terminate()
    }
    // A slow consumer reads what was queued before the close frame reaches it.
    const { closeHandshakeTimeoutMs, slowConsumerCloseTimeoutMs } = this.#ctx.limits
    this.#closeTimer = this.#timers.set(
      () => this.#ws.terminate(),
      kind === 'slow_consumer' ? slowConsumerCloseTimeoutMs : closeHandshakeTimeoutMs,
      { unref: true },
    )
  }

  #onClose(code: number): void {
    if (this.#state !== 'closed') this.#state = 'closed'
    // One line per connection, welcomed or not; the hello's clientId even when it was refused.
    const { tenant, subject, clientId } = this.#auth.identity
    const reason = this.#closeReason ?? { kind: 'client_closed', message: '' }
    this.#ctx.logger.info(
      {
        event: 'connection_closed',
        reason: reason.kind,
        message: reason.message || undefined,
        code,
        tenant: tenant || undefined,
        sub: subject || undefined,
        clientId: clientId === '' ? this.#auth.helloClientId : clientId,
        durationMs: this.#timers.now() - this.#openedAt,
      },
      'connection closed',
    )
    this.#clearTimers()
    this.#timers.clear(this.#closeTimer)
    this.#subs.clear()
    for (const detach of this.#storeWatchers.values()) detach()
    this.#storeWatchers.clear()
    this.#backlog = []
    this.#backlogBytes = 0
    this.#socketSeat?.release()
    this.#ctx.metrics.connectionClosed()
  }

  /** The auth timer, and the identity's expiry timer and tenant seat. */
  #clearTimers(): void {
    this.#timers.clear(this.#authTimer)
    this.#auth.close()
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

/**
 * Sets the largest frame `ws` accepts on this socket. `ws` has one `maxPayload` per server, read
 * by each socket's receiver into `_receiver._maxPayload`, which it checks as soon as a frame
 * header gives the length (ws/lib/receiver.js, `haveLength`); lowering it before `welcome` is what
 * keeps a socket that never authenticates from making the relay buffer a 1 MiB frame. `ws` is
 * pinned (package.json); should the field go away, the session still refuses the frame once
 * received (invariant 1), and `pre-hello.test.ts` fails.
 */
function setMaxPayload(ws: SessionSocket, bytes: number): void {
  const receiver = (ws as unknown as { _receiver?: { _maxPayload?: unknown } })._receiver
  if (receiver !== undefined && typeof receiver._maxPayload === 'number') {
    receiver._maxPayload = bytes
  }
}

/**
 * The connection and its backoff: one socket to the relay at a time, from `hello` to its
 * close, and the wait before the next one; the session's token, renewed before it expires.
 * What travels over a welcomed socket (pushes, acks, pages) is the sync loop's (`sync.ts`);
 * this module answers pings, reads `error` frames for their backoff, and watches the socket
 * for silence.
 *
 *   connect ─► token + clientId ─► new socket ─open─► hello ─► welcome ─► (sync loop)
 *      ▲                                │ close / silence / welcome timeout / offline()
 *      └──── after reconnectDelayMs ◄───┘
 *   welcome ─► at ~80 % of the token's lifetime: token() ─► renew ─► renewed ─► again
 *
 * Terms: an *attempt* is one connect that has not been welcomed yet; the *backoff floor* is
 * the least delay the relay asked for in its last `error` frame; the connection is *paused* by
 * `disconnect()` and *parked* after `client_taken` (no reconnect until `reconnect()`; the sync
 * loop calls it when the refusal came from a log this device did not last see and it moved the
 * outbox to a new clientId: `sync-taken.ts` invariant 1).
 *
 * Invariants:
 * 1. At most one socket is current; events of an older socket are ignored.
 * 2. The delay before reconnecting grows exponentially with the attempts since the last
 *    welcome, from RECONNECT_MS_MIN to RECONNECT_MS_MAX, jittered over the upper half of that
 *    ceiling, and is never below the backoff floor (a floor is jittered too, upwards, so tills
 *    told `overloaded` together do not come back together); an error kind that must not be
 *    retried waits RECONNECT_MS_MAX (`too_large` excepted: the drain splits and retries).
 * 3. `token_expired` and `unauthorized` make the next connect ask the token function again,
 *    from the first attempt's delay, once per welcome and only for a token not refused before;
 *    after that the backoff goes on growing (a token function that returns a cached expired
 *    token, or one minting tokens that are expired already, and a string token, never
 *    reconnect in a hot loop).
 * 4. A socket that is not welcomed within WELCOME_TIMEOUT_MS, or is silent for SILENCE_MS_MAX,
 *    is dropped; a socket quiet for half a ping interval is pinged. Silence is measured on the
 *    timers' clock (`Scheduler.now`), never on the wall clock: a device clock set back does not
 *    hide a dead socket, one set forward does not drop a live one. A socket that closes before
 *    its welcome without an `error` frame is reported `unreachable`, with its close code.
 * 5. `reconnect()` connects at once when no socket is current (a current one is pinged), and
 *    restarts the backoff, ending a pause or a park; `offline()` drops the current socket at
 *    once; `disconnect()` drops it and connects no more until `reconnect()`.
 * 6. A renewable token is renewed on the live socket at RENEW_AT_LIFETIME_SHARE of its lifetime
 *    (± RENEW_JITTER_SHARE, measured on the relay's clock from `welcome`), without closing it.
 *    A renewal that gets the same token back (or one expiring no later) is tried again after a
 *    backoff doubling from RECONNECT_MS_MIN, never in a loop; a string token is not renewed
 *    (the relay ends the session at expiry with `token_expired`).
 * 7. With a list of relays (`relay-list.ts`), a socket lost before its welcome moves to the next
 *    url (after the last: the first), a welcomed one is tried again first; the first round
 *    through the list waits as the first attempt does, and a relay's backoff floor (invariant
 *    2) is not applied to the next relay. While welcomed on a later url, earlier
 *    ones are probed, and the connection moves back to the first that welcomes a probe.
 */
import type { LogIdentity, Message, RelayMessage, WelcomeMessage } from '@ledgerline/protocol'
import { decodeMessage, encodeMessage, ERROR_KINDS, PROTOCOL_VERSION } from '@ledgerline/protocol'
import type { ClientErrorStatusKind } from './client-api.ts'
import {
  PING_INTERVAL_MS,
  RECONNECT_MS_MAX,
  RECONNECT_MS_MIN,
  SILENCE_MS_MAX,
  WELCOME_TIMEOUT_MS,
} from './limits.ts'
import { timersClock } from './environment.ts'
import type { Scheduler, TimerHandle } from './scheduler.ts'
import { createRelayList, createRelayProbe } from './relay-list.ts'
import type { Renewal } from './token-renewal.ts'
import { startRenewal } from './token-renewal.ts'
import type { WebSocketConstructor, WebSocketLike } from './transport.ts'
import { closeQuietly, frameBytes, SOCKET_OPEN } from './transport.ts'

export type ConnectionErrorKind = ClientErrorStatusKind

/** A relay message the sync loop handles (everything but `ping`, `pong`, `error`, `renewed`). */
export type SyncMessage = Exclude<RelayMessage, { type: 'ping' | 'pong' | 'error' | 'renewed' }>

export interface ConnectionEvents {
  /** A message of the current socket; `welcome` first. */
  message(ws: WebSocketLike, message: SyncMessage): void
  /** The current socket is gone (before the reconnect is scheduled). */
  lost(ws: WebSocketLike): void
  failed(kind: ConnectionErrorKind, message: string): void
  /** `paused()` or `parked()` changed. */
  changed(): void
  /** Parked on a `client_taken` that named the log that answered (`ErrorMessage.log`). */
  taken(log: LogIdentity): void
}

export interface ConnectionOptions {
  /** One relay, or relays in order of preference (`relay-list.ts`). */
  readonly url: string | readonly string[]
  readonly WebSocket: WebSocketConstructor
  readonly token: () => Promise<string>
  /** Drops a cached token so the next `token()` asks the app's function again. */
  readonly invalidateToken: () => void
  /** A function gives the token: it can be renewed on a live socket (invariant 6). */
  readonly renewable?: boolean | undefined
  /** The clientId to say hello with (read at every connect: a reissue changes it). */
  readonly clientId: () => Promise<string>
  /**
   * The database's earlier clientIds for the hello (`HelloMessage.clientIds`), read right after
   * `clientId` resolved; none when not given.
   */
  readonly earlierClientIds?: (() => readonly string[]) | undefined
  readonly now: () => number
  /** A float in [0, 1) for the jitter. */
  readonly random: () => number
  readonly scheduler: Scheduler
  readonly events: ConnectionEvents
}

export interface Connection {
  start(): void
  stop(): void
  /** The socket of the current connection, if any (welcomed or not). */
  current(): WebSocketLike | undefined
  welcomed(): boolean
  /** Sends on `ws` if it is current and open; false when it was not sent. */
  send(ws: WebSocketLike, message: Message): boolean
  /** Closes `ws`; its `close` event ends the connection. */
  close(ws: WebSocketLike): void
  /** Closes `ws` and ends the connection now, without waiting for its `close` event. */
  abandon(ws: WebSocketLike): void
  reconnect(): void
  offline(): void
  /** Pauses: drops the socket and connects no more until `reconnect()` (invariant 5). */
  disconnect(): void
  paused(): boolean
  /** The relay said `client_taken`: no reconnect until `reconnect()`. */
  parked(): boolean
  /** The url of the current socket (or of the next attempt). */
  url(): string
}

/**
 * @example
 * const connection = createConnection({ url, WebSocket, token, invalidateToken, clientId, now,
 *   random, scheduler, events })
 * connection.start()
 */
export function createConnection(options: ConnectionOptions): Connection {
  const { scheduler, events } = options
  /** Invariant 4: the clock silence is measured on. */
  const elapsed = timersClock(scheduler)
  let socket: WebSocketLike | undefined
  let stopped = true
  let paused = false
  let parked = false
  let welcomed = false
  let attempt = 0
  let backoffMsMin = 0
  /** When the current socket last heard anything, on the timers' clock (invariant 4). */
  let lastMessageAt = 0
  let reconnectTimer: TimerHandle | undefined
  let pingTimer: TimerHandle | undefined
  /** The token of the current socket, and the last one a relay refused (invariant 3). */
  let socketToken = ''
  let refusedToken: string | undefined
  /** The one quick retry with a new token since the last welcome was taken (invariant 3). */
  let quickRetried = false
  let renewal: Renewal | undefined
  const relays = createRelayList(options.url)
  const probe = createRelayProbe({
    urls: typeof options.url === 'string' ? [options.url] : options.url,
    WebSocket: options.WebSocket,
    hello: async () => ({
      type: 'hello',
      protocol: PROTOCOL_VERSION,
      token: await options.token(),
      clientId: await options.clientId(),
    }),
    scheduler,
    random: options.random,
    answered(index) {
      // Invariant 7: an earlier relay answers: move back to it now.
      relays.moveTo(index)
      attempt = 0
      const ws = socket
      if (ws === undefined) return
      closeQuietly(ws)
      lost(ws)
    },
  })

  const send = (ws: WebSocketLike, message: Message) => {
    if (ws !== socket || ws.readyState !== SOCKET_OPEN) return false
    ws.send(encodeMessage(message))
    return true
  }

  const scheduleReconnect = () => {
    if (stopped || paused || parked || reconnectTimer !== undefined) return
    // Invariant 7: a first round through the relays' list goes at the first attempt's pace.
    const delay = reconnectDelayMs(
      Math.floor(attempt / relays.size()),
      options.random(),
      backoffMsMin,
    )
    attempt++
    backoffMsMin = 0
    reconnectTimer = scheduler.setTimeout(() => {
      reconnectTimer = undefined
      void connect()
    }, delay)
  }

  /** The socket is gone (closed, or given up on): tell the sync loop, reconnect later. */
  const lost = (ws: WebSocketLike) => {
    if (socket !== ws) return
    socket = undefined
    // Invariant 7: a relay that never welcomed this socket gives way to the next in the list,
    // and the backoff floor it asked for is its own, not the next relay's.
    if (!welcomed && relays.size() > 1) {
      relays.failed()
      backoffMsMin = 0
    }
    welcomed = false
    probe.stop()
    stopRenewal()
    events.lost(ws)
    scheduleReconnect()
  }

  async function connect(): Promise<void> {
    if (stopped || paused || parked) return
    let token: string
    let clientId: string
    let earlier: readonly string[] = []
    try {
      token = await options.token()
      clientId = await options.clientId()
      earlier = options.earlierClientIds?.() ?? []
    } catch (error) {
      events.failed(
        error instanceof Error && error.name === 'ClientError' ? 'storage' : 'token_unavailable',
        errorMessage(error),
      )
      scheduleReconnect()
      return
    }
    if (stopped || paused || parked) return
    let ws: WebSocketLike
    try {
      ws = new options.WebSocket(relays.url())
      ws.binaryType = 'arraybuffer'
    } catch (error) {
      events.failed('socket', errorMessage(error))
      scheduleReconnect()
      return
    }
    socket = ws
    socketToken = token
    welcomed = false
    lastMessageAt = elapsed()
    let errorSeen = false
    let timedOut = false
    const welcomeTimer = scheduler.setTimeout(() => {
      if (socket !== ws || welcomed) return
      timedOut = true
      closeQuietly(ws)
    }, WELCOME_TIMEOUT_MS)
    ws.addEventListener('open', () => {
      send(ws, {
        type: 'hello',
        protocol: PROTOCOL_VERSION,
        token,
        clientId,
        ...(earlier.length === 0 ? {} : { clientIds: earlier }),
      })
    })
    ws.addEventListener('message', (event) => {
      if (socket !== ws) return
      lastMessageAt = elapsed()
      let message: Message
      try {
        message = decodeMessage(frameBytes(event.data))
      } catch (error) {
        events.failed('bad_message', errorMessage(error))
        closeQuietly(ws)
        return
      }
      if (message.type === 'error') errorSeen = true
      handle(ws, message as RelayMessage)
    })
    ws.addEventListener('close', (event) => {
      scheduler.clearTimeout(welcomeTimer)
      if (socket === ws && !welcomed && !errorSeen) {
        // Invariant 4: say why, so an app can tell "head office unreachable" at once.
        const why = timedOut
          ? `no welcome within ${WELCOME_TIMEOUT_MS} ms`
          : `the socket closed before the relay welcomed it (code ${event.code ?? 1006}${event.reason ? `: ${event.reason}` : ''})`
        events.failed('unreachable', why)
      }
      lost(ws)
    })
    ws.addEventListener('error', () => {
      // A 'close' event always follows; reconnecting is done there.
    })
  }

  function handle(ws: WebSocketLike, message: RelayMessage): void {
    switch (message.type) {
      case 'welcome':
        welcomed = true
        attempt = 0
        refusedToken = undefined
        quickRetried = false
        armRenewal(ws, message)
        probe.start(relays.index())
        events.message(ws, message)
        return
      case 'error': {
        const info = ERROR_KINDS[message.kind] ?? ERROR_KINDS.internal
        backoffMsMin = Math.max(message.backoffMsMin ?? 0, info.backoffMsMin)
        if (!info.retry && message.kind !== 'unauthorized' && message.kind !== 'too_large')
          backoffMsMin = Math.max(backoffMsMin, RECONNECT_MS_MAX)
        let text = message.message
        if (message.kind === 'token_expired' || message.kind === 'unauthorized') {
          options.invalidateToken()
          // Invariant 3: one quick retry with a new token; then (or for the same token) back off.
          if (!quickRetried && socketToken !== refusedToken) {
            attempt = 0
            quickRetried = true
          } else {
            text = `${text} (no fresh token came: backing off)`
          }
          refusedToken = socketToken
        }
        if (message.kind === 'client_taken') {
          parked = true
          events.changed()
        }
        events.failed(message.kind, text)
        if (message.kind === 'client_taken' && message.log !== undefined) events.taken(message.log)
        return
      }
      case 'renewed':
        renewal?.renewed(message.expiresAt)
        return
      case 'ping':
        send(ws, { type: 'pong', t: message.t })
        return
      case 'pong':
        return
      case 'ack':
      case 'entries':
      case 'snapshots':
      case 'fetched':
      case 'store':
      case 'upstream':
        events.message(ws, message)
        return
      default:
        // A relay never sends client messages; ignore rather than crash on a newer relay.
        return
    }
  }

  /** Invariant 6: renewal of the welcomed socket's token, on the relay's clock. */
  function armRenewal(ws: WebSocketLike, welcome: WelcomeMessage): void {
    stopRenewal()
    if (options.renewable !== true) return
    renewal = startRenewal(
      {
        token: options.token,
        invalidateToken: options.invalidateToken,
        now: options.now,
        random: options.random,
        scheduler,
        send: (message) => send(ws, message),
        renewed: (token) => {
          if (socket === ws) socketToken = token
        },
        failed: (kind, message) => {
          if (socket === ws) events.failed(kind, message)
        },
      },
      // The relay's clock minus ours: lifetimes are measured on the relay's.
      {
        token: socketToken,
        expiresAt: welcome.expiresAt,
        skewMs: welcome.serverTime - options.now(),
      },
    )
  }

  function stopRenewal(): void {
    renewal?.stop()
    renewal = undefined
  }

  return {
    start() {
      if (!stopped) return
      stopped = false
      pingTimer = scheduler.setInterval(() => {
        const ws = socket
        if (ws === undefined) return
        const quietMs = elapsed() - lastMessageAt
        if (quietMs > SILENCE_MS_MAX) closeQuietly(ws)
        else if (quietMs > PING_INTERVAL_MS / 2) send(ws, { type: 'ping', t: options.now() })
      }, PING_INTERVAL_MS / 2)
      void connect()
    },
    stop() {
      stopped = true
      scheduler.clearTimeout(reconnectTimer)
      reconnectTimer = undefined
      scheduler.clearInterval(pingTimer)
      stopRenewal()
      probe.stop()
      const ws = socket
      socket = undefined
      if (ws !== undefined) closeQuietly(ws)
    },
    current: () => socket,
    welcomed: () => welcomed,
    send,
    close: (ws) => closeQuietly(ws),
    abandon(ws) {
      closeQuietly(ws)
      lost(ws)
    },
    reconnect() {
      if (stopped) return
      attempt = 0
      backoffMsMin = 0
      if (paused || parked) {
        paused = false
        parked = false
        events.changed()
      }
      const ws = socket
      if (ws !== undefined) {
        // Still connected, or connecting: check the socket is alive rather than replace it.
        if (welcomed) send(ws, { type: 'ping', t: options.now() })
        return
      }
      scheduler.clearTimeout(reconnectTimer)
      reconnectTimer = undefined
      void connect()
    },
    offline() {
      const ws = socket
      if (ws === undefined) return
      closeQuietly(ws)
      lost(ws)
    },
    disconnect() {
      if (stopped || paused) return
      paused = true
      scheduler.clearTimeout(reconnectTimer)
      reconnectTimer = undefined
      events.changed()
      const ws = socket
      if (ws === undefined) return
      closeQuietly(ws)
      lost(ws)
    },
    paused: () => paused,
    parked: () => parked,
    url: () => relays.url(),
  }
}

/**
 * The wait before reconnect attempt `attempt` (0 after a welcome), `random` in [0, 1)
 * (invariant 2).
 *
 * @example
 * reconnectDelayMs(0, 0.5, 0) // 187.5: between RECONNECT_MS_MIN / 2 and RECONNECT_MS_MIN
 */
export function reconnectDelayMs(attempt: number, random: number, backoffMsMin: number): number {
  const ceiling = Math.min(RECONNECT_MS_MAX, RECONNECT_MS_MIN * 2 ** Math.min(attempt, 16))
  const jittered = ceiling / 2 + (random * ceiling) / 2
  return backoffMsMin > jittered ? backoffMsMin * (1 + random / 2) : jittered
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

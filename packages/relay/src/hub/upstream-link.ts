/**
 * A store hub's link to head office: one WebSocket, spoken like a device (hello with the hub's
 * token, a subscription over the hub's read grants whose pages fill the mirror, pushes of
 * forwarded entries), reconnected with backoff and its token renewed before it expires.
 *
 * Terms: the link is *up* from head office's `welcome` until the socket closes; a *push* is one
 * forwarded batch waiting for all the parts of its ack.
 *
 *   connect ─► hello ─► welcome (identity, partitions, limits → mirror) ─► subscribe(cursors)
 *      ▲          entries page ─► mirror (durable) ─► credit 1      ack parts ─► push resolved
 *      └── backoff ◄── close / error / silence (pushes in flight rejected: resent later)
 *
 * Invariants:
 * 1. Cursors sent in `subscribe` are the mirror's (durable); a page is credited only after the
 *    mirror holds it, so a SIGKILL at any point loses at most pages head office resends.
 * 2. A push in flight when the link drops is rejected; the forwarder resends its entries (head
 *    office dedupes by id and digest, so a resend lands once).
 * 3. Reconnects back off from `UPSTREAM_BACKOFF_MS_MIN` to `UPSTREAM_BACKOFF_MS_MAX` (with jitter),
 *    never sooner than an error's `backoffMsMin`, and reset after a welcome.
 * 4. A link silent for `UPSTREAM_SILENCE_MS` (no frame, no pong) is cut and reconnected.
 * 5. The token is fetched anew for every hello and `renew`ed before it expires
 *    (`UPSTREAM_RENEW_LEAD`); a token that cannot be had is logged and retried with backoff.
 * 6. With several upstream URLs (a backup hub: the primary hub, then head office), a socket that
 *    closes without a welcome moves the link to the next URL (after the last, the first again);
 *    one that was welcomed is tried again first. So a backup whose primary is lost for good
 *    drains to head office, and every URL serves head office's log with head office's cursors.
 * 7. The link's world is injectable and Node's by default: the socket class (`WebSocket`, `ws`'s
 *    without compression), its timers and clock (`timers`), the backoff's jitter (`random`). It
 *    reads only what a browser's WebSocket gives (messages, close), so it pings head office
 *    itself when quiet (`UPSTREAM_PING_MS`) and measures silence on its own timers.
 * 8. `hold(true)` (the `--dev` relay's `/dev/upstream` switch, `dev-upstream.ts`) closes the link
 *    and dials no more until `hold(false)`, which dials at once: a store's internet cut by hand.
 * 9. `history_dropped` from head office (the mirror's cursors lie below what its operator's
 *    retention kept: the hub was cut off for longer than the horizon) stops the mirror for the
 *    life of the link: no later welcome subscribes again (the marks never go down, so each
 *    subscribe would only meet it again, at backoff 0), `mirror()` says `history_dropped`, the
 *    event `upstream_history_dropped` is logged as an error once, and the link stays up for
 *    forwarding, so registers' entries still reach head office exactly once. The mirror is not
 *    bootstrapped from head office's snapshots: it is a log of entries that registers catch up
 *    from (`store-layer.ts`), with no place for a snapshot. The operator's fix is a new hub data
 *    directory (registers keep their outboxes: the hub is never the only copy), or none: a
 *    register that fails over to head office bootstraps there.
 */
import WebSocket from 'ws'
import { decodeMessage, encodeMessage, PROTOCOL_VERSION } from '@ledgerline/protocol'
import type { Entry } from '@ledgerline/core'
import type {
  AckResult,
  ClientMessage,
  RelayLimitsAdvertised,
  RelayMessage,
  TransportEvent,
  UpstreamState,
  WebSocketConstructor,
  WebSocketLike,
} from '@ledgerline/protocol'
import type { Logger } from 'pino'
import { NODE_TIMERS } from '../timers.ts'
import type { RelayTimers, TimerHandle } from '../timers.ts'
import type { HubStore } from './hub-store.ts'
import {
  UPSTREAM_BACKOFF_MS_MAX,
  UPSTREAM_BACKOFF_MS_MIN,
  UPSTREAM_CREDIT_PAGES,
  UPSTREAM_PING_MS,
  UPSTREAM_RENEW_LEAD,
  UPSTREAM_SILENCE_MS,
} from './hub-limits.ts'
import { HubError } from './hub-error.ts'

export interface UpstreamLinkOptions {
  /**
   * Head office's sync URL (`wss://hq.example.com/sync`), or an ordered list (invariant 6):
   * the primary hub, then head office.
   */
  readonly url: string | readonly string[]
  /** The hub's token, fetched for every hello and renewal. */
  readonly token: () => Promise<string>
  readonly store: HubStore
  /** The hub's own clientId at head office (persisted by the caller). */
  readonly clientId: string
  readonly logger: Logger
  /** Invariant 7: the socket class the link dials with; `ws`'s without compression by default. */
  readonly WebSocket?: WebSocketConstructor | undefined
  /** Invariant 7: the link's timers and clock; Node's by default. */
  readonly timers?: RelayTimers | undefined
  /** Invariant 7: fills `bytes` with random bytes (the backoff's jitter); Node's by default. */
  readonly random?: ((bytes: Uint8Array) => void) | undefined
}

/** Whether head office's pages still fill the mirror (invariant 9). */
export type MirrorStatus =
  | { readonly _tag: 'mirroring' }
  | { readonly _tag: 'history_dropped'; readonly since: number; readonly message: string }

export interface UpstreamLink {
  state(): UpstreamState
  /** Invariant 9: `history_dropped` once head office said the mirror's cursors are too old. */
  mirror(): MirrorStatus
  /** What head office accepts from this link; undefined while down. */
  limits(): RelayLimitsAdvertised | undefined
  /** The hub's forward grant as head office's welcome gave it; undefined while down. */
  forwardGrant(): readonly string[] | undefined
  /** Told on every up/down change. */
  onState(listener: (state: UpstreamState) => void): () => void
  /** Invariant 7: true closes the link and keeps it closed; false dials again at once. */
  hold(held: boolean): void
  /** Invariant 2: the results of a forwarded push, or a rejection when the link drops. */
  push(entries: readonly Entry[], subjects: Readonly<Record<string, string>>): Promise<AckResult[]>
  close(): Promise<void>
}

interface PendingPush {
  readonly results: AckResult[]
  readonly resolve: (results: AckResult[]) => void
  readonly reject: (error: Error) => void
}

/**
 * @example
 * const link = createUpstreamLink({ url, token: async () => t, store, clientId, logger })
 * link.onState((s) => tellRegisters(s))
 */
export function createUpstreamLink(options: UpstreamLinkOptions): UpstreamLink {
  const { store, logger } = options
  // `ws`'s events carry what `TransportEvent` reads (data, code, reason).
  const Socket = options.WebSocket ?? (NodeWebSocket as unknown as WebSocketConstructor)
  const timers = options.timers ?? NODE_TIMERS
  const jitter = () => {
    if (options.random === undefined) return Math.random()
    const bytes = new Uint8Array(4)
    options.random(bytes)
    return new DataView(bytes.buffer).getUint32(0) / 2 ** 32
  }
  const urls = typeof options.url === 'string' ? [options.url] : [...options.url]
  if (urls.length === 0) throw new HubError('config', 'the upstream needs at least one URL')
  let at = 0
  let welcomedHere = false
  const listeners = new Set<(state: UpstreamState) => void>()
  let state: UpstreamState = { connected: false, since: timers.now() }
  let ws: WebSocketLike | undefined
  let welcome: Extract<RelayMessage, { type: 'welcome' }> | undefined
  let closed = false
  let backoff = UPSTREAM_BACKOFF_MS_MIN
  let retryTimer: TimerHandle | undefined
  let renewTimer: TimerHandle | undefined
  let silenceTimer: TimerHandle | undefined
  let pingTimer: TimerHandle | undefined
  /** On `timers`' clock: when head office last said something (invariant 7). */
  let heardAt = 0
  let batch = 0
  let held = false
  // Each dial's number: a dial that a hold overtook while it fetched its token gives up.
  let dials = 0
  const pending = new Map<number, PendingPush>()
  let mirror: MirrorStatus = { _tag: 'mirroring' }

  const setState = (connected: boolean) => {
    if (state.connected === connected) return
    state = { connected, since: timers.now() }
    logger.info({ event: connected ? 'upstream_up' : 'upstream_down', url: urls[at] }, 'link')
    for (const l of listeners) l(state)
  }

  const send = (m: ClientMessage) => {
    if (ws?.readyState === SOCKET_OPEN) ws.send(encodeMessage(m))
  }

  /** Gives up on `socket` now: the link is down whatever the socket says later. */
  const cut = (socket: WebSocketLike) => {
    if (ws !== socket) return
    down(errorBackoff)
    const hard = socket as Partial<Pick<WebSocket, 'terminate'>>
    if (typeof hard.terminate === 'function') hard.terminate()
    else socket.close()
  }

  const armSilence = () => {
    heardAt = timers.now()
    timers.clear(silenceTimer)
    const socket = ws
    // Invariant 4.
    silenceTimer = timers.set(
      () => {
        if (socket !== undefined) cut(socket)
      },
      UPSTREAM_SILENCE_MS,
      { unref: true },
    )
  }

  const down = (minBackoffMs: number) => {
    timers.clear(renewTimer)
    timers.clear(silenceTimer)
    timers.clear(pingTimer)
    welcome = undefined
    ws = undefined
    for (const p of pending.values()) p.reject(new HubError('upstream_refused', 'link dropped'))
    pending.clear()
    setState(false)
    if (closed || held) return
    // Invariant 6.
    if (!welcomedHere) at = (at + 1) % urls.length
    const delay = Math.max(minBackoffMs, backoff * (0.5 + jitter() / 2))
    backoff = Math.min(UPSTREAM_BACKOFF_MS_MAX, backoff * 2)
    retryTimer = timers.set(() => void connect(), delay)
  }

  const armRenew = (expiresAt: number) => {
    timers.clear(renewTimer)
    const lifetime = Math.max(0, expiresAt - timers.now())
    const delay = Math.min(2 ** 31 - 1, Math.max(1_000, lifetime * (1 - UPSTREAM_RENEW_LEAD)))
    renewTimer = timers.set(
      () => {
        options.token().then(
          (token) => send({ type: 'renew', token }),
          (error: unknown) => {
            logger.warn({ event: 'upstream_token_failed', err: error }, 'cannot renew hub token')
            armRenew(timers.now() + 10_000)
          },
        )
      },
      delay,
      { unref: true },
    )
  }

  const onMessage = (m: RelayMessage) => {
    armSilence()
    switch (m.type) {
      case 'welcome': {
        welcome = m
        welcomedHere = true
        backoff = UPSTREAM_BACKOFF_MS_MIN
        const head = {
          log: m.log,
          partitions: m.partitions,
          read: m.grants.read,
          subject: m.subject,
        }
        if (store.welcomed(head)) {
          logger.warn({ event: 'upstream_log_changed', log: m.log }, 'head office log changed')
        }
        armRenew(m.expiresAt)
        const scope = m.grants.read.length > 0 ? m.grants.read : (m.grants.forward ?? [])
        // Invariant 9: a mirror below head office's marks asks no more.
        if (scope.length > 0 && mirror._tag === 'mirroring') {
          send({
            type: 'subscribe',
            sub: 1,
            scope: [...scope],
            cursors: store.cursors(),
            credit: UPSTREAM_CREDIT_PAGES,
          })
        }
        setState(true)
        return
      }
      case 'entries':
        // Invariant 1: durable in the mirror before more is asked for.
        store.mirrorPage(m.entries, m.cursors)
        send({ type: 'credit', sub: m.sub, pages: 1 })
        return
      case 'ack': {
        const p = pending.get(m.batch)
        if (p === undefined) return
        p.results.push(...m.results)
        if (m.done) {
          pending.delete(m.batch)
          p.resolve(p.results)
        }
        return
      }
      case 'renewed':
        armRenew(m.expiresAt)
        return
      case 'ping':
        send({ type: 'pong', t: m.t })
        return
      case 'error':
        logger.warn({ event: 'upstream_error', kind: m.kind, message: m.message }, 'upstream')
        errorBackoff = m.backoffMsMin
        if (m.kind === 'history_dropped' && mirror._tag === 'mirroring') {
          mirror = { _tag: 'history_dropped', since: timers.now(), message: m.message }
          logger.error(
            { event: 'upstream_history_dropped', message: m.message },
            'head office dropped history below the mirror: the mirror stops, forwarding goes on; a new hub data directory starts a fresh mirror',
          )
        }
        return
      default:
        return
    }
  }
  let errorBackoff = 0

  const connect = async () => {
    if (closed || held) return
    const dial = ++dials
    let token: string
    try {
      token = await options.token()
    } catch (error) {
      logger.warn({ event: 'upstream_token_failed', err: error }, 'cannot get the hub token')
      down(0)
      return
    }
    if (closed || held || dial !== dials) return
    const socket = new Socket(urls[at] as string)
    socket.binaryType = 'arraybuffer'
    ws = socket
    welcomedHere = false
    errorBackoff = 0
    socket.addEventListener('open', () => {
      if (ws !== socket) return
      armSilence()
      // Invariant 7: head office's own pings are not visible here; a quiet link asks.
      timers.clear(pingTimer)
      pingTimer = timers.every(() => {
        if (ws === socket && timers.now() - heardAt >= UPSTREAM_PING_MS) {
          send({ type: 'ping', t: timers.now() })
        }
      }, UPSTREAM_PING_MS)
      socket.send(
        encodeMessage({
          type: 'hello',
          protocol: PROTOCOL_VERSION,
          token,
          clientId: options.clientId,
        }),
      )
    })
    socket.addEventListener('message', (event: TransportEvent) => {
      if (ws !== socket) return
      let m: RelayMessage
      try {
        m = decodeMessage(frameOf(event.data)) as RelayMessage
      } catch (error) {
        logger.warn({ event: 'upstream_bad_frame', err: error }, 'undecodable frame upstream')
        cut(socket)
        return
      }
      try {
        onMessage(m)
      } catch (error) {
        // The mirror could not take the page: cut the link; the cursors are where they were.
        logger.error({ event: 'upstream_failed', err: error }, 'mirror write failed')
        cut(socket)
      }
    })
    socket.addEventListener('error', () => {})
    socket.addEventListener('close', () => {
      if (ws === socket) down(errorBackoff)
    })
  }

  void connect()

  return {
    state: () => state,
    mirror: () => mirror,
    limits: () => welcome?.limits,
    forwardGrant: () => welcome?.grants.forward,
    onState(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    push(entries, subjects) {
      if (welcome === undefined || ws === undefined) {
        return Promise.reject(new HubError('upstream_refused', 'link down'))
      }
      const id = ++batch
      return new Promise<AckResult[]>((resolve, reject) => {
        pending.set(id, { results: [], resolve, reject })
        send({ type: 'push', batch: id, entries, subjects })
      })
    },
    hold(on) {
      if (held === on || closed) return
      held = on
      timers.clear(retryTimer)
      if (on) {
        if (ws !== undefined) cut(ws)
        return
      }
      backoff = UPSTREAM_BACKOFF_MS_MIN
      if (ws === undefined) void connect()
    },
    async close() {
      closed = true
      timers.clear(retryTimer)
      const socket = ws
      if (socket !== undefined) {
        const gone = new Promise<void>((resolve) => {
          socket.addEventListener('close', () => resolve())
          // A peer that does not answer the close: given up on after a second.
          timers.set(
            () => {
              const hard = socket as Partial<Pick<WebSocket, 'terminate'>>
              if (typeof hard.terminate === 'function') hard.terminate()
              resolve()
            },
            1_000,
            { unref: true },
          )
        })
        socket.close(1000)
        await gone
      }
      down(0)
    },
  }
}

const SOCKET_OPEN = 1

/** `ws`'s socket without compression, as a constructor of one URL (invariant 7). */
class NodeWebSocket extends WebSocket {
  constructor(url: string) {
    super(url, { perMessageDeflate: false })
  }
}

/** The bytes of a binary frame as the socket handed them over. */
function frameOf(data: unknown): Uint8Array {
  if (data instanceof Uint8Array) return data
  if (data instanceof ArrayBuffer) return new Uint8Array(data)
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
  throw new HubError('upstream_refused', 'a frame that is not binary')
}

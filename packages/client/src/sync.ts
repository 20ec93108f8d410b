/**
 * The sync loop, run by the leader tab only: the connection (`connection.ts`), the outbox
 * drain (`outbox-drain.ts`) and the write queue (`write-queue.ts`) put together, with the
 * subscription and the state the client shows.
 *
 *   connect ─► hello ─► welcome ─► subscribe(scope, cursors from the client store, credit)
 *                         │
 *                         └─► drain: push batches from the outbox in clientSeq order
 *   ack      ─┐
 *   entries  ─┴► the write queue, in arrival order ─► applyAck ─► drain more
 *                                                  └► applyPages ─► credit
 *   close    ─► forget in-flight batches ─► reconnect after the backoff
 *
 * Terms: a *subscription* is one `subscribe` of a socket (numbered `sub`); its *scope* is the
 * entity patterns asked for (the option, or the token's read grants); *credit* is the pages the
 * relay may send ahead.
 *
 * Invariants:
 * 1. On `welcome`, a relay that knows more clientSeqs of this clientId than the database ever
 *    allocated means a restored or copied database: the outbox is reissued under a new
 *    clientId and the socket closed, so no clientSeq ever names two entries.
 * 2. Pages of an older subscription are ignored; an ack of a batch not in flight is ignored.
 * 3. Credit is given back only after a page is stored, so the relay never runs further ahead
 *    than CREDIT_WINDOW_PAGES unstored pages (held pages included).
 * 4. `syncing` is true exactly while online with batches in flight or catch-up not done.
 * 5. State changes are reported once each: an update that changes no field is not reported.
 */
import { assert, matchesAny } from '@ledgerline/core'
import type { ErrorKind } from '@ledgerline/protocol'
import type { AckApplied, ClientStore, PageApplied } from './client-store.ts'
import type { SyncMessage } from './connection.ts'
import { createConnection } from './connection.ts'
import { realScheduler } from './environment.ts'
import { CREDIT_WINDOW_PAGES } from './limits.ts'
import { createOutboxDrain } from './outbox-drain.ts'
import type { ClientBugs } from './outbox-drain.ts'
import type { Scheduler } from './scheduler.ts'
import type { WebSocketConstructor, WebSocketLike } from './transport.ts'
import { createWriteQueue } from './write-queue.ts'

export interface SyncState {
  /** A socket is open and the relay welcomed us. */
  readonly online: boolean
  /** Batches in flight, or catch-up not done yet. */
  readonly syncing: boolean
  /** Catch-up is done: pages now arrive live. */
  readonly live: boolean
  readonly lastServerContactAt: number | null
  readonly lastError: {
    readonly kind: ErrorKind | 'socket' | 'storage' | 'token'
    readonly message: string
  } | null
  readonly tenant: string | null
}

export interface SyncEvents {
  state(state: SyncState): void
  acked(applied: AckApplied): void
  page(applied: PageApplied): void
  reissued(renamed: ReadonlyMap<string, string>): void
}

export interface SyncOptions {
  readonly url: string
  readonly WebSocket: WebSocketConstructor
  readonly token: () => Promise<string>
  /** Drops a cached token so the next `token()` asks the app's function again. */
  readonly invalidateToken: () => void
  readonly scope: readonly string[] | undefined
  readonly clientStore: ClientStore
  readonly now: () => number
  /** A float in [0, 1) for the reconnect jitter. */
  readonly random: () => number
  readonly newClientId: () => string
  /** Default: the host's timers. */
  readonly scheduler?: Scheduler | undefined
  readonly events: SyncEvents
  /** Test-only: planted bugs (`ClientOptions.bugs`). */
  readonly bugs?: ClientBugs | undefined
}

export interface Sync {
  start(): void
  /** The outbox changed: send what is new (within DRAIN_DELAY_MS, coalescing kicks). */
  kick(): void
  state(): SyncState
  /** Batches in flight, being read from the outbox, or a kick waiting to read it. */
  busy(): boolean
  /** Resolves when the acks and pages received so far are stored (or dropped). */
  idle(): Promise<void>
  /** The network may be back: reset the backoff and connect now if not connected. */
  reconnect(): void
  /** The network is gone: drop the socket now instead of waiting for it to time out. */
  offline(): void
  stop(): void
}

/**
 * @example
 * const sync = createSync({ url, WebSocket, token, invalidateToken, scope, clientStore, now,
 *   random, newClientId, events })
 * sync.start()
 */
export function createSync(options: SyncOptions): Sync {
  const { clientStore, events } = options
  const scheduler = options.scheduler ?? realScheduler
  let stopped = true
  let helloClientId = ''
  let scopeKey = ''
  let inScope: (entity: string) => boolean = () => false
  let subNo = 0
  let pagesSinceCredit = 0
  let state: SyncState = {
    online: false,
    syncing: false,
    live: false,
    lastServerContactAt: null,
    lastError: null,
    tenant: null,
  }

  const setState = (patch: Partial<SyncState>) => {
    const next = { ...state, ...patch }
    next.syncing = next.online && (drain.inFlight() > 0 || !next.live)
    if ((Object.keys(next) as (keyof SyncState)[]).every((k) => next[k] === state[k])) return
    state = next
    events.state(state)
  }
  const fail = (kind: NonNullable<SyncState['lastError']>['kind'], message: string) => {
    setState({ lastError: { kind, message } })
  }

  const connection = createConnection({
    url: options.url,
    WebSocket: options.WebSocket,
    token: options.token,
    invalidateToken: options.invalidateToken,
    clientId: async () => (helloClientId = (await clientStore.counters()).clientId),
    now: options.now,
    random: options.random,
    scheduler,
    events: {
      message: handle,
      lost() {
        drain.reset()
        writes.dropHeld()
        setState({ online: false, live: false })
      },
      failed: fail,
    },
  })
  const drain = createOutboxDrain({
    clientStore,
    scheduler,
    isCurrent: (ws) => connection.current() === ws,
    ready: () => (connection.welcomed() && state.online ? connection.current() : undefined),
    send: connection.send,
    sent: () => setState({}),
    failed: (message) => fail('storage', message),
    bugs: options.bugs,
  })
  const writes = createWriteQueue({
    clientStore,
    scheduler,
    current: connection.current,
    inScope: (entity) => inScope(entity),
    live: () => state.live,
    stopped: () => stopped,
    acked(ws, applied) {
      if (applied.gaps > 0 && connection.current() === ws) drain.resend()
      events.acked(applied)
      setState({})
      drain.drain(ws)
    },
    paged(ws, run, applied) {
      events.page(applied)
      const last = run.at(-1) as (typeof run)[number]
      if (last.live) setState({ live: true })
      pagesSinceCredit += run.length
      if (pagesSinceCredit >= CREDIT_WINDOW_PAGES / 2) {
        connection.send(ws, { type: 'credit', sub: last.sub, pages: pagesSinceCredit })
        pagesSinceCredit = 0
      }
    },
    failed: (message) => fail('storage', message),
    abandon: connection.abandon,
  })

  function handle(ws: WebSocketLike, message: SyncMessage): void {
    const at = options.now()
    switch (message.type) {
      case 'welcome':
        void onWelcome(ws, message.tenant, message.clientSeqHigh, message.grants.read)
        setState({ lastServerContactAt: at, tenant: message.tenant })
        return
      case 'ack': {
        const records = drain.take(message.batch)
        if (records === undefined) return
        assert(message.results.length === records.length, 'ack answers every entry of its batch')
        const items = records.map((record, i) => ({
          record,
          result: message.results[i] as (typeof message.results)[number],
        }))
        setState({ lastServerContactAt: at })
        writes.enqueue({ _tag: 'ack', ws, items })
        return
      }
      case 'entries':
        if (message.sub !== subNo) return
        setState({ lastServerContactAt: at })
        writes.enqueue({
          _tag: 'page',
          ws,
          sub: message.sub,
          scopeKey,
          page: { entries: message.entries, cursors: message.cursors },
          live: message.live,
        })
        return
      default:
        return
    }
  }

  async function onWelcome(
    ws: WebSocketLike,
    tenant: string,
    clientSeqHigh: number,
    granted: readonly string[],
  ) {
    try {
      const counters = await clientStore.counters()
      if (clientSeqHigh > counters.seqLast && counters.clientId === helloClientId) {
        // Invariant 1: re-send the outbox under a new clientId, then reconnect with it.
        const renamed = await clientStore.reissue(options.newClientId(), clientSeqHigh)
        events.reissued(renamed)
        connection.close(ws)
        return
      }
      const scope = options.scope ?? granted
      scopeKey = JSON.stringify([...scope].sort())
      inScope = (entity) => matchesAny(scope, entity)
      const cursors = await clientStore.prepareCursors(tenant, scopeKey, inScope)
      if (connection.current() !== ws) return
      subNo++
      pagesSinceCredit = 0
      connection.send(ws, {
        type: 'subscribe',
        sub: subNo,
        scope: [...scope],
        cursors,
        credit: CREDIT_WINDOW_PAGES,
      })
      setState({ online: true, live: false, lastError: null })
      drain.drain(ws)
    } catch (error) {
      fail('storage', error instanceof Error ? error.message : String(error))
      connection.close(ws)
    }
  }

  return {
    start() {
      if (!stopped) return
      stopped = false
      connection.start()
    },
    kick() {
      if (!stopped) drain.kick()
    },
    state: () => state,
    busy: () => drain.busy(),
    idle: () => writes.idle(),
    reconnect() {
      if (!stopped) connection.reconnect()
    },
    offline: () => connection.offline(),
    stop() {
      stopped = true
      connection.stop()
      writes.stop()
      drain.stop()
      setState({ online: false, live: false })
    },
  }
}

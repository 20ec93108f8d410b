/**
 * The sync loop, run by the leader tab only: the connection (`connection.ts`), the outbox
 * drain (`outbox-drain.ts`), the write queue (`write-queue.ts`) and restore recovery
 * (`restore-recovery.ts`) put together, with the subscription and the state the client shows.
 *
 *   connect ─► hello ─► welcome ─► beginSession (restored? another log?) ─► subscribe
 *                         │
 *                         └─► drain: confirm up to the high-water mark ─► settle ─► lift | move
 *   ack part ─┐
 *   entries  ─┴► the write queue, in arrival order ─► applyAck ─► drain more
 *                                                  └► applyPages ─► credit
 *   close    ─► forget in-flight batches ─► reconnect after the backoff
 *
 * Terms: a *subscription* is one `subscribe` of a socket (numbered `sub`); its *scope* is the
 * entity patterns asked for (the option, or the token's read grants); *credit* is the pages the
 * relay may send ahead; a *session* is one welcomed socket with its high-water mark.
 *
 * Invariants:
 * 1. Nothing above the welcome's high-water mark is pushed before every outbox record at or
 *    below it was answered (the confirm phase); a restored database, another server log, or an
 *    `id_conflict` in that phase moves the outbox to a new clientId before anything more is
 *    pushed, and the socket is closed so the next hello says the new id. An `id_conflict` after
 *    the phase sets `recovering` and closes the socket: the next session recovers. So no
 *    clientSeq ever names two entries in the log, and no outbox record is dropped on a conflict.
 * 2. Pages of an older subscription are ignored; an ack part of a batch not in flight is
 *    ignored; the parts of one batch are applied as they come, each result on its own.
 * 3. Credit is given back only after a page is stored, so the relay never runs further ahead
 *    than CREDIT_WINDOW_PAGES unstored pages (held pages included).
 * 4. `syncing` is true exactly while online with batches in flight or catch-up not done.
 * 5. State changes are reported once each: an update that changes no field is not reported.
 * 6. A `seq_gap` that repeats at the same entry, and a recovery that keeps meeting used ids, end
 *    in a typed `lastError` (`seq_gap`, `id_conflict`) with a backoff, never a hot loop.
 * 7. The corrections an ack of an own entry names (references) count as busy until the
 *    subscription brought them (the stored cursor of their partition passed their offset), for
 *    the entities in scope: `synced()` means the log's consequences of this device's entries
 *    are here too, not only the entries.
 * 8. `client_taken` parks the connection, unless it names a log other than the one this
 *    database last saw (restored or replaced since: the binding of the clientId may be what was
 *    lost), or a recovery is pending (`recovering`: the log changed and the move did not happen
 *    yet). Then, in the writes a welcome's recovery makes, what the database holds of the
 *    clientId goes back into the outbox, history goes with the old log, and the outbox moves to
 *    a new clientId; the connection reconnects as it. The log holds nothing of this device under
 *    a clientId it binds to another subject (the first record binds), so nothing lands twice and
 *    nothing is attributed to the other subject. The new identity is recorded first, so a
 *    second `client_taken` from the same log, under the new clientId, parks: at most one move
 *    per log change.
 * 9. Through a store hub (`welcome.role` `hub`): `store` messages of the current subscription
 *    fill the store layer (own entries excluded), entries of stored pages leave it (those the
 *    hub removed leave after STORE_LEAVING_MS without a page: `store-layer.ts` invariant 4), and a
 *    welcome from head office itself clears it; `relay` and `headOffice` say where the client
 *    is and whether head office is reached (the hub's `upstream`, or directly).
 */
import type { Entry } from '@ledgerline/core'
import { assert, matchesAny } from '@ledgerline/core'
import { HELLO_CLIENT_IDS_MAX } from '@ledgerline/protocol'
import type { LogIdentity, RelayRole, WelcomeMessage } from '@ledgerline/protocol'
import type { ClientErrorStatusKind } from './client-api.ts'
import type { AckApplied, AckItem, ClientStore, PageApplied } from './client-store.ts'
import type { SyncMessage } from './connection.ts'
import { createConnection } from './connection.ts'
import { realScheduler } from './environment.ts'
import { CREDIT_WINDOW_PAGES } from './limits.ts'
import type { HeldReason } from './outbox-held.ts'
import { createOutboxDrain } from './outbox-drain.ts'
import type { ClientBugs } from './outbox-drain.ts'
import type { RecoverySession } from './restore-recovery.ts'
import { createRecovery } from './restore-recovery.ts'
import type { Scheduler, TimerHandle } from './scheduler.ts'
import type { StoreLayer } from './store-layer.ts'
import { createStoreLayer } from './store-layer.ts'
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
    readonly kind: ClientErrorStatusKind
    readonly message: string
  } | null
  readonly tenant: string | null
  /** Outbox records held back by the drain, by reason. */
  readonly heldReasons: readonly HeldReason[]
  /** `disconnect()` paused syncing. */
  readonly paused: boolean
  /** The welcomed relay, and what it is; null while not online. */
  readonly relay: RelayInfo | null
  /** Head office, as seen from here: through the hub's `upstream`, or directly. */
  readonly headOffice: HeadOfficeReach
}

export interface RelayInfo {
  readonly url: string
  readonly role: RelayRole
}

export type HeadOfficeReach = 'reachable' | 'unreachable' | 'unknown'

export interface SyncEvents {
  state(state: SyncState): void
  acked(applied: AckApplied): void
  page(applied: PageApplied): void
  reissued(renamed: ReadonlyMap<string, string>): void
  /** Confirmed history, snapshots and cursors were dropped: another server log. */
  reset(): void
  /** The store layer (`storeLayer`) changed for these entities. */
  store?(entities: ReadonlySet<string>): void
}

export interface SyncOptions {
  /** One relay, or relays in order of preference: hub, backup hub, head office. */
  readonly url: string | readonly string[]
  readonly WebSocket: WebSocketConstructor
  readonly token: () => Promise<string>
  /** Drops a cached token so the next `token()` asks the app's function again. */
  readonly invalidateToken: () => void
  /** A function gives the token: renew it on the live socket before it expires. */
  readonly renewable?: boolean | undefined
  readonly scope: readonly string[] | undefined
  readonly clientStore: ClientStore
  readonly now: () => number
  /** A float in [0, 1) for the reconnect jitter. */
  readonly random: () => number
  /** A random clientId (restore recovery's fallback when derived ids keep meeting conflicts). */
  readonly newClientId: () => string
  /** The encoded size of an entry (for entries put back into the outbox). */
  readonly bytesOf?: ((entry: Entry) => number) | undefined
  /** Default: the host's timers. */
  readonly scheduler?: Scheduler | undefined
  readonly events: SyncEvents
  /** Test-only: planted bugs (`ClientOptions.bugs`). */
  readonly bugs?: ClientBugs | undefined
  /** Where `store` messages go (`store-layer.ts`); default: a layer of its own. */
  readonly storeLayer?: StoreLayer | undefined
}

export interface Sync {
  start(): void
  /** The outbox changed: send what is new (within DRAIN_DELAY_MS, coalescing kicks). */
  kick(): void
  state(): SyncState
  /**
   * Batches in flight, being read from the outbox, a kick waiting to read it, a confirm phase,
   * or corrections of own entries not received yet (invariant 7).
   */
  busy(): boolean
  /** Resolves when the acks and pages received so far are stored (or dropped). */
  idle(): Promise<void>
  /** The network may be back: reset the backoff and connect now if not connected. */
  reconnect(): void
  /** The network is gone: drop the socket now instead of waiting for it to time out. */
  offline(): void
  /** Pause syncing until `reconnect()`. */
  disconnect(): void
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
  let helloEarlier: readonly string[] = []
  let scopeKey = ''
  let inScope: (entity: string) => boolean = () => false
  let subNo = 0
  let pagesSinceCredit = 0
  /** Invariant 8: a move after `client_taken` is under way (a second refusal waits for it). */
  let taking = false
  /** Invariant 7: correction positions (partition → offsets) not received yet, and the cursors. */
  const awaited = new Map<number, Set<number>>()
  let received: Readonly<Record<number, number>> = {}
  /** The welcomed socket's recovery view, and the conflicts met in its confirm phase. */
  let session: (RecoverySession & { readonly ws: WebSocketLike; conflicts: number }) | undefined
  let state: SyncState = {
    online: false,
    syncing: false,
    live: false,
    lastServerContactAt: null,
    lastError: null,
    tenant: null,
    heldReasons: [],
    paused: false,
    relay: null,
    headOffice: 'unknown',
  }
  const layer = options.storeLayer ?? createStoreLayer()
  /** This database's clientIds as of the welcome: their entries are never store entries. */
  let ownIds: readonly string[] = []
  /** The last `upstream` message, and its socket. */
  let upstream: { readonly ws: WebSocketLike; readonly connected: boolean } | undefined
  const none: ReadonlySet<string> = new Set()
  let leavingTimer: TimerHandle | undefined
  const storeChanged = (entities: ReadonlySet<string>) => {
    if (entities.size > 0) events.store?.(entities)
  }

  const setState = (patch: Partial<SyncState>) => {
    const next = { ...state, ...patch }
    next.syncing = next.online && (drain.inFlight() > 0 || !next.live)
    next.paused = connection.paused()
    const held = drain.held()
    next.heldReasons = sameReasons(held, state.heldReasons) ? state.heldReasons : held
    if ((Object.keys(next) as (keyof SyncState)[]).every((k) => next[k] === state[k])) return
    state = next
    events.state(state)
  }
  const fail = (kind: ClientErrorStatusKind, message: string) => {
    setState({ lastError: { kind, message } })
  }

  const connection = createConnection({
    url: options.url,
    WebSocket: options.WebSocket,
    token: options.token,
    invalidateToken: options.invalidateToken,
    renewable: options.renewable,
    clientId: async () => {
      const counters = await clientStore.counters()
      // The most recent earlier clientIds: the welcome answers their marks (restore recovery).
      helloEarlier = counters.clientIds
        .filter((id) => id !== counters.clientId)
        .slice(-HELLO_CLIENT_IDS_MAX)
      return (helloClientId = counters.clientId)
    },
    earlierClientIds: () => helloEarlier,
    now: options.now,
    random: options.random,
    scheduler,
    events: {
      message: handle,
      lost() {
        drain.reset()
        writes.dropHeld()
        session = undefined
        setState({ online: false, live: false, relay: null, headOffice: 'unknown' })
      },
      failed(kind, message) {
        // Invariant 6 of the drain: a batch the relay failed on shrinks after a repeat.
        drain.pushFailed(kind)
        fail(kind, message)
      },
      changed: () => setState({}),
      taken: (log) => void onTaken(log),
    },
  })
  const drain = createOutboxDrain({
    clientStore,
    scheduler,
    now: options.now,
    isCurrent: (ws) => connection.current() === ws,
    ready: () => (connection.welcomed() && state.online ? connection.current() : undefined),
    send: connection.send,
    changed: () => setState({}),
    confirmed: (ws) => void settle(ws),
    failed: (message) => fail('storage', message),
    bugs: options.bugs,
  })
  const recovery = createRecovery({ clientStore, randomClientId: options.newClientId })
  const writes = createWriteQueue({
    clientStore,
    scheduler,
    current: connection.current,
    inScope: (entity) => inScope(entity),
    live: () => state.live,
    stopped: () => stopped,
    acked(ws, applied, items) {
      noteConflicts(ws, items)
      awaitCorrections(items)
      const { gapRepeated } = drain.applied(items)
      if (gapRepeated === true) {
        const first = items.find((i) => i.result.status === 'refused')?.record.id
        fail(
          'seq_gap',
          `the log refuses ${first ?? 'the next entry'} as out of order again: it lacks entries of this device (a log restored without its generation raised?); retrying with a backoff, nothing is dropped`,
        )
      }
      events.acked(applied)
      setState({})
      drain.drain(ws)
    },
    paged(ws, run, applied) {
      received = applied.cursors
      if (applied.settled.size > 0) drain.settled(applied.settled.keys())
      settleAwaited()
      // Invariant 9: confirmed now, so out of the store layer, in the same turn as the page is
      // told (the entity is folded again with both: never counted twice, never missing).
      const confirmed =
        layer.size() > 0
          ? layer.confirmed(run.flatMap((w) => w.page.entries.map((e) => e.id)))
          : none
      events.page(applied)
      storeChanged(confirmed)
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
        setState({ lastServerContactAt: at, tenant: message.tenant })
        void onWelcome(ws, message)
        return
      case 'ack': {
        const records = drain.take(
          message.batch,
          message.first,
          message.results.length,
          message.done,
        )
        if (records === undefined) return
        assert(
          records.length === message.results.length,
          'an ack part answers entries of its batch',
        )
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
      case 'store':
        if (message.sub !== subNo) return
        setState({ lastServerContactAt: at })
        storeChanged(layer.apply(message, ownIds, at))
        armLeaving()
        return
      case 'upstream':
        upstream = { ws, connected: message.connected }
        setState({
          lastServerContactAt: at,
          headOffice: message.connected ? 'reachable' : 'unreachable',
        })
        return
      default:
        return
    }
  }

  async function onWelcome(ws: WebSocketLike, welcome: WelcomeMessage) {
    try {
      const from = helloClientId
      const begun = await clientStore.beginSession(
        {
          clientId: from,
          tenant: welcome.tenant,
          log: welcome.log,
          high: welcome.clientSeqHigh,
          older: welcome.clientSeqHighs ?? [],
        },
        options.bytesOf ?? (() => 0),
      )
      if (connection.current() !== ws) return
      if (begun._tag === 'stale') {
        // Another tab moved the outbox since the hello: say hello again as the new id.
        connection.close(ws)
        return
      }
      if (begun.logChanged) {
        drain.forget()
        awaited.clear() // positions of another log
        events.reset()
      }
      ownIds = begun.meta.clientIds
      // Directly at head office nothing is provisional: no store layer.
      if (welcome.role !== 'hub') storeChanged(layer.clear())
      session = {
        ws,
        from,
        high: welcome.clientSeqHigh,
        deviceSecret: begun.meta.deviceSecret,
        clientIds: begun.meta.clientIds,
        recovering: begun.recovering,
        conflicts: 0,
      }
      const scope = options.scope ?? welcome.grants.read
      scopeKey = JSON.stringify([...scope].sort())
      inScope = (entity) => matchesAny(scope, entity)
      const cursors = await clientStore.prepareCursors(welcome.tenant, scopeKey, inScope)
      if (connection.current() !== ws) return
      received = cursors
      settleAwaited()
      subNo++
      pagesSinceCredit = 0
      connection.send(ws, {
        type: 'subscribe',
        sub: subNo,
        scope: [...scope],
        cursors,
        credit: CREDIT_WINDOW_PAGES,
      })
      setState({
        online: true,
        live: false,
        lastError: null,
        relay: { url: connection.url(), role: welcome.role },
        // An `upstream` that came while the session began is newer than the welcome's.
        headOffice: headOfficeAt(welcome, upstream?.ws === ws ? upstream.connected : undefined),
      })
      // Invariant 1: confirm what the log already holds of this clientId first.
      drain.begin(ws, welcome.limits, welcome.clientSeqHigh)
      drain.drain(ws)
    } catch (error) {
      fail('storage', error instanceof Error ? error.message : String(error))
      connection.close(ws)
    }
  }

  /**
   * Invariant 8: `client_taken` from `log`. The session-start write a welcome makes (put back,
   * drop history, record the log) with no high-water mark (the log holds nothing of ours under
   * a clientId it binds to another subject), then the move, then a reconnect.
   */
  async function onTaken(log: LogIdentity): Promise<void> {
    if (taking || stopped) return
    taking = true
    try {
      const from = helloClientId
      const tenant = await clientStore.tenant()
      // No tenant: never welcomed, so no log ever bound this clientId to this database.
      if (tenant === undefined) return
      const begun = await clientStore.beginSession(
        { clientId: from, tenant, log, high: 0 },
        options.bytesOf ?? (() => 0),
      )
      if (stopped) return
      if (begun._tag === 'stale') {
        // Another tab moved the outbox since the hello: say hello as the new id.
        connection.reconnect()
        return
      }
      if (!begun.recovering) return // the log this database last saw: stay parked
      if (begun.logChanged) {
        awaited.clear() // positions of another log
        events.reset()
      }
      const settled = await recovery.settle(
        {
          from,
          high: 0,
          deviceSecret: begun.meta.deviceSecret,
          clientIds: begun.meta.clientIds,
          recovering: true,
        },
        0,
      )
      if (stopped || settled._tag !== 'moved') return
      drain.forget()
      events.reissued(settled.renamed)
      connection.reconnect()
    } catch (error) {
      fail('storage', error instanceof Error ? error.message : String(error))
    } finally {
      taking = false
    }
  }

  /** Invariant 9: entries the hub removed go when no page confirmed them in time. */
  function armLeaving(): void {
    const due = layer.nextExpiry()
    if (due === undefined || leavingTimer !== undefined || stopped) return
    leavingTimer = scheduler.setTimeout(
      () => {
        leavingTimer = undefined
        storeChanged(layer.expire(options.now()))
        armLeaving()
      },
      Math.max(0, due - options.now()),
    )
  }

  /** Invariant 7: what an ack's correction references wait for. */
  function awaitCorrections(items: readonly AckItem[]): void {
    for (const { result } of items) {
      if (result.status !== 'appended' && result.status !== 'duplicate') continue
      for (const c of result.corrections) {
        if (!inScope(c.entity) || c.offset <= (received[c.partition] ?? 0)) continue
        let offsets = awaited.get(c.partition)
        if (offsets === undefined) awaited.set(c.partition, (offsets = new Set()))
        offsets.add(c.offset)
      }
    }
  }

  function settleAwaited(): void {
    for (const [partition, offsets] of awaited) {
      const cursor = received[partition] ?? 0
      for (const offset of offsets) if (offset <= cursor) offsets.delete(offset)
      if (offsets.size === 0) awaited.delete(partition)
    }
  }

  /** Invariant 1: an id_conflict is counted in the confirm phase, else recovers next session. */
  function noteConflicts(ws: WebSocketLike, items: readonly AckItem[]): void {
    const conflicts = items.filter((i) => i.result.status === 'id_conflict').length
    if (conflicts === 0 || connection.current() !== ws) return
    if (session?.ws === ws && drain.confirming()) {
      session.conflicts += conflicts
      return
    }
    drain.freeze()
    void clientStore
      .markRecovering()
      .catch((error: unknown) =>
        fail('storage', error instanceof Error ? error.message : String(error)),
      )
      .finally(() => connection.close(ws))
  }

  /** The confirm phase of `ws` ended (invariant 1): lift, or move the outbox and reconnect. */
  async function settle(ws: WebSocketLike): Promise<void> {
    const s = session
    if (s === undefined || s.ws !== ws) return
    try {
      const settled = await recovery.settle(s, s.conflicts)
      if (connection.current() !== ws) return
      if (settled._tag === 'lift') {
        drain.lift()
        drain.drain(ws)
        return
      }
      drain.forget()
      // The clientId changed even when nothing was left to move (a restored copy whose records
      // were all duplicates): the appender's clock and the status follow it.
      events.reissued(settled.renamed)
      connection.close(ws)
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
    busy: () => drain.busy() || awaited.size > 0,
    idle: () => writes.idle(),
    reconnect() {
      if (!stopped) connection.reconnect()
    },
    offline: () => connection.offline(),
    disconnect() {
      if (!stopped) connection.disconnect()
    },
    stop() {
      stopped = true
      scheduler.clearTimeout(leavingTimer)
      leavingTimer = undefined
      connection.stop()
      writes.stop()
      drain.stop()
      setState({ online: false, live: false })
    },
  }
}

/** Head office's reach as a welcome tells it (a hub's `upstream`; head office itself). */
function headOfficeAt(welcome: WelcomeMessage, connected?: boolean): HeadOfficeReach {
  if (welcome.role !== 'hub') return 'reachable'
  const now = connected ?? welcome.upstream?.connected
  if (now === undefined) return 'unknown'
  return now ? 'reachable' : 'unreachable'
}

function sameReasons(a: readonly HeldReason[], b: readonly HeldReason[]): boolean {
  return (
    a.length === b.length && a.every((r, i) => r.code === b[i]?.code && r.count === b[i]?.count)
  )
}

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
 * relay may send ahead; a *session* is one welcomed socket with its high-water mark. Modules of
 * their own: the types (`sync-api.ts`), the store-hub side (`sync-hub.ts`), the `client_taken`
 * move (`sync-taken.ts`) and the corrections awaited (`awaited-corrections.ts`, invariant 7).
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
 * 8. `client_taken` parks the connection, unless the log changed or a recovery is pending: then
 *    the outbox moves to a new clientId and the connection reconnects as it, at most one move
 *    per log change. The whole rule is `sync-taken.ts` invariant 1.
 * 9. Through a store hub (`welcome.role` `hub`) the store layer is filled, emptied and cleared,
 *    and `relay` / `headOffice` say where the client is: `sync-hub.ts` invariants 1 to 3.
 * 10. Bootstrap (protocol messages.ts invariant 6): to a relay whose `welcome.snapshots` is
 *    true, a subscription whose stored cursors started from nothing and never stored a `live`
 *    page (client store guarantee 12), or one that met `history_dropped`, is sent with
 *    `bootstrap` (the schema's fold keys and the horizon rules as of now) and its cursors as
 *    stored. Its `snapshots` pages go through the write queue like `entries` pages (in arrival
 *    order, so before the entries after them; credit as for a page); a snapshot under a fold
 *    key the schema lacks is dropped from the page, never kept. `history_dropped` asks for a
 *    bootstrap again on the next subscription: never a silent gap.
 * 11. Bases stored under a fold key the schema no longer has (a raised fold `version`) cannot
 *    be folded on and the history below them is on the server only: the welcome clears
 *    confirmed history, bases and cursors as a scope change does (the outbox and acked records
 *    in scope stay) and subscribes from nothing, with a bootstrap where the relay offers one.
 * 12. `history_dropped` is answered at most HISTORY_DROPPED_BOOTSTRAPS_MAX times by a subscribe
 *    with a bootstrap, counted until a subscription goes live. A welcome that cannot be
 *    answered so (the relay offers no snapshots, or the count is spent) sends no subscribe at
 *    all: `lastError` says `history_dropped` ("cannot subscribe"), `live` stays false, and the
 *    outbox still drains on the welcomed socket, so what the device sells still lands once.
 *    Never a subscribe per session in a loop (backoff 0); a later welcome that offers
 *    snapshots while the count is not spent subscribes with a bootstrap again.
 */
import { assert, matchesAny } from '@ledgerline/core'
import { HELLO_CLIENT_IDS_MAX } from '@ledgerline/protocol'
import { ClientError } from './errors.ts'
import { createHistoryFetches } from './history-fetch.ts'
import type { WelcomeMessage } from '@ledgerline/protocol'
import type { ClientErrorStatusKind } from './client-api.ts'
import { createAwaitedCorrections } from './awaited-corrections.ts'
import type { AckItem } from './client-store.ts'
import type { SyncMessage } from './connection.ts'
import { createConnection } from './connection.ts'
import { realScheduler } from './environment.ts'
import { CREDIT_WINDOW_PAGES, HISTORY_DROPPED_BOOTSTRAPS_MAX } from './limits.ts'
import type { HeldReason } from './outbox-held.ts'
import { createOutboxDrain } from './outbox-drain.ts'
import type { RecoverySession } from './restore-recovery.ts'
import { createRecovery } from './restore-recovery.ts'
import type { Sync, SyncOptions, SyncState } from './sync-api.ts'
import { createSyncHub } from './sync-hub.ts'
import { createTakenMove } from './sync-taken.ts'
import type { WebSocketLike } from './transport.ts'
import { createWriteQueue } from './write-queue.ts'

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
  /** Invariant 10: the welcome's `snapshots`, and a bootstrap asked for by `history_dropped`. */
  let relaySnapshots = false
  let bootstrapAgain = false
  /** Invariant 12: `history_dropped` met since a subscription last went live. */
  let droppedInRow = 0
  const foldKeys = new Set(options.bootstrap?.foldKeys ?? [])
  /** Invariant 7: correction positions not received yet (`awaited-corrections.ts`). */
  const awaited = createAwaitedCorrections()
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
  const hub = createSyncHub({
    storeLayer: options.storeLayer,
    scheduler,
    now: options.now,
    stopped: () => stopped,
    told: (entities) => events.store?.(entities),
  })

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
        fetches.lost()
        relaySnapshots = false
        session = undefined
        setState({ online: false, live: false, relay: null, headOffice: 'unknown' })
      },
      failed(kind, message) {
        // Invariant 10: the relay no longer holds what the cursors point below.
        if (kind === 'history_dropped') {
          bootstrapAgain = true
          droppedInRow++
        }
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
  const fetches = createHistoryFetches({ clientStore, send: connection.send })
  const onTaken = createTakenMove({
    clientStore,
    recovery,
    bytesOf: options.bytesOf,
    stopped: () => stopped,
    clientId: () => helloClientId,
    reconnect: () => connection.reconnect(),
    logChanged() {
      awaited.clear() // positions of another log
      events.reset()
    },
    moved(renamed) {
      drain.forget()
      events.reissued(renamed)
      connection.reconnect()
    },
    failed: (message) => fail('storage', message),
  })
  const writes = createWriteQueue({
    clientStore,
    scheduler,
    current: connection.current,
    inScope: (entity) => inScope(entity),
    live: () => state.live,
    stopped: () => stopped,
    acked(ws, applied, items) {
      noteConflicts(ws, items)
      awaited.await(items, inScope)
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
      if (applied.settled.size > 0) drain.settled(applied.settled.keys())
      awaited.received(applied.cursors)
      // Invariant 9: confirmed now, so out of the store layer, in the same turn as the page is
      // told (`sync-hub.ts` invariant 2).
      const confirmed = hub.confirmed(() => run.flatMap((w) => w.page.entries.map((e) => e.id)))
      events.page(applied)
      hub.tell(confirmed)
      const last = run.at(-1) as (typeof run)[number]
      if (last.live) {
        bootstrapAgain = false
        droppedInRow = 0
        setState({ live: true })
      }
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
          page: { entries: message.entries, cursors: message.cursors, live: message.live },
          live: message.live,
        })
        return
      case 'snapshots': {
        if (message.sub !== subNo) return
        setState({ lastServerContactAt: at })
        // Invariant 10: a snapshot under a fold key this schema lacks is never kept.
        const snapshots = message.snapshots.filter((s) => foldKeys.has(s.foldKey))
        writes.enqueue({
          _tag: 'page',
          ws,
          sub: message.sub,
          scopeKey,
          page: { entries: [], cursors: {}, snapshots },
          live: false,
        })
        return
      }
      case 'fetched':
        setState({ lastServerContactAt: at })
        fetches.fetched(ws, message)
        return
      case 'store':
        if (message.sub !== subNo) return
        setState({ lastServerContactAt: at })
        hub.store(message, at)
        return
      case 'upstream':
        setState({ lastServerContactAt: at, headOffice: hub.upstream(ws, message.connected) })
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
      hub.welcome(welcome, begun.meta.clientIds)
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
      let cursors = await clientStore.prepareCursors(welcome.tenant, scopeKey, inScope)
      let kept = await clientStore.bootstrapState()
      if (staleBases(kept.baseKeys)) {
        // Invariant 11: bases of another fold (a changed reduce) cannot be folded on, and the
        // history below them is not here: start over, as for another scope.
        await clientStore.prepareCursors(welcome.tenant, `${scopeKey}#refold`, inScope)
        cursors = await clientStore.prepareCursors(welcome.tenant, scopeKey, inScope)
        kept = await clientStore.bootstrapState()
        if (connection.current() === ws) events.reset()
      }
      relaySnapshots = welcome.snapshots === true
      const canBootstrap = relaySnapshots && options.bootstrap !== undefined
      const bootstrap = canBootstrap && (bootstrapAgain || kept.pending)
      if (connection.current() !== ws) return
      awaited.received(cursors)
      // Invariant 12: a subscribe only the relay's history_dropped would answer is not sent.
      const stuck =
        droppedInRow > 0 && (!canBootstrap || droppedInRow > HISTORY_DROPPED_BOOTSTRAPS_MAX)
      if (!stuck) {
        subNo++
        pagesSinceCredit = 0
        connection.send(ws, {
          type: 'subscribe',
          sub: subNo,
          scope: [...scope],
          cursors,
          credit: CREDIT_WINDOW_PAGES,
          ...(bootstrap && options.bootstrap !== undefined
            ? { bootstrap: { foldKeys: [...foldKeys], whole: [...options.bootstrap.whole()] } }
            : {}),
        })
      }
      setState({
        online: true,
        live: false,
        lastError: stuck ? { kind: 'history_dropped', message: stuckMessage(canBootstrap) } : null,
        relay: { url: connection.url(), role: welcome.role },
        // An `upstream` that came while the session began is newer than the welcome's.
        headOffice: hub.reachAt(ws, welcome),
      })
      // Invariant 1: confirm what the log already holds of this clientId first.
      drain.begin(ws, welcome.limits, welcome.clientSeqHigh)
      drain.drain(ws)
    } catch (error) {
      fail('storage', error instanceof Error ? error.message : String(error))
      connection.close(ws)
    }
  }

  /** Invariant 12: why the client does not subscribe. */
  function stuckMessage(canBootstrap: boolean): string {
    const why = canBootstrap
      ? `its bootstraps met history_dropped ${droppedInRow} times in a row`
      : 'this relay offers no snapshots to bootstrap with'
    return `cannot subscribe: the relay dropped history below this device's cursors (retention) and ${why}; entries are still pushed, nothing is received until a relay with snapshots is reached or the client is restarted`
  }

  /** Invariant 11: a stored base under a fold key the schema no longer has for its type. */
  function staleBases(baseKeys: readonly string[]): boolean {
    return baseKeys.some((key) => !foldKeys.has(key))
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
    busy: () => drain.busy() || awaited.size() > 0,
    idle: () => writes.idle(),
    reconnect() {
      if (!stopped) connection.reconnect()
    },
    offline: () => connection.offline(),
    disconnect() {
      if (!stopped) connection.disconnect()
    },
    fetchHistory(entity, before) {
      const ws = connection.current()
      if (stopped || ws === undefined || !state.online || !relaySnapshots) {
        const why = relaySnapshots || !state.online ? 'not connected' : 'it keeps no snapshots'
        return Promise.reject(
          new ClientError(
            'offline',
            `history of ${entity} below version ${before} is on the server only and the relay cannot give it now (${why}); nothing was lost: ask again when online`,
          ),
        )
      }
      return fetches.request(ws, scopeKey, entity, before)
    },
    stop() {
      stopped = true
      fetches.lost()
      hub.stop()
      connection.stop()
      writes.stop()
      drain.stop()
      setState({ online: false, live: false })
    },
  }
}

function sameReasons(a: readonly HeldReason[], b: readonly HeldReason[]): boolean {
  return (
    a.length === b.length && a.every((r, i) => r.code === b[i]?.code && r.count === b[i]?.count)
  )
}

/**
 * The sync loop: one WebSocket to the relay, run by the leader tab only.
 *
 *   connect ─► hello ─► welcome ─► subscribe(scope, cursors from IndexedDB, credit)
 *                         │
 *                         └─► drain: push batches from the outbox in clientSeq order
 *   ack      ─┐
 *   entries  ─┴► one queue, in arrival order ─► store.applyAck (one transaction) ─► drain more
 *                                            └► store.applyPages (pages received back to back
 *                                               + cursors, one transaction) ─► credit
 *   close    ─► forget in-flight batches ─► reconnect after jittered exponential backoff
 *
 * Terms: a *batch* is one `push`; *in flight* means sent and not yet acked; a *held* page
 * waits in memory for storage space.
 *
 * Invariants:
 * 1. Batches are sent in clientSeq order, each ≤ PUSH_BATCH_ENTRIES_MAX entries and
 *    ≤ PUSH_BATCH_BYTES_MAX bytes, and at most PUSH_BATCHES_IN_FLIGHT_MAX are in flight.
 * 2. An outbox record is deleted only by the ack that answers it. After a reconnect the whole
 *    outbox is sent again from its start: the relay answers what it already has as `duplicate`
 *    (exactly once, guarantee 2).
 * 3. Acks and pages are applied from ONE queue in arrival order, one store transaction at a
 *    time, so no store write overtakes an earlier one. Pages are never stored past a page that
 *    was not: when a page fails, every later page of its socket is dropped and the socket is
 *    closed (the relay resends from the stored cursors), so the cursor can never run ahead of
 *    a page lost in between (a crash there would lose it for good). A page that fails for
 *    lack of space is held, with every page after it, and retried after a backoff; acks go on
 *    meanwhile, so the outbox still drains. (Acks and pages commute: see applyAck.)
 * 4. Credit is given back only after a page is stored, so the relay never runs further ahead
 *    than CREDIT_WINDOW_PAGES unstored pages (held pages included).
 * 5. The reconnect delay is at least the relay's `backoffMsMin` for the error it sent; a token
 *    function is called again after `token_expired` or `unauthorized`.
 */
import { assert, matchesAny, unreachable } from '@ledgerline/core'
import type { ErrorKind, Message, RelayMessage } from '@ledgerline/protocol'
import {
  decodeMessage,
  encodeMessage,
  ENTRY_DATA_BYTES_MAX,
  ERROR_KINDS,
  PROTOCOL_VERSION,
} from '@ledgerline/protocol'
import { isStorageFull } from './errors.ts'
import type { AckApplied, AckItem, OutboxRecord, PageApplied, PageIn, Store } from './idb-store.ts'
import {
  CREDIT_WINDOW_PAGES,
  DRAIN_DELAY_MS,
  INDEX_DELAY_MS,
  INDEX_STAGED_KEYS_MAX,
  PAGES_PER_WRITE_MAX,
  PING_INTERVAL_MS,
  PUSH_BATCH_BYTES_MAX,
  PUSH_BATCH_ENTRIES_MAX,
  PUSH_BATCHES_IN_FLIGHT_MAX,
  RECONNECT_MS_MAX,
  RECONNECT_MS_MIN,
  SILENCE_MS_MAX,
  WELCOME_TIMEOUT_MS,
} from './limits.ts'

/** The part of the WebSocket API the client uses (browsers' and `ws`'s both fit). */
export interface WebSocketLike {
  binaryType: string
  readonly readyState: number
  send(data: Uint8Array): void
  close(code?: number, reason?: string): void
  addEventListener(
    type: 'open' | 'close' | 'error' | 'message',
    listener: (event: { data?: unknown }) => void,
  ): void
}
export type WebSocketConstructor = new (url: string) => WebSocketLike

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
  readonly store: Store
  readonly now: () => number
  readonly random: () => number
  readonly newClientId: () => string
  readonly events: SyncEvents
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
 * const sync = createSync({ url, WebSocket, token, invalidateToken, scope, store, now, random,
 *   newClientId, events })
 * sync.start()
 */
export function createSync(options: SyncOptions): Sync {
  const { store, events } = options
  let socket: WebSocketLike | undefined
  let stopped = true
  let welcomed = false
  let attempt = 0
  let reconnectTimer: ReturnType<typeof setTimeout> | undefined
  let pingTimer: ReturnType<typeof setInterval> | undefined
  let backoffMsMin = 0
  let lastMessageAt = 0
  let clientId = ''
  let scopeKey = ''
  let inScope: (entity: string) => boolean = () => false
  let subNo = 0
  let pagesSinceCredit = 0
  const inFlight = new Map<number, readonly OutboxRecord[]>()
  let batchNo = 0
  let lastSent: readonly [string, number] | undefined
  let draining = false
  let drainAgain = false
  let kickTimer: ReturnType<typeof setTimeout> | undefined
  // The outbox may hold records after `lastSent` that no read has seen: set by a kick, a new
  // socket, a resend and a full batch; a drain after an ack reads only then.
  let unread = true
  // Invariant 3: one queue of store writes in arrival order, worked by one loop.
  const queue: Work[] = []
  const held: PageWork[] = []
  let working: Promise<void> | undefined
  let heldTimer: ReturnType<typeof setTimeout> | undefined
  let heldRetries = 0
  let indexTimer: ReturnType<typeof setTimeout> | undefined
  let brokenSocket: WebSocketLike | undefined
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
    next.syncing = next.online && (inFlight.size > 0 || !next.live)
    if ((Object.keys(next) as (keyof SyncState)[]).every((k) => next[k] === state[k])) return
    state = next
    events.state(state)
  }

  const send = (ws: WebSocketLike, message: Message) => {
    if (ws !== socket || ws.readyState !== 1) return false
    ws.send(encodeMessage(message))
    return true
  }

  const scheduleReconnect = () => {
    if (stopped || reconnectTimer !== undefined) return
    // Full jitter over an exponential ceiling, never below what the relay asked for.
    const ceiling = Math.min(RECONNECT_MS_MAX, RECONNECT_MS_MIN * 2 ** Math.min(attempt, 16))
    const delay = Math.max(backoffMsMin, ceiling / 2 + (options.random() * ceiling) / 2)
    attempt++
    backoffMsMin = 0
    reconnectTimer = setTimeout(() => {
      reconnectTimer = undefined
      void connect()
    }, delay)
  }

  const fail = (kind: NonNullable<SyncState['lastError']>['kind'], message: string) => {
    setState({ lastError: { kind, message } })
  }

  const drop = (ws: WebSocketLike) => {
    try {
      ws.close()
    } catch {
      // Closing a socket that never opened throws in some runtimes; it is gone either way.
    }
  }

  async function connect(): Promise<void> {
    if (stopped) return
    let token: string
    try {
      token = await options.token()
      const counters = await store.counters()
      clientId = counters.clientId
    } catch (error) {
      fail(
        error instanceof Error && error.name === 'ClientError' ? 'storage' : 'token',
        errorMessage(error),
      )
      scheduleReconnect()
      return
    }
    if (stopped) return
    let ws: WebSocketLike
    try {
      ws = new options.WebSocket(options.url)
      ws.binaryType = 'arraybuffer'
    } catch (error) {
      fail('socket', errorMessage(error))
      scheduleReconnect()
      return
    }
    socket = ws
    welcomed = false
    lastMessageAt = options.now()
    const welcomeTimer = setTimeout(() => {
      if (socket === ws && !welcomed) drop(ws)
    }, WELCOME_TIMEOUT_MS)
    ws.addEventListener('open', () => {
      send(ws, { type: 'hello', protocol: PROTOCOL_VERSION, token, clientId })
    })
    ws.addEventListener('message', (event) => {
      if (socket !== ws) return
      lastMessageAt = options.now()
      let message: Message
      try {
        message = decodeMessage(toBytes(event.data))
      } catch (error) {
        fail('bad_message', errorMessage(error))
        drop(ws)
        return
      }
      handle(ws, message as RelayMessage)
    })
    ws.addEventListener('close', () => {
      clearTimeout(welcomeTimer)
      lost(ws)
    })
    ws.addEventListener('error', () => {
      // A 'close' event always follows; reconnecting is done there.
    })
  }

  /** The socket is gone (closed, or given up on): forget what was in flight, reconnect later. */
  function lost(ws: WebSocketLike): void {
    if (socket !== ws) return
    socket = undefined
    welcomed = false
    inFlight.clear()
    lastSent = undefined
    unread = true
    held.length = 0
    clearTimeout(heldTimer)
    heldTimer = undefined
    setState({ online: false, live: false })
    scheduleReconnect()
  }

  function handle(ws: WebSocketLike, message: RelayMessage): void {
    const at = options.now()
    switch (message.type) {
      case 'welcome': {
        welcomed = true
        attempt = 0
        void onWelcome(ws, message.tenant, message.clientSeqHigh, message.grants.read)
        setState({ lastServerContactAt: at, tenant: message.tenant })
        return
      }
      case 'ack': {
        const records = inFlight.get(message.batch)
        if (records === undefined) return
        inFlight.delete(message.batch)
        assert(message.results.length === records.length, 'ack answers every entry of its batch')
        const items = records.map((record, i) => ({
          record,
          result: message.results[i] as (typeof message.results)[number],
        }))
        setState({ lastServerContactAt: at })
        enqueue({ _tag: 'ack', ws, items })
        return
      }
      case 'entries': {
        if (message.sub !== subNo) return
        setState({ lastServerContactAt: at })
        enqueue({
          _tag: 'page',
          ws,
          sub: message.sub,
          scopeKey,
          page: { entries: message.entries, cursors: message.cursors },
          live: message.live,
        })
        return
      }
      case 'error': {
        const info = ERROR_KINDS[message.kind] ?? ERROR_KINDS.internal
        backoffMsMin = Math.max(message.backoffMsMin ?? 0, info.backoffMsMin)
        if (!info.retry && message.kind !== 'unauthorized')
          backoffMsMin = Math.max(backoffMsMin, RECONNECT_MS_MAX)
        if (message.kind === 'token_expired' || message.kind === 'unauthorized') {
          options.invalidateToken()
          attempt = 0
        }
        fail(message.kind, message.message)
        return
      }
      case 'ping':
        send(ws, { type: 'pong', t: message.t })
        return
      case 'pong':
        return
      default:
        // A relay never sends client messages; ignore rather than crash on a newer relay.
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
      const counters = await store.counters()
      if (clientSeqHigh > counters.seqLast && counters.clientId === clientId) {
        // The relay has seen clientSeqs of this clientId that this database never allocated:
        // the database was restored or copied. Re-send its outbox under a new clientId so no
        // clientSeq is ever used twice, then reconnect with that clientId.
        const renamed = await store.reissue(options.newClientId(), clientSeqHigh)
        events.reissued(renamed)
        drop(ws)
        return
      }
      const scope = options.scope ?? granted
      scopeKey = JSON.stringify([...scope].sort())
      inScope = (entity) => matchesAny(scope, entity)
      const cursors = await store.prepareCursors(tenant, scopeKey, inScope)
      if (socket !== ws) return
      subNo++
      pagesSinceCredit = 0
      send(ws, {
        type: 'subscribe',
        sub: subNo,
        scope: [...scope],
        cursors,
        credit: CREDIT_WINDOW_PAGES,
      })
      setState({ online: true, live: false, lastError: null })
      drain(ws)
    } catch (error) {
      fail('storage', errorMessage(error))
      drop(ws)
    }
  }

  function enqueue(work: Work): void {
    queue.push(work)
    working ??= workQueue().finally(() => {
      working = undefined
    })
  }

  /** Invariant 3: takes the queue in order; consecutive pages of one socket go in one write. */
  async function workQueue(): Promise<void> {
    for (let work = queue.shift(); work !== undefined; work = queue.shift()) {
      try {
        switch (work._tag) {
          case 'ack': {
            // Acks of one socket that arrived back to back are applied in one transaction.
            let items = work.items
            for (
              let next = queue[0];
              next?._tag === 'ack' && next.ws === work.ws;
              next = queue[0]
            ) {
              items = [...items, ...next.items]
              queue.shift()
            }
            await applyAck(items === work.items ? work : { ...work, items })
            break
          }
          case 'page': {
            if (held.length > 0) {
              held.push(work) // behind a page waiting for space: keep the order
              break
            }
            const run = [work]
            for (let next = queue[0]; run.length < PAGES_PER_WRITE_MAX; next = queue[0]) {
              if (next?._tag !== 'page' || next.ws !== work.ws || next.sub !== work.sub) break
              run.push(next)
              queue.shift()
            }
            await applyPages(run)
            break
          }
          case 'retry': {
            heldTimer = undefined
            const run = held.splice(0, held.length)
            if (run.length > 0) await applyPages(run)
            break
          }
          case 'index':
            await store.indexPending()
            break
          default:
            unreachable(work)
        }
      } catch (error) {
        fail('storage', errorMessage(error))
        // The index only saves work later; the next run picks up what this one left staged.
        if (work._tag === 'index') continue
        const ws = work._tag === 'retry' ? socket : work.ws
        if (work._tag === 'page' || work._tag === 'retry') brokenSocket = ws
        if (ws !== undefined && socket === ws) {
          drop(ws)
          lost(ws)
        }
      }
    }
  }

  async function applyAck(work: AckWork): Promise<void> {
    let applied: AckApplied
    try {
      applied = await store.applyAck(work.items, inScope)
    } catch (error) {
      if (!isStorageFull(error)) throw error
      // Storage is full: still let the outbox drain (deleting frees space).
      applied = await store.applyAck(work.items, inScope, true)
      fail('storage', 'storage full: acks applied without keeping outcomes')
    }
    if (applied.gaps > 0 && socket === work.ws) {
      lastSent = undefined // resend from the start
      unread = true
    }
    events.acked(applied)
    setState({})
    drain(work.ws)
  }

  /**
   * Stores pages of one socket in one transaction. Pages of a socket that is gone, or that
   * already lost a page, are dropped: the next subscription starts from the stored cursors.
   */
  async function applyPages(run: readonly PageWork[]): Promise<void> {
    const first = run[0] as PageWork
    const ws = first.ws
    if (socket !== ws || brokenSocket === ws) return
    let applied: PageApplied
    try {
      applied = await store.applyPages(
        run.map((w) => w.page),
        first.scopeKey,
      )
    } catch (error) {
      if (!isStorageFull(error) || socket !== ws) throw error
      // Held in memory (at most the credit window, since no credit is given back meanwhile)
      // and retried; the socket stays up so the outbox keeps draining.
      fail('storage', 'storage full: received entries wait in memory until space is freed')
      held.unshift(...run)
      const delay = Math.min(RECONNECT_MS_MAX, RECONNECT_MS_MIN * 2 ** Math.min(heldRetries++, 8))
      heldTimer ??= setTimeout(() => enqueue({ _tag: 'retry' }), delay)
      return
    }
    heldRetries = 0
    events.page(applied)
    const last = run.at(-1) as PageWork
    if (last.live) setState({ live: true })
    pagesSinceCredit += run.length
    if (pagesSinceCredit >= CREDIT_WINDOW_PAGES / 2) {
      send(ws, { type: 'credit', sub: last.sub, pages: pagesSinceCredit })
      pagesSinceCredit = 0
    }
    // The ledger index: at once when enough is staged, else shortly after the last live page.
    clearTimeout(indexTimer)
    indexTimer = undefined
    if (applied.stagedKeys >= INDEX_STAGED_KEYS_MAX) queue.push({ _tag: 'index' })
    else if (applied.stagedKeys > 0 && state.live) {
      indexTimer = setTimeout(() => {
        indexTimer = undefined
        if (!stopped) enqueue({ _tag: 'index' })
      }, INDEX_DELAY_MS)
    }
  }

  function drain(ws: WebSocketLike | undefined = socket): void {
    if (ws === undefined || ws !== socket || !welcomed || !state.online) return
    if (draining) {
      drainAgain = true
      return
    }
    draining = true
    void (async () => {
      try {
        do {
          drainAgain = false
          while (socket === ws && inFlight.size < PUSH_BATCHES_IN_FLIGHT_MAX && unread) {
            // Cleared before the read: an append committed after the read began kicks again.
            unread = false
            const records = await store.readOutbox(
              lastSent,
              PUSH_BATCH_ENTRIES_MAX,
              PUSH_BATCH_BYTES_MAX,
            )
            if (records.length === 0 || socket !== ws) break
            // A short batch read everything committed (a batch is cut by bytes only when the
            // next entry, at most a few ENTRY_DATA_BYTES_MAX, would not fit).
            const bytes = records.reduce((n, r) => n + r.bytes, 0)
            if (
              records.length >= PUSH_BATCH_ENTRIES_MAX ||
              bytes + 2 * ENTRY_DATA_BYTES_MAX > PUSH_BATCH_BYTES_MAX
            )
              unread = true
            const batch = ++batchNo
            inFlight.set(batch, records)
            const last = records.at(-1) as OutboxRecord
            lastSent = [last.clientId, last.clientSeq]
            send(ws, { type: 'push', batch, entries: records.map((r) => r.entry) })
            setState({})
          }
        } while (drainAgain && socket === ws)
      } catch (error) {
        unread = true
        fail('storage', errorMessage(error))
      } finally {
        draining = false
      }
    })()
  }

  return {
    start() {
      if (!stopped) return
      stopped = false
      pingTimer = setInterval(() => {
        const ws = socket
        if (ws === undefined) return
        const quietMs = options.now() - lastMessageAt
        if (quietMs > SILENCE_MS_MAX) drop(ws)
        else if (quietMs > PING_INTERVAL_MS / 2) send(ws, { type: 'ping', t: options.now() })
      }, PING_INTERVAL_MS / 2)
      void connect()
    },
    kick() {
      // Coalesced: appends made within DRAIN_DELAY_MS of the first are read as one batch, and
      // the drain's reads do not queue between appends on the outbox store.
      if (stopped || kickTimer !== undefined) return
      kickTimer = setTimeout(() => {
        kickTimer = undefined
        unread = true
        drain()
      }, DRAIN_DELAY_MS)
    },
    state: () => state,
    busy: () => inFlight.size > 0 || draining || kickTimer !== undefined,
    idle: async () => {
      while (working !== undefined) await working.catch(noop)
    },
    reconnect() {
      if (stopped) return
      attempt = 0
      backoffMsMin = 0
      const ws = socket
      if (ws !== undefined) {
        // Still connected, or connecting: check the socket is alive rather than replace it.
        if (welcomed) send(ws, { type: 'ping', t: options.now() })
        return
      }
      clearTimeout(reconnectTimer)
      reconnectTimer = undefined
      void connect()
    },
    offline() {
      const ws = socket
      if (ws === undefined) return
      drop(ws)
      lost(ws)
    },
    stop() {
      stopped = true
      clearTimeout(reconnectTimer)
      reconnectTimer = undefined
      clearTimeout(heldTimer)
      heldTimer = undefined
      clearTimeout(indexTimer)
      indexTimer = undefined
      clearTimeout(kickTimer)
      kickTimer = undefined
      clearInterval(pingTimer)
      const ws = socket
      socket = undefined
      inFlight.clear()
      if (ws !== undefined) drop(ws)
      setState({ online: false, live: false })
    },
  }
}

interface AckWork {
  readonly _tag: 'ack'
  readonly ws: WebSocketLike
  readonly items: readonly AckItem[]
}
interface PageWork {
  readonly _tag: 'page'
  readonly ws: WebSocketLike
  readonly sub: number
  readonly scopeKey: string
  readonly page: PageIn
  readonly live: boolean
}
/** A store write of the sync loop: an ack, a page, held pages again, or the ledger index. */
type Work = AckWork | PageWork | { readonly _tag: 'retry' } | { readonly _tag: 'index' }

function toBytes(data: unknown): Uint8Array {
  if (data instanceof Uint8Array) return data
  if (data instanceof ArrayBuffer) return new Uint8Array(data)
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
  if (Array.isArray(data)) {
    // `ws` may hand over fragmented binary messages as a list of buffers.
    const parts = data as Uint8Array[]
    const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0))
    let at = 0
    for (const p of parts) {
      out.set(p, at)
      at += p.byteLength
    }
    return out
  }
  throw new Error('text frames are not part of the protocol')
}

function noop(): void {}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

// An in-memory stand-in for the relay, speaking the real wire protocol (version 3) over `ws` on
// loopback. Used where a test needs to steer the relay: drop an ack, split acks into parts,
// defer an entry, answer with an error, restore or replace its log, renew a token. The
// integration tests run against the real relay (`createRelay`).
//
// It keeps what the server log keeps for exactly once (the design of issue 12): each decided
// entry's content digest beside its id (a resend with the same digest gets its first answer,
// another digest `id_conflict`), a high-water mark per clientId (deferrals use their clientSeq
// up), recorded refusals, the subject each clientId is bound to, and the log's identity.
//
// With `snapshots: true` it plays a relay that keeps ledger snapshots (messages.ts invariant
// 6): `takeSnapshots()` folds each entity's ledger as it stands, a `subscribe.bootstrap` gets
// `snapshots` pages first (under the client's fold keys, not for entities its horizon wants
// whole) and then the entries of snapshotted entities above their snapshot only; `fetch` is
// answered from the log in `fetchPageEntries` pages, and `dropBelow` plays retention.
import type { Entry, Schema, StoredEntry } from '@ledgerline/core'
import { decide, digestHex, entryDigest, matchesAny, partitionOf } from '@ledgerline/core'
import type {
  AckResult,
  ClientMessage,
  CorrectionRef,
  ErrorKind,
  LedgerSnapshot,
  LogIdentity,
  RelayLimitsAdvertised,
  RelayMessage,
  SubscribeMessage,
} from '@ledgerline/protocol'
import {
  decodeMessage,
  encodeMessage,
  ENTRY_DATA_BYTES_MAX,
  ERROR_KINDS,
  FRAME_BYTES_MAX,
  PROTOCOL_VERSION,
  PUSH_ENTRIES_MAX,
  PUSH_IN_FLIGHT_MAX,
} from '@ledgerline/protocol'
import { WebSocketServer, type WebSocket } from 'ws'

/** Who a token speaks for, or why the relay refuses it. */
export type FakeAuth =
  | { readonly subject: string; readonly expiresAt: number }
  | { readonly error: ErrorKind; readonly message: string }

/** A copy of the fake relay's log, to start it again on later (a backup restored). */
export interface FakeLogBackup {
  readonly state: LogState
}

export interface FakeRelayOptions {
  readonly schema?: Schema | undefined
  readonly tenant?: string | undefined
  readonly partitions?: number | undefined
  /** What `welcome` advertises (and the relay enforces: a longer push is `too_large`). */
  readonly limits?: Partial<RelayLimitsAdvertised> | undefined
  /** Ack results per part; default: every result in one part. */
  readonly ackPartResults?: number | undefined
  /** `retryAfterMs` of deferrals. */
  readonly retryAfterMs?: number | undefined
  /** Say `welcome.snapshots` and answer bootstrap and fetch (see the header). */
  readonly snapshots?: boolean | undefined
  /** Snapshots per `snapshots` page (default 100). */
  readonly snapshotsPageMax?: number | undefined
  /** Entries per `fetched` page (default 100). */
  readonly fetchPageEntries?: number | undefined
  /**
   * A misbehaving relay: sends snapshots under any fold key (leaving out entries only of those
   * under the client's keys), to prove the client drops the others.
   */
  readonly anyFoldKey?: boolean | undefined
}

export interface FakeRelay {
  readonly url: string
  /** The log's entries, in commit order (the current log: replaced by `restore`). */
  readonly log: StoredEntry[]
  readonly connections: () => number
  /** Frames seen since the start, by type. */
  readonly seen: {
    hello: number
    push: number
    renew: number
    subscribe: number
    fetch: number
    /** Every subscribe, as sent, with the clientId of its hello. */
    subscribes: (SubscribeMessage & { readonly clientId: string })[]
    /** Most fetches unanswered at once. */
    fetchInFlightMax: number
  }
  /** The ledger snapshots it keeps, by entity (`takeSnapshots`; a test may edit them). */
  readonly snapshots: Map<string, LedgerSnapshot>
  /**
   * Snapshots every entity with entries at its version now (`entities`: only those), under
   * `foldKeyOf(entity)` (default: the schema type's `type@version`).
   */
  takeSnapshots(entities?: readonly string[], foldKeyOf?: (entity: string) => string): void
  /** Retention: `fetch` answers history below `version` of `entity` as dropped. */
  dropBelow(entity: string, version: number): void
  /** Return an error kind to answer a subscribe with it (and close). */
  failSubscribe: (m: SubscribeMessage & { readonly clientId: string }) => ErrorKind | undefined
  /** Hold `fetched` answers until `release()` is called (to see requests in flight). */
  holdFetches: boolean
  /** New subscriptions get their `snapshots` pages but no entries (catch-up cut short). */
  pauseEntries: boolean
  releaseFetches(): void
  /** The log's identity, as `welcome` says it; a test may change it. */
  identity: LogIdentity
  /** The schema the relay decides with; a test may change it (the relay's schema ships). */
  schema: Schema | undefined
  /** Checks a token (hello and renew); default: every token is subject `till` for an hour. */
  auth: (token: string) => FakeAuth
  /** Return false to swallow the ack of a push (a lost ack). */
  onPush: (entries: readonly Entry[]) => boolean
  /** Return an error kind to answer a push with it (and close) instead of deciding it. */
  failPush: (entries: readonly Entry[]) => ErrorKind | undefined
  /** The high-water mark of `clientId`. */
  high(clientId: string): number
  /**
   * Head office's decision of entries a store hub forwards (`fake-hub.ts`), each as pushed by
   * its own `subject`, as a forwarded push would have them decided; subscribers get the pages.
   */
  forward(entries: readonly { entry: Entry; subject: string }[]): AckResult[]
  /** What the log answers a resend of `e` with, if it decided it already (no decision made). */
  known(e: Entry): AckResult | undefined
  /** A copy of the log as it is now. */
  backup(): FakeLogBackup
  /** Replaces the log with `backup` (or an empty one) and cuts every connection. */
  restore(backup: FakeLogBackup | undefined): void
  dropAll(): void
  close(): Promise<void>
}

export async function createFakeRelay(options: FakeRelayOptions = {}): Promise<FakeRelay> {
  const tenant = options.tenant ?? 't1'
  const partitions = options.partitions ?? 4
  const limits: RelayLimitsAdvertised = {
    pushEntriesMax: PUSH_ENTRIES_MAX,
    pushBytesMax: FRAME_BYTES_MAX,
    entryDataBytesMax: ENTRY_DATA_BYTES_MAX,
    pushInFlightMax: PUSH_IN_FLIGHT_MAX,
    ...options.limits,
  }
  let state = emptyState(partitions)
  const log: StoredEntry[] = []
  const subs = new Set<Sub>()
  const snapshots = new Map<string, LedgerSnapshot>()
  const dropped = new Map<string, number>()
  const heldFetches: (() => void)[] = []
  let fetchesOut = 0
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 })
  await new Promise<void>((r) => server.once('listening', () => r()))
  const port = (server.address() as { port: number }).port
  const send = (ws: WebSocket, m: RelayMessage) => ws.send(encodeMessage(m))
  const fail = (ws: WebSocket, kind: ErrorKind, message: string) => {
    send(ws, { type: 'error', kind, message, backoffMsMin: ERROR_KINDS[kind].backoffMsMin })
    ws.close(ERROR_KINDS[kind].closeCode)
  }
  const syncLog = () => log.splice(0, log.length, ...state.entries)

  const store = (e: Entry): StoredEntry => {
    const head = state.heads.get(e.entity) ?? {
      state: relay.schema?.find(e.entity)?.initial,
      version: 0,
    }
    const partition = partitionOf(tenant, e.entity, partitions)
    state.offsets[partition] = (state.offsets[partition] ?? 0) + 1
    const stored = {
      ...e,
      version: head.version + 1,
      partition,
      offset: state.offsets[partition] as number,
      committedAt: Date.now(),
    }
    const type = relay.schema?.find(e.entity)
    state.heads.set(e.entity, {
      state: type ? type.reduce(head.state, e) : null,
      version: stored.version,
    })
    state.entries.push(stored)
    log.push(stored)
    return stored
  }

  /** The decision of one pushed entry (the server log's, in small). */
  const decideEntry = (e: Entry, subject: string): AckResult => {
    const digest = digestHex(entryDigest(e))
    const known = state.decided.get(e.id)
    if (known !== undefined) {
      if (known.digest !== digest)
        return { id: e.id, status: 'id_conflict', reason: 'another entry holds this id' }
      return known.result.status === 'appended'
        ? { ...known.result, status: 'duplicate' }
        : known.result
    }
    const deferral = state.deferred.get(e.id)
    if (deferral !== undefined && deferral !== digest)
      return { id: e.id, status: 'id_conflict', reason: 'another entry holds this id' }
    const high = state.high.get(e.clientId) ?? 0
    if (deferral === undefined && e.clientSeq !== high + 1)
      return { id: e.id, status: 'refused', code: 'seq_gap', reason: 'gap', head: 0 }
    if (!state.subjects.has(e.clientId)) state.subjects.set(e.clientId, subject)
    state.high.set(e.clientId, Math.max(high, e.clientSeq))
    if (relay.schema !== undefined && relay.schema.find(e.entity) === undefined) {
      state.deferred.set(e.id, digest)
      return {
        id: e.id,
        status: 'deferred',
        code: 'unknown_type',
        reason: `no entity type for '${e.entity}' yet`,
        retryAfterMs: options.retryAfterMs ?? 1_000,
      }
    }
    state.deferred.delete(e.id)
    const head = state.heads.get(e.entity) ?? {
      state: relay.schema?.find(e.entity)?.initial,
      version: 0,
    }
    const d = decide(relay.schema, head, e, Date.now())
    let result: AckResult
    if (d._tag === 'defer') {
      // The log would record the deferral: the clientSeq is used up, a resend is decided again.
      state.deferred.set(e.id, digest)
      return {
        id: e.id,
        status: 'deferred',
        code: d.code,
        reason: d.reason,
        retryAfterMs: d.retryAfterMs,
      }
    }
    if (d._tag === 'refuse') {
      result = { id: e.id, status: 'refused', code: d.code, reason: d.reason, head: head.version }
    } else {
      const s = store(e)
      const corrections: CorrectionRef[] = d.corrections.map(store).map((c) => ({
        id: c.id,
        entity: c.entity,
        kind: c.kind,
        version: c.version,
        partition: c.partition,
        offset: c.offset,
      }))
      result = {
        id: e.id,
        status: 'appended',
        version: s.version,
        partition: s.partition,
        offset: s.offset,
        committedAt: s.committedAt,
        corrections,
      }
    }
    state.decided.set(e.id, { digest, result })
    return result
  }

  const pump = () => {
    const heads: Record<number, number> = {}
    for (let p = 0; p < partitions; p++) heads[p] = state.offsets[p] as number
    pumpPages(subs, state.entries, heads, send)
  }

  const relay: FakeRelay = {
    url: `ws://127.0.0.1:${port}/sync`,
    log,
    connections: () => server.clients.size,
    seen: {
      hello: 0,
      push: 0,
      renew: 0,
      subscribe: 0,
      fetch: 0,
      subscribes: [],
      fetchInFlightMax: 0,
    },
    snapshots,
    takeSnapshots(entities, foldKeyOf) {
      const names = entities ?? [...state.heads.keys()]
      for (const entity of names) {
        const type = relay.schema?.find(entity)
        const ledger = state.entries.filter((e) => e.entity === entity)
        const last = ledger.at(-1)
        if (type === undefined || last === undefined) continue
        let folded: unknown = type.initial
        for (const e of ledger) folded = type.reduce(folded, e)
        snapshots.set(entity, {
          entity,
          foldKey: foldKeyOf?.(entity) ?? `${type.type}@${type.version}`,
          version: last.version,
          partition: last.partition,
          offset: last.offset,
          committedAt: last.committedAt,
          state: folded as LedgerSnapshot['state'],
        })
      }
    },
    dropBelow(entity, version) {
      dropped.set(entity, version)
    },
    failSubscribe: () => undefined,
    holdFetches: false,
    pauseEntries: false,
    releaseFetches() {
      relay.holdFetches = false
      for (const answer of heldFetches.splice(0)) answer()
    },
    identity: { id: 'fake-log-0123456789abcdef', generation: 1 },
    schema: options.schema,
    auth: () => ({ subject: 'till', expiresAt: Date.now() + 3_600_000 }),
    onPush: () => true,
    failPush: () => undefined,
    high: (clientId) => state.high.get(clientId) ?? 0,
    forward(entries) {
      const out = entries.map(({ entry, subject }) => decideEntry(entry, subject))
      pump()
      return out
    },
    known(e) {
      const known = state.decided.get(e.id)
      if (known === undefined) return undefined
      if (known.digest !== digestHex(entryDigest(e)))
        return { id: e.id, status: 'id_conflict', reason: 'another entry holds this id' }
      return known.result.status === 'appended'
        ? { ...known.result, status: 'duplicate' }
        : known.result
    },
    backup: () => ({ state: structuredClone(state) }),
    restore(backup) {
      state = backup === undefined ? emptyState(partitions) : structuredClone(backup.state)
      syncLog()
      relay.dropAll()
    },
    dropAll() {
      for (const ws of server.clients) ws.terminate()
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const ws of server.clients) ws.terminate()
        server.close(() => resolve())
      }),
  }
  server.on('connection', (ws) => {
    let clientId = ''
    let subject = ''
    ws.on('close', () => {
      for (const s of subs) if (s.ws === ws) subs.delete(s)
    })
    ws.on('message', (data: Buffer) => {
      const m = decodeMessage(new Uint8Array(data)) as ClientMessage
      switch (m.type) {
        case 'hello': {
          relay.seen.hello++
          const auth = relay.auth(m.token)
          if ('error' in auth) return fail(ws, auth.error, auth.message)
          const bound = state.subjects.get(m.clientId)
          if (bound !== undefined && bound !== auth.subject)
            return fail(ws, 'client_taken', 'this clientId belongs to another subject')
          clientId = m.clientId
          subject = auth.subject
          send(ws, {
            type: 'welcome',
            protocol: PROTOCOL_VERSION,
            tenant,
            subject,
            grants: { read: ['*'], write: ['*'] },
            role: 'head_office',
            log: relay.identity,
            limits,
            partitions,
            clientSeqHigh: state.high.get(clientId) ?? 0,
            serverTime: Date.now(),
            expiresAt: auth.expiresAt,
            ...(options.snapshots === true ? { snapshots: true } : {}),
          })
          return
        }
        case 'push': {
          relay.seen.push++
          if (m.entries.length > limits.pushEntriesMax) {
            return fail(
              ws,
              'too_large',
              `push of ${m.entries.length} entries; at most ${limits.pushEntriesMax}`,
            )
          }
          const failure = relay.failPush(m.entries)
          if (failure !== undefined) return fail(ws, failure, `push failed: ${failure}`)
          const out = m.entries.map((e) => decideEntry(e, subject))
          if (relay.onPush(m.entries)) {
            const part = Math.max(1, options.ackPartResults ?? out.length)
            for (let first = 0; first < out.length || first === 0; first += part) {
              const results = out.slice(first, first + part)
              const done = first + part >= out.length
              send(ws, { type: 'ack', batch: m.batch, first, results, done })
              if (done) break
            }
          }
          pump()
          return
        }
        case 'subscribe': {
          relay.seen.subscribe++
          relay.seen.subscribes.push({ ...m, clientId })
          const failure = relay.failSubscribe({ ...m, clientId })
          if (failure !== undefined) return fail(ws, failure, `subscribe failed: ${failure}`)
          const s: Sub = {
            ws,
            sub: m.sub,
            scope: m.scope,
            sent: { ...m.cursors },
            credit: m.credit,
            liveSent: false,
            paused: relay.pauseEntries,
          }
          if (m.bootstrap !== undefined && options.snapshots === true) {
            // Invariant 6: snapshots under the client's fold keys, but not for entities its
            // horizon wants whole; their entries at or below the snapshot are left out.
            const keys = new Set(m.bootstrap.foldKeys)
            const whole = m.bootstrap.whole
            const sent = [...snapshots.values()].filter((snap) => {
              if (!matchesAny(s.scope, snap.entity)) return false
              if (!keys.has(snap.foldKey) && options.anyFoldKey !== true) return false
              const recent = whole.some(
                (r) =>
                  matchesAny([r.pattern], snap.entity) &&
                  state.entries.some(
                    (e) =>
                      e.entity === snap.entity &&
                      e.version <= snap.version &&
                      e.committedAt >= r.since,
                  ),
              )
              return !recent
            })
            s.omit = new Map(
              sent
                .filter((snap) => keys.has(snap.foldKey))
                .map((snap) => [snap.entity, snap.version]),
            )
            const size = options.snapshotsPageMax ?? 100
            s.snapshotPages = []
            for (let at = 0; at < sent.length; at += size)
              s.snapshotPages.push(sent.slice(at, at + size))
          }
          subs.add(s)
          pump()
          return
        }
        case 'fetch': {
          relay.seen.fetch++
          fetchesOut++
          relay.seen.fetchInFlightMax = Math.max(relay.seen.fetchInFlightMax, fetchesOut)
          const answer = () => {
            fetchesOut--
            const below = dropped.get(m.entity) ?? 0
            const found = state.entries.filter(
              (e) => e.entity === m.entity && e.version < m.before && e.version >= below,
            )
            const size = options.fetchPageEntries ?? 100
            for (let at = 0; at < found.length || at === 0; at += size) {
              const done = at + size >= found.length
              send(ws, {
                type: 'fetched',
                req: m.req,
                entity: m.entity,
                entries: found.slice(at, at + size),
                done,
                ...(below > 1 ? { dropped: below } : {}),
              })
              if (done) break
            }
          }
          if (relay.holdFetches) heldFetches.push(answer)
          else answer()
          return
        }
        case 'credit':
          for (const s of subs) if (s.ws === ws && s.sub === m.sub) s.credit += m.pages
          pump()
          return
        case 'renew': {
          relay.seen.renew++
          const auth = relay.auth(m.token)
          if ('error' in auth) return fail(ws, auth.error, auth.message)
          if (auth.subject !== subject) return fail(ws, 'unauthorized', 'renew as another subject')
          send(ws, {
            type: 'renewed',
            expiresAt: auth.expiresAt,
            grants: { read: ['*'], write: ['*'] },
          })
          return
        }
        case 'ping':
          send(ws, { type: 'pong', t: m.t })
          return
        default:
          return
      }
    })
  })
  return relay
}

/** One subscription of a fake relay (or hub): what it was sent, and the credit it has left. */
export interface Sub {
  readonly ws: WebSocket
  readonly sub: number
  readonly scope: readonly string[]
  sent: Record<number, number>
  credit: number
  liveSent: boolean
  /** Bootstrap: entries of these entities at or below the version are left out. */
  omit?: Map<string, number> | undefined
  /** Bootstrap: `snapshots` pages still to send, before any entries. */
  snapshotPages?: LedgerSnapshot[][] | undefined
  /** Send no entries (a test cuts catch-up short). */
  paused?: boolean | undefined
}

/**
 * Sends each subscription the pages of `log` it has credit for (100 entries a page, cursors
 * after each page; `heads`: every partition's last offset, for the live page).
 */
export function pumpPages(
  subs: Iterable<Sub>,
  log: readonly StoredEntry[],
  heads: Readonly<Record<number, number>>,
  send: (ws: WebSocket, m: RelayMessage) => void,
): void {
  for (const s of subs) {
    // Bootstrap: snapshots first, a page of credit each (messages.ts invariant 7).
    while (s.credit > 0 && (s.snapshotPages?.length ?? 0) > 0) {
      const snapshots = s.snapshotPages?.shift() as LedgerSnapshot[]
      send(s.ws, { type: 'snapshots', sub: s.sub, snapshots })
      s.credit--
    }
    if ((s.snapshotPages?.length ?? 0) > 0 || s.paused === true) continue
    while (s.credit > 0) {
      const page = log
        .filter(
          (e) =>
            e.offset > (s.sent[e.partition] ?? 0) &&
            matchesAny(s.scope, e.entity) &&
            e.version > (s.omit?.get(e.entity) ?? 0),
        )
        .slice(0, 100)
      const cursors: Record<number, number> = { ...heads }
      const caughtUp = page.length < 100
      if (page.length === 0 && s.liveSent) break
      if (!caughtUp)
        for (const e of page) cursors[e.partition] = Math.max(s.sent[e.partition] ?? 0, e.offset)
      send(s.ws, { type: 'entries', sub: s.sub, entries: page, cursors, live: caughtUp })
      s.liveSent = true
      s.credit--
      s.sent = { ...s.sent, ...cursors }
      if (caughtUp) break
    }
  }
}

/** What the fake server log holds; plain data, so a backup is a structured clone. */
interface LogState {
  entries: StoredEntry[]
  /** Decided entries (appended or refused) by id, with the digest of their content. */
  decided: Map<string, { digest: string; result: AckResult }>
  /** Deferred entries by id: their digest (a resend with it is decided again). */
  deferred: Map<string, string>
  high: Map<string, number>
  heads: Map<string, { state: unknown; version: number }>
  offsets: number[]
  /** The subject each clientId is bound to. */
  subjects: Map<string, string>
}

function emptyState(partitions: number): LogState {
  return {
    entries: [],
    decided: new Map(),
    deferred: new Map(),
    high: new Map(),
    heads: new Map(),
    offsets: Array.from({ length: partitions }, () => 0),
    subjects: new Map(),
  }
}

// An in-memory store hub in front of a fake head office (`fake-relay.ts`), speaking protocol 3
// over `ws` on loopback, for the client's hub tests. It does what the decided design says a
// hub does, in small:
// - welcome with role `hub`, head office's log identity and `upstream`;
// - a push: an entry head office decided already gets head office's answer (`duplicate` for
//   an append); one in the store queue gets `stored` again (another digest: `id_conflict`);
//   a new one joins the store queue and gets `stored`;
// - the forwarder drains the store queue to head office in arrival order while the link is up
//   (`cut()` / `heal()`), keeping what head office defers or refuses as a `seq_gap`;
// - pages come from the mirror (head office's log as the hub last saw it), so cursors are head
//   office's; `store` messages carry other devices' queued entries (reset on subscribe, then
//   additions and removals); `upstream` messages say when the link changes;
// - `kill()`: the hub dies with its disk (its store queue is gone); `start()` brings up a new
//   one on the same port.
import type { Entry, StoredEntry } from '@ledgerline/core'
import { digestHex, entryDigest, matchesAny } from '@ledgerline/core'
import type { AckResult, ClientMessage, RelayMessage } from '@ledgerline/protocol'
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
import type { FakeRelay, Sub } from './fake-relay.ts'
import { pumpPages } from './fake-relay.ts'

export interface FakeHub {
  readonly url: string
  /** The store queue: entries head office has not confirmed, in hub order. */
  readonly queue: () => readonly Entry[]
  /** Pushes seen, by entry id (how often each was sent to the hub). */
  readonly pushed: Map<string, number>
  /** Cut the link to head office (nothing is forwarded, the mirror stops). */
  cut(): void
  /** The link is back: forward the store queue, catch the mirror up. */
  heal(): void
  /** Cut every register's socket (they reconnect). */
  dropAll(): void
  /** The hub dies with its disk: sockets cut, server closed, store queue gone. */
  kill(): Promise<void>
  /** A new hub on the same port (after `kill`): an empty store queue, the link as it was. */
  start(): Promise<void>
  close(): Promise<void>
}

interface Queued {
  readonly entry: Entry
  readonly digest: string
  readonly subject: string
}

interface HubSub extends Sub {
  /** The subscriber's clientId: its own entries are never in its store layer. */
  readonly clientId: string
}

export async function createFakeHub(
  hq: FakeRelay,
  options: { readonly port?: number; readonly connected?: boolean } = {},
): Promise<FakeHub> {
  const partitions = 4
  let connected = options.connected ?? true
  let since = Date.now()
  let queue: Queued[] = []
  /** Head office's log as the hub last saw it (the mirror). */
  let mirror: StoredEntry[] = []
  const subs = new Set<HubSub>()
  let server: WebSocketServer
  let port = options.port ?? 0
  const send = (ws: WebSocket, m: RelayMessage) => ws.send(encodeMessage(m))

  async function listen(): Promise<void> {
    server = new WebSocketServer({ host: '127.0.0.1', port })
    await new Promise<void>((r) => server.once('listening', () => r()))
    port = (server.address() as { port: number }).port
    server.on('connection', onConnection)
  }

  const catchUp = () => {
    if (connected) mirror = [...hq.log]
  }

  const storeMessage = (s: HubSub, entries: readonly Entry[], removed: readonly string[]) => {
    const shown = entries.filter((e) => e.clientId !== s.clientId && matchesAny(s.scope, e.entity))
    if (shown.length === 0 && removed.length === 0) return
    send(s.ws, { type: 'store', sub: s.sub, entries: shown, removed: [...removed], reset: false })
  }

  /** The forwarder: the store queue to head office, in order, while the link is up. */
  const forward = () => {
    if (!connected || queue.length === 0) return
    const results = hq.forward(queue.map((q) => ({ entry: q.entry, subject: q.subject })))
    const removed: string[] = []
    queue = queue.filter((q, i) => {
      const r = results[i] as AckResult
      const keep = r.status === 'deferred' || (r.status === 'refused' && r.code === 'seq_gap')
      if (!keep) removed.push(q.entry.id)
      return keep
    })
    catchUp()
    for (const s of subs) storeMessage(s, [], removed)
    pump()
  }

  const pump = () => {
    catchUp()
    const heads: Record<number, number> = {}
    for (const e of mirror) heads[e.partition] = Math.max(heads[e.partition] ?? 0, e.offset)
    pumpPages(subs, mirror, heads, send)
  }

  const answer = (e: Entry, subject: string): AckResult => {
    const digest = digestHex(entryDigest(e))
    const decided = hq.known(e)
    // A resend after head office decided: its answer (the hub's mirror and acks know it).
    if (decided !== undefined && connected) return decided
    const queued = queue.find((q) => q.entry.id === e.id)
    if (queued !== undefined) {
      if (queued.digest !== digest)
        return { id: e.id, status: 'id_conflict', reason: 'another entry holds this id' }
      return { id: e.id, status: 'stored' }
    }
    queue.push({ entry: e, digest, subject })
    for (const s of subs) storeMessage(s, [e], [])
    return { id: e.id, status: 'stored' }
  }

  function onConnection(ws: WebSocket): void {
    let clientId = ''
    let subject = ''
    ws.on('close', () => {
      for (const s of subs) if (s.ws === ws) subs.delete(s)
    })
    ws.on('message', (data: Buffer) => {
      const m = decodeMessage(new Uint8Array(data)) as ClientMessage
      switch (m.type) {
        case 'hello': {
          const auth = hq.auth(m.token)
          if ('error' in auth) {
            send(ws, {
              type: 'error',
              kind: auth.error,
              message: auth.message,
              backoffMsMin: ERROR_KINDS[auth.error].backoffMsMin,
            })
            ws.close()
            return
          }
          clientId = m.clientId
          subject = auth.subject
          const high = Math.max(
            hq.high(clientId),
            ...queue.filter((q) => q.entry.clientId === clientId).map((q) => q.entry.clientSeq),
          )
          send(ws, {
            type: 'welcome',
            protocol: PROTOCOL_VERSION,
            tenant: 't1',
            subject,
            grants: { read: ['*'], write: ['*'] },
            role: 'hub',
            upstream: { connected, since },
            log: hq.identity,
            limits: {
              pushEntriesMax: PUSH_ENTRIES_MAX,
              pushBytesMax: FRAME_BYTES_MAX,
              entryDataBytesMax: ENTRY_DATA_BYTES_MAX,
              pushInFlightMax: PUSH_IN_FLIGHT_MAX,
            },
            partitions,
            clientSeqHigh: high,
            serverTime: Date.now(),
            expiresAt: auth.expiresAt,
          })
          return
        }
        case 'push': {
          const results = m.entries.map((e) => {
            hub.pushed.set(e.id, (hub.pushed.get(e.id) ?? 0) + 1)
            return answer(e, subject)
          })
          send(ws, { type: 'ack', batch: m.batch, first: 0, results, done: true })
          forward()
          return
        }
        case 'subscribe': {
          const s: HubSub = {
            ws,
            sub: m.sub,
            scope: m.scope,
            clientId,
            sent: { ...m.cursors },
            credit: m.credit,
            liveSent: false,
          }
          subs.add(s)
          const shown = queue
            .map((q) => q.entry)
            .filter((e) => e.clientId !== clientId && matchesAny(s.scope, e.entity))
          send(ws, { type: 'store', sub: s.sub, entries: shown, removed: [], reset: true })
          pump()
          return
        }
        case 'credit':
          for (const s of subs) if (s.ws === ws && s.sub === m.sub) s.credit += m.pages
          pump()
          return
        case 'ping':
          send(ws, { type: 'pong', t: m.t })
          return
        default:
          return
      }
    })
  }

  const setLink = (up: boolean) => {
    connected = up
    since = Date.now()
    for (const ws of server.clients) send(ws, { type: 'upstream', connected, since })
  }

  await listen()
  catchUp()
  const hub: FakeHub = {
    get url() {
      return `ws://127.0.0.1:${port}/sync`
    },
    queue: () => queue.map((q) => q.entry),
    pushed: new Map(),
    cut: () => setLink(false),
    heal() {
      setLink(true)
      catchUp()
      pump()
      forward()
    },
    dropAll() {
      for (const ws of server.clients) ws.terminate()
    },
    async kill() {
      for (const ws of server.clients) ws.terminate()
      await new Promise<void>((r) => server.close(() => r()))
      subs.clear()
      queue = []
    },
    async start() {
      await listen()
      catchUp()
    },
    close: () => hub.kill(),
  }
  return hub
}

// An in-memory stand-in for the relay, speaking the real wire protocol over `ws` on loopback.
// Used only where a test needs to steer the relay (drop an ack, reorder a page); the
// integration tests run against the real relay (`createRelay`).
import type { Entry, Schema, StoredEntry } from '@ledgerline/core'
import { decide, matchesAny, partitionOf } from '@ledgerline/core'
import type { AckResult, ClientMessage, RelayMessage } from '@ledgerline/protocol'
import { decodeMessage, encodeMessage } from '@ledgerline/protocol'
import { WebSocketServer, type WebSocket } from 'ws'

export interface FakeRelay {
  readonly url: string
  readonly log: StoredEntry[]
  readonly connections: () => number
  /** Return false to swallow the ack of a push (a lost ack). */
  onPush: (entries: readonly Entry[]) => boolean
  dropAll(): void
  close(): Promise<void>
}

export async function createFakeRelay(
  options: { schema?: Schema; tenant?: string; partitions?: number } = {},
): Promise<FakeRelay> {
  const tenant = options.tenant ?? 't1'
  const partitions = options.partitions ?? 4
  const log: StoredEntry[] = []
  const results = new Map<string, AckResult>()
  const high = new Map<string, number>()
  const deferred = new Set<string>()
  const heads = new Map<string, { state: unknown; version: number }>()
  const offsets = Array.from({ length: partitions }, () => 0)
  const subs = new Set<{
    ws: WebSocket
    sub: number
    scope: readonly string[]
    sent: Record<number, number>
    credit: number
  }>()
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 })
  await new Promise<void>((r) => server.once('listening', () => r()))
  const port = (server.address() as { port: number }).port
  const send = (ws: WebSocket, m: RelayMessage) => ws.send(encodeMessage(m))

  const store = (e: Entry): StoredEntry => {
    const head = heads.get(e.entity) ?? {
      state: options.schema?.find(e.entity)?.initial,
      version: 0,
    }
    const partition = partitionOf(tenant, e.entity, partitions)
    offsets[partition] = (offsets[partition] ?? 0) + 1
    const stored = {
      ...e,
      version: head.version + 1,
      partition,
      offset: offsets[partition] as number,
      committedAt: Date.now(),
    }
    const type = options.schema?.find(e.entity)
    heads.set(e.entity, {
      state: type ? type.reduce(head.state, e) : null,
      version: stored.version,
    })
    log.push(stored)
    return stored
  }

  const pump = () => {
    for (const s of subs) {
      while (s.credit > 0) {
        const page = log
          .filter((e) => e.offset > (s.sent[e.partition] ?? 0) && matchesAny(s.scope, e.entity))
          .slice(0, 100)
        const cursors: Record<number, number> = {}
        for (let p = 0; p < partitions; p++) cursors[p] = offsets[p] as number
        const caughtUp = page.length < 100
        const live = caughtUp
        if (page.length === 0 && (s as { liveSent?: boolean }).liveSent) break
        if (!caughtUp)
          for (const e of page) cursors[e.partition] = Math.max(s.sent[e.partition] ?? 0, e.offset)
        send(s.ws, { type: 'entries', sub: s.sub, entries: page, cursors, live })
        ;(s as { liveSent?: boolean }).liveSent = true
        s.credit--
        s.sent = cursors
        if (caughtUp) break
      }
    }
  }

  const relay: FakeRelay = {
    url: `ws://127.0.0.1:${port}/sync`,
    log,
    connections: () => server.clients.size,
    onPush: () => true,
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
    ws.on('close', () => {
      for (const s of subs) if (s.ws === ws) subs.delete(s)
    })
    ws.on('message', (data: Buffer) => {
      const m = decodeMessage(new Uint8Array(data)) as ClientMessage
      switch (m.type) {
        case 'hello':
          clientId = m.clientId
          send(ws, {
            type: 'welcome',
            protocol: 1,
            tenant,
            grants: { read: ['*'], write: ['*'] },
            partitions,
            clientSeqHigh: high.get(clientId) ?? 0,
            serverTime: Date.now(),
            expiresAt: Date.now() + 3600_000,
          })
          return
        case 'push': {
          const out: AckResult[] = m.entries.map((e) => {
            const known = results.get(e.id)
            if (known !== undefined)
              return known.status === 'appended' ? { ...known, status: 'duplicate' } : known
            // A deferral used up its clientSeq and is decided again when resent, as in the log.
            const again = deferred.delete(e.id)
            if (!again && e.clientSeq !== (high.get(e.clientId) ?? 0) + 1)
              return { id: e.id, status: 'refused', code: 'seq_gap', reason: 'gap', head: 0 }
            if (!again) high.set(e.clientId, e.clientSeq)
            const head = heads.get(e.entity) ?? {
              state: options.schema?.find(e.entity)?.initial,
              version: 0,
            }
            const d = decide(options.schema, head, e, Date.now())
            let r: AckResult
            if (d._tag === 'defer') {
              deferred.add(e.id)
              return {
                id: e.id,
                status: 'deferred',
                code: d.code,
                reason: d.reason,
                retryAfterMs: d.retryAfterMs,
              }
            }
            if (d._tag === 'refuse')
              r = {
                id: e.id,
                status: 'refused',
                code: d.code,
                reason: d.reason,
                head: head.version,
              }
            else {
              const s = store(e)
              const corrections = d.corrections.map(store)
              r = {
                id: e.id,
                status: 'appended',
                version: s.version,
                partition: s.partition,
                offset: s.offset,
                committedAt: s.committedAt,
                corrections,
              }
            }
            results.set(e.id, r)
            return r
          })
          if (relay.onPush(m.entries)) send(ws, { type: 'ack', batch: m.batch, results: out })
          pump()
          return
        }
        case 'subscribe':
          subs.add({ ws, sub: m.sub, scope: m.scope, sent: { ...m.cursors }, credit: m.credit })
          pump()
          return
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
  })
  return relay
}

// Goal: the sync loop stores received pages in arrival order and never lets a later page move
// the cursor past an earlier page that was not stored (the simulator's "delayed page" hazard:
// a crash in between would lose the earlier page for good, since the relay resumes from the
// cursor); a restored database confirms its outbox under its own ids and moves what conflicts
// (and everything after it) to a derived clientId before anything else goes (issue 12 cases 1,
// 2), also when the conflict comes after the confirm phase; it gives credit back only for
// stored pages and ignores pages of another subscription.
// Method: a steerable relay (test-support/fake-relay.ts) holds 450 entries, sent as pages of
// 100; the sync loop runs over a client store stub whose first page write is slow and then fails (a
// transient IndexedDB error). The stub records every offset it stored; at the end each offset
// of the relay's log must be stored exactly once, with no gap below any stored cursor. The
// other cases run over testkit's in-memory transport with a scripted relay end, an in-memory
// client store and a manual scheduler.
import { afterEach, describe, expect, it } from 'vitest'
import { WebSocket } from 'ws'
import type { StoredEntry } from '@ledgerline/core'
import type { ClientMessage, Cursors, LogIdentity, RelayMessage } from '@ledgerline/protocol'
import { decodeMessage, encodeMessage } from '@ledgerline/protocol'
import { createMemoryTransport, type MemoryServerSocket } from '@ledgerline/testkit'
import {
  appendedResult,
  CLIENT,
  entry,
  meta,
  NOW,
  OTHER,
  stored as storedEntry,
} from '../test-support/entries.ts'
import { createManualScheduler, settle } from '../test-support/manual-scheduler.ts'
import { ackMessage, LOG, welcomeMessage } from '../test-support/messages.ts'
import { createFakeRelay, type FakeRelay } from '../test-support/fake-relay.ts'
import { eventually, makeClient, schema, seededRandom, testSeed } from '../test-support/setup.ts'
import type { Client } from './client.ts'
import type { ClientStore, PageApplied, PageIn } from './client-store.ts'
import { CREDIT_WINDOW_PAGES } from './limits.ts'
import { createMemoryClientStore } from './memory-client-store.ts'
import { deriveClientId } from './restore-recovery.ts'
import type { Sync } from './sync-api.ts'
import type { WebSocketConstructor } from './transport.ts'
import { createSync } from './sync.ts'

const TOKEN = 'x.eyJ0ZW5hbnQiOiJ0MSJ9.y' // payload {"tenant":"t1"}; the fake relay checks nothing
let relay: FakeRelay | undefined
let sync: Sync | undefined
const clients: Client[] = []
afterEach(async () => {
  sync?.stop()
  sync = undefined
  for (const c of clients.splice(0)) await c.close()
  await relay?.close()
  relay = undefined
})

describe('sync loop', () => {
  it('stores pages in arrival order: a failed page is never overtaken by a later one', async () => {
    relay = await createFakeRelay({ schema, partitions: 2 })
    const writer = makeClient({
      url: relay.url,
      token: TOKEN,
      random: seededRandom(testSeed('page-order-writer')),
    })
    clients.push(writer)
    for (let i = 0; i < 5; i++) {
      await writer.appendMany(
        Array.from({ length: 90 }, (_, j) => ({
          entity: `order/o${j % 7}`,
          kind: 'order.line',
          data: { i, j },
        })),
      )
    }
    expect(await writer.synced({ timeoutMs: 20_000 })).toEqual({ _tag: 'synced' })
    await writer.close()
    const logged = relay.log.length

    const stored = new Map<string, number>() // `${partition}:${offset}` → times stored
    let cursors: Cursors = {}
    let writes = 0
    let gaps = 0
    const store = stubStore({
      cursors: () => cursors,
      async applyPages(pages) {
        writes++
        if (writes === 1) {
          // The first write is slow, then fails: later pages have arrived meanwhile.
          await new Promise((r) => setTimeout(r, 50))
          throw new Error('transient IndexedDB failure')
        }
        const next: Record<number, number> = { ...cursors }
        const entities = new Set<string>()
        let count = 0
        for (const page of pages) {
          for (const e of page.entries as StoredEntry[]) {
            if (e.offset <= (next[e.partition] ?? 0)) continue
            // A gap: an entry above the cursor + 1 means entries below it were skipped.
            if (e.offset !== (next[e.partition] ?? 0) + 1) gaps++
            next[e.partition] = e.offset
            const key = `${e.partition}:${e.offset}`
            stored.set(key, (stored.get(key) ?? 0) + 1)
            entities.add(e.entity)
            count++
          }
          for (const [p, o] of Object.entries(page.cursors))
            next[Number(p)] = Math.max(next[Number(p)] ?? 0, o)
        }
        cursors = next
        return {
          entities,
          based: new Set(),
          corrections: [],
          stored: count,
          own: 0,
          ownReceived: [],
          chunks: [],
          settled: new Map(),
          cursors: next,
          stagedKeys: 0,
        }
      },
    })
    let live = false
    sync = createSync({
      url: relay.url,
      WebSocket: WebSocket as unknown as WebSocketConstructor,
      token: async () => TOKEN,
      invalidateToken: () => {},
      scope: ['*'],
      clientStore: store,
      now: () => Date.now(),
      random: () => 0,
      newClientId: () => 'b'.repeat(32),
      events: {
        state: (s) => {
          live = s.live
        },
        acked: () => {},
        page: () => {},
        reissued: () => {},
        reset: () => {},
      },
    })
    sync.start()
    const heads: Record<number, number> = {}
    for (const e of relay.log) heads[e.partition] = Math.max(heads[e.partition] ?? 0, e.offset)
    await eventually(
      () => live && Object.entries(heads).every(([p, o]) => (cursors[Number(p)] ?? 0) >= o),
      20_000,
      'the cursors to reach the head of the log',
    )
    expect(gaps).toBe(0)
    expect([...stored.values()].every((n) => n === 1)).toBe(true)
    expect(stored.size).toBe(logged)
  })
})

describe('sync loop over a scripted relay', () => {
  const URL = 'memory://relay/sync'
  const welcome = (socket: MemoryServerSocket, clientSeqHigh: number, log: LogIdentity = LOG) =>
    send(
      socket,
      welcomeMessage({
        partitions: 1,
        clientSeqHigh,
        serverTime: NOW,
        expiresAt: NOW + 3_600_000,
        log,
      }),
    )
  const send = (socket: MemoryServerSocket, m: RelayMessage) => socket.send(encodeMessage(m))

  async function setup(answer: (socket: MemoryServerSocket, m: ClientMessage) => void) {
    const transport = createMemoryTransport({ defer: (fn) => void setImmediate(fn) })
    const got: ClientMessage[] = []
    transport.listen(URL, (socket) =>
      socket.onMessage((bytes) => {
        const m = decodeMessage(bytes) as ClientMessage
        got.push(m)
        answer(socket, m)
      }),
    )
    const clientStore = createMemoryClientStore()
    await clientStore.init(() => CLIENT, NOW)
    const reissued: ReadonlyMap<string, string>[] = []
    const states: boolean[] = []
    const scheduler = createManualScheduler(NOW)
    sync = createSync({
      url: URL,
      WebSocket: transport.WebSocket,
      token: async () => TOKEN,
      invalidateToken: () => {},
      scope: ['*'],
      clientStore,
      now: scheduler.now,
      random: () => 0,
      newClientId: () => OTHER,
      scheduler,
      events: {
        state: (s) => states.push(s.syncing),
        acked: () => {},
        page: () => {},
        reissued: (renamed) => reissued.push(renamed),
        reset: () => {},
      },
    })
    return { clientStore, got, reissued, states, scheduler }
  }

  it('confirms a restored database’s outbox under its own ids, then moves what conflicts to a derived id', async () => {
    // Issue 12 case 2: the log holds clientSeq 1..5 of CLIENT; this copy's 1 is the same entry
    // (duplicate), its 2 another (id_conflict). 1 is done; 2 moves, and is pushed as the new id.
    const t = await setup((socket, m) => {
      if (m.type === 'hello') welcome(socket, m.clientId === CLIENT ? 5 : 0)
      if (m.type === 'push') {
        const results = m.entries.map((e) =>
          e.clientId !== CLIENT
            ? appendedResult(e, 0, 10 + e.clientSeq)
            : e.clientSeq === 1
              ? { ...appendedResult(e, 0, 1), status: 'duplicate' as const }
              : { id: e.id, status: 'id_conflict' as const, reason: 'another entry' },
        )
        send(socket, ackMessage(m.batch, results))
      }
    })
    await appendTwo(t.clientStore)
    const meta = await t.clientStore.init(() => CLIENT, NOW)
    const derived = deriveClientId(meta.meta.deviceSecret, CLIENT, 5)
    sync?.start()
    await settle()
    const pushes = () =>
      t.got.flatMap((m) => (m.type === 'push' ? [m.entries.map((e) => e.id)] : []))
    // Only what the log already has of this clientId goes out under it, and nothing after it.
    expect(pushes()).toEqual([[`${CLIENT}-1`, `${CLIENT}-2`]])
    expect(t.reissued.map((r) => [...r])).toEqual([[[`${CLIENT}-2`, `${derived}-1`]]])
    expect(await t.clientStore.outcome(`${CLIENT}-1`)).toMatchObject({ _tag: 'duplicate' })
    expect(await t.clientStore.outcome(`${CLIENT}-2`)).toEqual({
      _tag: 'reissued',
      as: `${derived}-1`,
    })
    await t.scheduler.advance(1_000)
    await settle()
    const hellos = t.got.filter((m) => m.type === 'hello')
    expect(hellos.map((m) => m.clientId)).toEqual([CLIENT, derived])
    expect(pushes()).toEqual([[`${CLIENT}-1`, `${CLIENT}-2`], [`${derived}-1`]])
    expect((await t.clientStore.counters()).outboxEntries).toBe(0)
  })

  it('moves a restored database that the log knows further, even when every record is a duplicate', async () => {
    // Issue 12 case 1: a copy restored after the till synced 1, 2 and sold 3 (high 3, seqLast 2):
    // 1 and 2 are the same entries (duplicate, done); the next sale must not be 3 again.
    const t = await setup((socket, m) => {
      if (m.type === 'hello') welcome(socket, m.clientId === CLIENT ? 3 : 0)
      if (m.type === 'push') {
        const results = m.entries.map((e) => ({
          ...appendedResult(e, 0, e.clientSeq),
          status: e.clientId === CLIENT ? ('duplicate' as const) : ('appended' as const),
        }))
        send(socket, ackMessage(m.batch, results))
      }
    })
    await appendTwo(t.clientStore)
    sync?.start()
    await settle()
    await t.scheduler.advance(1_000)
    await settle()
    const counters = await t.clientStore.counters()
    expect(counters).toMatchObject({ outboxEntries: 0, seqLast: 0 })
    expect(counters.clientId).not.toBe(CLIENT)
    expect(t.got.filter((m) => m.type === 'hello').map((m) => m.clientId)).toEqual([
      CLIENT,
      counters.clientId,
    ])
  })

  it('recovers from an id_conflict met after the confirm phase on the next session', async () => {
    // Another copy of this database pushed clientSeq 2 first: this one's 2 conflicts. It is
    // kept, the flag is set (crash-safe), the socket closes, and the next session moves it.
    let high = 0
    const t = await setup((socket, m) => {
      if (m.type === 'hello') welcome(socket, m.clientId === CLIENT ? high : 0)
      if (m.type === 'push') {
        const results = m.entries.map((e) =>
          e.clientId === CLIENT && e.clientSeq === 2
            ? { id: e.id, status: 'id_conflict' as const, reason: 'another entry' }
            : e.clientId === CLIENT && e.clientSeq === 1 && high >= 1
              ? { ...appendedResult(e, 0, 1), status: 'duplicate' as const }
              : appendedResult(e, 0, 10 + e.clientSeq),
        )
        high = 2
        send(socket, ackMessage(m.batch, results))
      }
    })
    await appendTwo(t.clientStore)
    const { meta } = await t.clientStore.init(() => CLIENT, NOW)
    sync?.start()
    await settle()
    // Closed after the conflict; the record is kept and the next session will recover.
    expect((await t.clientStore.counters()).outboxEntries).toBe(1)
    await t.scheduler.advance(1_000)
    await settle()
    const derived = deriveClientId(meta.deviceSecret, CLIENT, 2)
    expect(t.got.filter((m) => m.type === 'hello').map((m) => m.clientId)).toEqual([
      CLIENT,
      CLIENT,
      derived,
    ])
    const pushed = t.got.flatMap((m) => (m.type === 'push' ? m.entries.map((e) => e.id) : []))
    expect(pushed).toEqual([`${CLIENT}-1`, `${CLIENT}-2`, `${CLIENT}-2`, `${derived}-1`])
    expect(await t.clientStore.outcome(`${CLIENT}-2`)).toEqual({
      _tag: 'reissued',
      as: `${derived}-1`,
    })
  })

  it('moves the outbox on a client_taken while a recovery is pending, parks on one without', async () => {
    // Finding C of the product simulation: a restored log welcomed this database (the move was
    // due, `recovering`), the till went away before it moved, and an impostor bound the old
    // clientId on that log. The refusal names the log the database already knows; the pending
    // recovery still moves everything, to the id a welcome's recovery would have derived.
    const restored = { id: 'restored-log-0123456789', generation: 2 }
    const taken = (socket: MemoryServerSocket) => {
      send(socket, {
        type: 'error',
        kind: 'client_taken',
        message: 'another subject',
        backoffMsMin: 60_000,
        log: restored,
      })
      socket.close(4409)
    }
    const t = await setup((socket, m) => {
      if (m.type === 'hello' && m.clientId === CLIENT) taken(socket)
      else if (m.type === 'hello') welcome(socket, 0, restored)
      if (m.type === 'push') {
        send(
          socket,
          ackMessage(
            m.batch,
            m.entries.map((e) => appendedResult(e, 0, e.clientSeq)),
          ),
        )
      }
    })
    await appendTwo(t.clientStore)
    const session = { clientId: CLIENT, tenant: 't1', high: 0 }
    await t.clientStore.beginSession({ ...session, log: LOG }, () => 10)
    const begun = await t.clientStore.beginSession({ ...session, log: restored }, () => 10)
    expect(begun).toMatchObject({ recovering: true, logChanged: true })
    const derived = deriveClientId(begun._tag === 'begun' ? begun.meta.deviceSecret : '', CLIENT, 0)
    sync?.start()
    await settle()
    await t.scheduler.advance(1_000)
    await settle()
    expect(t.got.filter((m) => m.type === 'hello').map((m) => m.clientId)).toEqual([
      CLIENT,
      derived,
    ])
    const pushed = t.got.flatMap((m) => (m.type === 'push' ? m.entries.map((e) => e.id) : []))
    expect(pushed).toEqual([`${derived}-1`, `${derived}-2`])
    expect((await t.clientStore.counters()).outboxEntries).toBe(0)

    // Under the new id, the same log refuses again: no recovery is pending now, so it parks.
    sync?.stop()
    const u = await setup((socket, m) => {
      if (m.type === 'hello') taken(socket)
    })
    await u.clientStore.beginSession({ ...session, log: restored }, () => 10)
    await appendTwo(u.clientStore)
    sync?.start()
    await settle()
    await u.scheduler.advance(10 * 60_000)
    await settle()
    expect(u.got.filter((m) => m.type === 'hello').map((m) => m.clientId)).toEqual([CLIENT])
    expect(sync?.state().lastError?.kind).toBe('client_taken')
    expect((await u.clientStore.counters()).outboxEntries).toBe(2)
  })

  it('gives credit back for stored pages only, and ignores pages of another subscription', async () => {
    let offset = 0
    const page = (socket: MemoryServerSocket, sub: number) => {
      offset++
      send(socket, {
        type: 'entries',
        sub,
        entries: [storedEntry(entry('c'.repeat(32), offset), offset, 0, offset)],
        cursors: { 0: offset },
        live: false,
      })
    }
    const t = await setup((socket, m) => {
      if (m.type === 'hello') welcome(socket, 0)
      if (m.type === 'subscribe') {
        page(socket, m.sub + 1) // not this subscription's: dropped (its cursor is passed later)
        for (let i = 0; i < CREDIT_WINDOW_PAGES; i++) page(socket, m.sub)
      }
    })
    sync?.start()
    await settle()
    await sync?.idle()
    const credits = t.got.filter((m) => m.type === 'credit')
    expect(credits.map((m) => m.pages).reduce((a, b) => a + b, 0)).toBe(CREDIT_WINDOW_PAGES)
    expect(credits.every((m) => m.pages >= CREDIT_WINDOW_PAGES / 2)).toBe(true)
    expect(await t.clientStore.prepareCursors('t1', JSON.stringify(['*']), () => true)).toEqual({
      0: CREDIT_WINDOW_PAGES + 1,
    })
    // Online and not live yet: syncing (catch-up runs).
    expect(sync?.state()).toMatchObject({ online: true, live: false, syncing: true })
  })
})

/** Two entries in the outbox (clientSeq 1 and 2 of a new database). */
function appendTwo(store: ClientStore) {
  return store.append(
    (c, f) => [entry(c, f), entry(c, f + 1)],
    { entriesMax: 10, bytesMax: 1e6 },
    NOW,
    () => 10,
  )
}

/** A client store that keeps nothing but what the test records; the outbox is always empty. */
function stubStore(o: {
  cursors: () => Cursors
  applyPages: (pages: readonly PageIn[]) => Promise<PageApplied>
}): ClientStore {
  const unused = () => Promise.reject(new Error('not used by this test'))
  return {
    init: unused,
    append: unused,
    readOutbox: async () => [],
    applyAck: unused,
    prepareCursors: async () => o.cursors(),
    applyPages: (pages) => o.applyPages(pages),
    indexPending: async () => false,
    loadEntity: unused,
    bootstrapState: async () => ({ pending: false, baseKeys: [] }),
    loadHistory: unused,
    storeFetched: unused,
    tenant: async () => 't1',
    putSnapshot: unused,
    prepareViews: unused,
    queryViews: unused,
    counters: async () => ({
      clientId: 'b'.repeat(32),
      clientIds: ['b'.repeat(32)],
      seqLast: 0,
      outboxEntries: 0,
      outboxBytes: 0,
      oldestOutboxAt: null,
      correctionsUnseen: 0,
      ackedWaiting: 0,
      storedEntries: 0,
    }),
    outcome: unused,
    corrections: unused,
    markCorrectionsSeen: unused,
    beginSession: async () => ({
      _tag: 'begun',
      recovering: false,
      logChanged: false,
      putBack: 0,
      meta: meta({ clientId: 'b'.repeat(32) }),
    }),
    markRecovering: unused,
    reissue: unused,
    close: () => Promise.resolve(),
  }
}

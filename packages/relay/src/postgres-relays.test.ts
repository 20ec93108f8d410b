// Goal: several stateless relays on one PostgreSQL log behave as one: clients spread over them
// converge (each sees every entry of its scope, in the same offset order, with nothing missing),
// a client on relay A sees what a client on relay B appended, and killing a relay (SIGKILL)
// while its clients push loses and duplicates nothing once they move to another relay and
// resend what was not acked.
// Method: one private cluster for the file, a fresh database per test. Two and three in-process
// relays (`createRelay` with a PostgreSQL store each, as separate processes would have), then two
// CLI relays as child processes for the kill. Clients are `ws` sockets speaking the protocol
// with the codec; they push in batches, subscribe to everything and grant credit page by page.
// Skipped, saying why, when no PostgreSQL binaries exist.
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import pg from 'pg'
import { entryId } from '@ledgerline/core'
import type { Data, Entry, StoredEntry } from '@ledgerline/core'
import type { AckMessage, AckResult, EntriesMessage, RelayMessage } from '@ledgerline/protocol'
import { CONTRACT_SCHEMA, createPostgresFixture } from '@ledgerline/testkit'
import { signToken } from './auth.ts'
import type { LogStore } from './log-store.ts'
import { createPostgresStore } from './postgres-store.ts'
import { createRelay } from './relay.ts'
import type { Relay } from './relay.ts'
import { openClient, sleep, waitFor } from './wire-client.test-helper.ts'
import type { WireClient } from './wire-client.test-helper.ts'

const SECRET = 'postgres-relays-test-secret-0123456789'
const postgres = createPostgresFixture('r')
if (postgres.skipReason !== undefined) {
  // oxlint-disable-next-line no-console
  console.warn(`PostgreSQL multi-relay tests skipped: ${postgres.skipReason}`)
}

const children = new Set<ChildProcess>()
const cleanups: (() => Promise<void> | void)[] = []

describe.skipIf(postgres.skipReason !== undefined)(
  `several relays on one PostgreSQL log${postgres.skipNote}`,
  () => {
    beforeAll(async () => {
      await postgres.cluster()
    })
    afterEach(async () => {
      for (const fn of cleanups.splice(0).reverse()) await fn()
    })
    afterAll(async () => {
      for (const child of children) if (child.pid !== undefined) killChild(child)
      await postgres.stop()
    })

    for (const relayCount of [2, 3]) {
      it(`${relayCount} relays: clients spread over them all converge, in one order`, async () => {
        // Method: 2 clients per relay; each subscribes to everything, then pushes 24 entries in
        // batches of 4: its own order lines and sales from one shared stock item (whose oversold
        // corrections are decided by whichever relay appends the breaking sale). Then every
        // client must hold every entry, per partition the offsets 1..head in the same order.
        const url = await postgres.database()
        const relays: Relay[] = []
        for (let i = 0; i < relayCount; i++) relays.push(await startRelay(url))
        const clients: TestClient[] = []
        for (let i = 0; i < relayCount * 2; i++) {
          clients.push(await connectClient((relays[i % relayCount] as Relay).url))
        }
        for (const c of clients) c.subscribe()
        await Promise.all(
          clients.map(async (c, i) => {
            for (let b = 0; b < 6; b++) {
              const entries = [
                c.make(`order/c${i}`, 'order.line', { n: b }),
                c.make('stock/shared', 'stock.moved', { qty: b === 0 ? 4 : -1 }),
                c.make(`order/c${i}`, 'order.line', { n: b }),
                c.make(`stock/s${i}`, 'stock.moved', { qty: 1 }),
              ]
              const results = await c.push(entries)
              expect(results.map((r) => r.status)).toEqual(entries.map(() => 'appended'))
            }
          }),
        )
        const store = (relays[0] as Relay).store
        const heads = await store.partitionHeads()
        const total = heads.reduce((a, b) => a + b, 0)
        expect(total).toBeGreaterThanOrEqual(clients.length * 24)
        await waitFor(() => clients.every((c) => c.seen.size === total), 15_000)
        for (const c of clients) expect(c.duplicates).toEqual([])
        const reference = clients[0]?.byPartition() as Map<number, string[]>
        for (const c of clients) {
          const parts = c.byPartition()
          for (const [p, head] of heads.entries()) {
            const ids = parts.get(p) ?? []
            expect(ids).toHaveLength(head)
            expect(c.offsets(p)).toEqual(Array.from({ length: head }, (_, k) => k + 1))
            expect(ids).toEqual(reference.get(p) ?? [])
          }
        }
        // The shared stock item went negative across relays: each oversold sale got exactly one
        // correction, decided on the state as the database had it, never on a stale cache.
        const ledger = await store.readEntity('acme', 'stock/shared', 1, 1000)
        let onHand = 0
        const oversold: string[] = []
        const expected: string[] = []
        for (const e of ledger) {
          if (e.kind === 'stock.moved') {
            onHand += Number((e.data as { qty: number }).qty)
            if (onHand < 0) expected.push(e.id)
          } else if (e.kind === 'stock.oversold') {
            onHand += Number((e.data as { short: number }).short)
            oversold.push(e.corrects ?? '')
          }
        }
        expect(oversold).toEqual(expected)
        expect(oversold.length).toBeGreaterThan(0)
        expect(onHand).toBe(0)
        expect(ledger.map((e) => e.version)).toEqual(ledger.map((_, k) => k + 1))
      }, 60_000)
    }

    it('a relay killed (SIGKILL) while clients push: they move on, nothing lost or duplicated', async () => {
      // Method: two CLI relays as child processes; four clients, two on each, push batches of
      // up to 5 with one batch in flight, keeping unacked entries in an outbox. Relay A gets
      // SIGKILL mid-run; its clients reconnect to B (as a load balancer would send them), learn
      // their high-water mark from `welcome`, and resend the outbox. At the end every entry id
      // is in the log exactly once, every client's high-water mark is its last clientSeq, and
      // a subscriber on B saw every entry once, in offset order.
      const url = await postgres.database()
      const a = await startCliRelay(url)
      const b = await startCliRelay(url)
      const watcher = await connectClient(b.url)
      watcher.subscribe()
      const perClient = 60
      const outcomes = await Promise.all(
        [a, b, a, b].map(async (first, i) => {
          let relayUrl = first.url
          const c = await connectClient(relayUrl)
          const outbox: Entry[] = []
          let made = 0
          let moves = 0
          const statuses: string[] = []
          while (made < perClient || outbox.length > 0) {
            while (made < perClient && outbox.length < 5) {
              made++
              outbox.push(c.make(`doc/k${i}-${made % 4}`, 'doc.updated', { made }))
            }
            let results: AckResult[]
            try {
              results = await c.push([...outbox], 5_000)
            } catch {
              // The relay is gone: go to the other one (a load balancer's job) and resend.
              moves++
              if (moves > 3) throw new Error(`client ${i} could not move`)
              relayUrl = b.url
              await c.reconnect(relayUrl)
              continue
            }
            statuses.push(...results.map((r) => r.status))
            outbox.splice(0, results.length)
            if (i === 0 && made === 20 && a.child.exitCode === null) {
              killChild(a.child)
            }
            await sleep(5)
          }
          return { client: c, statuses, moves }
        }),
      )
      expect(a.child.signalCode).toBe('SIGKILL')
      // The clients of A moved; none of the clients of B had to.
      expect(outcomes.map((o) => o.moves > 0)).toEqual([true, false, true, false])
      for (const o of outcomes) {
        expect(o.statuses.every((s) => s === 'appended' || s === 'duplicate')).toBe(true)
      }
      const db = new pg.Client({ connectionString: url })
      await db.connect()
      try {
        const { rows } = await db.query<{ id: string; n: number }>(
          'select id, count(*)::int as n from ledgerline_entries group by id',
        )
        expect(rows).toHaveLength(4 * perClient)
        expect(rows.every((r) => r.n === 1)).toBe(true)
        const highs = await db.query<{ client_id: string; high: string }>(
          'select client_id, high from ledgerline_clients',
        )
        expect(highs.rows.map((r) => Number(r.high))).toEqual([
          perClient,
          perClient,
          perClient,
          perClient,
        ])
        expect(new Set(highs.rows.map((r) => r.client_id))).toEqual(
          new Set(outcomes.map((o) => o.client.clientId)),
        )
      } finally {
        await db.end()
      }
      await waitFor(() => watcher.seen.size === 4 * perClient, 15_000)
      expect(watcher.duplicates).toEqual([])
      for (const [p, ids] of watcher.byPartition()) {
        expect(watcher.offsets(p)).toEqual(ids.map((_, k) => k + 1))
      }
    }, 90_000)
  },
)

// ---------------------------------------------------------------------------------------------

async function startRelay(url: string): Promise<Relay> {
  const store: LogStore = await createPostgresStore({
    url,
    schema: CONTRACT_SCHEMA,
    partitions: 4,
    pollIntervalMs: 250,
  })
  const relay = await createRelay({ port: 0, store, auth: { secret: SECRET }, logLevel: 'silent' })
  cleanups.push(() => store.close())
  cleanups.push(() => relay.close())
  return relay
}

async function startCliRelay(url: string): Promise<{ url: string; child: ChildProcess }> {
  const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url))
  const child = spawn(
    process.execPath,
    [cli, '--store', 'postgres', '--port', '0', '--partitions', '4', '--log-level', 'error'],
    {
      env: {
        PATH: process.env.PATH ?? '',
        LEDGERLINE_DATABASE_URL: url,
        LEDGERLINE_SECRET: SECRET,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  children.add(child)
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      await new Promise((resolve) => child.once('exit', resolve))
    }
    children.delete(child)
  })
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()))
  const wsUrl = await new Promise<string>((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => reject(new Error(`relay did not start: ${stderr}`)), 15_000)
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString()
      const match = /\((ws:\/\/[^)]+)\)/.exec(out)
      if (match !== null) {
        clearTimeout(timer)
        resolve(match[1] as string)
      }
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`relay exited with ${String(code)}: ${stderr}`))
    })
  })
  return { url: wsUrl, child }
}

function killChild(child: ChildProcess): void {
  try {
    if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL')
  } catch {
    // Already gone.
  }
}

interface TestClient {
  readonly clientId: string
  /** Entries received by the subscription, by id. */
  readonly seen: Map<string, StoredEntry>
  /** Ids delivered more than once (must stay empty). */
  readonly duplicates: string[]
  make(entity: string, kind: string, data: Data): Entry
  push(entries: readonly Entry[], timeoutMs?: number): Promise<AckResult[]>
  subscribe(): void
  reconnect(url: string): Promise<void>
  byPartition(): Map<number, string[]>
  offsets(partition: number): number[]
}

async function connectClient(url: string): Promise<TestClient> {
  const clientId = randomBytes(16).toString('hex')
  let socket: WireClient = await hello(url, clientId)
  let seq = 0
  let batch = 0
  const seen = new Map<string, StoredEntry>()
  const received: StoredEntry[] = []
  const duplicates: string[] = []
  const onMessage = (m: RelayMessage) => {
    if (m.type !== 'entries') return
    const page = m as EntriesMessage
    for (const e of page.entries) {
      if (seen.has(e.id)) duplicates.push(e.id)
      seen.set(e.id, e)
      received.push(e)
    }
    socket.send({ type: 'credit', sub: 1, pages: 1 })
  }
  const acks = new Map<number, (results: AckResult[]) => void>()
  // The helper queues every message; take them as they come: acks to their pushes, entries
  // pages to the subscription.
  const attach = (s: WireClient) => {
    s.ws.on('message', () => {
      for (const m of s.received.splice(0)) {
        if (m.type === 'ack') {
          const ack = m as AckMessage
          acks.get(ack.batch)?.(ack.results as AckResult[])
        } else onMessage(m)
      }
    })
  }
  attach(socket)
  cleanups.push(() => socket.close())
  return {
    clientId,
    seen,
    duplicates,
    make(entity, kind, data) {
      seq++
      return {
        id: entryId(clientId, seq),
        tenant: 'acme',
        entity,
        kind,
        data,
        intent: 'fact',
        clientId,
        clientSeq: seq,
        hlc: `${String(Date.now()).padStart(15, '0')}:00000:${clientId}`,
        occurredAt: Date.now(),
      }
    },
    push(entries, timeoutMs = 10_000) {
      batch++
      const mine = batch
      return new Promise<AckResult[]>((resolve, reject) => {
        const timer = setTimeout(() => {
          acks.delete(mine)
          reject(new Error(`no ack for batch ${mine}`))
        }, timeoutMs)
        const current = socket
        void current.closed.then(() => {
          clearTimeout(timer)
          acks.delete(mine)
          reject(new Error('socket closed'))
        })
        acks.set(mine, (results) => {
          clearTimeout(timer)
          acks.delete(mine)
          resolve(results)
        })
        current.send({ type: 'push', batch: mine, entries })
      })
    },
    subscribe() {
      socket.send({ type: 'subscribe', sub: 1, scope: ['*'], cursors: {}, credit: 8 })
    },
    async reconnect(next) {
      socket.close()
      socket = await hello(next, clientId)
      attach(socket)
      cleanups.push(() => socket.close())
    },
    byPartition() {
      const out = new Map<number, string[]>()
      for (const e of received) {
        const list = out.get(e.partition) ?? []
        list.push(e.id)
        out.set(e.partition, list)
      }
      return out
    },
    offsets(partition) {
      return received.filter((e) => e.partition === partition).map((e) => e.offset)
    },
  }
}

async function hello(url: string, clientId: string): Promise<WireClient> {
  const socket = await openClient(url, { clientId })
  const token = await signToken({
    secret: SECRET,
    tenant: 'acme',
    sub: `sub-${clientId.slice(0, 6)}`,
    read: ['*'],
    write: ['*'],
  })
  const welcome = await socket.hello(token)
  if (welcome.type !== 'welcome') throw new Error(`hello refused: ${JSON.stringify(welcome)}`)
  // Messages the helper queued before we attach (none but the welcome) are dropped here.
  socket.received.splice(0)
  return socket
}

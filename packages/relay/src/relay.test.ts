// Goal: the relay end to end over real sockets on loopback: push → durable ack, duplicates answered
// with the original result, subscriptions that deliver catch-up then live entries in offset
// order to exactly the subscribers in scope (never across tenants or outside grants), credit
// respected, and the HTTP side (health, metrics, dev tokens, static files, Origin checks).
// Method: one relay per test on port 0 with a temp SQLite log; several `ws` clients speaking the
// protocol with the codec directly.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { request } from 'node:http'
import type { IncomingHttpHeaders } from 'node:http'
import { gzipSync } from 'node:zlib'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { defineEntity, defineSchema, partitionOf } from '@ledgerline/core'
import type { StoredEntry } from '@ledgerline/core'
import type { AckMessage, EntriesMessage, RelayMessage } from '@ledgerline/protocol'
import { signToken } from './auth.ts'
import type { LogStore } from './log-store.ts'
import { createRelay } from './relay.ts'
import type { Relay, RelayOptions } from './relay.ts'
import { createSqliteStore } from './sqlite-store.ts'
import { openClient, sleep, waitFor } from './wire-client.test-helper.ts'
import type { WireClient } from './wire-client.test-helper.ts'

const SECRET = 'relay-test-secret-relay-test-secret'

const schema = defineSchema(
  defineEntity<{ onHand: number }>({
    type: 'stock',
    initial: { onHand: 0 },
    reduce: (s, e) => (e.kind === 'stock.moved' ? { onHand: s.onHand + Number(e.data.qty) } : s),
    invariants: { nonNegative: (s) => s.onHand >= 0 || 'stock below zero' },
    correct: (s) => [{ kind: 'stock.oversold', data: { short: -s.onHand } }],
  }),
  defineEntity<{ lines: number }>({
    type: 'order',
    initial: { lines: 0 },
    reduce: (s) => ({ lines: s.lines + 1 }),
  }),
)

const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn()
})

async function startRelay(extra: Partial<RelayOptions> = {}): Promise<Relay> {
  const dir = mkdtempSync(join(tmpdir(), 'll-relay-'))
  const relay = await createRelay({
    port: 0,
    dataDir: join(dir, 'data'),
    schema,
    auth: { secret: SECRET },
    logLevel: 'silent',
    ...extra,
  })
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
  cleanups.push(() => relay.close())
  return relay
}

async function connect(
  relay: Relay,
  tenant = 'acme',
  grants: { read?: string[]; write?: string[] } = {},
): Promise<WireClient> {
  const client = await openClient(relay.url, { tenant })
  cleanups.push(() => client.close())
  const token = await signToken({
    secret: SECRET,
    tenant,
    sub: `sub-${client.clientId.slice(0, 6)}`,
    read: grants.read ?? ['*'],
    write: grants.write ?? ['*'],
  })
  const welcome = await client.hello(token)
  expect(welcome.type).toBe('welcome')
  return client
}

async function push(client: WireClient, batch: number, entries: ReturnType<WireClient['entry']>[]) {
  client.send({ type: 'push', batch, entries })
  return await client.next<AckMessage>((m) => m.type === 'ack' && m.batch === batch)
}

/** Takes pages of `sub` until `count` entries arrived, granting one page of credit per page. */
async function collect(client: WireClient, sub: number, count: number): Promise<StoredEntry[]> {
  const got: StoredEntry[] = []
  for (let pages = 0; got.length < count && pages < 1_000; pages++) {
    const page = await client.next<EntriesMessage>((m) => m.type === 'entries' && m.sub === sub)
    got.push(...page.entries)
    client.send({ type: 'credit', sub, pages: 1 })
  }
  return got
}

describe('relay', () => {
  it('acks a push after it is durable and answers a resend with the original result', async () => {
    // Goal: push → ack, exactly once. Method: push two entries (one oversells and is
    // corrected); resend the same push; the second ack is `duplicate` with the same positions
    // and corrections; the log holds each entry once.
    const relay = await startRelay()
    const c = await connect(relay)
    const entries = [
      c.entry('stock/a', 'stock.moved', { qty: 2 }),
      c.entry('stock/a', 'stock.moved', { qty: -5 }),
    ]
    const ack = await push(c, 1, entries)
    expect(ack.results.map((r) => r.status)).toEqual(['appended', 'appended'])
    const sale = ack.results[1]
    if (sale?.status !== 'appended') throw new Error('expected appended')
    expect(sale.corrections.map((x) => x.kind)).toEqual(['stock.oversold'])
    const again = await push(c, 2, entries)
    expect(again.results).toEqual(
      ack.results.map((r) => (r.status === 'appended' ? { ...r, status: 'duplicate' } : r)),
    )
    expect(await relay.store.readEntity('acme', 'stock/a', 1, 10)).toHaveLength(3)
    // A reconnecting client learns its high-water mark in welcome (with a token of the subject
    // its clientId is bound to).
    const token = await signToken({
      secret: SECRET,
      tenant: 'acme',
      sub: `sub-${c.clientId.slice(0, 6)}`,
      read: ['*'],
      write: ['*'],
    })
    const again2 = await openClient(relay.url, { clientId: c.clientId })
    cleanups.push(() => again2.close())
    expect(await again2.hello(token)).toMatchObject({ type: 'welcome', clientSeqHigh: 2 })
  })

  it('streams catch-up then live entries, in order, only within scope and tenant', async () => {
    // Goal: guarantees 4, 5 and 9 over the wire. Method: writers of two tenants push 150
    // entries, four subscribers with different scopes and grants subscribe from cursor 0,
    // writers push 90 more while they are live; each subscriber must receive exactly the acked
    // entries of its tenant and scope, per partition in offset order, nothing else.
    const relay = await startRelay({ limits: { pageEntriesMax: 20 } })
    const acmeWriter = await connect(relay, 'acme')
    const betaWriter = await connect(relay, 'beta')
    const acked: { tenant: string; entry: StoredEntry }[] = []
    let batch = 0
    const writeRound = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const w = i % 3 === 2 ? betaWriter : acmeWriter
        const tenant = w === betaWriter ? 'beta' : 'acme'
        const entity = i % 2 === 0 ? `order/o${i % 7}` : `stock/s${i % 5}`
        const e = w.entry(entity, i % 2 === 0 ? 'order.line' : 'stock.moved', { qty: 1 })
        const ack = await push(w, ++batch, [e])
        const r = ack.results[0]
        if (r?.status !== 'appended') throw new Error(`expected appended, got ${JSON.stringify(r)}`)
        acked.push({
          tenant,
          entry: {
            ...e,
            version: r.version,
            partition: r.partition,
            offset: r.offset,
            committedAt: r.committedAt,
          },
        })
      }
    }
    await writeRound(150)
    const subscribers = [
      { tenant: 'acme', grants: {}, scope: ['*'] },
      { tenant: 'acme', grants: {}, scope: ['order/*'] },
      { tenant: 'beta', grants: {}, scope: ['*'] },
      { tenant: 'acme', grants: { read: ['stock/*'] }, scope: ['stock/s1', 'stock/s3'] },
    ]
    const clients = await Promise.all(subscribers.map((s) => connect(relay, s.tenant, s.grants)))
    clients.forEach((c, i) =>
      c.send({
        type: 'subscribe',
        sub: 7,
        scope: subscribers[i]?.scope ?? [],
        cursors: {},
        credit: 4,
      }),
    )
    const liveRound = writeRound(90)
    const expected = subscribers.map(
      (s) => () =>
        acked.filter(
          (a) =>
            a.tenant === s.tenant &&
            s.scope.some((p) =>
              p === '*'
                ? true
                : p.endsWith('*')
                  ? a.entry.entity.startsWith(p.slice(0, -1))
                  : a.entry.entity === p,
            ),
        ),
    )
    await liveRound
    const got = await Promise.all(
      clients.map((c, i) => collect(c, 7, (expected[i] as () => unknown[])().length)),
    )
    got.forEach((entries, i) => {
      const want = (expected[i] as () => { entry: StoredEntry }[])().map((a) => a.entry)
      const key = (e: StoredEntry) => `${e.partition}:${e.offset}`
      expect(entries.map(key).sort()).toEqual(want.map(key).sort())
      expect(entries.map((e) => e.id).sort()).toEqual(want.map((e) => e.id).sort())
      expect(entries.every((e) => e.tenant === subscribers[i]?.tenant)).toBe(true)
      const byPartition = new Map<number, number[]>()
      for (const e of entries)
        byPartition.set(e.partition, [...(byPartition.get(e.partition) ?? []), e.offset])
      for (const offsets of byPartition.values()) {
        expect(offsets).toEqual([...offsets].sort((a, b) => a - b))
      }
    })
    // Nothing more arrives: no entry outside the scope trickles in later.
    await sleep(200)
    clients.forEach((c, i) => {
      const all = c.received
        .filter((m): m is EntriesMessage => m.type === 'entries')
        .flatMap((m) => m.entries)
      expect(all).toHaveLength((expected[i] as () => unknown[])().length)
    })
    const livePages = clients[0]?.received.filter((m) => m.type === 'entries' && m.live) ?? []
    expect(livePages.length).toBeGreaterThan(0)
  })

  it('never sends more pages than credited', async () => {
    // Goal: flow control (protocol invariant 4). Method: 300 entries in one partition, pages of
    // 20; subscribe with credit 2: exactly 2 pages arrive and no more within 300 ms; credit 3
    // brings exactly 3 more.
    const relay = await startRelay({ limits: { pageEntriesMax: 20 } })
    const w = await connect(relay)
    for (let b = 0; b < 3; b++) {
      await push(
        w,
        b,
        Array.from({ length: 100 }, () => w.entry('order/big', 'order.line', {})),
      )
    }
    const r = await connect(relay)
    r.send({ type: 'subscribe', sub: 1, scope: ['order/*'], cursors: {}, credit: 2 })
    await waitFor(() => r.received.filter((m) => m.type === 'entries').length >= 2)
    await sleep(300)
    const pages = () => r.received.filter((m): m is EntriesMessage => m.type === 'entries')
    expect(pages()).toHaveLength(2)
    expect(pages().every((p) => p.entries.length === 20 && !p.live)).toBe(true)
    r.send({ type: 'credit', sub: 1, pages: 3 })
    await waitFor(() => pages().length >= 5)
    await sleep(300)
    expect(pages()).toHaveLength(5)
    const offsets = pages().flatMap((p) => p.entries.map((e) => e.offset))
    expect(offsets).toEqual(Array.from({ length: 100 }, (_, i) => i + 1))
    const p = partitionOf('acme', 'order/big', relay.store.partitions)
    expect(pages().at(-1)?.cursors[p]).toBe(100)
  })

  it('resumes a subscription from its cursors without resending what was received', async () => {
    // Goal: cursors. Method: receive everything, then subscribe again with the last cursors;
    // the only page is the live marker, empty.
    const relay = await startRelay()
    const w = await connect(relay)
    await push(
      w,
      1,
      Array.from({ length: 10 }, (_, i) => w.entry(`order/o${i}`, 'order.line', {})),
    )
    const r = await connect(relay)
    r.send({ type: 'subscribe', sub: 1, scope: ['*'], cursors: {}, credit: 8 })
    const first = await r.next<EntriesMessage>((m) => m.type === 'entries')
    expect(first.entries).toHaveLength(10)
    expect(first.live).toBe(true)
    r.send({ type: 'subscribe', sub: 2, scope: ['*'], cursors: first.cursors, credit: 8 })
    const second = await r.next<EntriesMessage>((m) => m.type === 'entries' && m.sub === 2)
    expect(second).toMatchObject({ entries: [], live: true, cursors: first.cursors })
  })

  it('serves /healthz, /metrics, and /dev/token only in dev mode', async () => {
    // Goal: the HTTP side. Method: GET each route on a plain relay and a dev relay; a dev
    // token works for hello.
    const relay = await startRelay()
    const health = await get(`${relay.httpUrl}/healthz`)
    expect(health.status).toBe(200)
    expect(JSON.parse(health.body)).toMatchObject({ ok: true, store: 'ok' })
    const c = await connect(relay)
    await push(c, 1, [c.entry('stock/a', 'stock.moved', { qty: -1 })])
    const metrics = await get(`${relay.httpUrl}/metrics`)
    expect(metrics.body).toContain('ledgerline_appends_total{status="appended"} 1')
    expect(metrics.body).toContain('ledgerline_corrections_total 1')
    expect(metrics.body).toContain('ledgerline_connections 1')
    expect(metrics.body).toMatch(/ledgerline_append_latency_seconds_count 1/)
    expect(metrics.body).toMatch(/ledgerline_bytes_in_total [1-9]/)
    expect((await get(`${relay.httpUrl}/dev/token?tenant=acme`)).status).toBe(404)

    const dev = await startRelay({ dev: true, auth: {} })
    const res = await get(`${dev.httpUrl}/dev/token?tenant=acme&sub=till-1`)
    expect(res.status).toBe(200)
    const body = JSON.parse(res.body) as {
      token: string
      tenant: string
      sub: string
      expiresAt: number
    }
    expect(body).toMatchObject({ tenant: 'acme', sub: 'till-1' })
    expect(body.expiresAt).toBeGreaterThan(Date.now())
    const d = await openClient(dev.url)
    cleanups.push(() => d.close())
    expect(await d.hello(body.token)).toMatchObject({
      type: 'welcome',
      tenant: 'acme',
      grants: { read: ['*'], write: ['*'] },
    })
    expect((await get(`${dev.httpUrl}/dev/token?tenant=bad%20tenant`)).status).toBe(400)
  })

  it('serves static files safely, with an index.html fallback for app routes', async () => {
    // Goal: `--static` never leaves its root. Method: a root with files, a symlink out and a
    // secret beside it; request files, app routes and traversal attempts.
    const dir = mkdtempSync(join(tmpdir(), 'll-static-'))
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
    const root = join(dir, 'www')
    mkdirSync(join(root, 'assets'), { recursive: true })
    writeFileSync(join(root, 'index.html'), '<!doctype html><title>pos</title>')
    writeFileSync(join(root, 'assets', 'app.js'), 'export {}')
    writeFileSync(join(dir, 'secret.txt'), 'top secret')
    symlinkSync(join(dir, 'secret.txt'), join(root, 'link.txt'))
    const relay = await startRelay({ staticDir: root })
    const index = await get(`${relay.httpUrl}/`)
    expect(index.status).toBe(200)
    expect(index.type).toMatch(/^text\/html; ?charset=utf-8$/)
    expect(index.body).toContain('<title>pos</title>')
    expect(await get(`${relay.httpUrl}/assets/app.js`)).toMatchObject({
      status: 200,
      type: 'text/javascript; charset=utf-8',
      body: 'export {}',
    })
    expect((await get(`${relay.httpUrl}/sales/today`)).body).toContain('<title>pos</title>')
    expect((await get(`${relay.httpUrl}/missing.js`)).status).toBe(404)
    for (const path of [
      '/../secret.txt',
      '/%2e%2e/secret.txt',
      '/assets/..%2f..%2fsecret.txt',
      '/link.txt',
      '/%00',
      '/%zz',
    ]) {
      const res = await get(`${relay.httpUrl}${path}`)
      expect(res.body).not.toContain('top secret')
      expect([400, 404, 200]).toContain(res.status)
    }
  })

  it('serves static files with ETags, ranges, precompressed siblings and SW-safe caching', async () => {
    // Goal: what sirv brings (issue 18 item 6) and the headers the demo's service worker needs.
    // Method: a root with a script, its gzip sibling and a service worker; a conditional GET
    // answers 304, a range 206 with the bytes asked for, `accept-encoding: gzip` gets the .gz
    // file, and HTML and the service worker are revalidated on every load.
    const dir = mkdtempSync(join(tmpdir(), 'll-static-'))
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
    writeFileSync(join(dir, 'index.html'), '<!doctype html><title>pos</title>')
    writeFileSync(join(dir, 'app.js'), 'export const answer = 42\n')
    writeFileSync(join(dir, 'app.js.gz'), gzipSync('export const answer = 42\n'))
    writeFileSync(join(dir, 'service-worker.js'), 'self.addEventListener("fetch", () => {})')
    const relay = await startRelay({ staticDir: dir })
    const first = await get(`${relay.httpUrl}/app.js`)
    expect(first).toMatchObject({ status: 200, body: 'export const answer = 42\n' })
    expect(first.headers['cache-control']).toBe('public, max-age=3600')
    const etag = String(first.headers.etag)
    expect(etag).not.toBe('undefined')
    expect((await get(`${relay.httpUrl}/app.js`, { 'if-none-match': etag })).status).toBe(304)
    const part = await get(`${relay.httpUrl}/app.js`, { range: 'bytes=7-11' })
    expect(part).toMatchObject({ status: 206, body: 'const' })
    expect(part.headers['content-range']).toBe('bytes 7-11/25')
    const zipped = await get(`${relay.httpUrl}/app.js`, { 'accept-encoding': 'gzip' })
    expect(zipped.headers['content-encoding']).toBe('gzip')
    expect(zipped.type).toBe('text/javascript; charset=utf-8')
    const worker = await get(`${relay.httpUrl}/service-worker.js`)
    expect(worker).toMatchObject({ status: 200, type: 'text/javascript; charset=utf-8' })
    expect(worker.headers['cache-control']).toBe('no-cache')
    expect((await get(`${relay.httpUrl}/till/2`)).headers['cache-control']).toBe('no-cache')
  })

  it('checks the Origin before the upgrade', async () => {
    // Goal: CSWSH protection (invariants 1 and 2 of http-routes.ts). Method: open sockets with
    // many Origin variants against an allowlist; only the exact origin (host case-insensitive)
    // and no Origin at all pass; in dev with an empty list, same-origin passes.
    const relay = await startRelay({ allowedOrigins: ['https://pos.example.com'] })
    const outcome = async (origin?: string) =>
      openClient(relay.url, origin === undefined ? {} : { origin }).then(
        (c) => {
          c.close()
          return 'open'
        },
        (e: Error) => e.message,
      )
    expect(await outcome('https://pos.example.com')).toBe('open')
    expect(await outcome('https://POS.example.com')).toBe('open')
    expect(await outcome(undefined)).toBe('open')
    for (const bad of [
      'https://evil.example',
      'null',
      'https://pos.example.com.evil.tld',
      'https://pos.example.com.',
      'http://pos.example.com',
      'https://pos.example.com:8443',
      'https://xpos.example.com',
      'file://pos.example.com',
    ]) {
      expect(await outcome(bad)).toBe('upgrade refused: 403')
    }
    const dev = await startRelay({ dev: true, auth: {} })
    const devOutcome = async (origin: string) =>
      openClient(dev.url, { origin }).then(
        (c) => {
          c.close()
          return 'open'
        },
        (e: Error) => e.message,
      )
    expect(await devOutcome(dev.httpUrl)).toBe('open')
    expect(await devOutcome('http://localhost:1')).toBe('upgrade refused: 403')
  })

  it('terminates a socket that stops answering pings, and keeps one that answers', async () => {
    // Goal: the server-side heartbeat. Method: pings every 500 ms; one client pauses its socket
    // (so it cannot pong) and is cut within a few intervals; the other stays open throughout.
    const relay = await startRelay({ limits: { heartbeatIntervalMs: 500 } })
    const live = await connect(relay)
    const dead = await connect(relay)
    const socket = (dead.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket
    socket.pause()
    await sleep(2_000)
    socket.resume()
    const { code } = await dead.closed
    expect(code).toBe(1006)
    expect(live.ws.readyState).toBe(live.ws.OPEN)
    live.send({ type: 'ping', t: 1 })
    expect(await live.next((m) => m.type === 'pong')).toMatchObject({ t: 1 })
  })

  it('acks appends in flight before a graceful shutdown closes sockets with 1001', async () => {
    // Goal: graceful shutdown (invariant 3 of relay.ts). Method: a log whose appends take
    // 300 ms; push 4 batches, wait until all 4 reached the log, then close the relay: every
    // batch is acked before the `shutting_down` error and the close frame (1001), and the log
    // holds every acked entry.
    const dir = mkdtempSync(join(tmpdir(), 'll-relay-shutdown-'))
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
    const inner = await createSqliteStore({ file: join(dir, 'log.sqlite'), schema })
    cleanups.push(() => inner.close())
    let calls = 0
    const slow: LogStore = {
      partitions: inner.partitions,
      append: async (tenant, items, pusher) => {
        calls++
        const results = await inner.append(tenant, items, pusher)
        await sleep(300)
        return results
      },
      readPartition: (...a) => inner.readPartition(...a),
      readEntity: (...a) => inner.readEntity(...a),
      head: (...a) => inner.head(...a),
      client: (...a) => inner.client(...a),
      identity: () => inner.identity(),
      bumpGeneration: () => inner.bumpGeneration(),
      partitionHeads: () => inner.partitionHeads(),
      onCommit: (l) => inner.onCommit(l),
      close: () => inner.close(),
    }
    const relay = await createRelay({
      port: 0,
      store: slow,
      auth: { secret: SECRET },
      logLevel: 'silent',
    })
    const c = await connect(relay)
    for (let b = 1; b <= 4; b++) {
      c.send({
        type: 'push',
        batch: b,
        entries: Array.from({ length: 50 }, () => c.entry('order/o', 'order.line', {})),
      })
    }
    await waitFor(() => calls === 4)
    expect(c.received.filter((m) => m.type === 'ack')).toHaveLength(0)
    await relay.close()
    const { code } = await c.closed
    expect(code).toBe(1001)
    const acks = c.received.filter((m): m is AckMessage => m.type === 'ack')
    const errors = c.received.filter((m: RelayMessage) => m.type === 'error')
    expect(acks.map((a) => a.batch)).toEqual([1, 2, 3, 4])
    expect(acks.flatMap((a) => a.results.map((r) => r.status))).toEqual(Array(200).fill('appended'))
    expect(errors.map((e) => e.type === 'error' && e.kind)).toEqual(['shutting_down'])
    expect(c.received.indexOf(errors[0] as RelayMessage)).toBeGreaterThan(
      c.received.indexOf(acks[3] as RelayMessage),
    )
    expect(await inner.head('acme', 'order/o')).toMatchObject({ version: 200 })
  })

  it('answers overloaded when the commit queue is full, records nothing, and takes the resend', async () => {
    // Goal: the global bound on entries queued for commit reaches the wire (issue 13 case 8).
    // Method: a log bounded at 8 queued entries whose group commit we hold; client A's push of 5
    // waits in the queue, client B's push of 5 would pass the bound: B gets `error overloaded`
    // with a backoff and close 4503, and nothing of it is recorded. Once A's group committed,
    // B reconnects and the same entries are appended.
    const dir = mkdtempSync(join(tmpdir(), 'll-relay-'))
    let hold = true
    const held: (() => void)[] = []
    const store = await createSqliteStore({
      file: join(dir, 'log.sqlite'),
      schema,
      commitQueueEntriesMax: 8,
      defer: (fn) => (hold ? held.push(fn) : setImmediate(fn)),
    })
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
    cleanups.push(() => store.close())
    const relay = await startRelay({ store })
    const a = await connect(relay)
    const b = await connect(relay)
    const fromA = Array.from({ length: 5 }, () => a.entry('order/a', 'order.line', {}))
    const fromB = Array.from({ length: 5 }, () => b.entry('order/b', 'order.line', {}))
    a.send({ type: 'push', batch: 1, entries: fromA })
    await waitFor(() => held.length > 0)
    b.send({ type: 'push', batch: 1, entries: fromB })
    const error = await b.next((m) => m.type === 'error')
    expect(error).toMatchObject({ type: 'error', kind: 'overloaded' })
    expect(error.type === 'error' && error.backoffMsMin).toBeGreaterThan(0)
    expect((await b.closed).code).toBe(4503)
    expect((await store.client('acme', b.clientId)).high).toBe(0)
    hold = false
    for (const fn of held.splice(0)) fn()
    const ackA = await a.next<AckMessage>((m) => m.type === 'ack')
    expect(ackA.results.map((r) => r.status)).toEqual(Array(5).fill('appended'))
    const again = await openClient(relay.url, { tenant: 'acme', clientId: b.clientId })
    cleanups.push(() => again.close())
    const token = await signToken({
      secret: SECRET,
      tenant: 'acme',
      sub: 'b',
      read: ['*'],
      write: ['*'],
    })
    expect(await again.hello(token)).toMatchObject({ type: 'welcome', clientSeqHigh: 0 })
    const ackB = await push(again, 1, fromB)
    expect(ackB.results.map((r) => r.status)).toEqual(Array(5).fill('appended'))
    expect(await store.head('acme', 'order/b')).toMatchObject({ version: 5 })
    const metrics = await get(`${relay.httpUrl}/metrics`)
    expect(metrics.body).toContain('ledgerline_overloaded_total 1')
  })
})

/** GET with the path sent as written (no URL normalization, so `..` reaches the relay). */
function get(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; type: string; body: string; headers: IncomingHttpHeaders }> {
  const m = /^http:\/\/([^/:]+):(\d+)(.*)$/.exec(url)
  if (m === null) throw new Error(`bad url ${url}`)
  return new Promise((resolve, reject) => {
    const options = { host: m[1], port: Number(m[2]), path: m[3] || '/', method: 'GET', headers }
    const req = request(options, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (body += chunk))
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          type: String(res.headers['content-type']),
          body,
          headers: res.headers,
        }),
      )
    })
    req.on('error', reject)
    req.setTimeout(5_000, () => req.destroy(new Error('timeout')))
    req.end()
  })
}

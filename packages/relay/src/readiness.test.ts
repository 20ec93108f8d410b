// Goal: issue 21 — the readiness check fails while the log cannot serve: while every append fails
// (a full disk) and while the database is stopped; it recovers by itself when the log does, and
// the log says so once each way (`store_lost`, `store_regained`). On 5705503 there is no
// `/readyz`, and `/healthz` answers 200 "ok" while every append fails.
// Method: the real relay with a pino logger whose lines the test keeps. Three ways to break the
// log: a store whose appends fail on a switch (test-only hook around the SQLite store, runs
// everywhere); a real full disk, the SQLite log on a tiny tmpfs filled by a file (only where this
// process may mount, i.e. as root; skipped otherwise); PostgreSQL stopped with `pg_ctl`.
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import type { Logger } from 'pino'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { createPostgresFixture } from '@ledgerline/testkit'
import { signToken } from './auth.ts'
import type { LogStore } from './log-store.ts'
import { createPostgresStore } from './postgres-store.ts'
import { createRelay } from './relay.ts'
import type { Relay } from './relay.ts'
import { RelayError } from './relay-error.ts'
import { createSqliteStore } from './sqlite-store.ts'
import { withAppend } from './store-faults.test-helper.ts'
import { openClient } from './wire-client.test-helper.ts'
import type { WireClient } from './wire-client.test-helper.ts'

const SECRET = 'readiness-secret-readiness-secret-0123'
const WAIT_MS = 20_000
const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

interface Lines {
  readonly logger: Logger
  events(event: string): Record<string, unknown>[]
}

function captureLogs(): Lines {
  const lines: Record<string, unknown>[] = []
  const logger = pino(
    { level: 'info' },
    { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
  )
  return { logger, events: (event) => lines.filter((l) => l.event === event) }
}

async function get(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url)
  return { status: res.status, body: (await res.json()) as Record<string, unknown> }
}

async function till(relay: Relay): Promise<WireClient> {
  const c = await openClient(relay.url)
  cleanups.push(() => c.close())
  const token = await signToken({
    secret: SECRET,
    tenant: 'acme',
    sub: 'till',
    read: ['*'],
    write: ['*'],
    expiresInS: 600,
  })
  expect(await c.hello(token)).toMatchObject({ type: 'welcome' })
  return c
}

/** One push of one entry (`bytes` of data); the relay's answer: an ack or an error. */
async function sell(relay: Relay, bytes = 16): Promise<string> {
  const c = await till(relay)
  c.send({
    type: 'push',
    batch: 1,
    entries: [c.entry('order/o1', 'order.line', { note: 'x'.repeat(bytes) })],
  })
  const m = await c.next((x) => x.type === 'ack' || x.type === 'error', WAIT_MS)
  return m.type === 'ack' ? 'acked' : `error ${(m as { kind: string }).kind}`
}

async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
  const until = Date.now() + WAIT_MS
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`not within ${WAIT_MS} ms: ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

describe('readiness: /readyz fails while the log cannot serve', () => {
  it('while every append fails (a store failure hook), then recovers; one line each way', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'll-ready-'))
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
    const base = await createSqliteStore({ file: join(dir, 'log.sqlite') })
    cleanups.push(() => base.close())
    const broken = { on: false }
    const store = failingAppends(base, broken)
    const logs = captureLogs()
    const relay = await createRelay({
      port: 0,
      store,
      storeKind: 'sqlite',
      auth: { secret: SECRET },
      logger: logs.logger,
    })
    cleanups.push(() => relay.close())
    expect(await get(`${relay.httpUrl}/readyz`)).toMatchObject({
      status: 200,
      body: { ready: true, backend: 'sqlite', log: { generation: 1 } },
    })

    broken.on = true
    expect(await sell(relay)).toBe('error internal')
    expect(await sell(relay)).toBe('error internal')
    expect(await get(`${relay.httpUrl}/readyz`)).toMatchObject({
      status: 503,
      body: { ready: false, reason: 'not_writing', error: expect.stringContaining('disk is full') },
    })
    // The log answers reads: up, but says it cannot write (it said "ok" on 5705503).
    expect(await get(`${relay.httpUrl}/healthz`)).toMatchObject({
      status: 200,
      body: { ok: true, store: 'not_writing', log: { generation: 1 } },
    })
    expect(logs.events('store_lost')).toHaveLength(1)
    expect(logs.events('store_lost')[0]).toMatchObject({ op: 'write' })

    broken.on = false
    expect(await sell(relay)).toBe('acked')
    expect((await get(`${relay.httpUrl}/readyz`)).status).toBe(200)
    expect(logs.events('store_regained')).toHaveLength(1)
    expect(logs.events('store_lost')).toHaveLength(1)
  }, 60_000)

  const mount = tmpfsMount()
  it.skipIf(typeof mount === 'string')(
    `while the SQLite log's disk is full (a tiny tmpfs)${typeof mount === 'string' ? ` (skipped: ${mount})` : ''}`,
    async () => {
      if (typeof mount === 'string') return
      const logs = captureLogs()
      const relay = await createRelay({
        port: 0,
        dataDir: join(mount.dir, 'data'),
        auth: { secret: SECRET },
        logger: logs.logger,
      })
      cleanups.push(() => relay.close())
      expect(await sell(relay)).toBe('acked')
      expect((await get(`${relay.httpUrl}/readyz`)).status).toBe(200)
      const filler = mount.fill()
      expect(await sell(relay, 40_000)).toBe('error internal')
      expect(await get(`${relay.httpUrl}/readyz`)).toMatchObject({
        status: 503,
        body: { reason: 'not_writing' },
      })
      expect(logs.events('store_lost')).toHaveLength(1)
      rmSync(filler)
      expect(await sell(relay, 40_000)).toBe('acked')
      expect((await get(`${relay.httpUrl}/readyz`)).status).toBe(200)
      expect(logs.events('store_regained')).toHaveLength(1)
    },
    60_000,
  )

  const postgres = createPostgresFixture('ready')
  afterAll(() => postgres.stop())
  it.skipIf(postgres.skipReason !== undefined)(
    `while PostgreSQL is stopped (pg_ctl), then recovers${postgres.skipNote}`,
    async () => {
      const pg = await postgres.cluster()
      const store = await createPostgresStore({ url: await postgres.database('ready') })
      cleanups.push(() => store.close())
      const logs = captureLogs()
      const relay = await createRelay({
        port: 0,
        store,
        storeKind: 'postgres',
        auth: { secret: SECRET },
        logger: logs.logger,
      })
      cleanups.push(() => relay.close())
      expect(await get(`${relay.httpUrl}/readyz`)).toMatchObject({
        status: 200,
        body: { backend: 'postgres' },
      })
      pg.kill('fast')
      await eventually(
        async () => (await get(`${relay.httpUrl}/readyz`)).status === 503,
        '/readyz 503 while PostgreSQL is stopped',
      )
      expect(await get(`${relay.httpUrl}/readyz`)).toMatchObject({
        body: { ready: false, reason: 'unreachable' },
      })
      expect((await get(`${relay.httpUrl}/healthz`)).status).toBe(503)
      expect(logs.events('store_lost')).toHaveLength(1)
      pg.start()
      await eventually(
        async () => (await get(`${relay.httpUrl}/readyz`)).status === 200,
        '/readyz 200 once PostgreSQL is back',
      )
      expect(logs.events('store_regained')).toHaveLength(1)
      expect(await sell(relay)).toBe('acked')
    },
    90_000,
  )
})

/** `base` whose appends fail as a full disk does while `broken.on` (the test's failure hook). */
function failingAppends(base: LogStore, broken: { on: boolean }): LogStore {
  return withAppend(base, (tenant, items, pusher) =>
    broken.on
      ? Promise.reject(new RelayError('store_failed', 'append failed: database or disk is full'))
      : base.append(tenant, items, pusher),
  )
}

/** A 4 MiB tmpfs of this test file (unmounted after it), or why there is none. */
function tmpfsMount(): { dir: string; fill(): string } | string {
  if (process.platform !== 'linux') return 'tmpfs needs Linux'
  if (process.getuid?.() !== 0) return 'mounting a tmpfs needs root'
  const dir = mkdtempSync(join(tmpdir(), 'll-full-disk-'))
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', dir], { stdio: 'ignore' })
  } catch {
    rmSync(dir, { recursive: true, force: true })
    return 'mount -t tmpfs is not permitted here'
  }
  afterAll(() => {
    execFileSync('umount', [dir], { stdio: 'ignore' })
    rmSync(dir, { recursive: true, force: true })
  })
  mkdirSync(join(dir, 'data'))
  return {
    dir,
    fill() {
      // Chunks until the disk refuses one, then smaller ones: nothing is left for the log.
      const file = join(dir, 'filler')
      writeFileSync(file, '')
      for (const size of [256 * 1024, 4096, 512]) {
        for (;;) {
          try {
            writeFileSync(file, Buffer.alloc(size), { flag: 'a' })
          } catch {
            break
          }
        }
      }
      return file
    },
  }
}

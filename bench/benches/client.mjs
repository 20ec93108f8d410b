// The browser client in headless Chromium (a persistent profile on disk, so IndexedDB really
// writes to disk): appends per second and p50/p99 latency for single `append` and for
// `appendMany` batches of 100, beside raw IndexedDB puts of the same records with durability
// 'strict' (one per transaction, and 100 per transaction); and a cold catch-up of 100,000
// entries from a relay into a fresh database, beside raw puts of 100,000 records of the same
// shape (1,000 per transaction, strict). The page is bundled by esbuild and served, with the
// relay (its own process), on 127.0.0.1.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium } from 'playwright-core'
import { createHlcClock, entryId } from '@ledgerline/core'
import { createSqliteStore, signToken } from '@ledgerline/relay'
import { CHROMIUM_ARGS, chromiumPath } from '../../scripts/browser.mjs'
import {
  chromiumOrSkip,
  cpuSince,
  fmt,
  latencyOf,
  processTreeCpu,
  report,
  summarize,
} from '../lib.mjs'
import { servePage } from '../page-server.mjs'
import { startServer } from '../server-process.mjs'

const SECRET = 'bench-secret-bench-secret-bench-secret'
const CATCH_UP_ENTRIES = 100_000
const ROUNDS = 3
const SINGLE = { count: 3_000, timeMs: 2_500 }
const BATCHED = { count: 30_000, timeMs: 2_500 }
const CATCH_UP_TIMEOUT_MS = 60_000

export async function run() {
  const path = chromiumOrSkip('client', chromiumPath)
  if (path === undefined) return
  const tmp = mkdtempSync(join(tmpdir(), 'll-bench-client-'))
  let server, relay, context
  try {
    const t0 = performance.now()
    await populate(join(tmp, 'relay'), CATCH_UP_ENTRIES)
    const populateS = (performance.now() - t0) / 1000
    server = await servePage('client-page.js')
    relay = await startServer('relay', {
      dataDir: join(tmp, 'relay'),
      secret: SECRET,
      allowedOrigins: [server.origin],
    })
    const token = (tenant) =>
      signToken({ secret: SECRET, tenant, sub: 'bench', read: ['*'], write: ['*'] })
    const appendToken = await token('bench-append')
    const catchUpToken = await token('bench')
    context = await chromium.launchPersistentContext(join(tmp, 'profile'), {
      executablePath: path,
      args: CHROMIUM_ARGS,
      headless: true,
    })
    const page = context.pages()[0] ?? (await context.newPage())
    await page.goto(server.origin)
    await page.waitForFunction(() => globalThis.bench !== undefined)
    let dbs = 0
    const call = async (fn, args) => {
      const dbName = `bench-${++dbs}`
      try {
        return await page.evaluate(([fn, a]) => globalThis.bench[fn](a), [fn, { ...args, dbName }])
      } finally {
        await page.evaluate((names) => globalThis.bench.wipe(names), [dbName])
      }
    }
    const root = chromiumPid(join(tmp, 'profile'))
    const appends = async (fn, args) => {
      await call(fn, { ...args, count: Math.min(args.count, 200) }) // warm-up
      const rates = []
      const latencies = []
      // CPU time of Chromium's processes over the measured rounds, per entry: what the
      // IndexedDB backend (browser process) and the page (renderer) spent.
      const before = root === undefined ? {} : processTreeCpu(root)
      for (let r = 0; r < ROUNDS; r++) {
        const result = await call(fn, args)
        rates.push(result.rate)
        latencies.push(...result.latencies)
      }
      const spent = root === undefined ? {} : cpuSince(before, processTreeCpu(root))
      const entries = latencies.length * args.batch
      const perEntry = Object.fromEntries(
        Object.entries(spent).map(([type, ms]) => [type, ms / Math.max(1, entries)]),
      )
      return { rates, latencies, perEntry }
    }
    const cpuLimit = (ours, raw) =>
      ['browser', 'renderer']
        .map(
          (type) =>
            `Chromium ${type === 'browser' ? 'browser process (IndexedDB backend)' : 'renderer (page)'} ` +
            `${fmt(ours.perEntry[type] ?? Number.NaN)} ms CPU per entry vs ${fmt(raw.perEntry[type] ?? Number.NaN)} ms for the raw put`,
        )
        .join('; ') +
      " (/proc, over the measured rounds; 10 ms ticks); the client-append profile (shared/reference) traces the rest to the sync loop's ack and page bookkeeping"
    const base = { url: relay.url, token: appendToken }
    const rawSingle = await appends('raw', { batch: 1, ...SINGLE })
    const oursSingle = await appends('ours', { ...base, batch: 1, ...SINGLE })
    const rawBatch = await appends('raw', { batch: 100, ...BATCHED })
    const oursBatch = await appends('ours', { ...base, batch: 100, ...BATCHED })
    const catchUps = []
    const rawCatchUps = []
    // CPU time of Chromium's processes and of the relay over our catch-ups (what limits them).
    const catchUpCpu = { browser: 0, renderer: 0, relay: 0, ms: 0 }
    for (let r = 0; r < ROUNDS; r++) {
      const before = root === undefined ? {} : processTreeCpu(root)
      await relay.profileStart({ cpu: false })
      const ours = await call('catchUp', {
        url: relay.url,
        token: catchUpToken,
        timeoutMs: CATCH_UP_TIMEOUT_MS,
      })
      const relayStats = await relay.profileStop()
      const spent = root === undefined ? {} : cpuSince(before, processTreeCpu(root))
      catchUpCpu.browser += spent.browser ?? Number.NaN
      catchUpCpu.renderer += spent.renderer ?? Number.NaN
      catchUpCpu.relay += relayStats.cpuMs
      catchUpCpu.ms += ours.ms
      catchUps.push(ours.ms / 1000)
      const raw = await call('rawCatchUp', {
        count: CATCH_UP_ENTRIES,
        batch: 1000,
        durability: 'strict',
      })
      rawCatchUps.push(raw.ms / 1000)
      console.log(
        `  catch-up round ${r + 1}: ours ${ours.ms.toFixed(0)} ms, raw puts ${raw.ms.toFixed(0)} ms`,
      )
    }
    const rSingle = summarize('raw put, 1/txn, strict', 'appends/s', rawSingle.rates)
    const oSingle = summarize('ours', 'appends/s', oursSingle.rates)
    const rBatch = summarize('raw puts, 100/txn, strict', 'appends/s', rawBatch.rates)
    const oBatch = summarize('ours', 'appends/s', oursBatch.rates)
    const oCatch = summarize('ours', 's', catchUps)
    const rows = [
      {
        label: 'single append: appends/s',
        ours: oSingle,
        anchor: rSingle,
        target: '≥ 0.67× raw strict put',
        met: oSingle.median >= 0.67 * rSingle.median,
        limit: cpuLimit(oursSingle, rawSingle),
      },
      {
        label: 'single append: latency p50 (p50–p99)',
        ours: latencyOf('ours', oursSingle.latencies),
        anchor: latencyOf('raw p50', rawSingle.latencies),
      },
      {
        label: 'appendMany(100): entries/s',
        ours: oBatch,
        anchor: rBatch,
        target: '≥ 0.8× raw batched puts',
        met: oBatch.median >= 0.8 * rBatch.median,
        limit: cpuLimit(oursBatch, rawBatch),
      },
      {
        label: 'appendMany(100): latency per batch p50 (p50–p99)',
        ours: latencyOf('ours', oursBatch.latencies),
        anchor: latencyOf('raw p50', rawBatch.latencies),
      },
      {
        label: `cold catch-up of ${CATCH_UP_ENTRIES.toLocaleString('en-US')} entries: seconds`,
        ours: oCatch,
        anchor: summarize('raw puts, 1,000/txn, strict', 's', rawCatchUps),
        target: '≤ 1 s',
        met: oCatch.median <= 1,
        limit:
          `over the catch-ups, cores busy: Chromium renderer (page: decoding pages, folding, its ` +
          `IndexedDB calls) ${(catchUpCpu.renderer / catchUpCpu.ms).toFixed(2)}, browser process ` +
          `(IndexedDB backend) ${(catchUpCpu.browser / catchUpCpu.ms).toFixed(2)}, relay ` +
          `${(catchUpCpu.relay / catchUpCpu.ms).toFixed(2)} (/proc and the relay's CPU time; ` +
          `the raw anchor writes the same 100,000 records in ${fmt(summarize('', 's', rawCatchUps).median)} s)`,
      },
      {
        label: 'cold catch-up: entries/s',
        ours: summarize(
          'ours',
          'entries/s',
          catchUps.map((s) => CATCH_UP_ENTRIES / s),
        ),
        anchor: summarize(
          'raw puts',
          'entries/s',
          rawCatchUps.map((s) => CATCH_UP_ENTRIES / s),
        ),
      },
    ]
    report('client', rows, [
      `headless Chromium, persistent profile on disk; ${ROUNDS} rounds after a warm-up run, each a fresh database (appends: up to ${SINGLE.count} single / ${BATCHED.count} batched entries or ${SINGLE.timeMs / 1000} s); latency percentiles pooled over rounds`,
      "ours runs online (connected to the relay, the outbox drains while appending, as in an app); appends use the client's default durability (strict); entries carry ~100 bytes of data",
      'raw anchors put records of the same shape (a stored entry, ~330 bytes) into one object store keyed by id, each transaction awaited before the next',
      `catch-up: time from createClient on a fresh database to synced() (relay pages of up to 1,000 entries, 16 partitions, 1,000 entities); the relay's log was filled beforehand (${populateS.toFixed(1)} s, not measured)`,
    ])
  } finally {
    await context?.close().catch(() => undefined)
    await relay?.close()
    await server?.close()
    rmSync(tmp, { recursive: true, force: true })
  }
}

/** Fills a SQLite log with `count` entries of one writer over 1,000 entities. */
async function populate(dir, count) {
  mkdirSync(dir, { recursive: true })
  const store = await createSqliteStore({ file: join(dir, 'log.sqlite') })
  try {
    const clientId = 'f'.repeat(32)
    const clock = createHlcClock(clientId, () => Date.now())
    const pad = 'x'.repeat(60)
    for (let from = 1; from <= count; from += 2_000) {
      const items = []
      for (let seq = from; seq < from + 2_000 && seq <= count; seq++) {
        items.push({
          entry: {
            id: entryId(clientId, seq),
            tenant: 'bench',
            entity: `tick/e${seq % 1000}`,
            kind: 'bench.tick',
            data: { n: seq, pad },
            intent: 'fact',
            clientId,
            clientSeq: seq,
            hlc: clock.tick(),
            occurredAt: Date.now(),
          },
        })
      }
      await store.append('bench', items)
    }
  } finally {
    await store.close()
  }
}

/** The pid of the Chromium browser process using `profileDir`, from /proc. */
function chromiumPid(profileDir) {
  try {
    for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
      try {
        const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
        if (cmd.includes(profileDir) && !cmd.includes('--type=')) return Number(pid)
      } catch {
        // ended meanwhile
      }
    }
  } catch {
    // no /proc
  }
  return undefined
}

// `query` in headless Chromium (a persistent profile on disk, so IndexedDB really reads from
// disk's cache as an app's would): 50,000 orders appended offline through `appendMany` (their
// views and index keys written in the same transactions), then `query` by day (the Orders
// screen), a whole day (QUERY_ROWS_MAX), the top orders by total (descending), one store's
// orders of a day (a pattern narrower than the type) and a range of totals; beside it, raw
// IndexedDB `getAll` of one day on an index of a plain object store holding the same views; and
// what keeping the views costs appends (the same orders into a schema without indexes).
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium } from 'playwright-core'
import { CHROMIUM_ARGS, chromiumPath } from '../../scripts/browser.mjs'
import { chromiumOrSkip, latencyOf, report, summarize } from '../lib.mjs'
import { servePage } from '../page-server.mjs'

const ORDERS = Number(process.env.BENCH_QUERY_ORDERS ?? 50_000)
const BATCH = 1_000
const ROUNDS = 200
const TARGET_MS = 20

export async function run() {
  const path = chromiumOrSkip('query', chromiumPath)
  if (path === undefined) return
  const tmp = mkdtempSync(join(tmpdir(), 'll-bench-query-'))
  let server, context
  try {
    server = await servePage('query-page.js')
    context = await chromium.launchPersistentContext(join(tmp, 'profile'), {
      executablePath: path,
      args: CHROMIUM_ARGS,
      headless: true,
    })
    const page = context.pages()[0] ?? (await context.newPage())
    await page.goto(server.origin)
    await page.waitForFunction(() => globalThis.bench !== undefined)
    const call = (fn, args) => page.evaluate(([f, a]) => globalThis.bench[f](a), [fn, args])
    const fill = await call('fill', { dbName: 'query-bench', count: ORDERS, batch: BATCH })
    console.log(`  filled ${ORDERS} orders in ${(fill.ms / 1000).toFixed(1)} s`)
    const shapes = [
      ['day', 'one day, limit 100 (the Orders screen)'],
      ['dayAll', 'one day, all 1,000 rows'],
      ['top', 'top 20 by total, descending'],
      ['storeDay', "one store's orders of a day (pattern order/s3-*), limit 100"],
      ['range', 'totals in [50,000, 50,500), limit 100'],
    ]
    const rows = []
    for (const [shape, words] of shapes) {
      await call('query', { shape, rounds: 10 }) // warm-up
      const { times, rows: n } = await call('query', { shape, rounds: ROUNDS })
      const p50 = summarize('ours', 'ms', times).median
      console.log(`  ${shape}: p50 ${p50.toFixed(2)} ms, ${n} rows`)
      rows.push({
        label: `query over ${ORDERS.toLocaleString('en-US')} orders: ${words} (${n} rows)`,
        ours: latencyOf('ours', times),
        ...(shape === 'day' ? { target: `p50 ≤ ${TARGET_MS} ms`, met: p50 <= TARGET_MS } : {}),
      })
    }
    const plainCount = Math.min(ORDERS, 10_000)
    const plain = await call('fill', {
      dbName: 'query-plain',
      count: plainCount,
      batch: BATCH,
      plain: true,
    })
    await call('close', {})
    const raw = await call('raw', {
      dbName: 'query-raw',
      count: ORDERS,
      rounds: ROUNDS,
      limit: 100,
    })
    rows[0] = { ...rows[0], anchor: latencyOf('raw getAll on an index', raw.times) }
    rows.push({
      label: `fill: ${ORDERS.toLocaleString('en-US')} orders by appendMany(${BATCH}), offline, views kept`,
      ours: summarize('ours', 'entries/s', [ORDERS / (fill.ms / 1000)]),
      anchor: summarize(`no indexes, ${plainCount.toLocaleString('en-US')} orders`, 'entries/s', [
        plainCount / (plain.ms / 1000),
      ]),
    })
    report('query', rows, [
      `headless Chromium, persistent profile on disk; ${ROUNDS} runs of each shape after 10 warm-up runs, each run on another day or store; latency is client.query from call to result (planning, one readonly transaction, rows cut to the limit)`,
      `${ORDERS.toLocaleString('en-US')} orders over 50 days and 10 stores, one entry each, appended offline (pending views: confirmed then own pending, as a query sees them)`,
    ])
  } finally {
    await context?.close().catch(() => undefined)
    await server?.close()
    rmSync(tmp, { recursive: true, force: true })
  }
}

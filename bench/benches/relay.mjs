// Relay durable appends: entries per second acked by the relay (each ack after a durable SQLite
// commit with synchronous=FULL) from 1, 10 and 100 connections, with p50/p99 ack latency, beside
// raw better-sqlite3 batched inserts of the same rows with synchronous=FULL in the same run.
import Database from 'better-sqlite3'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createRelay, signToken } from '@ledgerline/relay'
import { connect, pushLoad } from '../load-client.mjs'
import { measure, percentile, report } from '../lib.mjs'

const SECRET = 'bench-secret-bench-secret-bench-secret'
const TENANT = 'bench'
const ROUND_MS_MAX = 10_000
const ENTRIES_PER_ROUND = { 1: 20_000, 10: 100_000, 100: 100_000 }
const BATCH = 100
const WINDOW = 4

export async function run() {
  const rows = []
  const raw = await measure('raw better-sqlite3, FULL, batches of 100', 'rows/s', () =>
    rawSqlite(100_000),
  )
  for (const connections of [1, 10, 100]) {
    const latencies = []
    const result = await measure(`relay, ${connections} connections`, 'entries/s', async () => {
      const r = await relayRound(connections, ENTRIES_PER_ROUND[connections])
      latencies.push(...r.latencies)
      return r.rate
    })
    const p50 = percentile(latencies, 50)
    const p99 = percentile(latencies, 99)
    rows.push({
      label: `durable appends, ${connections} conn (batch ${BATCH}, ${WINDOW} in flight)`,
      ours: result,
      anchor: raw,
      target: connections === 10 ? '≥ 50,000/s' : undefined,
      met: connections === 10 ? result.median >= 50_000 : undefined,
    })
    rows.push({
      label: `ack latency p50 / p99, ${connections} conn`,
      ours: { unit: 'ms', median: p50, min: p50, max: p99 },
      target: connections === 10 ? 'p99 ≤ 50 ms' : undefined,
      met: connections === 10 ? p99 <= 50 : undefined,
    })
  }
  report('relay', rows, [
    'ack latency row: median column is p50, range column is p50–p99 over all batches of all rounds',
  ])
}

async function relayRound(connections, total) {
  const dir = mkdtempSync(join(tmpdir(), 'll-bench-relay-'))
  const relay = await createRelay({ port: 0, dataDir: dir, auth: { secret: SECRET } })
  try {
    const token = await signToken({
      secret: SECRET,
      tenant: TENANT,
      sub: 'bench',
      read: ['*'],
      write: ['*'],
    })
    const conns = await Promise.all(
      Array.from({ length: connections }, () => connect(relay.url, token)),
    )
    const per = Math.ceil(total / connections)
    const t0 = performance.now()
    const deadlineMs = Date.now() + ROUND_MS_MAX
    const results = await Promise.all(
      conns.map((c, i) =>
        pushLoad(c, {
          tenant: TENANT,
          total: per,
          batchSize: BATCH,
          window: WINDOW,
          entity: (s) => `tick/c${i}-${s % 64}`,
          deadlineMs,
        }),
      ),
    )
    const seconds = (performance.now() - t0) / 1000
    for (const c of conns) c.close()
    const acked = results.reduce((n, r) => n + r.acked, 0)
    return { rate: acked / seconds, latencies: results.flatMap((r) => r.latencies) }
  } finally {
    await relay.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

function rawSqlite(rows) {
  const dir = mkdtempSync(join(tmpdir(), 'll-bench-raw-'))
  const db = new Database(join(dir, 'raw.sqlite'))
  try {
    db.pragma('journal_mode = WAL')
    db.pragma('synchronous = FULL')
    db.exec(
      'create table entries (id text primary key, entity text, version integer, partition integer, offset integer, body blob)',
    )
    const insert = db.prepare('insert into entries values (?, ?, ?, ?, ?, ?)')
    const body = Buffer.alloc(200, 1)
    const batch = db.transaction((from) => {
      for (let i = from; i < from + 100; i++)
        insert.run(`e${i}`, `tick/${i % 64}`, i, i % 16, i, body)
    })
    const t0 = performance.now()
    for (let i = 0; i < rows; i += 100) batch(i)
    return rows / ((performance.now() - t0) / 1000)
  } finally {
    db.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

// Relay durable appends: entries per second acked by the relay (each ack after a durable SQLite
// commit with synchronous=FULL) from 1, 10 and 100 connections, with p50/p99 ack latency, beside
// raw better-sqlite3 batched inserts with synchronous=FULL in the same run:
//  - the physical limit: perf-baselines' table `log(seq INTEGER PRIMARY KEY, entity, payload)`
//    with a 200-byte payload, 100 rows per transaction;
//  - the same rows in the relay's own table layout (same columns and indexes, MessagePack entry
//    bodies), 100 rows per transaction, so the cost of the relay's code is told apart from the
//    cost of its indexes.
// Each round is a fresh relay on a fresh data directory, pushing for ROUND_MS from every
// connection (closed loop: batches of 100, 4 in flight per connection, as the client sends them).
// The relay's default SQLite writer runs 1, 10 and 100 connections (the target rows); the other
// writer (`--sqlite-writer`: commits on the event loop's thread or in a writer thread) 10 and 100
// beside it. Knobs: BENCH_SQLITE_WRITERS=worker (one writer), BENCH_RELAY_ROUNDS (measured
// rounds, 3), BENCH_RELAY_ROUND_MS (ms of pushing per round), BENCH_RELAY_PROFILE=0 (no
// profiled round).
import Database from 'better-sqlite3'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { encodeEntryBody } from '@ledgerline/relay'
import { pushRound } from '../load-client.mjs'
import { fmt, loadCpu, measure, percentile, profileLimit, report, sqliteWriters } from '../lib.mjs'
import { withFreshRelay } from '../server-process.mjs'

const SECRET = 'bench-secret-bench-secret-bench-secret'
const TENANT = 'bench'
const ROUND_MS = Number(process.env.BENCH_RELAY_ROUND_MS ?? 4_000)
const ROUNDS = Number(process.env.BENCH_RELAY_ROUNDS ?? 3)
const PROFILE = process.env.BENCH_RELAY_PROFILE !== '0'
/** Acks before this much of a round are not counted (connections ramping up). */
const RAMP_MS = 1_000
const RAW_ROUND_MS = 2_000
const BATCH = 100
const WINDOW = 4

export async function run() {
  const rows = []
  const plainTable = await measure('raw SQLite, log table, FULL, 100 rows/txn', 'entries/s', () =>
    rawLogTable(RAW_ROUND_MS),
  )
  const sameRows = await measure('raw SQLite, relay layout, FULL, 100 rows/txn', 'entries/s', () =>
    rawRelayLayout(RAW_ROUND_MS),
  )
  rows.push({ label: 'physical limit: raw better-sqlite3 batches', anchor: plainTable })
  rows.push({ label: 'same rows, relay table layout and indexes', anchor: sameRows })
  const rates = new Map()
  const { writers, standard } = await sqliteWriters()
  const runs = writers.flatMap((writer) =>
    (writer === standard ? [1, 10, 100] : [10, 100]).map((connections) => ({
      writer,
      connections,
    })),
  )
  for (const { writer, connections } of runs) {
    const latencies = []
    const tag = writer === standard ? '' : `${writer} writer: `
    const result = await measure(
      `relay, ${connections} connections, ${writer} writer`,
      'entries/s',
      async () => {
        const r = await relayRound(connections, false, writer)
        latencies.push(...r.latencies)
        return r.rate
      },
      { rounds: ROUNDS },
    )
    if (writer !== standard) {
      const same = rates.get(connections)
      rows.push({
        label: `${tag}durable appends, ${connections} conn (batch ${BATCH}, ${WINDOW} in flight)`,
        ours: result,
        anchor: plainTable,
        ratio:
          same === undefined
            ? undefined
            : `${(result.median / same.median).toFixed(2)}× the ${standard} writer`,
      })
      rows.push({
        label: `${tag}ack latency p50 / p99, ${connections} conn (${latencies.length} batches)`,
        ours: {
          unit: 'ms',
          median: percentile(latencies, 50),
          min: percentile(latencies, 50),
          max: percentile(latencies, 99),
        },
      })
      continue
    }
    rates.set(connections, result)
    // One more round, profiled, says what limits the figure (not counted in the median).
    const profiled =
      connections === 1 || !PROFILE ? undefined : await relayRound(connections, true, writer)
    const p50 = percentile(latencies, 50)
    const p99 = percentile(latencies, 99)
    const limit =
      profiled === undefined
        ? undefined
        : `${profileLimit('relay process', profiled.profile)}; relay CPU ${fmt((profiled.profile.cpuMs * 1000) / profiled.total)} µs per entry; load process busy ${profiled.loadBusy.toFixed(2)} cores`
    const row = {
      label: `durable appends, ${connections} conn (batch ${BATCH}, ${WINDOW} in flight)`,
      ours: result,
      anchor: plainTable,
      limit,
    }
    if (connections === 10) {
      row.target = '≥ 0.25× plain log table'
      row.met = result.median >= 0.25 * plainTable.median
    }
    if (connections === 100) {
      const ten = rates.get(10)
      row.target = 'no lower than 10 conn (≥ 0.9×, run-to-run noise)'
      row.met = result.median >= 0.9 * ten.median
      row.verdict = `${fmt(result.median)} entries/s, ${(result.median / ten.median).toFixed(2)}× 10 conn`
    }
    rows.push(row)
    rows.push({
      label: `ack latency p50 / p99, ${connections} conn (${latencies.length} batches)`,
      ours: { unit: 'ms', median: p50, min: p50, max: p99 },
    })
  }
  report('relay', rows, [
    `SQLite writers: ${writers.join(', ')}; unmarked rows are the default's (${standard}); thread: each group's COMMIT and fsync on the relay's event loop, worker: planned on the event loop, written and committed in a worker_threads writer`,
    `rounds: 1 warm-up + ${ROUNDS} measured, ${ROUND_MS / 1000} s of pushing each, acks counted after the first ${RAMP_MS / 1000} s (raw: ${RAW_ROUND_MS / 1000} s); median and min–max over rounds`,
    'ack latency rows: the median column is p50 and the range column p50–p99, over every batch of every measured round (closed loop at saturation, so latency includes queueing: connections × 4 batches in flight; the open-loop figures are the `latency` benchmark)',
    'ours / anchor is against the plain log table (the disk\'s limit); "limited by" comes from one extra round per connection count with the relay process under the V8 profiler (500 µs sampling; not counted in the medians)',
    'entries carry ~100 bytes of data; the relay runs without a schema (plain log: shape, auth, dedupe, versions, offsets)',
    'the relay runs in its own Node process (createRelay + SQLite store), the load clients in the benchmark process: each has a core of the 2',
  ])
}

function relayRound(connections, profile = false, sqliteWriter = undefined) {
  return withFreshRelay(
    SECRET,
    TENANT,
    async (relay, token) => {
      if (profile) await relay.profileStart()
      const { value, busy } = await loadCpu(() =>
        pushRound([relay.url], token, {
          tenant: TENANT,
          connections,
          batchSize: BATCH,
          window: WINDOW,
          roundMs: ROUND_MS,
          rampMs: RAMP_MS,
          entity: (c, s) => `tick/c${c}-${s % 64}`,
        }),
      )
      return profile ? { ...value, profile: await relay.profileStop(), loadBusy: busy } : value
    },
    { sqliteWriter },
  )
}

/** perf-baselines §4: the fastest durable SQLite batches can be on this disk. */
function rawLogTable(ms) {
  return rawRound(
    'create table log(seq integer primary key, entity text, payload blob)',
    'insert into log (entity, payload) values (?, ?)',
    (i) => [`tick/c0-${i % 64}`, PAYLOAD_200],
    ms,
  )
}

/** The relay's SQLite layout (columns, keys, indexes) with MessagePack entries as bodies. */
function rawRelayLayout(ms) {
  const clientId = 'c'.repeat(32)
  return rawRound(
    `create table entries (partition integer not null, "offset" integer not null,
       tenant text not null, id text not null, entity text not null, version integer not null,
       corrects text, committed_at integer not null, body blob not null, digest blob,
       primary key (partition, "offset"), unique (tenant, id), unique (tenant, entity, version)) strict;
     create index entries_tenant_partition on entries (tenant, partition, "offset");
     create index entries_corrects on entries (tenant, corrects) where corrects is not null`,
    'insert into entries values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    (i) => {
      const entity = `tick/c0-${i % 64}`
      const entry = {
        id: `${clientId}-${i}`,
        tenant: TENANT,
        entity,
        kind: 'bench.tick',
        data: { n: i, pad: 'x'.repeat(60) },
        intent: 'fact',
        clientId,
        clientSeq: i,
        hlc: `0${Date.now().toString(36)}-0000-${clientId}`,
        occurredAt: Date.now(),
      }
      return [
        i % 16,
        i,
        TENANT,
        entry.id,
        entity,
        Math.floor(i / 64) + 1,
        null,
        Date.now(),
        encodeEntryBody(entry),
        DIGEST_32,
      ]
    },
    ms,
  )
}

const PAYLOAD_200 = Buffer.alloc(200, 1)
// The storage of a content digest (32 bytes per client entry); hashing is the relay's work.
const DIGEST_32 = Buffer.alloc(32, 7)

function rawRound(ddl, insertSql, args, ms) {
  const dir = mkdtempSync(join(tmpdir(), 'll-bench-raw-'))
  const db = new Database(join(dir, 'raw.sqlite'))
  try {
    db.pragma('journal_mode = WAL')
    db.pragma('synchronous = FULL')
    db.exec(ddl)
    const insert = db.prepare(insertSql)
    const batch = db.transaction((from) => {
      for (let i = from; i < from + 100; i++) insert.run(...args(i))
    })
    const t0 = performance.now()
    let rows = 0
    while (performance.now() - t0 < ms && rows < 5_000_000) {
      batch(rows + 1)
      rows += 100
    }
    return rows / ((performance.now() - t0) / 1000)
  } finally {
    db.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

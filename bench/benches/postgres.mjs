// Scale-out (issue 8): durable appends per second through one and through two relays sharing
// one PostgreSQL log (private cluster from testkit: initdb in a temp directory, loopback, fsync
// and synchronous_commit on), from 10 connections (batches of 100, 4 in flight each; with two
// relays, 5 connections on each), beside the raw batched insert rate of the same rows into the
// same table layout from 10 concurrent PostgreSQL connections, 100 rows per statement, in the
// same run. Skipped, saying why, when the PostgreSQL binaries are missing.
import pg from 'pg'
import { createPostgresStore, signToken } from '@ledgerline/relay'
import { postgresSkipReason, startPostgresCluster } from '@ledgerline/testkit'
import { pushRound } from '../load-client.mjs'
import { latencyOf, loadCpu, profileLimit, report, sleep, summarize } from '../lib.mjs'
import { startServer } from '../server-process.mjs'

const SECRET = 'bench-secret-bench-secret-bench-secret'
const TENANT = 'bench'
const CONNECTIONS = 10
const ROUNDS = 3
const ROUND = { batchSize: 100, window: 4, roundMs: 4_000, rampMs: 1_000 }
const RAW_ROUND_MS = 3_000

export async function run() {
  const skip = postgresSkipReason()
  if (skip !== undefined) {
    report('postgres', [{ label: `skipped: ${skip}` }])
    return
  }
  const cluster = await startPostgresCluster()
  try {
    const rawUrl = await cluster.createDatabase('bench_raw')
    // The same table layout as the relay's: let the store run its migrations, then close it.
    await (await createPostgresStore({ url: rawUrl })).close()
    const raw = []
    await rawRound(rawUrl, 1_000) // warm-up
    for (let r = 0; r < ROUNDS; r++) raw.push(await rawRound(rawUrl, RAW_ROUND_MS))
    const anchor = summarize('raw unnest insert, 100 rows/stmt, 10 conns', 'entries/s', raw)
    const one = await throughRelays(await cluster.createDatabase('bench_one'), 1)
    const two = await throughRelays(await cluster.createDatabase('bench_two'), 2)
    const oneRate = summarize('ours', 'entries/s', one.rates)
    const twoRate = summarize('ours', 'entries/s', two.rates)
    report(
      'postgres',
      [
        { label: 'physical limit: raw batched insert, same rows and table', anchor },
        {
          label: `one relay, ${CONNECTIONS} conn: durable appends/s`,
          ours: oneRate,
          anchor,
          target: '≥ 0.6× raw batched inserts',
          met: oneRate.median >= 0.6 * anchor.median,
          limit: one.limit,
        },
        { label: 'one relay: ack latency p50 (p50–p99)', ours: latencyOf('ours', one.latencies) },
        {
          label: `two relays, ${CONNECTIONS / 2} conn each: durable appends/s`,
          ours: twoRate,
          anchor: { ...oneRate, label: 'one relay' },
          target: '> one relay',
          met: twoRate.median > oneRate.median,
        },
        { label: 'two relays: ack latency p50 (p50–p99)', ours: latencyOf('ours', two.latencies) },
      ],
      [
        `PostgreSQL from testkit's startPostgresCluster (fsync=on, synchronous_commit=on), same machine; ${ROUNDS} rounds after a warm-up, ${ROUND.roundMs / 1000} s each with acks counted after ${ROUND.rampMs / 1000} s (raw: ${RAW_ROUND_MS / 1000} s)`,
        'relays run in their own processes (createRelay + createPostgresStore, no schema); load clients in the benchmark process; PostgreSQL, relays and clients share the 2 cores, so two relays compete with the database for CPU',
        'raw: rows shaped as the relay writes them (ledgerline_entries, MessagePack bodies of ~320 bytes, the same keys and indexes) without the partition-head and client high-water updates or NOTIFY',
      ],
    )
  } finally {
    cluster.stop()
  }
}

async function throughRelays(databaseUrl, count) {
  const relays = []
  try {
    for (let i = 0; i < count; i++)
      relays.push(await startServer('relay', { databaseUrl, secret: SECRET }))
    const token = await signToken({
      secret: SECRET,
      tenant: TENANT,
      sub: 'bench',
      read: ['*'],
      write: ['*'],
    })
    const urls = relays.map((r) => r.url)
    const rates = []
    const latencies = []
    for (let r = 0; r <= ROUNDS; r++) {
      const result = await pushRound(urls, token, {
        ...ROUND,
        tenant: TENANT,
        connections: CONNECTIONS,
        entity: (c, s) => `tick/c${c}-${s % 64}`,
      })
      console.log(
        `  ${count} relay(s) round ${r}: ${Math.round(result.rate)} entries/s${r === 0 ? ' (warm-up)' : ''}`,
      )
      if (r === 0) continue
      rates.push(result.rate)
      latencies.push(...result.latencies)
      await sleep(200)
    }
    // One more round with the first relay under the profiler: what limits the figure.
    await relays[0].profileStart()
    const { busy } = await loadCpu(() =>
      pushRound(urls, token, {
        ...ROUND,
        tenant: TENANT,
        connections: CONNECTIONS,
        entity: (c, s) => `tick/c${c}-${s % 64}`,
      }),
    )
    const limit = `${profileLimit('relay process', await relays[0].profileStop())}; load process busy ${busy.toFixed(2)} cores (one extra, profiled round)`
    return { rates, latencies, limit }
  } finally {
    for (const r of relays) await r.close()
  }
}

/** 10 connections inserting 100-row statements (each its own commit) for `ms`; rows/s. */
async function rawRound(url, ms) {
  const { encodeEntryBody } = await import('@ledgerline/relay')
  const pool = new pg.Pool({ connectionString: url, max: CONNECTIONS })
  const clientId = 'c'.repeat(32)
  const base = Date.now() * 1000 // keeps ids and offsets unique across rounds
  try {
    const t0 = performance.now()
    const counts = await Promise.all(
      Array.from({ length: CONNECTIONS }, async (_, w) => {
        let rows = 0
        while (performance.now() - t0 < ms) {
          const cols = [[], [], [], [], [], [], [], [], [], []]
          for (let i = 0; i < 100; i++) {
            const n = base + rows + i
            const entity = `tick/w${w}-${n % 64}`
            const entry = {
              id: `${clientId}-${w}-${n}`,
              tenant: TENANT,
              entity,
              kind: 'bench.tick',
              data: { n, pad: 'x'.repeat(60) },
              intent: 'fact',
              clientId,
              clientSeq: n,
              hlc: `${Date.now()}:00000:${clientId}`,
              occurredAt: Date.now(),
            }
            const row = [
              w,
              n,
              TENANT,
              entry.id,
              entity,
              n,
              null,
              Date.now(),
              encodeEntryBody(entry),
              DIGEST_32,
            ]
            row.forEach((v, k) => cols[k].push(v))
          }
          await pool.query(
            `insert into ledgerline_entries (partition, "offset", tenant, id, entity, version, corrects, committed_at, body, digest)
             select * from unnest($1::int[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[], $8::bigint[], $9::bytea[], $10::bytea[])`,
            cols,
          )
          rows += 100
        }
        return rows
      }),
    )
    return counts.reduce((a, b) => a + b, 0) / ((performance.now() - t0) / 1000)
  } finally {
    await pool.end()
  }
}

// The storage of a content digest (32 bytes per client entry); hashing is the relay's work.
const DIGEST_32 = Buffer.alloc(32, 7)

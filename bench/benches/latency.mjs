// Relay ack latency in an open loop (issue 16): 50 connections together offer a fixed rate of
// durable appends (5k … 40k entries/s, batches of 10 on each connection's own schedule, sent
// whatever the acks do), and every batch's ack latency is measured from its scheduled send
// time, so queueing at a rate the relay cannot carry shows as latency instead of hiding in a
// lower send rate (the closed-loop `relay` rows measure throughput at saturation instead).
// Reported per rate: ack p50 / p99 / p999, the rate carried, and the relay process's event-loop
// delay and CPU time (counters of the same round); then the rate at which p99 passes 50 ms.
// Each round is a fresh relay (own process, SQLite synchronous=FULL) on a fresh data directory.
// Every rate is run with each SQLite writer (commits on the event loop's thread, or in a writer
// thread: `--sqlite-writer`), the default first; the target is the default's.
// Knobs: BENCH_LATENCY_RATES=5000,20000 (the rates), BENCH_LATENCY_MS (measured ms per round),
// BENCH_SQLITE_WRITERS=worker (one writer).
import { PUSH_IN_FLIGHT_MAX } from '@ledgerline/protocol'
import { openLoopRound } from '../load-client.mjs'
import { fmt, percentile, profileLimit, report, single, sqliteWriters } from '../lib.mjs'
import { withFreshRelay } from '../server-process.mjs'

const SECRET = 'bench-secret-bench-secret-bench-secret'
const TENANT = 'bench'
const CONNECTIONS = 50
const RATES = (process.env.BENCH_LATENCY_RATES ?? '5000,10000,20000,30000,40000')
  .split(',')
  .map(Number)
const BATCH = 10
const DURATION_MS = Number(process.env.BENCH_LATENCY_MS ?? 5_000)
const RAMP_MS = 1_000
const DRAIN_MS = 10_000
/** Entries queued per connection before new arrivals are dropped (the rate is not carried). */
const QUEUE_MAX = 20_000
/** Entries per push at most, as the client's sync loop (`PUSH_BATCH_ENTRIES_MAX`). */
const PUSH_ENTRIES_MAX = 200
const P99_KNEE_MS = 50
const TARGET_RATE = 20_000
const TARGET_P99_MS = 25

export async function run() {
  const rows = []
  const { writers, standard } = await sqliteWriters()
  const knees = []
  let target
  for (const writer of writers) {
    const p99s = []
    const tag = `${writer} writer`
    for (const rate of RATES) {
      const r = await round(rate, false, writer)
      const p50 = percentile(r.latencies, 50)
      const p99 = percentile(r.latencies, 99)
      const p999 = percentile(r.latencies, 99.9)
      p99s.push([rate, p99])
      const loop = r.stats.loopDelay
      rows.push({
        label: `${tag}, offered ${fmt(rate)} entries/s: ack p50 (p50–p99)`,
        ours: { unit: 'ms', median: p50, min: p50, max: p99 },
      })
      rows.push({
        label: `${tag}, offered ${fmt(rate)}: ack p999`,
        ours: single('', 'ms', p999),
      })
      rows.push({
        label:
          `${tag}, offered ${fmt(rate)}: carried (entries/s acked; ${r.entriesPerPush.toFixed(1)} entries/push;` +
          ` ${r.skipped} dropped, ${r.lost} un-acked, ${r.errors} errors${r.firstError === undefined ? '' : `: ${r.firstError}`})`,
        ours: single('', 'entries/s', r.carried),
      })
      rows.push({
        label:
          `${tag}, offered ${fmt(rate)}: relay event-loop delay p50 (p50–p99; max ${fmt(loop.max)} ms), ` +
          `relay CPU ${r.stats.busy.toFixed(2)} cores`,
        ours: { unit: 'ms', median: loop.p50, min: loop.p50, max: loop.p99 },
      })
      if (rate === TARGET_RATE && writer === standard) {
        target = { p50, p99, loop, r }
      }
    }
    knees.push({ writer, knee: kneeOf(p99s) })
  }
  // What limits the target's p99: the same rate again, the relay under the CPU profiler.
  let limit
  if (target !== undefined && !(target.p99 <= TARGET_P99_MS)) {
    const profiled = await round(TARGET_RATE, true, standard)
    limit =
      `relay event-loop delay p99 ${fmt(target.loop.p99)} ms (max ${fmt(target.loop.max)} ms) ` +
      `while acks waited p99 ${fmt(target.p99)} ms; profiled round: ${profileLimit('relay process', profiled.stats)}`
  }
  rows.push({
    label: `ack p99 at ${fmt(TARGET_RATE)} entries/s offered (${standard} writer, the default)`,
    ours: single('', 'ms', target?.p99 ?? Number.NaN),
    target: `≤ ${TARGET_P99_MS} ms`,
    met: target !== undefined && target.p99 <= TARGET_P99_MS,
    limit,
  })
  for (const { writer, knee } of knees) {
    rows.push({
      label: `${writer} writer: offered rate at which ack p99 passes ${P99_KNEE_MS} ms`,
      ratio: knee,
    })
  }
  report('latency', rows, [
    `${CONNECTIONS} connections; entries (~100 bytes of data each) arrive ${BATCH} at a time on a fixed schedule per connection and are pushed as the client's sync loop pushes: what has queued, up to ${PUSH_ENTRIES_MAX} a push, at most ${PUSH_IN_FLIGHT_MAX} pushes in flight; ${DURATION_MS / 1000} s per rate with the first ${RAMP_MS / 1000} s not measured; one round per rate, a fresh relay each`,
    `latency per entry from its scheduled arrival to its ack (open loop: queueing behind a slow relay counts); a queue of ${fmt(QUEUE_MAX)} entries drops arrivals ("dropped"); queues and acks get ${DRAIN_MS / 1000} s after the round ("un-acked" past that)`,
    'relay event-loop delay: perf_hooks.monitorEventLoopDelay in the relay process over the round (1 ms resolution): how long a ready socket waited for the loop, e.g. behind a commit',
    'the relay (its own process) and the load clients (the benchmark process) share the 2 cores',
    `writers: ${writers.join(', ')} (thread: each group's COMMIT and its fsync on the relay's event loop; worker: planned on the event loop, written and committed in a worker_threads writer); the target is the default's (${standard})`,
    `rate at which p99 passes ${P99_KNEE_MS} ms: between the two measured rates around it, linear in between (the ratio column)`,
  ])
}

function round(rate, profile, sqliteWriter) {
  return withFreshRelay(
    SECRET,
    TENANT,
    async (relay, token) => {
      await relay.profileStart({ cpu: profile })
      const r = await openLoopRound(relay.url, token, {
        tenant: TENANT,
        connections: CONNECTIONS,
        rate,
        batchSize: BATCH,
        durationMs: DURATION_MS,
        rampMs: RAMP_MS,
        drainMs: DRAIN_MS,
        queueMax: QUEUE_MAX,
        pushEntriesMax: PUSH_ENTRIES_MAX,
        entity: (s) => `tick/e${s % 5_000}`,
      })
      return { ...r, stats: await relay.profileStop() }
    },
    { sqliteWriter },
  )
}

/** Where p99 first passes the knee, interpolated between the measured rates around it. */
function kneeOf(p99s) {
  const i = p99s.findIndex(([, p99]) => !(p99 <= P99_KNEE_MS))
  if (i === -1) return `above ${fmt(p99s.at(-1)[0])} (p99 ${fmt(p99s.at(-1)[1])} ms there)`
  if (i === 0) return `below ${fmt(p99s[0][0])} (p99 ${fmt(p99s[0][1])} ms there)`
  const [r0, l0] = p99s[i - 1]
  const [r1, l1] = p99s[i]
  const at = Number.isFinite(l1) ? r0 + ((P99_KNEE_MS - l0) / (l1 - l0)) * (r1 - r0) : r1
  return `≈${fmt(at)} (p99 ${fmt(l0)} ms at ${fmt(r0)}, ${fmt(l1)} ms at ${fmt(r1)})`
}

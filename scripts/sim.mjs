// The deep tier of the deterministic simulation: many seeds, in parallel worker threads, with a
// summary table of the figures the README's "How we test" quotes.
//
//   npm run test:sim -- --seeds 500            seeds 1..500
//   npm run test:sim -- --seeds 200 --from 1000
//   npm run test:sim -- --seed 1234            replay one seed and print its figures
//   options: --jobs N (worker threads, default 2), --ops N (appends per client; default from the seed)
//
// Exits 1 if any seed fails; each failure prints its seed, violations and replay command.
import { availableParallelism } from 'node:os'
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads'
import { execSync } from 'node:child_process'

const testkit = new URL('../packages/testkit/dist/index.js', import.meta.url)

if (!isMainThread) {
  const { runSimulation, describeFailure, CRASH_POINTS } = await import(testkit.href)
  for (const seed of workerData.seeds) {
    const r = runSimulation({ seed, opsPerClient: workerData.ops })
    parentPort.postMessage({
      seed,
      ok: r.ok,
      failure: r.ok ? undefined : describeFailure(r),
      traceHash: r.traceHash,
      clients: r.config.clients,
      committed: r.ops.committed,
      resolved: r.ops.resolved,
      attempted: r.ops.attempted,
      simulatedMs: r.simulatedMs,
      events: r.events,
      lost: r.report.lost,
      duplicated: r.report.duplicated,
      unexpected: r.report.unexpected,
      ackedLost: r.report.ackedLost,
      corrections: r.report.figures.corrections,
      offendingFacts: r.report.figures.offendingFacts,
      requests: r.report.figures.requests,
      requestsRefused: r.report.figures.requestsRefused,
      relayCrashes: r.relayCrashes,
      clientCrashes: r.clientCrashes,
      offlineStretches: r.offlineStretches,
      clockJumps: r.clockJumps,
      frames: r.network.framesSent,
      dropped: r.network.framesDropped,
      duplicatedFrames: r.network.framesDuplicated,
      connections: r.network.connectionsOpened,
      hits: Object.fromEntries(CRASH_POINTS.map((p) => [p, r.crashPoints.hits[p]])),
      fired: Object.fromEntries(
        CRASH_POINTS.map((p) => [
          p,
          r.crashPoints.crashes[p] + r.crashPoints.delays[p] + r.crashPoints.throws[p],
        ]),
      ),
      crashes: Object.fromEntries(CRASH_POINTS.map((p) => [p, r.crashPoints.crashes[p]])),
    })
  }
  process.exit(0)
}

const args = parseArgs(process.argv.slice(2))
const single = args.seed !== undefined
const from = single ? Number(args.seed) : Number(args.from ?? 1)
const count = single ? 1 : Number(args.seeds ?? 100)
const jobs = Math.max(1, Math.min(Number(args.jobs ?? 2), availableParallelism(), count))
const ops = args.ops === undefined ? undefined : Number(args.ops)
const seeds = Array.from({ length: count }, (_, i) => from + i)
let sha = 'unknown'
try {
  sha = execSync('git rev-parse --short HEAD', { encoding: 'utf8' }).trim()
} catch {
  // Not a git checkout: the seed alone still replays on the same code.
}

const started = performance.now()
const results = []
await Promise.all(
  Array.from({ length: jobs }, (_, j) => {
    const mine = seeds.filter((_, i) => i % jobs === j)
    return new Promise((resolve, reject) => {
      const worker = new Worker(new URL(import.meta.url), { workerData: { seeds: mine, ops } })
      worker.on('message', (m) => {
        results.push(m)
        if (!m.ok) console.error(m.failure)
        if (!single && results.length % 50 === 0) {
          console.log(`… ${results.length}/${count} seeds`)
        }
      })
      worker.on('error', reject)
      worker.on('exit', (code) =>
        code === 0 ? resolve() : reject(new Error(`worker exit ${code}`)),
      )
    })
  }),
)
const wallMs = performance.now() - started
results.sort((a, b) => a.seed - b.seed)
const sum = (f) => results.reduce((n, r) => n + f(r), 0)
const failed = results.filter((r) => !r.ok)
const points = Object.keys(results[0]?.hits ?? {})

console.log(
  `\nLedgerline deterministic simulation — git ${sha}, seeds ${from}..${from + count - 1}`,
)
const rows = [
  ['seeds run', results.length],
  ['seeds failed', failed.length],
  [
    'clients per seed',
    `${Math.min(...results.map((r) => r.clients))}–${Math.max(...results.map((r) => r.clients))}`,
  ],
  ['simulated operations (appends committed)', sum((r) => r.committed)],
  ['appends resolved to the app', sum((r) => r.resolved)],
  ['requests decided (refused)', `${sum((r) => r.requests)} (${sum((r) => r.requestsRefused)})`],
  [
    'offending facts → corrections',
    `${sum((r) => r.offendingFacts)} → ${sum((r) => r.corrections)}`,
  ],
  ['simulated time (hours)', (sum((r) => r.simulatedMs) / 3_600_000).toFixed(0)],
  ['events run', sum((r) => r.events)],
  [
    'frames sent / dropped (conn reset) / duplicated',
    `${sum((r) => r.frames)} / ${sum((r) => r.dropped)} / ${sum((r) => r.duplicatedFrames)}`,
  ],
  ['connections opened', sum((r) => r.connections)],
  [
    'relay crashes / client crashes',
    `${sum((r) => r.relayCrashes)} / ${sum((r) => r.clientCrashes)}`,
  ],
  [
    'offline stretches / clock jumps back',
    `${sum((r) => r.offlineStretches)} / ${sum((r) => r.clockJumps)}`,
  ],
  [
    'crash points hit / fired (crash, delay or throw)',
    `${sum((r) => sumObj(r.hits))} / ${sum((r) => sumObj(r.fired))}`,
  ],
  ['lost', sum((r) => r.lost)],
  ['duplicated', sum((r) => r.duplicated)],
  ['unexpected', sum((r) => r.unexpected)],
  ['acked then lost', sum((r) => r.ackedLost)],
  ['wall time (s)', (wallMs / 1000).toFixed(1)],
]
printTable(['figure', 'value'], rows)
console.log('')
printTable(
  ['crash point', 'hits', 'fired', 'crashes'],
  points.map((p) => [p, sum((r) => r.hits[p]), sum((r) => r.fired[p]), sum((r) => r.crashes[p])]),
)
if (single) console.log(`\ntrace hash ${results[0]?.traceHash}`)
if (failed.length > 0) {
  console.error(`\nfailed seeds: ${failed.map((r) => r.seed).join(' ')}`)
  process.exit(1)
}

function sumObj(o) {
  return Object.values(o).reduce((a, b) => a + b, 0)
}

function parseArgs(argv) {
  const out = {}
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (!a.startsWith('--')) continue
    out[a.slice(2)] = argv[i + 1]
    i++
  }
  return out
}

function printTable(head, rows) {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)))
  const line = (cells) => `| ${cells.map((c, i) => String(c).padEnd(widths[i])).join(' | ')} |`
  console.log(line(head))
  console.log(`| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`)
  for (const r of rows) console.log(line(r))
}

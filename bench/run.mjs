// `npm run bench` runs every benchmark; `npm run bench -- <name> [<name>…]` runs some.
// Each benchmark lives in benches/<name>.mjs and exports `run()`, which measures our figure and,
// in the same run, the anchor or physical limit for the same work, then calls `report()`.
// After the run, bench/results/summary.md collects every report in bench/results/ (each with its
// own date, machine and load), so one file holds the whole table.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { BENCH_DIR, formatReport, machineLine, verdictLines } from './lib.mjs'

const ORDER = [
  'relay',
  'latency',
  'client',
  'query',
  'fanout',
  'crdt',
  'memory',
  'overload',
  'postgres',
  'hub',
  'bundle',
]

const available = readdirSync(join(BENCH_DIR, 'benches'))
  .filter((f) => f.endsWith('.mjs'))
  .map((f) => f.slice(0, -4))
  .sort((a, b) => rank(a) - rank(b) || a.localeCompare(b))
const asked = process.argv.slice(2).filter((a) => !a.startsWith('-'))
const unknown = asked.filter((a) => !available.includes(a))
if (unknown.length > 0) {
  console.error(`unknown benchmark: ${unknown.join(', ')}; available: ${available.join(', ')}`)
  process.exit(2)
}
const chosen = asked.length > 0 ? asked : available

// automerge-repo (an anchor, not ours) can reject an internal `withTimeout` promise nobody
// awaits after a benchmark gave up on it and shut its repos down; that must not end the whole
// run. Such failures are reported and the run goes on; any other unhandled rejection fails it.
let foreignRejections = 0
// Its WebSocket client adapter also throws from a socket event (ECONNRESET) once the anchor's
// server is stopped. Both are the anchor tearing down, after its figures were taken or it was
// reported as not completing.
const onForeign = (what) => (reason) => {
  const stack = reason instanceof Error ? (reason.stack ?? '') : String(reason)
  if (stack.includes('@automerge/automerge-repo') || orphanSocketError(reason, stack)) {
    foreignRejections++
    console.error(`an anchor library (automerge-repo) left ${what} behind: ${String(reason)}`)
    return
  }
  console.error(`${what} in a benchmark:`, reason)
  process.exit(1)
}
// A socket error with only Node's own frames, thrown because no one listens for it: our load
// clients keep an error listener on each socket they open, so it is an anchor's client reconnecting to a
// server that was stopped or overloaded (seen from automerge-repo's adapter as ECONNRESET).
const orphanSocketError = (reason, stack) =>
  ['ECONNRESET', 'ECONNREFUSED', 'EPIPE'].includes(reason?.code) &&
  stack
    .split('\n')
    .slice(1)
    .every((line) => line.includes('node:'))
process.on('unhandledRejection', onForeign('an unhandled rejection'))
process.on('uncaughtException', onForeign('an uncaught exception'))
for (const pkg of ['core', 'protocol', 'relay', 'client', 'yjs', 'testkit']) {
  if (!existsSync(join(BENCH_DIR, '..', 'packages', pkg, 'dist', 'index.js'))) {
    console.error(`packages/${pkg} is not built: run \`npm run build\` (tsc -b) first`)
    process.exit(2)
  }
}
const started = Date.now()
console.log(`machine: ${machineLine()}`)
const timings = []
let failed = 0
for (const name of chosen) {
  const t0 = Date.now()
  try {
    const mod = await import(pathToFileURL(join(BENCH_DIR, 'benches', `${name}.mjs`)).href)
    await mod.run()
  } catch (error) {
    failed++
    console.error(`benchmark ${name} failed:`, error)
  }
  const seconds = (Date.now() - t0) / 1000
  timings.push(`${name} ${seconds.toFixed(1)} s`)
  console.log(`(${name}: ${seconds.toFixed(1)} s)`)
}
const total = ((Date.now() - started) / 1000).toFixed(1)
const verdicts = writeSummary(`${chosen.join(', ')} in ${total} s (${timings.join(', ')})`, chosen)
if (verdicts.length > 0) console.log(`\nTargets (ratios within this run):\n${verdicts.join('\n')}`)
console.log(`\nall done in ${total} s; summary: ${join(BENCH_DIR, 'results', 'summary.md')}`)
if (foreignRejections > 0) {
  console.log(`(automerge-repo left ${foreignRejections} rejection(s) behind; see above)`)
}
process.exit(failed > 0 ? 1 : 0)

function rank(name) {
  const i = ORDER.indexOf(name)
  return i === -1 ? ORDER.length : i
}

/**
 * Every report in results/, in suite order, as one Markdown file, with every target's verdict
 * at the top; returns the verdicts of the benchmarks of this run.
 */
function writeSummary(lastRun, ran) {
  const dir = join(BENCH_DIR, 'results')
  if (!existsSync(dir)) return []
  const reports = readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')))
    .filter((r) => typeof r.name === 'string' && Array.isArray(r.rows))
    .sort((a, b) => rank(a.name) - rank(b.name) || a.name.localeCompare(b.name))
  const verdicts = reports.flatMap((r) => verdictLines(r.name, r.rows).slice(3))
  const text = [
    '# Ledgerline benchmarks',
    '',
    `Last run: ${lastRun}.`,
    'Each section names the date, machine and load average it was measured at.',
    '',
    '## Targets',
    '',
    ...verdicts,
    '',
    ...reports.map((r) => formatReport(r) + '\n'),
  ].join('\n')
  writeFileSync(join(dir, 'summary.md'), text)
  return reports
    .filter((r) => ran.includes(r.name))
    .flatMap((r) => verdictLines(r.name, r.rows).slice(3))
}

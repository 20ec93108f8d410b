// The deep tier of the deterministic simulations, many seeds in parallel worker threads, with a
// summary table of the figures the README's "How we test" quotes.
//
// The product simulation (default): the real client (`createClient`) in every till and the real
// relay `Session`, token check and server log, on a simulated world (`packages/sim`).
//
//   npm run test:sim -- --seeds 500                  seeds 1..500 (SQLite log)
//   npm run test:sim -- --seeds 200 --from 1000 --store memory
//   npm run test:sim -- --seed 1234                  replay one seed: its figures and trace hash
//   npm run test:sim -- --seeds 50 --faults all      every edge fault on every seed
//   npm run test:sim -- --seeds 50 --faults restores,impostor   only these (`none`: none)
//   (default: each edge fault — restores, impostor, logRestores, expiringTokens, oversized,
//   rollouts — is drawn per seed with even odds)
//   npm run test:sim -- --seeds 20 --bug deleteOnSend   a planted bug: the run must fail
//   npm run test:sim -- --seeds 500 --hubs          the tills of a store behind store hubs
//   (the real hub; upstream cuts, store internet cuts, hub crashes, a hub lost with its disk,
//   some seeds a backup hub, drawn per seed)
//   the open findings of packages/sim/FINDINGS.md fail their seeds (`--lenient`: only count
//   them; `--strict` is accepted and is the default)
//   options: --jobs N (worker threads, default 2), --ops N (appends per till; default from the seed)
//
// The model simulation, kept as a fast protocol oracle (a model client and relay over the memory
// log, `packages/testkit/src/sim`): `npm run test:sim -- --model --seeds 500`.
//
// Exits 1 if any seed fails (with --bug: if any seed passes); each failure prints its seed,
// violations, trace hash and replay command.
import { availableParallelism } from 'node:os'
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads'
import { execSync } from 'node:child_process'

const testkit = new URL('../packages/testkit/dist/index.js', import.meta.url)
const sim = new URL('../packages/sim/dist/index.js', import.meta.url)
/**
 * Seeds one worker runs before a fresh worker takes over (bounds a long run's memory; small, so
 * a run stopped early has run nearly the first seeds in order).
 */
const SEEDS_PER_WORKER_MAX = 10

/** Planted bugs by name: where the switch lives, and what it needs. */
const BUGS = {
  deleteOnSend: { bugs: { client: { deleteOnSend: true } } },
  // A register that takes a store hub's `stored` for head office's result: needs hubs.
  deleteOnStored: { hubs: true, bugs: { client: { deleteOnStored: true } } },
  ackBeforeCommit: { bugs: { sqlite: { ackBeforeCommit: true } } },
  unsyncedLastCommit: { store: 'memory', bugs: { memory: { unsyncedLastCommit: true } } },
  noDedupe: { store: 'memory', bugs: { memory: { noDedupe: true } } },
  // Dedupe by id alone, as protocol 1 did: the restores and impostor faults must catch it.
  ignoreDigests: {
    faults: 'restores,impostor',
    bugs: { sqlite: { ignoreDigests: true } },
  },
}

if (!isMainThread) {
  if (workerData.model) await modelWorker()
  else await productWorker()
  process.exit(0)
}

const args = parseArgs(process.argv.slice(2))
const model = args.model !== undefined
const single = args.seed !== undefined
const from = single ? Number(args.seed) : Number(args.from ?? 1)
const count = single ? 1 : Number(args.seeds ?? 100)
const jobs = Math.max(1, Math.min(Number(args.jobs ?? 2), availableParallelism(), count))
const ops = args.ops === undefined ? undefined : Number(args.ops)
const bug = args.bug
if (bug !== undefined && BUGS[bug] === undefined) {
  console.error(`unknown --bug ${bug}; one of ${Object.keys(BUGS).join(', ')}`)
  process.exit(2)
}
const seeds = Array.from({ length: count }, (_, i) => from + i)
let sha = 'unknown'
try {
  sha = execSync('git rev-parse --short HEAD', { encoding: 'utf8' }).trim()
} catch {
  // Not a git checkout: the seed alone still replays on the same code.
}

const started = performance.now()
const results = []
/** Workers running now: a run stopped with SIGTERM ends them and prints what it has. */
const workers = new Set()
let stoppedEarly = false
if (isMainThread) {
  process.once('SIGTERM', () => {
    stoppedEarly = true
    for (const w of workers) void w.terminate()
  })
}
// A worker runs at most SEEDS_PER_WORKER_MAX seeds, then a fresh one takes the next chunk: what
// a run leaves behind in a worker's heap (databases, module caches) cannot add up over a long
// run. `jobs` workers at a time.
const chunks = []
for (let i = 0; i < seeds.length; i += SEEDS_PER_WORKER_MAX) {
  chunks.push(seeds.slice(i, i + SEEDS_PER_WORKER_MAX))
}
await Promise.all(
  Array.from({ length: jobs }, async () => {
    for (let mine = chunks.shift(); mine !== undefined && !stoppedEarly; mine = chunks.shift()) {
      await runChunk(mine)
    }
  }),
)

function runChunk(mine) {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL(import.meta.url), {
      workerData: {
        seeds: mine,
        ops,
        model,
        store: args.store,
        faults: args.faults,
        hubs: args.hubs === true || BUGS[bug]?.hubs === true,
        bug,
        strict: args.lenient === undefined,
      },
    })
    worker.on('message', (m) => {
      results.push(m)
      if (!m.ok && bug === undefined) console.error(m.failure)
      if (!single && results.length % 50 === 0) {
        console.log(`… ${results.length}/${count} seeds`)
      }
    })
    workers.add(worker)
    worker.on('error', reject)
    worker.on('exit', (code) => {
      workers.delete(worker)
      if (code === 0 || stoppedEarly) resolve()
      else reject(new Error(`worker exit ${code}`))
    })
  })
}

const wallMs = performance.now() - started
results.sort((a, b) => a.seed - b.seed)
if (model) printModel()
else await printProduct()

// ---------------------------------------------------------------------------------------------

async function productWorker() {
  const { runProductSimulation, describeProductFailure, EDGE_FAULTS } = await import(sim.href)
  const planted = workerData.bug === undefined ? {} : BUGS[workerData.bug]
  const asked = workerData.faults ?? planted.faults
  // Default: every edge fault drawn per seed (run-config.ts invariant 2); `none`, `all` or a list.
  const names =
    asked === undefined
      ? undefined
      : asked === 'all'
        ? EDGE_FAULTS
        : asked === 'none'
          ? []
          : asked.split(',').filter((f) => f !== '')
  for (const name of names ?? []) {
    if (!EDGE_FAULTS.includes(name)) throw new Error(`unknown fault ${name}: ${EDGE_FAULTS}`)
  }
  const faults = names === undefined ? undefined : Object.fromEntries(names.map((n) => [n, true]))
  for (const seed of workerData.seeds) {
    const r = await runProductSimulation({
      seed,
      opsPerTill: workerData.ops,
      store: planted.store ?? workerData.store,
      faults,
      bugs: planted.bugs,
      strict: workerData.strict,
      hubs: workerData.hubs,
    })
    parentPort.postMessage({
      seed,
      ok: r.ok,
      failure: r.ok ? undefined : describeProductFailure(r),
      traceHash: r.traceHash,
      tills: r.config.tills,
      attempted: r.ops.attempted,
      resolved: r.ops.resolved,
      cut: r.ops.cut,
      simulatedMs: r.simulatedMs,
      events: r.events,
      wallMs: r.wallMs,
      lost: r.report.lost,
      openFindings: r.report.openFindings,
      duplicated: r.report.duplicated,
      unexpected: r.report.unexpected,
      counts: r.report.counts,
      edge: r.config.edge,
      hub: r.config.hub ?? null,
      logEntries: r.report.figures.logEntries,
      corrections: r.report.figures.corrections,
      offendingFacts: r.report.figures.offendingFacts,
      requests: r.report.figures.requests,
      requestsRefused: r.report.figures.requestsRefused,
      ...r.world,
    })
  }
}

async function printProduct() {
  // The edge faults as `run-config.ts` names them, for the summary's per-fault rows.
  const { EDGE_FAULTS: EDGE_NAMES } = await import(sim.href)
  const sum = (f) => results.reduce((n, r) => n + f(r), 0)
  const failed = results.filter((r) => !r.ok)
  const walls = results.map((r) => r.wallMs).sort((a, b) => a - b)
  console.log(
    `\nLedgerline product simulation — git ${sha}, seeds ${from}..${from + count - 1}${stoppedEarly ? ` (stopped early: ${results.length} of them run, ${results.map((r) => r.seed).join(',')})` : ''}, store ${args.store ?? BUGS[bug]?.store ?? 'sqlite'}, edge faults ${args.faults ?? BUGS[bug]?.faults ?? 'drawn per seed'}${args.hubs === true ? ', store hubs' : ''}${bug === undefined ? '' : `, planted bug ${bug}`}`,
  )
  const checks = Object.keys(results[0]?.counts ?? {})
  const rows = [
    ['seeds run', results.length],
    ['seeds failed', failed.length],
    [
      'tills per seed',
      `${Math.min(...results.map((r) => r.tills))}–${Math.max(...results.map((r) => r.tills))}`,
    ],
    [
      'appends resolved to the app (attempted)',
      `${sum((r) => r.resolved)} (${sum((r) => r.attempted)})`,
    ],
    ['entries in the logs', sum((r) => r.logEntries)],
    ['requests decided (refused)', `${sum((r) => r.requests)} (${sum((r) => r.requestsRefused)})`],
    [
      'offending facts → corrections',
      `${sum((r) => r.offendingFacts)} → ${sum((r) => r.corrections)}`,
    ],
    ['append calls checked by the oracle', sum((r) => r.oracleCalls)],
    ['simulated time (hours)', (sum((r) => r.simulatedMs) / 3_600_000).toFixed(0)],
    ['events run', sum((r) => r.events)],
    [
      'frames / lost (connection broke) / breaks',
      `${sum((r) => r.frames)} / ${sum((r) => r.framesLost)} / ${sum((r) => r.breaks)}`,
    ],
    ['dials', sum((r) => r.dials)],
    [
      'till boots / power cuts / tab reloads',
      `${sum((r) => r.tillBoots)} / ${sum((r) => r.powerCuts)} / ${sum((r) => r.tabReloads)}`,
    ],
    ['relaxed IndexedDB commits lost to power cuts', sum((r) => r.relaxedCommitsLost)],
    ['relay crashes', sum((r) => r.relayCrashes)],
    ...Object.keys(results[0]?.crashPoints?.hits ?? {}).map((p) => [
      `crash point ${p}: hits / fired`,
      `${sum((r) => r.crashPoints.hits[p])} / ${sum((r) => r.crashPoints.fired[p])}`,
    ]),
    [
      'disk restores / log restores / impostor entries pushed / impostor refused',
      `${sum((r) => r.restores)} / ${sum((r) => r.logRestores)} / ${sum((r) => r.impostorPushed)} / ${sum((r) => r.impostorRefused)}`,
    ],
    ...EDGE_NAMES.map((f) => [`seeds with edge fault ${f}`, sum((r) => (r.edge[f] ? 1 : 0))]),
    ...(args.hubs === true
      ? [
          [
            'store hubs: seeds with a backup hub / registers in the store (of tills)',
            `${sum((r) => (r.hub?.backup ? 1 : 0))} / ${sum((r) => r.hub?.inStore ?? 0)} (${sum((r) => r.tills)})`,
          ],
          [
            'store hubs: upstream cuts / store internet cuts (planned)',
            `${sum((r) => r.hub?.upstreamCuts ?? 0)} / ${sum((r) => r.hub?.wanCuts ?? 0)}`,
          ],
          [
            'store hubs: crashes / disks lost (for good until the heal) / register sessions',
            `${sum((r) => r.hubCrashes)} / ${sum((r) => r.hubDisksLost)} (${sum((r) => (r.hub?.diskLoss && r.hub?.diskBackMs === undefined ? 1 : 0))}) / ${sum((r) => r.hubSessions)}`,
          ],
          ['store hubs: looks at the registers (store layer, stages)', sum((r) => r.storeSamples)],
          ['store hubs: acks `stored` to registers', sum((r) => r.storedAcks)],
        ]
      : []),
    ['lost', sum((r) => r.lost)],
    [
      'ops hit by the open findings (disk and log restores; FINDINGS.md)',
      `${sum((r) => r.openFindings.length)} in ${results.filter((r) => r.openFindings.length > 0).length} seeds`,
    ],
    ['duplicated', sum((r) => r.duplicated)],
    ['unexpected', sum((r) => r.unexpected)],
    ...checks.map((c) => [`violations: ${c}`, sum((r) => r.counts[c])]),
    [
      'wall time per seed (ms): mean / p50 / max',
      `${(sum((r) => r.wallMs) / results.length).toFixed(0)} / ${(walls[Math.floor(walls.length / 2)] ?? 0).toFixed(0)} / ${(walls.at(-1) ?? 0).toFixed(0)}`,
    ],
    ['wall time (s)', (wallMs / 1000).toFixed(1)],
  ]
  printTable(['figure', 'value'], rows)
  if (single) console.log(`\ntrace hash ${results[0]?.traceHash}`)
  const known = results.filter((r) => r.openFindings.length > 0)
  if (known.length > 0) {
    console.log(
      `\nseeds hit by the open findings: ${known.map((r) => `${r.seed} (${r.traceHash})`).join(' ')}`,
    )
    console.log(`  e.g. seed ${known[0].seed}: ${known[0].openFindings[0]}`)
  }
  if (bug !== undefined) {
    const caught = failed[0]
    if (caught === undefined) {
      console.error(`\nplanted bug ${bug} was NOT caught in ${count} seeds`)
      process.exit(1)
    }
    console.log(
      `\nplanted bug ${bug} caught first at seed ${caught.seed} (trace ${caught.traceHash})`,
    )
    console.log(caught.failure)
    return
  }
  if (failed.length > 0) {
    console.error(`\nfailed seeds: ${failed.map((r) => r.seed).join(' ')}`)
    process.exit(1)
  }
}

async function modelWorker() {
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
}

function printModel() {
  const sum = (f) => results.reduce((n, r) => n + f(r), 0)
  const failed = results.filter((r) => !r.ok)
  const points = Object.keys(results[0]?.hits ?? {})
  console.log(
    `\nLedgerline model simulation (protocol oracle, no product code) — git ${sha}, seeds ${from}..${from + count - 1}`,
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
}

function sumObj(o) {
  return Object.values(o).reduce((a, b) => a + b, 0)
}

function parseArgs(argv) {
  const out = {}
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (!a.startsWith('--')) continue
    const next = argv[i + 1]
    if (next === undefined || next.startsWith('--')) {
      out[a.slice(2)] = true
      continue
    }
    out[a.slice(2)] = next
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

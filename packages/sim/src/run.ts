/**
 * One product simulation run: from a root seed, build the world (scheduler, wire, disks,
 * browsers), the real relay (sessions, token check, SQLite or memory log, checked by the
 * oracle) and a few tills running the real client; drive a point-of-sale workload with faults;
 * heal, drain, and check the real history.
 *
 *   seed ─► config ─► workload + nemesis (+ edge faults when switched on) ─► heal ─► drain
 *        ─► read back: the log, each till's client (status, confirmed state, outcomes) ─► checks
 *
 * Modules: the config drawn from the seed (`run-config.ts`), the workload (`workload.ts`) and
 * the nemesis with the edge faults (`schedule.ts`) queued before the start, the drain and the
 * read back (`drain.ts`), the checks (`checkers.ts`).
 *
 * Invariants:
 * 1. Everything is derived from `seed` and the options: the same seed and options give the
 *    same trace hash (a test proves it), so a failure replays with `--seed N` and its options.
 * 2. Faults stop at the heal: links calm down and come back, every till boots, the relay runs
 *    with the full schema, the impostor is gone; a till that has not drained within
 *    `SIM_DRAIN_MS_MAX` is a liveness failure, with its reason.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createPrng, createSimScheduler } from '@ledgerline/testkit'
import type { ProductCheckReport, TillFinal } from './checkers.ts'
import { checkProductRun } from './checkers.ts'
import { createProductCrashPoints } from './crash-points.ts'
import type { ProductCrashPoints } from './crash-points.ts'
import { prepareDeviceDisks } from './device-disk.ts'
import { drainTills, progress, quiet, readTills, settle, stuckReason } from './drain.ts'
import type { SimHistory } from './history.ts'
import { createSimHistory } from './history.ts'
import { healStore, scheduleStoreFaults, STORE_WAN } from './hub-faults.ts'
import type { HubNode } from './hub-node.ts'
import { createHubNode, hubDir } from './hub-node.ts'
import { watchStore } from './store-watch.ts'
import {
  SIM_CLOCK_SKEW_MS_MAX,
  SIM_DRAIN_MS_MAX,
  SIM_FAILURE_LINES_PER_CHECK,
  SIM_PARTITIONS,
  SIM_SETTLE_MS,
  SIM_TOKEN_LIFETIME_LONG_S,
  SIM_TOKEN_LIFETIME_SHORT_S_MAX,
  SIM_TOKEN_LIFETIME_SHORT_S_MIN,
} from './limits.ts'
import { createLogOracle } from './oracle.ts'
import type { LogDump } from './relay-node.ts'
import { createRelayNode } from './relay-node.ts'
import type { ProductSimConfig, ProductSimOptions } from './run-config.ts'
import { drawConfig, EDGE_FAULTS, HOUR, SECRET, TENANT } from './run-config.ts'
import { schedule } from './schedule.ts'
import { productSchema, productSchemaBeforeLoyalty } from './schema.ts'
import { createSimLoop } from './sim-loop.ts'
import type { Till } from './till.ts'
import { createTill } from './till.ts'
import { createTokenBook } from './token-book.ts'
import { CALM, createWire } from './wire.ts'

/** Head office's sync URL (`wire.ts`'s `HEAD_OFFICE_HOST`). */
const HEAD_OFFICE_URL = 'wss://relay.sim/sync'
/** The store's hubs: the primary, and the backup some seeds run. */
const HUB_NAMES = ['hub-1', 'hub-2'] as const

export interface ProductSimResult {
  readonly seed: number
  readonly config: ProductSimConfig
  readonly traceHash: string
  readonly trace: readonly string[]
  readonly drained: boolean
  readonly simulatedMs: number
  readonly events: number
  readonly wallMs: number
  /** Most events within one simulated minute. */
  readonly busiestMinute: number
  readonly ops: { attempted: number; resolved: number; failed: number; cut: number }
  readonly world: {
    readonly dials: number
    readonly frames: number
    readonly framesLost: number
    readonly breaks: number
    readonly tillBoots: number
    readonly powerCuts: number
    readonly tabReloads: number
    readonly relayCrashes: number
    readonly restores: number
    readonly logRestores: number
    readonly impostorPushed: number
    /** Hellos (or pushes) of the impostor the relay refused (`client_taken`, protocol 2). */
    readonly impostorRefused: number
    /** Store hubs (with `hubs`): crashes, disks lost, sessions, samples of the registers. */
    readonly hubCrashes: number
    readonly hubDisksLost: number
    readonly hubSessions: number
    readonly storeSamples: number
    /** Acks `stored` the tills got from a hub (durable in the store, not at head office yet). */
    readonly storedAcks: number
    readonly relaxedCommitsLost: number
    readonly oracleCalls: number
    readonly crashPoints: ProductCrashPoints['stats']
  }
  readonly report: ProductCheckReport
  readonly ok: boolean
  /** What the world recorded, for a closer look at a failure. */
  readonly history: SimHistory
  /** What each till's client said at the end, and the log as read back. */
  readonly tills: readonly TillFinal[]
  readonly log: LogDump
}

/**
 * Runs one seed to the end and checks it.
 *
 * @example
 * const result = await runProductSimulation({ seed: 42 })
 * if (!result.ok) throw new Error(describeProductFailure(result))
 */
export async function runProductSimulation(options: ProductSimOptions): Promise<ProductSimResult> {
  const started = performance.now()
  await prepareDeviceDisks()
  const root = createPrng(options.seed)
  const config = drawConfig(root.fork('config'), options)
  const nemesis = root.fork('nemesis')
  const names = Array.from({ length: config.tills }, (_, i) => `till-${i + 1}`)
  const lifetimeS = config.edge.expiringTokens
    ? nemesis.int(SIM_TOKEN_LIFETIME_SHORT_S_MIN, SIM_TOKEN_LIFETIME_SHORT_S_MAX)
    : SIM_TOKEN_LIFETIME_LONG_S
  const tokens = await createTokenBook({
    secret: SECRET,
    tenant: TENANT,
    subjects: [
      ...names.map((sub) => ({ sub, read: ['*'], write: ['*'] })),
      { sub: 'impostor', read: ['*'], write: nemesis.chance(0.5) ? ['*'] : [] },
      // Store hubs: read everything, write nothing of their own, forward the registers'.
      ...(config.hub === undefined ? [] : HUB_NAMES).map((sub) => ({
        sub,
        read: ['*'],
        write: [],
        forward: ['*'],
      })),
    ],
    lifetimeS,
    untilMs: config.durationMs + SIM_DRAIN_MS_MAX + HOUR,
  })
  const sched = createSimScheduler({ keepTrace: options.keepTrace })
  const loop = createSimLoop(sched)
  const wire = createWire(sched, root.fork('wire'))
  const history = createSimHistory()
  // The log decides on the relay's clock (`clock_ahead`); the relay is made just below.
  const oracle = createLogOracle(productSchema, SIM_PARTITIONS, () => relay.now())
  const points = createProductCrashPoints(root.fork('points'), config.crashRate)
  const restarts = root.fork('restarts')
  const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir()
  const dir = mkdtempSync(join(base, 'ledgerline-sim-'))
  const relay = createRelayNode({
    loop,
    wire,
    mode: config.store,
    dir,
    schema: config.edge.rollouts ? productSchemaBeforeLoyalty : productSchema,
    partitions: SIM_PARTITIONS,
    secret: SECRET,
    oracle,
    points,
    restartMs: () => restarts.int(100, 30_000),
    bugs: { sqlite: options.bugs?.sqlite, memory: options.bugs?.memory },
  })
  const staleUntil = new Map<string, number>()
  const plan = config.hub
  const hubRng = root.fork('hubs')
  const hubs: HubNode[] =
    plan === undefined
      ? []
      : HUB_NAMES.slice(0, plan.backup ? 2 : 1).map((name, i) =>
          createHubNode({
            loop,
            wire,
            name,
            host: `${name}.sim`,
            dir: hubDir(dir, name),
            secret: SECRET,
            // A backup hub forwards through the primary, and to head office when it is gone.
            upstream:
              i === 0 ? [HEAD_OFFICE_URL] : [`wss://${HUB_NAMES[0]}.sim/sync`, HEAD_OFFICE_URL],
            token: () => tokens.current(name, relay.now()),
            wan: STORE_WAN,
            rng: hubRng.fork(name),
          }),
        )
  const storeUrls = [...hubs.map((h) => h.url), HEAD_OFFICE_URL]
  const tills: Till[] = names.map((name, i) =>
    createTill({
      name,
      loop,
      wire,
      rng: root.fork(name),
      schema: productSchema,
      tabs: config.tabs[i] as number,
      history,
      token: () =>
        (staleUntil.get(name) ?? -1) > sched.now()
          ? tokens.stale(name, relay.now())
          : tokens.current(name, relay.now()),
      skewMs: nemesis.int(-SIM_CLOCK_SKEW_MS_MAX, SIM_CLOCK_SKEW_MS_MAX),
      bugs: options.bugs?.client,
      points,
      ...(plan !== undefined && i < plan.inStore ? { urls: storeUrls, wan: STORE_WAN } : {}),
    }),
  )
  for (const name of names) wire.setFaults(name, config.faults)
  wire.setFaults('impostor', config.faults)

  // The options are part of the run: replaying a seed with other options is another run.
  sched.record(`config ${JSON.stringify({ ...config, bugs: options.bugs ?? null })}`)
  try {
    await relay.start()
    for (const hub of hubs) hub.start()
    for (const till of tills) sched.at(0, `${till.name} first boot`, () => void till.boot())

    const counters = schedule({
      sched,
      wire,
      config,
      root,
      nemesis,
      tills,
      relay,
      history,
      tokens,
      staleUntil,
    })
    if (plan !== undefined) {
      scheduleStoreFaults({ sched, wire, plan, hubs, nemesis, end: config.durationMs })
    }
    const samples =
      plan === undefined ? undefined : watchStore({ sched, tills, history, oracle, config })

    // Run the workload, then heal (invariant 2) and drain.
    await loop.run(() => false, config.durationMs)
    sched.record('heal')
    points.setEnabled(false)
    counters.impostorLife?.kill()
    staleUntil.clear()
    if (config.edge.rollouts) relay.setSchema(productSchema)
    for (const name of names) {
      wire.setFaults(name, CALM)
    }
    for (const till of tills) {
      till.setOnline(true, true)
      if (!till.alive) void till.boot()
    }
    if (!relay.up || config.edge.rollouts) {
      relay.crash()
      await relay.start()
    }
    healStore(wire, hubs)
    // With hubs: each runs, is linked to head office, and holds nothing head office lacks.
    const drainedAt = () =>
      relay.up &&
      hubs.every((h) => h.up && h.linked() && h.openCount() === 0) &&
      tills.every((t) => quiet(t))
    let drained = await drainTills(loop, drainedAt, () => progress(tills, oracle))
    if (drained) {
      // Pages of the last acks settle; then it must still be quiet.
      await loop.run(() => false, sched.now() + SIM_SETTLE_MS)
      drained = drainedAt()
    }
    sched.record(`drained ${drained}`)

    // Read back what the real pieces say. The log is read after one more crash and restart:
    // what the checks see is what survives, not what a process still holds in memory.
    const relayCrashes = relay.stats.crashes
    relay.crash()
    await relay.start()
    const log = await relay.dump(TENANT)
    const entities = new Set<string>()
    for (const p of log.partitions) for (const e of p) entities.add(e.entity)
    // After a hot loop the loop is halted: nothing more can be read from the tills.
    const finals =
      loop.runaway === undefined
        ? await settle(loop, () => readTills(tills, history, [...entities].sort()))
        : []
    const stuck = tills.filter((t) => !quiet(t)).map((t) => stuckReason(t))
    if (loop.runaway !== undefined) stuck.unshift(loop.runaway)
    const report = checkProductRun({
      schema: productSchema,
      history,
      log,
      oracle,
      tills: finals,
      drained,
      stuck,
      faults: loop.faults,
      storeViolations: samples?.violations ?? [],
      hubs: plan !== undefined,
    })
    let attempted = 0
    let resolved = 0
    let failed = 0
    let cut = 0
    for (const r of history.ops.values()) {
      attempted++
      if (r.outcome === 'resolved') resolved++
      else if (r.outcome === 'failed') failed++
      else if (r.outcome === 'cut') cut++
    }
    const sum = (f: (t: Till) => number) => tills.reduce((n, t) => n + f(t), 0)
    return {
      seed: options.seed,
      config,
      traceHash: sched.traceHash(),
      trace: sched.trace(),
      drained,
      simulatedMs: sched.now(),
      events: sched.eventsRun,
      wallMs: performance.now() - started,
      busiestMinute: loop.busiestMinute,
      ops: { attempted, resolved, failed, cut },
      world: {
        dials: wire.stats.dials,
        frames: wire.stats.framesSent,
        framesLost: wire.stats.framesLost,
        breaks: wire.stats.breaks,
        tillBoots: sum((t) => t.stats.boots),
        powerCuts: sum((t) => t.stats.crashes),
        tabReloads: sum((t) => t.stats.tabReloads),
        relayCrashes,
        restores: counters.restores,
        logRestores: counters.logRestores,
        impostorPushed: counters.impostor?.stats.pushed ?? 0,
        impostorRefused: counters.impostor?.stats.refusedHello ?? 0,
        hubCrashes: hubs.reduce((n, h) => n + h.stats.crashes, 0),
        hubDisksLost: hubs.reduce((n, h) => n + h.stats.disksLost, 0),
        hubSessions: hubs.reduce((n, h) => n + h.stats.sessions, 0),
        storeSamples: samples?.count ?? 0,
        storedAcks: history.acks.filter((a) => a.result.status === 'stored').length,
        relaxedCommitsLost: sum((t) => t.disk.stats.relaxedLost),
        oracleCalls: oracle.callsChecked,
        crashPoints: points.stats,
      },
      report,
      ok: drained && report.ok && (options.strict === false || report.openFindings.length === 0),
      history,
      tills: finals,
      log,
    }
  } finally {
    for (const hub of hubs) await hub.close().catch(() => {})
    await relay.close().catch(() => {})
    loop.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

/**
 * A failure message that names the seed, the trace hash and how to replay it.
 *
 * @example
 * throw new Error(describeProductFailure(result))
 */
export function describeProductFailure(result: ProductSimResult): string {
  const r = result.report
  const edge = EDGE_FAULTS.filter((f) => result.config.edge[f])
  const flags = [
    result.config.store === 'memory' ? '--store memory' : '',
    result.config.hub !== undefined ? '--hubs' : '',
    result.config.edgeNamed ? `--faults ${edge.length > 0 ? edge.join(',') : 'none'}` : '',
  ]
    .filter((f) => f !== '')
    .join(' ')
  const counts = Object.entries(r.counts)
    .filter(([, n]) => n > 0)
    .map(([check, n]) => `${check} ${n}`)
    .join(', ')
  const shown = new Map<string, number>()
  const first = r.violations.filter((v) => {
    const check = v.slice(0, v.indexOf(':'))
    shown.set(check, (shown.get(check) ?? 0) + 1)
    return (shown.get(check) as number) <= SIM_FAILURE_LINES_PER_CHECK
  })
  return [
    `product simulation seed ${result.seed} failed (trace ${result.traceHash})`,
    `  drained=${result.drained} lost=${r.lost} duplicated=${r.duplicated} unexpected=${r.unexpected} undelivered=${r.undelivered}`,
    `  violations: ${counts === '' ? 'none' : counts}`,
    ...first.map((v) => `  ${v}`),
    ...r.openFindings.slice(0, SIM_FAILURE_LINES_PER_CHECK).map((v) => `  open finding: ${v}`),
    `  replay: npm run test:sim -- --seed ${result.seed}${flags === '' ? '' : ` ${flags}`}`,
  ].join('\n')
}

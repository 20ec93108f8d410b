/**
 * One product simulation run: from a root seed, build the world (scheduler, wire, disks,
 * browsers), the real relay (sessions, token check, SQLite or memory log, checked by the
 * oracle) and a few tills running the real client; drive a point-of-sale workload with faults;
 * heal, drain, and check the real history.
 *
 *   seed ─► config ─► workload + nemesis (+ edge faults when switched on) ─► heal ─► drain
 *        ─► read back: the log, each till's client (status, confirmed state, outcomes) ─► checks
 *
 * Invariants:
 * 1. Everything is derived from `seed` and the options: the same seed and options give the
 *    same trace hash (a test proves it), so a failure replays with `--seed N` and its options.
 * 2. Faults stop at the heal: links calm down and come back, every till boots, the relay runs
 *    with the full schema, the impostor is gone; a till that has not drained within
 *    `SIM_DRAIN_MS_MAX` is a liveness failure, with its reason.
 * 3. The edge faults (`EdgeFaults`) run by default, each drawn from the seed with even odds
 *    (so seeds see them alone and together); `options.faults` names exactly which run instead.
 *    Protocol 1 did not survive them (issues 12 and 13, `FINDINGS.md`).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Client, ClientBugs, Outcome } from '@ledgerline/client'
import type { MemoryLogStoreBugs } from '@ledgerline/log'
import type { SqliteStoreBugs } from '@ledgerline/relay'
import type { Prng } from '@ledgerline/testkit'
import { createPrng, createSimScheduler } from '@ledgerline/testkit'
import type { ProductCheckReport, TillFinal } from './checkers.ts'
import { createProductCrashPoints } from './crash-points.ts'
import type { ProductCrashPoints } from './crash-points.ts'
import { checkProductRun } from './checkers.ts'
import { prepareDeviceDisks } from './device-disk.ts'
import type { DiskImage } from './device-disk.ts'
import type { SimHistory } from './history.ts'
import { createSimHistory } from './history.ts'
import type { Impostor } from './impostor.ts'
import { createImpostor } from './impostor.ts'
import {
  SIM_CLOCK_JUMP_BACK_MS_MAX,
  SIM_CLOCK_SKEW_MS_MAX,
  SIM_DRAIN_MS_MAX,
  SIM_FAILURE_LINES_PER_CHECK,
  SIM_OVERSIZED_BURST_ENTRIES,
  SIM_PARTITIONS,
  SIM_SETTLE_MS,
  SIM_STALL_MS_MAX,
  SIM_TABS_MAX,
  SIM_TILLS_MAX,
  SIM_TILLS_MIN,
  SIM_TOKEN_LIFETIME_LONG_S,
  SIM_TOKEN_LIFETIME_SHORT_S_MAX,
  SIM_TOKEN_LIFETIME_SHORT_S_MIN,
} from './limits.ts'
import { createLogOracle } from './oracle.ts'
import type { LogOracle } from './oracle.ts'
import type { LogDump, RelayNode, StoreMode } from './relay-node.ts'
import { createRelayNode } from './relay-node.ts'
import { productSchema, productSchemaBeforeLoyalty } from './schema.ts'
import type { SimLoop } from './sim-loop.ts'
import { createLife, createSimLoop } from './sim-loop.ts'
import type { Till } from './till.ts'
import { createTill } from './till.ts'
import { createTokenBook } from './token-book.ts'
import type { TokenBook } from './token-book.ts'
import type { Wire, WireFaults } from './wire.ts'
import { CALM, createWire } from './wire.ts'
import { ENTRY_DATA_BYTES_MAX } from '@ledgerline/protocol'

const MINUTE = 60_000
const HOUR = 60 * MINUTE
const TENANT = 'sim-store'
const SECRET = 'ledgerline-sim-secret-0123456789abcdef'

/** The faults the protocol-1 product does not survive (invariant 3); each is off by default. */
export interface EdgeFaults {
  /** A till's disk is copied at a random moment and put back later (a restored profile). */
  readonly restores?: boolean | undefined
  /** Another subject of the tenant pushes under a till's clientId. */
  readonly impostor?: boolean | undefined
  /** The server log is put back to an older copy (SQLite mode). */
  readonly logRestores?: boolean | undefined
  /** Tokens live minutes, and some tills' token functions hand out a stale one for a while. */
  readonly expiringTokens?: boolean | undefined
  /** Corrections too large for an entry, and acks too large for a frame. */
  readonly oversized?: boolean | undefined
  /** The relay starts without a type the app uses, and learns it later (SQLite mode). */
  readonly rollouts?: boolean | undefined
}

export const EDGE_FAULTS = [
  'restores',
  'impostor',
  'logRestores',
  'expiringTokens',
  'oversized',
  'rollouts',
] as const satisfies readonly (keyof EdgeFaults)[]

export interface ProductSimOptions {
  readonly seed: number
  /** The server log: the SQLite store (default) or the memory store. */
  readonly store?: StoreMode | undefined
  readonly faults?: EdgeFaults | undefined
  /** Bugs to plant in the product, to prove the checkers see it. */
  readonly bugs?:
    | {
        readonly client?: ClientBugs | undefined
        readonly sqlite?: SqliteStoreBugs | undefined
        readonly memory?: MemoryLogStoreBugs | undefined
      }
    | undefined
  /** Tills; drawn from the seed when absent. */
  readonly tills?: number | undefined
  /** Appends per till, on average; drawn from the seed when absent. */
  readonly opsPerTill?: number | undefined
  /** Workload length in simulated ms; drawn from the seed when absent. */
  readonly durationMs?: number | undefined
  /** Keep the last N trace facts (to diff two runs). */
  readonly keepTrace?: number | undefined
  /** The open findings of FINDINGS.md fail the run too (they are counted either way). */
  readonly strict?: boolean | undefined
}

export interface ProductSimConfig {
  readonly tills: number
  readonly tabs: readonly number[]
  readonly opsPerTill: number
  readonly durationMs: number
  readonly faults: WireFaults
  readonly relayCrashes: number
  /** Probability that a crash point fires when it is hit. */
  readonly crashRate: number
  readonly store: StoreMode
  readonly edge: Required<{ [K in keyof EdgeFaults]: boolean }>
  /** The edge faults were named by the options, not drawn from the seed (for the replay). */
  readonly edgeNamed: boolean
}

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
    }),
  )
  for (const name of names) wire.setFaults(name, config.faults)
  wire.setFaults('impostor', config.faults)

  // The options are part of the run: replaying a seed with other options is another run.
  sched.record(`config ${JSON.stringify({ ...config, bugs: options.bugs ?? null })}`)
  try {
    await relay.start()
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
    const drainedAt = () => relay.up && tills.every((t) => quiet(t))
    let drained = await drain(loop, drainedAt, () => progress(tills, oracle))
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
        relaxedCommitsLost: sum((t) => t.disk.stats.relaxedLost),
        oracleCalls: oracle.callsChecked,
        crashPoints: points.stats,
      },
      report,
      ok: drained && report.ok && (options.strict !== true || report.openFindings.length === 0),
      history,
      tills: finals,
      log,
    }
  } finally {
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

// ---------------------------------------------------------------------------------------------

function drawConfig(rng: Prng, options: ProductSimOptions): ProductSimConfig {
  const tills = options.tills ?? rng.int(SIM_TILLS_MIN, SIM_TILLS_MAX)
  const tabs = Array.from({ length: tills }, () => rng.int(1, SIM_TABS_MAX))
  const opsPerTill = options.opsPerTill ?? rng.int(10, 40)
  const durationMs = options.durationMs ?? rng.int(1 * HOUR, 4 * HOUR)
  const faults: WireFaults = {
    dropRate: rng.pick([0, 0.002, 0.01, 0.03]),
    breakAfterRate: rng.pick([0, 0.005, 0.02]),
    delayMsMax: rng.pick([20, 200, 2_000]),
    halfOpen: rng.chance(0.5),
  }
  const store = options.store ?? 'sqlite'
  const sqlite = store === 'sqlite'
  const relayCrashes = rng.int(0, 3)
  const crashRate = rng.pick([0, 0.002, 0.01, 0.03])
  // Drawn last, so the draws above stay what they were without edge faults.
  const f: EdgeFaults =
    options.faults ?? Object.fromEntries(EDGE_FAULTS.map((name) => [name, rng.chance(0.5)]))
  return {
    tills,
    tabs,
    opsPerTill,
    durationMs,
    faults,
    relayCrashes,
    crashRate,
    store,
    edgeNamed: options.faults !== undefined,
    edge: {
      restores: f.restores === true,
      impostor: f.impostor === true,
      logRestores: f.logRestores === true && sqlite,
      expiringTokens: f.expiringTokens === true,
      oversized: f.oversized === true,
      rollouts: f.rollouts === true && sqlite,
    },
  }
}

interface Scheduled {
  restores: number
  logRestores: number
  impostor: Impostor | undefined
  impostorLife: ReturnType<typeof createLife> | undefined
}

interface World {
  readonly sched: SimLoop['sched']
  readonly wire: Wire
  readonly config: ProductSimConfig
  readonly root: Prng
  readonly nemesis: Prng
  readonly tills: readonly Till[]
  readonly relay: RelayNode
  readonly history: SimHistory
  readonly tokens: TokenBook
  /** Tills whose token function hands out a stale token, until when (simulated). */
  readonly staleUntil: Map<string, number>
}

/** Queues the workload and the nemesis (with the edge faults that are switched on). */
function schedule(world: World): Scheduled {
  const { sched, config, root, nemesis, tills, relay, history, tokens, staleUntil } = world
  const out: Scheduled = {
    restores: 0,
    logRestores: 0,
    impostor: undefined,
    impostorLife: undefined,
  }
  const end = config.durationMs
  // Workload: each till's cashier appends at random times over the run.
  tills.forEach((till, i) => {
    const app = createApp(till, i, root.fork(`app-${till.name}`), history)
    const rng = root.fork(`times-${till.name}`)
    const meanGapMs = end / config.opsPerTill
    let t = 0
    for (;;) {
      t += Math.max(1, Math.floor(-Math.log(1 - rng.float()) * meanGapMs))
      if (t >= end) break
      sched.at(t, `${till.name} op`, () => app.step())
    }
    if (config.edge.oversized && i === 0) {
      // One offline burst of over-picks of an empty bin: their acks do not fit one frame.
      const at = nemesis.int(MINUTE, Math.max(MINUTE + 1, end / 2))
      sched.at(at, `${till.name} offline burst`, () => {
        till.setOnline(false, false)
        for (let n = 0; n < SIM_OVERSIZED_BURST_ENTRIES; n++) app.pick(16)
        // And one note so long its correction cannot be an entry.
        app.pick(ENTRY_DATA_BYTES_MAX - 64)
      })
      sched.at(at + 10 * MINUTE, `${till.name} back online`, () => till.setOnline(true, true))
    }
  })

  // Nemesis: offline stretches, power cuts, clock jumps, tab reloads per till.
  for (const till of tills) {
    for (let s = nemesis.int(0, 3); s > 0; s--) {
      const start = nemesis.int(0, end)
      const length = nemesis.int(MINUTE, 90 * MINUTE)
      const tell = nemesis.chance(0.5)
      sched.at(start, `${till.name} offline`, () => till.setOnline(false, tell))
      sched.at(Math.min(start + length, end), `${till.name} online`, () =>
        till.setOnline(true, tell),
      )
    }
    for (let c = nemesis.int(0, 2); c > 0; c--) {
      const at = nemesis.int(0, end)
      const downMs = nemesis.int(1_000, 10 * MINUTE)
      sched.at(at, `${till.name} power cut`, () => till.crash())
      sched.at(Math.min(at + downMs, end), `${till.name} power on`, () => void till.boot())
    }
    if (nemesis.chance(0.5)) {
      const back = nemesis.int(MINUTE, SIM_CLOCK_JUMP_BACK_MS_MAX)
      sched.at(nemesis.int(0, end), `${till.name} clock jump`, () => till.jumpClock(-back))
    }
    for (let r = nemesis.int(0, 2); r > 0; r--) {
      sched.at(nemesis.int(0, end), `${till.name} tab reload`, () => void till.reloadTab())
    }
  }
  for (let c = 0; c < config.relayCrashes; c++) {
    const at = nemesis.int(0, end)
    sched.at(at, 'relay crash', () => relay.crash())
    sched.at(at + nemesis.int(100, 30_000), 'relay restart', () => {
      if (!relay.up) void relay.start()
    })
  }

  // Edge faults (invariant 3).
  if (config.edge.restores) {
    for (const till of tills) {
      if (!nemesis.chance(0.7)) continue
      const copyAt = nemesis.int(0, Math.floor(end * 0.6))
      const restoreAt = nemesis.int(copyAt + 5 * MINUTE, Math.max(copyAt + 5 * MINUTE, end))
      // Half the restored tills sell offline first: their new sales reuse clientSeqs the log
      // holds with other content (issue 12 case 2), which only a dedupe by content catches.
      const offlineMs = nemesis.chance(0.5) ? nemesis.int(2 * MINUTE, 20 * MINUTE) : 0
      let image: DiskImage | undefined
      sched.at(copyAt, `${till.name} disk copied`, () => {
        image = till.copyDisk()
      })
      sched.at(restoreAt, `${till.name} disk restored`, () => {
        if (image === undefined) return
        out.restores++
        till.crash()
        till.restoreDisk(image)
        history.forgot(till.name, copyAt)
        history.diskRestores.push({ till: till.name, copiedAt: copyAt, at: sched.now() })
        if (offlineMs > 0) {
          till.setOnline(false, true)
          sched.after(offlineMs, `${till.name} online after its restore`, () =>
            till.setOnline(true, true),
          )
        }
        void till.boot()
      })
    }
  }
  if (config.edge.impostor) {
    const life = createLife(sched, 'impostor')
    out.impostorLife = life
    const impostor = createImpostor({
      sched,
      wire: world.wire,
      rng: root.fork('impostor'),
      life,
      history,
      tenant: TENANT,
      token: () => tokens.current('impostor', relay.now()),
      now: relay.now,
    })
    out.impostor = impostor
    for (let s = nemesis.int(1, 3); s > 0; s--) {
      sched.at(nemesis.int(end / 4, end), 'impostor strikes', () => impostor.strike())
    }
  }
  if (config.edge.logRestores) {
    const copyAt = nemesis.int(0, Math.floor(end / 2))
    const restoreAt = nemesis.int(copyAt + 5 * MINUTE, Math.max(copyAt + 5 * MINUTE, end))
    let copied = false
    sched.at(copyAt, 'relay log copied', () => {
      copied = relay.backup()
    })
    sched.at(restoreAt, 'relay log restored', () => {
      if (!copied) return
      out.logRestores++
      relay.crash()
      relay.restoreBackup()
      history.logRestoredAt = sched.now()
      void relay.start()
    })
  }
  if (config.edge.expiringTokens) {
    for (const till of tills) {
      if (!nemesis.chance(0.5)) continue
      const from = nemesis.int(0, end)
      const until = from + nemesis.int(2 * MINUTE, 10 * MINUTE)
      sched.at(from, `${till.name} token cache goes stale`, () => staleUntil.set(till.name, until))
    }
  }
  if (config.edge.rollouts) {
    sched.at(nemesis.int(end / 4, end), 'relay upgraded', () => {
      relay.setSchema(productSchema)
      relay.crash()
      void relay.start()
    })
  }
  return out
}

/** The cashier of one till: what it sells, as appends with op tags. */
function createApp(
  till: Till,
  index: number,
  rng: Prng,
  history: SimHistory,
): { step(): void; pick(noteBytes: number): void } {
  let n = 0
  let orderNo = 1
  const lines: { id: string; amount: number; op: string }[] = []
  const stock = ['stock/s7:espresso-1kg', 'stock/s7:milk-1l', 'stock/s7:cups-12oz']
  const cards = ['giftcard/g-100', 'giftcard/g-200']
  const order = () => `order/s7-r${index + 1}-${String(orderNo).padStart(4, '0')}`
  const op = () => `${till.name}:${++n}`
  const confirmedVersion = (entity: string) => {
    const client = till.clients()[0] as Client | undefined
    return client?.get(entity).version ?? 0
  }
  return {
    step() {
      const x = rng.float()
      if (x < 0.3) {
        const data = { qty: -rng.int(1, 3), op: op() }
        till.append(data.op, { entity: rng.pick(stock), kind: 'stock.moved', data })
      } else if (x < 0.38) {
        const data = { qty: rng.int(5, 20), op: op() }
        till.append(data.op, { entity: rng.pick(stock), kind: 'stock.moved', data })
      } else if (x < 0.56) {
        const entity = order()
        const data = { amount: rng.int(1, 50), op: op() }
        till.append(data.op, { entity, kind: 'order.line', data }, (id) => {
          if (entity === order()) lines.push({ id, amount: data.amount, op: data.op })
        })
      } else if (x < 0.62) {
        const data = { amount: rng.int(1, 200), op: op() }
        till.append(data.op, { entity: order(), kind: 'order.paid', data })
        orderNo++
        lines.length = 0
      } else if (x < 0.67) {
        // A line its disk forgot (put back to an older copy) is not the cashier's to void: the
        // app's view of the order reloads from that disk.
        while (lines[0] !== undefined && history.ops.get(lines[0].op)?.forgotten === true) {
          lines.shift()
        }
        const line = lines.shift()
        if (line === undefined) return
        const data = { amount: line.amount, op: op() }
        till.append(data.op, {
          entity: order(),
          kind: 'order.voided',
          data,
          options: { corrects: line.id },
        })
      } else if (x < 0.72) {
        const data = { amount: rng.int(20, 100), op: op() }
        till.append(data.op, { entity: rng.pick(cards), kind: 'giftcard.issued', data })
      } else if (x < 0.82) {
        const entity = rng.pick(cards)
        const data = { amount: rng.int(5, 40), op: op() }
        const expect = rng.chance(0.7) ? confirmedVersion(entity) : undefined
        till.append(data.op, {
          entity,
          kind: 'giftcard.redeem',
          data,
          options: { intent: 'request', expect },
        })
      } else if (x < 0.9) {
        const data = { points: rng.int(1, 20), op: op() }
        till.append(data.op, { entity: `loyalty/m-${rng.int(1, 4)}`, kind: 'loyalty.earned', data })
      } else {
        const data = { n: rng.int(1, 3), op: op() }
        till.append(data.op, { entity: 'counter/s7:visits', kind: 'counter.added', data })
      }
    },
    pick(noteBytes) {
      const data = { qty: 1, note: 'n'.repeat(noteBytes), op: op() }
      till.append(data.op, { entity: 'bin/s7:returns', kind: 'bin.picked', data })
    },
  }
}

/** True when the till's leading tab is online, live, idle and its outbox is empty. */
function quiet(till: Till): boolean {
  if (!till.alive) return false
  const leader = till.clients().find((c) => c.status().leader)
  if (leader === undefined) return false
  const s = leader.status()
  return s.online && s.live && !s.syncing && s.outboxEntries === 0
}

function stuckReason(till: Till): string {
  if (!till.alive) return `${till.name} is not running`
  const leader = till.clients().find((c) => c.status().leader)
  if (leader === undefined) return `${till.name} has no leading tab`
  const s = leader.status()
  return `${till.name} is stuck: online=${s.online} live=${s.live} syncing=${s.syncing} outbox=${s.outboxEntries}${s.lastError === null ? '' : ` lastError=${s.lastError.kind}: ${s.lastError.message.slice(0, 120)}`}`
}

/**
 * Runs the loop until `drained()`, for at most `SIM_DRAIN_MS_MAX`, and stops early when
 * `progress()` has not changed for `SIM_STALL_MS_MAX` (the run will not drain).
 */
async function drain(
  loop: SimLoop,
  drained: () => boolean,
  progress: () => string,
): Promise<boolean> {
  const end = loop.sched.now() + SIM_DRAIN_MS_MAX
  let last = progress()
  let since = loop.sched.now()
  while (loop.sched.now() < end) {
    if (await loop.run(drained, Math.min(end, loop.sched.now() + MINUTE))) return true
    if (loop.runaway !== undefined) return false
    const now = progress()
    if (now !== last) {
      last = now
      since = loop.sched.now()
    } else if (loop.sched.now() - since >= SIM_STALL_MS_MAX) {
      loop.sched.record('stalled')
      return false
    }
    if (loop.sched.nextTime() === undefined) return drained()
  }
  return drained()
}

/** What moves when a run makes progress: the log, the outboxes, tills coming to rest. */
function progress(tills: readonly Till[], oracle: LogOracle): string {
  const log = oracle.log().map((p) => p.length)
  const tillsNow = tills.map((t) => {
    const s = t
      .clients()
      .find((c) => c.status().leader)
      ?.status()
    return `${t.alive}:${s?.outboxEntries}:${s?.live}:${quiet(t)}`
  })
  return `${log.join(',')}|${oracle.refusals().length}|${tillsNow.join(',')}`
}

/** Runs the loop until `work` settles (it needs IndexedDB, which runs on the loop). */
async function settle<T>(loop: SimLoop, work: () => Promise<T>): Promise<T> {
  let done = false
  const promise = work().finally(() => {
    done = true
  })
  await loop.run(() => done, loop.sched.now() + HOUR)
  if (!done) throw new Error('sim: reading the tills back did not finish')
  return await promise
}

async function readTills(
  tills: readonly Till[],
  history: SimHistory,
  entities: readonly string[],
): Promise<TillFinal[]> {
  const out: TillFinal[] = []
  for (const till of tills) {
    const client = till.clients().find((c) => c.status().leader) ?? till.clients()[0]
    const states = new Map<string, { version: number; state: unknown }>()
    const outcomes = new Map<string, Outcome>()
    if (client !== undefined && till.alive) {
      for (const entity of entities) {
        // A load the client refuses (a ledger it cannot trust) is a finding, not a crash.
        const s = await client.load(entity).catch((error: unknown) => ({
          version: -1,
          confirmed: `load failed: ${error instanceof Error ? error.message : String(error)}`,
        }))
        states.set(entity, { version: s.version, state: s.confirmed })
      }
      for (const record of history.ops.values()) {
        if (record.till !== till.name || record.entry === undefined) continue
        // The client follows reissue hops itself: this is where the entry ended.
        outcomes.set(record.entry.id, await client.outcome(record.entry.id))
      }
    }
    out.push({ name: till.name, status: client?.status(), entities: states, outcomes })
  }
  return out
}

/**
 * One simulation run: from a root seed, build the network, the relay with its server log, and
 * K clients; drive a point-of-sale workload with faults; heal, drain, and check the history.
 *
 *   seed ─► config (K, duration, fault rates) ─► workload + nemesis ─► heal ─► drain ─► checkers
 *
 * Invariants:
 * 1. Everything is derived from `seed`: the same seed gives the same trace hash (a test proves
 *    it), so any failure replays with `npm run test:sim -- --seed N`.
 * 2. Faults stop at the heal: crash points are disabled, links lose their faults and every
 *    client comes online, so a run that does not drain within `SIM_DRAIN_MS_MAX` is a liveness
 *    failure, reported as such.
 */
import type { CrashPointStats, CrashRates } from './crash-points.ts'
import { createCrashPoints } from './crash-points.ts'
import type { AppendRequest, SimClient, SimClientBugs } from './client.ts'
import { createSimClient } from './client.ts'
import type { CheckReport } from './checkers.ts'
import { checkSimulation } from './checkers.ts'
import { createSimHistory } from './history.ts'
import {
  SIM_CLIENTS_MAX,
  SIM_CLIENTS_MIN,
  SIM_CLOCK_JUMP_BACK_MS_MAX,
  SIM_CLOCK_SKEW_MS_MAX,
  SIM_DRAIN_MS_MAX,
  SIM_PARTITIONS,
} from './limits.ts'
import type { MemoryLogDump, MemoryLogStoreBugs } from '@ledgerline/log'
import { createMemoryLogStore } from '@ledgerline/log'
import type { LinkFaults, NetworkStats } from './network.ts'
import { createSimNetwork, NO_FAULTS } from './network.ts'
import { simPosSchema } from './pos-schema.ts'
import type { Prng } from './prng.ts'
import { createPrng } from './prng.ts'
import { createSimRelay } from './relay.ts'
import { createSimScheduler } from './scheduler.ts'

const MINUTE = 60 * 1000
const HOUR = 60 * MINUTE
const TENANT = 'sim-store'
const STOCK = [
  'stock/s7:espresso-1kg',
  'stock/s7:milk-1l',
  'stock/s7:cups-12oz',
  'stock/s7:beans-5kg',
]
const GIFT_CARDS = ['giftcard/g-100', 'giftcard/g-200', 'giftcard/g-300']
const COUNTER = 'counter/s7:visits'

export interface SimulationOptions {
  readonly seed: number
  /** Clients; drawn from the seed in 5–20 when absent. */
  readonly clients?: number | undefined
  /** Appends each client attempts, on average; drawn from the seed when absent. */
  readonly opsPerClient?: number | undefined
  /** Workload length in simulated ms; drawn from the seed (2–8 h) when absent. */
  readonly durationMs?: number | undefined
  /** Override the crash point rates drawn from the seed. */
  readonly crashRates?: CrashRates | undefined
  /** Bugs to plant, to prove the checkers fail. */
  readonly bugs?:
    | { readonly store?: MemoryLogStoreBugs; readonly client?: SimClientBugs }
    | undefined
  /** Keep the last N trace facts (for diffing two runs). */
  readonly keepTrace?: number | undefined
}

export interface SimulationConfig {
  readonly clients: number
  readonly opsPerClient: number
  readonly durationMs: number
  readonly faults: LinkFaults
  readonly crashRates: CrashRates
}

export interface SimulationResult {
  readonly seed: number
  readonly config: SimulationConfig
  readonly traceHash: string
  readonly trace: readonly string[]
  readonly drained: boolean
  readonly simulatedMs: number
  readonly events: number
  readonly ops: {
    readonly attempted: number
    readonly started: number
    readonly committed: number
    readonly resolved: number
    readonly failed: number
  }
  readonly network: NetworkStats
  readonly crashPoints: CrashPointStats
  readonly relayCrashes: number
  readonly clientCrashes: number
  readonly offlineStretches: number
  readonly clockJumps: number
  readonly report: CheckReport
  readonly ok: boolean
  /** The clients and the server log at the end, for a closer look at a failure. */
  readonly clients: readonly SimClient[]
  readonly log: MemoryLogDump
}

/**
 * Runs one seed to the end and checks it.
 *
 * @example
 * const result = runSimulation({ seed: 42 })
 * if (!result.ok) throw new Error(describeFailure(result))
 */
export function runSimulation(options: SimulationOptions): SimulationResult {
  const root = createPrng(options.seed)
  const config = drawConfig(root.fork('config'), options)
  const sched = createSimScheduler({ keepTrace: options.keepTrace })
  const net = createSimNetwork(sched, root.fork('net'))
  const points = createCrashPoints(root.fork('points'), config.crashRates)
  const history = createSimHistory()
  const store = createMemoryLogStore({
    schema: simPosSchema,
    partitions: SIM_PARTITIONS,
    now: () => Date.UTC(2026, 0, 1) + sched.now(),
    bugs: options.bugs?.store,
  })
  const relay = createSimRelay({
    sched,
    net,
    rng: root.fork('relay'),
    store,
    points,
    tenant: TENANT,
    commitDelayMsMax: 30,
    restartDelayMsMax: 20_000,
  })
  const nemesis = root.fork('nemesis')
  const clients: SimClient[] = []
  for (let i = 0; i < config.clients; i++) {
    const name = `c${i + 1}`
    net.setFaults(name, config.faults)
    clients.push(
      createSimClient({
        name,
        sched,
        net,
        rng: root.fork(name),
        points,
        history,
        schema: simPosSchema,
        tenant: TENANT,
        partitions: SIM_PARTITIONS,
        skewMs: nemesis.int(-SIM_CLOCK_SKEW_MS_MAX, SIM_CLOCK_SKEW_MS_MAX),
        txDelayMsMax: 8,
        restartDelayMsMax: 10 * MINUTE,
        bugs: options.bugs?.client,
      }),
    )
  }

  // Workload: each client appends at random times over the run.
  let attempted = 0
  clients.forEach((client, i) => {
    const app = createTill(client, i, root.fork(`app-${client.name}`))
    const rng = root.fork(`times-${client.name}`)
    const meanGapMs = config.durationMs / config.opsPerClient
    let t = 0
    for (;;) {
      t += Math.max(1, Math.floor(-Math.log(1 - rng.float()) * meanGapMs))
      if (t >= config.durationMs) break
      sched.at(t, `${client.name} op`, () => {
        attempted++
        app.step()
      })
    }
  })

  // Nemesis: long offline stretches, a whole-store outage, clock jumps back.
  let offlineStretches = 0
  let clockJumps = 0
  for (const client of clients) {
    const stretches = nemesis.int(0, 3)
    for (let s = 0; s < stretches; s++) {
      const start = nemesis.int(0, config.durationMs)
      const length = nemesis.int(MINUTE, 3 * HOUR)
      sched.at(start, `${client.name} offline`, () => {
        offlineStretches++
        client.setOnline(false)
      })
      sched.at(Math.min(start + length, config.durationMs), `${client.name} online`, () =>
        client.setOnline(true),
      )
    }
    if (nemesis.chance(0.5)) {
      const back = nemesis.int(MINUTE, SIM_CLOCK_JUMP_BACK_MS_MAX)
      sched.at(nemesis.int(0, config.durationMs), `${client.name} clock jump`, () => {
        clockJumps++
        client.jumpClock(-back)
      })
    }
  }
  if (nemesis.chance(0.3)) {
    const start = nemesis.int(0, config.durationMs / 2)
    const length = nemesis.int(30 * MINUTE, 4 * HOUR)
    sched.at(start, 'store outage', () => {
      for (const c of clients) c.setOnline(false)
    })
    sched.at(Math.min(start + length, config.durationMs), 'store back online', () => {
      for (const c of clients) c.setOnline(true)
    })
  }

  // Run the workload, then heal and drain.
  sched.runUntil(() => false, config.durationMs)
  points.setEnabled(false)
  for (const c of clients) {
    net.setFaults(c.name, NO_FAULTS)
    c.setOnline(true)
  }
  sched.record('healed')
  const drainedAt = () => {
    if (!relay.up) return false
    const heads = store.partitionHeadsNow().join(',')
    return clients.every(
      (c) =>
        !c.crashed && c.connected && c.db.outbox.size === 0 && c.db.cursors.join(',') === heads,
    )
  }
  const drained = sched.runUntil(drainedAt, sched.now() + SIM_DRAIN_MS_MAX)
  sched.record(`drained ${drained}`)
  const report = checkSimulation({
    schema: simPosSchema,
    tenant: TENANT,
    history,
    log: store.dump(),
    clients,
    skipConvergence: !drained,
  })
  const sum = (f: (c: SimClient) => number) => clients.reduce((n, c) => n + f(c), 0)
  return {
    seed: options.seed,
    config,
    traceHash: sched.traceHash(),
    trace: sched.trace(),
    drained,
    simulatedMs: sched.now(),
    events: sched.eventsRun,
    ops: {
      attempted,
      started: sum((c) => c.stats.appendsStarted),
      committed: history.committed.size,
      resolved: history.resolved.size,
      failed: sum((c) => c.stats.appendsFailed),
    },
    network: net.stats,
    crashPoints: points.stats,
    relayCrashes: relay.stats.crashes,
    clientCrashes: sum((c) => c.stats.crashes),
    offlineStretches,
    clockJumps,
    report,
    ok: drained && report.ok,
    clients,
    log: store.dump(),
  }
}

/**
 * A failure message that names the seed and how to replay it.
 *
 * @example
 * throw new Error(describeFailure(result))
 */
export function describeFailure(result: SimulationResult): string {
  const r = result.report
  return [
    `simulation seed ${result.seed} failed (trace ${result.traceHash})`,
    `  drained=${result.drained} lost=${r.lost} duplicated=${r.duplicated} unexpected=${r.unexpected} ackedLost=${r.ackedLost}`,
    ...r.violations.map((v) => `  ${v}`),
    `  replay: npm run test:sim -- --seed ${result.seed}`,
  ].join('\n')
}

function drawConfig(rng: Prng, options: SimulationOptions): SimulationConfig {
  const clients = options.clients ?? rng.int(SIM_CLIENTS_MIN, SIM_CLIENTS_MAX)
  const opsPerClient = options.opsPerClient ?? rng.int(10, 50)
  const durationMs = options.durationMs ?? rng.int(2 * HOUR, 8 * HOUR)
  const delayMsMax = rng.pick([20, 200, 2_000, 8_000])
  const faults: LinkFaults = {
    dropRate: rng.pick([0, 0.005, 0.02, 0.05]),
    duplicateRate: rng.pick([0, 0.01, 0.05]),
    delayMsMin: 1,
    delayMsMax,
    reorder: rng.chance(0.3),
  }
  const crashRates = options.crashRates ?? {
    crash: rng.pick([0, 0.002, 0.01, 0.03]),
    delay: rng.pick([0, 0.05, 0.2]),
    throw: rng.pick([0, 0.01, 0.05]),
  }
  return { clients, opsPerClient, durationMs, faults, crashRates }
}

/** The app on one till: what a cashier does, as appends. */
function createTill(client: SimClient, index: number, rng: Prng): { step(): void } {
  let orderNo = 1
  const lines: { id: string; amount: number }[] = []
  const order = () => `order/s7-r${index + 1}-${String(orderNo).padStart(4, '0')}`
  const append = (request: AppendRequest, then?: (id: string) => void) =>
    client.append(request, (outcome) => {
      if (outcome._tag === 'ok' && then !== undefined) then(outcome.entry.id)
    })
  return {
    step() {
      const x = rng.float()
      if (x < 0.35) {
        append({
          entity: rng.pick(STOCK),
          kind: 'stock.moved',
          data: { qty: -rng.int(1, 3) },
          intent: 'fact',
        })
      } else if (x < 0.43) {
        append({
          entity: rng.pick(STOCK),
          kind: 'stock.moved',
          data: { qty: rng.int(5, 20) },
          intent: 'fact',
        })
      } else if (x < 0.63) {
        const amount = rng.int(1, 50)
        const entity = order()
        append({ entity, kind: 'order.line', data: { amount }, intent: 'fact' }, (id) => {
          if (entity === order()) lines.push({ id, amount })
        })
      } else if (x < 0.7) {
        append({
          entity: order(),
          kind: 'order.paid',
          data: { amount: rng.int(1, 200) },
          intent: 'fact',
        })
        orderNo++
        lines.length = 0
      } else if (x < 0.75) {
        const line = lines.shift()
        if (line === undefined) return
        append({
          entity: order(),
          kind: 'order.voided',
          data: { amount: line.amount },
          intent: 'fact',
          corrects: line.id,
        })
      } else if (x < 0.8) {
        append({
          entity: rng.pick(GIFT_CARDS),
          kind: 'giftcard.issued',
          data: { amount: rng.int(20, 100) },
          intent: 'fact',
        })
      } else if (x < 0.9) {
        append({
          entity: rng.pick(GIFT_CARDS),
          kind: 'giftcard.redeem',
          data: { amount: rng.int(5, 40) },
          intent: 'request',
          expectConfirmed: rng.chance(0.7),
        })
      } else {
        append({
          entity: COUNTER,
          kind: 'counter.added',
          data: { n: rng.int(1, 3) },
          intent: 'fact',
        })
      }
    },
  }
}

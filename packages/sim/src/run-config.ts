/**
 * The configuration of one product simulation run: the options a caller gives, the edge faults
 * it may name, and the config drawn from the seed for everything the options leave open.
 *
 * Terms: the *edge faults* are the faults protocol 1 did not survive (`FINDINGS.md`); the other
 * faults (`WireFaults`, relay crashes, crash points) always run, at rates drawn from the seed.
 *
 * Invariants:
 * 1. The config is a function of the seed's `config` fork and the options alone (`run.ts`
 *    invariant 1 rests on it); the edge faults are drawn last, so the draws before them stay
 *    what they were in runs without edge faults.
 * 2. The edge faults (`EdgeFaults`) run by default, each drawn from the seed with even odds
 *    (so seeds see them alone and together); `options.faults` names exactly which run instead.
 *    Protocol 1 did not survive them (issues 12 and 13, `FINDINGS.md`).
 * 3. `logRestores` and `rollouts` run in SQLite mode only: with the memory store they are off,
 *    whatever the options name.
 */
import type { ClientBugs } from '@ledgerline/client'
import type { MemoryLogStoreBugs } from '@ledgerline/log'
import type { SqliteStoreBugs } from '@ledgerline/relay'
import type { Prng } from '@ledgerline/testkit'
import { SIM_TABS_MAX, SIM_TILLS_MAX, SIM_TILLS_MIN } from './limits.ts'
import type { StoreMode } from './relay-node.ts'
import type { WireFaults } from './wire.ts'

export const MINUTE = 60_000
export const HOUR = 60 * MINUTE
export const TENANT = 'sim-store'
export const SECRET = 'ledgerline-sim-secret-0123456789abcdef'

/** The faults the protocol-1 product does not survive (invariant 2); each is off by default. */
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
  /**
   * Store hubs (issue 15): the tills of one store sit behind a store hub (some seeds: a backup
   * hub too) with the hub faults drawn from the seed (`HubPlan`); off by default.
   */
  readonly hubs?: boolean | undefined
  /** Keep the last N trace facts (to diff two runs). */
  readonly keepTrace?: number | undefined
  /**
   * The open findings of FINDINGS.md fail the run too (they are counted either way); the
   * default since findings A and B were fixed. `false` only counts them.
   */
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
  /** The store and its hubs; undefined without `hubs`. */
  readonly hub: HubPlan | undefined
}

/** A store behind a hub, and what the world does to it (drawn from the seed). */
export interface HubPlan {
  /** The first `inStore` tills are registers in the store (their URLs: the hub(s), then HQ). */
  readonly inStore: number
  /** A backup hub whose upstream is the primary hub, then head office. */
  readonly backup: boolean
  /** Stretches the hub's upstream link alone is cut. */
  readonly upstreamCuts: number
  /** Stretches the store's internet line is cut (the hub's link and the registers' own). */
  readonly wanCuts: number
  /** Crashes of the primary hub (restarted on the same file). */
  readonly crashes: number
  /** The primary hub is lost with its disk once; `diskBackMs` later a new one starts. */
  readonly diskLoss: boolean
  /** Until the heal when undefined (the registers must fail over for good). */
  readonly diskBackMs: number | undefined
  /** Faults of the hub's upstream link (drops, resends, delays, half-open). */
  readonly uplinkFaults: WireFaults
}

/** Draws what the options leave open from `rng` (invariants 1 to 3). */
export function drawConfig(rng: Prng, options: ProductSimOptions): ProductSimConfig {
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
  const hub = options.hubs === true ? drawHubPlan(rng, tills) : undefined
  return {
    hub,
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
      // With store hubs a log restore is run only when named: after one a hub may hold rows
      // head office refuses seq_gap for good (FINDINGS.md, finding D, seeds 30 and 42).
      logRestores:
        f.logRestores === true && sqlite && (options.hubs !== true || options.faults !== undefined),
      expiringTokens: f.expiringTokens === true,
      oversized: f.oversized === true,
      rollouts: f.rollouts === true && sqlite,
    },
  }
}

/** Drawn after everything else, so a seed's other draws stay what they are without hubs. */
function drawHubPlan(rng: Prng, tills: number): HubPlan {
  const inStore = rng.chance(0.7) ? tills : rng.int(1, tills)
  return {
    inStore,
    backup: rng.chance(0.3),
    upstreamCuts: rng.int(0, 3),
    wanCuts: rng.int(0, 2),
    crashes: rng.int(0, 3),
    diskLoss: rng.chance(0.3),
    diskBackMs: rng.chance(0.6) ? rng.int(MINUTE, 30 * MINUTE) : undefined,
    uplinkFaults: {
      dropRate: rng.pick([0, 0.002, 0.01]),
      breakAfterRate: rng.pick([0, 0.005, 0.02]),
      delayMsMax: rng.pick([20, 200, 2_000]),
      halfOpen: rng.chance(0.5),
    },
  }
}

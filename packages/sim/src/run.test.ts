// Goal: the quick tier of the product simulation, inside `npm test`. Each seed is a full run of
// the real client (`createClient`, several tabs per till, fake-indexeddb with power cuts) and
// the real relay (`Session`, JWT check, SQLite or memory log checked by the oracle) under drops,
// broken connections, half-open sockets, partitions, relay crashes, clock skew and jumps, tab
// reloads, and the edge faults drawn per seed (device restores, an impostor, log restores,
// expiring tokens, oversized corrections and acks, wrong-order rollouts); checked for
// exactly-once, order, acks, corrections, requests, the oracle, convergence and liveness. Method: `runProductSimulation` per seed; a failure prints its seed, its violations
// and the command that replays it. Also: the same seed gives the same trace hash, and planted
// bugs in the product code are caught within a few seeds (the checkers see real code). With
// store hubs (issue 15): a few seeds whose tills sit behind the real hub (upstream and store
// internet cuts, hub crashes, a hub lost with its disk, some a backup hub), checked also for
// the store layer and the outbox stages, replayed, and a planted delete-on-`stored` caught.
import { describe, expect, it } from 'vitest'
import type { ProductSimOptions } from './run-config.ts'
import type { ProductSimResult } from './run.ts'
import { describeProductFailure, runProductSimulation } from './run.ts'

/** Seeds of the quick tier; the deep tier (`npm run test:sim`) runs many more. */
const QUICK_SEEDS = [1, 2, 3, 4, 5, 6]
const QUICK_MEMORY_SEEDS = [7, 8, 9]
/** Seeds of the quick tier with store hubs. */
// (2 and 6 run a backup hub; 4 and 6 lose the hub with its disk; every one crashes it.)
const QUICK_HUB_SEEDS = [2, 4, 6]
/** Appends per till in the quick tier, to keep it within seconds on a busy 2-core machine. */
const QUICK_OPS_PER_TILL = 12
/**
 * Vitest's limit per test here, not a bound the product must meet: one seed may take minutes of
 * wall time on a 2-core machine other test runs load, and a run cut off by the default limit
 * keeps the thread's simulation loop, failing every later test of the file.
 */
const SIM_TEST_TIMEOUT_MS = 600_000
/** A planted bug must be caught within this many seeds. */
const BUG_SEEDS_MAX = 10

describe('product simulation, quick tier', { timeout: SIM_TEST_TIMEOUT_MS }, () => {
  const results: ProductSimResult[] = []
  it.each(QUICK_SEEDS)('seed %i (SQLite log): exactly once, converged, live', async (seed) => {
    const result = await runProductSimulation({ seed, opsPerTill: QUICK_OPS_PER_TILL })
    results.push(result)
    if (!result.ok) throw new Error(describeProductFailure(result))
    expect(result.report.lost + result.report.duplicated + result.report.unexpected).toBe(0)
    expect(result.ops.resolved).toBeGreaterThan(0)
  })

  it.each(QUICK_MEMORY_SEEDS)('seed %i (memory log): the same checks hold', async (seed) => {
    const result = await runProductSimulation({
      seed,
      store: 'memory',
      opsPerTill: QUICK_OPS_PER_TILL,
    })
    results.push(result)
    if (!result.ok) throw new Error(describeProductFailure(result))
    expect(result.world.oracleCalls).toBeGreaterThan(0)
  })

  it('exercises the faults it claims over the quick seeds', () => {
    // A run that never cuts power or drops a frame proves nothing about either: count them.
    expect(results.length).toBe(QUICK_SEEDS.length + QUICK_MEMORY_SEEDS.length)
    const sum = (f: (r: ProductSimResult) => number) => results.reduce((n, r) => n + f(r), 0)
    expect(sum((r) => r.world.powerCuts)).toBeGreaterThan(3)
    expect(sum((r) => r.world.relayCrashes)).toBeGreaterThan(3)
    expect(sum((r) => r.world.framesLost)).toBeGreaterThan(10)
    expect(sum((r) => r.world.tabReloads)).toBeGreaterThan(3)
    expect(sum((r) => r.report.figures.corrections)).toBeGreaterThan(0)
    expect(sum((r) => r.report.figures.requestsRefused)).toBeGreaterThan(0)
    expect(sum((r) => r.world.oracleCalls)).toBeGreaterThan(50)
    expect(results.some((r) => r.config.tabs.some((t) => t > 1))).toBe(true)
    // The edge faults ran, and reached their paths.
    expect(sum((r) => r.world.restores)).toBeGreaterThan(0)
    expect(sum((r) => r.world.logRestores)).toBeGreaterThan(0)
    expect(sum((r) => r.world.impostorRefused)).toBeGreaterThan(0)
    for (const fault of ['expiringTokens', 'oversized', 'rollouts'] as const) {
      expect(results.some((r) => r.config.edge[fault])).toBe(true)
    }
  })
})

describe('product simulation with store hubs, quick tier', { timeout: SIM_TEST_TIMEOUT_MS }, () => {
  const results: ProductSimResult[] = []
  it.each(QUICK_HUB_SEEDS)(
    'seed %i: exactly once through the hub, converged, live',
    async (seed) => {
      const result = await runProductSimulation({
        seed,
        opsPerTill: QUICK_OPS_PER_TILL,
        hubs: true,
      })
      results.push(result)
      if (!result.ok) throw new Error(describeProductFailure(result))
      expect(result.config.hub).toBeDefined()
      expect(result.report.lost + result.report.duplicated + result.report.unexpected).toBe(0)
    },
  )

  it('ran the registers through the hub and the hub through its faults', () => {
    expect(results.length).toBe(QUICK_HUB_SEEDS.length)
    const sum = (f: (r: ProductSimResult) => number) => results.reduce((n, r) => n + f(r), 0)
    // Registers were welcomed by the hub and held entries only it had.
    expect(sum((r) => r.world.hubSessions)).toBeGreaterThan(10)
    expect(sum((r) => r.world.storedAcks)).toBeGreaterThan(0)
    expect(sum((r) => r.world.storeSamples)).toBeGreaterThan(0)
    expect(sum((r) => r.world.hubCrashes)).toBeGreaterThan(0)
    expect(sum((r) => r.world.hubDisksLost)).toBeGreaterThan(0)
    expect(results.some((r) => r.config.hub?.backup === true)).toBe(true)
    const plans = results.map((r) => r.config.hub)
    expect(plans.some((p) => (p?.upstreamCuts ?? 0) + (p?.wanCuts ?? 0) > 0)).toBe(true)
  })

  it('gives the same trace hash for the same seed', async () => {
    const a = await runProductSimulation({ seed: 6, opsPerTill: 8, hubs: true })
    const b = await runProductSimulation({ seed: 6, opsPerTill: 8, hubs: true })
    expect(b.traceHash).toBe(a.traceHash)
    expect(b.events).toBe(a.events)
  })

  it("catches an outbox record deleted on the hub's `stored` (client)", async () => {
    let caught: ProductSimResult | undefined
    for (let seed = 1; seed <= BUG_SEEDS_MAX && caught === undefined; seed++) {
      const r = await runProductSimulation({
        seed,
        opsPerTill: 16,
        hubs: true,
        faults: {},
        bugs: { client: { deleteOnStored: true } },
      })
      if (!r.ok) caught = r
    }
    expect(caught, 'not caught').toBeDefined()
    expect(caught?.report.counts.outbox).toBeGreaterThan(0)
  })
})

describe('replay', { timeout: SIM_TEST_TIMEOUT_MS }, () => {
  it('gives the same trace hash for the same seed', async () => {
    const a = await runProductSimulation({ seed: 4242, opsPerTill: 8 })
    const b = await runProductSimulation({ seed: 4242, opsPerTill: 8 })
    expect(b.traceHash).toBe(a.traceHash)
    expect(b.events).toBe(a.events)
    expect(b.ops).toEqual(a.ops)
  })

  it('gives different trace hashes for different seeds and stores', async () => {
    // One after the other: a thread runs one simulation at a time (it owns setImmediate).
    const runs = [
      await runProductSimulation({ seed: 1, opsPerTill: 4 }),
      await runProductSimulation({ seed: 2, opsPerTill: 4 }),
      await runProductSimulation({ seed: 1, opsPerTill: 4, store: 'memory' }),
    ]
    expect(new Set(runs.map((r) => r.traceHash)).size).toBe(3)
  })
})

describe('planted bugs in the product are caught', { timeout: SIM_TEST_TIMEOUT_MS }, () => {
  /** The first failing run within BUG_SEEDS_MAX seeds, or undefined. */
  const firstFailing = async (options: Omit<ProductSimOptions, 'seed'>) => {
    for (let seed = 1; seed <= BUG_SEEDS_MAX; seed++) {
      const result = await runProductSimulation({ seed, opsPerTill: 16, ...options })
      if (!result.ok) return result
    }
    return undefined
  }

  // Without edge faults: these bugs need none to show, and the tier stays quick.
  const none = {}

  it('a dedupe that ignores content digests (the planner, SQLite store)', async () => {
    // Protocol 1's dedupe by id alone: a restored till's new sales under reused clientSeqs
    // are answered `duplicate` and dropped instead of `id_conflict`.
    const r = await firstFailing({
      faults: { restores: true },
      bugs: { sqlite: { ignoreDigests: true } },
    })
    expect(r, 'not caught').toBeDefined()
    expect(r?.report.counts.oracle).toBeGreaterThan(0)
  })

  it('an outbox record deleted on send (client)', async () => {
    const r = await firstFailing({ faults: none, bugs: { client: { deleteOnSend: true } } })
    expect(r, 'not caught').toBeDefined()
    const c = r?.report.counts
    expect((c?.['exactly-once'] ?? 0) + (c?.requests ?? 0)).toBeGreaterThan(0)
  })

  it('an ack sent before the commit (SQLite store)', async () => {
    const r = await firstFailing({ faults: none, bugs: { sqlite: { ackBeforeCommit: true } } })
    expect(r, 'not caught').toBeDefined()
    expect(r?.report.counts.acks).toBeGreaterThan(0)
  })

  it('an ack before durable (memory store)', async () => {
    const r = await firstFailing({
      store: 'memory',
      faults: none,
      bugs: { memory: { unsyncedLastCommit: true } },
    })
    expect(r, 'not caught').toBeDefined()
    expect(r?.report.counts.acks).toBeGreaterThan(0)
  })

  it('a dedupe that forgets (memory store)', async () => {
    const r = await firstFailing({
      store: 'memory',
      faults: none,
      bugs: { memory: { noDedupe: true } },
    })
    expect(r, 'not caught').toBeDefined()
    // A resend appended again: the oracle sees the store place it anew.
    expect((r?.report.duplicated ?? 0) + (r?.report.counts.oracle ?? 0)).toBeGreaterThan(0)
  })
})

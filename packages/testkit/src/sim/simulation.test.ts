// Goal: the quick tier of the deterministic simulation. Fixed seeds, each a full run (5–20
// clients of a point-of-sale, faulty links, crashes at named crash points, offline stretches,
// clock skew and jumps back), checked for lost = duplicated = unexpected = 0, order,
// convergence, corrections and request decisions. Method: `runSimulation` per seed; a failure
// prints the seed, its violations and the command that replays it. Also proves replay: the
// same seed gives the same trace hash, and different seeds give different hashes.
import { describe, expect, it } from 'vitest'
import type { SimulationResult } from './run.ts'
import { describeFailure, runSimulation } from './run.ts'

/** Seeds of the quick tier; the deep tier (`npm run test:sim`) runs many more. */
const QUICK_SEEDS = Array.from({ length: 12 }, (_, i) => i + 1)
/** Appends per client in the quick tier, to keep it within seconds on a busy 2-core machine. */
const QUICK_OPS_PER_CLIENT = 12

describe('deterministic simulation, quick tier', () => {
  const results: SimulationResult[] = []
  it.each(QUICK_SEEDS)('seed %i: nothing lost, nothing duplicated, all converge', (seed) => {
    const result = runSimulation({ seed, opsPerClient: QUICK_OPS_PER_CLIENT })
    results.push(result)
    // The message carries the seed and the replay command.
    if (!result.ok) throw new Error(describeFailure(result))
    expect(result.report.lost + result.report.duplicated + result.report.unexpected).toBe(0)
    expect(result.ops.committed).toBeGreaterThan(0)
  })

  it('exercises every crash point and fault over the quick seeds', () => {
    // A run that never reaches a crash point proves nothing about it: count what fired.
    let crashes = 0
    let dropped = 0
    let duplicated = 0
    let corrections = 0
    let refused = 0
    const crashed = new Set<string>()
    expect(results.length).toBe(QUICK_SEEDS.length)
    for (const r of results) {
      for (const [point, n] of Object.entries(r.crashPoints.crashes)) if (n > 0) crashed.add(point)
      crashes += r.relayCrashes + r.clientCrashes
      dropped += r.network.framesDropped
      duplicated += r.network.framesDuplicated
      corrections += r.report.figures.corrections
      refused += r.report.figures.requestsRefused
    }
    expect(crashes).toBeGreaterThan(10)
    expect(crashed.size).toBeGreaterThanOrEqual(7)
    expect(dropped).toBeGreaterThan(0)
    expect(duplicated).toBeGreaterThan(0)
    expect(corrections).toBeGreaterThan(0)
    expect(refused).toBeGreaterThan(0)
  })
})

describe('replay', () => {
  it('gives the same trace hash for the same seed', () => {
    const a = runSimulation({ seed: 4242, opsPerClient: QUICK_OPS_PER_CLIENT })
    const b = runSimulation({ seed: 4242, opsPerClient: QUICK_OPS_PER_CLIENT })
    expect(b.traceHash).toBe(a.traceHash)
    expect(b.events).toBe(a.events)
    expect(b.ops).toEqual(a.ops)
  })

  it('gives different trace hashes for different seeds', () => {
    const hashes = new Set(
      [1, 2, 3, 4, 5].map((seed) => runSimulation({ seed, opsPerClient: 5 }).traceHash),
    )
    expect(hashes.size).toBe(5)
  })
})

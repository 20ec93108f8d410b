// Goal: prove the simulation's checkers can fail. Method: plant one bug at a time — a server
// log that forgets dedupe, one that acks before the commit is durable, a client that deletes
// its outbox on send — run seeds until the bug shows, and require the matching checker to
// report it with the seed. Then tamper with a clean run's results (drop an entry, repeat one,
// break a client's ledger) and require each named check to notice.
import { describe, expect, it } from 'vitest'
import type { StoredEntry } from '@ledgerline/core'
import { checkSimulation } from './checkers.ts'
import type { SimulationOptions, SimulationResult } from './run.ts'
import { runSimulation } from './run.ts'
import { simPosSchema } from './pos-schema.ts'
import { createSimHistory } from './history.ts'

/** Seeds tried per planted bug before giving up: a bug that no seed shows is a weak test. */
const BUG_SEEDS_MAX = 12

function firstFailing(options: Omit<SimulationOptions, 'seed'>): SimulationResult | undefined {
  for (let seed = 1; seed <= BUG_SEEDS_MAX; seed++) {
    const r = runSimulation({ ...options, seed, opsPerClient: 12 })
    if (!r.ok) return r
  }
  return undefined
}

describe('planted bugs are caught', () => {
  it('a log without dedupe: duplicated > 0', () => {
    const r = firstFailing({ bugs: { store: { noDedupe: true } } })
    expect(r).toBeDefined()
    expect(r?.report.duplicated).toBeGreaterThan(0)
  })

  it('a log that acks before durable: acked entries lost', () => {
    const r = firstFailing({
      bugs: { store: { unsyncedLastCommit: true } },
      crashRates: { crash: 0.05, delay: 0, throw: 0 },
    })
    expect(r).toBeDefined()
    expect((r?.report.lost ?? 0) + (r?.report.ackedLost ?? 0)).toBeGreaterThan(0)
  })

  it('a client that deletes its outbox on send: lost > 0', () => {
    const r = firstFailing({
      bugs: { client: { deleteOutboxOnSend: true } },
      crashRates: { crash: 0.02, delay: 0, throw: 0.05 },
    })
    expect(r).toBeDefined()
    expect(r?.report.lost).toBeGreaterThan(0)
  })
})

describe('each check fails on tampered results', () => {
  const clean = runSimulation({ seed: 3, opsPerClient: 12 })
  const input = () => ({
    schema: simPosSchema,
    tenant: 'sim-store',
    history: clean.report.ok ? historyOf(clean) : createSimHistory(),
    log: clean.log,
    clients: clean.clients,
  })
  it('the clean run passes', () => {
    expect(clean.ok).toBe(true)
    expect(checkSimulation(input()).ok).toBe(true)
  })

  it('an entry missing from the log is lost, and its offsets gap', () => {
    const partitions = clean.log.partitions.map((p) => [...p])
    const p = partitions.findIndex((entries) => entries.some((e) => e.clientSeq > 0))
    const entries = partitions[p] as StoredEntry[]
    entries.splice(
      entries.findIndex((e) => e.clientSeq > 0),
      1,
    )
    const report = checkSimulation({ ...input(), log: { ...clean.log, partitions } })
    expect(report.lost).toBe(1)
    expect(report.counts.offsets).toBeGreaterThan(0)
  })

  it('an entry twice in the log is duplicated', () => {
    const partitions = clean.log.partitions.map((p) => [...p])
    const entries = partitions.find((es) => es.some((e) => e.clientSeq > 0)) as StoredEntry[]
    const victim = entries.find((e) => e.clientSeq > 0) as StoredEntry
    entries.push({ ...victim, offset: entries.length + 1, version: victim.version })
    const report = checkSimulation({ ...input(), log: { ...clean.log, partitions } })
    expect(report.duplicated).toBe(1)
    expect(report.counts.versions).toBeGreaterThan(0)
  })

  it('a client whose confirmed ledger misses an entry has not converged', () => {
    const client = clean.clients[0]
    if (client === undefined) throw new Error('no client')
    const [entity, ledger] = [...client.db.confirmed.entries()][0] ?? []
    if (entity === undefined || ledger === undefined) throw new Error('empty ledger')
    const saved = new Map(ledger)
    ledger.delete(1)
    try {
      expect(checkSimulation(input()).counts.convergence).toBeGreaterThan(0)
    } finally {
      ledger.clear()
      for (const [v, e] of saved) ledger.set(v, e)
    }
  })

  it('a missing correction breaks the corrections check', () => {
    const partitions = clean.log.partitions.map((p) => p.filter((e) => e.clientSeq > 0))
    const report = checkSimulation({ ...input(), log: { ...clean.log, partitions } })
    expect(clean.report.figures.corrections).toBeGreaterThan(0)
    expect(report.counts.corrections).toBeGreaterThan(0)
  })
})

function historyOf(result: SimulationResult) {
  // The run's history is not returned on its own; rebuild it from what the clients committed.
  const history = createSimHistory()
  for (const c of result.clients) {
    for (const entry of c.db.own.values()) {
      history.committed.set(entry.id, { client: c.name, entry })
      history.resolved.add(entry.id)
    }
  }
  return history
}

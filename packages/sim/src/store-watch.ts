/**
 * Looks at the registers of a store while the run goes on (issue 15): at seeded moments it asks
 * every running till's client, through its public API, what its store layer holds and where its
 * own entries are, and holds that against what head office (the oracle) had decided by then.
 *
 * Terms: a *sample* is one look at every running till; an entry is *stored* for a till when a
 * hub acked it `stored` to that till.
 *
 * Invariants (each a violation of the named check):
 * 1. `store-layer`: a till's store layer never holds its own entry (one of its ops), never a
 *    request, never an entry head office had refused when the look ended (that id with that
 *    content: another entry under a refused id is provisional, head office answers it
 *    `id_conflict`).
 * 2. `outbox`: an entry stored for a till stays in its outbox until head office decided it: an
 *    `outcome()` other than `outbox` (appended, refused, unknown…) while head office has no final
 *    decision under the id (or under the id it was last pushed as) means the record was deleted
 *    on the hub's word. Looks after a log restore are skipped (head office forgot decisions),
 *    and ops a restored disk forgot.
 * 3. Looks run on the loop like the app's own calls; a look a power cut interrupts is dropped.
 */
import type { Client } from '@ledgerline/client'
import type { SimScheduler } from '@ledgerline/testkit'
import { opOf } from './content.ts'
import type { SimHistory } from './history.ts'
import { SIM_STORE_SAMPLE_MS } from './limits.ts'
import type { LogOracle } from './oracle.ts'
import type { ProductSimConfig } from './run-config.ts'
import { TENANT } from './run-config.ts'
import type { Till } from './till.ts'

export interface StoreWatch {
  /** `check: message`, as the checkers' tally takes them. */
  readonly violations: readonly {
    readonly check: 'store-layer' | 'outbox'
    readonly message: string
  }[]
  /** Looks taken (a till each). */
  readonly count: number
}

/**
 * @example
 * const watch = watchStore({ sched, tills, history, oracle, config })
 * // … run …; watch.violations go to the checkers
 */
export function watchStore(world: {
  readonly sched: SimScheduler
  readonly tills: readonly Till[]
  readonly history: SimHistory
  readonly oracle: LogOracle
  readonly config: ProductSimConfig
}): StoreWatch {
  const { sched, tills, history, oracle } = world
  const violations: { check: 'store-layer' | 'outbox'; message: string }[] = []
  let count = 0
  const final = (id: string | undefined) => {
    if (id === undefined) return false
    const d = oracle.decision(TENANT, id)
    return d === 'appended' || d === 'refused' || d === 'copy'
  }

  const look = async (till: Till, client: Client) => {
    // Invariant 1.
    const entities = new Set<string>()
    for (const r of history.ops.values()) entities.add(r.entity)
    for (const entity of [...entities].sort()) {
      const state = await client.load(entity)
      for (const e of state.store) {
        const op = opOf(e)
        const mine = op !== undefined && history.ops.get(op)?.till === till.name
        // The entry itself, by id and content: another entry under a refused id (a restored
        // disk's reused clientSeq) is a provisional entry head office will answer id_conflict.
        if (mine || e.intent !== 'fact' || oracle.refused(TENANT, e)) {
          violations.push({
            check: 'store-layer',
            message: `${till.name}'s store layer of ${entity} holds ${e.id} at ${Math.round(sched.now() / 1000)} s (${mine ? 'its own entry' : e.intent !== 'fact' ? 'a request' : 'refused by head office'})`,
          })
        }
      }
    }
    // Invariant 2.
    const stored = new Set<string>()
    for (const a of history.acks) {
      if (a.till === till.name && a.result.status === 'stored') stored.add(a.result.id)
    }
    for (const record of history.ops.values()) {
      if (record.till !== till.name || record.entry === undefined) continue
      if (record.forgotten === true || !stored.has(record.entry.id)) continue
      const outcome = await client.outcome(record.entry.id)
      if (outcome._tag === 'outbox' || outcome._tag === 'reissued') continue
      if (history.logRestoredAt !== undefined) return
      if (final(record.entry.id) || final(history.pushedAs.get(record.op))) continue
      violations.push({
        check: 'outbox',
        message: `${till.name} says ${record.entry.id} is ${outcome._tag} at ${Math.round(sched.now() / 1000)} s; head office has not decided it (a record deleted on the hub's word)`,
      })
    }
  }

  for (let at = SIM_STORE_SAMPLE_MS; at < world.config.durationMs; at += SIM_STORE_SAMPLE_MS) {
    sched.at(at, 'store look', () => {
      for (const till of tills) {
        if (!till.alive) continue
        const client = till.clients()[0]
        if (client === undefined) continue
        count++
        // Invariant 3: a client closed under the look (a power cut) ends it.
        void look(till, client).catch(() => {})
      }
    })
  }
  return {
    violations,
    get count() {
      return count
    },
  }
}

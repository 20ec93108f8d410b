/**
 * The end of a product simulation run: waiting for the tills to drain after the heal, telling
 * why one is stuck, and reading each till's real client back through its public API.
 *
 * Terms: a till is *quiet* when its leading tab is online, live, idle and its outbox is empty;
 * a run has *drained* when every till is quiet and the relay is up; *progress* is what moves
 * while a run can still drain (the log, the refusals, the outboxes, tills coming to rest).
 *
 * Invariants:
 * 1. A drain runs the loop for at most `SIM_DRAIN_MS_MAX` simulated ms, and stops early when
 *    progress has not changed for `SIM_STALL_MS_MAX` (recorded `stalled` in the trace) or a hot
 *    loop halted the loop.
 * 2. Reading back runs on the loop (IndexedDB does) and must settle within a simulated hour.
 * 3. A load the client refuses is read back as version -1 with its reason (a finding for the
 *    checkers, not a crash).
 */
import type { Outcome } from '@ledgerline/client'
import type { TillFinal } from './checkers.ts'
import type { SimHistory } from './history.ts'
import { SIM_DRAIN_MS_MAX, SIM_STALL_MS_MAX } from './limits.ts'
import type { LogOracle } from './oracle.ts'
import { HOUR, MINUTE } from './run-config.ts'
import type { SimLoop } from './sim-loop.ts'
import type { Till } from './till.ts'

/** True when the till's leading tab is online, live, idle and its outbox is empty. */
export function quiet(till: Till): boolean {
  if (!till.alive) return false
  const leader = till.clients().find((c) => c.status().leader)
  if (leader === undefined) return false
  const s = leader.status()
  return s.online && s.live && !s.syncing && s.outboxEntries === 0
}

export function stuckReason(till: Till): string {
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
export async function drainTills(
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
export function progress(tills: readonly Till[], oracle: LogOracle): string {
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
export async function settle<T>(loop: SimLoop, work: () => Promise<T>): Promise<T> {
  let done = false
  const promise = work().finally(() => {
    done = true
  })
  await loop.run(() => done, loop.sched.now() + HOUR)
  if (!done) throw new Error('sim: reading the tills back did not finish')
  return await promise
}

/** What each till's client says at the end (invariant 3), for the checkers. */
export async function readTills(
  tills: readonly Till[],
  history: SimHistory,
  entities: readonly string[],
): Promise<TillFinal[]> {
  const out: TillFinal[] = []
  for (const till of tills) {
    const client = till.clients().find((c) => c.status().leader) ?? till.clients()[0]
    const states = new Map<string, { version: number; state: unknown }>()
    const outcomes = new Map<string, Outcome>()
    let storeLayer = 0
    if (client !== undefined && till.alive) {
      for (const entity of entities) {
        // A load the client refuses (a ledger it cannot trust) is a finding, not a crash.
        const s = await client.load(entity).catch((error: unknown) => ({
          version: -1,
          confirmed: `load failed: ${error instanceof Error ? error.message : String(error)}`,
        }))
        states.set(entity, { version: s.version, state: s.confirmed })
        if ('store' in s) storeLayer += s.store.length
      }
      for (const record of history.ops.values()) {
        if (record.till !== till.name || record.entry === undefined) continue
        // The client follows reissue hops itself: this is where the entry ended.
        outcomes.set(record.entry.id, await client.outcome(record.entry.id))
      }
    }
    out.push({
      name: till.name,
      status: client?.status(),
      entities: states,
      outcomes,
      storeLayer,
    })
  }
  return out
}

/**
 * Checkers over a finished product simulation: the real server log (read back from the store),
 * what the world recorded (`history.ts`), what each till's real client says at the end, and
 * the oracle.
 *
 * Terms as in `history.ts` and `check-promises.ts` (in the log, lost, duplicated, open
 * finding).
 *
 * Modules: the named checks and their tally (`check-tally.ts`); `offsets` and `versions` while
 * the log is indexed (`log-index.ts`); `exactly-once` and `ids`, the checks of what was promised
 * (`check-promises.ts`); the rest here.
 *
 * Invariants (each a named check; a failure counts under its name and keeps a message):
 * 1. `client-order`: per clientId, the log decided (or deferred) clientSeqs 1..n, none twice.
 * 2. `acks`: every ack a till received says what the log holds (an appended or duplicate entry
 *    is where the ack said; a refusal is recorded with its code); acks from before the log was
 *    put back to an older copy are void.
 * 3. `corrections`: each fact that broke an invariant is followed by exactly the corrections
 *    `decide()` derives for it; every correction names an entry of the log.
 * 4. `requests`: each till's `outcome()` of its resolved requests agrees with the log.
 * 5. `oracle`: every result a store gave agreed with the oracle, and the log equals the
 *    oracle's, entry for entry, refusal for refusal.
 * 6. `convergence`: after the heal, each till's confirmed state and version of every entity
 *    equal the server's.
 * 7. `liveness`: every till drained (empty outbox, live) within the drain time; no till dialed
 *    more than `SIM_DIALS_PER_MINUTE_MAX` times in a minute (a hot loop), and no hub forwarded
 *    one entry more than `SIM_FORWARDS_PER_MINUTE_MAX` times in a minute (`hub-node.ts`).
 * 8. `crashes`: no event threw and no promise rejection went unhandled.
 * 9. With store hubs: `store-layer` (no till's store layer held its own entry, a request or a
 *    refused entry during the run, `store-watch.ts`; after the heal every store layer is empty:
 *    head office confirmed everything) and `outbox` (no record of an entry a hub stored left a
 *    till's outbox before head office decided it, `store-watch.ts`).
 */
import { SERVER_CLIENT_ID } from '@ledgerline/core'
import { checkCorrections } from '@ledgerline/testkit'
import type { Schema, StoredEntry } from '@ledgerline/core'
import type { ClientStatus, Outcome } from '@ledgerline/client'
import { checkPromises, decidedId } from './check-promises.ts'
import type { ProductCheck } from './check-tally.ts'
import { createCheckTally } from './check-tally.ts'
import { stable } from './content.ts'
import type { SimHistory } from './history.ts'
import { SIM_DIALS_PER_MINUTE_MAX } from './limits.ts'
import { indexLog, push } from './log-index.ts'
import type { LogOracle } from './oracle.ts'
import { oracleEntryOf } from './oracle.ts'
import type { LogDump } from './relay-node.ts'
import { TENANT as TENANT_OF_LOG } from './run-config.ts'

/** What a till's real client says at the end (read through its public API). */
export interface TillFinal {
  readonly name: string
  readonly status: ClientStatus | undefined
  /** Confirmed version and state of every entity the log holds. */
  readonly entities: ReadonlyMap<string, { readonly version: number; readonly state: unknown }>
  /** `outcome()` of each of its resolved entries, by entry id (reissue hops followed). */
  readonly outcomes: ReadonlyMap<string, Outcome>
  /** Entries in the till's store layers (of every entity the log holds), at the end. */
  readonly storeLayer: number
}

export interface ProductCheckInput {
  readonly schema: Schema
  readonly history: SimHistory
  readonly log: LogDump
  readonly oracle: LogOracle
  readonly tills: readonly TillFinal[]
  readonly drained: boolean
  /** Why each undrained till is stuck, when the run did not drain. */
  readonly stuck: readonly string[]
  readonly faults: readonly string[]
  /** What the looks at the store's registers found during the run (`store-watch.ts`). */
  readonly storeViolations?:
    | readonly { readonly check: 'store-layer' | 'outbox'; readonly message: string }[]
    | undefined
  /** The run had store hubs (the store layers must be empty after the heal). */
  readonly hubs?: boolean | undefined
}

export interface ProductCheckReport {
  readonly ok: boolean
  readonly counts: Record<ProductCheck, number>
  readonly violations: readonly string[]
  readonly lost: number
  readonly duplicated: number
  readonly unexpected: number
  /** Resolved ops still on their way when a run did not drain (not counted as lost). */
  readonly undelivered: number
  /**
   * Ops hit by the open findings of FINDINGS.md (a till's disk restore and the log's restore in
   * one run: entries of an older clientId lost, or recovered twice): counted and printed with
   * their seeds, not failures of the run (`ProductSimOptions.strict` makes them failures).
   */
  readonly openFindings: readonly string[]
  readonly figures: {
    readonly resolved: number
    readonly logEntries: number
    readonly corrections: number
    readonly offendingFacts: number
    readonly requests: number
    readonly requestsRefused: number
    readonly refusals: number
  }
}

/**
 * @example
 * const report = checkProductRun({ schema, history, log, oracle, tills, drained, stuck, faults })
 * if (!report.ok) console.log(report.violations)
 */
export function checkProductRun(input: ProductCheckInput): ProductCheckReport {
  const { schema, history, log, oracle } = input
  const tally = createCheckTally()
  const { counts, violate } = tally

  // Index the log (offsets, versions).
  const index = indexLog(log, violate)
  const { byId, byOp, byEntity, correctionsOf, refusedById } = index
  const logEntries = index.entries

  // exactly-once and ids, by op tag (ids change when a restored device re-sends).
  const outcomeOf = new Map<string, Outcome>()
  for (const till of input.tills) for (const [id, o] of till.outcomes) outcomeOf.set(id, o)
  const promises = checkPromises({
    history,
    index,
    tills: input.tills,
    outcomeOf,
    drained: input.drained,
    violate,
  })
  const { lost, undelivered, duplicated, resolved, requests, requestsRefused, openOps } = promises
  const unexpected = index.untagged + promises.unexpected

  // 1. client-order.
  const seqs = new Map<string, number[]>()
  for (const e of byId.values())
    if (e.clientId !== SERVER_CLIENT_ID) push(seqs, e.clientId, e.clientSeq)
  for (const r of log.refusals) {
    const dash = r.id.lastIndexOf('-')
    push(seqs, r.id.slice(0, dash), Number(r.id.slice(dash + 1)))
  }
  // A deferral uses up its clientSeq too (decided later, or moved with its entry to a new id).
  for (const id of log.deferrals) {
    const dash = id.lastIndexOf('-')
    const seq = Number(id.slice(dash + 1))
    const list = seqs.get(id.slice(0, dash))
    if (list === undefined) seqs.set(id.slice(0, dash), [seq])
    else if (!list.includes(seq)) list.push(seq)
  }
  // A copy of an entry the log holds uses up its clientSeq and records nothing (`append-plan.ts`
  // invariant 12): its duplicate ack names an id the log has no entry under.
  // A store hub gets those acks for its registers: the oracle's copies name them all. A log
  // restore puts the oracle back with the log (`relay-node.ts`), so they are the log's own.
  const copyIds = history.acks
    .filter((a) => history.logRestoredAt === undefined || a.at >= history.logRestoredAt)
    .filter((a) => a.result.status === 'duplicate')
    .map((a) => a.result.id)
  copyIds.push(...oracle.copies(TENANT_OF_LOG))
  for (const id of copyIds) {
    if (byId.has(id)) continue
    const dash = id.lastIndexOf('-')
    const seq = Number(id.slice(dash + 1))
    const list = seqs.get(id.slice(0, dash))
    if (list === undefined) seqs.set(id.slice(0, dash), [seq])
    else if (!list.includes(seq)) list.push(seq)
  }
  for (const [clientId, list] of seqs) {
    list.sort((a, b) => a - b)
    list.forEach((seq, i) => {
      if (seq !== i + 1)
        violate('client-order', `${clientId.slice(0, 8)} decided seq ${seq} as number ${i + 1}`)
    })
  }

  // 2. acks.
  const byPosition = new Map<string, StoredEntry>()
  for (const e of byId.values()) byPosition.set(`${e.partition}/${e.offset}`, e)
  for (const { till, result, at } of history.acks) {
    // An ack of a log that was later put back to an older copy speaks of a log that is gone.
    if (history.logRestoredAt !== undefined && at < history.logRestoredAt) continue
    if (result.status === 'refused') {
      if (result.code === 'seq_gap') continue
      if (refusedById.get(result.id) !== result.code) {
        violate(
          'acks',
          `${till} was told ${result.id} was refused (${result.code}); the log disagrees`,
        )
      }
      continue
    }
    if (result.status !== 'appended' && result.status !== 'duplicate') continue
    // A copy's duplicate names the first landing's positions (the oracle checks which one).
    const stored =
      byId.get(result.id) ??
      (result.status === 'duplicate'
        ? byPosition.get(`${result.partition}/${result.offset}`)
        : undefined)
    if (
      stored === undefined ||
      stored.partition !== result.partition ||
      stored.offset !== result.offset ||
      stored.version !== result.version
    ) {
      violate(
        'acks',
        `${till} was acked ${result.id} at ${result.partition}/${result.offset}; not there`,
      )
    }
  }

  // 3. corrections, folding each ledger as the log decided it.
  const { corrections, offendingFacts } = checkCorrections(
    schema,
    byEntity.values(),
    correctionsOf,
    (id) => byId.has(id),
    (message) => violate('corrections', message),
  )

  // 4. requests: what each till tells its app. A refusal the till was told by a log that was
  // later put back to an older copy is gone with that log (restores keep no refusals): the
  // till's `refused` stands, and nothing of the request is in the log.
  const refusedByLostLog = new Set<string>()
  for (const { result, at } of history.acks) {
    if (history.logRestoredAt === undefined || at >= history.logRestoredAt) continue
    if (result.status === 'refused' && result.code !== 'seq_gap') refusedByLostLog.add(result.id)
  }
  if (input.drained) {
    for (const record of history.ops.values()) {
      if (record.outcome !== 'resolved' || record.intent !== 'request') continue
      if (record.entry === undefined || record.forgotten === true) continue
      if (openOps.has(record.op)) continue
      const outcome = outcomeOf.get(record.entry.id)
      const inLog = (byOp.get(record.op) ?? []).length > 0
      const serverSays = inLog
        ? 'appended'
        : refusedById.has(decidedId(history, record))
          ? 'refused'
          : 'none'
      const tillSays =
        outcome === undefined ? 'none' : outcome._tag === 'duplicate' ? 'appended' : outcome._tag
      const lostWithLog = serverSays === 'none' && refusedByLostLog.has(decidedId(history, record))
      if (tillSays !== serverSays && !(tillSays === 'refused' && lostWithLog)) {
        violate(
          'requests',
          `${record.op}: the log says ${serverSays}, ${record.till} says ${tillSays}`,
        )
      }
    }
  }

  // 5. oracle.
  if (oracle.disagreements > 0) {
    counts.oracle += oracle.disagreements - Math.min(oracle.disagreements, oracle.messages.length)
    for (const m of oracle.messages) violate('oracle', m)
  }
  const expected = oracle.log()
  log.partitions.forEach((entries, p) => {
    const want = expected[p] ?? []
    if (want.length !== entries.length) {
      violate('oracle', `partition ${p} holds ${entries.length} entries, the oracle ${want.length}`)
    }
    const n = Math.min(want.length, entries.length)
    for (let i = 0; i < n; i++) {
      const got = oracleEntryOf(entries[i] as StoredEntry)
      const w = want[i] as (typeof want)[number]
      const client = (entries[i] as StoredEntry).clientId !== SERVER_CLIENT_ID
      if (
        got.id !== w.id ||
        got.version !== w.version ||
        got.offset !== w.offset ||
        (client && got.key !== w.key)
      ) {
        violate(
          'oracle',
          `partition ${p} offset ${i + 1}: log has ${got.id} v${got.version}, oracle ${w.id} v${w.version}`,
        )
        break
      }
    }
  })
  const oracleRefusals = stable(
    oracle
      .refusals()
      .map((r) => [r.id, r.code])
      .sort(),
  )
  const logRefusals = stable(log.refusals.map((r) => [r.id, r.code]).sort())
  if (oracleRefusals !== logRefusals) {
    violate(
      'oracle',
      `the log's refusals (${log.refusals.length}) differ from the oracle's (${oracle.refusals().length})`,
    )
  }

  // 6. convergence.
  if (input.drained) {
    for (const till of input.tills) {
      for (const [entity, entries] of byEntity) {
        const type = schema.find(entity)
        const mine = till.entities.get(entity)
        const version = entries.length
        if (mine === undefined || mine.version !== version) {
          const why = mine?.version === -1 ? ` (${String(mine.state)})` : ''
          violate(
            'convergence',
            `${till.name} has ${entity} at v${mine?.version ?? 'none'}, the log at v${version}${why}`,
          )
          continue
        }
        if (type === undefined) continue
        let state = type.initial
        for (const e of entries) state = type.reduce(state, e)
        if (stable(mine.state) !== stable(state)) {
          violate('convergence', `${till.name}'s confirmed ${entity} differs from the server's`)
        }
      }
    }
  }

  // 9. store hubs.
  for (const v of input.storeViolations ?? []) violate(v.check, v.message)
  if (input.hubs === true && input.drained) {
    for (const till of input.tills) {
      if (till.storeLayer > 0) {
        violate(
          'store-layer',
          `${till.name} still shows ${till.storeLayer} store entries after the heal`,
        )
      }
    }
  }

  // 7. liveness.
  if (!input.drained) for (const reason of input.stuck) violate('liveness', reason)
  for (const [till, times] of history.dials) {
    let from = 0
    for (let i = 0; i < times.length; i++) {
      while ((times[i] as number) - (times[from] as number) > 60_000) from++
      if (i - from + 1 > SIM_DIALS_PER_MINUTE_MAX) {
        violate(
          'liveness',
          `${till} dialed ${i - from + 1} times within a minute at ${Math.round((times[i] as number) / 1000)} s (a hot loop)`,
        )
        break
      }
    }
  }

  // 8. crashes.
  for (const f of input.faults) violate('crashes', f.split('\n').slice(0, 3).join(' | '))

  const ok = Object.values(counts).every((n) => n === 0) && lost + duplicated + unexpected === 0
  // What stopped the run first, then what it broke (`check-tally.ts` invariant 2).
  const violations = tally.violations()
  return {
    ok,
    counts,
    violations,
    undelivered,
    openFindings: promises.known,
    lost,
    duplicated,
    unexpected,
    figures: {
      resolved,
      logEntries,
      corrections,
      offendingFacts,
      requests,
      requestsRefused,
      refusals: log.refusals.length,
    },
  }
}

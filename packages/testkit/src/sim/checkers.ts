/**
 * Checkers over a finished simulation: the ledger's total-queue check (nothing lost, nothing
 * duplicated, nothing unexpected), order, convergence, corrections and request decisions.
 *
 * Terms: *lost* = committed on a client, absent from the server log and never decided;
 * *duplicated* = an id in the log more than once, or both appended and refused; *unexpected* =
 * in the log but never committed by any client, or different from what the client committed.
 *
 * Invariants (each a named check; a failure adds to `violations` under its name):
 * 1. `exactly-once`: every committed entry is decided exactly once (appended once, or refused
 *    once), with the content its client committed; no fact is refused; no clientSeq is reused.
 * 2. `offsets`: per partition, offsets are 1..n and every entry is in `partitionOf`'s partition.
 * 3. `versions`: per entity, versions are 1..n in offset order.
 * 4. `client-order`: each client's entries were decided in clientSeq order, 1, 2, 3… with no gap.
 * 5. `hlc`: each client's stamps increase with clientSeq (across crashes and clock jumps).
 * 6. `acks`: every ack a client received matches the final log (an acked entry is where the
 *    ack said, with the same version), and every refusal matches the recorded one.
 * 7. `convergence`: after drain, every outbox is empty, every cursor is at the partition head,
 *    and every client's confirmed ledger and state equal the server's for every entity.
 * 8. `corrections`: each fact that broke an invariant is followed by exactly the corrections
 *    `decide()` derives for it, once; no other entry is corrected by the server log.
 * 9. `requests`: each request is decided once, and the client's stored decision agrees with
 *    the server's.
 */
import type { Entry, Schema, StoredEntry } from '@ledgerline/core'
import { checkInvariants, decide, partitionOf, SERVER_CLIENT_ID } from '@ledgerline/core'
import { checkCorrectionSize } from '@ledgerline/log'
import type { AckResult } from '@ledgerline/protocol'
import type { SimClient } from './client.ts'
import type { SimHistory } from './history.ts'
import { SIM_VIOLATIONS_KEPT_MAX } from './limits.ts'
import type { MemoryLogDump } from '@ledgerline/log'

export const CHECKS = [
  'exactly-once',
  'offsets',
  'versions',
  'client-order',
  'hlc',
  'acks',
  'convergence',
  'corrections',
  'requests',
] as const
export type CheckName = (typeof CHECKS)[number]

export interface CheckReport {
  readonly lost: number
  readonly duplicated: number
  readonly unexpected: number
  /** Acked (appended or duplicate) entries that are not in the final log where the ack said. */
  readonly ackedLost: number
  /** Violation count per check. */
  readonly counts: Record<CheckName, number>
  /** The first violations, as messages. */
  readonly violations: readonly string[]
  readonly ok: boolean
  readonly figures: {
    readonly committed: number
    readonly logEntries: number
    readonly corrections: number
    readonly offendingFacts: number
    readonly requests: number
    readonly requestsRefused: number
  }
}

export interface CheckInput {
  readonly schema: Schema
  readonly tenant: string
  readonly history: SimHistory
  readonly log: MemoryLogDump
  readonly clients: readonly SimClient[]
  /** Skip the convergence check (a run that did not drain reports that separately). */
  readonly skipConvergence?: boolean | undefined
}

/**
 * @example
 * const report = checkSimulation({ schema, tenant, history, log: store.dump(), clients })
 * if (!report.ok) console.log(report.violations)
 */
export function checkSimulation(input: CheckInput): CheckReport {
  const { schema, tenant, history, log, clients } = input
  const counts = Object.fromEntries(CHECKS.map((c) => [c, 0])) as Record<CheckName, number>
  const violations: string[] = []
  const violate = (check: CheckName, message: string) => {
    counts[check]++
    if (violations.length < SIM_VIOLATIONS_KEPT_MAX) violations.push(`${check}: ${message}`)
  }
  let lost = 0
  let duplicated = 0
  let unexpected = 0
  let ackedLost = 0

  // Index the log.
  const byId = new Map<string, StoredEntry[]>()
  const byEntity = new Map<string, StoredEntry[]>()
  const correctionsOf = new Map<string, StoredEntry[]>()
  let logEntries = 0
  checkOffsets(log.partitions, (message) => violate('offsets', message))
  for (const entries of log.partitions) {
    for (const e of entries) {
      logEntries++
      push(byId, e.id, e)
      push(byEntity, `${e.tenant}\u0000${e.entity}`, e)
      if (e.clientId === SERVER_CLIENT_ID && e.corrects !== undefined)
        push(correctionsOf, e.corrects, e)
    }
  }
  for (const [key, entries] of byEntity) {
    entries.forEach((e, i) => {
      if (e.version !== i + 1) violate('versions', `${key} has version ${e.version} at ${i + 1}`)
    })
  }
  const refusedById = new Map<string, AckResult>()
  for (const d of log.decided) {
    if (d.result.status === 'refused') {
      if (refusedById.has(d.entry.id)) {
        duplicated++
        violate('exactly-once', `${d.entry.id} refused twice`)
      }
      refusedById.set(d.entry.id, d.result)
    }
  }

  // 1. exactly-once, against what clients committed.
  for (const [id, { entry }] of history.committed) {
    const inLog = byId.get(id) ?? []
    const refused = refusedById.get(id)
    if (inLog.length === 0 && refused === undefined) {
      lost++
      violate('exactly-once', `lost ${id} (${entry.kind} on ${entry.entity})`)
    }
    if (inLog.length > 1) {
      duplicated += inLog.length - 1
      violate('exactly-once', `${id} is in the log ${inLog.length} times`)
    }
    if (inLog.length > 0 && refused !== undefined) {
      duplicated++
      violate('exactly-once', `${id} is both appended and refused`)
    }
    for (const stored of inLog) {
      if (entryFingerprint(stored) !== entryFingerprint(entry)) {
        unexpected++
        violate('exactly-once', `${id} in the log differs from what its client committed`)
      }
    }
    if (refused !== undefined && entry.intent === 'fact') {
      violate(
        'exactly-once',
        `fact ${id} was refused: ${refused.status === 'refused' ? refused.code : ''}`,
      )
    }
  }
  for (const [id, entries] of byId) {
    const first = entries[0] as StoredEntry
    if (first.clientId !== SERVER_CLIENT_ID && !history.committed.has(id)) {
      unexpected += entries.length
      violate('exactly-once', `${id} is in the log but no client committed it`)
    }
  }
  for (const id of refusedById.keys()) {
    if (!history.committed.has(id)) {
      unexpected++
      violate('exactly-once', `${id} was refused but no client committed it`)
    }
  }
  for (const id of history.reused) violate('exactly-once', `clientSeq of ${id} was reused`)

  // 4, 5. Per client: decided in clientSeq order; stamps increase.
  const decidedSeqs = new Map<string, number[]>()
  for (const d of log.decided) push(decidedSeqs, d.entry.clientId, d.entry.clientSeq)
  for (const [clientId, seqs] of decidedSeqs) {
    seqs.forEach((seq, i) => {
      if (seq !== i + 1)
        violate('client-order', `${clientId} decided seq ${seq} as number ${i + 1}`)
    })
  }
  const ownByClient = new Map<string, Entry[]>()
  for (const { entry } of history.committed.values()) push(ownByClient, entry.clientId, entry)
  for (const [clientId, entries] of ownByClient) {
    entries.sort((a, b) => a.clientSeq - b.clientSeq)
    for (let i = 1; i < entries.length; i++) {
      if ((entries[i] as Entry).hlc <= (entries[i - 1] as Entry).hlc) {
        violate(
          'hlc',
          `${clientId} stamp of seq ${(entries[i] as Entry).clientSeq} does not increase`,
        )
      }
    }
  }

  // 6. Acks agree with the final log.
  for (const { client, result } of history.acks) {
    if (result.status === 'id_conflict' || result.status === 'deferred') continue
    if (result.status === 'refused') {
      if (result.code === 'seq_gap' || result.code === 'forbidden') continue
      const recorded = refusedById.get(result.id)
      if (
        recorded === undefined ||
        recorded.status !== 'refused' ||
        recorded.code !== result.code
      ) {
        violate(
          'acks',
          `${client} was told ${result.id} was refused (${result.code}); the log disagrees`,
        )
      }
      continue
    }
    // The model relay is head office: it never answers `stored` (a store hub's result).
    if (result.status === 'stored') continue
    const stored = (byId.get(result.id) ?? []).find(
      (e) => e.partition === result.partition && e.offset === result.offset,
    )
    if (stored === undefined || stored.version !== result.version) {
      ackedLost++
      violate(
        'acks',
        `${client} was acked ${result.id} at ${result.partition}/${result.offset}; not there`,
      )
    }
  }

  // 8, 9. Corrections and requests, folding each entity's ledger as the log decided it.
  let offendingFacts = 0
  let corrections = 0
  let requests = 0
  let requestsRefused = 0
  const folded = checkCorrections(
    schema,
    byEntity.values(),
    correctionsOf,
    (id) => byId.has(id),
    (message) => violate('corrections', message),
  )
  offendingFacts = folded.offendingFacts
  corrections = folded.corrections
  const clientOf = new Map(clients.map((c) => [c.name, c]))
  for (const [id, { client, entry }] of history.committed) {
    if (entry.intent !== 'request') continue
    requests++
    const refused = refusedById.get(id)
    if (refused !== undefined) requestsRefused++
    if (input.skipConvergence === true) continue
    const decision = clientOf.get(client)?.db.decisions.get(id)
    const serverSays =
      refused !== undefined ? 'refused' : (byId.get(id)?.length ?? 0) > 0 ? 'appended' : 'none'
    const clientSays =
      decision === undefined ? 'none' : decision.status === 'refused' ? 'refused' : 'appended'
    if (serverSays !== clientSays) {
      violate('requests', `${id}: the server says ${serverSays}, ${client} stored ${clientSays}`)
    }
  }

  // 7. Convergence.
  if (input.skipConvergence !== true) {
    const heads = log.partitions.map((entries) => entries.length)
    for (const c of clients) {
      if (c.db.outbox.size > 0)
        violate('convergence', `${c.name} still has ${c.db.outbox.size} in its outbox`)
      if (c.db.cursors.join(',') !== heads.join(',')) {
        violate(
          'convergence',
          `${c.name} cursors ${c.db.cursors.join(',')} are not the heads ${heads.join(',')}`,
        )
      }
      for (const [key, entries] of byEntity) {
        const entity = key.slice(key.indexOf('\u0000') + 1)
        if (!key.startsWith(`${tenant}\u0000`)) continue
        const mine = c.db.confirmed.get(entity)
        const ids = entries.map((e) => e.id).join(',')
        const mineIds =
          mine === undefined
            ? ''
            : [...mine.keys()]
                .sort((a, b) => a - b)
                .map((v) => mine.get(v)?.id)
                .join(',')
        if (ids !== mineIds) {
          violate(
            'convergence',
            `${c.name} confirmed ledger of ${entity} differs from the server's`,
          )
          continue
        }
        const type = schema.find(entity)
        if (type === undefined) continue
        let serverState = type.initial
        for (const e of entries) serverState = type.reduce(serverState, e)
        if (stable(c.confirmedOf(entity).state) !== stable(serverState)) {
          violate('convergence', `${c.name} confirmed state of ${entity} differs from the server's`)
        }
      }
    }
  }

  const ok = Object.values(counts).every((n) => n === 0) && lost + duplicated + unexpected === 0
  return {
    lost,
    duplicated,
    unexpected,
    ackedLost,
    counts,
    violations,
    ok,
    figures: {
      committed: history.committed.size,
      logEntries,
      corrections,
      offendingFacts,
      requests,
      requestsRefused,
    },
  }
}

/**
 * The offsets check over a log (invariant 2): per partition, offsets 1..n in order, each entry
 * in the partition it says and in `partitionOf`'s. Shared by both simulations.
 *
 * @example
 * checkOffsets(log.partitions, (message) => report(message))
 */
export function checkOffsets(
  partitions: readonly (readonly StoredEntry[])[],
  violate: (message: string) => void,
): void {
  partitions.forEach((entries, p) => {
    entries.forEach((e, i) => {
      if (e.offset !== i + 1) violate(`partition ${p} has offset ${e.offset} at ${i + 1}`)
      if (e.partition !== p) violate(`${e.id} says partition ${e.partition}, is in ${p}`)
      if (partitionOf(e.tenant, e.entity, partitions.length) !== p) {
        violate(`${e.id} is in partition ${p}, not partitionOf's`)
      }
    })
  })
}

/**
 * The corrections check over a log (invariant 8): each entity's ledger is folded as the log
 * decided it, and each fact that broke an invariant must be followed by exactly the corrections
 * `decide()` derives for it (sized as the log sizes them); every correction must name an entry
 * of the log. Shared by the model and the product simulations.
 *
 * @example
 * const { offendingFacts } = checkCorrections(schema, ledgers, correctionsOf, has, report)
 */
export function checkCorrections(
  schema: Schema,
  ledgers: Iterable<readonly StoredEntry[]>,
  correctionsOf: ReadonlyMap<string, readonly StoredEntry[]>,
  has: (id: string) => boolean,
  violate: (message: string) => void,
): { corrections: number; offendingFacts: number } {
  let corrections = 0
  let offendingFacts = 0
  for (const entries of ledgers) {
    const first = entries[0]
    const type = first === undefined ? undefined : schema.find(first.entity)
    if (type === undefined) continue
    let state = type.initial
    for (const e of entries) {
      if (e.clientId === SERVER_CLIENT_ID) {
        corrections++
        state = type.reduce(state, e)
        continue
      }
      const expected =
        e.intent === 'fact' && checkInvariants(type, type.reduce(state, e)).length > 0
          ? decide(schema, { state, version: e.version - 1 }, e, e.committedAt, {
              checkCorrection: checkCorrectionSize,
            })
          : undefined
      const want =
        expected !== undefined && expected._tag === 'append'
          ? expected.corrections.map((c) => c.id)
          : []
      if (want.length > 0) offendingFacts++
      const got = (correctionsOf.get(e.id) ?? []).map((c) => c.id)
      if (want.join(',') !== got.join(',')) {
        violate(`${e.id} should have corrections [${want.join(', ')}], has [${got.join(', ')}]`)
      }
      state = type.reduce(state, e)
    }
  }
  for (const id of correctionsOf.keys()) {
    if (!has(id)) violate(`a correction names ${id}, which is not in the log`)
  }
  return { corrections, offendingFacts }
}

/** JSON with sorted keys: equal plain data gives equal text whatever the key order. */
export function stable(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v instanceof Uint8Array) return Array.from(v)
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      const o = v as Record<string, unknown>
      return Object.fromEntries(
        Object.keys(o)
          .sort()
          .map((k) => [k, o[k]]),
      )
    }
    return v
  })
}

/**
 * An entry's content as its client made it (the design's digest input), as one string.
 *
 * @example
 * entryFingerprint(a) === entryFingerprint(b) // same content, whatever the key order
 */
export function entryFingerprint(e: Entry): string {
  return stable({
    id: e.id,
    tenant: e.tenant,
    entity: e.entity,
    kind: e.kind,
    data: e.data,
    intent: e.intent,
    expect: e.expect,
    corrects: e.corrects,
    clientId: e.clientId,
    clientSeq: e.clientSeq,
    hlc: e.hlc,
    occurredAt: e.occurredAt,
  })
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key)
  if (list === undefined) map.set(key, [value])
  else list.push(value)
}

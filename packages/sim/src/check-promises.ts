/**
 * The promise checks of a product simulation: every op the app was promised reaches the log
 * exactly once, and every entry id means one content. Ops are followed by their tag, since ids
 * change when a restored device re-sends.
 *
 * Terms as in `history.ts`. An op is *in the log* when an entry carrying its tag is; *lost*
 * when it resolved and is neither in the log nor refused; *duplicated* when it is in the log
 * more than once. An *open finding* is a loss or duplicate of `FINDINGS.md` (a till's disk
 * restore and the log's restore in one run): counted and described, not a violation.
 *
 * Invariants (named checks of `check-tally.ts`):
 * 1. `exactly-once`: every resolved op reaches the log exactly once (a request: once appended,
 *    or refused once), with the content the app asked for; a fact is never refused; an op that
 *    never resolved (the till died, `append` threw), or that a restored disk forgot before it
 *    was sent, is in the log at most once; nothing is in the log that no till made (the
 *    impostor's entries under a till's clientId are refused `client_taken`: never in it, but
 *    for a clientId a log restore unbound, under which the log then holds none of a till's).
 * 2. `ids`: no entry id names two contents: the log's entry under an id is the content of every
 *    promise made under it (and of something someone made), but for promises moved to another
 *    id, ops of the open findings, and refusals a log restore forgot whose id the impostor
 *    filled (finding C).
 * 3. An op of an open finding is counted once, in `known`, and in `openOps` so that the later
 *    checks do not count it again.
 */
import type { ClientStatus, Outcome } from '@ledgerline/client'
import type { Violate } from './check-tally.ts'
import { businessKey, contentKey, opOf } from './content.ts'
import type { OpRecord, SimHistory } from './history.ts'
import type { LogIndex } from './log-index.ts'

export interface PromiseCheckInput {
  readonly history: SimHistory
  readonly index: LogIndex
  /** Each till's name and its client's status at the end (`TillFinal` of `checkers.ts`). */
  readonly tills: readonly { readonly name: string; readonly status: ClientStatus | undefined }[]
  /** `outcome()` of every till's resolved entries, by entry id. */
  readonly outcomeOf: ReadonlyMap<string, Outcome>
  readonly drained: boolean
  readonly violate: Violate
}

export interface PromiseCheckResult {
  readonly lost: number
  readonly undelivered: number
  readonly duplicated: number
  readonly unexpected: number
  readonly resolved: number
  readonly requests: number
  readonly requestsRefused: number
  /** Ops of the open findings (invariant 3). */
  readonly openOps: ReadonlySet<string>
  /** What each open finding hit, one line per op. */
  readonly known: readonly string[]
}

/** The id the log decided an op under: the last it was pushed under (reissues move it). */
export function decidedId(history: SimHistory, record: OpRecord): string {
  return history.pushedAs.get(record.op) ?? (record.entry as { id: string }).id
}

/**
 * Checks invariants 1 and 2.
 *
 * @example
 * const promises = checkPromises({ history, index, tills, outcomeOf, drained, violate })
 * if (promises.lost > 0) console.log(promises.known)
 */
export function checkPromises(input: PromiseCheckInput): PromiseCheckResult {
  const { history, tills, outcomeOf, drained, violate } = input
  const { byId, byOp, refusedById } = input.index
  let lost = 0
  let undelivered = 0
  let duplicated = 0
  let unexpected = 0

  // 1. exactly-once, by op tag (ids change when a restored device re-sends).
  const idToOp = new Map<string, string>()
  for (const record of history.ops.values()) {
    if (record.entry !== undefined) idToOp.set(record.entry.id, record.op)
  }
  const known: string[] = []
  /** Ops of the open findings: the later checks do not count them again. */
  const openOps = new Set<string>()
  /**
   * A disk restore of `till`, put back after the log's restore, from a copy that still knew the
   * log before it: taken before the restore, or before the till heard from the new log (no ack
   * between the log's restore and the copy).
   */
  const restoredAcrossLogRestore = (till: string): boolean => {
    const logAt = history.logRestoredAt
    if (logAt === undefined) return false
    return history.diskRestores.some(
      (d) =>
        d.till === till &&
        d.at > logAt &&
        !history.acks.some((a) => a.till === till && a.at >= logAt && a.at <= d.copiedAt),
    )
  }
  /**
   * Acked before the log was last put back to an older copy, and never pushed again after it:
   * the client did not put it back. It puts back every entry of its current clientId it holds
   * (`client-store-plans.ts` invariant 7), so this is an entry of an older one.
   */
  const lostWithOlderClientId = (record: OpRecord): boolean => {
    const restoredAt = history.logRestoredAt
    if (restoredAt === undefined) return false
    if ((history.pushedAt.get(record.op) ?? 0) >= restoredAt) return false
    const id = decidedId(history, record)
    // Only an entry of a clientId its till has left (a till parked on its own is not this).
    const current = tills.find((t) => t.name === record.till)?.status?.clientId
    if (current === undefined || id.startsWith(`${current}-`)) return false
    return history.acks.some(
      (a) =>
        a.result.id === id &&
        a.at < restoredAt &&
        (a.result.status === 'appended' || a.result.status === 'duplicate'),
    )
  }
  let resolved = 0
  let requests = 0
  let requestsRefused = 0
  for (const record of history.ops.values()) {
    const inLog = byOp.get(record.op) ?? []
    const refusedCode =
      record.entry === undefined ? undefined : refusedById.get(decidedId(history, record))
    const finalOutcome = record.entry === undefined ? undefined : outcomeOf.get(record.entry.id)
    const refused =
      refusedCode !== undefined || (finalOutcome?._tag === 'refused' && inLog.length === 0)
    for (const e of inLog) {
      if (businessKey(e) !== record.business) {
        unexpected++
        violate('exactly-once', `${record.op} is in the log as ${e.id} with other content`)
      }
    }
    if (inLog.length > 1 && restoredAcrossLogRestore(record.till)) {
      // Open finding (FINDINGS.md): the till's disk went back to a copy taken before the log
      // was restored, so it recovers the same entries again, numbered otherwise: the derived id
      // meets `id_conflict` and the entries go again under yet another id. Counted, not hidden.
      openOps.add(record.op)
      known.push(
        `${record.op} is in the log ${inLog.length} times (${inLog.map((e) => e.id).join(', ')}): its disk was put back to a copy older than the log restore`,
      )
    } else if (inLog.length > 1) {
      duplicated += inLog.length - 1
      violate(
        'exactly-once',
        `${record.op} (${record.kind} on ${record.entity}) is in the log ${inLog.length} times: ${inLog.map((e) => e.id).join(', ')}`,
      )
    }
    // A sale made on a disk later put back to an older copy, and not sent before, is gone with
    // that disk: the restore destroyed it, not the product. It may still be in the log once.
    if (record.outcome !== 'resolved' || record.forgotten === true) continue
    resolved++
    if (record.intent === 'request') {
      requests++
      if (refused) requestsRefused++
    }
    if (inLog.length === 0 && !refused) {
      if (!drained && (finalOutcome === undefined || finalOutcome._tag === 'outbox')) {
        // Still on its way (or not read back): the run did not drain, liveness says why.
        undelivered++
        continue
      }
      if (lostWithOlderClientId(record)) {
        // Open finding (FINDINGS.md): acked under a clientId the till no longer uses, then the
        // log went back to a copy without it; the welcome names only the current clientId's
        // high-water mark, so the client cannot know what to put back. Counted, not hidden.
        openOps.add(record.op)
        known.push(
          `lost ${record.op} (${record.kind} on ${record.entity}, ${decidedId(history, record)}) to the log restore: acked under an older clientId, never put back`,
        )
        continue
      }
      lost++
      violate(
        'exactly-once',
        `lost ${record.op} (${record.kind} on ${record.entity}, ${record.entry?.id}); outcome ${finalOutcome?._tag ?? 'none'}`,
      )
    }
    if (inLog.length > 0 && refused) {
      duplicated++
      violate('exactly-once', `${record.op} is both in the log and refused`)
    }
    const target = record.entry?.corrects
    const targetOp = target === undefined ? undefined : idToOp.get(target)
    if (refused && record.intent === 'fact' && targetOp !== undefined && openOps.has(targetOp)) {
      // A void of a sale the open finding lost: the log rightly refuses a correction of an
      // entry it does not hold. Counted with the finding.
      openOps.add(record.op)
      known.push(`fact ${record.op} refused: it corrects ${targetOp}, lost to the log restore`)
    } else if (refused && record.intent === 'fact') {
      violate(
        'exactly-once',
        `fact ${record.op} (${record.kind} on ${record.entity}) was refused: ${refusedCode ?? (finalOutcome as { code?: string } | undefined)?.code ?? '?'}`,
      )
    }
  }
  /** ClientIds the log holds an entry of some till under. */
  const tillClientIds = new Set<string>()
  for (const [op, entries] of byOp) {
    if (history.ops.has(op)) for (const e of entries) tillClientIds.add(e.clientId)
  }
  for (const [op, entries] of byOp) {
    if (
      history.impostorOps.has(op) &&
      history.logRestoredAt !== undefined &&
      entries.every((e) => !tillClientIds.has(e.clientId))
    ) {
      // Finding C: the log went back to a copy older than the till's first push under that
      // clientId, so it no longer bound it; the impostor, who learned it from the newer log,
      // bound it first (the oracle checked that decision) and the till moved to a new clientId.
      // Under that clientId the log holds the impostor's entries only: nobody's promise moved.
      continue
    }
    if (history.impostorOps.has(op)) {
      // Protocol 2 binds a clientId to its first subject: another one's entries never land.
      unexpected += entries.length
      violate('exactly-once', `the impostor's ${op} is in the log as ${entries[0]?.id}`)
      continue
    }
    if (history.ops.has(op)) continue
    unexpected += entries.length
    violate('exactly-once', `${op} is in the log (${entries[0]?.id}) but no one made it`)
  }

  // 2. ids: the log's entry under an id is the one every promise under that id meant. Another
  // content made under it is a violation when it was promised (resolved, not forgotten with a
  // restored disk): the log answered it with someone else's entry.
  for (const [id, made] of history.made) {
    const stored = byId.get(id)
    if (stored === undefined) continue
    const key = contentKey(stored)
    if (!made.some((m) => m.key === key)) {
      // Restore recovery renumbers entries onto a derived clientId, so an id an app promise
      // once had (on a disk since put back to an older copy) may hold a moved sale: that is
      // the sale's own content, found by its op tag (exactly-once checks it there).
      const op = opOf(stored)
      const record = op === undefined ? undefined : history.ops.get(op)
      if (record !== undefined && record.business === businessKey(stored)) continue
      violate('ids', `the log holds ${id} with content none of its makers gave it`)
      continue
    }
    const holder = made.find((m) => m.key === key) as (typeof made)[number]
    for (const m of made) {
      if (m.key === key || m.op === undefined) continue
      const record = history.ops.get(m.op)
      if (record === undefined || record.outcome !== 'resolved' || record.forgotten === true)
        continue
      // Counted once, with its open finding (invariant 3).
      if (openOps.has(m.op)) continue
      // A refusal of a log since put back to an older copy: the restored log forgot the id,
      // and a subject that bound the forgotten clientId (finding C) filled it. The till keeps
      // its `refused` outcome (`requests` accepts that); nothing of it is in the log.
      const forgottenRefusal = history.acks.some(
        (a) =>
          a.result.id === id &&
          a.result.status === 'refused' &&
          history.logRestoredAt !== undefined &&
          a.at < history.logRestoredAt,
      )
      if (forgottenRefusal && holder.by === 'impostor') continue
      // Protocol 2: the log answered `id_conflict` and the client moved the entry to a new id
      // (`outcome(id)` is `reissued`): the log never took it for the other content.
      if (record.entry !== undefined && decidedId(history, record) !== record.entry.id) continue
      violate(
        'ids',
        `${id} names two contents: the log holds ${holder.op ?? holder.by}'s, ${m.by} promised ${m.op} under it`,
      )
    }
  }
  return {
    lost,
    undelivered,
    duplicated,
    unexpected,
    resolved,
    requests,
    requestsRefused,
    openOps,
    known,
  }
}

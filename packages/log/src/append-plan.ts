/**
 * THE write decision of the server log, without IO: given what the log holds (through
 * synchronous lookups), it decides every item of a group of `append` calls and returns the
 * results and the rows to write. Every store uses it and decides nothing itself: SQLite's
 * lookups are its prepared statements (which never miss), PostgreSQL's are maps preloaded inside
 * the transaction (which may miss, see below), the memory store's are its maps. The vocabulary
 * is in `plan-types.ts`, one entry's decision in `plan-decide.ts`, the results in
 * `plan-results.ts`.
 *
 * Terms: a *call* is one `append(tenant, items, pusher)`; a *group* is the calls decided
 * together in one transaction; the *overlay* is what the group changed so far (entity heads,
 * client records, partition heads, decided ids), seen by the later items of the group. A
 * *record* (`Recorded`) is what the log holds under an id: an entry, a refusal or a deferral,
 * with the digest of the client entry it was made for.
 *
 *   per item:  server entry?  ── recorded before? ─► original result ── else ─► decide
 *              client entry:  bound to another subject ─► client_taken (not recorded)
 *                             clientSeq ≤ high ─► record's digest differs ─► id_conflict
 *                                             ─► entry / refusal ─► original result
 *                                             ─► deferral ─► decide again
 *                                             ─► nothing recorded ─► same origin? duplicate
 *                                                                   ─► else id_conflict
 *                             clientSeq ≠ high+1 ─► refused seq_gap (not recorded)
 *                             relay refused it  ─► refusal recorded (head 0)
 *                             a copy of its origin in the log ─► duplicate (clientSeq used up,
 *                                                                nothing recorded)
 *                             else decide() ─► refuse (recorded) | defer (recorded)
 *                                          | append entry + corrections
 *
 * Invariants (2 and 9 are in `plan-types.ts`, 5 and 11 in `plan-decide.ts`, 8 and 10 in
 * `plan-results.ts`; the lookups of 12 and 13 are in `plan-origins.ts`):
 * 1. Pure given the lookups: the same lookups, group and `committedAt` give the same plan, so a
 *    store may throw a plan away and make it again (after loading more, or after a retry).
 *    Nothing the lookups returned is mutated (heads are copied).
 * 3. Versions are the entity head + 1, offsets the partition head + 1, in the order the items
 *    and their corrections are decided; so they are dense and gap-free if the heads were read
 *    under the store's write lock.
 * 4. Decisions follow `log-store.ts`: seq_gap, id_conflict and client_taken are not recorded; a
 *    relay's refusal, a refused request and a deferral are recorded and use up the clientSeq;
 *    a duplicate gets the original result, also when the original is earlier in the same group;
 *    a deferral (or a refusal `unknown_type` of an older Ledgerline) is decided again.
 * 5. The states the plan carries forward (`heads`) are the folds `decide()` made of the entry
 *    and its corrections, in every ledger they touch (see `plan-decide.ts`).
 * 6. Every client item is compared and recorded by its digest (`entryDigest`, once per item of
 *    a plan, or taken from `context.digestOf`); entries made by a log are compared by id alone
 *    (their digest is `null`).
 * 7. A clientId is bound to the subject of the first call that records something under it, in
 *    the plan's `clients`; a call without a pusher binds nothing and may correct anything.
 * 12. An entry with an `origin` (moved by restore recovery) whose origin the log holds already,
 *    as the origin itself or as another entry carrying it, with the same `recoveryDigest`, of a
 *    clientId bound to the pusher's subject (or unbound), is a `duplicate` of the first such
 *    entry in commit order: it uses up its clientSeq (the high-water mark moves) and records
 *    nothing, so a resend finds nothing under its id and asks the origin again (same answer). A
 *    clientSeq at or below the mark with nothing recorded was used so; another entry under it
 *    is an `id_conflict`. An entry without an origin is looked up by its own id the same way:
 *    it may be the original of a moved copy that landed first (a copy of the database made
 *    before the move and restored after it), and lands no second time either.
 * 13. A client's `corrects` naming an id nothing is recorded under names what `originals` finds
 *    for that id: a moved copy the log answered `duplicate` (12) keeps its id with the origins
 *    (`Plan.aliases`), so a correction moved with it, or appended after the move by its new id,
 *    corrects the first landing; a `corrects` naming a first id the log never took corrects the
 *    first moved copy that landed. Only entries of the pusher's subject (or of no one) are
 *    found, the first in commit order. The stored entry keeps `corrects` as sent (its digest).
 */
import {
  entryDigest,
  matchesAny,
  partitionOf,
  sameDigest,
  SERVER_CLIENT_ID,
} from '@ledgerline/core'
import type { CorrectsCheck, Decision, DeferralCode, Entry, StoredEntry } from '@ledgerline/core'
import { subjectFor } from './log-store.ts'
import type { AppendItem, AppendResult, ClientRecord, Pusher } from './log-store.ts'
import { decideEntry } from './plan-decide.ts'
import { namedThroughOrigins, sameOrigin, type OriginView } from './plan-origins.ts'
import {
  correctionRef,
  deferredOf,
  duplicateOf,
  isLegacyDeferral,
  resultOf,
  visible,
} from './plan-results.ts'
import type {
  AppendedResult,
  Plan,
  PlanCall,
  PlanContext,
  PlanHeadState,
  PlannedAlias,
  PlannedDeferral,
  PlannedEntry,
  PlannedRefusal,
  Recorded,
  RefusalCode,
  RefusedResult,
} from './plan-types.ts'
import { joinKey, PlanMiss } from './plan-types.ts'

/**
 * Decides a group of calls against `context.lookups`.
 *
 * @example
 * const plan = planGroup({ schema, partitions: 16, committedAt: Date.now(), lookups }, calls)
 * // plan.entries → insert; plan.results[i] → resolve call i after the commit
 */
export function planGroup(context: PlanContext, calls: readonly PlanCall[]): Plan {
  const planner = new Planner(context)
  const results = calls.map((call) =>
    call.items.map((item) => planner.item(call.tenant, item, call.pusher)),
  )
  return {
    results,
    entries: planner.entries,
    refusals: planner.refusals,
    deferrals: planner.deferrals,
    aliases: planner.aliases,
    clients: planner.clients,
    recorded: planner.recorded,
    partitionHeads: planner.partitionHeads,
    heads: planner.heads,
    touched: [...planner.partitionHeads.keys()].sort((a, b) => a - b),
  }
}

function idConflict(id: string): AppendResult {
  return {
    id,
    status: 'id_conflict',
    reason: `the log holds another entry under ${id}; send this one under a new clientId`,
  }
}

// ---------------------------------------------------------------------------------------------

class Planner {
  readonly entries: PlannedEntry[] = []
  readonly refusals: PlannedRefusal[] = []
  readonly deferrals: PlannedDeferral[] = []
  readonly aliases: PlannedAlias[] = []
  /** This group's aliases (invariant 13), by `joinKey(tenant, copy id)`. */
  readonly #aliased = new Map<string, AppendedResult>()
  readonly clients = new Map<string, ClientRecord>()
  readonly recorded = new Map<string, Recorded>()
  readonly partitionHeads = new Map<number, number>()
  readonly heads = new Map<string, PlanHeadState>()
  readonly #context: PlanContext

  /** What the origin lookups of invariants 12 and 13 see of this group. */
  readonly #origins: OriginView

  constructor(context: PlanContext) {
    this.#context = context
    this.#origins = {
      context,
      entries: this.entries,
      aliased: (tenant, id) => this.#aliased.get(joinKey(tenant, id)),
      previous: (tenant, id) => this.#previous(tenant, id),
      client: (tenant, clientId) => this.#client(tenant, clientId, joinKey(tenant, clientId)),
    }
  }

  item(tenant: string, item: AppendItem, pusher: Pusher | undefined): AppendResult {
    const entry = item.entry
    if (entry.clientId === SERVER_CLIENT_ID) return this.#serverEntry(tenant, item, pusher)
    const key = joinKey(tenant, entry.clientId)
    const client = this.#client(tenant, entry.clientId, key)
    const subject = pusher === undefined ? undefined : subjectFor(pusher, entry.clientId)
    if (subject !== undefined && client.subject !== null && client.subject !== subject) {
      return {
        id: entry.id,
        status: 'client_taken',
        reason: `clientId ${entry.clientId} belongs to another token subject of this tenant`,
      }
    }
    const digest = this.#context.digestOf?.(entry) ?? entryDigest(entry, this.#context.hash)
    if (entry.clientSeq <= client.high) {
      const previous = this.#previous(tenant, entry.id)
      if (previous === null) {
        // Invariant 12: the clientSeq went to a copy of an entry the log holds.
        const same = this.#sameOrigin(tenant, entry, pusher)
        if (same !== undefined) return { ...duplicateOf(same, pusher), id: entry.id }
        return idConflict(entry.id)
      }
      if (
        this.#context.ignoreDigests !== true &&
        previous.digest !== null &&
        !sameDigest(previous.digest, digest)
      ) {
        return idConflict(entry.id)
      }
      if (previous._tag === 'entry') return duplicateOf(previous.result, pusher)
      if (previous._tag === 'refusal' && !isLegacyDeferral(previous)) return previous.result
      // Not decided yet: decide again from scratch (guarantee 10 of `log-store.ts`).
      if (client.subject === null && subject !== undefined) {
        this.clients.set(key, { high: client.high, subject })
      }
      return this.#decideClient(tenant, item, pusher, digest, true)
    }
    if (entry.clientSeq !== client.high + 1) {
      // Not recorded: the client resends in order. Head 0: seq_gap is not a decision.
      return {
        id: entry.id,
        status: 'refused',
        code: 'seq_gap',
        reason: `clientSeq ${entry.clientSeq} but the log holds up to ${client.high}; resend from ${client.high + 1}`,
        head: 0,
      }
    }
    this.clients.set(key, {
      high: entry.clientSeq,
      subject: client.subject ?? subject ?? null,
    })
    return this.#decideClient(tenant, item, pusher, digest, false)
  }

  /** Entries made by a server log (forwarded corrections, snapshots): dedupe by id, no clientSeq. */
  #serverEntry(tenant: string, item: AppendItem, pusher: Pusher | undefined): AppendResult {
    const entry = item.entry
    const previous = this.#previous(tenant, entry.id)
    if (previous?._tag === 'entry') return duplicateOf(previous.result, pusher)
    if (previous?._tag === 'refusal') return previous.result
    if (item.refuse !== undefined) {
      return {
        id: entry.id,
        status: 'refused',
        code: item.refuse.code,
        reason: item.refuse.reason,
        head: 0,
      }
    }
    const { head, decision } = this.#decide(tenant, entry, pusher)
    if (decision._tag === 'refuse') {
      return this.#refuse(tenant, entry.id, decision.code, decision.reason, head.version, null)
    }
    // An entry of a log has no clientSeq to use up: a deferral of it is not recorded.
    if (decision._tag === 'defer') return deferredOf(entry.id, decision)
    return this.#append(tenant, entry, decision, head, null, pusher)
  }

  /** A client entry whose clientSeq is used up (new, or a deferral resent). */
  #decideClient(
    tenant: string,
    item: AppendItem,
    pusher: Pusher | undefined,
    digest: Uint8Array,
    resent: boolean,
  ): AppendResult {
    const entry = item.entry
    if (item.refuse !== undefined) {
      // Head 0: the entity is outside the client's grants, so its version is not told.
      return this.#refuse(tenant, entry.id, item.refuse.code, item.refuse.reason, 0, digest)
    }
    // Invariant 12: an entry the log holds a moved copy of (or the original) lands once.
    const same = this.#sameOrigin(tenant, entry, pusher)
    if (same !== undefined) {
      // Invariant 13: a moved copy's id names the landing from now on. An original without an
      // origin is found by the landing's own origin already.
      if (entry.origin !== undefined && entry.origin !== entry.id) {
        const target = { id: same.id, partition: same.partition, offset: same.offset }
        this.aliases.push({ tenant, id: entry.id, target })
        this.#aliased.set(joinKey(tenant, entry.id), same)
      }
      // The copy's own id: an ack result answers the item it is for.
      return { ...duplicateOf(same, pusher), id: entry.id }
    }
    const { head, decision } = this.#decide(tenant, entry, pusher)
    switch (decision._tag) {
      case 'refuse':
        return this.#refuse(tenant, entry.id, decision.code, decision.reason, head.version, digest)
      case 'defer':
        // A resent deferral is recorded already (or is an old `unknown_type` refusal).
        if (!resent) this.#defer(tenant, entry.id, decision.code, decision.reason, digest)
        return deferredOf(entry.id, decision)
      case 'append':
        return this.#append(tenant, entry, decision, head, digest, pusher)
    }
  }

  #decide(
    tenant: string,
    entry: Entry,
    pusher: Pusher | undefined,
  ): { head: PlanHeadState; decision: Decision } {
    const head = this.#head(tenant, entry.entity)
    const decision = decideEntry(this.#context, head, entry, {
      stateOf: (entity) => this.#head(tenant, entity).state,
      checkCorrects: (id) => this.#checkCorrects(tenant, id, pusher, entry.clientId),
    })
    return { head, decision }
  }

  /**
   * A client's `corrects` must name an entry of the log (same tenant) whose entity the pusher
   * may write. One reason for both failures: a client learns nothing of entries it may not see.
   */
  #checkCorrects(
    tenant: string,
    id: string,
    pusher: Pusher | undefined,
    clientId: string,
  ): CorrectsCheck {
    const named =
      this.#previous(tenant, id) ?? this.#namedThroughOrigins(tenant, id, pusher, clientId)
    if (named !== null && (named._tag === 'deferral' || isLegacyDeferral(named))) {
      const code = named._tag === 'deferral' ? named.code : 'unknown_type'
      return { _tag: 'defer', code, reason: `corrects names ${id}, which is not decided yet` }
    }
    if (
      named === null ||
      named._tag !== 'entry' ||
      (pusher !== undefined && !matchesAny(pusher.grants.write, named.entity))
    ) {
      return {
        _tag: 'refuse',
        reason: `corrects must name an entry of the log this client may write; ${id} is not one`,
      }
    }
    return { _tag: 'ok' }
  }

  #append(
    tenant: string,
    entry: Entry,
    decision: Extract<Decision, { _tag: 'append' }>,
    head: PlanHeadState,
    digest: Uint8Array | null,
    pusher: Pusher | undefined,
  ): AppendResult {
    const schema = this.#context.schema
    const stored = this.#write(tenant, entry, head, digest)
    const corrections: StoredEntry[] = []
    for (const correction of decision.corrections) {
      const target =
        correction.entity === entry.entity ? head : this.#head(tenant, correction.entity)
      corrections.push(this.#write(tenant, correction, target, null))
    }
    // Invariant 5: `decide` folded the entry and every correction, in every ledger they touch.
    if (schema !== undefined) head.state = decision.state
    for (const [entity, state] of decision.others) this.#head(tenant, entity).state = state
    const result: AppendedResult = {
      id: entry.id,
      status: 'appended',
      version: stored.version,
      partition: stored.partition,
      offset: stored.offset,
      committedAt: stored.committedAt,
      corrections: corrections.map(correctionRef),
    }
    this.#record(tenant, entry.id, { _tag: 'entry', entity: entry.entity, digest, result })
    for (const c of corrections) {
      this.#record(tenant, c.id, {
        _tag: 'entry',
        entity: c.entity,
        digest: null,
        result: resultOf(c),
      })
    }
    return visible(result, pusher)
  }

  #write(
    tenant: string,
    entry: Entry,
    head: PlanHeadState,
    digest: Uint8Array | null,
  ): StoredEntry {
    const partition = partitionOf(tenant, entry.entity, this.#context.partitions)
    let last = this.partitionHeads.get(partition)
    if (last === undefined) {
      last = this.#context.lookups.partitionHead(partition)
      if (last === undefined) throw new PlanMiss({ kind: 'partition', partition })
    }
    const offset = last + 1
    const version = head.version + 1
    // The entry's own fields without `undefined` ones (a stored entry reads back with the keys
    // it was sent with), then its positions. A plain loop: this runs once per appended entry.
    const source = entry as unknown as Record<string, unknown>
    const out: Record<string, unknown> = {}
    for (const key of Object.keys(source)) {
      const value = source[key]
      if (value !== undefined) out[key] = value
    }
    out.version = version
    out.partition = partition
    out.offset = offset
    out.committedAt = this.#context.committedAt
    const stored = out as unknown as StoredEntry
    this.entries.push({ tenant, stored, source: entry, digest })
    this.partitionHeads.set(partition, offset)
    head.version = version
    head.offset = offset
    return stored
  }

  #refuse(
    tenant: string,
    id: string,
    code: RefusalCode,
    reason: string,
    head: number,
    digest: Uint8Array | null,
  ): RefusedResult {
    this.refusals.push({ tenant, id, code, reason, head, digest })
    const result: RefusedResult = { id, status: 'refused', code, reason, head }
    this.#record(tenant, id, { _tag: 'refusal', digest, result })
    return result
  }

  #defer(tenant: string, id: string, code: DeferralCode, reason: string, digest: Uint8Array) {
    this.deferrals.push({ tenant, id, code, reason, digest })
    this.#record(tenant, id, { _tag: 'deferral', digest, code })
  }

  /** Invariant 12 (`plan-origins.ts`). */
  #sameOrigin(
    tenant: string,
    entry: Entry,
    pusher: Pusher | undefined,
  ): AppendedResult | undefined {
    return sameOrigin(this.#origins, tenant, entry, pusher)
  }

  /** Invariant 13 (`plan-origins.ts`). */
  #namedThroughOrigins(
    tenant: string,
    id: string,
    pusher: Pusher | undefined,
    clientId: string,
  ): Recorded | null {
    return namedThroughOrigins(this.#origins, tenant, id, pusher, clientId)
  }

  #record(tenant: string, id: string, record: Recorded): void {
    this.recorded.set(joinKey(tenant, id), record)
  }

  /** What is recorded under an id, in this group or before it (guarantee 5). */
  #previous(tenant: string, id: string): Recorded | null {
    const key = joinKey(tenant, id)
    const inGroup = this.recorded.get(key)
    if (inGroup !== undefined) return inGroup
    const found = this.#context.lookups.previous(tenant, id)
    if (found === undefined) throw new PlanMiss({ kind: 'previous', tenant, id })
    return found
  }

  #client(tenant: string, clientId: string, key: string): ClientRecord {
    const inGroup = this.clients.get(key)
    if (inGroup !== undefined) return inGroup
    const found = this.#context.lookups.client(tenant, clientId)
    if (found === undefined) throw new PlanMiss({ kind: 'client', tenant, clientId })
    return found
  }

  #head(tenant: string, entity: string): PlanHeadState {
    const key = joinKey(tenant, entity)
    const inGroup = this.heads.get(key)
    if (inGroup !== undefined) return inGroup
    const loaded = this.#context.lookups.entityHead(tenant, entity)
    if (loaded === undefined) {
      throw new PlanMiss({
        kind: 'entity',
        tenant,
        entity,
        partition: partitionOf(tenant, entity, this.#context.partitions),
      })
    }
    // A copy: the plan may be thrown away, and the lookups must not see its changes.
    const head: PlanHeadState = {
      version: loaded.version,
      offset: loaded.offset,
      state: loaded.state,
    }
    this.heads.set(key, head)
    return head
  }
}

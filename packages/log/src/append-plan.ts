/**
 * THE write decision of the server log, without IO: given what the log holds (through
 * synchronous lookups), it decides every item of a group of `append` calls and returns the
 * results and the rows to write. Every store uses it and decides nothing itself: SQLite's
 * lookups are its prepared statements (which never miss), PostgreSQL's are maps preloaded inside
 * the transaction (which may miss, see below), the memory store's are its maps.
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
 *                             clientSeq ≠ high+1 ─► refused seq_gap (not recorded)
 *                             relay refused it  ─► refusal recorded (head 0)
 *                             else decide() ─► refuse (recorded) | defer (recorded)
 *                                          | append entry + corrections
 *
 * Invariants:
 * 1. Pure given the lookups: the same lookups, group and `committedAt` give the same plan, so a
 *    store may throw a plan away and make it again (after loading more, or after a retry).
 * 2. A lookup that answers `undefined` has not been loaded: planning stops with `PlanMiss`
 *    naming what is needed. Nothing the lookups returned is mutated (heads are copied).
 * 3. Versions are the entity head + 1, offsets the partition head + 1, in the order the items
 *    and their corrections are decided; so they are dense and gap-free if the heads were read
 *    under the store's write lock.
 * 4. Decisions follow `log-store.ts`: seq_gap, id_conflict and client_taken are not recorded; a
 *    relay's refusal, a refused request and a deferral are recorded and use up the clientSeq;
 *    a duplicate gets the original result, also when the original is earlier in the same group;
 *    a deferral (or a refusal `unknown_type` of an older Ledgerline) is decided again.
 * 5. Corrections are sized like entries (encoded data at most `ENTRY_DATA_BYTES_MAX`) and
 *    folded into every ledger they touch by `decide()` before they are planned; the states the
 *    plan carries forward (`heads`) are those folds, so no stored ledger holds an entry its own
 *    type cannot fold.
 * 6. Every client item is compared and recorded by its digest (`entryDigest`, once per item of
 *    a plan, or taken from `context.digestOf`); entries made by a log are compared by id alone
 *    (their digest is `null`).
 * 7. A clientId is bound to the subject of the first call that records something under it, in
 *    the plan's `clients`; a call without a pusher binds nothing and may correct anything.
 * 8. Results list corrections as references, only those the call's pusher may read; records
 *    keep every one, so each pusher of a resend gets its own view.
 */
import {
  clockAhead,
  correctsDecision,
  decide,
  entryDigest,
  matchesAny,
  partitionOf,
  sameDigest,
  SERVER_CLIENT_ID,
} from '@ledgerline/core'
import type {
  CorrectsCheck,
  Decision,
  DeferralCode,
  Entry,
  Hash,
  Schema,
  StoredEntry,
} from '@ledgerline/core'
import type { AckResult, CorrectionRef } from '@ledgerline/protocol'
import { ENTRY_DATA_BYTES_MAX, entryDataBytes } from '@ledgerline/protocol'
import type { AppendItem, AppendResult, ClientRecord, Pusher } from './log-store.ts'

export type RefusedResult = Extract<AckResult, { status: 'refused' }>
export type RefusalCode = RefusedResult['code']
export type AppendedResult = Extract<AckResult, { status: 'appended' | 'duplicate' }>
export type DeferredResult = Extract<AckResult, { status: 'deferred' }>

/** What the log holds under an id (see the header); `digest` is `null` for entries of a log. */
export type Recorded =
  | {
      readonly _tag: 'entry'
      readonly entity: string
      readonly digest: Uint8Array | null
      /** As appended: every one of the log's own corrections of it (`isLogCorrection`). */
      readonly result: AppendedResult
    }
  | {
      readonly _tag: 'refusal'
      readonly digest: Uint8Array | null
      /** `code` may be `unknown_type` in a log of an older Ledgerline (read as a deferral). */
      readonly result: RefusedResult
    }
  | { readonly _tag: 'deferral'; readonly digest: Uint8Array | null; readonly code: DeferralCode }

/** An entity's head as the planner needs it. */
export interface PlanHead {
  readonly version: number
  readonly offset: number
  /** Folded state; only read when the schema has a type for the entity (else `null`). */
  readonly state: unknown
}

/** What the log holds, read synchronously. `undefined` means "not loaded" (see invariant 2). */
export interface PlanLookups {
  /** `{ high: 0, subject: null }` for a clientId the log never saw. */
  client(tenant: string, clientId: string): ClientRecord | undefined
  /**
   * What was recorded under an id (an entry, else a refusal, else a deferral), `null` when
   * nothing was.
   */
  previous(tenant: string, id: string): Recorded | null | undefined
  /** With `state` folded when the schema has a type for the entity. */
  entityHead(tenant: string, entity: string): PlanHead | undefined
  partitionHead(partition: number): number | undefined
}

export type PlanNeed =
  | { readonly kind: 'client'; readonly tenant: string; readonly clientId: string }
  | { readonly kind: 'previous'; readonly tenant: string; readonly id: string }
  | {
      readonly kind: 'entity'
      readonly tenant: string
      readonly entity: string
      readonly partition: number
    }
  | { readonly kind: 'partition'; readonly partition: number }

/** Thrown by `planGroup` when a lookup has not been loaded; load `need` and plan again. */
export class PlanMiss extends Error {
  readonly need: PlanNeed
  constructor(need: PlanNeed) {
    super(`plan needs ${need.kind}`)
    this.name = 'PlanMiss'
    this.need = need
  }
}

export interface PlanCall {
  readonly tenant: string
  readonly items: readonly AppendItem[]
  /** Who the call acts for; `undefined` for the log's own calls (invariant 7). */
  readonly pusher?: Pusher | undefined
}

export interface PlannedEntry {
  readonly tenant: string
  readonly stored: StoredEntry
  /**
   * The entry as handed to the planner (an item's entry, or a correction made by `decide`), so a
   * store can use an encoding of it made before planning (the PostgreSQL store encodes bodies
   * before it takes its locks).
   */
  readonly source: Entry
  /** The client entry's digest; `null` for entries made by a log. */
  readonly digest: Uint8Array | null
}

export interface PlannedRefusal {
  readonly tenant: string
  readonly id: string
  readonly code: RefusalCode
  readonly reason: string
  readonly head: number
  readonly digest: Uint8Array | null
}

export interface PlannedDeferral {
  readonly tenant: string
  readonly id: string
  readonly code: DeferralCode
  readonly reason: string
  readonly digest: Uint8Array
}

export interface Plan {
  /** One result list per call, in call order. */
  readonly results: AppendResult[][]
  /** Entries to insert, in the order they were decided. */
  readonly entries: PlannedEntry[]
  readonly refusals: PlannedRefusal[]
  readonly deferrals: PlannedDeferral[]
  /**
   * New client records, keyed by `joinKey(tenant, clientId)`: a store keeps the higher `high`
   * and the first `subject` that is not `null` (invariant 7).
   */
  readonly clients: Map<string, ClientRecord>
  /** New records by `joinKey(tenant, id)`, for stores that keep records as the planner does. */
  readonly recorded: Map<string, Recorded>
  /** New partition heads (only partitions written). */
  readonly partitionHeads: Map<number, number>
  /** Entity heads after the group (states folded), keyed by `joinKey(tenant, entity)`. */
  readonly heads: Map<string, PlanHeadState>
  /** Partitions written, ascending. */
  readonly touched: number[]
}

export interface PlanHeadState {
  version: number
  offset: number
  state: unknown
}

export interface PlanContext {
  readonly schema: Schema | undefined
  readonly partitions: number
  readonly committedAt: number
  readonly lookups: PlanLookups
  /** SHA-256 for digests (invariant 6); core's when not given. */
  readonly hash?: Hash | undefined
  /**
   * The digest of an item's entry when the store computed it before planning (PostgreSQL does,
   * outside its locks); `undefined` to let the planner compute it.
   */
  readonly digestOf?: ((entry: Entry) => Uint8Array | undefined) | undefined
  /**
   * Test-only: the planted bug `ignoreDigests` (dedupe by id alone, as protocol 1 did), so the
   * deterministic simulation proves its checkers see a dedupe that ignores content. Production
   * never sets it.
   */
  readonly ignoreDigests?: boolean | undefined
}

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
    clients: planner.clients,
    recorded: planner.recorded,
    partitionHeads: planner.partitionHeads,
    heads: planner.heads,
    touched: [...planner.partitionHeads.keys()].sort((a, b) => a - b),
  }
}

/**
 * The log's check of a correction before it is planned (invariant 5): its data must fit an
 * entry, or no reader could ever decode the page that holds it.
 *
 * @example
 * checkCorrectionSize(correction) // true, or 'stock.oversold data is 70000 bytes encoded, …'
 */
export function checkCorrectionSize(correction: Entry): true | string {
  const bytes = entryDataBytes(correction.data)
  if (bytes <= ENTRY_DATA_BYTES_MAX) return true
  return `${correction.kind} data is ${bytes} bytes encoded, over ENTRY_DATA_BYTES_MAX (${ENTRY_DATA_BYTES_MAX})`
}

/**
 * The result a stored entry was appended with when nothing corrects it (a correction's own).
 *
 * @example
 * resultOf(correction) // { id, status: 'appended', version, partition, offset, committedAt, corrections: [] }
 */
export function resultOf(stored: StoredEntry): AppendedResult {
  return {
    id: stored.id,
    status: 'appended',
    version: stored.version,
    partition: stored.partition,
    offset: stored.offset,
    committedAt: stored.committedAt,
    corrections: [],
  }
}

/**
 * Where a correction landed, as an ack names it (the body travels on the subscription).
 *
 * @example
 * correctionRef(stored) // { id, entity, kind, version, partition, offset }
 */
export function correctionRef(stored: StoredEntry): CorrectionRef {
  return {
    id: stored.id,
    entity: stored.entity,
    kind: stored.kind,
    version: stored.version,
    partition: stored.partition,
    offset: stored.offset,
  }
}

/** Tenants, client ids, entity names and entry ids contain no NUL. */
export function joinKey(a: string, b: string): string {
  return `${a}\u0000${b}`
}

export function splitKey(key: string): [string, string] {
  const i = key.indexOf('\u0000')
  return [key.slice(0, i), key.slice(i + 1)]
}

// ---------------------------------------------------------------------------------------------

class Planner {
  readonly entries: PlannedEntry[] = []
  readonly refusals: PlannedRefusal[] = []
  readonly deferrals: PlannedDeferral[] = []
  readonly clients = new Map<string, ClientRecord>()
  readonly recorded = new Map<string, Recorded>()
  readonly partitionHeads = new Map<number, number>()
  readonly heads = new Map<string, PlanHeadState>()
  readonly #context: PlanContext

  constructor(context: PlanContext) {
    this.#context = context
  }

  item(tenant: string, item: AppendItem, pusher: Pusher | undefined): AppendResult {
    const entry = item.entry
    if (entry.clientId === SERVER_CLIENT_ID) return this.#serverEntry(tenant, item, pusher)
    const key = joinKey(tenant, entry.clientId)
    const client = this.#client(tenant, entry.clientId, key)
    if (pusher !== undefined && client.subject !== null && client.subject !== pusher.subject) {
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
        // The high-water mark covers this clientSeq, yet nothing was recorded: the log is damaged.
        throw new Error(
          `Ledgerline bug: entry ${entry.id} is below its client's high-water mark but unknown`,
        )
      }
      if (
        this.#context.ignoreDigests !== true &&
        previous.digest !== null &&
        !sameDigest(previous.digest, digest)
      ) {
        return {
          id: entry.id,
          status: 'id_conflict',
          reason: `the log holds another entry under ${entry.id}; send this one under a new clientId`,
        }
      }
      if (previous._tag === 'entry') return duplicateOf(previous.result, pusher)
      if (previous._tag === 'refusal' && !isLegacyDeferral(previous)) return previous.result
      // Not decided yet: decide again from scratch (guarantee 10 of `log-store.ts`).
      if (client.subject === null && pusher !== undefined) {
        this.clients.set(key, { high: client.high, subject: pusher.subject })
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
      subject: client.subject ?? pusher?.subject ?? null,
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
    const schema = this.#context.schema
    const head = this.#head(tenant, entry.entity)
    const checkCorrects = (id: string) => this.#checkCorrects(tenant, id, pusher)
    const decision =
      schema === undefined
        ? decidePlain(head.version, entry, this.#context.committedAt, checkCorrects)
        : decide(
            schema,
            { state: head.state, version: head.version },
            entry,
            this.#context.committedAt,
            {
              stateOf: (entity) => this.#head(tenant, entity).state,
              checkCorrection: checkCorrectionSize,
              checkCorrects,
            },
          )
    return { head, decision }
  }

  /**
   * A client's `corrects` must name an entry of the log (same tenant) whose entity the pusher
   * may write. One reason for both failures: a client learns nothing of entries it may not see.
   */
  #checkCorrects(tenant: string, id: string, pusher: Pusher | undefined): CorrectsCheck {
    const named = this.#previous(tenant, id)
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

/** A refusal `unknown_type`, recorded before the log deferred unknown types (invariant 4). */
function isLegacyDeferral(record: Recorded): boolean {
  return record._tag === 'refusal' && (record.result.code as string) === 'unknown_type'
}

function duplicateOf(result: AppendedResult, pusher: Pusher | undefined): AppendedResult {
  return visible({ ...result, status: 'duplicate' }, pusher)
}

/** Invariant 8: the corrections the pusher may read. */
function visible(result: AppendedResult, pusher: Pusher | undefined): AppendedResult {
  if (pusher === undefined || result.corrections.length === 0) return result
  const read = pusher.grants.read
  const shown = result.corrections.filter((c) => matchesAny(read, c.entity))
  return shown.length === result.corrections.length ? result : { ...result, corrections: shown }
}

function deferredOf(id: string, decision: Extract<Decision, { _tag: 'defer' }>): DeferredResult {
  return {
    id,
    status: 'deferred',
    code: decision.code,
    reason: decision.reason,
    retryAfterMs: decision.retryAfterMs,
  }
}

/**
 * `decide()` of a plain log (no schema), without its input checks: entries reach the log
 * already validated (`AppendItem`), and on the hot path of a plain log re-validating every entry
 * was the largest cost after the storage itself. The outcome is the one `decide(undefined, …)`
 * gives.
 */
function decidePlain(
  version: number,
  entry: Entry,
  now: number,
  checkCorrects: (id: string) => CorrectsCheck,
): Decision {
  const ahead = clockAhead(entry, now)
  if (ahead !== undefined) return ahead
  if (entry.corrects !== undefined) {
    const corrects = correctsDecision(entry, { checkCorrects })
    if (corrects !== undefined) return corrects
  }
  if (entry.intent === 'request' && entry.expect !== undefined && entry.expect !== version) {
    return {
      _tag: 'refuse',
      code: 'conflict',
      reason: `expected version ${entry.expect}, entity is at ${version}`,
    }
  }
  return PLAIN_APPEND
}

const PLAIN_APPEND: Decision = {
  _tag: 'append',
  state: null,
  corrections: [],
  broken: [],
  others: new Map(),
}

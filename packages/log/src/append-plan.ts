/**
 * THE write decision of the server log, without IO: given what the log holds (through
 * synchronous lookups), it decides every item of a group of `append` calls and returns the
 * results and the rows to write. Every store uses it and decides nothing itself: SQLite's
 * lookups are its prepared statements (which never miss), PostgreSQL's are maps preloaded inside
 * the transaction (which may miss, see below), the memory store's are its maps.
 *
 * Terms: a *call* is one `append(tenant, items)`; a *group* is the calls decided together in
 * one transaction; the *overlay* is what the group changed so far (entity heads, client
 * high-water marks, partition heads, decided ids), seen by the later items of the group.
 *
 *   per item:  server entry?  ── decided before? ─► original result ── else ─► decide
 *              client entry:  clientSeq ≤ high  ─► original result
 *                             clientSeq ≠ high+1 ─► refused seq_gap (not recorded)
 *                             relay refused it  ─► refusal recorded (head 0)
 *                             else decide() ─► refuse (recorded) | append entry + corrections
 *
 * Invariants:
 * 1. Pure given the lookups: the same lookups, group and `committedAt` give the same plan, so a
 *    store may throw a plan away and make it again (after loading more, or after a retry).
 * 2. A lookup that answers `undefined` has not been loaded: planning stops with `PlanMiss`
 *    naming what is needed. Nothing the lookups returned is mutated (heads are copied).
 * 3. Versions are the entity head + 1, offsets the partition head + 1, in the order the items
 *    and their corrections are decided; so they are dense and gap-free if the heads were read
 *    under the store's write lock.
 * 4. Decisions follow `log-store.ts`: seq_gap is not recorded; a relay's refusal and a refused
 *    request are recorded and use up the clientSeq; a duplicate gets the original result, also
 *    when the original is earlier in the same group.
 * 5. Corrections are sized like entries (encoded data at most `ENTRY_DATA_BYTES_MAX`) and
 *    folded into every ledger they touch by `decide()` before they are planned; the states the
 *    plan carries forward (`heads`) are those folds, so no stored ledger holds an entry its own
 *    type cannot fold.
 */
import { decide, partitionOf, SERVER_CLIENT_ID } from '@ledgerline/core'
import type { Decision, Entry, Schema, StoredEntry } from '@ledgerline/core'
import type { AckResult } from '@ledgerline/protocol'
import { ENTRY_DATA_BYTES_MAX, entryDataBytes } from '@ledgerline/protocol'
import type { AppendItem } from './log-store.ts'

export type RefusedResult = Extract<AckResult, { status: 'refused' }>
export type RefusalCode = RefusedResult['code']

/** An entity's head as the planner needs it. */
export interface PlanHead {
  readonly version: number
  readonly offset: number
  /** Folded state; only read when the schema has a type for the entity (else `null`). */
  readonly state: unknown
}

/** What the log holds, read synchronously. `undefined` means "not loaded" (see invariant 2). */
export interface PlanLookups {
  clientHigh(tenant: string, clientId: string): number | undefined
  /** The original result of an id decided before, `null` when it never was. */
  previous(tenant: string, id: string): AckResult | null | undefined
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
}

export interface PlannedRefusal {
  readonly tenant: string
  readonly id: string
  readonly code: RefusalCode
  readonly reason: string
  readonly head: number
}

export interface Plan {
  /** One result list per call, in call order. */
  readonly results: AckResult[][]
  /** Entries to insert, in the order they were decided. */
  readonly entries: PlannedEntry[]
  readonly refusals: PlannedRefusal[]
  /** New high-water marks, keyed by `joinKey(tenant, clientId)`. */
  readonly clients: Map<string, number>
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
  const results = calls.map((call) => call.items.map((item) => planner.item(call.tenant, item)))
  return {
    results,
    entries: planner.entries,
    refusals: planner.refusals,
    clients: planner.clients,
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
export function resultOf(stored: StoredEntry): AckResult {
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
  readonly clients = new Map<string, number>()
  readonly partitionHeads = new Map<number, number>()
  readonly heads = new Map<string, PlanHeadState>()
  /** Results decided in this group, by `joinKey(tenant, id)`, for duplicates within it. */
  readonly #decided = new Map<string, AckResult>()
  readonly #context: PlanContext

  constructor(context: PlanContext) {
    this.#context = context
  }

  item(tenant: string, item: AppendItem): AckResult {
    const entry = item.entry
    if (entry.clientId === SERVER_CLIENT_ID) return this.#serverEntry(tenant, item)
    const clientKey = joinKey(tenant, entry.clientId)
    let high = this.clients.get(clientKey)
    if (high === undefined) {
      high = this.#context.lookups.clientHigh(tenant, entry.clientId)
      if (high === undefined)
        throw new PlanMiss({ kind: 'client', tenant, clientId: entry.clientId })
    }
    if (entry.clientSeq <= high) return this.#previous(tenant, entry.id, true)
    if (entry.clientSeq !== high + 1) {
      // Not recorded: the client resends in order. Head 0: seq_gap is not a decision.
      return {
        id: entry.id,
        status: 'refused',
        code: 'seq_gap',
        reason: `clientSeq ${entry.clientSeq} but the log holds up to ${high}; resend from ${high + 1}`,
        head: 0,
      }
    }
    this.clients.set(clientKey, entry.clientSeq)
    if (item.refuse !== undefined) {
      // Head 0: the entity is outside the client's grants, so its version is not told.
      return this.#refuse(tenant, entry.id, item.refuse.code, item.refuse.reason, 0)
    }
    return this.#decideAndWrite(tenant, entry)
  }

  /** Entries made by a server log (forwarded corrections): dedupe by id, no clientSeq. */
  #serverEntry(tenant: string, item: AppendItem): AckResult {
    const entry = item.entry
    const previous = this.#previous(tenant, entry.id, false)
    if (previous !== null) return previous
    if (item.refuse !== undefined) {
      return {
        id: entry.id,
        status: 'refused',
        code: item.refuse.code,
        reason: item.refuse.reason,
        head: 0,
      }
    }
    return this.#decideAndWrite(tenant, entry)
  }

  #decideAndWrite(tenant: string, entry: Entry): AckResult {
    const schema = this.#context.schema
    const head = this.#head(tenant, entry.entity)
    const decision =
      schema === undefined
        ? decidePlain(head.version, entry)
        : decide(
            schema,
            { state: head.state, version: head.version },
            entry,
            this.#context.committedAt,
            {
              stateOf: (entity) => this.#head(tenant, entity).state,
              checkCorrection: checkCorrectionSize,
            },
          )
    if (decision._tag === 'refuse') {
      // edges-base: protocol 2 defers unknown_type; b1-log replaces this with a deferral.
      const code = decision.code === 'unknown_type' ? 'invalid' : decision.code
      return this.#refuse(tenant, entry.id, code, decision.reason, head.version)
    }
    const stored = this.#write(tenant, entry, head)
    const corrections: StoredEntry[] = []
    for (const correction of decision.corrections) {
      const target =
        correction.entity === entry.entity ? head : this.#head(tenant, correction.entity)
      corrections.push(this.#write(tenant, correction, target))
    }
    // Invariant 5: `decide` folded the entry and every correction, in every ledger they touch.
    if (schema !== undefined) head.state = decision.state
    for (const [entity, state] of decision.others) this.#head(tenant, entity).state = state
    const result: AckResult = {
      id: entry.id,
      status: 'appended',
      version: stored.version,
      partition: stored.partition,
      offset: stored.offset,
      committedAt: stored.committedAt,
      corrections,
    }
    this.#decided.set(joinKey(tenant, entry.id), result)
    for (const c of corrections) this.#decided.set(joinKey(tenant, c.id), resultOf(c))
    return result
  }

  #write(tenant: string, entry: Entry, head: PlanHeadState): StoredEntry {
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
    this.entries.push({ tenant, stored, source: entry })
    this.partitionHeads.set(partition, offset)
    head.version = version
    head.offset = offset
    return stored
  }

  #refuse(tenant: string, id: string, code: RefusalCode, reason: string, head: number): AckResult {
    this.refusals.push({ tenant, id, code, reason, head })
    const result: RefusedResult = { id, status: 'refused', code, reason, head }
    this.#decided.set(joinKey(tenant, id), result)
    return result
  }

  /** The original result of an id decided before (guarantee 5), or null when it never was. */
  #previous(tenant: string, id: string, mustExist: true): AckResult
  #previous(tenant: string, id: string, mustExist: false): AckResult | null
  #previous(tenant: string, id: string, mustExist: boolean): AckResult | null {
    const inGroup = this.#decided.get(joinKey(tenant, id))
    const found = inGroup !== undefined ? inGroup : this.#context.lookups.previous(tenant, id)
    if (found === undefined) throw new PlanMiss({ kind: 'previous', tenant, id })
    if (found === null) {
      if (!mustExist) return null
      // The high-water mark covers this clientSeq, yet nothing was recorded: the log is damaged.
      throw new Error(
        `Ledgerline bug: entry ${id} is below its client's high-water mark but unknown`,
      )
    }
    return found.status === 'appended' ? { ...found, status: 'duplicate' } : found
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

/**
 * `decide()` of a plain log (no schema), without its input checks: entries reach the log
 * already validated (`AppendItem`), and on the hot path of a plain log re-validating every entry
 * was the largest cost after the storage itself. The outcome is the one `decide(undefined, …)`
 * gives.
 */
function decidePlain(version: number, entry: Entry): Decision {
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

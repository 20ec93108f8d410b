/**
 * The planner's vocabulary: what it reads of the log (`PlanLookups`, `Recorded`), what it is
 * given (`PlanCall`, `PlanContext`) and what it returns (`Plan`), plus the keys every store
 * uses for its maps. The decisions themselves are in `append-plan.ts`.
 *
 * Terms as in `append-plan.ts`: a *record* (`Recorded`) is what the log holds under an id (an
 * entry, a refusal or a deferral) with the digest of the client entry it was made for; a
 * *lookup* reads what the log holds, synchronously.
 *
 * Invariants (numbered as in `append-plan.ts`):
 * 2. A lookup that answers `undefined` has not been loaded: planning stops with `PlanMiss`
 *    naming what is needed (`PlanNeed`), and the store loads it and plans again. A lookup that
 *    answers "nothing there" says so (`null`, `{ high: 0, subject: null }`).
 * 9. A key (`joinKey`) joins two names with NUL, which no tenant, clientId, entity name or entry
 *    id contains, so `splitKey` gives both back.
 */
import type { DeferralCode, Entry, Hash, Schema, StoredEntry } from '@ledgerline/core'
import type { AckResult } from '@ledgerline/protocol'
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

/**
 * A client entry the operator dropped from the hot log (retention, `log-retention.ts`) as the
 * log keeps it for the decision of a moved copy: no body, only what a copy is compared by.
 */
export interface DroppedOriginal {
  readonly _tag: 'dropped'
  readonly id: string
  readonly clientId: string
  /** `recoveryDigest` of the entry, taken from its body when it was dropped. */
  readonly recovery: Uint8Array
}

/** What `originals` finds: an entry of the log, or what is kept of a dropped one. */
export type Original = StoredEntry | DroppedOriginal

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
   * nothing was. An entry the operator dropped (retention) is still an `entry` record, with
   * its digest and original result (`log-retention.ts` invariant 5).
   */
  previous(tenant: string, id: string): Recorded | null | undefined
  /**
   * The log's client entries that are `origin` itself or carry it as their `origin`, in commit
   * order (`[]` when none): what a moved entry may be a copy of (`append-plan.ts` invariant 12).
   * A dropped one is a `DroppedOriginal` (`log-retention.ts` invariant 5).
   */
  originals(tenant: string, origin: string): readonly Original[] | undefined
  /** With `state` folded when the schema has a type for the entity. */
  entityHead(tenant: string, entity: string): PlanHead | undefined
  partitionHead(partition: number): number | undefined
}

export type PlanNeed =
  | { readonly kind: 'client'; readonly tenant: string; readonly clientId: string }
  | { readonly kind: 'previous'; readonly tenant: string; readonly id: string }
  | { readonly kind: 'origin'; readonly tenant: string; readonly origin: string }
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

/**
 * A copy answered `duplicate` by origin (`append-plan.ts` invariant 12) names its first landing
 * under its own id from then on: a store keeps it with the origins, so `originals(tenant, id)`
 * answers the landing (invariant 13).
 */
export interface PlannedAlias {
  readonly tenant: string
  /** The copy's id: nothing is recorded under it. */
  readonly id: string
  /** The first landing of its content. */
  readonly target: { readonly id: string; readonly partition: number; readonly offset: number }
}

export interface Plan {
  /** One result list per call, in call order. */
  readonly results: AppendResult[][]
  /** Entries to insert, in the order they were decided. */
  readonly entries: PlannedEntry[]
  readonly refusals: PlannedRefusal[]
  readonly deferrals: PlannedDeferral[]
  /** Copies answered `duplicate` by origin, to keep with the origins (invariant 13). */
  readonly aliases: PlannedAlias[]
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

/** Tenants, client ids, entity names and entry ids contain no NUL. */
export function joinKey(a: string, b: string): string {
  return `${a}\u0000${b}`
}

export function splitKey(key: string): [string, string] {
  const i = key.indexOf('\u0000')
  return [key.slice(0, i), key.slice(i + 1)]
}

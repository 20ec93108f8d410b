/**
 * The origin lookups of the write decision (`append-plan.ts` invariants 12 and 13), apart from
 * the planner so each reads in one sitting: which entry of the log a moved copy is a copy of,
 * and what a `corrects` naming an id with nothing recorded under it names. Pure given the
 * planner's view of the group (`OriginView`); a lookup the store has not loaded throws
 * `PlanMiss`, as every lookup of the planner does.
 *
 * Invariants:
 * 1. Never another subject's entry: a candidate of a clientId bound to another subject than the
 *    one the asking entry acts for is passed over (its answer would tell its positions, or that
 *    it exists). A store hub's forwarded entry acts for its register's subject (`subjectFor`),
 *    not the hub's.
 * 2. Entries made by a log (`SERVER_CLIENT_ID`) are never copies of anything.
 * 3. Every client entry of a group asks (an original may arrive after its moved copy), so the
 *    group's own entries are found through an index by id and by origin, built as the group
 *    grows (each planned entry indexed once), never by scanning the group per entry.
 * 4. An entry the operator dropped (retention) is compared by the `recoveryDigest` the log kept
 *    of it (`DroppedOriginal`), so a moved copy of a dropped sale is still its `duplicate`.
 */
import { recoveryDigest, sameDigest, SERVER_CLIENT_ID } from '@ledgerline/core'
import type { Entry, StoredEntry } from '@ledgerline/core'
import { subjectFor } from './log-store.ts'
import type { ClientRecord, Pusher } from './log-store.ts'
import type { AppendedResult, Original, PlanContext, PlannedEntry, Recorded } from './plan-types.ts'
import { joinKey, PlanMiss } from './plan-types.ts'

/** What the origin lookups see of the planner: its context, this group so far, its lookups. */
export interface OriginView {
  readonly context: PlanContext
  /** The group's planned entries so far. */
  readonly entries: readonly PlannedEntry[]
  /** This group's alias of a copy's id (invariant 13 of `append-plan.ts`). */
  aliased(tenant: string, id: string): AppendedResult | undefined
  /** What is recorded under an id, in this group or before it. */
  previous(tenant: string, id: string): Recorded | null
  /** A client's record, in this group or before it. */
  client(tenant: string, clientId: string): ClientRecord
}

/**
 * The result of the entry of the log that `entry` is a copy of (invariant 12), or `undefined`:
 * its origin (its own id when it has none) itself or another entry carrying that origin,
 * decided earlier or in this group, with the same content apart from numbering.
 */
export function sameOrigin(
  view: OriginView,
  tenant: string,
  entry: Entry,
  pusher: Pusher | undefined,
): AppendedResult | undefined {
  // An entry that was never moved may still arrive after a moved copy of it landed (a copy
  // of the database restored after the move): its own id is the origin to look for.
  const origin = entry.origin ?? entry.id
  const found = view.context.lookups.originals(tenant, origin)
  if (found === undefined) throw new PlanMiss({ kind: 'origin', tenant, origin })
  // This group's own entries too, through an index (every client entry asks: invariant 3).
  const inGroup: readonly Original[] = groupEntries(view, tenant, origin).filter(
    (e) => e.id !== entry.id,
  )
  const want = recoveryDigest(entry, view.context.hash)
  const subject = pusher === undefined ? undefined : subjectFor(pusher, entry.clientId)
  let first: AppendedResult | undefined
  for (const candidate of [...found, ...inGroup]) {
    if (candidate.clientId === SERVER_CLIENT_ID || candidate.id === entry.id) continue
    const owner = view.client(tenant, candidate.clientId)
    // Never another subject's entry: the answer would tell its positions.
    if (subject !== undefined && owner.subject !== null && owner.subject !== subject) continue
    if (!sameDigest(recoveryOf(candidate, view), want)) continue
    const record = view.previous(tenant, candidate.id)
    if (record?._tag !== 'entry') continue
    // The first landing in commit order: copies of one content share an entity, so a
    // partition, where offsets are commit order (every store answers the same one).
    if (first === undefined || record.result.offset < first.offset) first = record.result
  }
  return first
}

/**
 * Invariant 13: what a `corrects` naming `id`, with nothing recorded under it, names: this
 * group's alias of a copy, else the first entry of the log `originals` finds for `id` (an
 * alias kept by the store, or a moved copy carrying `id` as origin), else `null`. `clientId` is
 * the correcting entry's (whose subject it acts for, invariant 1).
 */
export function namedThroughOrigins(
  view: OriginView,
  tenant: string,
  id: string,
  pusher: Pusher | undefined,
  clientId: string,
): Recorded | null {
  const aliased = view.aliased(tenant, id)
  if (aliased !== undefined) return view.previous(tenant, aliased.id)
  const found = view.context.lookups.originals(tenant, id)
  if (found === undefined) throw new PlanMiss({ kind: 'origin', tenant, origin: id })
  const inGroup: readonly Original[] = groupEntries(view, tenant, id).filter((e) => e.origin === id)
  const subject = pusher === undefined ? undefined : subjectFor(pusher, clientId)
  for (const candidate of [...found, ...inGroup]) {
    if (candidate.clientId === SERVER_CLIENT_ID || candidate.id === id) continue
    const owner = view.client(tenant, candidate.clientId)
    // Never another subject's entry: the answer would tell that it exists.
    if (subject !== undefined && owner.subject !== null && owner.subject !== subject) continue
    const record = view.previous(tenant, candidate.id)
    if (record?._tag === 'entry') return record
  }
  return null
}

/** Invariant 4: a dropped entry's kept digest, else the digest of the entry. */
function recoveryOf(candidate: Original, view: OriginView): Uint8Array {
  if ('_tag' in candidate && candidate._tag === 'dropped') return candidate.recovery
  return recoveryDigest(candidate as StoredEntry, view.context.hash)
}

/** Per group (its `entries` array): client entries by (tenant, id) and (tenant, origin). */
const groupIndexes = new WeakMap<
  readonly PlannedEntry[],
  { indexed: number; readonly byKey: Map<string, StoredEntry[]> }
>()

/**
 * This group's client entries whose id or origin is `key`, in planning order (invariant 3).
 */
function groupEntries(view: OriginView, tenant: string, key: string): readonly StoredEntry[] {
  let index = groupIndexes.get(view.entries)
  if (index === undefined) {
    index = { indexed: 0, byKey: new Map() }
    groupIndexes.set(view.entries, index)
  }
  for (; index.indexed < view.entries.length; index.indexed++) {
    const p = view.entries[index.indexed] as PlannedEntry
    if (p.digest === null) continue
    const keys = new Set([p.stored.id, p.stored.origin])
    for (const k of keys) {
      if (k === undefined) continue
      const at = joinKey(p.tenant, k)
      const list = index.byKey.get(at)
      if (list === undefined) index.byKey.set(at, [p.stored])
      else list.push(p.stored)
    }
  }
  return index.byKey.get(joinKey(tenant, key)) ?? []
}

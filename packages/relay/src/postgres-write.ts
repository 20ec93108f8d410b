/**
 * What one PostgreSQL group transaction writes, without the SQL text (`postgres-sql.ts`) and
 * without decisions (`planGroup` of `@ledgerline/log`): the bodies and digests encoded before
 * any lock is taken, and the one write statement's parameters made from a plan. What a group
 * reads is in `postgres-rows.ts`.
 *
 * Terms: a *body* is an entry without its positions, encoded; the *usual plan* appends every
 * item the relay did not refuse, in order, and nothing else (no corrections), so its columns
 * that do not depend on positions can be made before the plan.
 *
 * Invariants:
 * 1. Bodies hold the entry without its positions (`bodyOf`), MessagePack (`entry-body.ts`).
 * 2. Digests of client items are computed with the bodies, before any lock (`EncodedItems`
 *    hands them to the planner); they travel as hex text, `decode`d by the write statement.
 * 3. The `corrects` column is written for the log's own corrections only (`isLogCorrection`).
 * 4. `writeQuery` gives the same parameters whether it takes the columns made before the locks
 *    (the usual plan) or makes them from the plan (any other).
 */
import type pg from 'pg'
import { digestHex, entryDigest, isLogCorrection, SERVER_CLIENT_ID } from '@ledgerline/core'
import type { Entry, Hash, StoredEntry } from '@ledgerline/core'
import { splitKey } from '@ledgerline/log'
import type { Plan, PlanCall, PlannedEntry } from '@ledgerline/log'
import { encodeEntryBody } from './entry-body.ts'
import { intArray, PG_TYPES, textArray, WRITE_SQL } from './postgres-sql.ts'

/** A group's items encoded before its transaction (see `encodeItems`). */
export interface EncodedItems {
  /** Per item entry: the same bytes as `encodeEntryBody(entryOf(stored))` of what the plan stores. */
  readonly bodies: Map<Entry, Buffer>
  /** Per client item entry, its digest (`PlanContext.digestOf`). */
  readonly digests: Map<Entry, Uint8Array>
  /** The entries of the usual plan: every item the relay did not refuse, in order. */
  readonly sources: Entry[]
  /** That plan's write parameters that do not depend on positions. */
  readonly columns: {
    readonly tenants: string
    readonly ids: string
    readonly entities: string
    readonly corrects: string
    readonly bodies: Buffer
    readonly bodyStarts: string
    readonly bodyLengths: string
    readonly digests: string
  }
}

/**
 * Encodes bodies, digests and the usual plan's columns, so the work is not done under the
 * locks (invariant 2).
 */
export function encodeItems(calls: readonly PlanCall[], hash: Hash): EncodedItems {
  const bodies = new Map<Entry, Buffer>()
  const digestsOf = new Map<Entry, Uint8Array>()
  const sources: Entry[] = []
  const tenants: string[] = []
  const ids: string[] = []
  const entities: string[] = []
  const corrects: (string | null)[] = []
  const blobs: Buffer[] = []
  const bodyStarts: number[] = []
  const bodyLengths: number[] = []
  const digests: (string | null)[] = []
  let bodyBytes = 0
  for (const call of calls) {
    for (const item of call.items) {
      const entry = item.entry
      const isClient = entry.clientId !== SERVER_CLIENT_ID
      // Refused items are recorded with their digest too.
      let digest: Uint8Array | null = null
      if (isClient) {
        digest = digestsOf.get(entry) ?? entryDigest(entry, hash)
        digestsOf.set(entry, digest)
      }
      if (item.refuse !== undefined) continue
      let body = bodies.get(entry)
      if (body === undefined) {
        body = encodeEntryBody(bodyOf(entry))
        bodies.set(entry, body)
      }
      sources.push(entry)
      tenants.push(call.tenant)
      ids.push(entry.id)
      entities.push(entry.entity)
      corrects.push(correctsColumn(entry))
      digests.push(digest === null ? null : digestHex(digest))
      blobs.push(body)
      bodyStarts.push(bodyBytes + 1)
      bodyLengths.push(body.length)
      bodyBytes += body.length
    }
  }
  return {
    bodies,
    digests: digestsOf,
    sources,
    columns: {
      tenants: textArray(tenants),
      ids: textArray(ids),
      entities: textArray(entities),
      corrects: textArray(corrects),
      bodies: Buffer.concat(blobs, bodyBytes),
      bodyStarts: intArray(bodyStarts),
      bodyLengths: intArray(bodyLengths),
      digests: textArray(digests),
    },
  }
}

/** Invariant 3: what the `corrects` column holds for an entry. */
function correctsColumn(entry: Entry): string | null {
  return isLogCorrection(entry) ? (entry.corrects as string) : null
}

function hexOrNull(digest: Uint8Array | null): string | null {
  return digest === null ? null : digestHex(digest)
}

/** `entryOf({ ...withoutUndefined(entry), version, partition, offset, committedAt })`. */
export function bodyOf(entry: Entry): Entry {
  const source = entry as unknown as Record<string, unknown>
  const out: Record<string, unknown> = {}
  for (const key of Object.keys(source)) {
    const value = source[key]
    if (value === undefined || POSITION_KEYS.has(key)) continue
    out[key] = value
  }
  return out as unknown as Entry
}

const POSITION_KEYS = new Set(['version', 'partition', 'offset', 'committedAt'])
/**
 * Every row of the plan and the one NOTIFY (`payload`, empty for none), as one statement.
 */
export function writeQuery(plan: Plan, encoded: EncodedItems, payload: string): pg.QueryConfig {
  const e = plan.entries
  const r = plan.refusals
  const n = e.length
  // The usual plan appends every item, in order, and nothing else: its columns that do not
  // depend on positions were written before the locks were taken.
  let common = n === encoded.sources.length
  for (let i = 0; common && i < n; i++)
    common = (e[i] as PlannedEntry).source === encoded.sources[i]
  const columns = common ? encoded.columns : undefined
  const partitions: number[] = []
  const offsets: number[] = []
  const tenants: string[] = []
  const ids: string[] = []
  const entities: string[] = []
  const versions: number[] = []
  const corrects: (string | null)[] = []
  const committedAts: number[] = []
  const blobs: Buffer[] = []
  const bodyStarts: number[] = []
  const bodyLengths: number[] = []
  const digests: (string | null)[] = []
  let bodyBytes = 0
  for (let i = 0; i < n; i++) {
    const x = e[i] as PlannedEntry
    const s = x.stored
    partitions.push(s.partition)
    offsets.push(s.offset)
    versions.push(s.version)
    committedAts.push(s.committedAt)
    if (columns !== undefined) continue
    tenants.push(x.tenant)
    ids.push(s.id)
    entities.push(s.entity)
    corrects.push(correctsColumn(s))
    digests.push(hexOrNull(x.digest))
    // Corrections are made while planning; items were encoded before the locks.
    const body = encoded.bodies.get(x.source) ?? encodeEntryBody(entryOf(s))
    bodyStarts.push(bodyBytes + 1)
    bodyLengths.push(body.length)
    bodyBytes += body.length
    blobs.push(body)
  }
  const clients = [...plan.clients].map(([key, c]) => [...splitKey(key), c] as const)
  const heads = [...plan.partitionHeads]
  // Entries moved by restore recovery, found by their origin (migration 4).
  const moved = e.filter((x) => x.stored.origin !== undefined)
  // And copies answered duplicate, by their own ids (`append-plan.ts` invariant 13).
  const origins = [
    ...moved.map((x) => [x.tenant, x.stored.origin as string, x.stored.id] as const),
    ...plan.aliases.map((a) => [a.tenant, a.id, a.target.id] as const),
  ]
  const d = plan.deferrals
  return {
    name: 'ledgerline_write_v4',
    text: WRITE_SQL,
    types: PG_TYPES,
    values: [
      intArray(partitions),
      intArray(offsets),
      columns?.tenants ?? textArray(tenants),
      columns?.ids ?? textArray(ids),
      columns?.entities ?? textArray(entities),
      intArray(versions),
      columns?.corrects ?? textArray(corrects),
      intArray(committedAts),
      // The bodies as one binary parameter (no hex text on either side), cut by the statement.
      columns?.bodies ?? Buffer.concat(blobs, bodyBytes),
      textArray(r.map((x) => x.tenant)),
      textArray(r.map((x) => x.id)),
      textArray(r.map((x) => x.code)),
      textArray(r.map((x) => x.reason)),
      intArray(r.map((x) => x.head)),
      textArray(clients.map((c) => c[0])),
      textArray(clients.map((c) => c[1])),
      intArray(clients.map((c) => c[2].high)),
      intArray(heads.map((h) => h[0])),
      intArray(heads.map((h) => h[1])),
      payload,
      columns?.bodyStarts ?? intArray(bodyStarts),
      columns?.bodyLengths ?? intArray(bodyLengths),
      columns?.digests ?? textArray(digests),
      textArray(r.map((x) => hexOrNull(x.digest))),
      textArray(d.map((x) => x.tenant)),
      textArray(d.map((x) => x.id)),
      textArray(d.map((x) => x.code)),
      textArray(d.map((x) => x.reason)),
      textArray(d.map((x) => digestHex(x.digest))),
      textArray(clients.map((c) => c[2].subject)),
      textArray(origins.map((o) => o[0])),
      textArray(origins.map((o) => o[1])),
      textArray(origins.map((o) => o[2])),
    ],
  }
}

/** The entry part of a stored entry: positions live in columns, not in the body. */
export function entryOf(stored: StoredEntry): Entry {
  const { version: _v, partition: _p, offset: _o, committedAt: _c, ...entry } = stored
  return entry
}

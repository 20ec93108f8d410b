/**
 * What one PostgreSQL group transaction reads and writes, without the SQL text
 * (`postgres-sql.ts`) and without decisions (`planGroup` of `@ledgerline/log`): the keys a
 * group reads, the loaded lookups the planner asks, the bodies encoded before any lock is
 * taken, and the write statement's parameters made from a plan.
 *
 * Invariants:
 * 1. A `Loaded` answers only what the transaction read under its locks; what it has not read is
 *    `undefined`, so the planner asks for it (`PlanMiss`) rather than deciding on a guess.
 * 2. Bodies hold the entry without its positions (`bodyOf`), MessagePack (`entry-body.ts`).
 * 3. Digests of client items are computed with the bodies, before any lock (`EncodedItems`
 *    hands them to the planner); they travel as hex text, `decode`d by the write statement.
 * 4. The `corrects` column is written for the log's own corrections only (`isLogCorrection`).
 */
import type pg from 'pg'
import type { PoolClient } from 'pg'
import {
  digestHex,
  entryDigest,
  isLogCorrection,
  SERVER_CLIENT_ID,
  unreachable,
} from '@ledgerline/core'
import type { Entry, Hash, Schema, StoredEntry } from '@ledgerline/core'
import { correctionRef, foldForward, joinKey, splitKey } from '@ledgerline/log'
import type {
  ClientRecord,
  EntityStates,
  Plan,
  PlanCall,
  PlanHead,
  PlanLookups,
  PlanNeed,
  PlannedEntry,
  Recorded,
} from '@ledgerline/log'
import type { CorrectionRef } from '@ledgerline/protocol'
import { PG_FOLD_PAGE_ENTRIES_MAX } from './postgres-limits.ts'
import { RelayError } from './relay-error.ts'
import { encodeEntryBody, storedEntryOf } from './entry-body.ts'
import type {
  Candidate,
  DeferredRow,
  EntryRow,
  GroupKeys,
  HeadRow,
  PreviousRow,
  RefusedRow,
} from './postgres-sql.ts'
import {
  clientsQuery,
  deferredQuery,
  FOLD_PAGE_SQL,
  headsQuery,
  intArray,
  q,
  pipeline,
  previousQuery,
  PG_TYPES,
  refusedQuery,
  rowsOf,
  textArray,
  WRITE_SQL,
} from './postgres-sql.ts'

/** What one transaction has read so far; the plan's lookups answer from it. */
export interface Loaded {
  readonly locked: Set<number>
  readonly partitionHeads: Map<number, number>
  readonly clients: Map<string, ClientRecord>
  readonly previous: Map<string, Recorded | null>
  readonly heads: Map<string, PlanHead>
}

/** What the reads of a group ask for: its clients, its entities, every item as a candidate. */
export function groupKeys(calls: readonly PlanCall[]): GroupKeys {
  const clients = new Map<string, [string, string]>()
  const entities = new Map<string, [string, string]>()
  const candidates: Candidate[] = []
  const corrects: [string, string][] = []
  for (const call of calls) {
    for (const item of call.items) {
      const e = item.entry
      if (e.clientId !== SERVER_CLIENT_ID) {
        const key = joinKey(call.tenant, e.clientId)
        if (!clients.has(key)) clients.set(key, [call.tenant, e.clientId])
        if (e.corrects !== undefined && item.refuse === undefined) {
          corrects.push([call.tenant, e.corrects])
        }
      }
      if (item.refuse === undefined) {
        const key = joinKey(call.tenant, e.entity)
        if (!entities.has(key)) entities.set(key, [call.tenant, e.entity])
      }
      candidates.push([call.tenant, e.id, e.clientId, e.clientSeq])
    }
  }
  return {
    clients: [...clients.values()],
    entities: [...entities.values()],
    candidates,
    corrects,
  }
}

/** Reads the earlier results of `asked` (tenant, id); an id found nowhere was never decided. */
export async function loadPrevious(
  client: PoolClient,
  asked: readonly (readonly [string, string])[],
  loaded: Loaded,
): Promise<void> {
  // Each id once: an id asked twice would list its corrections twice.
  const unique = new Map<string, readonly [string, string]>()
  for (const pair of asked) {
    const key = joinKey(pair[0], pair[1])
    if (unique.has(key) || loaded.previous.has(key)) continue
    unique.set(key, pair)
    loaded.previous.set(key, null)
  }
  if (unique.size === 0) return
  const pairs = [...unique.values()]
  const [found, refused, deferred] = await pipeline(client, [
    previousQuery(pairs),
    refusedQuery(pairs),
    deferredQuery(pairs),
  ])
  takePrevious(rowsOf(found), rowsOf(refused), rowsOf(deferred), loaded)
}

export function takeClients(
  pairs: readonly (readonly [string, string])[],
  rows: readonly { tenant: string; client_id: string; high: number; subject: string | null }[],
  loaded: Loaded,
): void {
  for (const [tenant, clientId] of pairs) {
    loaded.clients.set(joinKey(tenant, clientId), { high: 0, subject: null })
  }
  for (const r of rows) {
    loaded.clients.set(joinKey(r.tenant, r.client_id), { high: r.high, subject: r.subject })
  }
}

/**
 * What was recorded under the ids: entries (with the log's own corrections of them), else
 * refusals, else deferrals (the planner's order of `PlanLookups.previous`).
 */
export function takePrevious(
  previous: readonly PreviousRow[],
  refused: readonly RefusedRow[],
  deferred: readonly DeferredRow[],
  loaded: Loaded,
): void {
  const corrections = new Map<string, CorrectionRef[]>()
  for (const row of previous) {
    if (row.kind !== 'correction' || row.body === null) continue
    const stored = toStored(row as EntryRow)
    if (!isLogCorrection(stored)) continue
    const key = joinKey(row.tenant, row.corrects as string)
    const list = corrections.get(key) ?? []
    list.push(correctionRef(stored))
    corrections.set(key, list)
  }
  const recorded = new Set<string>()
  for (const row of previous) {
    if (row.kind !== 'found') continue
    const key = joinKey(row.tenant, row.id)
    recorded.add(key)
    loaded.previous.set(key, {
      _tag: 'entry',
      entity: row.entity,
      digest: row.digest,
      result: {
        id: row.id,
        status: 'appended',
        version: row.version,
        partition: row.partition,
        offset: row.offset,
        committedAt: row.committed_at,
        corrections: corrections.get(key) ?? [],
      },
    })
  }
  for (const r of refused) {
    const key = joinKey(r.tenant, r.id)
    if (recorded.has(key)) continue
    recorded.add(key)
    loaded.previous.set(key, {
      _tag: 'refusal',
      digest: r.digest,
      result: { id: r.id, status: 'refused', code: r.code, reason: r.reason, head: r.head },
    })
  }
  for (const d of deferred) {
    const key = joinKey(d.tenant, d.id)
    if (recorded.has(key)) continue
    loaded.previous.set(key, { _tag: 'deferral', digest: d.digest, code: d.code })
  }
}

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
 * locks (invariant 3).
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

/** Invariant 4: what the `corrects` column holds for an entry. */
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
  const d = plan.deferrals
  return {
    name: 'ledgerline_write_v3',
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
    ],
  }
}

export const toStored: (row: EntryRow) => StoredEntry = storedEntryOf

/** The entry part of a stored entry: positions live in columns, not in the body. */
export function entryOf(stored: StoredEntry): Entry {
  const { version: _v, partition: _p, offset: _o, committedAt: _c, ...entry } = stored
  return entry
}

/** Entity heads, with states cached at their version, else folded forward from the cache. */
export async function takeHeads(
  client: PoolClient,
  rows: readonly HeadRow[],
  loaded: Loaded,
  schema: Schema | undefined,
  states: EntityStates,
): Promise<void> {
  const toFold: { key: string; tenant: string; entity: string; state: PlanHead; to: number }[] = []
  for (const r of rows) {
    const key = joinKey(r.tenant, r.entity)
    const version = r.version ?? 0
    const offset = r.offset ?? 0
    const type = schema?.find(r.entity)
    if (type === undefined) {
      // A plain log (or an unknown type, which decide() refuses) needs no state.
      loaded.heads.set(key, { version, offset, state: null })
      continue
    }
    const cached = states.get(key, version)
    if (cached !== undefined && cached.version === version) {
      loaded.heads.set(key, cached)
      continue
    }
    const state = cached ?? { version: 0, offset: 0, state: type.initial }
    if (version === 0) loaded.heads.set(key, state)
    else toFold.push({ key, tenant: r.tenant, entity: r.entity, state, to: version })
  }
  // Fold the missing part of each ledger, a page of entries at a time.
  let pending = toFold
  while (pending.length > 0) {
    const { rows: page } = await q<EntryRow & { entity: string }>(client, FOLD_PAGE_SQL, [
      pending.map((f) => f.tenant),
      pending.map((f) => f.entity),
      pending.map((f) => f.state.version),
      pending.map((f) => f.to),
      PG_FOLD_PAGE_ENTRIES_MAX,
    ])
    const byKey = new Map<string, StoredEntry[]>()
    for (const row of page) {
      const key = joinKey(row.tenant, row.entity)
      const list = byKey.get(key) ?? []
      list.push(toStored(row))
      byKey.set(key, list)
    }
    for (const f of pending) {
      const type = schema?.find(f.entity)
      const entries = byKey.get(f.key)
      if (type === undefined || entries === undefined) continue
      try {
        f.state = foldForward(type, f.state, entries)
      } catch (error) {
        throw new RelayError(
          'store_failed',
          `cannot fold ${f.entity}: ${error instanceof Error ? error.message : String(error)}`,
          {
            cause: error,
          },
        )
      }
    }
    if (page.length === 0) {
      throw new RelayError('store_failed', 'ledger shorter than its head while folding')
    }
    pending = pending.filter((f) => f.state.version < f.to)
  }
  for (const f of toFold) loaded.heads.set(f.key, f.state)
}

/** The plan's lookups over what the transaction has read (invariant 1). */
export function lookupsOf(loaded: Loaded): PlanLookups {
  return {
    client: (tenant, clientId) => loaded.clients.get(joinKey(tenant, clientId)),
    previous: (tenant, id) => loaded.previous.get(joinKey(tenant, id)),
    entityHead: (tenant, entity) => loaded.heads.get(joinKey(tenant, entity)),
    partitionHead: (partition) => loaded.partitionHeads.get(partition),
  }
}

/** Reads what the planner missed (`PlanMiss`) into `loaded`; the partition must be locked. */
export async function loadNeed(
  client: PoolClient,
  need: PlanNeed,
  loaded: Loaded,
  schema: Schema | undefined,
  states: EntityStates,
): Promise<void> {
  switch (need.kind) {
    case 'client': {
      const pair: [string, string] = [need.tenant, need.clientId]
      const [result] = await pipeline(client, [clientsQuery([pair])])
      takeClients([pair], rowsOf(result), loaded)
      break
    }
    case 'previous':
      await loadPrevious(client, [[need.tenant, need.id]], loaded)
      break
    case 'entity': {
      const [result] = await pipeline(client, [headsQuery([[need.tenant, need.entity]])])
      await takeHeads(client, rowsOf(result), loaded, schema, states)
      break
    }
    case 'partition':
      // Every locked partition's head was read with its lock.
      throw new Error(`Ledgerline bug: head of locked partition ${need.partition} unread`)
    default:
      unreachable(need)
  }
}

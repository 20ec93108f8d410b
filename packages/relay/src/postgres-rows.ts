/**
 * What one PostgreSQL group transaction reads, without the SQL text (`postgres-sql.ts`) and
 * without decisions (`planGroup` of `@ledgerline/log`): the keys a group reads, the rows read
 * under its locks, and the lookups the planner asks over them. What it writes (bodies, digests,
 * the write statement's parameters) is in `postgres-write.ts`.
 *
 * Terms: a *candidate* is an item whose earlier result may be needed (resent, or made by a
 * log); an entry's *corrections* are the log's own entries whose `corrects` names it.
 *
 * Invariants:
 * 1. A `Loaded` answers only what the transaction read under its locks; what it has not read is
 *    `undefined`, so the planner asks for it (`PlanMiss`) rather than deciding on a guess.
 * 2. An earlier entry's result lists as corrections only the log's own (`isLogCorrection`), so
 *    a client entry that names another is never listed as a correction of it.
 */
import type { PoolClient } from 'pg'
import { foldKey, isLogCorrection, SERVER_CLIENT_ID, unreachable } from '@ledgerline/core'
import type { EntityType, Schema, StoredEntry } from '@ledgerline/core'
import { correctionRef, foldForward, foldStart, joinKey } from '@ledgerline/log'
import type {
  ClientRecord,
  EntityStates,
  Original,
  PlanCall,
  PlanHead,
  PlanLookups,
  PlanNeed,
  Recorded,
} from '@ledgerline/log'
import type { CorrectionRef } from '@ledgerline/protocol'
import { PG_FOLD_PAGE_ENTRIES_MAX } from './postgres-limits.ts'
import { RelayError } from './relay-error.ts'
import { storedEntryOf } from './entry-body.ts'
import { takeSnapshots } from './postgres-snapshots.ts'
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
  originalsQuery,
  q,
  pipeline,
  previousQuery,
  refusedQuery,
  rowsOf,
} from './postgres-sql.ts'

/** What one transaction has read so far; the plan's lookups answer from it. */
export interface Loaded {
  readonly locked: Set<number>
  readonly partitionHeads: Map<number, number>
  readonly clients: Map<string, ClientRecord>
  readonly previous: Map<string, Recorded | null>
  /** What `originalsQuery` read, by `joinKey(tenant, origin)`. */
  readonly originals: Map<string, readonly Original[]>
  readonly heads: Map<string, PlanHead>
}

/** What the reads of a group ask for: its clients, its entities, every item as a candidate. */
export function groupKeys(calls: readonly PlanCall[]): GroupKeys {
  const clients = new Map<string, [string, string]>()
  const entities = new Map<string, [string, string]>()
  const candidates: Candidate[] = []
  const corrects: [string, string][] = []
  const origins = new Map<string, [string, string]>()
  for (const call of calls) {
    for (const item of call.items) {
      const e = item.entry
      if (e.clientId !== SERVER_CLIENT_ID) {
        const key = joinKey(call.tenant, e.clientId)
        if (!clients.has(key)) clients.set(key, [call.tenant, e.clientId])
        if (e.corrects !== undefined && item.refuse === undefined) {
          corrects.push([call.tenant, e.corrects])
          // A `corrects` with nothing under it is looked up among the origins (invariant 13).
          origins.set(joinKey(call.tenant, e.corrects), [call.tenant, e.corrects])
        }
        const origin = e.origin ?? e.id
        if (item.refuse === undefined)
          origins.set(joinKey(call.tenant, origin), [call.tenant, origin])
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
    origins: [...origins.values()],
  }
}

/** What `originalsQuery` read for `pairs`: every pair gets its list, empty when none. */
export function takeOriginals(
  pairs: readonly (readonly [string, string])[],
  rows: readonly OriginalRow[],
  loaded: Loaded,
): void {
  for (const [tenant, origin] of pairs) loaded.originals.set(joinKey(tenant, origin), [])
  for (const row of rows) {
    const list = loaded.originals.get(joinKey(row.tenant, row.key)) as Original[]
    // A dropped entry (`postgres-retention.ts` invariant 3): what is kept of it.
    if (row.body === null) {
      if (row.id === null || row.client_id === null || row.recovery === null) continue
      list.push({ _tag: 'dropped', id: row.id, clientId: row.client_id, recovery: row.recovery })
    } else list.push(toStored(row as EntryRow))
  }
}

/** A row of `originalsQuery`: an entry with its body, or a dropped one without. */
export type OriginalRow = Omit<EntryRow, 'body'> & {
  key: string
  body: Buffer | null
  id: string | null
  client_id: string | null
  recovery: Buffer | null
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
    if (row.kind !== 'correction') continue
    let ref: CorrectionRef
    if (row.body !== null) {
      const stored = toStored(row as EntryRow)
      if (!isLogCorrection(stored)) continue
      ref = correctionRef(stored)
    } else {
      // A dropped correction of the log: its kind was kept (`postgres-retention.ts` inv. 3).
      if (typeof row.entry_kind !== 'string') continue
      const { id, entity, version, partition, offset } = row
      ref = { id, entity, kind: row.entry_kind, version, partition, offset }
    }
    const key = joinKey(row.tenant, row.corrects as string)
    const list = corrections.get(key) ?? []
    list.push(ref)
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

export const toStored: (row: EntryRow) => StoredEntry = storedEntryOf

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
  // `log-store.ts` guarantee 15: a miss starts from the snapshot under the type's own key.
  const missed = toFold.filter((f) => f.state.version === 0)
  const snapshots = await takeSnapshots(
    client,
    missed.map((f) => ({
      tenant: f.tenant,
      entity: f.entity,
      foldKey: foldKey(schema?.find(f.entity) as EntityType<unknown>),
    })),
  )
  for (const f of missed) {
    const type = schema?.find(f.entity) as EntityType<unknown>
    const from = foldStart(type, snapshots.get(f.key))
    if (from.version <= f.to) f.state = from
  }
  for (const f of toFold) if (f.state.version === f.to) loaded.heads.set(f.key, f.state)
  const folding = toFold.filter((f) => f.state.version < f.to)
  // Fold the missing part of each ledger, a page of entries at a time.
  let pending = folding
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
  for (const f of folding) loaded.heads.set(f.key, f.state)
}

/** The plan's lookups over what the transaction has read (invariant 1). */
export function lookupsOf(loaded: Loaded): PlanLookups {
  return {
    client: (tenant, clientId) => loaded.clients.get(joinKey(tenant, clientId)),
    previous: (tenant, id) => loaded.previous.get(joinKey(tenant, id)),
    originals: (tenant, origin) => loaded.originals.get(joinKey(tenant, origin)),
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
    case 'origin': {
      const pair: [string, string] = [need.tenant, need.origin]
      const [result] = await pipeline(client, [originalsQuery([pair])])
      takeOriginals([pair], rowsOf(result), loaded)
      break
    }
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

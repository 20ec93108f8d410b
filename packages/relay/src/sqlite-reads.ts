/**
 * What the SQLite log reads: its read statements, the rows they give, and the planner's lookups
 * over them (`PlanLookups` of `@ledgerline/log`), which `sqlite-store.ts` hands to `planGroup`
 * inside the group's write transaction. The store's own reads (`readPartition`, `readEntity`,
 * `head`, `partitionHeads`) run the same statements in a read transaction of their own.
 *
 * Terms: a *lookup* is one question the planner asks of the file (a client's record, what was
 * recorded under an id, an entity's head with its state, a partition's head); a *ref* is the
 * integer a name is interned under (`sqlite-refs.ts`).
 *
 * Invariants (numbered as in `sqlite-store.ts`):
 * 4. Entity states are trusted only at the ledger's version read in the same transaction;
 *    otherwise the ledger is folded forward from the newest cached state (on a miss, from the
 *    entity's ledger snapshot under the type's own fold key, `sqlite-snapshots.ts`), and a
 *    ledger whose entries do not reach its head's version fails the group (`store_failed`).
 * 8. Finding the corrections an ack lists reads `log_ids` only, never a client's entry. Rows of
 *    older builds are told apart by the id: a log correction of X has an id that starts with
 *    `X~`, and `isLogCorrection` has the last word.
 * 9. An entry is found by its id: a client entry's `<clientId>-<clientSeq>` under (client,
 *    client_seq), any other by its `log_ids` row. An id is an entry's before it is a refusal's,
 *    and a refusal's before it is a deferral's.
 * 10. An entry an operator dropped (retention) is found the same way in `retention_dropped`
 *    (`sqlite-retention.ts` invariant 4), after `entries`: the planner gets the same record as
 *    before the drop (digest, positions, the log's corrections of it, kept or dropped, in the
 *    order they were written), and `originals` a `DroppedOriginal` with its recovery digest.
 *    So a `log_ids` or `origins` row that points at a dropped position is never read as
 *    "nothing there". A dropped client entry under an id not of the form
 *    `<clientId>-<clientSeq>` (none since layout 4) is not offered as an original of a copy.
 *    While the table is empty (a log no drop ever cut, read at open and after each drop) its
 *    lookups are skipped: new appends pay nothing for retention.
 */
import type Database from 'better-sqlite3'
import { entryId, foldKey, isLogCorrection } from '@ledgerline/core'
import type { DeferralCode, Schema, StoredEntry } from '@ledgerline/core'
import { correctionRef, foldForward, foldStart, joinKey } from '@ledgerline/log'
import type { LedgerSnapshot } from '@ledgerline/protocol'
import type { createEntityStates } from '@ledgerline/log'
import type {
  ClientRecord,
  EntityHead,
  Original,
  PlanHead,
  PlanLookups,
  RefusalCode,
} from '@ledgerline/log'
import type { CorrectionRef } from '@ledgerline/protocol'
import { storedEntryOf } from './entry-body.ts'
import { RelayError } from './relay-error.ts'
import { refKey } from './sqlite-refs.ts'
import type { SqliteRefs } from './sqlite-refs.ts'

/** An entry as the read statements give it. */
export interface EntryRow {
  partition: number
  offset: number
  version: number
  committed_at: number
  body: Buffer
}

/** The prepared read statements of one log file. */
export type SqliteReads = Record<
  | 'partitionHead'
  | 'partitionHeads'
  | 'client'
  | 'entryByClientSeq'
  | 'entryByLogId'
  | 'droppedByClientSeq'
  | 'droppedByLogId'
  | 'droppedCorrectionsOf'
  | 'droppedMovedOf'
  | 'refusalById'
  | 'deferralById'
  | 'correctionsOf'
  | 'entryAt'
  | 'movedOf'
  | 'entityHead'
  | 'readEntity'
  | 'readLedgers'
  | 'readPartition',
  Database.Statement
>

/** The entity states a log with a schema keeps between groups. */
export type SqliteStates = ReturnType<typeof createEntityStates>

/**
 * The planner's view of the file through `sql`; to be asked inside the group's transaction.
 *
 * @example
 * const lookups = createSqliteLookups(prepareReads(db), refs, schema, states)
 * const plan = planGroup({ schema, partitions, committedAt, lookups, hash }, group)
 */
export function createSqliteLookups(
  sql: SqliteReads,
  refs: SqliteRefs,
  schema: Schema | undefined,
  states: SqliteStates,
  snapshot: (tenant: string, entity: string, foldKey: string) => LedgerSnapshot | undefined = () =>
    undefined,
  /** Invariant 10: false while `retention_dropped` is empty (its lookups are skipped). */
  anyDropped: () => boolean = () => true,
): PlanLookups {
  /**
   * What was recorded under an entry id: a client entry by its clientSeq, else by `log_ids`;
   * in `entries`, else in `retention_dropped` (invariant 10).
   */
  function entryById(tenant: number, id: string): EntryByIdRow | undefined {
    const parsed = clientSeqOf(id)
    const client =
      parsed === undefined
        ? undefined
        : refs.clients.find(refKey(tenant, parsed.clientId), tenant, parsed.clientId)
    if (parsed !== undefined && client !== undefined) {
      const row = sql.entryByClientSeq.get(client, parsed.clientSeq) as EntryByIdRow | undefined
      if (row !== undefined) return row
    }
    const row = sql.entryByLogId.get(tenant, id) as EntryByIdRow | undefined
    if (row !== undefined || !anyDropped()) return row
    // Invariant 10: a dropped entry is still the entry recorded under its id.
    if (parsed !== undefined && client !== undefined) {
      const dropped = sql.droppedByClientSeq.get(client, parsed.clientSeq) as
        | EntryByIdRow
        | undefined
      if (dropped !== undefined) return dropped
    }
    return sql.droppedByLogId.get(tenant, id) as EntryByIdRow | undefined
  }

  /** The log's corrections of `id`, kept and dropped, in the order they were written. */
  function correctionsOf(tenant: number, id: string): CorrectionRef[] {
    const args = [tenant, id, id.length + 1, `${id}~`] as const
    const kept = (sql.correctionsOf.all(...args) as (EntryRow & { at: number })[])
      .map((row) => ({ at: row.at, stored: toStored(row) }))
      .filter((c) => isLogCorrection(c.stored))
      .map((c) => ({ at: c.at, ref: correctionRef(c.stored) }))
    const dropped = anyDropped()
      ? (sql.droppedCorrectionsOf.all(...args) as (CorrectionRef & { at: number })[])
      : []
    if (dropped.length === 0) return kept.map((c) => c.ref)
    const all = [...kept, ...dropped.map(({ at, ...ref }) => ({ at, ref }))]
    return all.sort((a, b) => a.at - b.at).map((c) => c.ref)
  }

  /** The head with its state: cached at this version, or folded forward (invariant 4). */
  function entityHead(tenant: string, entity: string): PlanHead {
    const row = sql.entityHead.get(tenant, entity) as EntityHead | undefined
    const version = row?.version ?? 0
    const offset = row?.offset ?? 0
    const type = schema?.find(entity)
    // A plain log (or an unknown type, which decide() refuses) needs no state.
    if (type === undefined) return { version, offset, state: null }
    const key = joinKey(tenant, entity)
    const cached = states.get(key, version)
    if (cached !== undefined && cached.version === version) return cached
    // `log-store.ts` guarantee 15: a miss starts from the snapshot under the type's own key.
    // (An empty ledger has no snapshot: no lookup for a new entity.)
    const from =
      cached ?? foldStart(type, version === 0 ? undefined : snapshot(tenant, entity, foldKey(type)))
    const rows = sql.readEntity.iterate(tenant, entity, from.version + 1, -1)
    const folded = foldForward(type, from, mapRows(rows as Iterable<EntryRow>))
    if (folded.version !== version) {
      throw new RelayError(
        'store_failed',
        `ledger of ${entity} has ${folded.version} entries, head says ${version}`,
      )
    }
    return folded
  }

  return {
    client: (tenant, clientId) => {
      const row = sql.client.get(tenant, clientId) as ClientRecord | undefined
      return row ?? { high: 0, subject: null }
    },
    previous: (tenant, id) => {
      const t = refs.tenants.find(tenant, tenant)
      const row = t === undefined ? undefined : entryById(t, id)
      if (t !== undefined && row !== undefined) {
        // The log's corrections of it (invariant 8): never a client entry that names it.
        const corrections = correctionsOf(t, id)
        return {
          _tag: 'entry',
          entity: row.entity,
          digest: row.digest,
          result: {
            id,
            status: 'appended',
            version: row.version,
            partition: row.partition,
            offset: row.offset,
            committedAt: row.committed_at,
            corrections,
          },
        }
      }
      const refusal = sql.refusalById.get(tenant, id) as
        | { code: RefusalCode; reason: string; head: number; digest: Buffer | null }
        | undefined
      if (refusal !== undefined) {
        const { digest, ...rest } = refusal
        return { _tag: 'refusal', digest, result: { id, status: 'refused', ...rest } }
      }
      const deferral = sql.deferralById.get(tenant, id) as
        | { code: DeferralCode; digest: Buffer }
        | undefined
      if (deferral === undefined) return null
      return { _tag: 'deferral', digest: deferral.digest, code: deferral.code }
    },
    originals: (tenant, origin) => {
      const t = refs.tenants.find(tenant, tenant)
      if (t === undefined) return []
      const found: { offset: number; original: Original }[] = []
      // Usually a new entry's own id (the lookup of every new client entry): no entry there.
      const first = entryById(t, origin)
      // A client entry (it has a digest) under the origin itself: the first landing.
      if (first !== undefined && first.digest !== null) {
        const row = sql.entryAt.get(t, first.partition, first.offset) as EntryRow | undefined
        if (row !== undefined) found.push({ offset: row.offset, original: toStored(row) })
        else if (typeof first.owner_id === 'string' && first.recovery instanceof Uint8Array) {
          // Invariant 10: dropped; what is kept of it.
          const original = droppedOriginal(origin, first.owner_id, first.recovery)
          found.push({ offset: first.offset, original })
        }
      }
      for (const row of sql.movedOf.iterate(t, origin) as Iterable<EntryRow>) {
        found.push({ offset: row.offset, original: toStored(row) })
      }
      const moved = anyDropped() ? (sql.droppedMovedOf.all(t, origin) as DroppedMovedRow[]) : []
      for (const row of moved) {
        const original = droppedOriginal(
          entryId(row.client_id, row.client_seq),
          row.client_id,
          row.recovery,
        )
        found.push({ offset: row.offset, original })
      }
      // Copies of one content share an entity, so a partition: offset order is commit order.
      return found.sort((a, b) => a.offset - b.offset).map((f) => f.original)
    },
    entityHead: (tenant, entity) => entityHead(tenant, entity),
    partitionHead: (partition) =>
      (sql.partitionHead.get(partition) as { head: number } | undefined)?.head ?? 0,
  }
}

/** Prepares the read statements of `db`. */
export function prepareReads(db: Database.Database): SqliteReads {
  const columns = `partition, "offset", version, committed_at, body`
  const tenantRef = `(SELECT ref FROM tenants WHERE name = ?)`
  return {
    partitionHead: db.prepare(`SELECT head FROM partition_heads WHERE partition = ?`),
    partitionHeads: db.prepare(`SELECT partition, head FROM partition_heads`),
    client: db.prepare(
      `SELECT high, subject FROM clients WHERE tenant = ${tenantRef} AND client_id = ?`,
    ),
    entryByClientSeq: db.prepare(
      `SELECT e.partition, e."offset", e.version, e.committed_at, n.name AS entity, e.digest
       FROM entries e JOIN entities n ON n.ref = e.entity WHERE e.client = ? AND e.client_seq = ?`,
    ),
    entryByLogId: db.prepare(
      `SELECT e.partition, e."offset", e.version, e.committed_at, n.name AS entity, e.digest
       FROM log_ids l
       JOIN entries e ON e.tenant = l.tenant AND e.partition = l.partition
         AND e."offset" = l."offset"
       JOIN entities n ON n.ref = e.entity
       WHERE l.tenant = ? AND l.id = ?`,
    ),
    refusalById: db.prepare(
      `SELECT code, reason, head, digest FROM refusals WHERE tenant = ? AND id = ?`,
    ),
    deferralById: db.prepare(`SELECT code, digest FROM deferrals WHERE tenant = ? AND id = ?`),
    correctionsOf: db.prepare(
      `SELECT e.partition, e."offset", e.version, e.committed_at, e.body, l.rowid AS at
       FROM log_ids l
       JOIN entries e ON e.tenant = l.tenant AND e.partition = l.partition
         AND e."offset" = l."offset"
       WHERE l.tenant = ? AND l.corrects = ? AND substr(l.id, 1, ?) = ?
       ORDER BY l.rowid`,
    ),
    // Invariant 10: the same lookups in what retention kept of dropped entries.
    droppedByClientSeq: db.prepare(
      `SELECT d.partition, d."offset", d.version, d.committed_at, n.name AS entity, d.digest,
         d.recovery, c.client_id AS owner_id
       FROM retention_dropped d JOIN entities n ON n.ref = d.entity
         LEFT JOIN clients c ON c.ref = d.owner
       WHERE d.client = ? AND d.client_seq = ?`,
    ),
    droppedByLogId: db.prepare(
      `SELECT d.partition, d."offset", d.version, d.committed_at, n.name AS entity, d.digest,
         d.recovery, c.client_id AS owner_id
       FROM log_ids l
       JOIN retention_dropped d ON d.tenant = l.tenant AND d.partition = l.partition
         AND d."offset" = l."offset"
       JOIN entities n ON n.ref = d.entity
       LEFT JOIN clients c ON c.ref = d.owner
       WHERE l.tenant = ? AND l.id = ?`,
    ),
    droppedCorrectionsOf: db.prepare(
      `SELECT l.id, n.name AS entity, d.kind, d.version, d.partition, d."offset", l.rowid AS at
       FROM log_ids l
       JOIN retention_dropped d ON d.tenant = l.tenant AND d.partition = l.partition
         AND d."offset" = l."offset"
       JOIN entities n ON n.ref = d.entity
       WHERE l.tenant = ? AND l.corrects = ? AND substr(l.id, 1, ?) = ?
       ORDER BY l.rowid`,
    ),
    droppedMovedOf: db.prepare(
      `SELECT d."offset", c.client_id, d.client_seq, d.recovery
       FROM origins o
       JOIN retention_dropped d ON d.tenant = o.tenant AND d.partition = o.partition
         AND d."offset" = o."offset"
       JOIN clients c ON c.ref = d.client
       WHERE o.tenant = ? AND o.origin = ? AND d.recovery IS NOT NULL`,
    ),
    entryAt: db.prepare(
      `SELECT ${columns} FROM entries WHERE tenant = ? AND partition = ? AND "offset" = ?`,
    ),
    // Copies of one content are of one entity (one partition): offset order is commit order.
    movedOf: db.prepare(
      `SELECT e.partition, e."offset", e.version, e.committed_at, e.body
       FROM origins o
       JOIN entries e ON e.tenant = o.tenant AND e.partition = o.partition
         AND e."offset" = o."offset"
       WHERE o.tenant = ? AND o.origin = ?
       ORDER BY e."offset"`,
    ),
    entityHead: db.prepare(
      `SELECT version, "offset" AS "offset" FROM entities
       WHERE tenant = ${tenantRef} AND name = ?`,
    ),
    readEntity: db.prepare(
      `SELECT ${columns} FROM entries
       WHERE entity = (SELECT ref FROM entities WHERE tenant = ${tenantRef} AND name = ?)
         AND version >= ?
       ORDER BY version LIMIT ?`,
    ),
    // Many ledgers' entries in one statement (`readLedgers`): `?` is a JSON array of
    // [tenant, entity, fromVersion, toVersion) reads; `i` is a read's index. The CROSS JOINs fix
    // the order (each read's entity by its unique name, then its versions by
    // `entries_entity_version`, never a scan of `entries`), so rows come read by read, each
    // read's in version order. (Rows in file order instead, `ORDER BY e.rowid`, measured no
    // faster on a 1,020,000-entry log.)
    readLedgers: db.prepare(
      `SELECT j.key AS i, e.partition, e."offset", e.version, e.committed_at, e.body
       FROM json_each(?) j CROSS JOIN tenants t CROSS JOIN entities n CROSS JOIN entries e
       WHERE t.name = j.value ->> 0 AND n.tenant = t.ref AND n.name = j.value ->> 1
         AND e.entity = n.ref AND e.version >= j.value ->> 2 AND e.version < j.value ->> 3`,
    ),
    readPartition: db.prepare(
      `SELECT ${columns} FROM entries WHERE tenant = ${tenantRef} AND partition = ? AND "offset" > ?
       ORDER BY "offset" LIMIT ?`,
    ),
  }
}

interface EntryByIdRow extends Omit<EntryRow, 'body'> {
  entity: string
  digest: Buffer | null
  /** Only for a dropped client entry (invariant 10): its recovery digest and clientId. */
  recovery?: Buffer | null | undefined
  owner_id?: string | null | undefined
}

interface DroppedMovedRow {
  offset: number
  client_id: string
  client_seq: number
  recovery: Buffer
}

function droppedOriginal(id: string, clientId: string, recovery: Buffer): Original {
  return { _tag: 'dropped', id, clientId, recovery }
}

/** `<clientId>-<clientSeq>` split, or `undefined` when `id` is not a client entry's id. */
function clientSeqOf(id: string): { clientId: string; clientSeq: number } | undefined {
  const dash = id.lastIndexOf('-')
  if (dash <= 0) return undefined
  const digits = id.slice(dash + 1)
  if (!/^[1-9][0-9]{0,15}$/.test(digits)) return undefined
  const clientSeq = Number(digits)
  if (!Number.isSafeInteger(clientSeq)) return undefined
  return { clientId: id.slice(0, dash), clientSeq }
}

export const toStored: (row: EntryRow) => StoredEntry = storedEntryOf

function* mapRows(rows: Iterable<EntryRow>): Iterable<StoredEntry> {
  for (const row of rows) yield toStored(row)
}

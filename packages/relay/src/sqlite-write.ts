/**
 * What one SQLite group transaction writes from a plan: client records, entries (with their
 * `log_ids` rows and entity heads), refusals, deferrals and partition heads, over the interned
 * refs (`sqlite-refs.ts`). It decides nothing (`planGroup` of `@ledgerline/log` did) and opens no
 * transaction: `sqlite-store.ts` runs it inside the group's `BEGIN IMMEDIATE`, after the plan.
 *
 * Terms: a *ref* is the integer a tenant, entity or clientId is interned under; a ref made here
 * stays pending until the store tells `SqliteRefs` the transaction committed or rolled back.
 *
 * Invariants (numbered as in `sqlite-store.ts`):
 * 3. Offsets come from the `partition_heads` row updated in the same transaction as the entries,
 *    so they are gap-free and in commit order; the key `(tenant, partition, offset)` and
 *    `unique (entity, version)` make a reused offset or version fail the transaction instead of
 *    being written. Versions come from the entity's head row (`entities`), updated in the same
 *    transaction to the newest entry's version and offset.
 * 8. Digests (`digest` columns, migration 3) are written for client entries, refusals and
 *    deferrals; `log_ids.corrects` is written for the log's own corrections only
 *    (`isLogCorrection`), never for a client's entry (a client's `corrects` stays in its body).
 * 9. Layout 4 (`sqlite-lean-layout.ts`): a client entry is stored under (client, client_seq),
 *    its client's record written first so the ref exists; an entry of the log (no clientSeq)
 *    also gets a `log_ids` row. A client's first subject is never changed.
 */
import type Database from 'better-sqlite3'
import { entryId, isLogCorrection, SERVER_CLIENT_ID } from '@ledgerline/core'
import type { Entry, StoredEntry } from '@ledgerline/core'
import { splitKey } from '@ledgerline/log'
import type { ClientRecord, Plan } from '@ledgerline/log'
import { encodeEntryBody } from './entry-body.ts'
import { digestBuffer } from './node-crypto.ts'
import { refKey } from './sqlite-refs.ts'
import type { SqliteRefs } from './sqlite-refs.ts'

/** Where a planned entry goes and what of it the rows name (its body is `source`). */
export interface EntryPlace {
  readonly entity: string
  readonly partition: number
  readonly offset: number
  readonly version: number
  /** Set for a client entry (stored under its clientSeq, invariant 9); `null` for the log's. */
  readonly client: { readonly clientId: string; readonly clientSeq: number } | null
  /** The entry's id, for an entry of the log's (`log_ids`). */
  readonly id: string
  /** What a log correction corrects (invariant 8); `null` for every other entry. */
  readonly corrects: string | null
  readonly origin: string | undefined
}

/**
 * The part of a plan the rows are written from: plain data, so a writer in another thread can
 * be handed it (`sqlite-writer-thread.ts`); `writePlanOf` makes it from a plan.
 */
export interface WritePlan {
  readonly clients: ReadonlyMap<string, ClientRecord>
  readonly entries: readonly {
    readonly tenant: string
    readonly place: EntryPlace
    readonly source: Entry
    readonly digest: Uint8Array | null
  }[]
  readonly refusals: Plan['refusals']
  readonly deferrals: Plan['deferrals']
  readonly aliases: Plan['aliases']
  readonly partitionHeads: ReadonlyMap<number, number>
}

/** Writes plans into one open log file. */
export interface SqliteWriter {
  /** Writes `plan`'s rows; only inside the group's open write transaction. */
  write(plan: WritePlan, committedAt: number): void
}

/**
 * What `plan` writes, as plain data (the entity states and results stay behind).
 *
 * @example
 * writer.write(writePlanOf(planGroup(context, group)), committedAt)
 */
export function writePlanOf(plan: Plan): WritePlan {
  return {
    clients: plan.clients,
    entries: plan.entries.map(({ tenant, stored, source, digest }) => ({
      tenant,
      source,
      digest,
      place: placeOf(stored),
    })),
    refusals: plan.refusals,
    deferrals: plan.deferrals,
    aliases: plan.aliases,
    partitionHeads: plan.partitionHeads,
  }
}

function placeOf(stored: StoredEntry): EntryPlace {
  // Invariant 9: a client entry under its clientSeq, an entry of the log under its id.
  const byClient =
    stored.clientId !== SERVER_CLIENT_ID && stored.id === entryId(stored.clientId, stored.clientSeq)
  return {
    entity: stored.entity,
    partition: stored.partition,
    offset: stored.offset,
    version: stored.version,
    client: byClient ? { clientId: stored.clientId, clientSeq: stored.clientSeq } : null,
    id: stored.id,
    // Invariant 8: the column names what a log correction corrects, nothing else.
    corrects: isLogCorrection(stored) ? (stored.corrects as string) : null,
    origin: stored.origin,
  }
}

/**
 * The writer of `db`, interning names through `refs`.
 *
 * @example
 * const writer = createSqliteWriter(db, refs)
 * db.transaction(() => writer.write(writePlanOf(planGroup(context, group)), now)).immediate()
 */
export function createSqliteWriter(db: Database.Database, refs: SqliteRefs): SqliteWriter {
  const sql = prepareWrites(db)

  function tenantRef(tenant: string): number {
    const found = refs.tenants.find(tenant, tenant)
    if (found !== undefined) return found
    const ref = Number(sql.insertTenant.run(tenant).lastInsertRowid)
    refs.tenants.made(tenant, ref)
    return ref
  }

  function entityRef(tenant: number, entity: string): number {
    const key = refKey(tenant, entity)
    const found = refs.entities.find(key, tenant, entity)
    if (found !== undefined) return found
    const ref = Number(sql.insertEntity.run(tenant, entity).lastInsertRowid)
    refs.entities.made(key, ref)
    return ref
  }

  /** A client entry's client has a record: the plan raised its high-water mark to the entry. */
  function clientRef(tenant: number, clientId: string): number {
    const ref = refs.clients.find(refKey(tenant, clientId), tenant, clientId)
    if (ref === undefined) throw new Error(`Ledgerline bug: no client record for ${clientId}`)
    return ref
  }

  /** Client records first: the entries name their clients by ref. */
  function writeClients(clients: ReadonlyMap<string, ClientRecord>): void {
    for (const [key, client] of clients) {
      const [tenant, clientId] = splitKey(key)
      const t = tenantRef(tenant)
      const ref = refs.clients.find(refKey(t, clientId), t, clientId)
      // The first subject stays: a binding is never changed (the planner checked it).
      if (ref !== undefined) sql.updateClient.run(client.high, client.subject, ref)
      else {
        const made = sql.insertClient.run(t, clientId, client.high, client.subject)
        refs.clients.made(refKey(t, clientId), Number(made.lastInsertRowid))
      }
    }
  }

  function writeEntries(entries: WritePlan['entries'], committedAt: number): void {
    const heads = new Map<number, EntryPlace>()
    for (const { tenant, place, source, digest } of entries) {
      const t = tenantRef(tenant)
      const entity = entityRef(t, place.entity)
      const client = place.client === null ? null : clientRef(t, place.client.clientId)
      sql.insertEntry.run(
        t,
        place.partition,
        place.offset,
        entity,
        place.version,
        client,
        place.client === null ? null : place.client.clientSeq,
        committedAt,
        encodeEntryBody(source),
        digest === null ? null : digestBuffer(digest),
      )
      if (client === null) {
        sql.insertLogId.run(t, place.id, place.partition, place.offset, place.corrects)
      }
      // Migration 5: a moved entry is found by its origin too.
      if (place.origin !== undefined) {
        sql.insertOrigin.run(t, place.origin, place.partition, place.offset)
      }
      heads.set(entity, place)
    }
    // Invariant 3: each entity's head row names its newest entry.
    for (const [entity, place] of heads) {
      sql.setEntityHead.run(place.version, place.offset, entity)
    }
  }

  return {
    write(plan, committedAt) {
      writeClients(plan.clients)
      writeEntries(plan.entries, committedAt)
      for (const r of plan.refusals) {
        const digest = r.digest === null ? null : digestBuffer(r.digest)
        sql.insertRefusal.run(r.tenant, r.id, r.code, r.reason, r.head, digest)
      }
      for (const d of plan.deferrals) {
        sql.insertDeferral.run(d.tenant, d.id, d.code, d.reason, digestBuffer(d.digest))
      }
      // `append-plan.ts` invariant 13: a copy answered duplicate finds its landing by its id.
      // The same alias again (a copy first deferred, then resent more than once) is the same
      // fact: kept once, never a failed push.
      for (const a of plan.aliases) {
        sql.insertAlias.run(tenantRef(a.tenant), a.id, a.target.partition, a.target.offset)
      }
      for (const [partition, head] of plan.partitionHeads) {
        sql.setPartitionHead.run(head, partition)
      }
    },
  }
}

function prepareWrites(db: Database.Database) {
  return {
    insertEntry: db.prepare(
      `INSERT INTO entries (tenant, partition, "offset", entity, version, client, client_seq,
         committed_at, body, digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    insertLogId: db.prepare(
      `INSERT INTO log_ids (tenant, id, partition, "offset", corrects) VALUES (?, ?, ?, ?, ?)`,
    ),
    insertOrigin: db.prepare(
      `INSERT INTO origins (tenant, origin, partition, "offset") VALUES (?, ?, ?, ?)`,
    ),
    insertAlias: db.prepare(
      `INSERT OR IGNORE INTO origins (tenant, origin, partition, "offset") VALUES (?, ?, ?, ?)`,
    ),
    insertTenant: db.prepare(`INSERT INTO tenants (name) VALUES (?)`),
    insertEntity: db.prepare(
      `INSERT INTO entities (tenant, name, version, "offset") VALUES (?, ?, 0, 0)`,
    ),
    setEntityHead: db.prepare(`UPDATE entities SET version = ?, "offset" = ? WHERE ref = ?`),
    insertRefusal: db.prepare(
      `INSERT INTO refusals (tenant, id, code, reason, head, digest) VALUES (?, ?, ?, ?, ?, ?)`,
    ),
    insertDeferral: db.prepare(
      `INSERT INTO deferrals (tenant, id, code, reason, digest) VALUES (?, ?, ?, ?, ?)`,
    ),
    insertClient: db.prepare(
      `INSERT INTO clients (tenant, client_id, high, subject) VALUES (?, ?, ?, ?)`,
    ),
    updateClient: db.prepare(
      `UPDATE clients SET high = max(high, ?), subject = coalesce(subject, ?) WHERE ref = ?`,
    ),
    setPartitionHead: db.prepare(`UPDATE partition_heads SET head = ? WHERE partition = ?`),
  }
}

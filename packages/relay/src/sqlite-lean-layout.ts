/**
 * Migration 4 of the SQLite log (3 → 4): the lean layout (issue 16). Entries keyed by where they
 * are read (tenant, partition, offset), names interned to integers, one row per entity holding
 * its head, and no index on text.
 *
 *   tenants   (ref, name)                                unique name
 *   entities  (ref, tenant, name, version, offset)       unique (tenant, name); the entity head
 *   clients   (ref, tenant, client_id, high, subject)    unique (tenant, client_id)
 *   entries   (tenant, partition, offset, entity, version, client, client_seq, committed_at,
 *              body, digest)                             primary key (tenant, partition, offset)
 *   log_ids   (tenant, id, partition, offset, corrects)  primary key (tenant, id)
 *
 * Each key and index, and the query that needs it:
 * - `entries` primary key (tenant, partition, offset): `readPartition` (a tenant's page of a
 *   partition after an offset), and every entry lookup of the ones below. Its inserts land at
 *   the end of each (tenant, partition) range, so a group touches few pages. The table keeps
 *   its rowid (rows are appended in commit order) and the key is a small integer index beside
 *   it: measured against the same table WITHOUT ROWID (200-byte bodies, 100 entries a
 *   transaction, synchronous=FULL, six interleaved rounds on the shared 2-core VM), the rowid
 *   table did 46k-70k entries/s (median 67k) and WITHOUT ROWID 25k-56k (median 50k), layout 3
 *   20k-50k (median 46k): a WITHOUT ROWID table keeps whole rows in its interior pages, and
 *   rows of ~400 bytes make that tree deep.
 * - `entries_entity_version` unique (entity, version): `readEntity` (a ledger from a version:
 *   the fold of entity states, the snapshotter, catch-up of one entity), and the guard that two
 *   entries never take one version of one entity. This index's inserts land all over its tree
 *   (one insertion point per entity written), which makes it the dearest one; nothing cheaper
 *   answers "the ledger of X from version v" in order.
 * - `entries_client_seq` unique (client, client_seq) for client entries: finding what was
 *   recorded under a client entry's id (`<clientId>-<clientSeq>`) when it is resent, or named by
 *   `corrects`; it replaces the unique index on the text id. Inserts land at the end of each
 *   client's range. New pushes never read it: the client's high-water mark (`clients.high`)
 *   tells a new entry from a resend.
 * - `entities` unique (tenant, name): the entity's ref and head, read once per entity per group
 *   (`entityHead`, the version and offset of the next entry) and by `head()`: the log no longer
 *   reads the newest entry of a ledger to learn its version.
 * - `clients` unique (tenant, client_id): the high-water mark and subject of a clientId, read
 *   once per client per group.
 * - `log_ids` primary key (tenant, id): ids of entries made by the log (its corrections, CRDT
 *   snapshots; and any older row whose id is not `<clientId>-<clientSeq>`), which have no
 *   clientSeq; `log_ids_corrects` (tenant, corrects) for the log's corrections of an entry,
 *   which an ack lists (a partial index: only corrections have `corrects`).
 * - The old `(tenant, partition, offset)` index and text uniques on `(tenant, id)` and
 *   `(tenant, entity, version)` are gone.
 *
 * Invariants:
 * 1. Every entry, refusal, deferral, client record, partition head and the meta rows (identity,
 *    generation, partitions) read back the same after the migration; entries keep their
 *    partition, offset, version, committed time, body and digest.
 * 2. A client entry whose id is `<clientId>-<clientSeq>` (every one core accepts) is found by
 *    (client, client_seq); any other entry by `log_ids`. So an entry resent after the upgrade
 *    dedupes against the one an older build stored.
 * 3. An entity's head row holds the version and offset of its newest entry.
 * 4. The append-only triggers of migration 2 are put on the new `entries` and on `log_ids`.
 * 5. Rows are copied a page (`SQLITE_MIGRATION_PAGE_ROWS`) at a time, in the old rowid order
 *    (commit order), inside migration 4's one transaction.
 */
import type Database from 'better-sqlite3'
import { entryId, SERVER_CLIENT_ID } from '@ledgerline/core'
import { decodeEntryBody } from './entry-body.ts'
import { SQLITE_MIGRATION_PAGE_ROWS } from './limits.ts'

/** Layout 4's tables, indexes and triggers (the store's statements name them). */
const LEAN_LAYOUT = `
  CREATE TABLE tenants (ref INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE) STRICT;
  CREATE TABLE entities (
    ref INTEGER PRIMARY KEY,
    tenant INTEGER NOT NULL,
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    "offset" INTEGER NOT NULL,
    UNIQUE (tenant, name)
  ) STRICT;
  CREATE TABLE clients (
    ref INTEGER PRIMARY KEY,
    tenant INTEGER NOT NULL,
    client_id TEXT NOT NULL,
    high INTEGER NOT NULL,
    subject TEXT,
    UNIQUE (tenant, client_id)
  ) STRICT;
  CREATE TABLE entries (
    tenant INTEGER NOT NULL,
    partition INTEGER NOT NULL,
    "offset" INTEGER NOT NULL,
    entity INTEGER NOT NULL,
    version INTEGER NOT NULL,
    client INTEGER,
    client_seq INTEGER,
    committed_at INTEGER NOT NULL,
    body BLOB NOT NULL,
    digest BLOB,
    PRIMARY KEY (tenant, partition, "offset")
  ) STRICT;
  CREATE UNIQUE INDEX entries_entity_version ON entries (entity, version);
  CREATE UNIQUE INDEX entries_client_seq ON entries (client, client_seq)
    WHERE client IS NOT NULL;
  CREATE TABLE log_ids (
    tenant INTEGER NOT NULL,
    id TEXT NOT NULL,
    partition INTEGER NOT NULL,
    "offset" INTEGER NOT NULL,
    corrects TEXT,
    PRIMARY KEY (tenant, id)
  ) STRICT;
  CREATE INDEX log_ids_corrects ON log_ids (tenant, corrects) WHERE corrects IS NOT NULL;
`

const APPEND_ONLY = `
  CREATE TRIGGER entries_append_only_update BEFORE UPDATE ON entries
    BEGIN SELECT RAISE(ABORT, 'Ledgerline entries are append-only'); END;
  CREATE TRIGGER entries_append_only_delete BEFORE DELETE ON entries
    BEGIN SELECT RAISE(ABORT, 'Ledgerline entries are append-only'); END;
  CREATE TRIGGER log_ids_append_only_update BEFORE UPDATE ON log_ids
    BEGIN SELECT RAISE(ABORT, 'Ledgerline entries are append-only'); END;
  CREATE TRIGGER log_ids_append_only_delete BEFORE DELETE ON log_ids
    BEGIN SELECT RAISE(ABORT, 'Ledgerline entries are append-only'); END;
`

/**
 * An entry with its names, as layout 3 stored it and as `sqlite-export.ts` reads layout 4 back
 * (names joined, the id made again).
 */
export interface NamedEntryRow {
  rowid: number
  partition: number
  offset: number
  tenant: string
  id: string
  entity: string
  version: number
  corrects: string | null
  committed_at: number
  body: Buffer
  digest: Buffer | null
}

/**
 * Rewrites layout 3 into layout 4, inside the caller's transaction (`migrate`).
 *
 * @example
 * db.transaction(() => leanLayout(db)).immediate()
 */
export function leanLayout(db: Database.Database): void {
  db.exec(`
    DROP TRIGGER entries_append_only_update;
    DROP TRIGGER entries_append_only_delete;
    ALTER TABLE entries RENAME TO entries_v3;
    ALTER TABLE clients RENAME TO clients_v3;
    DROP INDEX entries_tenant_partition;
    DROP INDEX entries_corrects;
  `)
  db.exec(LEAN_LAYOUT)
  const tenants = new Map<string, number>()
  const insertTenant = db.prepare(`INSERT INTO tenants (name) VALUES (?)`)
  const tenantRef = (name: string): number => {
    let ref = tenants.get(name)
    if (ref === undefined) {
      ref = Number(insertTenant.run(name).lastInsertRowid)
      tenants.set(name, ref)
    }
    return ref
  }
  // Clients first, with their marks and subjects as they were.
  const clients = new Map<string, number>()
  const insertClient = db.prepare(
    `INSERT INTO clients (tenant, client_id, high, subject) VALUES (?, ?, ?, ?)`,
  )
  const oldClients = db
    .prepare(`SELECT tenant, client_id, high, subject FROM clients_v3 ORDER BY rowid`)
    .all() as { tenant: string; client_id: string; high: number; subject: string | null }[]
  for (const c of oldClients) {
    const tenant = tenantRef(c.tenant)
    const ref = insertClient.run(tenant, c.client_id, c.high, c.subject).lastInsertRowid
    clients.set(`${tenant}\u0000${c.client_id}`, Number(ref))
  }
  const unrecorded = new Set<number>()
  const raiseHigh = db.prepare(`UPDATE clients SET high = max(high, ?) WHERE ref = ?`)
  const entities = new Map<string, number>()
  const insertEntity = db.prepare(
    `INSERT INTO entities (tenant, name, version, "offset") VALUES (?, ?, 0, 0)`,
  )
  const setHead = db.prepare(`UPDATE entities SET version = ?, "offset" = ? WHERE ref = ?`)
  const heads = new Map<number, { version: number; offset: number }>()
  const insertEntry = db.prepare(
    `INSERT INTO entries (tenant, partition, "offset", entity, version, client, client_seq,
       committed_at, body, digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  )
  const insertLogId = db.prepare(
    `INSERT INTO log_ids (tenant, id, partition, "offset", corrects) VALUES (?, ?, ?, ?, ?)`,
  )
  const page = db.prepare(
    `SELECT rowid, partition, "offset", tenant, id, entity, version, corrects, committed_at, body,
       digest FROM entries_v3 WHERE rowid > ? ORDER BY rowid LIMIT ${SQLITE_MIGRATION_PAGE_ROWS}`,
  )
  let after = 0
  for (;;) {
    const rows = page.all(after) as NamedEntryRow[]
    for (const row of rows) {
      after = row.rowid
      const tenant = tenantRef(row.tenant)
      const entityKey = `${tenant}\u0000${row.entity}`
      let entity = entities.get(entityKey)
      if (entity === undefined) {
        entity = Number(insertEntity.run(tenant, row.entity).lastInsertRowid)
        entities.set(entityKey, entity)
      }
      const head = heads.get(entity)
      if (head === undefined || row.version > head.version) {
        heads.set(entity, { version: row.version, offset: row.offset })
      }
      const entry = decodeEntryBody(row.body)
      let client: number | null = null
      // Invariant 2: only an id core would accept for the client entry is found by clientSeq.
      if (
        entry.clientId !== SERVER_CLIENT_ID &&
        row.id === entryId(entry.clientId, entry.clientSeq)
      ) {
        const key = `${tenant}\u0000${entry.clientId}`
        client = clients.get(key) ?? null
        if (client === null || unrecorded.has(client)) {
          // A client entry without its client's record (no build writes one): the record is
          // made with the highest clientSeq seen, so a resend is told from a new entry.
          client ??= Number(insertClient.run(tenant, entry.clientId, 0, null).lastInsertRowid)
          clients.set(key, client)
          unrecorded.add(client)
          raiseHigh.run(entry.clientSeq, client)
        }
      }
      insertEntry.run(
        tenant,
        row.partition,
        row.offset,
        entity,
        row.version,
        client,
        client === null ? null : entry.clientSeq,
        row.committed_at,
        row.body,
        row.digest,
      )
      if (client === null) {
        insertLogId.run(tenant, row.id, row.partition, row.offset, row.corrects)
      }
    }
    if (rows.length < SQLITE_MIGRATION_PAGE_ROWS) break
  }
  for (const [ref, head] of heads) setHead.run(head.version, head.offset, ref)
  // Refusals and deferrals keep their text keys: they are few, and read only by id.
  db.exec(`
    DROP TABLE entries_v3;
    DROP TABLE clients_v3;
  `)
  db.exec(APPEND_ONLY)
}

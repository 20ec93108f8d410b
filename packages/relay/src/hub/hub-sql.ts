/**
 * The SQL of a store hub's file (`hub-store.ts`): its tables and the prepared statements the
 * store runs. Kept apart so the store reads as what it decides, not how rows are found.
 *
 * Invariants:
 * 1. Every statement the store runs on a request path is found through an index: the queue by
 *    (tenant, id), id and open seq; the mirror by (partition, offset), (tenant, id) and (tenant,
 *    entity, version); clients by (tenant, clientId).
 */
import type BetterSqlite3 from 'better-sqlite3'
import type { StoredEntryRow } from '../entry-body.ts'

export const HUB_SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cursors (partition INTEGER PRIMARY KEY, through INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS mirror (
  partition INTEGER NOT NULL, offset INTEGER NOT NULL, tenant TEXT NOT NULL, entity TEXT NOT NULL,
  id TEXT NOT NULL, version INTEGER NOT NULL, committed_at INTEGER NOT NULL, body BLOB NOT NULL,
  PRIMARY KEY (partition, offset)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS mirror_id ON mirror (tenant, id);
CREATE INDEX IF NOT EXISTS mirror_entity ON mirror (tenant, entity, version);
CREATE TABLE IF NOT EXISTS queue (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT NOT NULL, id TEXT NOT NULL,
  client_id TEXT NOT NULL, client_seq INTEGER NOT NULL, subject TEXT NOT NULL,
  digest BLOB NOT NULL, body BLOB NOT NULL, fact INTEGER NOT NULL, held TEXT, result TEXT,
  UNIQUE (tenant, id));
CREATE INDEX IF NOT EXISTS queue_open ON queue (tenant, seq) WHERE result IS NULL;
CREATE INDEX IF NOT EXISTS queue_open_seq ON queue (seq) WHERE result IS NULL;
CREATE INDEX IF NOT EXISTS queue_id ON queue (id);
CREATE TABLE IF NOT EXISTS clients (
  tenant TEXT NOT NULL, client_id TEXT NOT NULL, high INTEGER NOT NULL, subject TEXT,
  PRIMARY KEY (tenant, client_id)) WITHOUT ROWID;
`

export interface QueueRow {
  readonly seq: number
  readonly tenant: string
  readonly id: string
  readonly subject: string
  readonly digest: Uint8Array
  readonly body: Uint8Array
  readonly held: string | null
  readonly result: string | null
}

/** The prepared statements of a hub's file. */
export interface HubSql {
  readonly meta: S<[string], { value: string }>
  readonly setMeta: S
  readonly cursors: S<[], { partition: number; through: number }>
  readonly setCursor: S
  readonly mirrorInsert: S
  readonly mirrorById: S<[string, string], StoredEntryRow>
  readonly readPartition: S<[number, string, number, number], StoredEntryRow>
  readonly readEntity: S<[string, string, number, number], StoredEntryRow>
  readonly head: S<[string, string], { version: number; offset: number }>
  readonly queued: S<[string, string], QueueRow>
  readonly enqueue: S
  readonly open: S<[number, number], QueueRow>
  readonly openFacts: S<[string, number, number], QueueRow>
  readonly openCount: S<[], { n: number }>
  readonly lastSeq: S<[], { seq: number }>
  readonly queuedAny: S<[string], QueueRow>
  readonly settle: S
  readonly settleAny: S
  readonly client: S<[string, string], { high: number; subject: string | null }>
  readonly setClient: S
  readonly prune: S
  readonly clearMirror: S
  readonly clearCursors: S
  readonly dropSettled: S
  readonly resetHighs: S
}

type S<P extends unknown[] = unknown[], R = unknown> = BetterSqlite3.Statement<P, R>

/**
 * @example
 * const sql = prepareHubSql(db) // sql.enqueue.run(…), sql.open.all(afterSeq, limit)
 */
export function prepareHubSql(db: BetterSqlite3.Database): HubSql {
  return {
    meta: db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?'),
    setMeta: db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)'),
    cursors: db.prepare<[], { partition: number; through: number }>(
      'SELECT partition, through FROM cursors',
    ),
    setCursor: db.prepare('INSERT OR REPLACE INTO cursors (partition, through) VALUES (?, ?)'),
    mirrorInsert: db.prepare(
      `INSERT OR IGNORE INTO mirror (partition, offset, tenant, entity, id, version, committed_at, body)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    mirrorById: db.prepare<[string, string], StoredEntryRow>(
      'SELECT partition, offset, version, committed_at, body FROM mirror WHERE tenant = ? AND id = ?',
    ),
    readPartition: db.prepare<[number, string, number, number], StoredEntryRow>(
      `SELECT partition, offset, version, committed_at, body FROM mirror
     WHERE partition = ? AND tenant = ? AND offset > ? ORDER BY offset LIMIT ?`,
    ),
    readEntity: db.prepare<[string, string, number, number], StoredEntryRow>(
      `SELECT partition, offset, version, committed_at, body FROM mirror
     WHERE tenant = ? AND entity = ? AND version >= ? ORDER BY version LIMIT ?`,
    ),
    head: db.prepare<[string, string], { version: number; offset: number }>(
      `SELECT version, offset FROM mirror WHERE tenant = ? AND entity = ?
     ORDER BY version DESC LIMIT 1`,
    ),
    queued: db.prepare<[string, string], QueueRow>(
      'SELECT seq, tenant, id, subject, digest, body, held, result FROM queue WHERE tenant = ? AND id = ?',
    ),
    queuedAny: db.prepare<[string], QueueRow>(
      'SELECT seq, tenant, id, subject, digest, body, held, result FROM queue WHERE id = ?',
    ),
    enqueue: db.prepare(
      `INSERT INTO queue (tenant, id, client_id, client_seq, subject, digest, body, fact, held)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    open: db.prepare<[number, number], QueueRow>(
      `SELECT seq, tenant, id, subject, digest, body, held, result FROM queue
     WHERE result IS NULL AND seq > ? ORDER BY seq LIMIT ?`,
    ),
    openFacts: db.prepare<[string, number, number], QueueRow>(
      `SELECT seq, tenant, id, subject, digest, body, held, result FROM queue
     WHERE tenant = ? AND seq > ? AND result IS NULL AND held IS NULL AND fact = 1
     ORDER BY seq LIMIT ?`,
    ),
    openCount: db.prepare<[], { n: number }>(
      'SELECT count(*) AS n FROM queue WHERE result IS NULL',
    ),
    lastSeq: db.prepare<[], { seq: number }>('SELECT COALESCE(MAX(seq), 0) AS seq FROM queue'),
    settle: db.prepare(
      'UPDATE queue SET result = ? WHERE tenant = ? AND id = ? AND result IS NULL',
    ),
    settleAny: db.prepare('UPDATE queue SET result = ? WHERE id = ? AND result IS NULL'),
    client: db.prepare<[string, string], { high: number; subject: string | null }>(
      'SELECT high, subject FROM clients WHERE tenant = ? AND client_id = ?',
    ),
    setClient: db.prepare(
      `INSERT INTO clients (tenant, client_id, high, subject) VALUES (?, ?, ?, ?)
     ON CONFLICT (tenant, client_id) DO UPDATE SET high = max(high, excluded.high),
       subject = coalesce(subject, excluded.subject)`,
    ),
    prune: db.prepare(
      `DELETE FROM queue WHERE result IS NOT NULL AND seq <= (
       SELECT seq FROM queue WHERE result IS NOT NULL ORDER BY seq DESC LIMIT 1 OFFSET ?)`,
    ),
    clearMirror: db.prepare('DELETE FROM mirror'),
    clearCursors: db.prepare('DELETE FROM cursors'),
    dropSettled: db.prepare('DELETE FROM queue WHERE result IS NOT NULL'),
    resetHighs: db.prepare('UPDATE clients SET high = 0'),
  }
}

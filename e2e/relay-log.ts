/**
 * Reads the relay's server log straight from its SQLite file, read-only, to check what head
 * office really holds: which entries, in which order, and that none is there twice.
 */
import Database from 'better-sqlite3'
import { join } from 'node:path'
import { decodeEntryBody } from '@ledgerline/relay'

export interface LoggedEntry {
  readonly id: string
  readonly entity: string
  readonly version: number
  readonly kind: string
  readonly data: Record<string, unknown>
  readonly corrects: string | null
  readonly clientId: string
}

/** Every entry of the log whose entity starts with `prefix`, in version order per entity. */
export function readRelayLog(dataDir: string, prefix: string): LoggedEntry[] {
  const db = new Database(join(dataDir, 'log.sqlite'), { readonly: true, fileMustExist: true })
  try {
    const rows = db
      // Layout 4 (`sqlite-lean-layout.ts` of the relay): names are interned; a client entry's
      // id is `<clientId>-<clientSeq>`, an entry of the log keeps its id in `log_ids`.
      .prepare(
        `SELECT coalesce(l.id, c.client_id || '-' || e.client_seq) AS id, n.name AS entity,
           e.version, e.body
         FROM entries e
         JOIN entities n ON n.ref = e.entity
         LEFT JOIN clients c ON c.ref = e.client
         LEFT JOIN log_ids l ON l.tenant = e.tenant AND l.partition = e.partition
           AND l."offset" = e."offset"
         WHERE substr(n.name, 1, ?) = ?
         ORDER BY n.name, e.version`,
      )
      .all(prefix.length, prefix) as {
      id: string
      entity: string
      version: number
      body: Buffer
    }[]
    return rows.map((row) => {
      const entry = decodeEntryBody(row.body) as unknown as {
        kind: string
        data: Record<string, unknown>
        clientId: string
        corrects?: string
      }
      return {
        id: row.id,
        entity: row.entity,
        version: row.version,
        // From the body: the `corrects` column holds the log's own corrections only.
        corrects: entry.corrects ?? null,
        kind: entry.kind,
        data: entry.data,
        clientId: entry.clientId,
      }
    })
  } finally {
    db.close()
  }
}

export function kindsOf(entries: readonly LoggedEntry[]): string[] {
  return entries.map((e) => e.kind)
}

/** Entries grouped by entity, in first-seen order. */
export function byEntity(entries: readonly LoggedEntry[]): Map<string, LoggedEntry[]> {
  const map = new Map<string, LoggedEntry[]>()
  for (const e of entries) {
    const list = map.get(e.entity)
    if (list === undefined) map.set(e.entity, [e])
    else list.push(e)
  }
  return map
}

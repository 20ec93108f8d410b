/**
 * Interned names of the SQLite log (layout 4, `sqlite-migrations.ts`): tenants, entities and
 * clientIds are stored once, in `tenants`, `entities` and `clients`, and entries name them by
 * integer (`ref`), so every entry row and index key holds small integers instead of text.
 *
 * Terms: a *ref* is the integer primary key of such a row; *pending* refs are those made by the
 * write transaction in progress.
 *
 * Invariants:
 * 1. A ref read from the file names a committed row and is cached at once; a ref made by the
 *    write transaction stays pending until `committed()`, and `rolledBack()` forgets it, so a
 *    cached ref always names a row on disk (rows of these tables are never deleted).
 * 2. Each cache holds at most `SQLITE_REFS_CACHED_MAX` refs; past that it is emptied and refs
 *    are read again (a point lookup on a unique index).
 */
import type Database from 'better-sqlite3'
import { SQLITE_REFS_CACHED_MAX } from './limits.ts'

/** One interned kind: `key` is the name (under its tenant's ref for entities and clients). */
export interface Interned {
  /** The ref of `key`, reading the file when it is not cached; `undefined` when there is none. */
  find(key: string, ...args: unknown[]): number | undefined
  /** Marks a ref the write transaction made (invariant 1). */
  made(key: string, ref: number): void
}

export interface SqliteRefs {
  readonly tenants: Interned
  readonly entities: Interned
  readonly clients: Interned
  /** The write transaction committed: its refs are cached. */
  committed(): void
  /** It rolled back: its refs are forgotten. */
  rolledBack(): void
}

/**
 * Refs of one log file, looked up with the file's own statements.
 *
 * @example
 * const refs = createSqliteRefs(db)
 * refs.tenants.find('acme', 'acme') // 1, or undefined before the tenant's first entry
 */
export function createSqliteRefs(db: Database.Database): SqliteRefs {
  const pendings: Map<string, number>[] = []
  const caches: Map<string, number>[] = []
  const interned = (sql: string): Interned => {
    const select = db.prepare(sql).pluck()
    const cache = new Map<string, number>()
    const pending = new Map<string, number>()
    caches.push(cache)
    pendings.push(pending)
    return {
      find(key, ...args) {
        const ref = cache.get(key) ?? pending.get(key)
        if (ref !== undefined) return ref
        const found = select.get(...args) as number | undefined
        if (found !== undefined) remember(cache, key, found)
        return found
      },
      made(key, ref) {
        pending.set(key, ref)
      },
    }
  }
  return {
    tenants: interned(`SELECT ref FROM tenants WHERE name = ?`),
    entities: interned(`SELECT ref FROM entities WHERE tenant = ? AND name = ?`),
    clients: interned(`SELECT ref FROM clients WHERE tenant = ? AND client_id = ?`),
    committed() {
      for (let i = 0; i < pendings.length; i++) {
        const pending = pendings[i] as Map<string, number>
        for (const [key, ref] of pending) remember(caches[i] as Map<string, number>, key, ref)
        pending.clear()
      }
    },
    rolledBack() {
      for (const pending of pendings) pending.clear()
    },
  }
}

/** The cache key of a name under its tenant's ref. */
export function refKey(tenant: number, name: string): string {
  return `${tenant}\u0000${name}`
}

function remember(cache: Map<string, number>, key: string, ref: number): void {
  if (cache.size >= SQLITE_REFS_CACHED_MAX) cache.clear()
  cache.set(key, ref)
}

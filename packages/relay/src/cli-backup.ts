/**
 * `ledgerline-relay backup` and `restore`: a consistent copy of a live SQLite log, and putting
 * one back so that clients notice and recover (issue 12's restore recovery).
 *
 *   ledgerline-relay backup --data DIR --to FILE      (the relay may keep running)
 *   ledgerline-relay restore --from FILE --data DIR   (no relay on DIR)
 *
 * Terms: the *log* is `DIR/log.sqlite` (with its `-wal` and `-shm` while open); a *backup* is one
 * self-contained SQLite file (journal mode DELETE) holding the log as of one moment.
 *
 * Invariants:
 * 1. A backup is one snapshot: SQLite's online backup API (better-sqlite3 `db.backup`) copies
 *    every page in one step, inside one read transaction of the source, so appends the relay
 *    commits meanwhile are either all in the copy or not at all (a step-wise copy restarts when
 *    another process writes, and might never finish under load). The relay's writers are not
 *    blocked: WAL readers and writers do not wait for each other.
 * 2. A backup is written to a temporary name beside `FILE`, checked (integrity, identity, every
 *    partition gap-free up to its head), and only then renamed to `FILE`; an existing `FILE` is
 *    never overwritten.
 * 3. `restore` holds the data directory's lock from before it touches anything until it is done,
 *    so it refuses to run beside a relay (exit 2). The log it replaces is kept, renamed with its
 *    `-wal` and `-shm` to `log.sqlite.before-restore-<time>`; nothing is deleted.
 * 4. `restore` raises the generation above both the backup's and the replaced log's, so every
 *    client that saw either log meets a generation it has not seen and recovers.
 */
import { existsSync, renameSync, rmSync } from 'node:fs'
import { basename, dirname, join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import Database from 'better-sqlite3'
import type { LogIdentity } from '@ledgerline/protocol'
import { lockDataDir } from './data-dir-lock.ts'
import { BACKUP_STEP_PAGES } from './limits.ts'
import { RelayError } from './relay-error.ts'
import { readIdentity, SQLITE_SCHEMA_VERSION } from './sqlite-migrations.ts'
import { createSqliteStore, SQLITE_LOG_FILE } from './sqlite-store.ts'

export const BACKUP_HELP = `  ledgerline-relay backup --data DIR --to FILE
                           a consistent copy of the SQLite log in DIR while its relay runs
  ledgerline-relay restore --from FILE --data DIR
                           put a backup in place (relay on DIR stopped; the replaced log is
                           kept beside it) and raise the generation so clients recover
`

/** What a backup holds, as checked after it was written. */
export interface BackupSummary {
  readonly identity: LogIdentity
  readonly entries: number
  readonly refusals: number
  readonly clients: number
  readonly partitions: number
}

/**
 * `backup`: copies the log of `--data` to `--to` (invariants 1 and 2); the line to print.
 *
 * @example
 * await backupCommand(['--data=/var/lib/ledgerline', '--to=/backups/log.sqlite'], env)
 */
export async function backupCommand(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
): Promise<string> {
  const flags = parse(args, { data: 'string', to: 'string' })
  const dir = dataDirOf(flags, env)
  const to = required(flags.to, '--to FILE')
  const source = join(dir, SQLITE_LOG_FILE)
  if (!existsSync(source)) throw new RelayError('config', `no Ledgerline log at ${source}`)
  if (existsSync(to)) throw new RelayError('config', `${to} exists; back up to a new file`)
  if (!existsSync(dirname(resolve(to)))) {
    throw new RelayError('config', `the directory of ${to} does not exist`)
  }
  const partial = join(dirname(resolve(to)), `.${basename(to)}.partial-${process.pid}`)
  const db = openLog(source, false)
  try {
    if (readIdentity(db) === undefined) {
      throw new RelayError('config', `${source} is not a Ledgerline log (it has no identity)`)
    }
    // Invariant 1: one step of every page is one read transaction of the source.
    await db.backup(partial, { progress: () => BACKUP_STEP_PAGES })
  } catch (error) {
    rmSync(partial, { force: true })
    throw storeError(error, `backup of ${source} failed`)
  } finally {
    db.close()
  }
  try {
    const summary = checkBackup(partial, true)
    renameSync(partial, to)
    return (
      `ledgerline log ${summary.identity.id} (generation ${summary.identity.generation}) ` +
      `backed up to ${to}: ${summary.entries} entries, ${summary.refusals} refusals, ` +
      `${summary.clients} clients`
    )
  } catch (error) {
    rmSync(partial, { force: true })
    throw error
  }
}

/**
 * `restore`: puts the backup `--from` in place as the log of `--data` (invariants 3 and 4);
 * the line to print.
 *
 * @example
 * await restoreCommand(['--from=/backups/log.sqlite', '--data=/var/lib/ledgerline'], env)
 */
export async function restoreCommand(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
): Promise<string> {
  const flags = parse(args, { data: 'string', from: 'string' })
  const dir = dataDirOf(flags, env)
  const from = required(flags.from, '--from FILE')
  if (!existsSync(from)) throw new RelayError('config', `no backup at ${from}`)
  if (!existsSync(dir)) throw new RelayError('config', `no data directory ${dir}`)
  const backup = checkBackup(from, false)
  const lock = lockDataDir(dir)
  try {
    const file = join(dir, SQLITE_LOG_FILE)
    const replaced = existsSync(file) ? identityOf(file) : undefined
    const keptAs = replaced === undefined ? undefined : keepAside(file)
    try {
      const source = openLog(from, true)
      try {
        await source.backup(file, { progress: () => BACKUP_STEP_PAGES })
      } finally {
        source.close()
      }
      // Migrates a backup of an older build, like any start would; then invariant 4.
      const store = await createSqliteStore({ file })
      let identity = await store.identity()
      const floor = Math.max(backup.identity.generation, replaced?.generation ?? 0)
      try {
        while (identity.generation <= floor) identity = await store.bumpGeneration()
      } finally {
        await store.close()
      }
      const kept = keptAs === undefined ? '' : ` (the replaced log is kept as ${keptAs})`
      return (
        `restored ledgerline log ${identity.id} from ${from} into ${dir}${kept}; ` +
        `it is now at generation ${identity.generation}: clients recover at their next hello`
      )
    } catch (error) {
      // Put the replaced log back rather than leave a half-restored one.
      if (keptAs !== undefined) putBack(keptAs, file)
      throw storeError(error, `restore into ${dir} failed`)
    }
  } finally {
    lock.release()
  }
}

// ---------------------------------------------------------------------------------------------

type Flags = Record<string, string | boolean | undefined>

function parse(args: readonly string[], options: Record<string, 'string'>): Flags {
  try {
    return parseArgs({
      args: [...args],
      strict: true,
      options: Object.fromEntries(Object.entries(options).map(([k, type]) => [k, { type }])),
    }).values
  } catch (error) {
    throw new RelayError('config', error instanceof Error ? error.message : String(error))
  }
}

function required(v: string | boolean | undefined, usage: string): string {
  if (typeof v !== 'string' || v === '') throw new RelayError('config', `name it with ${usage}`)
  return v
}

/** No default directory: an operator names the log a command reads or replaces. */
function dataDirOf(flags: Flags, env: NodeJS.ProcessEnv): string {
  const v = flags.data
  if (typeof v === 'string' && v !== '') return v
  const e = env.LEDGERLINE_DATA
  if (e !== undefined && e !== '') return e
  throw new RelayError('config', 'name the log with --data DIR')
}

function openLog(file: string, readonly: boolean): Database.Database {
  try {
    const db = new Database(file, { readonly, fileMustExist: true })
    db.pragma('busy_timeout = 5000')
    return db
  } catch (error) {
    throw new RelayError('config', `cannot open ${file} as SQLite: ${messageOf(error)}`, {
      cause: error,
    })
  }
}

/**
 * Checks a backup file (invariant 2): SQLite says it is intact, it is a Ledgerline log of a
 * schema this build knows, and every partition holds offsets 1..head. `own`: a file this command
 * just wrote, switched to journal mode DELETE so it is one self-contained file.
 */
function checkBackup(file: string, own: boolean): BackupSummary {
  let db: Database.Database
  try {
    db = new Database(file, { readonly: !own, fileMustExist: true })
  } catch (error) {
    throw new RelayError('config', `cannot open ${file} as SQLite: ${messageOf(error)}`)
  }
  try {
    if (own) db.pragma('journal_mode = DELETE')
    const check = db.pragma('quick_check', { simple: true })
    if (check !== 'ok') throw new RelayError('config', `${file} is damaged: ${String(check)}`)
    const version = db.pragma('user_version', { simple: true }) as number
    if (version > SQLITE_SCHEMA_VERSION) {
      throw new RelayError(
        'store_version',
        `${file} has schema version ${version}; this Ledgerline knows up to ${SQLITE_SCHEMA_VERSION}`,
      )
    }
    const identity = readIdentity(db)
    if (identity === undefined) {
      throw new RelayError('config', `${file} is not a Ledgerline log (it has no identity)`)
    }
    const count = (sql: string) => (db.prepare(sql).get() as { n: number }).n
    const gaps = db
      .prepare(
        `SELECT h.partition, h.head, count(e."offset") AS n, coalesce(max(e."offset"), 0) AS top
         FROM partition_heads h LEFT JOIN entries e ON e.partition = h.partition
         GROUP BY h.partition HAVING n <> h.head OR top <> h.head`,
      )
      .all() as { partition: number; head: number; n: number }[]
    const gap = gaps[0]
    if (gap !== undefined) {
      throw new RelayError(
        'store_failed',
        `${file}: partition ${gap.partition} holds ${gap.n} entries but its head is ${gap.head}`,
      )
    }
    return {
      identity,
      entries: count('SELECT count(*) AS n FROM entries'),
      refusals: count('SELECT count(*) AS n FROM refusals'),
      clients: count('SELECT count(*) AS n FROM clients'),
      partitions: count('SELECT count(*) AS n FROM partition_heads'),
    }
  } finally {
    db.close()
  }
}

function identityOf(file: string): LogIdentity | undefined {
  const db = openLog(file, false)
  try {
    return readIdentity(db)
  } finally {
    db.close()
  }
}

const SIDE_FILES = ['', '-wal', '-shm'] as const

/** Invariant 3: the log and its side files renamed together, so the kept copy still opens. */
function keepAside(file: string): string {
  const kept = `${file}.before-restore-${new Date().toISOString().replace(/[:.]/g, '-')}`
  for (const suffix of SIDE_FILES) {
    if (existsSync(`${file}${suffix}`)) renameSync(`${file}${suffix}`, `${kept}${suffix}`)
  }
  return kept
}

function putBack(kept: string, file: string): void {
  for (const suffix of SIDE_FILES) rmSync(`${file}${suffix}`, { force: true })
  for (const suffix of SIDE_FILES) {
    if (existsSync(`${kept}${suffix}`)) renameSync(`${kept}${suffix}`, `${file}${suffix}`)
  }
}

function storeError(error: unknown, what: string): unknown {
  if (error instanceof RelayError) return error
  return new RelayError('store_failed', `${what}: ${messageOf(error)}`, { cause: error })
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

/**
 * `ledgerline-relay migrate-sqlite --from DIR --database-url URL`: moves a SQLite log into an
 * empty PostgreSQL database, for a shop that outgrew one relay (POSTGRES.md, "Moving from SQLite
 * to PostgreSQL").
 *
 * Invariants:
 * 1. The SQLite data directory's lock is held for the whole copy: no relay writes the log
 *    meanwhile, and a running relay makes the command exit 2.
 * 2. The copy is exact and verified, or nothing is written (`postgres-import.ts`); the SQLite
 *    log is only read (`sqlite-export.ts`), so it stays usable whatever happens.
 * 3. Success prints one line with what was copied; the PostgreSQL log has the SQLite log's id
 *    and generation, so clients keep their cursors and outboxes as they are.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { lockDataDir } from './data-dir-lock.ts'
import { importIntoPostgres } from './postgres-import.ts'
import { RelayError } from './relay-error.ts'
import { exportSqliteLog } from './sqlite-export.ts'
import { SQLITE_LOG_FILE } from './sqlite-store.ts'

export const MIGRATE_HELP = `  ledgerline-relay migrate-sqlite --from DIR --database-url URL
                           copy the SQLite log in DIR (its relay stopped) into an empty
                           PostgreSQL database, verified; the same log id and generation
`

/**
 * Runs the command; the line to print (invariant 3).
 *
 * @example
 * await migrateSqliteCommand(['--from=data', `--database-url=${url}`], process.env)
 */
export async function migrateSqliteCommand(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
): Promise<string> {
  let values: Record<string, string | boolean | undefined>
  try {
    values = parseArgs({
      args: [...args],
      strict: true,
      options: { from: { type: 'string' }, 'database-url': { type: 'string' } },
    }).values
  } catch (error) {
    throw new RelayError('config', error instanceof Error ? error.message : String(error))
  }
  const dir = typeof values.from === 'string' ? values.from : undefined
  if (dir === undefined)
    throw new RelayError('config', 'name the SQLite data directory with --from DIR')
  const url =
    typeof values['database-url'] === 'string'
      ? values['database-url']
      : env.LEDGERLINE_DATABASE_URL || undefined
  if (url === undefined) throw new RelayError('config', 'name the database with --database-url URL')
  const file = join(dir, SQLITE_LOG_FILE)
  if (!existsSync(file)) throw new RelayError('config', `no Ledgerline log at ${file}`)
  const lock = lockDataDir(dir)
  try {
    const copied = await importIntoPostgres(url, exportSqliteLog(file))
    const { identity, partitions } = copied.summary
    return (
      `copied ledgerline log ${identity?.id ?? '?'} (generation ${identity?.generation ?? '?'}) ` +
      `from ${file} into PostgreSQL: ${copied.entries} entries in ${partitions} partitions, ` +
      `${copied.refusals} refusals, ${copied.deferrals} deferrals, ${copied.clients} clients, ` +
      `${copied.origins} origins of moved entries; ` +
      'verified (counts and a digest per partition)'
    )
  } finally {
    lock.release()
  }
}

/**
 * `ledgerline-relay snapshot`: snapshots every ledger entity of an existing log at least
 * `LEDGER_SNAPSHOT_ENTRIES_EVERY` versions past its snapshot (`ledger-snapshots.ts`' walk) — a
 * log written before ledger snapshots, or one a relay served with its queue dropping.
 *
 *   ledgerline-relay snapshot --data DIR --schema FILE
 *   ledgerline-relay snapshot --store postgres --database-url URL --schema FILE
 *
 * Invariants (as `cli-admin.ts` 1–3): a SQLite directory is locked first (a relay on it must be
 * stopped; PostgreSQL relays may keep running, snapshots are derived data they replace by
 * newer ones), no log is created, exit 0/1/2 with one line.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { createLedgerSnapshotter } from './ledger-snapshots.ts'
import type { LedgerSnapshotOutcome } from './ledger-snapshots.ts'
import { lockDataDir } from './data-dir-lock.ts'
import { createPostgresStore } from './postgres-store.ts'
import { RelayError } from './relay-error.ts'
import { loadSchemaModule } from './schema-loader.ts'
import { createSqliteStore, SQLITE_LOG_FILE } from './sqlite-store.ts'

export const SNAPSHOT_HELP = `  ledgerline-relay snapshot --data DIR --schema FILE
  ledgerline-relay snapshot --store postgres --database-url URL --schema FILE
                           snapshot every ledger entity far enough past its snapshot (a log
                           written before ledger snapshots); prints the counts
`

export async function snapshotCommand(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
): Promise<string> {
  let values: Record<string, string | boolean | undefined>
  try {
    values = parseArgs({
      args: [...args],
      strict: true,
      options: {
        data: { type: 'string' },
        store: { type: 'string' },
        'database-url': { type: 'string' },
        schema: { type: 'string' },
      },
    }).values
  } catch (error) {
    throw new RelayError('config', error instanceof Error ? error.message : String(error))
  }
  const pick = (flag: string, variable: string): string | undefined => {
    const v = values[flag]
    if (typeof v === 'string') return v
    const e = env[variable]
    return e === undefined || e === '' ? undefined : e
  }
  const schemaFile = pick('schema', 'LEDGERLINE_SCHEMA')
  if (schemaFile === undefined) throw new RelayError('config', 'name the schema with --schema')
  const schema = await loadSchemaModule(schemaFile, process.cwd())
  const store = pick('store', 'LEDGERLINE_STORE') ?? 'sqlite'
  const report = (counts: Record<LedgerSnapshotOutcome, number>) =>
    `ledger snapshots: ${Object.entries(counts)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`
  if (store === 'postgres') {
    const url = pick('database-url', 'LEDGERLINE_DATABASE_URL')
    if (url === undefined) throw new RelayError('config', '--store postgres needs --database-url')
    const log = await createPostgresStore({ url, schema })
    try {
      return report(await createLedgerSnapshotter(log, schema).walk())
    } finally {
      await log.close()
    }
  }
  if (store !== 'sqlite') {
    throw new RelayError('config', `--store must be sqlite or postgres, got '${store}'`)
  }
  const dataDir = pick('data', 'LEDGERLINE_DATA')
  if (dataDir === undefined) throw new RelayError('config', 'name the log with --data DIR')
  const file = join(dataDir, SQLITE_LOG_FILE)
  if (!existsSync(file)) throw new RelayError('config', `no Ledgerline log at ${file}`)
  const lock = lockDataDir(dataDir)
  try {
    const log = await createSqliteStore({ file, schema })
    try {
      return report(await createLedgerSnapshotter(log, schema).walk())
    } finally {
      await log.close()
    }
  } finally {
    lock.release()
  }
}

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
import { parseTarget, withTargetLog } from './cli-admin.ts'
import { createLedgerSnapshotter } from './ledger-snapshots.ts'
import type { LedgerSnapshotOutcome } from './ledger-snapshots.ts'
import { RelayError } from './relay-error.ts'
import { loadSchemaModule } from './schema-loader.ts'

export const SNAPSHOT_HELP = `  ledgerline-relay snapshot --data DIR --schema FILE
  ledgerline-relay snapshot --store postgres --database-url URL --schema FILE
                           snapshot every ledger entity far enough past its snapshot (a log
                           written before ledger snapshots); prints the counts
`

export async function snapshotCommand(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
): Promise<string> {
  const target = parseTarget(args, env, ['schema'])
  const schemaFile = target.pick('schema', 'LEDGERLINE_SCHEMA')
  if (schemaFile === undefined) throw new RelayError('config', 'name the schema with --schema')
  const schema = await loadSchemaModule(schemaFile, process.cwd())
  const report = (counts: Record<LedgerSnapshotOutcome, number>) =>
    `ledger snapshots: ${Object.entries(counts)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`
  return report(
    await withTargetLog(target, schema, (log) => createLedgerSnapshotter(log, schema).walk()),
  )
}

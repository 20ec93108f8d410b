/**
 * `ledgerline-relay retention`: the operator's retention (issue 17, off by default: nothing is
 * ever dropped unless an operator runs `drop`), over `retention-export.ts`.
 *
 *   ledgerline-relay retention export --before ISO_DATE --to DIR --data DIR --schema FILE
 *   ledgerline-relay retention drop --before ISO_DATE --export DIR --data DIR --schema FILE
 *   (or --store postgres --database-url URL instead of --data)
 *
 * Invariants (as `cli-admin.ts` 1–3): a SQLite directory is locked first (its relay must be
 * stopped); PostgreSQL relays may keep running (the drop's transaction holds the entries'
 * table lock while it runs: their appends and reads wait for it); no log is created; exit 0 with
 * one line of counts, 2 with one line for a mistake or a refusal (`RetentionError`, nothing
 * dropped), 1 for a failure of the store.
 */
import { parseTarget, withTargetLog } from './cli-admin.ts'
import { RelayError } from './relay-error.ts'
import { dropRetention, exportRetention, RetentionError } from './retention-export.ts'
import { loadSchemaModule } from './schema-loader.ts'

export const RETENTION_HELP = `  ledgerline-relay retention export --before DATE --to DIR --data DIR --schema FILE
                           write the history snapshots cover, committed before DATE (ISO
                           8601), to DIR as NDJSON per partition with a manifest
  ledgerline-relay retention drop --before DATE --export DIR --data DIR --schema FILE
                           drop from the hot log what that export holds (relays on DIR
                           stopped; or --store postgres --database-url URL for either)
`

export async function retentionCommand(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
): Promise<string> {
  const [verb, ...rest] = args
  if (verb !== 'export' && verb !== 'drop') {
    throw new RelayError('config', 'retention needs export or drop')
  }
  const target = parseTarget(rest, env, ['schema', 'before', 'to', 'export'])
  const schemaFile = target.pick('schema', 'LEDGERLINE_SCHEMA')
  if (schemaFile === undefined) throw new RelayError('config', 'name the schema with --schema')
  const beforeText = target.pick('before', 'LEDGERLINE_RETENTION_BEFORE')
  const before = beforeText === undefined ? Number.NaN : Date.parse(beforeText)
  if (!Number.isFinite(before)) {
    throw new RelayError('config', 'name the horizon with --before as an ISO 8601 date')
  }
  const schema = await loadSchemaModule(schemaFile, process.cwd())
  try {
    if (verb === 'export') {
      const dir = target.pick('to', 'LEDGERLINE_RETENTION_TO')
      if (dir === undefined) throw new RelayError('config', 'name the export directory with --to')
      const m = await withTargetLog(target, schema, (s) =>
        exportRetention(s, schema, { before, dir }),
      )
      return `retention export: ${m.entries} entries of ${m.entities} entities in ${m.files.length} files, ${dir}/manifest.json`
    }
    const dir = target.pick('export', 'LEDGERLINE_RETENTION_EXPORT')
    const d = await withTargetLog(target, schema, (s) => dropRetention(s, schema, { before, dir }))
    return `retention drop: ${d.entries} entries of ${d.entities} entities dropped (${d.skipped} dropped before)`
  } catch (error) {
    // A refusal is the operator's to act on, as a flag mistake is (exit 2).
    if (error instanceof RetentionError) {
      throw new RelayError('config', `${error.code}: ${error.message}`)
    }
    throw error
  }
}

/**
 * Operator commands of `ledgerline-relay` that act on a server log instead of serving it:
 *
 *   ledgerline-relay bump-generation --data DIR
 *   ledgerline-relay bump-generation --store postgres --database-url URL
 *
 *   ledgerline-relay backup --data DIR --to FILE      (`cli-backup.ts`)
 *   ledgerline-relay restore --from FILE --data DIR   (`cli-backup.ts`)
 *   ledgerline-relay migrate-sqlite --from DIR --database-url URL   (`cli-migrate.ts`)
 *   ledgerline-relay snapshot --data DIR --schema FILE   (`cli-snapshot.ts`)
 *   ledgerline-relay retention export|drop --before DATE …   (`cli-retention.ts`)
 *
 * `bump-generation` raises the log's generation by one (`LogStore.bumpGeneration`): what an
 * operator runs after restoring a log from a backup or replacing it, so that every client sees
 * another identity in `welcome.log` and recovers (it re-sends what the log lacks, drops cursors
 * and confirmed history, resubscribes). Restore the backup first, then bump, then start the
 * relays.
 *
 * Invariants:
 * 1. On a SQLite data directory a command first takes the directory's lock
 *    (`data-dir-lock.ts`), so it never runs beside a relay on that directory: a held lock is
 *    exit 2 naming the holder. PostgreSQL relays may keep running: they read the identity at
 *    every `hello`.
 * 2. A command never creates a log: a directory without its log file is exit 2.
 * 3. Exit 0 with one line on stdout on success; exit 2 with one line on stderr for a mistake
 *    (a flag, a missing log, a locked directory); exit 1 for a failure of the store.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import type { Schema } from '@ledgerline/core'
import type { LedgerSnapshots, LogRetention, LogStore } from '@ledgerline/log'
import type { LogIdentity } from '@ledgerline/protocol'
import { BACKUP_HELP, backupCommand, restoreCommand } from './cli-backup.ts'
import { MIGRATE_HELP, migrateSqliteCommand } from './cli-migrate.ts'
import { RETENTION_HELP, retentionCommand } from './cli-retention.ts'
import { SNAPSHOT_HELP, snapshotCommand } from './cli-snapshot.ts'
import { lockDataDir } from './data-dir-lock.ts'
import { createPostgresStore } from './postgres-store.ts'
import { RelayError } from './relay-error.ts'
import { createSqliteStore, SQLITE_LOG_FILE } from './sqlite-store.ts'

/** The commands `runAdminCommand` knows, as the first argument of the CLI. */
export const ADMIN_COMMANDS = [
  'bump-generation',
  'backup',
  'restore',
  'migrate-sqlite',
  'snapshot',
  'retention',
] as const
type AdminCommand = (typeof ADMIN_COMMANDS)[number]

export const ADMIN_HELP = `  ledgerline-relay bump-generation --data DIR
  ledgerline-relay bump-generation --store postgres --database-url URL
                           after restoring or replacing a log (relays on DIR stopped): raise
                           its generation so clients recover; prints the new identity
${BACKUP_HELP}${MIGRATE_HELP}${SNAPSHOT_HELP}${RETENTION_HELP}`

/** Where an admin command writes its one line. */
export interface AdminOutput {
  out(line: string): void
  err(line: string): void
}

/** True when `argv` (without node and the script) starts with an admin command. */
export function isAdminCommand(argv: readonly string[]): boolean {
  return (ADMIN_COMMANDS as readonly string[]).includes(argv[0] ?? '')
}

/**
 * Runs the admin command in `argv` and returns the process's exit code (invariant 3).
 *
 * @example
 * process.exitCode = await runAdminCommand(['bump-generation', '--data', 'data'], process.env)
 */
export async function runAdminCommand(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  output: AdminOutput = STDIO,
): Promise<number> {
  try {
    output.out(await COMMANDS[argv[0] as AdminCommand](argv.slice(1), env))
    return 0
  } catch (error) {
    const mistake = error instanceof RelayError && MISTAKES.has(error.kind)
    output.err(`ledgerline-relay ${argv[0] ?? ''}: ${messageOf(error)}`)
    return mistake ? 2 : 1
  }
}

// ---------------------------------------------------------------------------------------------

/** The log an admin command acts on, and `pick` for its other flags (`--flag` or `VARIABLE`). */
export type Target = (
  | { readonly store: 'sqlite'; readonly dataDir: string }
  | { readonly store: 'postgres'; readonly url: string }
) & { readonly pick: (flag: string, variable: string) => string | undefined }

const MISTAKES: ReadonlySet<string> = new Set(['config', 'locked', 'store_version'])

/** Each command: its arguments (after its name) to the one line it prints on success. */
const COMMANDS: Readonly<
  Record<AdminCommand, (args: readonly string[], env: NodeJS.ProcessEnv) => Promise<string>>
> = {
  'bump-generation': async (args, env) => {
    const identity = await bumpGeneration(parseTarget(args, env))
    return `ledgerline log ${identity.id} is now at generation ${identity.generation}`
  },
  backup: backupCommand,
  restore: restoreCommand,
  'migrate-sqlite': migrateSqliteCommand,
  snapshot: snapshotCommand,
  retention: retentionCommand,
}

const STDIO: AdminOutput = {
  out: (line) => void process.stdout.write(`${line}\n`),
  err: (line) => void process.stderr.write(`${line}\n`),
}

/**
 * The log named by `--data DIR` or `--store postgres --database-url URL`, with `extra` string
 * flags of the command.
 */
export function parseTarget(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  extra: readonly string[] = [],
): Target {
  let values: Record<string, string | boolean | undefined>
  try {
    values = parseArgs({
      args: [...args],
      strict: true,
      options: {
        data: { type: 'string' },
        store: { type: 'string' },
        'database-url': { type: 'string' },
        ...Object.fromEntries(extra.map((flag) => [flag, { type: 'string' as const }])),
      },
    }).values
  } catch (error) {
    throw new RelayError('config', messageOf(error))
  }
  const pick = (flag: string, variable: string): string | undefined => {
    const v = values[flag]
    if (typeof v === 'string') return v
    const e = env[variable]
    return e === undefined || e === '' ? undefined : e
  }
  const store = pick('store', 'LEDGERLINE_STORE') ?? 'sqlite'
  if (store === 'postgres') {
    const url = pick('database-url', 'LEDGERLINE_DATABASE_URL')
    if (url === undefined) throw new RelayError('config', '--store postgres needs --database-url')
    return { store, url, pick }
  }
  if (store !== 'sqlite') {
    throw new RelayError('config', `--store must be sqlite or postgres, got '${store}'`)
  }
  // No default directory: an operator names the log a command changes.
  const dataDir = pick('data', 'LEDGERLINE_DATA')
  if (dataDir === undefined) throw new RelayError('config', 'name the log with --data DIR')
  return { store, dataDir, pick }
}

async function bumpGeneration(target: Target): Promise<LogIdentity> {
  return withTargetLog(target, undefined, (store) => store.bumpGeneration())
}

/**
 * Runs `fn` on the log `target` names, opened with `schema` and closed after: a SQLite
 * directory locked first and never created (invariants 1–2).
 *
 * @example
 * await withTargetLog(target, schema, (store) => createLedgerSnapshotter(store, schema).walk())
 */
export async function withTargetLog<T>(
  target: Target,
  schema: Schema | undefined,
  fn: (store: LogStore & LedgerSnapshots & LogRetention) => Promise<T>,
): Promise<T> {
  if (target.store === 'postgres') {
    const store = await createPostgresStore({ url: target.url, schema })
    try {
      return await fn(store)
    } finally {
      await store.close()
    }
  }
  const file = join(target.dataDir, SQLITE_LOG_FILE)
  if (!existsSync(file)) throw new RelayError('config', `no Ledgerline log at ${file}`)
  const lock = lockDataDir(target.dataDir)
  try {
    const store = await createSqliteStore({ file, schema })
    try {
      return await fn(store)
    } finally {
      await store.close()
    }
  } finally {
    lock.release()
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

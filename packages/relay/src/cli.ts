#!/usr/bin/env node
/**
 * `ledgerline-relay`: starts a relay from flags and environment variables (a flag wins over its
 * variable). Prints one line to stdout when ready: `ledgerline relay listening on <http url>
 * (<ws url>)`; logs go to stderr. SIGTERM or SIGINT shuts down gracefully (appends in flight
 * are acked first); a second signal exits at once. A configuration mistake exits with code 2.
 *
 * `ledgerline-relay bump-generation --data DIR` (or `--store postgres --database-url URL`)
 * raises the generation of the server log, which every client compares with what it saw: run it
 * after restoring the log from a backup, while no relay of that log runs (SQLite: the data
 * directory's lock is taken, so a running relay makes it exit 2). Prints the new identity.
 */
import { realpathSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { devSecret } from './dev-secret.ts'
import { ADMIN_HELP, isAdminCommand, runAdminCommand } from './cli-admin.ts'
import type { LogStore } from './log-store.ts'
import { createPostgresStore } from './postgres-store.ts'
import { createRelay } from './relay.ts'
import type { RelayOptions } from './relay.ts'
import { RelayError } from './relay-error.ts'
import { loadSchemaModule } from './schema-loader.ts'

export const CLI_PORT_DEFAULT = 8787
export const CLI_DATA_DEFAULT = './ledgerline-data'

export const HELP = `ledgerline-relay: the Ledgerline relay (WebSocket sync endpoint + server log)

Usage: ledgerline-relay [options]
${ADMIN_HELP}
Each option can also be set by the environment variable in brackets; a flag wins.

  --host HOST              interface to listen on (default 127.0.0.1)        [LEDGERLINE_HOST]
  --port N                 port; 0 picks a free one (default ${CLI_PORT_DEFAULT})            [LEDGERLINE_PORT]
  --data DIR               directory of the SQLite log, DIR/log.sqlite
                           (default ${CLI_DATA_DEFAULT})                               [LEDGERLINE_DATA]
  --schema MODULE          module (path relative to the working directory; TypeScript is
                           bundled at start) whose default export is defineSchema(...): the
                           entity types the log decides with. Without it the log is plain
                           (shape and grants only).                          [LEDGERLINE_SCHEMA]
  --partitions N           partition count of a new log (default 16; an existing log keeps
                           its own)                                          [LEDGERLINE_PARTITIONS]
  --store sqlite|postgres  server log backend (default sqlite)               [LEDGERLINE_STORE]
  --database-url URL       PostgreSQL connection string for --store postgres [LEDGERLINE_DATABASE_URL]
  --secret S               HS256 shared secret for tokens (prefer the variable: flags show in
                           the process list)                                 [LEDGERLINE_SECRET]
  --public-key-file FILE   PEM public key for tokens (EC P-256 → ES256, RSA → RS256,
                           Ed25519 → EdDSA)                                  [LEDGERLINE_PUBLIC_KEY_FILE]
  --jwks-file FILE         JSON Web Key Set file for tokens                  [LEDGERLINE_JWKS_FILE]
  --issuer ISS             expected token issuer (default ledgerline)        [LEDGERLINE_ISSUER]
  --audience AUD           expected token audience (default ledgerline-relay) [LEDGERLINE_AUDIENCE]
  --allowed-origins A,B    browser Origins allowed to connect, comma separated, e.g.
                           https://pos.example.com. Clients that send no Origin rely on their
                           token alone.                                      [LEDGERLINE_ALLOWED_ORIGINS]
  --static DIR             serve static files from DIR at / (index.html for app routes)
                                                                             [LEDGERLINE_STATIC]
  --dev                    development mode: GET /dev/token?tenant=T&sub=S hands out tokens
                           with full grants for T; without a key, signs them with a secret kept
                           in DIR/dev-secret (tokens outlive a restart); with no
                           --allowed-origins, same-origin pages may connect. NOT FOR PRODUCTION.
                                                                             [LEDGERLINE_DEV=1]
  --log-level LEVEL        pino level: fatal, error, warn, info, debug (default warn)
                                                                             [LEDGERLINE_LOG_LEVEL]
  --help                   print this help

Endpoints: ws://HOST:PORT/sync (sync), ws://HOST:PORT/yjs/<room> (y-websocket),
/healthz, /metrics (Prometheus), /dev/token (dev only).

A configuration mistake exits with code 2.
`

export interface CliConfig {
  readonly help: boolean
  readonly store: 'sqlite' | 'postgres'
  readonly databaseUrl: string | undefined
  readonly schemaModule: string | undefined
  readonly relay: Omit<RelayOptions, 'schema' | 'store'>
}

/**
 * Reads flags and environment variables into a relay configuration. Throws
 * `RelayError('config')` naming the bad option.
 *
 * @example
 * parseCliArgs(['--port', '0', '--dev'], {}) // { relay: { port: 0, dev: true, … }, … }
 */
export function parseCliArgs(argv: readonly string[], env: NodeJS.ProcessEnv): CliConfig {
  let values: Record<string, string | boolean | undefined>
  try {
    values = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        help: { type: 'boolean', short: 'h' },
        host: { type: 'string' },
        port: { type: 'string' },
        data: { type: 'string' },
        schema: { type: 'string' },
        partitions: { type: 'string' },
        store: { type: 'string' },
        'database-url': { type: 'string' },
        secret: { type: 'string' },
        'public-key-file': { type: 'string' },
        'jwks-file': { type: 'string' },
        issuer: { type: 'string' },
        audience: { type: 'string' },
        'allowed-origins': { type: 'string' },
        static: { type: 'string' },
        dev: { type: 'boolean' },
        'log-level': { type: 'string' },
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
  const store = pick('store', 'LEDGERLINE_STORE') ?? 'sqlite'
  if (store !== 'sqlite' && store !== 'postgres') {
    throw new RelayError('config', `--store must be sqlite or postgres, got '${store}'`)
  }
  const origins = pick('allowed-origins', 'LEDGERLINE_ALLOWED_ORIGINS')
  const devEnv = env.LEDGERLINE_DEV
  const partitions = pick('partitions', 'LEDGERLINE_PARTITIONS')
  return {
    help: values.help === true,
    store,
    databaseUrl: pick('database-url', 'LEDGERLINE_DATABASE_URL'),
    schemaModule: pick('schema', 'LEDGERLINE_SCHEMA'),
    relay: {
      host: pick('host', 'LEDGERLINE_HOST') ?? '127.0.0.1',
      port: integer(pick('port', 'LEDGERLINE_PORT') ?? String(CLI_PORT_DEFAULT), '--port', 65_535),
      dataDir: pick('data', 'LEDGERLINE_DATA') ?? CLI_DATA_DEFAULT,
      partitions: partitions === undefined ? undefined : integer(partitions, '--partitions', 1024),
      auth: {
        secret: pick('secret', 'LEDGERLINE_SECRET'),
        publicKeyFile: pick('public-key-file', 'LEDGERLINE_PUBLIC_KEY_FILE'),
        jwksFile: pick('jwks-file', 'LEDGERLINE_JWKS_FILE'),
        issuer: pick('issuer', 'LEDGERLINE_ISSUER'),
        audience: pick('audience', 'LEDGERLINE_AUDIENCE'),
      },
      allowedOrigins:
        origins === undefined
          ? []
          : origins
              .split(',')
              .map((o) => o.trim())
              .filter((o) => o !== ''),
      dev: values.dev === true || devEnv === '1' || devEnv === 'true',
      staticDir: pick('static', 'LEDGERLINE_STATIC'),
      logLevel: pick('log-level', 'LEDGERLINE_LOG_LEVEL') ?? 'warn',
    },
  }
}

// The loader (TypeScript schemas bundled at start) lives in its own module.
export { loadSchemaModule } from './schema-loader.ts'

async function main(): Promise<void> {
  if (isAdminCommand(process.argv.slice(2))) {
    process.exitCode = await runAdminCommand(process.argv.slice(2), process.env)
    return
  }
  const config = parseCliArgs(process.argv.slice(2), process.env)
  if (config.help) {
    process.stdout.write(HELP)
    return
  }
  const schema =
    config.schemaModule === undefined
      ? undefined
      : await loadSchemaModule(config.schemaModule, process.cwd())
  // The one place the PostgreSQL store is wired in: the relay gets it as an open `store`, and
  // this process closes it after the relay has drained.
  let store: LogStore | undefined
  if (config.store === 'postgres') {
    if (config.databaseUrl === undefined) {
      throw new RelayError(
        'config',
        '--store postgres needs --database-url or LEDGERLINE_DATABASE_URL',
      )
    }
    store = await createPostgresStore({
      url: config.databaseUrl,
      schema,
      partitions: config.relay.partitions,
    })
  }
  const hasKey = [
    config.relay.auth.secret,
    config.relay.auth.publicKeyFile,
    config.relay.auth.jwksFile,
  ].some((k) => k !== undefined)
  if (config.relay.dev) {
    console.error(
      'ledgerline relay: --dev is on: anyone can get a token at /dev/token. NOT FOR PRODUCTION.',
    )
  }
  // --dev without a key keeps its secret in the data directory: tokens outlive a restart.
  const auth =
    config.relay.dev && !hasKey ? devSecret(config.relay, console.error) : config.relay.auth
  const relay = await createRelay({ ...config.relay, auth, schema, store }).catch(
    async (error: unknown) => {
      await store?.close()
      throw error
    },
  )
  let stopping = false
  const stop = (signal: string) => {
    if (stopping) {
      console.error(`ledgerline relay: second ${signal}, exiting now`)
      process.exit(1)
    }
    stopping = true
    relay
      .close()
      .then(() => store?.close())
      .then(
        () => process.exit(0),
        (error: unknown) => {
          console.error('ledgerline relay: shutdown failed:', error)
          process.exit(1)
        },
      )
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
  // Ready only once a signal would shut it down gracefully.
  console.log(`ledgerline relay listening on ${relay.httpUrl} (${relay.url})`)
}

function integer(text: string, name: string, max: number): number {
  const n = Number(text)
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n > max) {
    throw new RelayError('config', `${name} must be an integer in 0..${max}, got '${text}'`)
  }
  return n
}

function isMain(): boolean {
  const script = process.argv[1]
  if (script === undefined) return false
  try {
    // Through the npm bin symlink argv[1] is the link; compare real paths.
    return pathToFileURL(realpathSync(script)).href === import.meta.url
  } catch {
    return false
  }
}

/** Runs the CLI on `process.argv`; the `ledgerline-relay` bin (bin/) calls it. */
export function runCli(): void {
  main().catch((error: unknown) => {
    if (error instanceof RelayError) {
      console.error(`ledgerline relay: ${error.message}`)
      process.exit(2)
    }
    console.error('ledgerline relay: failed to start:', error)
    process.exit(1)
  })
}

if (isMain()) runCli()

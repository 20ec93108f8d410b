#!/usr/bin/env node
/**
 * `ledgerline-relay`: starts a relay from flags and environment variables (a flag wins over its
 * variable). Logs are JSON lines (`relay-log.ts`) on stderr, and one more on stdout when ready:
 * event `ready`, msg `ledgerline relay listening on <http url> (<ws url>)`, whatever the level.
 * SIGTERM or SIGINT shuts down gracefully (appends in flight are acked first); a second signal
 * exits at once. A configuration mistake exits with code 2 after one `config_error` line.
 *
 * `ledgerline-relay bump-generation --data DIR` (or `--store postgres --database-url URL`)
 * raises the generation of the server log, which every client compares with what it saw: run it
 * after restoring the log from a backup, while no relay of that log runs (SQLite: the data
 * directory's lock is taken, so a running relay makes it exit 2). Prints the new identity.
 */
import { realpathSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import type { Logger } from 'pino'
import { devSecret } from './dev-secret.ts'
import { ADMIN_HELP, isAdminCommand, runAdminCommand } from './cli-admin.ts'
import type { UpstreamOptions } from './hub/hub.ts'
import { upstreamTokenSource } from './hub/upstream-token.ts'
import type { LogStore } from './log-store.ts'
import { createPostgresStore } from './postgres-store.ts'
import { createRelay } from './relay.ts'
import type { RelayOptions } from './relay.ts'
import { RelayError } from './relay-error.ts'
import { createRelayLogger, LOG_FORMATS, RELAY_VERSION } from './relay-log.ts'
import type { LogFormat } from './relay-log.ts'
import { loadSchemaModule } from './schema-loader.ts'
import { SQLITE_WRITER_DEFAULT } from './sqlite-store.ts'

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
  --sqlite-writer thread|worker
                           where SQLite commits run: the event loop's thread, or a writer
                           thread of their own (default worker)         [LEDGERLINE_SQLITE_WRITER]
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
                           with full grants for T (&role=hub: a store hub's token, with a
                           forward grant); on a hub, POST /dev/upstream {"connected":false}
                           cuts the link to head office until {"connected":true}; without a
                           key, signs them with a secret kept in DIR/dev-secret (tokens
                           outlive a restart); with no
                           --allowed-origins, same-origin pages may connect. NOT FOR PRODUCTION.
                                                                             [LEDGERLINE_DEV=1]
  --upstream URL[,URL]     run as a store hub in front of head office's sync URL
                           (wss://hq.example.com/sync): the hub keeps a mirror of head
                           office's log and a durable store queue in DIR/hub.sqlite, answers
                           registers offline with the same keys as head office, and forwards
                           everything upstream. A backup hub names the primary hub, then head
                           office: it moves on when one does not answer. SQLite only.
                                                                             [LEDGERLINE_UPSTREAM]
  --upstream-token-file F  the hub's own token (with a forward grant), read again for every
                           connection and renewal                [LEDGERLINE_UPSTREAM_TOKEN_FILE]
                           (or the token itself in                       [LEDGERLINE_UPSTREAM_TOKEN])
  --upstream-token-command CMD
                           a command that prints the hub's token, run again to renew
                                                              [LEDGERLINE_UPSTREAM_TOKEN_COMMAND]
  --log-level LEVEL        pino level: fatal, error, warn, info, debug, trace, silent
                           (default info)                                    [LEDGERLINE_LOG_LEVEL]
  --log-format FORMAT      json (default: one JSON object per line) or pretty (a terminal)
                                                                             [LEDGERLINE_LOG_FORMAT]
  --version                print the version
  --help                   print this help

Endpoints: ws://HOST:PORT/sync (sync), ws://HOST:PORT/yjs/<room> (y-websocket),
/healthz, /readyz, /metrics (Prometheus), /dev/token and /dev/upstream (dev only).

A configuration mistake exits with code 2.
`

export interface CliConfig {
  readonly help: boolean
  readonly version: boolean
  readonly logFormat: LogFormat
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
        'sqlite-writer': { type: 'string' },
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
        'log-format': { type: 'string' },
        upstream: { type: 'string' },
        'upstream-token-file': { type: 'string' },
        'upstream-token-command': { type: 'string' },
        version: { type: 'boolean' },
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
  const sqliteWriter = pick('sqlite-writer', 'LEDGERLINE_SQLITE_WRITER') ?? SQLITE_WRITER_DEFAULT
  if (sqliteWriter !== 'thread' && sqliteWriter !== 'worker') {
    throw new RelayError(
      'config',
      `--sqlite-writer must be thread or worker, got '${sqliteWriter}'`,
    )
  }
  const origins = pick('allowed-origins', 'LEDGERLINE_ALLOWED_ORIGINS')
  const devEnv = env.LEDGERLINE_DEV
  const partitions = pick('partitions', 'LEDGERLINE_PARTITIONS')
  const logLevel = pick('log-level', 'LEDGERLINE_LOG_LEVEL') ?? 'info'
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new RelayError('config', `--log-level must be one of ${LOG_LEVELS.join(', ')}`)
  }
  const logFormat = pick('log-format', 'LEDGERLINE_LOG_FORMAT') ?? 'json'
  if (!(LOG_FORMATS as readonly string[]).includes(logFormat)) {
    throw new RelayError('config', `--log-format must be json or pretty, got '${logFormat}'`)
  }
  const upstreamUrl = pick('upstream', 'LEDGERLINE_UPSTREAM')
  if (upstreamUrl !== undefined && store !== 'sqlite') {
    throw new RelayError('config', '--upstream (a store hub) runs on its own SQLite: no --store')
  }
  let upstream: UpstreamOptions | undefined
  if (upstreamUrl !== undefined) {
    try {
      upstream = {
        url: upstreamUrls(upstreamUrl),
        token: upstreamTokenSource({
          file: pick('upstream-token-file', 'LEDGERLINE_UPSTREAM_TOKEN_FILE'),
          value: env.LEDGERLINE_UPSTREAM_TOKEN,
          command: pick('upstream-token-command', 'LEDGERLINE_UPSTREAM_TOKEN_COMMAND'),
        }),
      }
    } catch (error) {
      throw new RelayError('config', error instanceof Error ? error.message : String(error))
    }
  }
  return {
    help: values.help === true,
    version: values.version === true,
    logFormat: logFormat as LogFormat,
    store,
    databaseUrl: pick('database-url', 'LEDGERLINE_DATABASE_URL'),
    schemaModule: pick('schema', 'LEDGERLINE_SCHEMA'),
    relay: {
      host: pick('host', 'LEDGERLINE_HOST') ?? '127.0.0.1',
      port: integer(pick('port', 'LEDGERLINE_PORT') ?? String(CLI_PORT_DEFAULT), '--port', 65_535),
      dataDir: pick('data', 'LEDGERLINE_DATA') ?? CLI_DATA_DEFAULT,
      sqliteWriter,
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
      logLevel,
      upstream,
    },
  }
}

// The loader (TypeScript schemas bundled at start) lives in its own module.
export { loadSchemaModule } from './schema-loader.ts'

/** The process's logger once the flags are read; the error path makes one if there is none. */
let processLogger: Logger | undefined

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
  if (config.version) {
    process.stdout.write(`${RELAY_VERSION}\n`)
    return
  }
  const logger = createRelayLogger({ level: config.relay.logLevel, format: config.logFormat })
  processLogger = logger
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
  // --dev without a key keeps its secret in the data directory: tokens outlive a restart.
  const auth =
    config.relay.dev && !hasKey
      ? devSecret(config.relay, (line) => logger.info({ event: 'dev_secret' }, line))
      : config.relay.auth
  const relay = await createRelay({
    ...config.relay,
    auth,
    schema,
    store,
    storeKind: config.store,
    logger,
    // A SQLite writer thread that died: what it committed is on disk; a supervisor restarts.
    onStoreFailed: () => process.exit(1),
  }).catch(async (error: unknown) => {
    await store?.close()
    throw error
  })
  let stopping = false
  const stop = (signal: string) => {
    if (stopping) {
      logger.warn({ event: 'shutdown_forced', signal }, `second ${signal}, exiting now`)
      process.exit(1)
    }
    stopping = true
    const begun = Date.now()
    logger.info({ event: 'shutdown_begun', signal }, 'shutting down: acking appends in flight')
    relay
      .close()
      .then(() => store?.close())
      .then(
        () => {
          logger.info({ event: 'shutdown_done', durationMs: Date.now() - begun }, 'shut down')
          process.exit(0)
        },
        (error: unknown) => {
          logger.error({ event: 'shutdown_done', err: error }, 'shutdown failed')
          process.exit(1)
        },
      )
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
  // Ready only once a signal would shut it down gracefully; on stdout at any level, because
  // supervisors and scripts wait for it.
  createRelayLogger({ level: 'info', format: config.logFormat, fd: 1 }).info(
    {
      event: 'ready',
      version: RELAY_VERSION,
      store: config.store,
      url: relay.url,
      httpUrl: relay.httpUrl,
      // A hub that has not reached head office yet has no log to name.
      log: await relay.store.identity().catch(() => undefined),
      role: config.relay.upstream === undefined ? 'head_office' : 'hub',
    },
    `ledgerline relay listening on ${relay.httpUrl} (${relay.url})`,
  )
}

const LOG_LEVELS: readonly string[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

/** The format asked for, read loosely: the error path runs when the flags may not parse. */
function guessLogFormat(argv: readonly string[], env: NodeJS.ProcessEnv): LogFormat {
  const i = argv.indexOf('--log-format')
  const asked = i >= 0 ? argv[i + 1] : env.LEDGERLINE_LOG_FORMAT
  return asked === 'pretty' ? 'pretty' : 'json'
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
    const logger =
      processLogger ??
      createRelayLogger({ format: guessLogFormat(process.argv.slice(2), process.env) })
    if (error instanceof RelayError) {
      logger.fatal(
        { event: 'config_error', kind: error.kind },
        `ledgerline relay: ${error.message}`,
      )
      process.exit(2)
    }
    logger.fatal({ event: 'start_failed', err: error }, 'ledgerline relay: failed to start')
    process.exit(1)
  })
}

if (isMain()) runCli()

/** `--upstream a,b`: the primary hub, then head office (a backup hub); one URL otherwise. */
function upstreamUrls(value: string): string | readonly string[] {
  const urls = value
    .split(',')
    .map((u) => u.trim())
    .filter((u) => u.length > 0)
  if (urls.length === 0) throw new RelayError('config', '--upstream needs a URL')
  return urls.length === 1 ? (urls[0] as string) : urls
}

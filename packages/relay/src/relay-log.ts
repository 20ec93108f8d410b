/**
 * The relay's logs: pino, JSON lines only, one line per event, with stable field names an
 * operator can search and alert on. `--log-format pretty` formats the same lines for a terminal
 * (our own few lines below, not a dependency).
 *
 * Terms: an *event* is the `event` field of a line, one of `RELAY_LOG_EVENTS`; every line the
 * relay writes has one. pino's own fields stay as pino writes them: `level` (number), `time`
 * (ms since the epoch), `pid`, `hostname`, `name` (`ledgerline-relay`), `msg`; an error is `err`.
 *
 * Invariants:
 * 1. Every line is one JSON object with an `event` (JSON format), or one formatted line (pretty
 *    format); nothing else is ever written by the relay process, so a log shipper parses all of
 *    it. The admin commands (`backup`, `restore`, …) print their one result line instead.
 * 2. Writes are synchronous: a line logged before `process.exit` is out before the process ends.
 * 3. The field names listed in `packages/relay/README.md` ("Logs") are part of the interface: a
 *    rename is a breaking change.
 */
import { createRequire } from 'node:module'
import { writeSync } from 'node:fs'
import { pino } from 'pino'
import type { DestinationStream, Logger } from 'pino'

/** The version of `@ledgerline/relay` this process runs (its package.json). */
export const RELAY_VERSION: string = (
  createRequire(import.meta.url)('../package.json') as { version: string }
).version

/** The `event` of every line the relay writes, with what it means. */
export const RELAY_LOG_EVENTS = {
  start: 'the relay is starting: version, store, partitions, limits in force, origins',
  ready: 'the relay listens (stdout, whatever the level): url, httpUrl, store, log identity',
  dev_mode: '--dev is on: /dev/token hands out tokens to anyone',
  dev_secret: 'where --dev keeps the secret its tokens are signed with',
  connection_opened: 'a sync connection was welcomed: tenant, sub, clientId',
  connection_closed: 'a sync connection closed: reason, message, code, tenant, sub, clientId',
  socket_error: 'a socket reported a protocol violation (it closes itself)',
  shutdown_begun: 'a signal arrived: signal, connections',
  shutdown_done: 'everything in flight was acked and the log closed: durationMs',
  shutdown_forced: 'a second signal: the process exits at once',
  store_lost: 'the log failed to read or write: op, err',
  store_regained: 'the log works again after store_lost: op, downMs',
  slow_commit: 'an append took longer than SLOW_COMMIT_MS to be durable: durationMs, entries',
  append_failed: 'an append failed (the client resends): err',
  internal_error: 'an HTTP request, a frame or a read failed inside the relay: err',
  origin_refused: 'an upgrade from a browser Origin not on the list: origin',
  snapshot_failed: 'a CRDT snapshot failed (appends are not affected): err',
  warm_up_failed: 'the push path warm-up before listening failed (a colder first push): reason',
  yjs_error: 'the y-websocket endpoint failed: err',
  config_error: 'a configuration mistake: the process exits with code 2',
  start_failed: 'the relay could not start: the process exits with code 1',
} as const
export type RelayLogEvent = keyof typeof RELAY_LOG_EVENTS

/** `json` (the default, one object per line) or `pretty` (a terminal). */
export type LogFormat = 'json' | 'pretty'
export const LOG_FORMATS: readonly LogFormat[] = ['json', 'pretty']

export interface RelayLoggerOptions {
  /** pino level; default `info`. */
  readonly level?: string | undefined
  readonly format?: LogFormat | undefined
  /** File descriptor written to; 2 (stderr) by default. */
  readonly fd?: number | undefined
}

/**
 * A logger of the relay's kind (invariants 1 and 2).
 *
 * @example
 * const logger = createRelayLogger({ level: 'info', format: 'pretty' })
 * logger.info({ event: 'start', version: RELAY_VERSION }, 'relay starting')
 */
export function createRelayLogger(options: RelayLoggerOptions = {}): Logger {
  const fd = options.fd ?? 2
  const stream: DestinationStream =
    options.format === 'pretty'
      ? { write: (line: string) => void writeSync(fd, `${formatPretty(line)}\n`) }
      : pino.destination({ dest: fd, sync: true })
  return pino({ name: 'ledgerline-relay', level: options.level ?? 'info' }, stream)
}

/**
 * One JSON log line as a terminal line: `time LEVEL event msg key=value …` (UTC time of day).
 * A line that is not JSON is returned as it is.
 *
 * @example
 * formatPretty('{"level":30,"time":0,"event":"ready","msg":"listening","port":1}')
 * // '00:00:00.000 INFO  ready listening port=1'
 */
export function formatPretty(line: string): string {
  let record: Record<string, unknown>
  try {
    record = JSON.parse(line) as Record<string, unknown>
  } catch {
    return line.trimEnd()
  }
  const { level, time, event, msg, pid: _pid, hostname: _host, name: _name, ...fields } = record
  const when = typeof time === 'number' ? new Date(time).toISOString().slice(11, 23) : '--:--:--'
  const label = (LEVEL_LABELS[Number(level)] ?? String(level)).padEnd(5)
  const head = [when, label, String(event ?? '-'), typeof msg === 'string' ? msg : '']
  const rest = Object.entries(fields).map(([k, v]) => `${k}=${prettyValue(v)}`)
  return [...head, ...rest].filter((part) => part !== '').join(' ')
}

// ---------------------------------------------------------------------------------------------

const LEVEL_LABELS: Readonly<Record<number, string>> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
}

function prettyValue(value: unknown): string {
  if (typeof value === 'string') return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value)
  if (typeof value === 'object' && value !== null && 'message' in value && 'type' in value) {
    // A serialized error: its type and message say enough on a terminal.
    const err = value as { type: unknown; message: unknown }
    return JSON.stringify(`${String(err.type)}: ${String(err.message)}`)
  }
  return JSON.stringify(value)
}

// The parts of the edges design (issues 12 and 13; docs/ARCHITECTURE.md) that the client and relay of 3a8bfae do not have yet, named
// in ONE place so the tests type-check today and the implementers adapt a name here, not in
// every test. Each helper reads or passes the new field loosely; on 3a8bfae it finds nothing
// (or the option is ignored) and the test fails on its assertion, not on a type error.
import { spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import type { ClientOptions, ClientStatus } from '../src/index.ts'
import type { LogPlace } from './edge-relay.ts'

/** `status().held` and `status().heldReasons`: entries the relay deferred, held back. */
export function heldOf(status: ClientStatus): {
  readonly held: number | undefined
  readonly heldReasons: readonly { readonly code: string; readonly count: number }[] | undefined
} {
  const s = status as unknown as {
    held?: number
    heldReasons?: readonly { code: string; count: number }[]
  }
  return { held: s.held, heldReasons: s.heldReasons }
}

/** `defineEntity({ …spec, version })`: the explicit fold version that keys snapshots. */
export function withVersion<T extends object>(spec: T, version: number): T {
  return { ...spec, version }
}

/** The client's `onWarning` hook (development warnings; no console in libraries). */
export function onWarningOption(onWarning: (warning: unknown) => void): Partial<ClientOptions> {
  return { onWarning } as Partial<ClientOptions>
}

/**
 * `ledgerline-relay bump-generation`: what an operator runs after restoring a log from a backup
 * (`--data DIR` for SQLite, `--store postgres --database-url URL` for PostgreSQL).
 */
export function bumpGeneration(place: LogPlace): { status: number | null; output: string } {
  const args =
    place.kind === 'sqlite'
      ? ['bump-generation', '--data', place.dataDir]
      : ['bump-generation', '--store', 'postgres', '--database-url', place.url]
  const out = spawnSync(process.execPath, [RELAY_CLI, ...args], {
    encoding: 'utf8',
    timeout: 30_000,
  })
  return { status: out.status, output: `${out.stdout}${out.stderr}`.trim() }
}

const RELAY_CLI = join(
  dirname(createRequire(import.meta.url).resolve('@ledgerline/relay/package.json')),
  'dist',
  'cli.js',
)

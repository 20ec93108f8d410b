/**
 * A private PostgreSQL cluster for tests: `initdb` in a temporary directory, `postgres` on
 * 127.0.0.1 and a free loopback port, started and stopped by the test run.
 *
 * Terms: a *cluster* is one PostgreSQL data directory served by one postmaster. The harness
 * finds the binaries on PATH or under Debian's `/usr/lib/postgresql/<ver>/bin` (where CI's
 * `postgresql` package puts them, not on PATH).
 *
 * Invariants:
 * 1. Loopback only: `listen_addresses=127.0.0.1`, the socket in the cluster's own directory,
 *    trust auth (nothing but the test run can reach it).
 * 2. Durable like production: `fsync=on`, `synchronous_commit=on`, so crash tests mean
 *    something.
 * 3. Everything the harness starts it stops by pid or by `pg_ctl` on its own data directory,
 *    and it removes its directory, also when the test process exits early.
 * 4. As root, PostgreSQL refuses to run; the harness then runs its binaries as the
 *    `postgres` user (`runuser`) and hands it the directory.
 * 5. Without binaries, `findPostgresBinaries()` returns the reason, so tests are skipped
 *    saying why, never silently passed.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
} from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'

export interface PostgresBinaries {
  readonly bin: string
  readonly initdb: string
  readonly pgCtl: string
}

export interface PostgresCluster {
  /** `postgres://postgres@127.0.0.1:<port>/postgres` */
  readonly url: string
  readonly port: number
  readonly dataDir: string
  /** The postmaster's pid (changes after `start()`). */
  readonly pid: number
  /** A URL for another database of this cluster. */
  urlFor(database: string): string
  /** Creates a database in the cluster and returns its URL. */
  createDatabase(name: string): Promise<string>
  /** `pg_ctl stop -m <mode>`; `immediate` is a crash (no checkpoint, WAL replay on start). */
  kill(mode: 'fast' | 'immediate'): void
  /** Starts the cluster again on the same port after `kill`. */
  start(): void
  /** Stops the cluster (fast) and removes its directory. Safe to call twice. */
  stop(): void
}

/** Where to look for the PostgreSQL server binaries, in order. */
export function findPostgresBinaries(): PostgresBinaries | { reason: string } {
  const candidates: string[] = []
  for (const dir of (process.env.PATH ?? '').split(':')) if (dir !== '') candidates.push(dir)
  try {
    const versions = readdirSync('/usr/lib/postgresql')
      .filter((v) => /^\d+$/.test(v))
      .sort((a, b) => Number(b) - Number(a))
    for (const v of versions) candidates.push(`/usr/lib/postgresql/${v}/bin`)
  } catch {
    // No Debian layout: PATH is all there is.
  }
  for (const bin of candidates) {
    const initdb = join(bin, 'initdb')
    const pgCtl = join(bin, 'pg_ctl')
    // /usr/local/bin may hold only symlinks to initdb and pg_ctl: take the real directory,
    // where psql and postgres live too.
    if (existsSync(initdb) && existsSync(pgCtl)) {
      const real = dirname(realpathSync(initdb))
      return { bin: real, initdb: join(real, 'initdb'), pgCtl: join(real, 'pg_ctl') }
    }
  }
  return {
    reason:
      'PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or in /usr/lib/postgresql/*/bin; ' +
      "install Debian's postgresql package (.ci/run does) to run these tests",
  }
}

/** True when `findPostgresBinaries()` found them; the message says why not otherwise. */
export function postgresSkipReason(): string | undefined {
  const found = findPostgresBinaries()
  return 'reason' in found ? found.reason : undefined
}

/**
 * Makes and starts a private cluster.
 *
 * @example
 * const pg = await startPostgresCluster()
 * try { const url = await pg.createDatabase('t1') } finally { pg.stop() }
 */
export async function startPostgresCluster(
  options: { settings?: Readonly<Record<string, string>> } = {},
): Promise<PostgresCluster> {
  const found = findPostgresBinaries()
  if ('reason' in found) throw new Error(found.reason)
  const bins = found
  const root = mkdtempSync(join(tmpdir(), 'ledgerline-pg-'))
  const dataDir = join(root, 'data')
  const asRoot = process.getuid?.() === 0
  const pgUser = asRoot ? userIds('postgres') : undefined
  if (asRoot && pgUser === undefined) {
    rmSync(root, { recursive: true, force: true })
    throw new Error('running as root and there is no postgres user to run PostgreSQL as')
  }
  if (pgUser !== undefined) {
    chownSync(root, pgUser.uid, pgUser.gid)
    chmodSync(root, 0o700)
  }
  const run = (file: string, args: string[], opts: { allowFail?: boolean } = {}) => {
    const [cmd, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', file, ...args]] : [file, args]
    const result = spawnSync(cmd, argv, { encoding: 'utf8', timeout: 60_000 })
    if (result.status !== 0 && opts.allowFail !== true) {
      throw new Error(
        `${file} ${args.join(' ')} failed (${String(result.status)}): ${result.stderr}${result.stdout}`,
      )
    }
    return result
  }

  let stopped = false
  let port = 0
  let pid = 0
  const cleanup = () => {
    if (stopped) return
    stopped = true
    run(bins.pgCtl, ['-D', dataDir, '-m', 'immediate', '-w', '-t', '20', 'stop'], {
      allowFail: true,
    })
    rmSync(root, { recursive: true, force: true })
  }
  process.once('exit', cleanup)

  try {
    run(bins.initdb, ['-D', dataDir, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8'])
    port = await freePort()
    const settings: Record<string, string> = {
      listen_addresses: '127.0.0.1',
      port: String(port),
      unix_socket_directories: root,
      fsync: 'on',
      synchronous_commit: 'on',
      max_connections: '100',
      shared_buffers: '32MB',
      ...options.settings,
    }
    const start = () => {
      const opts = Object.entries(settings)
        .map(([k, v]) => `-c ${k}=${v}`)
        .join(' ')
      run(bins.pgCtl, [
        '-D',
        dataDir,
        '-l',
        join(root, 'postgres.log'),
        '-o',
        opts,
        '-w',
        '-t',
        '60',
        'start',
      ])
      pid = readPid(dataDir)
    }
    start()
    const url = `postgres://postgres@127.0.0.1:${port}/postgres`
    const urlFor = (database: string) => `postgres://postgres@127.0.0.1:${port}/${database}`
    return {
      url,
      port,
      dataDir,
      get pid() {
        return pid
      },
      urlFor,
      async createDatabase(name: string) {
        if (!/^[a-z][a-z0-9_]*$/.test(name)) throw new Error(`bad database name '${name}'`)
        // psql from the same installation: testkit needs no database driver of its own.
        run(join(bins.bin, 'psql'), [
          '-X',
          '-q',
          '-h',
          root,
          '-p',
          String(port),
          '-U',
          'postgres',
          '-d',
          'postgres',
          '-v',
          'ON_ERROR_STOP=1',
          '-c',
          `create database ${name}`,
        ])
        return urlFor(name)
      },
      kill(mode) {
        run(bins.pgCtl, ['-D', dataDir, '-m', mode, '-w', '-t', '60', 'stop'])
      },
      start,
      stop() {
        cleanup()
        process.removeListener('exit', cleanup)
      },
    }
  } catch (error) {
    cleanup()
    process.removeListener('exit', cleanup)
    throw error
  }
}

function userIds(name: string): { uid: number; gid: number } | undefined {
  try {
    const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim())
    const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim())
    return Number.isInteger(uid) && Number.isInteger(gid) ? { uid, gid } : undefined
  } catch {
    return undefined
  }
}

function readPid(dataDir: string): number {
  const first = readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0] ?? ''
  const pid = Number(first.trim())
  return Number.isInteger(pid) ? pid : 0
}

// Binds port 0 on loopback to let the OS pick a free port, then releases it for PostgreSQL.
// A tiny race with other processes remains; pg_ctl then fails loudly rather than silently.
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })
}

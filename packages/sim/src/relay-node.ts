/**
 * The relay process of the simulation: the real `Session` for every connection the wire
 * accepts, the relay's shared tails, the real token check (JWT, HS256), and the real server log
 * (the SQLite store on a temporary file, or the memory store), every call of which the oracle
 * checks. The process can crash, restart, be upgraded to another schema, and have its log
 * restored from an older copy.
 *
 * Terms: an *incarnation* is one run of the process (one `Life`); the *log file* outlives
 * incarnations, the memory store does too (it is the disk of the memory mode).
 *
 *   wire accept ─► createSession(socket, context) ─► store.append ─► oracle.check ─► ack
 *   store.onCommit ─► tails.onCommit ─► every session's onCommit            (as `relay.ts`)
 *
 * Invariants:
 * 1. A crash keeps only what the log committed: the SQLite file is closed under the store (an
 *    open transaction rolls back), the incarnation's timers die, every connection breaks; the
 *    next incarnation opens the same file.
 * 2. Every result a store returns reaches the oracle before the session sees it, in commit
 *    order (the group commit resolves the calls of a group in order).
 * 3. A log restored from a copy is the file as it was at a commit boundary (`VACUUM INTO` between
 *    events), and the oracle goes back to its state of that moment. The operator then does what
 *    protocol 2 asks after a restore: the next incarnation raises the log's generation
 *    (`bumpGeneration`, as `ledgerline-relay bump-generation` does) before it takes connections.
 * 4. The token check runs the real verifier on the relay's clock; its WebCrypto work is a
 *    barrier of the loop, so its result arrives at a simulated time, the same on every run.
 */
import { copyFileSync, existsSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import type Database from 'better-sqlite3'
import { pino } from 'pino'
import type { Schema, StoredEntry } from '@ledgerline/core'
import type {
  AppendItem,
  AppendResult,
  LogStore,
  MemoryLogStore,
  MemoryLogStoreBugs,
} from '@ledgerline/log'
import { createMemoryLogStore } from '@ledgerline/log'
import {
  createCommitQueue,
  createFanoutTails,
  createRelayGates,
  createSession,
  createSqliteStore,
  createTokenVerifier,
  RELAY_LIMITS_DEFAULT,
  TOKEN_CLOCK_TOLERANCE_S,
} from '@ledgerline/relay'
import type {
  RelayMetrics,
  Session,
  SessionContext,
  SqliteStoreBugs,
  TokenVerifier,
} from '@ledgerline/relay'
import type { SimScheduler } from '@ledgerline/testkit'
import { SIM_EPOCH_MS, SIM_TOKEN_CHECK_MS } from './limits.ts'
import type { ProductCrashPoint, ProductCrashPoints } from './crash-points.ts'
import type { LogOracle } from './oracle.ts'
import type { Life, SimLoop } from './sim-loop.ts'
import { createLife } from './sim-loop.ts'
import type { Wire } from './wire.ts'

export type StoreMode = 'sqlite' | 'memory'

export interface RelayNodeOptions {
  readonly loop: SimLoop
  readonly wire: Wire
  readonly mode: StoreMode
  /** Directory of the SQLite log file and its copies (the caller removes it). */
  readonly dir: string
  readonly schema: Schema | undefined
  readonly partitions: number
  readonly secret: string
  readonly oracle: LogOracle
  /** Where the world may kill the relay (`crash-points.ts`); it restarts after `restartMs`. */
  readonly points?: ProductCrashPoints | undefined
  readonly restartMs?: (() => number) | undefined
  readonly bugs?:
    | {
        readonly sqlite?: SqliteStoreBugs | undefined
        readonly memory?: MemoryLogStoreBugs | undefined
      }
    | undefined
}

export interface RelayNode {
  /** Starts an incarnation (the first one, or after a crash). */
  start(): Promise<void>
  /** The process dies now (invariant 1). */
  crash(): void
  readonly up: boolean
  /** The next incarnations decide with `schema` (an upgrade takes a restart). */
  setSchema(schema: Schema | undefined): void
  /** Copies the log as it is now (invariant 3); false when the mode cannot. */
  backup(): boolean
  /** With the process down: puts the last copy back as the log (and bumps its generation). */
  restoreBackup(): void
  /** Every stored entry, per partition in offset order, and every recorded refusal. */
  dump(tenant: string): Promise<LogDump>
  /** The clock of the relay (and its log), ms since the epoch. */
  now(): number
  /** Closes what is still open (after the checks). */
  close(): Promise<void>
  readonly stats: { crashes: number; incarnations: number; sessions: number }
}

export interface LogDump {
  readonly partitions: readonly (readonly StoredEntry[])[]
  readonly refusals: readonly { readonly id: string; readonly code: string }[]
  /** Ids the log holds a deferral of (not decided yet; their clientSeqs are used up). */
  readonly deferrals: readonly string[]
}

/**
 * @example
 * const relay = createRelayNode({ loop, wire, mode: 'sqlite', dir, schema, partitions: 4,
 *   secret, oracle })
 * await relay.start()
 */
export function createRelayNode(options: RelayNodeOptions): RelayNode {
  const { loop, wire, oracle } = options
  const sched: SimScheduler = loop.sched
  const file = join(options.dir, 'log.sqlite')
  const copyFile = join(options.dir, 'log-copy.sqlite')
  // Whole milliseconds, as `Date.now()` gives (the SQLite log stores them as integers).
  const now = () => SIM_EPOCH_MS + Math.floor(sched.now())
  let schema = options.schema
  let life: Life | undefined
  let db: Database.Database | undefined
  let store: LogStore | undefined
  let memory: MemoryLogStore | undefined
  let stopCommits: (() => void) | undefined
  let hasCopy = false
  /** A restored log waits for its generation bump (invariant 3). */
  let bumpPending = false
  let oracleCopy: unknown
  const sessions = new Set<Session>()
  const stats = { crashes: 0, incarnations: 0, sessions: 0 }
  const logger = pino({ level: process.env.LEDGERLINE_SIM_LOG ?? 'silent' })

  const openStore = async (current: Life): Promise<LogStore> => {
    if (options.mode === 'memory') {
      // The memory store is the disk of this mode: it outlives incarnations, and its group
      // commit runs on the scheduler, not on a life (a crash lets a queued commit land first,
      // as a commit just before the crash would).
      memory ??= createMemoryLogStore({
        schema,
        partitions: options.partitions,
        now,
        defer: (fn) => void sched.at(sched.now(), 'log commit', fn),
        bugs: options.bugs?.memory,
      })
      return memory
    }
    return await createSqliteStore({
      file,
      schema,
      partitions: options.partitions,
      now,
      defer: (fn) => void current.after(0, 'log commit', fn),
      // One thread: a crash is played by closing this file under the store, and the commits run
      // on the simulation's clock; a writer thread would commit outside both.
      writer: 'thread',
      onOpened: (handle) => {
        db = handle
      },
      bugs: options.bugs?.sqlite,
    })
  }

  /** A crash point fired: the process dies now and starts again a while later. */
  const dieAt = (point: ProductCrashPoint): boolean => {
    if (options.points?.hit(point) !== true) return false
    node.crash()
    sched.after(options.restartMs?.() ?? 1_000, 'relay restart', () => {
      if (!node.up) void node.start()
    })
    return true
  }

  /** The store as the sessions see it: every append result goes by the oracle (invariant 2). */
  const checked = (inner: LogStore): LogStore => ({
    partitions: inner.partitions,
    append: (tenant: string, items: readonly AppendItem[], pusher) => {
      // Killed before the log saw the push: its session is gone, it is never answered.
      if (dieAt('relay.append.before')) return new Promise<AppendResult[]>(() => {})
      return inner.append(tenant, items, pusher).then((results: AppendResult[]) => {
        oracle.check(tenant, items, pusher, results)
        // Killed after the commit, before the ack leaves: the client resends, gets duplicates.
        dieAt('relay.commit.after')
        return results
      })
    },
    readPartition: (tenant, partition, after, limit) =>
      inner.readPartition(tenant, partition, after, limit),
    readEntity: (tenant, entity, from, limit) => inner.readEntity(tenant, entity, from, limit),
    head: (tenant, entity) => inner.head(tenant, entity),
    client: (tenant, clientId) => inner.client(tenant, clientId),
    identity: () => inner.identity(),
    bumpGeneration: () => inner.bumpGeneration(),
    partitionHeads: () => inner.partitionHeads(),
    onCommit: (listener) => inner.onCommit(listener),
    close: () => inner.close(),
  })

  const node: RelayNode = {
    async start() {
      const current = createLife(sched, `relay#${++stats.incarnations}`)
      life = current
      sched.record(`relay start #${stats.incarnations}`)
      const base = await openStore(current)
      if (!current.alive) return
      if (bumpPending) {
        const identity = await base.bumpGeneration()
        if (!current.alive) return
        bumpPending = false
        sched.record(`relay log generation ${identity.generation}`)
      }
      store = base
      oracle.setSchema(schema)
      const timers = current.timers(now)
      const tails = createFanoutTails(base, RELAY_LIMITS_DEFAULT.tailEntriesMax)
      const verify = simTokenCheck(loop, current, options.secret, now, 'relay token checked')
      const sessionStore = checked(base)
      const context: SessionContext = {
        store: sessionStore,
        tails,
        verify,
        limits: RELAY_LIMITS_DEFAULT,
        metrics: NO_METRICS,
        logger,
        timers,
        gates: createRelayGates(RELAY_LIMITS_DEFAULT),
        commits: createCommitQueue(sessionStore, RELAY_LIMITS_DEFAULT),
      }
      stopCommits = base.onCommit((partitions) => {
        tails.onCommit(partitions)
        for (const session of sessions) session.onCommit(partitions)
      })
      timers.every(() => {
        for (const session of sessions) session.heartbeat()
      }, RELAY_LIMITS_DEFAULT.heartbeatIntervalMs)
      wire.listen((socket) => {
        stats.sessions++
        const session = createSession(socket, context)
        sessions.add(session)
        void session.closed.then(() => sessions.delete(session))
      }, current)
    },
    crash() {
      if (life === undefined || !life.alive) return
      stats.crashes++
      sched.record('relay crash')
      life.kill()
      wire.serverDied()
      sessions.clear()
      stopCommits?.()
      stopCommits = undefined
      if (db !== undefined && db.open) db.close()
      db = undefined
      memory?.crash()
      store = undefined
    },
    get up() {
      return life?.alive === true && store !== undefined
    },
    setSchema(next) {
      schema = next
      // The memory store decides with the schema it was made with: an upgrade makes a new one
      // from the old one's entries (a migration), which this mode does not simulate.
      if (options.mode === 'memory' && memory !== undefined) {
        throw new Error('sim: schema rollouts run on the SQLite log only')
      }
    },
    backup() {
      // Only at a commit boundary (the planted `ackBeforeCommit` keeps a transaction open).
      if (options.mode !== 'sqlite' || db === undefined || !db.open || db.inTransaction) {
        return false
      }
      if (existsSync(copyFile)) rmSync(copyFile)
      db.exec(`VACUUM INTO '${copyFile.replace(/'/g, "''")}'`)
      hasCopy = true
      oracleCopy = oracle.save()
      sched.record('relay log copied')
      return true
    },
    restoreBackup() {
      if (!hasCopy) return
      for (const suffix of ['', '-wal', '-shm']) rmSync(file + suffix, { force: true })
      copyFileSync(copyFile, file)
      bumpPending = true
      oracle.load(oracleCopy)
      sched.record('relay log restored')
    },
    async dump(tenant) {
      const base = store ?? memory
      if (base === undefined) throw new Error('sim: dump needs a running relay')
      const partitions: StoredEntry[][] = []
      for (let p = 0; p < base.partitions; p++) {
        const read = await base.readPartition(tenant, p, 0, Number.MAX_SAFE_INTEGER)
        partitions.push(read.entries)
      }
      let refusals: { id: string; code: string }[]
      let deferrals: string[]
      if (memory !== undefined) {
        const last = new Map<string, string>()
        for (const d of memory.dump().decided) {
          if (d.tenant === tenant) last.set(d.entry.id, d.result.status)
        }
        deferrals = [...last].filter(([, status]) => status === 'deferred').map(([id]) => id)
        refusals = memory
          .dump()
          .decided.filter((d) => d.result.status === 'refused' && d.tenant === tenant)
          .map((d) => ({
            id: d.entry.id,
            code: d.result.status === 'refused' ? d.result.code : '',
          }))
      } else {
        refusals = (db as Database.Database)
          .prepare('SELECT id, code FROM refusals WHERE tenant = ? ORDER BY rowid')
          .all(tenant) as { id: string; code: string }[]
        deferrals = (
          (db as Database.Database)
            .prepare('SELECT id FROM deferrals WHERE tenant = ? ORDER BY rowid')
            .all(tenant) as { id: string }[]
        ).map((r) => r.id)
      }
      return { partitions, refusals, deferrals }
    },
    now,
    async close() {
      life?.kill()
      await store?.close()
      if (db !== undefined && db.open) db.close()
    },
    stats,
  }
  return node
}

/**
 * The real token check on a node's clock (invariant 4): it starts now, and its answer comes as
 * an event of the node's life, after the WebCrypto work as a barrier of the loop.
 *
 * @example
 * const verify = simTokenCheck(loop, life, secret, now, 'relay token checked')
 */
export function simTokenCheck(
  loop: SimLoop,
  life: Life,
  secret: string,
  now: () => number,
  label: string,
): TokenVerifier {
  const real = createTokenVerifier({ secret }, TOKEN_CLOCK_TOLERANCE_S, now)
  return (token) => {
    const check = real(token)
    return new Promise((resolve) => {
      life.after(SIM_TOKEN_CHECK_MS, label, () => loop.barrier(check.then(resolve)))
    })
  }
}

/** The relay's metrics are not what the simulation checks: counted nowhere. */
export const NO_METRICS: RelayMetrics = {
  connectionOpened() {},
  connectionClosed() {},
  bytesIn() {},
  bytesOut() {},
  appended() {},
  overloaded() {},
  countYjsRooms() {},
  render: async () => '',
  contentType: 'text/plain',
}

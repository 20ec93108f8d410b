/**
 * The main thread's side of the SQLite writer thread (`sqlite-worker.ts`): starts the worker on
 * an open, migrated log file, hands it write plans, snapshot puts and generation bumps, and
 * answers each with the worker's reply. `sqlite-store.ts` uses it when opened with
 * `writer: 'worker'`.
 *
 *   write(plan) ─► bound (SQLITE_WRITER_REQUESTS_MAX) ─► postMessage ─► worker: one transaction
 *                     │ full: LogStoreError('overloaded')                 │ COMMIT
 *                     ▼                                                   ▼
 *                 rejects at once, nothing sent           reply ─► promise resolves (durable)
 *
 * Terms: a request is *pending* from `postMessage` until its reply (or the thread's death).
 *
 * Invariants:
 * 1. At most `SQLITE_WRITER_REQUESTS_MAX` requests are pending; one more rejects at once with
 *    `LogStoreError('overloaded')` and is never sent, as a full commit queue rejects.
 * 2. A promise resolves only on the worker's reply, which comes after its COMMIT returned
 *    (`sqlite-worker.ts` invariant 2).
 * 3. A worker that exits or throws while the thread is not being closed is a store failure:
 *    every pending request and every later one rejects with one `RelayError('store_failed')`,
 *    and `onFailed` is told once. What the worker committed before is on disk; the request it
 *    was running rolled back (SQLite's WAL drops an uncommitted transaction), so nothing
 *    acknowledged is lost and nothing unacknowledged is half written.
 * 4. The worker keeps the process alive only while a request is pending (it is unref'd when
 *    idle), so an idle store does not hold a process open, and a pending ack is never dropped
 *    by the process exiting under it.
 * 5. `rehearse` runs the worker's write path once before any append (`sqlite-store.ts`
 *    invariant 11): a plan written and rolled back, then one commit of `meta.opened_at`. Nothing
 *    of the plan stays; the reply says whether the rehearsal reached its rollback.
 */
import { Worker } from 'node:worker_threads'
import type { SnapshotPut } from '@ledgerline/log'
import { LogStoreError } from '@ledgerline/log'
import type { LedgerSnapshot, LogIdentity } from '@ledgerline/protocol'
import { SQLITE_WRITER_REQUESTS_MAX } from './limits.ts'
import { RELAY_ERROR_KINDS, RelayError } from './relay-error.ts'
import type { RelayErrorKind } from './relay-error.ts'
import { prepareSnapshotPut } from './sqlite-snapshots.ts'
import type { WritePlan } from './sqlite-write.ts'

/** What the worker is started with. */
export interface WorkerData {
  readonly file: string
  /** Test-only: the worker exits inside its n-th write transaction, before COMMIT. */
  readonly dieInWrite?: number | undefined
}

/** Messages to the worker. */
export type WriterRequest =
  | { readonly op: 'write'; readonly id: number; readonly plan: WritePlan; committedAt: number }
  | { readonly op: 'puts'; readonly id: number; readonly puts: readonly SentPut[] }
  | { readonly op: 'bump'; readonly id: number }
  | {
      readonly op: 'rehearse'
      readonly id: number
      /** Written and rolled back; absent when the main thread could not plan one. */
      readonly plan: WritePlan | undefined
      readonly committedAt: number
    }
  | { readonly op: 'close' }

/** A snapshot put as it crosses the thread: encoded on the main thread, its state left behind. */
export interface SentPut {
  readonly tenant: string
  readonly snapshot: LedgerSnapshot
  readonly encoded: Uint8Array
}

/** A put's outcome as it crosses the thread: an error travels as its kind and message. */
export type WirePutOutcome = SnapshotPut | { readonly error: string; readonly kind: string }

/** Messages from the worker. */
export type WriterReply =
  | { readonly type: 'ready' }
  | { readonly type: 'failed'; readonly message: string }
  | { readonly type: 'written'; readonly id: number }
  | { readonly type: 'put'; readonly id: number; readonly outcomes: WirePutOutcome[] }
  | { readonly type: 'bumped'; readonly id: number; readonly identity: LogIdentity }
  | { readonly type: 'rehearsed'; readonly id: number; readonly rolledBack: boolean }
  | { readonly type: 'error'; readonly id: number; readonly kind: string; readonly message: string }

export interface WriterThread {
  /** Writes `plan` in one transaction; resolves once it is durable. */
  write(plan: WritePlan, committedAt: number): Promise<void>
  /** Puts snapshots in one transaction: one outcome per put, an `Error` where one failed. */
  putMany(
    puts: readonly { tenant: string; snapshot: LedgerSnapshot }[],
  ): Promise<(SnapshotPut | Error)[]>
  bumpGeneration(): Promise<LogIdentity>
  /**
   * Invariant 5: writes `plan` and rolls it back, then commits the opening time; resolves with
   * whether the plan's write reached its rollback (false: it failed, a colder start only).
   */
  rehearse(plan: WritePlan | undefined, committedAt: number): Promise<boolean>
  /** The failure that ended the thread (invariant 3); `undefined` while it runs. */
  readonly failure: RelayError | undefined
  /** Lets the worker finish what it was sent, closes its connection and waits for its exit. */
  close(): Promise<void>
}

export interface WriterThreadOptions extends WorkerData {
  /** Told once when the worker dies (invariant 3). */
  readonly onFailed?: ((error: RelayError) => void) | undefined
  /** Test-only: handed the worker once it is ready (a test terminates it). */
  readonly onWorker?: ((worker: Worker) => void) | undefined
}

/**
 * Starts the writer thread of the log file `file` (opened and migrated already).
 *
 * @example
 * const thread = await startWriterThread({ file })
 * await thread.write(writePlanOf(plan), Date.now()) // durable now
 */
export async function startWriterThread(options: WriterThreadOptions): Promise<WriterThread> {
  const worker = new Worker(WORKER_URL, {
    workerData: { file: options.file, dieInWrite: options.dieInWrite } satisfies WorkerData,
  })
  const pending = new Map<number, Pending>()
  let nextId = 1
  let failure: RelayError | undefined
  let closing = false

  function fail(error: RelayError): void {
    if (failure !== undefined) return
    failure = error
    for (const p of pending.values()) p.reject(error)
    pending.clear()
    if (!closing) options.onFailed?.(error)
  }

  await new Promise<void>((resolve, reject) => {
    const early = (error: unknown) =>
      reject(
        new RelayError(
          'store_failed',
          `the SQLite writer thread did not start: ${messageOf(error)}`,
          {
            cause: error,
          },
        ),
      )
    worker.once('error', early)
    worker.once('exit', (code) => early(new Error(`exit code ${code}`)))
    worker.once('message', (m: WriterReply) => {
      worker.off('error', early)
      if (m.type === 'ready') resolve()
      else early(new Error(m.type === 'failed' ? m.message : `unexpected ${m.type}`))
    })
  }).catch(async (error: unknown) => {
    await worker.terminate()
    throw error
  })
  worker.removeAllListeners('exit')
  worker.unref()

  worker.on('message', (m: WriterReply) => {
    if (!('id' in m)) return
    const p = pending.get(m.id)
    if (p === undefined) return
    pending.delete(m.id)
    if (pending.size === 0) worker.unref()
    if (m.type === 'error') p.reject(new RelayError(kindOf(m.kind), m.message))
    else p.resolve(m)
  })
  worker.on('error', (error) =>
    fail(
      new RelayError('store_failed', `the SQLite writer thread failed: ${error.message}`, {
        cause: error,
      }),
    ),
  )
  const exited = new Promise<void>((resolve) =>
    worker.on('exit', (code) => {
      fail(
        new RelayError(
          closing ? 'store_closed' : 'store_failed',
          closing ? 'the log is closed' : `the SQLite writer thread exited (code ${code})`,
        ),
      )
      resolve()
    }),
  )
  options.onWorker?.(worker)

  function send(request: Exclude<WriterRequest, { op: 'close' }>['op'], rest: object) {
    if (failure !== undefined) return Promise.reject(failure)
    if (pending.size >= SQLITE_WRITER_REQUESTS_MAX) {
      return Promise.reject(
        new LogStoreError('overloaded', 'the SQLite writer thread has too many requests waiting'),
      )
    }
    const id = nextId++
    return new Promise<WriterReply>((resolve, reject) => {
      pending.set(id, { resolve, reject })
      if (pending.size === 1) worker.ref()
      worker.postMessage({ op: request, id, ...rest })
    })
  }

  return {
    async write(plan, committedAt) {
      await send('write', { plan, committedAt })
    },
    async putMany(puts) {
      // Checked and encoded here: a state that is not Data (a function, say) cannot be cloned,
      // and a skipped one need not cross at all.
      const outcomes: (SnapshotPut | Error | undefined)[] = []
      const sent: SentPut[] = []
      for (const { tenant, snapshot } of puts) {
        const prepared = prepareSnapshotPut(snapshot)
        if (prepared instanceof Uint8Array) {
          sent.push({ tenant, snapshot: { ...snapshot, state: null }, encoded: prepared })
          outcomes.push(undefined)
        } else outcomes.push(prepared)
      }
      if (sent.length === 0) return outcomes as SnapshotPut[]
      const reply = await send('puts', { puts: sent })
      if (reply.type !== 'put') throw new RelayError('store_failed', `unexpected ${reply.type}`)
      const written = reply.outcomes.values()
      return outcomes.map((o) => {
        if (o !== undefined) return o
        const w = written.next().value as WirePutOutcome
        return 'error' in w ? new RelayError(kindOf(w.kind), w.error) : w
      })
    },
    async bumpGeneration() {
      const reply = await send('bump', {})
      if (reply.type !== 'bumped') throw new RelayError('store_failed', `unexpected ${reply.type}`)
      return reply.identity
    },
    async rehearse(plan, committedAt) {
      const reply = await send('rehearse', { plan, committedAt })
      if (reply.type !== 'rehearsed') {
        throw new RelayError('store_failed', `unexpected ${reply.type}`)
      }
      return reply.rolledBack
    },
    get failure() {
      return failure
    },
    async close() {
      if (closing) return await exited
      closing = true
      if (failure === undefined) {
        // Requests already sent are run first: the worker handles messages in order.
        worker.ref()
        worker.postMessage({ op: 'close' } satisfies WriterRequest)
      }
      await exited
    },
  }
}

// ---------------------------------------------------------------------------------------------

interface Pending {
  readonly resolve: (reply: WriterReply) => void
  readonly reject: (error: unknown) => void
}

/**
 * The worker's compiled module. Under vitest this file runs from `src/` as TypeScript, which a
 * worker cannot load on Node 20: it then runs the built one (`npm run build` first).
 */
const WORKER_URL = import.meta.url.endsWith('.ts')
  ? new URL('../dist/sqlite-worker.js', import.meta.url)
  : new URL('./sqlite-worker.js', import.meta.url)

function kindOf(kind: string): RelayErrorKind {
  return (RELAY_ERROR_KINDS as readonly string[]).includes(kind)
    ? (kind as RelayErrorKind)
    : 'store_failed'
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

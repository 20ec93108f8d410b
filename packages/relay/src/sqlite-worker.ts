/**
 * The SQLite log's writer thread (issue 16, "commits off the event loop"): the body of the
 * `worker_threads` worker `sqlite-writer-thread.ts` starts. It owns the log file's one write
 * connection and runs each group's transaction there, so the fsync of a COMMIT stalls this
 * thread, not the relay's event loop (decoding, fan-out, sockets).
 *
 *   main thread: planGroup (reads) ─► WritePlan ─postMessage─► here: BEGIN IMMEDIATE
 *                                                                   │ sqlite-write.ts rows
 *                                                                   │ COMMIT (WAL fsync, FULL)
 *   main thread: resolve each call ◄──────────── { id, ok } ◄───────┘
 *
 * Terms: a *request* is one message of `WriterRequest`; its *reply* carries the same `id`.
 *
 * Invariants:
 * 1. The file is opened as the store opens it (WAL, synchronous=FULL asserted, `assertDurable`);
 *    the main thread migrated it before this thread starts, so this thread never migrates.
 * 2. Requests are run one at a time in the order they came, each in its own `BEGIN IMMEDIATE`
 *    transaction, and each is replied to only after its COMMIT returned (durable): a reply `ok`
 *    means the rows are on disk, and a read the main thread starts after it sees them.
 * 3. A request that fails rolls back whole and is replied to with its message; the refs it made
 *    are forgotten (`sqlite-refs.ts` invariant 1). The thread goes on with the next request.
 * 4. Nothing here decides: the plan was made by `planGroup` on the main thread against the file
 *    as the last reply left it (`sqlite-store.ts` invariant 10).
 */
import { parentPort, workerData } from 'node:worker_threads'
import Database from 'better-sqlite3'
import type { SnapshotPut } from '@ledgerline/log'
import { assertDurable, bumpGeneration, writeOpenedAt } from './sqlite-migrations.ts'
import { RelayError } from './relay-error.ts'
import { createSqliteRefs } from './sqlite-refs.ts'
import { createSqliteSnapshots } from './sqlite-snapshots.ts'
import { createSqliteWriter } from './sqlite-write.ts'
import type { WorkerData, WriterReply, WriterRequest } from './sqlite-writer-thread.ts'

const port = parentPort
if (port === null) throw new Error('sqlite-worker.ts runs only as a worker thread')
const data = workerData as WorkerData

let db: Database.Database
try {
  db = new Database(data.file)
  assertDurable(db)
} catch (error) {
  port.postMessage({ type: 'failed', message: messageOf(error) } satisfies WriterReply)
  throw error
}
const refs = createSqliteRefs(db)
const writer = createSqliteWriter(db, refs)
const snapshots = createSqliteSnapshots(db)
let writes = 0

port.on('message', (request: WriterRequest) => {
  if (request.op === 'close') {
    db.close()
    port.close()
    return
  }
  try {
    port.postMessage(run(request))
  } catch (error) {
    refs.rolledBack()
    port.postMessage({
      type: 'error',
      id: request.id,
      kind: error instanceof RelayError ? error.kind : 'store_failed',
      message: messageOf(error),
    } satisfies WriterReply)
  }
})
port.postMessage({ type: 'ready' } satisfies WriterReply)

function run(request: Exclude<WriterRequest, { op: 'close' }>): WriterReply {
  switch (request.op) {
    case 'write': {
      writes++
      const tx = db.transaction(() => {
        writer.write(request.plan, request.committedAt)
        // Test-only: the thread dies with the rows written and the COMMIT not yet run.
        if (data.dieInWrite === writes) process.exit(70)
      })
      tx.immediate()
      refs.committed()
      return { type: 'written', id: request.id }
    }
    case 'puts': {
      const outcomes = snapshots
        .putMany(request.puts)
        .map((o): SnapshotPut | { readonly error: string; readonly kind: string } =>
          o instanceof Error
            ? { error: o.message, kind: o instanceof RelayError ? o.kind : 'store_failed' }
            : o,
        )
      return { type: 'put', id: request.id, outcomes }
    }
    case 'bump':
      return { type: 'bumped', id: request.id, identity: bumpGeneration(db) }
    case 'rehearse':
      return { type: 'rehearsed', id: request.id, rolledBack: rehearse(request) }
  }
}

/** Thrown inside the rehearsal's transaction, to roll it back. */
class Rehearsed extends Error {}

/**
 * `sqlite-writer-thread.ts` invariant 5: this thread's first write transaction, statements and
 * COMMIT run here, before any append, not in the first push after a restart.
 */
function rehearse(request: Extract<WriterRequest, { op: 'rehearse' }>): boolean {
  const { plan, committedAt } = request
  let rolledBack = false
  if (plan !== undefined) {
    try {
      db.transaction(() => {
        writer.write(plan, committedAt)
        throw new Rehearsed()
      }).immediate()
    } catch (error) {
      rolledBack = error instanceof Rehearsed
    } finally {
      refs.rolledBack()
    }
  }
  // The first commit after opening makes the WAL file and syncs its header: paid here.
  writeOpenedAt(db, committedAt)
  return rolledBack
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

/**
 * What the relay knows of its log's health, from the calls it makes anyway: a `LogStore` wrapper
 * that watches every call's outcome, logs `store_lost` / `store_regained` on each change and
 * `slow_commit` for slow appends, and answers the readiness check (`/readyz`).
 *
 * Terms: a *failure* is a rejection that is the store's own (a disk full, a database stopped):
 * not `LogStoreError` (`overloaded`, `closed`, `invalid`: the caller's or the queue's), not a
 * closed store. The store is *lost* for reads or for writes from a failure of that kind of call
 * until a call of that kind succeeds.
 *
 * Invariants:
 * 1. The wrapper changes no outcome: every call is passed on and its result or error returned
 *    as it is; it only observes.
 * 2. One `store_lost` line when the store goes from healthy to lost (for reads or writes) and
 *    one `store_regained` when it is healthy again, never one per failed call.
 * 3. Ready means a probe read of the partition heads and the identity succeeds within
 *    `READY_PROBE_TIMEOUT_MS`, and no append failed in the last `WRITE_FAILURE_HOLD_MS` without
 *    a successful append since. A failed append holds readiness down only that long: a relay
 *    nobody writes to cannot prove its writes work, and must not stay out of its balancer
 *    forever after a failure that has passed (the next append that fails holds it down again).
 */
import { hasLedgerSnapshots, hasLogRetention, isLogStoreError } from '@ledgerline/log'
import type { LedgerSnapshots, LogRetention } from '@ledgerline/log'
import type { LogIdentity } from '@ledgerline/protocol'
import type { Logger } from 'pino'
import { READY_PROBE_TIMEOUT_MS, SLOW_COMMIT_MS, WRITE_FAILURE_HOLD_MS } from './limits.ts'
import type { AppendItem, LogStore, Pusher } from './log-store.ts'
import { RelayError } from './relay-error.ts'

/** What `/healthz` and `/readyz` say of the log. */
export type StoreReadiness =
  | { readonly _tag: 'ready'; readonly identity: LogIdentity; readonly partitions: number }
  /** The log answers reads, but appends fail (a full disk). */
  | {
      readonly _tag: 'not_writing'
      readonly identity: LogIdentity
      readonly partitions: number
      readonly message: string
    }
  /** The probe read failed or timed out. */
  | { readonly _tag: 'unreachable'; readonly message: string }

export interface StoreHealth {
  /** Probes the log (invariant 3). */
  readiness(): Promise<StoreReadiness>
}

export interface StoreHealthOptions {
  readonly logger: Logger
  readonly now?: (() => number) | undefined
  readonly slowCommitMs?: number | undefined
  readonly writeFailureHoldMs?: number | undefined
  readonly readyProbeTimeoutMs?: number | undefined
}

/**
 * Wraps `store` (invariant 1).
 *
 * @example
 * const store = withStoreHealth(base, { logger })
 * const ready = await store.health.readiness() // { _tag: 'ready', identity, partitions }
 */
export function withStoreHealth(
  store: LogStore,
  options: StoreHealthOptions,
): LogStore & { readonly health: StoreHealth } {
  const now = options.now ?? Date.now
  const slowCommitMs = options.slowCommitMs ?? SLOW_COMMIT_MS
  const holdMs = options.writeFailureHoldMs ?? WRITE_FAILURE_HOLD_MS
  const probeMs = options.readyProbeTimeoutMs ?? READY_PROBE_TIMEOUT_MS
  const { logger } = options
  const lost: Record<Op, { since: number; message: string } | undefined> = {
    read: undefined,
    write: undefined,
  }
  let lastWriteFailureAt = -Infinity

  const failed = (op: Op, error: unknown) => {
    if (!isStoreFailure(error)) return
    if (op === 'write') lastWriteFailureAt = now()
    if (lost[op] !== undefined) return
    const healthy = lost.read === undefined && lost.write === undefined
    lost[op] = { since: now(), message: messageOf(error) }
    // Invariant 2: the first failure of a healthy store is the line; the rest are in metrics.
    if (healthy) logger.error({ event: 'store_lost', op, err: error }, 'the log failed')
  }
  const worked = (op: Op) => {
    const was = lost[op]
    if (was === undefined) return
    lost[op] = undefined
    if (op === 'write') lastWriteFailureAt = -Infinity
    if (lost.read === undefined && lost.write === undefined) {
      logger.warn({ event: 'store_regained', op, downMs: now() - was.since }, 'the log works again')
    }
  }
  const watch = <T>(op: Op, call: () => Promise<T>): Promise<T> =>
    call().then(
      (value) => {
        worked(op)
        return value
      },
      (error: unknown) => {
        failed(op, error)
        throw error
      },
    )

  const health: StoreHealth = {
    async readiness() {
      let identity: LogIdentity
      try {
        const probe = Promise.all([store.partitionHeads(), store.identity()])
        identity = (await within(probe, probeMs))[1]
        worked('read')
      } catch (error) {
        failed('read', error)
        return { _tag: 'unreachable', message: messageOf(error) }
      }
      const write = lost.write
      if (write !== undefined && now() - lastWriteFailureAt < holdMs) {
        return {
          _tag: 'not_writing',
          identity,
          partitions: store.partitions,
          message: write.message,
        }
      }
      return { _tag: 'ready', identity, partitions: store.partitions }
    },
  }

  return {
    // A getter: a store hub learns head office's partition count at its first welcome.
    get partitions() {
      return store.partitions
    },
    health,
    append(tenant: string, items: readonly AppendItem[], pusher?: Pusher | undefined) {
      const started = now()
      return watch('write', () => store.append(tenant, items, pusher)).then((results) => {
        const durationMs = now() - started
        if (durationMs > slowCommitMs) {
          logger.warn(
            { event: 'slow_commit', durationMs, entries: items.length, tenant },
            'an append was slow to be durable',
          )
        }
        return results
      })
    },
    readPartition: (...args) => watch('read', () => store.readPartition(...args)),
    readEntity: (...args) => watch('read', () => store.readEntity(...args)),
    head: (...args) => watch('read', () => store.head(...args)),
    client: (...args) => watch('read', () => store.client(...args)),
    identity: () => watch('read', () => store.identity()),
    bumpGeneration: () => watch('write', () => store.bumpGeneration()),
    partitionHeads: () => watch('read', () => store.partitionHeads()),
    onCommit: (listener) => store.onCommit(listener),
    close: () => store.close(),
    ...watchedSnapshots(store, watch),
    ...watchedRetention(store, watch),
  }
}

/** The retention methods of `store`, watched as its reads and writes are (none if none). */
function watchedRetention(
  store: LogStore,
  watch: <T>(kind: 'read' | 'write', fn: () => Promise<T>) => Promise<T>,
): Partial<LogRetention> {
  if (!hasLogRetention(store)) return {}
  const r: LogRetention = store
  return {
    firstKept: (...args) => watch('read', () => r.firstKept(...args)),
    partitionsFirstKept: (...args) => watch('read', () => r.partitionsFirstKept(...args)),
    readHistory: (...args) => watch('read', () => r.readHistory(...args)),
    dropHistory: (...args) => watch('write', () => r.dropHistory(...args)),
  }
}

/** The ledger snapshot methods of `store`, watched as its reads and writes are (none if none). */
function watchedSnapshots(
  store: LogStore,
  watch: <T>(kind: 'read' | 'write', fn: () => Promise<T>) => Promise<T>,
): Partial<LedgerSnapshots> {
  if (!hasLedgerSnapshots(store)) return {}
  const s: LedgerSnapshots = store
  return {
    putSnapshot: (...args) => watch('write', () => s.putSnapshot(...args)),
    snapshot: (...args) => watch('read', () => s.snapshot(...args)),
    snapshotsInScope: (...args) => watch('read', () => s.snapshotsInScope(...args)),
    entitySpans: (...args) => watch('read', () => s.entitySpans(...args)),
    entities: (...args) => watch('read', () => s.entities(...args)),
  }
}

// ---------------------------------------------------------------------------------------------

type Op = 'read' | 'write'

function isStoreFailure(error: unknown): boolean {
  if (isLogStoreError(error)) return false
  return !(error instanceof RelayError && error.kind === 'store_closed')
}

/** `promise`, or a rejection after `ms`; the timer never outlives the wait. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer from the log in ${ms} ms`)), ms)
      }),
    ])
  } finally {
    clearTimeout(timer)
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

/**
 * The ledger snapshot policy of the relay (issue 17): which ledger entities get a snapshot
 * (`log-store.ts` guarantee 14) and when, and the background pass that folds and writes them.
 * CRDT entities are not its business (`crdt-snapshots.ts` keeps theirs as entries).
 *
 * Terms: an entity is *due* when its version reached a multiple of
 * `LEDGER_SNAPSHOT_ENTRIES_EVERY` in an append this relay made durable; the *pass* takes due
 * entities off the queue one at a time.
 *
 * Invariants:
 * 1. Never inside a commit: an append only notes due entities (a map insert) after its
 *    results are durable; the pass runs from `setImmediate`, folds one entity at a time, and
 *    yields to the event loop between entities and between pages of one entity (the walk:
 *    invariant 6). It writes the snapshots of up to `LEDGER_SNAPSHOT_WRITE_BATCH` entities
 *    together (one SQLite transaction), so snapshots cost one fsync per batch, not one each.
 * 2. The queue holds at most `LEDGER_SNAPSHOT_QUEUE_MAX` entities (one slot each however often
 *    they come due); past it the oldest is dropped and counted.
 * 3. A snapshot is folded from the entity's latest snapshot under the type's fold key (or from
 *    version 1) and the entries after it, with the schema's own reduce, up to the last entry
 *    read; `partition`, `offset` and `committedAt` are that entry's. Only `Data` within
 *    `SNAPSHOT_STATE_BYTES_MAX` is written (the store checks; other outcomes are counted).
 * 4. No schema, no snapshots: a relay without one never makes this policy.
 * 5. A failure (the store down) is counted and logged, never thrown into an append.
 * 6. The walk (`walk()`, the CLI's and a relay's start-up one) reads a page of
 *    `LEDGER_SNAPSHOT_WALK_PAGE_ENTITIES` entities, then their snapshots and the entries after
 *    them in chunks of at most `LEDGER_SNAPSHOT_WALK_READ_ENTRIES` entries, each chunk one read
 *    of the log (`readLedgers`, `ledger-reads.ts` of `@ledgerline/log`, where the store has it),
 *    and yields once per chunk: so an append waits for at most one chunk's read and fold. An
 *    entity longer than one `LEDGER_SNAPSHOT_READ_PAGE_ENTRIES` page goes on page by page,
 *    yielding between pages. A chunk's snapshots are written in one batch (one transaction),
 *    while the next chunk is read: at most one batch in flight.
 */
import { foldKey } from '@ledgerline/core'
import type { Data, EntityType, Schema, StoredEntry } from '@ledgerline/core'
import {
  droppedMessage,
  foldForward,
  foldStart,
  hasLedgerReads,
  hasLogRetention,
  LogStoreError,
  logRetentionOf,
  passedThrough,
} from '@ledgerline/log'
import type {
  HistoryRead,
  LedgerRead,
  LedgerSnapshots,
  LedgerTail,
  PlanHead,
  SnapshotLogStore,
} from '@ledgerline/log'
import type { LedgerSnapshot } from '@ledgerline/protocol'
import {
  LEDGER_SNAPSHOT_ENTRIES_EVERY,
  LEDGER_SNAPSHOT_QUEUE_MAX,
  LEDGER_SNAPSHOT_READ_PAGE_ENTRIES,
  LEDGER_SNAPSHOT_WALK_PAGE_ENTITIES,
  LEDGER_SNAPSHOT_WALK_READ_ENTRIES,
  LEDGER_SNAPSHOT_WRITE_BATCH,
} from './limits.ts'
import type { AppendItem, AppendResult, LogStore, Pusher } from './log-store.ts'

/** What the pass did with one entity, by outcome: the label values of the metric. */
export const LEDGER_SNAPSHOT_OUTCOMES = [
  'written',
  'stale',
  'too_large',
  'not_data',
  'unchanged',
  'dropped',
  'failed',
] as const
export type LedgerSnapshotOutcome = (typeof LEDGER_SNAPSHOT_OUTCOMES)[number]

export interface LedgerSnapshotterOptions {
  readonly every?: number | undefined
  readonly queueMax?: number | undefined
  /** Told of each failure (invariant 5). */
  readonly onError?: ((error: unknown) => void) | undefined
  /** Runs `fn` later (invariant 1); `setImmediate` by default. */
  readonly defer?: ((fn: () => void) => void) | undefined
}

export interface LedgerSnapshotter {
  /** An append's results are durable: note the entities that came due (invariant 1). */
  noteResults(tenant: string, items: readonly AppendItem[], results: readonly AppendResult[]): void
  /** Queues one entity (tests, the walk). */
  enqueue(tenant: string, entity: string): void
  /** Folds and writes one entity's snapshot now, if its ledger passed the latest one. */
  snapshotNow(tenant: string, entity: string): Promise<LedgerSnapshotOutcome>
  /**
   * Walks every entity of the log and snapshots those at least `every` versions past their
   * snapshot (a log written before snapshots, the CLI); yields between chunks (invariant 6).
   */
  walk(): Promise<Record<LedgerSnapshotOutcome, number>>
  /** Counts by outcome, since the start. */
  counts(): Readonly<Record<LedgerSnapshotOutcome, number>>
  /** Resolves once the queue is empty and no pass runs. */
  idle(): Promise<void>
  /** Stops taking entities; waits for the entity being folded. */
  close(): Promise<void>
}

/**
 * @example
 * const snapshotter = createLedgerSnapshotter(store, schema)
 * snapshotter.noteResults(tenant, items, results) // after each durable append
 */
export function createLedgerSnapshotter(
  store: SnapshotLogStore,
  schema: Schema,
  options: LedgerSnapshotterOptions = {},
): LedgerSnapshotter {
  const every = options.every ?? LEDGER_SNAPSHOT_ENTRIES_EVERY
  const queueMax = options.queueMax ?? LEDGER_SNAPSHOT_QUEUE_MAX
  const defer = options.defer ?? ((fn: () => void) => void setImmediate(fn))
  const onError = options.onError ?? (() => {})
  const counts = Object.fromEntries(LEDGER_SNAPSHOT_OUTCOMES.map((o) => [o, 0])) as Record<
    LedgerSnapshotOutcome,
    number
  >
  // Insertion order is queue order (invariant 2); the key dedupes.
  const queue = new Map<string, { tenant: string; entity: string }>()
  let running: Promise<void> | undefined
  let closed = false
  let idleWaiters: (() => void)[] = []

  const ledgerType = (entity: string): EntityType<unknown> | undefined => {
    const type = schema.find(entity)
    return type === undefined || type.crdt !== undefined ? undefined : type
  }

  /** The entity's new snapshot (invariant 3), or `unchanged` when nothing passed the last. */
  const fold = async (tenant: string, entity: string): Promise<LedgerSnapshot | 'unchanged'> => {
    const type = ledgerType(entity)
    if (type === undefined) return 'unchanged'
    const key = foldKey(type)
    const head = foldStart(type, await store.snapshot(tenant, entity, key))
    return foldOn(tenant, entity, type, head, head.version, undefined, true)
  }

  /**
   * Folds `entity` on from `head` (folded from version `start`, `last` its last entry read),
   * reading pages of `LEDGER_SNAPSHOT_READ_PAGE_ENTRIES` after it while `more` and a page comes
   * back full, yielding between pages (invariant 1).
   */
  const foldOn = async (
    tenant: string,
    entity: string,
    type: EntityType<unknown>,
    from: PlanHead,
    start: number,
    lastRead: StoredEntry | undefined,
    more: boolean,
  ): Promise<LedgerSnapshot | 'unchanged'> => {
    let head = from
    let last = lastRead
    while (more && !closed) {
      if (last !== undefined) await new Promise<void>((resolve) => defer(resolve))
      const page = await store.readEntity(
        tenant,
        entity,
        head.version + 1,
        LEDGER_SNAPSHOT_READ_PAGE_ENTRIES,
      )
      head = foldForward(type, head, page)
      last = page.at(-1) ?? last
      more = page.length >= LEDGER_SNAPSHOT_READ_PAGE_ENTRIES
    }
    if (last === undefined || head.version === start) return 'unchanged'
    return {
      entity,
      foldKey: foldKey(type),
      version: head.version,
      partition: last.partition,
      offset: last.offset,
      committedAt: last.committedAt,
      state: head.state as Data,
    }
  }

  const put = async (tenant: string, snapshot: LedgerSnapshot | 'unchanged') => {
    if (snapshot === 'unchanged') return 'unchanged'
    const outcome = await store.putSnapshot(tenant, snapshot)
    return outcome._tag === 'skipped' ? outcome.reason : outcome._tag
  }

  const snapshotNow = async (tenant: string, entity: string): Promise<LedgerSnapshotOutcome> =>
    put(tenant, await fold(tenant, entity))

  /**
   * Folds `batch` one entity at a time (yielding between them, invariant 1), then writes what
   * it folded together (a SQLite log puts them in one transaction: one fsync, not one each).
   */
  const runBatch = async (batch: readonly { tenant: string; entity: string }[]) => {
    const folded: { tenant: string; snapshot: LedgerSnapshot | 'unchanged' }[] = []
    for (const { tenant, entity } of batch) {
      if (closed) break
      try {
        folded.push({ tenant, snapshot: await fold(tenant, entity) })
      } catch (error) {
        count('failed')
        onError(error)
      }
      await new Promise<void>((resolve) => defer(resolve))
    }
    await putAll(folded)
  }

  const count = (outcome: LedgerSnapshotOutcome) => {
    counts[outcome]++
  }

  /** Writes `folded` together (one transaction) and counts the outcomes. */
  const putAll = async (
    folded: readonly { tenant: string; snapshot: LedgerSnapshot | 'unchanged' }[],
  ) => {
    const outcomes = await Promise.allSettled(folded.map((f) => put(f.tenant, f.snapshot)))
    for (const o of outcomes) {
      if (o.status === 'fulfilled') count(o.value)
      else {
        count('failed')
        onError(o.reason)
      }
    }
  }

  /** Each read's snapshot and the entries after it: one read when the store can (invariant 6). */
  const readTails = async (reads: readonly LedgerRead[]): Promise<LedgerTail[]> => {
    if (hasLedgerReads(store)) return store.readLedgers(reads)
    const tails: LedgerTail[] = []
    for (const r of reads) {
      const snapshot = await store.snapshot(r.tenant, r.entity, r.foldKey)
      const from = (snapshot?.version ?? 0) + 1
      const read: HistoryRead = hasLogRetention(store)
        ? await store.readHistory(r.tenant, r.entity, from, r.limit)
        : { _tag: 'entries', entries: await store.readEntity(r.tenant, r.entity, from, r.limit) }
      tails.push({ snapshot, read })
    }
    return tails
  }

  /**
   * Walks every entity of the log (invariant 6): a page of entities at a time, their snapshots
   * and entries read in chunks of at most `LEDGER_SNAPSHOT_WALK_READ_ENTRIES` entries, each
   * chunk folded and its snapshots written in one batch while the next chunk is read (one
   * batch in flight), one yield per chunk.
   */
  const walkLog = async () => {
    let writing: Promise<void> = Promise.resolve()
    const chunk = async (reads: readonly LedgerRead[], versions: readonly number[]) => {
      let tails: LedgerTail[]
      try {
        tails = await readTails(reads)
      } catch (error) {
        counts.failed += reads.length
        onError(error)
        return
      }
      const folded: { tenant: string; snapshot: LedgerSnapshot }[] = []
      for (const [i, r] of reads.entries()) {
        const tail = tails[i] as LedgerTail
        const type = ledgerType(r.entity) as EntityType<unknown>
        try {
          if ((versions[i] as number) - (tail.snapshot?.version ?? 0) < every) continue
          if (tail.read._tag === 'dropped') {
            const from = (tail.snapshot?.version ?? 0) + 1
            throw new LogStoreError(
              'history_dropped',
              droppedMessage(r.entity, from, tail.read.firstKept),
            )
          }
          const { entries } = tail.read
          const start = foldStart(type, tail.snapshot)
          const head = foldForward(type, start, entries)
          // Short of the version the page listed only when the read was cut at one page.
          const more = entries.length >= LEDGER_SNAPSHOT_READ_PAGE_ENTRIES
          const snapshot = await foldOn(
            r.tenant,
            r.entity,
            type,
            head,
            start.version,
            entries.at(-1),
            more,
          )
          if (snapshot === 'unchanged') count('unchanged')
          else folded.push({ tenant: r.tenant, snapshot })
        } catch (error) {
          count('failed')
          onError(error)
        }
      }
      // One batch in flight: the previous chunk's is written before this one's starts.
      await writing
      writing = putAll(folded)
      await new Promise<void>((resolve) => defer(resolve))
    }
    let after: string | undefined
    do {
      const page = await store.entities(after, LEDGER_SNAPSHOT_WALK_PAGE_ENTITIES)
      let reads: LedgerRead[] = []
      let versions: number[] = []
      let entries = 0
      for (const e of page.entities) {
        if (closed) break
        const type = ledgerType(e.entity)
        if (type === undefined || e.version < every) continue
        // At most one page of the entity now; the rest, if any, by `foldOn`'s pages.
        const limit = Math.min(e.version, LEDGER_SNAPSHOT_READ_PAGE_ENTRIES)
        if (reads.length > 0 && entries + limit > LEDGER_SNAPSHOT_WALK_READ_ENTRIES) {
          await chunk(reads, versions)
          reads = []
          versions = []
          entries = 0
        }
        reads.push({ tenant: e.tenant, entity: e.entity, foldKey: foldKey(type), limit })
        versions.push(e.version)
        entries += limit
      }
      if (reads.length > 0 && !closed) await chunk(reads, versions)
      after = page.next
    } while (after !== undefined && !closed)
    await writing
  }

  const pass = async () => {
    while (!closed && queue.size > 0) {
      const batch: { tenant: string; entity: string }[] = []
      for (const [k, due] of queue) {
        if (batch.length >= LEDGER_SNAPSHOT_WRITE_BATCH) break
        queue.delete(k)
        batch.push(due)
      }
      await runBatch(batch)
    }
    running = undefined
    const waiters = idleWaiters
    idleWaiters = []
    for (const w of waiters) w()
  }

  const start = () => {
    if (running !== undefined || closed || queue.size === 0) return
    running = new Promise<void>((resolve) => defer(() => void pass().then(resolve)))
  }

  const enqueue = (tenant: string, entity: string) => {
    if (closed || ledgerType(entity) === undefined) return
    const k = `${tenant}\u0000${entity}`
    if (queue.has(k)) return
    if (queue.size >= queueMax) {
      const oldest = queue.keys().next().value
      if (oldest !== undefined) queue.delete(oldest)
      count('dropped')
    }
    queue.set(k, { tenant, entity })
    start()
  }

  return {
    noteResults(tenant, items, results) {
      results.forEach((r, i) => {
        if (r.status !== 'appended') return
        const entity = items[i]?.entry.entity
        if (entity !== undefined && r.version % every === 0) enqueue(tenant, entity)
        for (const c of r.corrections) if (c.version % every === 0) enqueue(tenant, c.entity)
      })
    },
    enqueue,
    snapshotNow,
    async walk() {
      const before = { ...counts }
      await walkLog()
      return Object.fromEntries(
        LEDGER_SNAPSHOT_OUTCOMES.map((o) => [o, counts[o] - before[o]]),
      ) as Record<LedgerSnapshotOutcome, number>
    },
    counts: () => ({ ...counts }),
    idle() {
      if (running === undefined && queue.size === 0) return Promise.resolve()
      return new Promise((resolve) => idleWaiters.push(resolve))
    },
    async close() {
      closed = true
      queue.clear()
      await running
    },
  }
}

/**
 * Wraps a log that keeps ledger snapshots so every durable append tells `snapshotter` which
 * entities came due (invariant 1); everything else passes through.
 *
 * @example
 * const store = withLedgerSnapshots(base, createLedgerSnapshotter(base, schema))
 */
export function withLedgerSnapshots(
  store: SnapshotLogStore,
  snapshotter: LedgerSnapshotter,
): SnapshotLogStore & { readonly ledgerSnapshots: LedgerSnapshotter } {
  const snapshots: LedgerSnapshots = store
  return {
    partitions: store.partitions,
    ledgerSnapshots: snapshotter,
    async append(tenant: string, items: readonly AppendItem[], pusher?: Pusher | undefined) {
      const results = await store.append(tenant, items, pusher)
      snapshotter.noteResults(tenant, items, results)
      return results
    },
    ...passedThrough(store),
    putSnapshot: (...args) => snapshots.putSnapshot(...args),
    snapshot: (...args) => snapshots.snapshot(...args),
    snapshotsInScope: (...args) => snapshots.snapshotsInScope(...args),
    entitySpans: (...args) => snapshots.entitySpans(...args),
    entities: (...args) => snapshots.entities(...args),
    ...(hasLedgerReads(store)
      ? { readLedgers: (reads: readonly LedgerRead[]) => store.readLedgers(reads) }
      : {}),
    // Retention (`log-retention.ts`) passes through untouched.
    ...logRetentionOf(store),
    async close() {
      await snapshotter.close()
      await store.close()
    },
  } satisfies LogStore & LedgerSnapshots & { ledgerSnapshots: LedgerSnapshotter }
}

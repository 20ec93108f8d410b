/**
 * An in-memory server log: the `LogStore` of `@ledgerline/relay` (log-store.ts) kept in plain
 * maps, deciding every entry with core's `decide()`. The simulation's server log, and a second
 * implementation for the conformance suite, so the suite is checked against something simple.
 *
 * Terms as in log-store.ts: *partition*, *offset*, *version*, *high-water mark* (per client, the
 * highest clientSeq decided). The *commit index* counts commits (one per `append` call or group
 * commit), so checkers can see the global order in which entries became durable.
 *
 * Invariants (those of log-store.ts, held here by construction):
 * 1. Atomic batches: `appendNow` decides and writes a whole call synchronously; nothing else runs
 *    in between, so a crash (in the simulation, between events) sees all of a call or none.
 * 2. Durable at once: whatever `appendNow` wrote survives a simulated crash; what was never
 *    handed to it (still queued in the simulated relay) does not exist.
 * 3. Dense versions, gap-free offsets in commit order: a write takes `head + 1` of both.
 * 4. Permanent dedupe: every decided id (appended, refused, or a correction) is kept with its
 *    original result for the life of the store.
 * 5. Gap-free clientSeq: a client entry must have clientSeq = high-water mark + 1, else it is
 *    refused `seq_gap` and nothing is recorded. Corrections (clientId `server`) are exempt.
 * 6. Refusals are recorded under the entry id and use up its clientSeq.
 *
 * `bugs` deliberately breaks one guarantee so tests can prove the checkers catch it.
 */
import type { Entry, Schema, StoredEntry } from '@ledgerline/core'
import { decide, partitionOf, PARTITIONS_DEFAULT, SERVER_CLIENT_ID } from '@ledgerline/core'
import type { AckResult } from '@ledgerline/protocol'

/** As `AppendItem` in `@ledgerline/relay` log-store.ts. */
export interface MemoryAppendItem {
  readonly entry: Entry
  readonly refuse?: { readonly code: 'forbidden'; readonly reason: string } | undefined
}

/** Ways to break the store on purpose, to prove the checkers can fail. */
export interface MemoryLogStoreBugs {
  /** Forget dedupe: a resent entry is appended again (and its clientSeq check is skipped). */
  readonly noDedupe?: boolean | undefined
  /**
   * Ack before durable: `crash()` rolls back the last commit although its results were
   * returned (the lazy-fsync failure of the NATS JetStream report).
   */
  readonly unsyncedLastCommit?: boolean | undefined
}

export interface MemoryLogStoreOptions {
  readonly schema?: Schema | undefined
  readonly partitions?: number | undefined
  readonly now?: (() => number) | undefined
  readonly bugs?: MemoryLogStoreBugs | undefined
}

/** A decided id: its result and when it was decided. */
export interface Decided {
  readonly result: AckResult
  readonly tenant: string
  readonly entry: Entry
  readonly commitIndex: number
}

/** Everything the store holds, for checkers. */
export interface MemoryLogDump {
  /** Per partition, stored entries in offset order (index = offset - 1). */
  readonly partitions: readonly (readonly StoredEntry[])[]
  /** Every decided client entry id (appended or refused), in decision order. */
  readonly decided: readonly Decided[]
}

/** The `LogStore` interface of `@ledgerline/relay`, plus synchronous access for the simulation. */
export interface MemoryLogStore {
  readonly partitions: number
  append(tenant: string, items: readonly MemoryAppendItem[]): Promise<AckResult[]>
  readPartition(
    tenant: string,
    partition: number,
    afterOffset: number,
    limit: number,
  ): Promise<{ entries: StoredEntry[]; throughOffset: number }>
  readEntity(
    tenant: string,
    entity: string,
    fromVersion: number,
    limit: number,
  ): Promise<StoredEntry[]>
  head(tenant: string, entity: string): Promise<{ version: number; offset: number }>
  clientHigh(tenant: string, clientId: string): Promise<number>
  partitionHeads(): Promise<number[]>
  onCommit(listener: (partitions: readonly number[]) => void): () => void
  close(): Promise<void>
  /** `append` without the promise: decides and commits at once, then tells `onCommit` listeners. */
  appendNow(tenant: string, items: readonly MemoryAppendItem[]): AckResult[]
  /** Several calls in one commit (group commit); one result list per call. */
  appendGroupNow(
    calls: readonly { tenant: string; items: readonly MemoryAppendItem[] }[],
  ): AckResult[][]
  readPartitionNow(
    tenant: string,
    partition: number,
    afterOffset: number,
    limit: number,
  ): { entries: StoredEntry[]; throughOffset: number }
  clientHighNow(tenant: string, clientId: string): number
  partitionHeadsNow(): number[]
  dump(): MemoryLogDump
  /**
   * The process holding the store crashed. Everything committed survives, so this does nothing,
   * unless the `unsyncedLastCommit` bug is on.
   */
  crash(): void
}

/**
 * @example
 * const store = createMemoryLogStore({ schema, partitions: 4, now: () => sched.now() })
 * const [result] = await store.append('acme', [{ entry }])
 */
export function createMemoryLogStore(options: MemoryLogStoreOptions = {}): MemoryLogStore {
  const schema = options.schema
  const partitions = options.partitions ?? PARTITIONS_DEFAULT
  const now = options.now ?? (() => Date.now())
  const noDedupe = options.bugs?.noDedupe === true
  const logs: StoredEntry[][] = Array.from({ length: partitions }, () => [])
  const entities = new Map<string, EntityLedger>()
  const decided = new Map<string, Decided>()
  const decidedOrder: Decided[] = []
  const highs = new Map<string, number>()
  const listeners = new Set<(partitions: readonly number[]) => void>()
  let commitIndex = 0
  let closed = false
  const unsynced = options.bugs?.unsyncedLastCommit === true
  // Undo steps of the last commit, kept only for the `unsyncedLastCommit` bug.
  let undo: (() => void)[] = []

  const ledger = (tenant: string, entity: string): EntityLedger => {
    const key = `${tenant}\u0000${entity}`
    let l = entities.get(key)
    if (l === undefined) {
      const type = schema?.find(entity)
      l = { entries: [], state: type?.initial }
      entities.set(key, l)
    }
    return l
  }
  const write = (tenant: string, entry: Entry, touched: Set<number>): StoredEntry => {
    const l = ledger(tenant, entry.entity)
    const partition = partitionOf(tenant, entry.entity, partitions)
    const log = logs[partition] as StoredEntry[]
    const stored: StoredEntry = Object.freeze({
      ...entry,
      version: l.entries.length + 1,
      partition,
      offset: log.length + 1,
      committedAt: now(),
    })
    l.entries.push(stored)
    log.push(stored)
    touched.add(partition)
    if (unsynced) {
      undo.push(() => {
        l.entries.pop()
        log.pop()
      })
    }
    return stored
  }
  const record = (tenant: string, entry: Entry, result: AckResult) => {
    const d: Decided = { result, tenant, entry, commitIndex }
    const key = `${tenant}\u0000${entry.id}`
    decided.set(key, d)
    if (entry.clientId !== SERVER_CLIENT_ID) decidedOrder.push(d)
    if (unsynced) {
      undo.push(() => {
        decided.delete(key)
        if (entry.clientId !== SERVER_CLIENT_ID) decidedOrder.pop()
      })
    }
  }
  const appendOne = (tenant: string, item: MemoryAppendItem, touched: Set<number>): AckResult => {
    const entry = item.entry
    const key = `${tenant}\u0000${entry.id}`
    const before = decided.get(key)
    if (before !== undefined && !noDedupe) {
      const r = before.result
      return r.status === 'refused' ? r : { ...r, status: 'duplicate' }
    }
    const l = ledger(tenant, entry.entity)
    const highKey = `${tenant}\u0000${entry.clientId}`
    const high = highs.get(highKey) ?? 0
    if (entry.clientId !== SERVER_CLIENT_ID && !noDedupe && entry.clientSeq !== high + 1) {
      return refusal(
        entry.id,
        'seq_gap',
        `clientSeq ${entry.clientSeq} is not ${high + 1}`,
        l.entries.length,
      )
    }
    if (entry.clientId !== SERVER_CLIENT_ID) {
      highs.set(highKey, Math.max(high, entry.clientSeq))
      if (unsynced) undo.push(() => highs.set(highKey, high))
    }
    if (item.refuse !== undefined) {
      const r = refusal(entry.id, item.refuse.code, item.refuse.reason, l.entries.length)
      record(tenant, entry, r)
      return r
    }
    const decision = decide(schema, { state: l.state, version: l.entries.length }, entry, now())
    if (decision._tag === 'refuse') {
      const r = refusal(entry.id, decision.code, decision.reason, l.entries.length)
      record(tenant, entry, r)
      return r
    }
    const stored = write(tenant, entry, touched)
    const stateBefore = l.state
    if (unsynced) undo.push(() => (l.state = stateBefore))
    l.state = decision.state
    const corrections: StoredEntry[] = []
    for (const c of decision.corrections) {
      const sc = write(tenant, c, touched)
      corrections.push(sc)
      if (c.entity !== entry.entity) {
        // A correction on another entity of the tenant folds into that entity's head.
        const other = ledger(tenant, c.entity)
        const type = schema?.find(c.entity)
        const otherBefore = other.state
        if (unsynced) undo.push(() => (other.state = otherBefore))
        if (type !== undefined) other.state = type.reduce(other.state, c)
      }
    }
    const result: AckResult = {
      id: entry.id,
      status: 'appended',
      version: stored.version,
      partition: stored.partition,
      offset: stored.offset,
      committedAt: stored.committedAt,
      corrections,
    }
    record(tenant, entry, result)
    for (const c of corrections) {
      record(tenant, c, {
        id: c.id,
        status: 'appended',
        version: c.version,
        partition: c.partition,
        offset: c.offset,
        committedAt: c.committedAt,
        corrections: [],
      })
    }
    return result
  }
  const group = (calls: readonly { tenant: string; items: readonly MemoryAppendItem[] }[]) => {
    if (closed) throw new Error('memory log store is closed')
    // An item of another tenant is the relay's bug, not a business outcome: the whole call is
    // rejected before anything is written (atomic batches).
    for (const call of calls) {
      for (const item of call.items) {
        if (item.entry.tenant !== call.tenant) {
          throw new Error(`entry ${item.entry.id} is for another tenant than '${call.tenant}'`)
        }
      }
    }
    commitIndex++
    undo = []
    const touched = new Set<number>()
    const results = calls.map((call) =>
      call.items.map((item) => appendOne(call.tenant, item, touched)),
    )
    if (touched.size > 0) {
      const list = [...touched].sort((a, b) => a - b)
      for (const listener of listeners) listener(list)
    }
    return results
  }
  const readNow = (tenant: string, partition: number, afterOffset: number, limit: number) => {
    const log = logs[partition]
    if (log === undefined) throw new Error(`no partition ${partition}`)
    const entries: StoredEntry[] = []
    let through = Math.max(0, afterOffset)
    for (let i = through; i < log.length && entries.length < limit; i++) {
      const e = log[i] as StoredEntry
      through = e.offset
      if (e.tenant === tenant) entries.push(e)
    }
    return { entries, throughOffset: through }
  }
  const store: MemoryLogStore = {
    partitions,
    // Async, so a rejected call is a rejected promise, never a synchronous throw.
    append: async (tenant, items) => group([{ tenant, items }])[0] as AckResult[],
    readPartition: async (tenant, partition, afterOffset, limit) =>
      readNow(tenant, partition, afterOffset, limit),
    async readEntity(tenant, entity, fromVersion, limit) {
      const l = entities.get(`${tenant}\u0000${entity}`)
      if (l === undefined) return []
      return l.entries.slice(Math.max(0, fromVersion - 1), Math.max(0, fromVersion - 1) + limit)
    },
    async head(tenant, entity) {
      const l = entities.get(`${tenant}\u0000${entity}`)
      const last = l?.entries[l.entries.length - 1]
      return { version: l?.entries.length ?? 0, offset: last?.offset ?? 0 }
    },
    clientHigh: async (tenant, clientId) => store.clientHighNow(tenant, clientId),
    partitionHeads: async () => store.partitionHeadsNow(),
    onCommit(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    async close() {
      closed = true
      listeners.clear()
    },
    appendNow: (tenant, items) => group([{ tenant, items }])[0] as AckResult[],
    appendGroupNow: group,
    readPartitionNow: readNow,
    clientHighNow: (tenant, clientId) => highs.get(`${tenant}\u0000${clientId}`) ?? 0,
    partitionHeadsNow: () => logs.map((log) => log.length),
    dump: () => ({ partitions: logs, decided: decidedOrder }),
    crash() {
      // Undo in reverse order, so each step sees the state its write left.
      for (const step of undo.reverse()) step()
      undo = []
    },
  }
  return store
}

interface EntityLedger {
  readonly entries: StoredEntry[]
  state: unknown
}

function refusal(
  id: string,
  code: Extract<AckResult, { status: 'refused' }>['code'],
  reason: string,
  head: number,
): AckResult {
  return { id, status: 'refused', code, reason, head }
}

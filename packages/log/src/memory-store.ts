/**
 * An in-memory server log: a real `LogStore` that only stores, in plain maps and arrays, over
 * the one planner (`append-plan.ts`) and the one group commit (`group-commit.ts`). Fast enough
 * for unit tests and the deterministic simulation, and a third implementation for the
 * conformance suite.
 *
 * Terms as in `log-store.ts`. The *commit index* counts commits, so checkers can see the global
 * order in which entries became durable.
 *
 * Invariants (beyond those of `log-store.ts`, held by the planner):
 * 1. Atomic and durable at once: a group is planned and written synchronously; nothing else
 *    runs in between, so a crash (in the simulation, between events) sees all of it or none.
 * 2. Stored entries are frozen: readers share them and never see them change.
 * 3. The `*Now` methods answer synchronously from the same storage as the promised ones.
 * 4. Records (entries, refusals, deferrals) are kept as the planner makes them (`plan.recorded`),
 *    so a lookup answers exactly what the planner decided; the identity lives as long as the
 *    store (a memory log cannot be reopened).
 *
 * `bugs` deliberately breaks one guarantee so the simulation can prove its checkers catch it;
 * nothing else sets it.
 */
import {
  PARTITIONS_DEFAULT,
  SERVER_CLIENT_ID,
  canonicalBytes,
  checkPartitions,
  foldKey,
  matchesAny,
  partitionOf,
} from '@ledgerline/core'
import type { Entry, Schema, StoredEntry } from '@ledgerline/core'
import type { AckResult, LedgerSnapshot, LogIdentity } from '@ledgerline/protocol'
import { checkSnapshotState, foldStart } from './ledger-snapshot.ts'
import { planGroup } from './append-plan.ts'
import type { Plan, PlanCall, PlanLookups, Recorded } from './plan-types.ts'
import { joinKey, splitKey } from './plan-types.ts'
import { foldForward } from './entity-states.ts'
import { createCommitListeners } from './commit-listeners.ts'
import { checkTenant, createGroupCommit, groupCommitOptionsOf } from './group-commit.ts'
import { createLogId, LOG_GENERATION_FIRST, mathRandom } from './log-identity.ts'
import type {
  AppendItem,
  AppendResult,
  ClientRecord,
  EntitySpan,
  LedgerSnapshots,
  LogStore,
  LogStoreOptions,
  Pusher,
} from './log-store.ts'
import { LogStoreError } from './log-store-error.ts'
import { checkCut, droppedMessage } from './log-retention.ts'
import type { LogRetention } from './log-retention.ts'
import type { LedgerReads } from './ledger-reads.ts'

/** Ways to break the store on purpose, to prove the simulation's checkers can fail. */
export interface MemoryLogStoreBugs {
  /** Forget dedupe: a resent entry is appended again (and its clientSeq check is skipped). */
  readonly noDedupe?: boolean | undefined
  /** Ack before durable: `crash()` rolls back the last commit although its results were returned. */
  readonly unsyncedLastCommit?: boolean | undefined
  /** Dedupe by id alone: a resend with other content is `duplicate`, not `id_conflict`. */
  readonly ignoreDigests?: boolean | undefined
}

export interface MemoryLogStoreOptions extends LogStoreOptions {
  readonly bugs?: MemoryLogStoreBugs | undefined
}

/**
 * A decided client entry (appended or refused; a deferral is not a decision): its result and
 * the commit that decided it.
 */
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
  /** Every decided client entry (appended or refused), in decision order. */
  readonly decided: readonly Decided[]
}

/** A `LogStore`, plus synchronous access for a simulation that drives the store itself. */
export interface MemoryLogStore extends LogStore, LedgerSnapshots, LogRetention, LedgerReads {
  /** Several calls in one commit, at once (no queue); one result list per call. */
  appendGroupNow(calls: readonly PlanCall[]): AppendResult[][]
  readPartitionNow(
    tenant: string,
    partition: number,
    afterOffset: number,
    limit: number,
  ): { entries: StoredEntry[]; throughOffset: number }
  clientNow(tenant: string, clientId: string): ClientRecord
  partitionHeadsNow(): number[]
  dump(): MemoryLogDump
  /** The process holding the store crashed: everything committed survives (unless `bugs`). */
  crash(): void
  /**
   * Closes this store and opens the same log again, with `options` over the first ones (a
   * relay restarted with a new schema): the storage is kept, folded states are not.
   */
  reopen(options?: Partial<MemoryLogStoreOptions>): Promise<MemoryLogStore>
}

/**
 * @example
 * const store = createMemoryLogStore({ schema, partitions: 4 })
 * const [result] = await store.append('acme', [{ entry }], { subject: 'till-7', grants })
 */
export function createMemoryLogStore(options: MemoryLogStoreOptions = {}): MemoryLogStore {
  return openMemoryLogStore(options, undefined)
}

/** What a memory log keeps across `reopen` (the storage of a real store). */
interface MemoryStorage {
  readonly logs: StoredEntry[][]
  readonly ledgers: Map<string, StoredEntry[]>
  readonly records: Map<string, Recorded>
  /** Entries moved by restore recovery, by `joinKey(tenant, origin)`, in commit order. */
  readonly origins: Map<string, StoredEntry[]>
  readonly clients: Map<string, ClientRecord>
  readonly decided: Decided[]
  readonly identity: { id: string; generation: number }
  /** Ledger snapshots by `joinKey(joinKey(tenant, entity), foldKey)` (guarantee 14). */
  readonly snapshots: Map<string, LedgerSnapshot>
  /**
   * Retention (`log-retention.ts`): first kept versions by `joinKey(tenant, entity)` and first
   * kept offsets by `joinKey(tenant, partition)`. A memory log hides dropped entries from every
   * read rather than freeing them (its arrays are indexed by offset and version).
   */
  readonly firstKept: Map<string, number>
  readonly partitionsKept: Map<string, number>
  commitIndex: number
}

function openMemoryLogStore(
  options: MemoryLogStoreOptions,
  kept: MemoryStorage | undefined,
): MemoryLogStore {
  const schema: Schema | undefined = options.schema
  const partitions = kept?.logs.length ?? checkPartitions(options.partitions ?? PARTITIONS_DEFAULT)
  const now = options.now ?? (() => Date.now())
  const noDedupe = options.bugs?.noDedupe === true
  const unsynced = options.bugs?.unsyncedLastCommit === true
  const storage: MemoryStorage = kept ?? {
    logs: Array.from({ length: partitions }, () => []),
    ledgers: new Map(),
    records: new Map(),
    origins: new Map(),
    clients: new Map(),
    decided: [],
    identity: { id: createLogId(options.random ?? mathRandom), generation: LOG_GENERATION_FIRST },
    snapshots: new Map(),
    firstKept: new Map(),
    partitionsKept: new Map(),
    commitIndex: 0,
  }
  const { logs, ledgers, records, origins, clients, identity, snapshots, firstKept } = storage
  const decidedOrder = storage.decided
  // Folded states of this opening only: a reopened store folds its ledgers again (its schema
  // may be another).
  const states = new Map<string, unknown>()
  const listeners = createCommitListeners()
  let closed = false
  // Undo steps of the last commit, kept only for the `unsyncedLastCommit` bug.
  let undo: (() => void)[] = []

  const lookups: PlanLookups = {
    client: (tenant, clientId) => clients.get(joinKey(tenant, clientId)) ?? NO_CLIENT,
    previous: (tenant, id) => records.get(joinKey(tenant, id)) ?? null,
    originals(tenant, origin) {
      const first = records.get(joinKey(tenant, origin))
      const own =
        first?._tag === 'entry' && first.digest !== null
          ? [logs[first.result.partition]?.[first.result.offset - 1] as StoredEntry]
          : []
      return [...own, ...(origins.get(joinKey(tenant, origin)) ?? [])]
    },
    entityHead(tenant, entity) {
      const key = joinKey(tenant, entity)
      const ledger = ledgers.get(key) ?? []
      const last = ledger.at(-1)
      const head = { version: ledger.length, offset: last?.offset ?? 0 }
      if (states.has(key)) return { ...head, state: states.get(key) }
      const type = schema?.find(entity)
      if (type === undefined) return { ...head, state: null }
      // Guarantee 15: from the snapshot under the type's own fold key, then the entries after.
      const from = foldStart(type, snapshots.get(joinKey(key, foldKey(type))))
      const folded = foldForward(type, from, ledger.slice(from.version))
      states.set(key, folded.state)
      return folded
    },
    partitionHead: (partition) => logs[partition]?.length,
  }

  const plan = (calls: readonly PlanCall[], over: PlanLookups = lookups): Plan =>
    planGroup(
      {
        schema,
        partitions,
        committedAt: now(),
        lookups: over,
        hash: options.hash,
        ignoreDigests: options.bugs?.ignoreDigests,
      },
      calls,
    )

  const set = <K, V>(map: Map<K, V>, key: K, value: V) => {
    if (unsynced) {
      const had = map.has(key)
      const before = map.get(key)
      undo.push(() => (had ? map.set(key, before as V) : map.delete(key)))
    }
    map.set(key, value)
  }
  const push = <T>(list: T[], value: T) => {
    list.push(value)
    if (unsynced) undo.push(() => list.pop())
  }

  /** Storage only: the plan's rows, marks and states, as the planner made them. */
  const write = (calls: readonly PlanCall[], p: Plan) => {
    for (const { tenant, stored } of p.entries) {
      const frozen = Object.freeze(stored)
      push(logs[frozen.partition] as StoredEntry[], frozen)
      const key = joinKey(tenant, frozen.entity)
      let ledger = ledgers.get(key)
      if (ledger === undefined) set(ledgers, key, (ledger = []))
      push(ledger, frozen)
      if (frozen.origin !== undefined) {
        const byOrigin = joinKey(tenant, frozen.origin)
        let moved = origins.get(byOrigin)
        if (moved === undefined) set(origins, byOrigin, (moved = []))
        push(moved, frozen)
      }
    }
    // `append-plan.ts` invariant 13: a copy answered duplicate finds its landing by its id.
    for (const alias of p.aliases) {
      const landing = logs[alias.target.partition]?.[alias.target.offset - 1] as StoredEntry
      const byId = joinKey(alias.tenant, alias.id)
      let named = origins.get(byId)
      if (named === undefined) set(origins, byId, (named = []))
      push(named, landing)
    }
    for (const [key, client] of p.clients) {
      const had = clients.get(key)
      set(clients, key, {
        high: Math.max(client.high, had?.high ?? 0),
        subject: had?.subject ?? client.subject,
      })
    }
    for (const [key, head] of p.heads) set(states, key, head.state)
    for (const [key, record] of p.recorded) set(records, key, record)
    // The decision order, for checkers: each new decision of a client entry once.
    const told = new Set<string>()
    calls.forEach((call, i) => {
      call.items.forEach((item, j) => {
        if (item.entry.clientId === SERVER_CLIENT_ID) return
        const key = joinKey(call.tenant, item.entry.id)
        const record = p.recorded.get(key)
        if (record === undefined || record._tag === 'deferral' || told.has(key)) return
        told.add(key)
        const result = p.results[i]?.[j] as AckResult
        const commitIndex = storage.commitIndex
        push(decidedOrder, { result, tenant: call.tenant, entry: item.entry, commitIndex })
      })
    })
  }

  const commitNow = (
    calls: readonly PlanCall[],
  ): { results: AppendResult[][]; touched: number[] } => {
    if (closed) throw new LogStoreError('closed', 'the log is closed')
    for (const call of calls) checkTenant(call.tenant, call.items)
    storage.commitIndex++
    undo = []
    if (!noDedupe) {
      const p = plan(calls)
      write(calls, p)
      return { results: p.results, touched: p.touched }
    }
    // The `noDedupe` bug: every item is planned alone, as if its id were new and its clientSeq
    // the next one.
    const touched = new Set<number>()
    const out = calls.map((call) =>
      call.items.map((item) => {
        const forgetful: PlanLookups = {
          ...lookups,
          client: (tenant, clientId) =>
            clientId === item.entry.clientId
              ? { high: item.entry.clientSeq - 1, subject: null }
              : lookups.client(tenant, clientId),
          previous: () => null,
        }
        const one = [{ tenant: call.tenant, items: [item], pusher: call.pusher }]
        const p = plan(one, forgetful)
        write(one, p)
        for (const t of p.touched) touched.add(t)
        return p.results[0]?.[0] as AppendResult
      }),
    )
    return { results: out, touched: [...touched].sort((a, b) => a - b) }
  }

  const commits = createGroupCommit({
    commit: commitNow,
    onCommitted: (touched) => listeners.tell(touched),
    // Platform-free: a microtask, after the calls made in this turn.
    ...groupCommitOptionsOf(options, (fn) => void Promise.resolve().then(fn)),
  })

  const keptOf = (tenant: string, entity: string) => firstKept.get(joinKey(tenant, entity)) ?? 1
  const readLedger = (tenant: string, entity: string, fromVersion: number, limit: number) => {
    const ledger = ledgers.get(joinKey(tenant, entity)) ?? []
    const from = Math.max(0, fromVersion - 1)
    return ledger.slice(from, from + limit)
  }

  const readNow = (tenant: string, partition: number, afterOffset: number, limit: number) => {
    const log = logs[partition]
    if (log === undefined) throw new RangeError(`no partition ${partition}`)
    const entries: StoredEntry[] = []
    let through = Math.max(0, afterOffset)
    for (let i = through; i < log.length && entries.length < limit; i++) {
      const e = log[i] as StoredEntry
      through = e.offset
      if (e.tenant === tenant && e.version >= keptOf(tenant, e.entity)) entries.push(e)
    }
    if (entries.length < limit) through = Math.max(through, log.length)
    return { entries, throughOffset: through }
  }

  const store: MemoryLogStore = {
    partitions,
    append: (tenant: string, items: readonly AppendItem[], pusher?: Pusher | undefined) =>
      commits.append(tenant, items, pusher),
    readPartition: async (tenant, partition, afterOffset, limit) =>
      readNow(tenant, partition, afterOffset, limit),
    async readEntity(tenant, entity, fromVersion, limit) {
      const kept = keptOf(tenant, entity)
      if (fromVersion < kept) {
        throw new LogStoreError('history_dropped', droppedMessage(entity, fromVersion, kept))
      }
      return readLedger(tenant, entity, fromVersion, limit)
    },
    async firstKept(tenant, entity) {
      return keptOf(tenant, entity)
    },
    async partitionsFirstKept(tenant) {
      return logs.map((_, p) => storage.partitionsKept.get(joinKey(tenant, String(p))) ?? 1)
    },
    async readHistory(tenant, entity, fromVersion, limit) {
      const kept = keptOf(tenant, entity)
      if (fromVersion < kept) return { _tag: 'dropped', firstKept: kept }
      return { _tag: 'entries', entries: readLedger(tenant, entity, fromVersion, limit) }
    },
    async dropHistory(cuts) {
      if (closed) throw new LogStoreError('closed', 'the log is closed')
      // `log-retention.ts` invariant 1: every cut is checked before any is applied.
      for (const cut of cuts) {
        const ledger = ledgers.get(joinKey(cut.tenant, cut.entity)) ?? []
        const refusal = checkCut(cut, {
          firstKept: keptOf(cut.tenant, cut.entity),
          head: ledger.length,
          snapshotVersion: snapshots.get(joinKey(joinKey(cut.tenant, cut.entity), cut.foldKey))
            ?.version,
          offsets: ledger.slice(cut.from - 1, cut.through).map((e) => e.offset),
        })
        if (refusal !== undefined) return refusal
      }
      let entries = 0
      for (const cut of cuts) {
        firstKept.set(joinKey(cut.tenant, cut.entity), cut.through + 1)
        const partition = partitionOf(cut.tenant, cut.entity, partitions)
        const key = joinKey(cut.tenant, String(partition))
        const top = Math.max(...cut.offsets) + 1
        storage.partitionsKept.set(key, Math.max(storage.partitionsKept.get(key) ?? 1, top))
        entries += cut.offsets.length
      }
      return { _tag: 'dropped', entries, entities: cuts.length }
    },
    async head(tenant, entity) {
      const ledger = ledgers.get(joinKey(tenant, entity))
      return { version: ledger?.length ?? 0, offset: ledger?.at(-1)?.offset ?? 0 }
    },
    client: async (tenant, clientId) => store.clientNow(tenant, clientId),
    identity: async (): Promise<LogIdentity> => ({ ...identity }),
    async bumpGeneration() {
      identity.generation++
      return { ...identity }
    },
    partitionHeads: async () => store.partitionHeadsNow(),
    onCommit: (listener) => listeners.add(listener),
    async putSnapshot(tenant, snapshot) {
      if (closed) throw new LogStoreError('closed', 'the log is closed')
      // The canonical encoding's size stands for MessagePack's here (a memory log stores none).
      const checked = checkSnapshotState(snapshot.state, (d) => canonicalBytes(d).byteLength)
      if ('_tag' in checked) return checked
      const ledger = ledgers.get(joinKey(tenant, snapshot.entity)) ?? []
      if (snapshot.version < 1 || snapshot.version > ledger.length) {
        // A caller's bug: a snapshot of a version the log has not reached.
        throw new LogStoreError(
          'invalid',
          `snapshot of ${snapshot.entity} at version ${snapshot.version}: the log has ${ledger.length}`,
        )
      }
      const key = joinKey(joinKey(tenant, snapshot.entity), snapshot.foldKey)
      const kept = snapshots.get(key)
      if (kept !== undefined && kept.version >= snapshot.version) {
        return { _tag: 'stale', kept: kept.version }
      }
      snapshots.set(key, Object.freeze({ ...snapshot, state: checked.state }))
      return { _tag: 'written' }
    },
    async snapshot(tenant, entity, key) {
      return snapshots.get(joinKey(joinKey(tenant, entity), key))
    },
    // `ledger-reads.ts`: one turn, so every tail is read at the same point (invariant 1).
    async readLedgers(reads) {
      return reads.map(({ tenant, entity, foldKey, limit }) => {
        const snapshot = snapshots.get(joinKey(joinKey(tenant, entity), foldKey))
        const from = (snapshot?.version ?? 0) + 1
        const kept = keptOf(tenant, entity)
        if (from < kept) return { snapshot, read: { _tag: 'dropped', firstKept: kept } as const }
        const entries = readLedger(tenant, entity, from, limit)
        return { snapshot, read: { _tag: 'entries', entries } as const }
      })
    },
    async snapshotsInScope(tenant, patterns, foldKeys, after, limit) {
      const keys = new Set(foldKeys)
      // Order: entity name, then fold key, as the key strings sort.
      const all = [...snapshots.entries()]
        .filter(([k]) => k.startsWith(`${tenant}\u0000`))
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      const out: LedgerSnapshot[] = []
      let next: string | undefined
      for (const [k, s] of all) {
        if (after !== undefined && k <= after) continue
        if (out.length >= limit) break
        next = k
        if (keys.has(s.foldKey) && matchesAny(patterns, s.entity)) out.push(s)
      }
      const last = all.at(-1)?.[0]
      return { snapshots: out, next: next === undefined || next === last ? undefined : next }
    },
    async entitySpans(tenant, patterns, after, limit) {
      // Order: entity name within the tenant, as the key strings sort.
      const prefix = `${tenant}\u0000`
      const keys = [...ledgers.keys()]
        .filter((k) => k.startsWith(prefix) && (after === undefined || k > after))
        .sort()
      const page = keys.slice(0, limit)
      const spans: EntitySpan[] = []
      for (const k of page) {
        const ledger = ledgers.get(k) ?? []
        const [, entity] = splitKey(k)
        const first = ledger[0]
        const last = ledger.at(-1)
        if (first === undefined || last === undefined || !matchesAny(patterns, entity)) continue
        spans.push({
          entity,
          partition: first.partition,
          version: last.version,
          firstOffset: first.offset,
          lastOffset: last.offset,
        })
      }
      return { spans, next: keys.length > limit ? page.at(-1) : undefined }
    },
    async entities(after, limit) {
      const keys = [...ledgers.keys()].sort().filter((k) => after === undefined || k > after)
      const page = keys.slice(0, limit)
      return {
        entities: page.map((k) => {
          const [tenant, entity] = splitKey(k)
          return { tenant, entity, version: ledgers.get(k)?.length ?? 0 }
        }),
        next: keys.length > limit ? page.at(-1) : undefined,
      }
    },
    async close() {
      await commits.close()
      closed = true
      listeners.clear()
    },
    appendGroupNow(calls) {
      const outcome = commitNow(calls)
      listeners.tell(outcome.touched)
      return outcome.results
    },
    readPartitionNow: readNow,
    clientNow: (tenant, clientId) => clients.get(joinKey(tenant, clientId)) ?? NO_CLIENT,
    partitionHeadsNow: () => logs.map((log) => log.length),
    dump: () => ({ partitions: logs, decided: decidedOrder }),
    crash() {
      // Undo in reverse order, so each step sees the state its write left.
      for (const step of undo.reverse()) step()
      undo = []
    },
    async reopen(over = {}) {
      await store.close()
      return openMemoryLogStore({ ...options, ...over }, storage)
    },
  }
  return store
}

const NO_CLIENT: ClientRecord = Object.freeze({ high: 0, subject: null })

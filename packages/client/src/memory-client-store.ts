/**
 * `createMemoryClientStore`: the client store in memory, for the simulation and for tests that
 * need no IndexedDB. It keeps what the IndexedDB store keeps (outbox, acked records, chunks of
 * confirmed history, snapshots, outcomes, the corrections feed, cursors) and decides every write
 * with the same plans (`plans-outbox.ts`, `plans-sync.ts`, `plans-recovery.ts`); `runClientStoreContract` proves the two answer
 * alike.
 *
 * Terms: the *database* (`createMemoryClientDatabase`) is what survives closing a client store: open
 * another store on it to play a reload; `wipe()` plays a browser evicting the origin.
 *
 * Invariants:
 * 1. Every method does all its work synchronously, after its checks and plan and before it
 *    returns, so each is atomic: a call that throws changed nothing, and no call sees another's
 *    half-done writes.
 * 2. Values are copied on the way in and on the way out (`structuredClone`, as IndexedDB
 *    does), so no caller shares an object with the database, and what cannot be cloned is
 *    refused like IndexedDB refuses it.
 * 3. The outbox is kept in key order ([clientId, clientSeq]): an append adds clientSeqs past
 *    every stored one, of the one clientId every record has; a reissue and entries put back
 *    (a changed log) rebuild it in order.
 * 4. The per-entity index is updated in the write that stores a chunk, so nothing is ever
 *    staged: `stagedKeys` is always 0 and `indexPending` always answers false.
 * 5. Kept views (client store guarantee 10) are folded with the pure plans of `views.ts` in the
 *    write that changes their entries, and queried by sorting as IndexedDB orders keys.
 */
import type { Schema, StoredEntry } from '@ledgerline/core'
import { checkedBatch, completedMeta, newMeta, planAppend } from './plans-outbox.ts'
import {
  followsEntry,
  isOtherLog,
  outboxKeysOf,
  planReissue,
  planSession,
} from './plans-recovery.ts'
import { planAck, planFeed, planFetched, planPages } from './plans-sync.ts'
import { baseOf, loadStart, nextBase } from './bases.ts'
import { outboxOutcome, ownEntries, planSettle, planStoreStage } from './plans-hub.ts'
import type {
  AckedRecord,
  BaseRecord,
  ChunkRecord,
  ClientMeta,
  ClientStore,
  CursorsRecord,
  EntityBase,
  EntityLoad,
  FeedRecord,
  OutboxRecord,
  OutcomeRecord,
  SnapshotRecord,
} from './client-store.ts'
import { ClientError, toStorageError } from './errors.ts'
import { CORRECTIONS_FEED_MAX, OUTCOMES_MAX } from './limits.ts'
import type { ViewDefinitions, ViewRecord } from './views.ts'
import { byEntity, staleTypes, viewTypesOf } from './views.ts'
import { createMemoryViews, storedOf } from './memory-views.ts'

/** What a memory database holds; survives the client stores opened on it. */
export interface MemoryClientDatabase {
  /** Forgets everything, as a browser evicting the origin does. */
  wipe(): void
  /** Own entries waiting in the outbox (for checks and simulations). */
  outboxSize(): number
}

export interface MemoryClientStoreOptions {
  /** The database to open; default: a new, empty one. */
  readonly database?: MemoryClientDatabase | undefined
  /** The schema whose indexed types get kept views (guarantee 10). */
  readonly schema?: Schema | undefined
}

/**
 * A new, empty memory database.
 *
 * @example
 * const database = createMemoryClientDatabase()
 * const first = createMemoryClientStore({ database })
 */
export function createMemoryClientDatabase(): MemoryClientDatabase {
  const data = emptyData()
  const database: MemoryClientDatabase & { readonly [DATA]: MemoryData } = {
    [DATA]: data,
    wipe() {
      Object.assign(data, emptyData())
    },
    outboxSize: () => data.outbox.size,
  }
  return database
}

/**
 * Opens a client store on a memory database.
 *
 * @example
 * const store = createMemoryClientStore({ database })
 * await store.init(() => createClientId(random), Date.now())
 */
export function createMemoryClientStore(options: MemoryClientStoreOptions = {}): ClientStore {
  const database = (options.database ?? createMemoryClientDatabase()) as MemoryClientDatabase & {
    readonly [DATA]?: MemoryData
  }
  const data = database[DATA]
  if (data === undefined) throw new TypeError('not a memory client database')
  let closed = false
  const views = createMemoryViews(data, viewTypesOf(options.schema))
  const refreshViews = views.refresh
  const types = views.types
  const rebuild = views.rebuild

  /** Invariant 1: `body` runs to the end or throws before it changed anything. */
  const write = <T>(body: () => T): Promise<T> => {
    try {
      if (closed) throw new ClientError('closed', 'client store is closed')
      return Promise.resolve(body())
    } catch (error) {
      return Promise.reject(toStorageError(error))
    }
  }
  const meta = (): ClientMeta => {
    if (data.meta === undefined) throw new ClientError('closed', 'database was wiped: reopen it')
    return data.meta
  }
  /** What folding `entity` needs, as stored now (`loadEntity`, and an append's loads). */
  const readLoad = (
    entity: string,
    typeKey: string,
    base: EntityBase | null | undefined,
  ): EntityLoad => {
    const found = data.snapshots.get(entity)
    const kept = data.bases.get(entity)
    const { start: snapshot, source: snapshotSource } = loadStart(
      base,
      found !== undefined && found.typeKey === typeKey ? found : undefined,
      kept !== undefined && kept.foldKey === typeKey ? kept : undefined,
    )
    const from = snapshot?.through ?? 0
    const fromVersion = snapshot?.version ?? 0
    const numbers = (data.ledgers.get(entity) ?? []).filter((n) => n >= from)
    const stored: StoredEntry[] = []
    for (const n of numbers) {
      for (const e of (data.chunks.get(n) as ChunkRecord).entries)
        if (e.entity === entity && e.version > fromVersion) stored.push(e)
    }
    stored.sort((a, b) => a.version - b.version)
    const acked = [...data.acked.values()]
      .filter((a) => a.entity === entity)
      .sort((a, b) => (a.id < b.id ? -1 : 1))
    const outboxed = [...data.outbox.values()].filter((r) => r.entity === entity)
    return clone({
      snapshot,
      snapshotSource,
      stored,
      lastChunk: numbers.at(-1),
      pending: [...acked.map((a) => a.entry), ...outboxed.map((o) => o.entry)],
      acked: new Set(acked.map((a) => a.id)),
    })
  }
  return {
    init: (newId, now, tenant) =>
      write(() => {
        if (data.meta !== undefined) {
          const filled = completedMeta(data.meta, newId, data.cursors?.tenant ?? tenant)
          if (filled !== undefined) data.meta = filled
          return { meta: clone(data.meta), created: false }
        }
        data.meta = newMeta(newId(), newId(), now, tenant ?? null)
        return { meta: clone(data.meta), created: true }
      }),

    append: (make, limits, now, bytesOf, loads = []) =>
      write(() => {
        const before = meta()
        const { records, written, bytes } = planAppend(before, make, limits, now, bytesOf)
        const copies = records.map(clone)
        for (const r of copies) data.outbox.set(r.id, r) // invariant 3: each past every key
        data.meta = written
        refreshViews(records.map((r) => r.entity))
        return {
          entries: records.map((r) => r.entry),
          bytes,
          meta: clone(written),
          wasEmpty: before.outboxEntries === 0,
          loads: new Map(loads.map((l) => [l.entity, readLoad(l.entity, l.typeKey, undefined)])),
        }
      }),

    readOutbox: (after, entriesMax, bytesMax) =>
      write(() => {
        const records: OutboxRecord[] = []
        for (const r of data.outbox.values()) {
          if (records.length >= entriesMax) break
          if (after === undefined || compareKey(r, after) > 0) records.push(clone(r))
        }
        return checkedBatch(records, bytesMax)
      }),

    applyAck: (items, keepAcked, lean = false) =>
      write(() => {
        const found = items.map((i) => {
          const r = data.outbox.get(i.record.id)
          return sameKey(r, i.record) ? r : undefined
        })
        const present = found.map((r) => r !== undefined)
        const plan = planAck(items, present, meta(), data.cursors?.cursors, keepAcked, lean)
        const deleted = new Set(plan.deletes.map((r) => r.id))
        const stage = planStoreStage(items, found, deleted, plan.meta, lean)
        for (const r of plan.deletes) data.outbox.delete(r.id)
        for (const r of stage.marks) data.outbox.set(r.id, clone(r))
        for (const a of plan.acked) data.acked.set(a.id, clone(a))
        for (const o of plan.outcomes) data.outcomes.set(o.id, clone(o))
        // As IndexedDB's: outcomes numbered OUTCOMES_MAX or more below the newest go.
        for (const [id, o] of data.outcomes)
          if (o.n <= plan.meta.n - OUTCOMES_MAX) data.outcomes.delete(id)
        data.meta = { ...plan.meta, storedEntries: stage.storedEntries }
        // As IndexedDB's: a lean ack forgets the definitions, and the next open rebuilds.
        if (lean) data.viewDefinitions = undefined
        else refreshViews(plan.entities)
        return {
          entities: plan.entities,
          changed: plan.changed,
          gaps: plan.gaps,
          settled: plan.settled,
        }
      }),

    prepareCursors: (tenant, scopeKey, inScope) =>
      write(() => {
        const found = data.cursors
        if (found !== undefined && found.tenant === tenant && found.scopeKey === scopeKey)
          return clone(found.cursors)
        // Another tenant or scope: the stored history answers a different question.
        data.chunks.clear()
        data.ledgers.clear()
        data.snapshots.clear()
        data.bases.clear()
        for (const [id, a] of data.acked) if (!inScope(a.entity)) data.acked.delete(id)
        data.cursors = {
          tenant,
          scopeKey,
          cursors: {},
          chunkLast: 0,
          stagedKeys: 0,
          bootstrap: true,
        }
        if (types.size > 0) rebuild()
        return {}
      }),

    applyPages: (pages, scopeKey) =>
      write(() => {
        const stored = data.cursors
        if (stored === undefined || stored.scopeKey !== scopeKey) {
          throw new ClientError('closed', 'subscription scope changed while a page was in flight')
        }
        const plan = planPages(clone(pages), stored, meta().clientIds)
        // Guarantee 11: the pages' snapshots become bases before their entries are stored.
        const based = new Map<string, BaseRecord>()
        for (const page of pages) {
          for (const snapshot of page.snapshots ?? []) {
            const next = nextBase(data.bases.get(snapshot.entity), clone(baseOf(snapshot)))
            if (next === undefined) continue
            data.bases.set(next.entity, next)
            based.set(next.entity, next)
          }
        }
        // Own entries back with head office's positions settle their outbox records.
        const own = ownEntries(plan.chunks, meta().clientIds)
        const settle = planSettle(
          own,
          own.map((e) => data.outbox.get(e.id)),
          meta(),
        )
        for (const r of settle.deletes) data.outbox.delete(r.id)
        for (const o of settle.outcomes) data.outcomes.set(o.id, clone(o))
        if (settle.deletes.length > 0) {
          prune(data.outcomes, OUTCOMES_MAX)
          data.meta = settle.meta
        }
        const clientMeta = meta()
        const known = plan.feedCandidates.map((c) => data.feed.has(c.id))
        const added = planFeed(plan.feedCandidates, known, clientMeta)
        for (const id of plan.ownReceived) data.acked.delete(id)
        for (const chunk of plan.chunks) data.chunks.set(chunk.n, chunk)
        for (const [entity, chunks] of plan.staged?.entities ?? []) {
          data.ledgers.set(entity, [...(data.ledgers.get(entity) ?? []), ...chunks])
        }
        data.cursors = { ...plan.cursors, stagedKeys: 0 }
        if (types.size > 0) {
          const confirmed = byEntity(plan.chunks.flatMap((c) => c.entries))
          const touched = new Set([...confirmed.keys(), ...settle.entities, ...based.keys()])
          refreshViews(touched, confirmed, based)
        }
        if (added.records.length > 0) {
          for (const r of added.records) data.feed.set(r.id, r)
          prune(data.feed, CORRECTIONS_FEED_MAX)
          data.meta = { ...clientMeta, n: added.n, correctionsUnseen: added.correctionsUnseen }
        }
        return {
          entities: new Set([...plan.entities, ...based.keys()]),
          based: new Set(based.keys()),
          corrections: added.records.map(clone),
          stored: plan.stored,
          own: plan.ownReceived.length,
          ownReceived: plan.ownReceived,
          chunks: plan.chunks,
          settled: settle.settled,
          cursors: clone(plan.cursors.cursors),
          stagedKeys: 0,
        }
      }),

    indexPending: () => write(() => false),

    loadEntity: (entity, typeKey, base) => write(() => readLoad(entity, typeKey, base)),

    bootstrapState: () =>
      write(() => ({
        pending: data.cursors?.bootstrap === true,
        baseKeys: [...(data.cursors?.baseKeys ?? [])],
      })),

    loadHistory: (entity) =>
      write(() => {
        const { pending, acked } = readLoad(entity, '', null)
        return clone({
          base: data.bases.get(entity),
          stored: storedOf(data, entity),
          pending,
          acked,
        })
      }),

    storeFetched: (entity, entries, dropped, scopeKey) =>
      write(() => {
        const stored = data.cursors
        if (stored === undefined || stored.scopeKey !== scopeKey) {
          throw new ClientError('closed', 'subscription scope changed while a fetch was in flight')
        }
        const held = new Set(storedOf(data, entity).map((e) => e.version))
        const plan = planFetched(clone(entries.filter((e) => e.entity === entity)), held, stored)
        for (const chunk of plan.chunks) data.chunks.set(chunk.n, chunk)
        for (const [name, chunks] of plan.staged?.entities ?? []) {
          data.ledgers.set(name, [...(data.ledgers.get(name) ?? []), ...chunks])
        }
        data.cursors = { ...plan.cursors, stagedKeys: 0 }
        const base = data.bases.get(entity)
        if (base !== undefined && dropped !== undefined && base.dropped !== dropped)
          data.bases.set(entity, { ...base, dropped })
        return plan.stored
      }),

    tenant: () => write(() => data.meta?.tenant ?? data.cursors?.tenant),

    putSnapshot: (snapshot) =>
      write(() => {
        data.snapshots.set(snapshot.entity, clone(snapshot))
      }),

    counters: () =>
      write(() => {
        const m = meta()
        return {
          clientId: m.clientId,
          clientIds: m.clientIds,
          seqLast: m.seqLast,
          outboxEntries: m.outboxEntries,
          outboxBytes: m.outboxBytes,
          oldestOutboxAt: data.outbox.values().next().value?.at ?? null,
          correctionsUnseen: m.correctionsUnseen,
          ackedWaiting: data.acked.size,
          storedEntries: m.storedEntries ?? 0,
        }
      }),

    outcome: (id) =>
      write(() => {
        const inOutbox = data.outbox.get(id)
        if (inOutbox !== undefined) return outboxOutcome(inOutbox)
        const outcome = data.outcomes.get(id)
        if (outcome !== undefined) return clone(outcome.outcome)
        const acked = data.acked.get(id)
        if (acked !== undefined) {
          const { version, partition, offset } = acked
          return { _tag: 'appended', version, partition, offset, committedAt: 0 } as const
        }
        return { _tag: 'unknown' } as const
      }),

    corrections: (limit) =>
      write(() =>
        [...data.feed.values()]
          .sort((a, b) => a.n - b.n)
          .slice(-limit)
          .reverse()
          .map(clone),
      ),

    markCorrectionsSeen: () =>
      write(() => {
        const m = meta()
        let marked = 0
        for (const [id, r] of data.feed) {
          if (!r.unseen) continue
          marked++
          data.feed.set(id, { ...r, unseen: false })
        }
        data.meta = { ...m, correctionsUnseen: 0 }
        return marked
      }),

    beginSession: (session, bytesOf) =>
      write(() => {
        const m = meta()
        if (m.clientId !== session.clientId) return { _tag: 'stale' } as const
        const changed = isOtherLog(m.log, session.log)
        const held: StoredEntry[] = []
        if (changed) {
          const own = new Set(m.clientIds)
          for (const chunk of data.chunks.values())
            for (const e of chunk.entries) if (own.has(e.clientId)) held.push(e)
        }
        const acked = changed ? [...data.acked.values()].map((a) => a.entry) : []
        const plan = planSession(
          m,
          session,
          clone([...acked, ...held]),
          outboxKeysOf([...data.outbox.values()]),
          bytesOf,
        )
        if (plan.putBack.length > 0) {
          // Invariant 3: back in key order.
          const all = [...data.outbox.values(), ...plan.putBack]
          all.sort((a, b) => a.clientSeq - b.clientSeq)
          data.outbox = new Map(all.map((r) => [r.id, r]))
        }
        for (const id of plan.ackedDeletes) data.acked.delete(id)
        for (const o of plan.outcomes) {
          if (followsEntry(data.outcomes.get(o.id))) data.outcomes.set(o.id, o)
        }
        if (plan.clearHistory) {
          data.chunks.clear()
          data.ledgers.clear()
          data.snapshots.clear()
          data.bases.clear()
          if (data.cursors !== undefined)
            data.cursors = {
              ...data.cursors,
              cursors: {},
              stagedKeys: 0,
              bootstrap: true,
              baseKeys: undefined,
            }
          if (types.size > 0) rebuild()
        }
        data.meta = plan.meta
        return {
          _tag: 'begun',
          recovering: plan.meta.recovering,
          logChanged: plan.clearHistory,
          putBack: plan.putBack.length,
          meta: clone(plan.meta),
        } as const
      }),

    markRecovering: () =>
      write(() => {
        data.meta = { ...meta(), recovering: true }
      }),

    reissue: (from, newClientId) =>
      write(() => {
        const m = meta()
        if (m.clientId !== from) return new Map<string, string>()
        const plan = planReissue(m, [...data.outbox.values()], newClientId)
        data.outbox = new Map(plan.records.map((r) => [r.id, r]))
        for (const o of plan.outcomes) data.outcomes.set(o.id, o)
        data.meta = plan.meta
        return plan.renamed
      }),

    prepareViews: () =>
      write(() => {
        const stale = staleTypes(types, data.viewDefinitions)
        if (stale.length === 0 && data.viewDefinitions !== undefined) return []
        rebuild(stale)
        return stale
      }),

    queryViews: (query) => write(() => views.query(query).map(clone)),

    close() {
      closed = true
      return Promise.resolve()
    },
  }
}

const DATA = Symbol('memory client data')

interface MemoryData {
  meta: ClientMeta | undefined
  cursors: CursorsRecord | undefined
  /** By entry id (`<clientId>-<clientSeq>`), in key order (invariant 3). */
  outbox: Map<string, OutboxRecord>
  acked: Map<string, AckedRecord>
  chunks: Map<number, ChunkRecord>
  /** Entity → chunks holding it, ascending. */
  ledgers: Map<string, number[]>
  snapshots: Map<string, SnapshotRecord>
  /** Relay snapshots kept as entities' bases (client store guarantee 11). */
  bases: Map<string, BaseRecord>
  outcomes: Map<string, OutcomeRecord>
  feed: Map<string, FeedRecord>
  /** Kept views by entity (invariant 5), and the definitions they were built with. */
  views: Map<string, ViewRecord>
  viewDefinitions: ViewDefinitions | undefined
}

function emptyData(): MemoryData {
  return {
    meta: undefined,
    cursors: undefined,
    outbox: new Map(),
    acked: new Map(),
    chunks: new Map(),
    ledgers: new Map(),
    snapshots: new Map(),
    bases: new Map(),
    outcomes: new Map(),
    feed: new Map(),
    views: new Map(),
    viewDefinitions: undefined,
  }
}

function clone<T>(value: T): T {
  return structuredClone(value)
}

function compareKey(r: OutboxRecord, key: readonly [string, number]): number {
  if (r.clientId !== key[0]) return r.clientId < key[0] ? -1 : 1
  return r.clientSeq - key[1]
}

function sameKey(a: OutboxRecord | undefined, b: OutboxRecord): boolean {
  return a !== undefined && a.clientId === b.clientId && a.clientSeq === b.clientSeq
}

/** Deletes the oldest records (by `n`) beyond `max`. */
function prune(records: Map<string, { readonly n: number }>, max: number): void {
  if (records.size <= max) return
  const oldest = [...records.entries()].sort((a, b) => a[1].n - b[1].n)
  for (const [id] of oldest.slice(0, records.size - max)) records.delete(id)
}

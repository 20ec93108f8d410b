/**
 * Confirmed history in IndexedDB: the cursors, the chunks of received entries, the staged
 * records and the per-entity ledger index, and reading one entity's ledger back for folding.
 *
 * Why chunks: confirmed history arrives from the relay in pages of up to 1,000 entries, often
 * several back to back during catch-up. `applyPages` stores all the pages it is given in ONE
 * transaction, as one *chunk* record per partition (numbered n = 1, 2, 3… in arrival order),
 * so a cold catch-up costs a few puts per page instead of one per entry (one record per entry
 * caps near 15,000 puts/s in Chromium). Indexing each entry by entity at that moment would cost
 * one index write per entity per page again (it was half the time of a catch-up in layout 1),
 * so the transaction only adds one *staged* record listing which chunks hold which entities.
 * `indexPending` later folds many staged records into the per-entity index at once: one
 * `ledgers` record per entity touched since the last run (a blind put, no read), so the index
 * costs one write per entity per run instead of per page. A load reads the entity's `ledgers`
 * records from its snapshot's chunk on, plus every staged record (bounded by
 * INDEX_STAGED_KEYS_MAX), and then only the chunks that hold the entity.
 *
 * Invariants:
 * 1. Pages of entries are stored in one transaction with the cursors after the last of them
 *    and their staged record (`planPages`); offsets at or below the stored cursor are dropped,
 *    so an entry is never stored twice, and the cursor never runs ahead of what is stored.
 *    Pages use relaxed durability: a page lost to a power cut is lost with its cursor, and
 *    fetched again. The same transaction settles the outbox records of own entries the pages
 *    bring back with the same content (`settleOwn`, `plans-hub.ts`).
 * 2. Cursors, chunks, the ledger index and snapshots belong to one (tenant, scope); when either
 *    changes they are cleared together, with the acked records outside the new scope.
 * 3. Every chunk n ≤ CursorsRecord.chunkLast is listed either in a staged record or (once
 *    `indexPending` ran) in its entities' `ledgers` records, never lost between the two: the
 *    move is one transaction.
 * 4. A load returns the entity's confirmed entries after its base in version order, and its
 *    pending ones (acked, then outbox), from one readonly transaction.
 * 5. Loads asked for in the same task (an `appendMany` priming the entities it wrote, a screen
 *    loading a day's orders) share one readonly transaction, up to LOAD_BATCH_ENTITIES_MAX
 *    each, and one read of the staged records: a transaction per entity cost more than the
 *    reads themselves in Chromium. Each load still answers alone; a failing transaction fails
 *    the loads it carried, as it would have failed each.
 */
import type { StoredEntry } from '@ledgerline/core'
import { assert } from '@ledgerline/core'
import { planFetched, planPages } from './plans-sync.ts'
import { baseOf, loadStart } from './bases.ts'
import {
  createBaseReader,
  replaceBase,
  writeBases,
  type BaseReader,
  type BasesTx,
} from './idb-bases.ts'
import type {
  ClientMeta,
  ClientStore,
  CursorsRecord,
  EntityBase,
  EntityLoad,
  StagedRecord,
} from './client-store.ts'
import { ClientError } from './errors.ts'
import type { IDBPTransaction } from 'idb'
import { prune, type LedgerDb, type Run } from './idb-database.ts'
import { addToFeed } from './idb-feed.ts'
import { settleOwn } from './idb-outcomes.ts'
import { readSnapshot } from './idb-snapshots.ts'
import { CORRECTIONS_FEED_MAX, LOAD_BATCH_ENTITIES_MAX } from './limits.ts'
import { asViewTx, rebuildIn, refreshViews, viewStores } from './idb-views.ts'
import { byEntity, viewTypeOf, type ViewTypes } from './views.ts'

export type IdbHistory = Pick<
  ClientStore,
  | 'prepareCursors'
  | 'bootstrapState'
  | 'applyPages'
  | 'indexPending'
  | 'loadEntity'
  | 'loadHistory'
  | 'storeFetched'
  | 'tenant'
>

/**
 * @example
 * const history = createIdbHistory(run, IDBKeyRange)
 * const cursors = await history.prepareCursors('acme', scopeKey, inScope)
 */
export function createIdbHistory(
  run: Run,
  KeyRange: typeof IDBKeyRange,
  types: ViewTypes = new Map(),
): IdbHistory {
  let loads: LoadRequest[] = []

  /** Invariant 5: up to LOAD_BATCH_ENTITIES_MAX waiting loads, in one transaction. */
  async function flushLoads(): Promise<void> {
    const batch = loads.slice(0, LOAD_BATCH_ENTITIES_MAX)
    loads = loads.slice(batch.length)
    if (loads.length > 0) void Promise.resolve().then(flushLoads)
    try {
      const results = await run(
        ['chunks', 'staged', 'ledgers', 'outbox', 'acked', 'snapshots', 'basePages'],
        'readonly',
        'default',
        async (tx) => {
          // One read of the staged records, and of each base page, for every load of the batch.
          const staged = tx.objectStore('staged').getAll()
          const baseOf = createBaseReader(
            tx as unknown as BasesTx,
            KeyRange,
            batch.map((r) => r.entity),
          )
          return Promise.all(
            batch.map(({ entity, typeKey, base }) =>
              readLoad(tx as unknown as LoadTx, KeyRange, entity, typeKey, base, staged, baseOf),
            ),
          )
        },
      )
      batch.forEach((r, i) => r.resolve(results[i] as EntityLoad))
    } catch (error) {
      for (const r of batch) r.reject(error)
    }
  }

  return {
    async prepareCursors(tenant, scopeKey, inScope) {
      return run(
        viewStores(types, [
          'meta',
          'chunks',
          'staged',
          'ledgers',
          'snapshots',
          'basePages',
          'acked',
        ]),
        'readwrite',
        'relaxed',
        async (tx, track) => {
          const meta = tx.objectStore('meta')
          const found = (await meta.get('cursors')) as CursorsRecord | undefined
          if (found !== undefined && found.tenant === tenant && found.scopeKey === scopeKey)
            return found.cursors
          // Another tenant or scope: the stored history answers a different question. Start over.
          for (const name of ['chunks', 'staged', 'ledgers', 'snapshots', 'basePages'] as const)
            void track(tx.objectStore(name).clear())
          const acked = await tx.objectStore('acked').getAll()
          for (const a of acked)
            if (!inScope(a.entity)) void track(tx.objectStore('acked').delete(a.id))
          const fresh: CursorsRecord = {
            tenant,
            scopeKey,
            cursors: {},
            chunkLast: 0,
            stagedKeys: 0,
            bootstrap: true,
          }
          void track(meta.put(fresh, 'cursors'))
          // Guarantee 10: confirmed state went with the history; views keep pending only.
          if (types.size > 0) await rebuildIn(asViewTx(tx), types, KeyRange, track)
          return {}
        },
      )
    },

    async applyPages(pages, scopeKey) {
      return run(
        viewStores(types, [
          'meta',
          'chunks',
          'staged',
          'acked',
          'feed',
          'outbox',
          'outcomes',
          'basePages',
        ]),
        'readwrite',
        'relaxed',
        async (tx, track) => {
          const metaStore = tx.objectStore('meta')
          const [rec, meta] = await Promise.all([metaStore.get('cursors'), metaStore.get('client')])
          const stored = rec as CursorsRecord | undefined
          if (stored === undefined || stored.scopeKey !== scopeKey) {
            throw new ClientError('closed', 'subscription scope changed while a page was in flight')
          }
          let clientMeta = meta as ClientMeta
          const plan = planPages(pages, stored, clientMeta.clientIds)
          // Guarantee 11: the pages' snapshots become bases before their entries are stored.
          const based = await writeBases(
            tx.objectStore('basePages'),
            KeyRange,
            pages.flatMap((p) => (p.snapshots ?? []).map(baseOf)),
            track,
          )
          const settle = await settleOwn(tx, plan.chunks, clientMeta, track)
          clientMeta = settle.meta
          for (const id of plan.ownReceived) void track(tx.objectStore('acked').delete(id))
          for (const chunk of plan.chunks) void track(tx.objectStore('chunks').put(chunk))
          if (plan.staged !== undefined) void track(tx.objectStore('staged').put(plan.staged))
          void track(metaStore.put(plan.cursors, 'cursors'))
          if (types.size > 0) {
            // Guarantee 10: the views of the entities stored, in this write. With an empty
            // outbox and no acked records nothing is pending, and nothing is read for it.
            const kept = plan.chunks.flatMap((c) =>
              c.entries.filter((e) => viewTypeOf(types, e.entity) !== undefined),
            )
            const keptBases = [...based.keys()].filter((e) => viewTypeOf(types, e) !== undefined)
            if (kept.length > 0 || settle.entities.size > 0 || keptBases.length > 0) {
              const confirmed = byEntity(kept)
              const noPending =
                clientMeta.outboxEntries === 0 && (await tx.objectStore('acked').count()) === 0
              const tv = asViewTx(tx)
              const settledKept = [...settle.entities].filter(
                (e) => viewTypeOf(types, e) !== undefined,
              )
              const touched = new Set([...confirmed.keys(), ...settledKept, ...keptBases])
              await refreshViews(tv, types, KeyRange, touched, confirmed, track, noPending, based)
            }
          }
          let corrections: typeof plan.feedCandidates = []
          if (plan.feedCandidates.length > 0) {
            const feed = tx.objectStore('feed')
            const added = await addToFeed(feed, plan.feedCandidates, clientMeta, track)
            await prune(feed, CORRECTIONS_FEED_MAX, track)
            corrections = added.records
            void track(
              metaStore.put(
                { ...clientMeta, n: added.n, correctionsUnseen: added.correctionsUnseen },
                'client',
              ),
            )
          } else if (settle.deletes.length > 0) {
            void track(metaStore.put(clientMeta, 'client'))
          }
          return {
            entities:
              based.size === 0 ? plan.entities : new Set([...plan.entities, ...based.keys()]),
            based: new Set(based.keys()),
            corrections,
            stored: plan.stored,
            own: plan.ownReceived.length,
            ownReceived: plan.ownReceived,
            chunks: plan.chunks,
            settled: settle.settled,
            cursors: plan.cursors.cursors,
            stagedKeys: plan.cursors.stagedKeys,
          }
        },
      )
    },

    async indexPending() {
      return run(['meta', 'staged', 'ledgers'], 'readwrite', 'relaxed', async (tx, track) => {
        const [staged, rec] = await Promise.all([
          tx.objectStore('staged').getAll(),
          tx.objectStore('meta').get('cursors') as Promise<CursorsRecord | undefined>,
        ])
        if (staged.length === 0 || rec === undefined) return false
        // Staged records come in chunk order (their key), so each entity's list stays ascending.
        const merged = new Map<string, number[]>()
        for (const record of staged) {
          for (const [entity, chunks] of record.entities) {
            const list = merged.get(entity)
            if (list === undefined) merged.set(entity, [...chunks])
            else list.push(...chunks)
          }
        }
        const ledgers = tx.objectStore('ledgers')
        for (const [entity, chunks] of merged) {
          void track(ledgers.put({ entity, last: chunks.at(-1) as number, chunks }))
        }
        void track(tx.objectStore('staged').clear())
        void track(tx.objectStore('meta').put({ ...rec, stagedKeys: 0 }, 'cursors'))
        return true
      })
    },

    async bootstrapState() {
      return run(['meta'], 'readonly', 'default', async (tx) => {
        const rec = (await tx.objectStore('meta').get('cursors')) as CursorsRecord | undefined
        return { pending: rec?.bootstrap === true, baseKeys: rec?.baseKeys ?? [] }
      })
    },

    async loadHistory(entity) {
      return run(
        ['chunks', 'staged', 'ledgers', 'outbox', 'acked', 'basePages'],
        'readonly',
        'default',
        async (tx) => {
          const [{ stored }, base, outboxed, acked] = await Promise.all([
            readStored(tx as unknown as HistoryTx, KeyRange, entity, 0, 0),
            createBaseReader(tx as unknown as BasesTx, KeyRange)(entity),
            tx.objectStore('outbox').index('entity').getAll(entity),
            tx.objectStore('acked').index('entity').getAll(entity),
          ])
          const pending = [...acked.map((a) => a.entry), ...outboxed.map((o) => o.entry)]
          return { base, stored, pending, acked: new Set(acked.map((a) => a.id)) }
        },
      )
    },

    async storeFetched(entity, entries, dropped, scopeKey) {
      return run(
        ['meta', 'chunks', 'staged', 'ledgers', 'basePages'],
        'readwrite',
        'relaxed',
        async (tx, track) => {
          const metaStore = tx.objectStore('meta')
          const stored = (await metaStore.get('cursors')) as CursorsRecord | undefined
          if (stored === undefined || stored.scopeKey !== scopeKey) {
            throw new ClientError(
              'closed',
              'subscription scope changed while a fetch was in flight',
            )
          }
          const [held, base] = await Promise.all([
            readStored(tx as unknown as HistoryTx, KeyRange, entity, 0, 0),
            createBaseReader(tx as unknown as BasesTx, KeyRange)(entity),
          ])
          const versions = new Set(held.stored.map((e) => e.version))
          const ofEntity = entries.filter((e) => e.entity === entity)
          const plan = planFetched(ofEntity, versions, stored)
          for (const chunk of plan.chunks) void track(tx.objectStore('chunks').put(chunk))
          if (plan.staged !== undefined) void track(tx.objectStore('staged').put(plan.staged))
          void track(metaStore.put(plan.cursors, 'cursors'))
          if (base !== undefined && dropped !== undefined && base.dropped !== dropped)
            await replaceBase(tx.objectStore('basePages'), KeyRange, { ...base, dropped }, track)
          return plan.stored
        },
      )
    },

    loadEntity(entity, typeKey, base) {
      return new Promise<EntityLoad>((resolve, reject) => {
        // Invariant 5: loads asked for together share one readonly transaction.
        loads.push({ entity, typeKey, base, resolve, reject })
        if (loads.length === 1) void Promise.resolve().then(flushLoads)
      })
    },

    async tenant() {
      return run(['meta'], 'readonly', 'default', async (tx) => {
        const [meta, rec] = (await Promise.all([
          tx.objectStore('meta').get('client'),
          tx.objectStore('meta').get('cursors'),
        ])) as [ClientMeta | undefined, CursorsRecord | undefined]
        return meta?.tenant ?? rec?.tenant
      })
    },
  }
}

/** A transaction that can read confirmed history (loads, and view records folded again). */
export type HistoryTx = IDBPTransaction<
  LedgerDb,
  ('chunks' | 'staged' | 'ledgers')[],
  IDBTransactionMode
>

/**
 * The confirmed entries of `entity` in chunks from `from` on and above version `fromVersion`,
 * in version order, and the last chunk read (invariant 4).
 */
export async function readStored(
  tx: HistoryTx,
  KeyRange: typeof IDBKeyRange,
  entity: string,
  from: number,
  fromVersion: number,
  stagedRead?: Promise<readonly StagedRecord[]> | undefined,
): Promise<{ stored: StoredEntry[]; lastChunk: number | undefined }> {
  const [indexed, staged] = await Promise.all([
    tx.objectStore('ledgers').getAll(KeyRange.bound([entity, from], [entity, Infinity])),
    stagedRead ?? tx.objectStore('staged').getAll(),
  ])
  const wanted = new Set<number>()
  for (const r of indexed) for (const n of r.chunks) if (n >= from) wanted.add(n)
  for (const r of staged) {
    for (const [name, chunks] of r.entities)
      if (name === entity) for (const n of chunks) if (n >= from) wanted.add(n)
  }
  const numbers = [...wanted].sort((a, b) => a - b)
  const chunks = await Promise.all(numbers.map((n) => tx.objectStore('chunks').get(n)))
  const stored: StoredEntry[] = []
  for (const chunk of chunks) {
    assert(chunk !== undefined, 'an indexed chunk exists')
    for (const e of chunk.entries)
      if (e.entity === entity && e.version > fromVersion) stored.push(e)
  }
  stored.sort((a, b) => a.version - b.version)
  return { stored, lastChunk: numbers.at(-1) }
}

/** A transaction that can read what a load needs (a load's own, or an append's). */
export type LoadTx = IDBPTransaction<
  LedgerDb,
  ('snapshots' | 'basePages' | 'chunks' | 'staged' | 'ledgers' | 'outbox' | 'acked')[],
  IDBTransactionMode
>

/**
 * What folding `entity` needs (invariant 4), read in `tx`: the snapshot (unless `base` says
 * where to start), the confirmed entries after it and the pending ones. An append reads it in
 * its own transaction, after its writes, so the pending entries include the appended ones.
 */
export async function readLoad(
  tx: LoadTx,
  KeyRange: typeof IDBKeyRange,
  entity: string,
  typeKey: string,
  base: EntityBase | null | undefined,
  stagedRead?: Promise<readonly StagedRecord[]> | undefined,
  baseOf: BaseReader = createBaseReader(tx as unknown as BasesTx, KeyRange),
): Promise<EntityLoad> {
  const [found, kept] = await Promise.all([
    base === undefined
      ? readSnapshot(tx as Parameters<typeof readSnapshot>[0], entity, typeKey)
      : Promise.resolve(undefined),
    baseOf(entity),
  ])
  const { start: snapshot, source: snapshotSource } = loadStart(
    base,
    found,
    kept !== undefined && kept.foldKey === typeKey ? kept : undefined,
  )
  const from = snapshot?.through ?? 0
  const [{ stored, lastChunk }, outboxed, acked] = await Promise.all([
    readStored(
      tx as unknown as HistoryTx,
      KeyRange,
      entity,
      from,
      snapshot?.version ?? 0,
      stagedRead,
    ),
    tx.objectStore('outbox').index('entity').getAll(entity),
    tx.objectStore('acked').index('entity').getAll(entity),
  ])
  const pending = [...acked.map((a) => a.entry), ...outboxed.map((o) => o.entry)]
  return {
    snapshot,
    snapshotSource,
    stored,
    lastChunk,
    pending,
    acked: new Set(acked.map((a) => a.id)),
  }
}

interface LoadRequest {
  readonly entity: string
  readonly typeKey: string
  readonly base: EntityBase | null | undefined
  readonly resolve: (load: EntityLoad) => void
  readonly reject: (error: unknown) => void
}

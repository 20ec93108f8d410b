/**
 * Outcomes in IndexedDB: applying the relay's acks (the outbox records they answer go, their
 * outcomes and positions stay) and answering `outcome(id)`.
 *
 * Terms: an *outcome record* keeps the log's answer to one own entry (appended, duplicate,
 * refused, or reissued under a new id); an *acked record* keeps an appended entry as pending
 * until the subscription brings it back.
 *
 * Invariants:
 * 1. An ack is applied in one transaction: outbox records deleted, acked records and outcomes
 *    put, the meta record's counters rewritten (`planAck`). Corrections are references in an
 *    ack: their bodies join the feed with the pages that bring them (`idb-history.ts`).
 * 2. A lean ack (after `storage_full`) deletes and rewrites the meta record only: deleting
 *    frees space, so a full disk never stops the outbox from draining.
 * 3. At most OUTCOMES_MAX outcomes are kept; the oldest (by `n`) go first, in the transaction
 *    that added the new ones: every outcome numbered OUTCOMES_MAX or more below the newest `n`.
 * 4. `outcome(id)` answers from the outbox first (`outbox`: no answer yet, with its stage), then
 *    the outcome record, then the acked record; an id none of them knows is `unknown`.
 * 5. A store hub's `stored` marks the record in the ack's transaction and is counted in the
 *    meta record (`planStoreStage`); it never deletes it.
 */
import { planAck } from './plans-sync.ts'
import type { StoredEntry } from '@ledgerline/core'
import type { IDBPTransaction } from 'idb'
import type { ClientMeta, ClientStore, CursorsRecord, OutboxRecord } from './client-store.ts'
import type { SettlePlan } from './plans-hub.ts'
import { outboxOutcome, ownEntries, planSettle, planStoreStage } from './plans-hub.ts'
import { prune, pruneOlder, type LedgerDb, type Run, type Track } from './idb-database.ts'
import { OUTCOMES_MAX } from './limits.ts'
import { asViewTx, refreshViews, viewStores } from './idb-views.ts'
import type { ViewTypes } from './views.ts'

export type IdbOutcomes = Pick<ClientStore, 'applyAck' | 'outcome'>

/**
 * @example
 * const outcomes = createIdbOutcomes(run)
 * const applied = await outcomes.applyAck(items, () => true)
 */
export function createIdbOutcomes(
  run: Run,
  KeyRange: typeof IDBKeyRange,
  types: ViewTypes = new Map(),
): IdbOutcomes {
  return {
    async applyAck(items, keepAcked, lean = false) {
      return run(
        viewStores(types, ['meta', 'outbox', 'acked', 'outcomes']),
        'readwrite',
        'relaxed',
        async (tx, track) => {
          const metaStore = tx.objectStore('meta')
          const outbox = tx.objectStore('outbox')
          const [meta, cursorsRec] = (await Promise.all([
            metaStore.get('client'),
            metaStore.get('cursors'),
          ])) as [ClientMeta, CursorsRecord | undefined]
          // Whole records only where a store hub is in play (a `stored` answer, or records
          // marked by one): their stage is counted (`plans-hub.ts`); else keys suffice.
          const hub =
            (meta.storedEntries ?? 0) > 0 || items.some((i) => i.result.status === 'stored')
          const found: (OutboxRecord | undefined)[] = await Promise.all(
            items.map(async (item) => {
              const key: [string, number] = [item.record.clientId, item.record.clientSeq]
              if (hub) return (await outbox.get(key)) as OutboxRecord | undefined
              return (await outbox.getKey(key)) === undefined ? undefined : item.record
            }),
          )
          const plan = planAck(
            items,
            found.map((r) => r !== undefined),
            meta,
            cursorsRec?.cursors,
            keepAcked,
            lean,
          )
          const deleted = new Set(plan.deletes.map((r) => r.id))
          const stage = planStoreStage(items, found, deleted, plan.meta, lean)
          for (const r of plan.deletes) void track(outbox.delete([r.clientId, r.clientSeq]))
          for (const r of stage.marks) void track(outbox.put(r))
          for (const a of plan.acked) void track(tx.objectStore('acked').put(a))
          for (const o of plan.outcomes) void track(tx.objectStore('outcomes').put(o))
          // Invariant 3: numbers more than OUTCOMES_MAX below the newest go (the feed's records
          // share the counter, so at most OUTCOMES_MAX stay), found by a range of `n`.
          if (plan.outcomes.length > 0)
            await pruneOlder(
              tx.objectStore('outcomes'),
              KeyRange,
              plan.meta.n - OUTCOMES_MAX,
              track,
            )
          void track(metaStore.put({ ...plan.meta, storedEntries: stage.storedEntries }, 'client'))
          // Guarantee 10: a refused entry leaves its entity's pending entries in this write. A
          // lean ack (the disk is full) writes no views: it forgets the stored definitions
          // instead (a delete), so the next `prepareViews` rebuilds every kept type.
          if (lean && types.size > 0) void track(metaStore.delete('views'))
          else await refreshViews(asViewTx(tx), types, KeyRange, plan.entities, new Map(), track)
          return {
            entities: plan.entities,
            changed: plan.changed,
            gaps: plan.gaps,
            settled: plan.settled,
          }
        },
      )
    },

    async outcome(id) {
      return run(['outbox', 'acked', 'outcomes'], 'readonly', 'default', async (tx) => {
        const [inOutbox, outcome] = await Promise.all([
          tx.objectStore('outbox').index('id').get(id) as Promise<OutboxRecord | undefined>,
          tx.objectStore('outcomes').get(id),
        ])
        if (inOutbox !== undefined) return outboxOutcome(inOutbox)
        if (outcome !== undefined) return outcome.outcome
        const acked = await tx.objectStore('acked').get(id)
        if (acked !== undefined)
          return {
            _tag: 'appended',
            version: acked.version,
            partition: acked.partition,
            offset: acked.offset,
            committedAt: 0,
          } as const
        return { _tag: 'unknown' } as const
      })
    },
  }
}

/**
 * Settles the outbox records of own entries that `chunks` bring with head office's positions
 * (`planSettle`), inside the page write `tx`: records deleted, outcomes put. The caller writes
 * the meta record it answers (with the pages' own changes).
 *
 * @example
 * const settle = await settleOwn(tx, plan.chunks, meta, track)
 */
export async function settleOwn(
  writeTx: unknown,
  chunks: readonly { readonly entries: readonly StoredEntry[] }[],
  meta: ClientMeta,
  track: Track,
): Promise<SettlePlan> {
  const own = ownEntries(chunks, meta.clientIds)
  if (own.length === 0) return planSettle([], [], meta)
  // Any read-write transaction over the outbox and outcomes (a page write's).
  const tx = writeTx as IDBPTransaction<LedgerDb, ('outbox' | 'outcomes')[], 'readwrite'>
  const outbox = tx.objectStore('outbox')
  const found = (await Promise.all(own.map((e) => outbox.index('id').get(e.id)))) as (
    | OutboxRecord
    | undefined
  )[]
  const plan = planSettle(own, found, meta)
  if (plan.deletes.length === 0) return plan
  for (const r of plan.deletes) void track(outbox.delete([r.clientId, r.clientSeq]))
  for (const o of plan.outcomes) void track(tx.objectStore('outcomes').put(o))
  await prune(tx.objectStore('outcomes'), OUTCOMES_MAX, track)
  return plan
}

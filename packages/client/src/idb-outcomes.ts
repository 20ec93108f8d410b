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
 * 4. `outcome(id)` answers from the outbox first (`outbox`: no answer yet), then the outcome
 *    record, then the acked record; an id none of them knows is `unknown`.
 */
import { planAck } from './plans-sync.ts'
import type { ClientMeta, ClientStore, CursorsRecord } from './client-store.ts'
import { pruneOlder, type Run } from './idb-database.ts'
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
          const present = await Promise.all(
            items.map((item) => outbox.getKey([item.record.clientId, item.record.clientSeq])),
          )
          const plan = planAck(
            items,
            present.map((key) => key !== undefined),
            meta,
            cursorsRec?.cursors,
            keepAcked,
            lean,
          )
          for (const r of plan.deletes) void track(outbox.delete([r.clientId, r.clientSeq]))
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
          void track(metaStore.put(plan.meta, 'client'))
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
          tx.objectStore('outbox').index('id').getKey(id),
          tx.objectStore('outcomes').get(id),
        ])
        if (inOutbox !== undefined) return { _tag: 'outbox' } as const
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

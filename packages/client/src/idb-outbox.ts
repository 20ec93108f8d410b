/**
 * The outbox in IndexedDB: the meta record (clientId, clientSeq allocation, counters) and the
 * `outbox` object store of own entries not yet acknowledged. The acks that empty it are applied
 * in `idb-outcomes.ts`.
 *
 * Terms: an *outbox record* carries its entry, its encoded size and the local time of the
 * append; its key is [clientId, clientSeq], so key order is clientSeq order.
 *
 * Invariants:
 * 1. `append` allocates clientSeq (meta.seqLast + 1 …) and puts the outbox records in ONE
 *    readwrite transaction with the configured durability (`strict` by default): an entry never
 *    exists without its outbox record, nor the reverse, and clientSeq is gap-free per clientId.
 * 2. Entries are validated before they are written (`append`) and again after they are read
 *    back (`readOutbox`): pair assertions.
 * 3. Every outbox record has the current meta.clientId (`reissue`, in `idb-recovery.ts`, moves
 *    all of them to a new clientId in one transaction).
 * 4. The outbox counters in the meta record change in the same transaction as the records.
 * 5. `init` completes a meta record an older build wrote (tenant from the cursors record, a new
 *    device secret) in the transaction that reads it, so every later read finds every field.
 * 6. An append asked to load entities reads them in its own transaction, after its writes
 *    (requests of one transaction run in order), so the caller sees the committed entries
 *    without a second transaction; only then does its scope take the history's stores.
 */
import { checkedBatch, completedMeta, newMeta, planAppend } from './plans-outbox.ts'
import type {
  ClientMeta,
  ClientStore,
  CursorsRecord,
  Durability,
  EntityLoad,
} from './client-store.ts'
import { ClientError } from './errors.ts'
import type { Run } from './idb-database.ts'
import { readLoad, type LoadTx } from './idb-history.ts'
import { asViewTx, refreshViews, viewStores } from './idb-views.ts'
import type { ViewTypes } from './views.ts'

/** The scope of an append that also loads entities (invariant 6). */
const APPEND_LOAD_STORES = [
  'meta',
  'outbox',
  'chunks',
  'staged',
  'ledgers',
  'acked',
  'snapshots',
  'basePages',
] as const

export type IdbOutbox = Pick<ClientStore, 'init' | 'append' | 'readOutbox' | 'counters'>

/**
 * @example
 * const outbox = createIdbOutbox(run, IDBKeyRange, 'strict')
 * await outbox.init(() => createClientId(random), Date.now())
 */
export function createIdbOutbox(
  run: Run,
  KeyRange: typeof IDBKeyRange,
  durability: Durability,
  types: ViewTypes = new Map(),
): IdbOutbox {
  return {
    async init(newId, now, tenant) {
      return run(['meta'], 'readwrite', 'strict', async (tx, track) => {
        const meta = tx.objectStore('meta')
        const [found, cursors] = (await Promise.all([meta.get('client'), meta.get('cursors')])) as [
          ClientMeta | undefined,
          CursorsRecord | undefined,
        ]
        if (found !== undefined) {
          // Invariant 5: fill what an older build's record lacks, once.
          const filled = completedMeta(found, newId, cursors?.tenant ?? tenant)
          if (filled === undefined) return { meta: found, created: false }
          void track(meta.put(filled, 'client'))
          return { meta: filled, created: false }
        }
        // No meta: a new database, or one wiped by the browser or the user. Either way this is
        // a new client: a fresh clientId means no clientSeq can ever be reused.
        const created = newMeta(newId(), newId(), now, tenant ?? null)
        void track(meta.put(created, 'client'))
        return { meta: created, created: true }
      })
    },

    async append(make, limits, now, bytesOf, loads = []) {
      // Invariant 6: the stores a load reads join the write only when it primes entities.
      const names = loads.length === 0 ? ['meta' as const, 'outbox' as const] : APPEND_LOAD_STORES
      return run(viewStores(types, [...names]), 'readwrite', durability, async (tx, track) => {
        const metaStore = tx.objectStore('meta')
        const meta = (await metaStore.get('client')) as ClientMeta | undefined
        if (meta === undefined)
          throw new ClientError('closed', 'database was wiped: reopen the client')
        const { records, written, bytes } = planAppend(meta, make, limits, now, bytesOf)
        const outbox = tx.objectStore('outbox')
        for (const record of records) void track(outbox.add(record))
        void track(metaStore.put(written, 'client'))
        // Client store guarantee 10: the views of the entities appended to, in this write.
        const entities = records.map((r) => r.entity)
        await refreshViews(asViewTx(tx), types, KeyRange, entities, new Map(), track)
        // Invariant 6: after the adds, so each load's pending entries include this append's.
        const loadTx = tx as unknown as LoadTx
        const staged = loads.length === 0 ? undefined : loadTx.objectStore('staged').getAll()
        const read = await Promise.all(
          loads.map((l) => readLoad(loadTx, KeyRange, l.entity, l.typeKey, undefined, staged)),
        )
        return {
          entries: records.map((r) => r.entry),
          bytes,
          meta: written,
          wasEmpty: meta.outboxEntries === 0,
          loads: new Map(loads.map((l, i) => [l.entity, read[i] as EntityLoad])),
        }
      })
    },

    async readOutbox(after, entriesMax, bytesMax) {
      const records = await run(['outbox'], 'readonly', 'default', async (tx) => {
        const range = after === undefined ? undefined : KeyRange.lowerBound([...after], true)
        return tx.objectStore('outbox').getAll(range, entriesMax)
      })
      return checkedBatch(records, bytesMax)
    },

    async counters() {
      return run(['meta', 'outbox', 'acked'], 'readonly', 'default', async (tx) => {
        const [meta, first, ackedWaiting] = await Promise.all([
          tx.objectStore('meta').get('client') as Promise<ClientMeta | undefined>,
          tx.objectStore('outbox').getAll(undefined, 1),
          tx.objectStore('acked').count(),
        ])
        if (meta === undefined)
          throw new ClientError('closed', 'database was wiped: reopen the client')
        return {
          clientId: meta.clientId,
          clientIds: meta.clientIds,
          seqLast: meta.seqLast,
          outboxEntries: meta.outboxEntries,
          outboxBytes: meta.outboxBytes,
          oldestOutboxAt: first[0]?.at ?? null,
          correctionsUnseen: meta.correctionsUnseen,
          ackedWaiting,
          storedEntries: meta.storedEntries ?? 0,
        }
      })
    },
  }
}

/**
 * Snapshots in IndexedDB: an entity's folded state as of a version and a chunk, so a load
 * folds only the entries after it (start-up never folds every ledger).
 *
 * Terms: a snapshot's *type key* names the entity type and its fold `version`
 * (`snapshot-keys.ts`); its *source* fingerprints `reduce`'s text, only to warn; *through* is
 * the last chunk folded into it.
 *
 * Invariants:
 * 1. A snapshot is used only when its type key matches the entity type's current one: a
 *    raised fold version folds from version 1 again.
 * 2. A snapshot only saves work: writing one may fail (quota, a state that cannot be cloned)
 *    without losing anything, and the history it covers stays stored.
 * 3. Snapshots belong to the (tenant, scope) of the cursors and are cleared with them
 *    (`idb-history.ts`, invariant 2).
 */
import type { IDBPTransaction } from 'idb'
import type { ClientStore, SnapshotRecord } from './client-store.ts'
import type { LedgerDb, Run } from './idb-database.ts'

export type IdbSnapshots = Pick<ClientStore, 'putSnapshot'>

/**
 * @example
 * await createIdbSnapshots(run).putSnapshot({ entity, version, state, through, typeKey })
 */
export function createIdbSnapshots(run: Run): IdbSnapshots {
  return {
    async putSnapshot(snapshot) {
      await run(['snapshots'], 'readwrite', 'relaxed', async (tx, track) => {
        void track(tx.objectStore('snapshots').put(snapshot))
      })
    },
  }
}

/** The stored snapshot of `entity` if its type key matches (invariant 1). */
export async function readSnapshot(
  tx: IDBPTransaction<
    LedgerDb,
    ('snapshots' | 'basePages' | 'chunks' | 'staged' | 'ledgers' | 'outbox' | 'acked')[],
    'readonly'
  >,
  entity: string,
  typeKey: string,
): Promise<SnapshotRecord | undefined> {
  const found = await tx.objectStore('snapshots').get(entity)
  return found !== undefined && found.typeKey === typeKey ? found : undefined
}

/**
 * Restore recovery in IndexedDB: the first write of each welcomed session (`beginSession`),
 * the recovery flag, and the move of the outbox to a new clientId (`reissue`). What the sync
 * loop does with them is in `restore-recovery.ts`.
 *
 * Terms: a *restored* database allocated fewer clientSeqs than the log holds for its clientId
 * (a copy written back); a *changed log* has another identity than the one this database last
 * synced with (restored from a backup, or replaced); entries are *put back* into the outbox when
 * a changed log lacks them.
 *
 * Invariants:
 * 1. `beginSession` is ONE strict transaction over every store it may touch: the entries put
 *    back are in the outbox before confirmed history, snapshots and cursors go, and the new log
 *    identity is recorded with `recovering` in the same commit (client store guarantee 9).
 * 2. Entries of the current clientId are put back as they were sent (`sentEntry`: same id,
 *    same content), those of earlier clientIds moved under it with their `origin`, never twice
 *    (`planSession`).
 * 3. Dropping history keeps the chunk numbering going (`chunkLast`), so a chunk number never
 *    names two different chunks for a reader that still holds an old one.
 * 4. `reissue` moves every outbox record in one strict transaction, and only while the current
 *    clientId is the one the caller recovered from.
 * 5. An earlier clientId's entry put back tells `outcome(its id)` `reissued` only where this
 *    database has no outcome under that id yet, or an appended one: an id may name two entries
 *    across a device restore (the log's, received back, and the restored copy's own, moved or
 *    refused), and the app's outcome is about the one it appended here (found by the product
 *    simulation, quick-tier seed 5).
 */
import type { StoredEntry } from '@ledgerline/core'
import {
  followsEntry,
  isOtherLog,
  outboxKeysOf,
  planReissue,
  planSession,
} from './plans-recovery.ts'
import type { ClientMeta, ClientStore, CursorsRecord } from './client-store.ts'
import { ClientError } from './errors.ts'
import type { Run } from './idb-database.ts'
import { asViewTx, rebuildIn, viewStores } from './idb-views.ts'
import type { ViewTypes } from './views.ts'

export type IdbRecovery = Pick<ClientStore, 'beginSession' | 'markRecovering' | 'reissue'>

/**
 * @example
 * const recovery = createIdbRecovery(run)
 * const begun = await recovery.beginSession({ clientId, tenant, log, high }, entryBytes)
 */
export function createIdbRecovery(
  run: Run,
  KeyRange: typeof IDBKeyRange,
  types: ViewTypes = new Map(),
): IdbRecovery {
  return {
    async beginSession(session, bytesOf) {
      return run(
        viewStores(types, [
          'meta',
          'outbox',
          'acked',
          'outcomes',
          'chunks',
          'staged',
          'ledgers',
          'snapshots',
          'basePages',
        ]),
        'readwrite',
        'strict',
        async (tx, track) => {
          const metaStore = tx.objectStore('meta')
          const [meta, cursors] = (await Promise.all([
            metaStore.get('client'),
            metaStore.get('cursors'),
          ])) as [ClientMeta | undefined, CursorsRecord | undefined]
          if (meta === undefined)
            throw new ClientError('closed', 'database was wiped: reopen the client')
          if (meta.clientId !== session.clientId) return { _tag: 'stale' } as const
          const changed = isOtherLog(meta.log, session.log)
          // What a changed log may lack: own acked records and confirmed history, of every
          // clientId this database used (`planSession` picks).
          const held: StoredEntry[] = []
          const acked = changed ? await tx.objectStore('acked').getAll() : []
          let outboxKeys = new Set<string>()
          if (changed) {
            const own = new Set(meta.clientIds)
            outboxKeys = outboxKeysOf(await tx.objectStore('outbox').getAll())
            let cursor = await tx.objectStore('chunks').openCursor()
            while (cursor !== null) {
              for (const e of cursor.value.entries) if (own.has(e.clientId)) held.push(e)
              cursor = await cursor.continue()
            }
          }
          const plan = planSession(
            meta,
            session,
            [...acked.map((a) => a.entry), ...held],
            outboxKeys,
            bytesOf,
          )
          for (const r of plan.putBack) void track(tx.objectStore('outbox').put(r))
          for (const id of plan.ackedDeletes) void track(tx.objectStore('acked').delete(id))
          const outcomes = tx.objectStore('outcomes')
          for (const o of plan.outcomes) {
            if (followsEntry(await outcomes.get(o.id))) void track(outcomes.put(o))
          }
          if (plan.clearHistory) {
            for (const name of ['chunks', 'staged', 'ledgers', 'snapshots', 'basePages'] as const)
              void track(tx.objectStore(name).clear())
            if (cursors !== undefined) {
              // Invariant 3: cursors start over (a bootstrap may be asked), chunk numbers go on.
              const fresh = {
                ...cursors,
                cursors: {},
                stagedKeys: 0,
                bootstrap: true,
                baseKeys: undefined,
              }
              void track(metaStore.put(fresh, 'cursors'))
            }
            // Guarantee 10: confirmed state went with the history; views keep pending only.
            if (types.size > 0) await rebuildIn(asViewTx(tx), types, KeyRange, track)
          }
          void track(metaStore.put(plan.meta, 'client'))
          return {
            _tag: 'begun',
            recovering: plan.meta.recovering,
            logChanged: plan.clearHistory,
            putBack: plan.putBack.length,
            meta: plan.meta,
          } as const
        },
      )
    },

    async markRecovering() {
      await run(['meta'], 'readwrite', 'strict', async (tx, track) => {
        const metaStore = tx.objectStore('meta')
        const meta = (await metaStore.get('client')) as ClientMeta | undefined
        if (meta === undefined)
          throw new ClientError('closed', 'database was wiped: reopen the client')
        if (!meta.recovering) void track(metaStore.put({ ...meta, recovering: true }, 'client'))
      })
    },

    async reissue(from, newClientId) {
      return run(['meta', 'outbox', 'outcomes'], 'readwrite', 'strict', async (tx, track) => {
        const metaStore = tx.objectStore('meta')
        const outbox = tx.objectStore('outbox')
        const [meta, records] = await Promise.all([
          metaStore.get('client') as Promise<ClientMeta | undefined>,
          outbox.getAll(),
        ])
        if (meta === undefined)
          throw new ClientError('closed', 'database was wiped: reopen the client')
        // Invariant 4: another tab may have moved it already.
        if (meta.clientId !== from) return new Map<string, string>()
        const plan = planReissue(meta, records, newClientId)
        for (const r of records) void track(outbox.delete([r.clientId, r.clientSeq]))
        for (const r of plan.records) void track(outbox.add(r))
        for (const o of plan.outcomes) void track(tx.objectStore('outcomes').put(o))
        void track(metaStore.put(plan.meta, 'client'))
        return plan.renamed
      })
    },
  }
}

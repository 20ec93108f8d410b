/**
 * The corrections feed in IndexedDB: the log's corrections of this database's own entries,
 * added by the pages that bring them (`idb-history.ts`, through `planFeed`; an ack only names
 * them), read back newest first and marked seen here.
 *
 * Terms: a feed record is *unseen* until the app marks the feed seen; the meta record counts
 * the unseen ones (`correctionsUnseen`).
 *
 * Invariants:
 * 1. A correction joins the feed once, however often its page is delivered; at most
 *    CORRECTIONS_FEED_MAX records are kept (the oldest go first).
 * 2. `markCorrectionsSeen` clears every unseen flag and the meta record's count in one
 *    transaction.
 */
import type { FeedPlan } from './client-store-plans.ts'
import { planFeed } from './client-store-plans.ts'
import type { ClientMeta, ClientStore, FeedRecord } from './client-store.ts'
import type { Run, Track } from './idb-database.ts'

export type IdbFeed = Pick<ClientStore, 'corrections' | 'markCorrectionsSeen'>

/**
 * @example
 * const newest = await createIdbFeed(run).corrections(20)
 */
export function createIdbFeed(run: Run): IdbFeed {
  return {
    async corrections(limit) {
      return run(['feed'], 'readonly', 'default', async (tx) => {
        const all = await tx.objectStore('feed').index('n').getAll(undefined, undefined)
        return all.slice(-limit).reverse()
      })
    },

    async markCorrectionsSeen() {
      return run(['meta', 'feed'], 'readwrite', 'relaxed', async (tx, track) => {
        const feed = tx.objectStore('feed')
        const [all, meta] = await Promise.all([feed.getAll(), tx.objectStore('meta').get('client')])
        let marked = 0
        for (const r of all) {
          if (!r.unseen) continue
          marked++
          void track(feed.put({ ...r, unseen: false }))
        }
        void track(
          tx.objectStore('meta').put({ ...(meta as ClientMeta), correctionsUnseen: 0 }, 'client'),
        )
        return marked
      })
    },
  }
}

/**
 * Adds the candidates the feed does not hold yet, inside the caller's transaction (invariant
 * 1); the caller writes the meta record's counters from the plan returned.
 */
export async function addToFeed(
  feed: {
    getKey(key: string): Promise<unknown>
    put(value: FeedRecord): Promise<unknown>
  },
  candidates: readonly FeedRecord[],
  counters: { readonly n: number; readonly correctionsUnseen: number },
  track: Track,
): Promise<FeedPlan> {
  const known = await Promise.all(candidates.map((c) => feed.getKey(c.id)))
  const added = planFeed(
    candidates,
    known.map((key) => key !== undefined),
    counters,
  )
  for (const r of added.records) void track(feed.put(r))
  return added
}

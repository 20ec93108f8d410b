/**
 * The corrections feed, as the app sees it: the log's corrections of this client's entries
 * (the point-of-sale "conflicts inbox"), read from the client store, told to `onCorrection`
 * listeners as they arrive, and marked seen.
 *
 * Terms: a correction is *unseen* until the app calls `markSeen`; *told* means handed to the
 * listeners of this tab.
 *
 * Invariants:
 * 1. Each correction is told at most once per tab, whichever path brought it (this tab's ack
 *    or page, or another tab's message).
 * 2. The feed itself lives in the client store; this module keeps only the ids it told.
 */
import type { Correction } from './client-api.ts'
import type { ClientStore, FeedRecord } from './client-store.ts'
import { CORRECTIONS_FETCHED_MAX } from './limits.ts'

export interface CorrectionsFeed {
  /** The stored feed, newest first. */
  list(limit: number): Promise<readonly Correction[]>
  onCorrection(onChange: (correction: Correction) => void): () => void
  /** Tells the listeners of records this tab has not told yet (invariant 1). */
  tell(records: readonly FeedRecord[]): void
  /** Another tab stored corrections: read the unseen ones and tell them. */
  fetchNew(): Promise<void>
  markSeen(): Promise<number>
}

/**
 * @example
 * const feed = createCorrectionsFeed(clientStorePromise)
 * feed.onCorrection((c) => inbox.add(c))
 */
export function createCorrectionsFeed(
  clientStore: Promise<Pick<ClientStore, 'corrections' | 'markCorrectionsSeen'>>,
): CorrectionsFeed {
  const listeners = new Set<(c: Correction) => void>()
  const told = new Set<string>()

  const tell = (records: readonly FeedRecord[]) => {
    for (const r of records) {
      if (told.has(r.id)) continue
      told.add(r.id)
      const c = toCorrection(r)
      for (const l of listeners) l(c)
    }
  }

  return {
    async list(limit) {
      return (await (await clientStore).corrections(limit)).map(toCorrection)
    },
    onCorrection(onChange) {
      listeners.add(onChange)
      return () => listeners.delete(onChange)
    },
    tell,
    async fetchNew() {
      try {
        const records = await (await clientStore).corrections(CORRECTIONS_FETCHED_MAX)
        tell(records.filter((r) => r.unseen).reverse())
      } catch {
        // The database closed under us; `status().closed` says why.
      }
    },
    async markSeen() {
      return (await clientStore).markCorrectionsSeen()
    },
  }
}

function toCorrection(r: FeedRecord): Correction {
  return { id: r.id, of: r.of, entry: r.entry, unseen: r.unseen }
}

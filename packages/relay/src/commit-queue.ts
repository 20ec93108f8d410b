/**
 * The relay's commit queue: every push of every `/sync` connection waits here before the log
 * takes it, bounded, and leaves in a fair order, so a flood of bulk pushes cannot make a till
 * that sells one item at a time wait behind all of it.
 *
 *   push ─► admit (bound) ─► per-connection FIFO ─► fair pick (smallest start tag) ─► store.append
 *              │ full                                   at most `COMMIT_IN_STORE_ENTRIES_MAX`
 *              ▼                                        entries handed to the store at once
 *         undefined: the session answers `overloaded`
 *
 * Terms: a *flow* is one connection's pushes; *queued* entries are admitted and not yet answered
 * (waiting here or in the store). Fairness is start-time fair queuing over entries: a push of n
 * entries gets the start tag `max(virtual time, its flow's last finish tag)` and the finish tag
 * `start + n`; the waiting push with the smallest start tag goes next and sets the virtual time to
 * its start tag. A flow that was idle therefore goes next, whatever the others have waiting.
 *
 * Invariants:
 * 1. At most `commitQueueEntriesMax` entries are queued, plus a tenth of it kept for small pushes
 *    (at most a hundredth of that reserve) of idle flows; a push that would pass its bound is
 *    refused before anything reaches the log. A push bigger than the bound is admitted when
 *    nothing else is queued, so no push is refused forever.
 * 2. Each flow's pushes reach the store in the order they were admitted (the store keeps one
 *    client's calls in order), so clientSeqs are decided in order.
 * 3. At most `COMMIT_IN_STORE_ENTRIES_MAX` entries are in the store's hands at once (unless one
 *    push alone is bigger): what waits, waits here, where the fair order applies. That is two
 *    of the log's group transactions, so the store always has the next group ready.
 * 4. Every admitted push is answered: with the store's results or its error.
 */
import { GROUP_COMMIT_ENTRIES_MAX } from '@ledgerline/log'
import type { AppendItem, AppendResult, LogStore, Pusher } from './log-store.ts'

/** Entries the relay hands to its log at once: two group transactions (invariant 3). */
export const COMMIT_IN_STORE_ENTRIES_MAX = 2 * GROUP_COMMIT_ENTRIES_MAX

export interface CommitQueue {
  /**
   * Admits a push of `flow` (any object, one per connection; `idle`: the flow has nothing
   * queued) and resolves with the store's results; undefined when the queue is full.
   */
  submit(
    flow: object,
    tenant: string,
    items: readonly AppendItem[],
    idle: boolean,
    pusher?: Pusher | undefined,
  ): Promise<AppendResult[]> | undefined
  /** Whether `submit` would admit a push of `entries` now (no side effect). */
  wouldAdmit(entries: number, idle: boolean): boolean
  /** Entries queued now (waiting or in the store). */
  queuedEntries(): number
}

/**
 * @example
 * const commits = createCommitQueue(store, { commitQueueEntriesMax: 45_000 })
 * const answer = commits.submit(session, 'acme', items, true) // undefined: overloaded
 */
export function createCommitQueue(
  store: Pick<LogStore, 'append'>,
  limits: { readonly commitQueueEntriesMax: number },
): CommitQueue {
  let queued = 0
  let inStore = 0
  let virtual = 0
  let arrivals = 0
  const flows = new Map<object, Flow>()

  function pump(): void {
    for (;;) {
      let next: Flow | undefined
      for (const f of flows.values()) {
        const head = f.waiting[0]
        if (head === undefined) continue
        const best = next?.waiting[0]
        if (
          best === undefined ||
          head.start < best.start ||
          (head.start === best.start && head.arrival < best.arrival)
        ) {
          next = f
        }
      }
      const job = next?.waiting[0]
      if (next === undefined || job === undefined) return
      if (inStore > 0 && inStore + job.items.length > COMMIT_IN_STORE_ENTRIES_MAX) return
      next.waiting.shift()
      virtual = job.start
      inStore += job.items.length
      const flow = next
      // A store that throws instead of rejecting still answers the push (invariant 4).
      Promise.resolve()
        .then(() => store.append(job.tenant, job.items, job.pusher))
        .then(
          (results) => settle(flow, job, () => job.resolve(results)),
          (error: unknown) => settle(flow, job, () => job.reject(error)),
        )
    }
  }

  function settle(flow: Flow, job: Job, answer: () => void): void {
    inStore -= job.items.length
    queued -= job.items.length
    flow.queued -= job.items.length
    if (flow.queued === 0 && flow.waiting.length === 0) flows.delete(flow.key)
    answer()
    pump()
  }

  // Invariant 1.
  function admits(n: number, idle: boolean): boolean {
    const max = limits.commitQueueEntriesMax
    const reserve = Math.floor(max / 10)
    const small = idle && n <= Math.max(1, Math.floor(reserve / 100))
    return queued === 0 || queued + n <= (small ? max + reserve : max)
  }

  return {
    submit(key, tenant, items, idle, pusher) {
      const n = items.length
      if (!admits(n, idle)) return undefined
      let flow = flows.get(key)
      if (flow === undefined) {
        flow = { key, finish: 0, queued: 0, waiting: [] }
        flows.set(key, flow)
      }
      queued += n
      flow.queued += n
      const start = Math.max(virtual, flow.finish)
      flow.finish = start + n
      const f = flow
      const answer = new Promise<AppendResult[]>((resolve, reject) => {
        f.waiting.push({ tenant, items, pusher, start, arrival: arrivals++, resolve, reject })
      })
      pump()
      return answer
    },
    wouldAdmit: admits,
    queuedEntries: () => queued,
  }
}

interface Flow {
  readonly key: object
  /** Finish tag of the flow's last admitted push. */
  finish: number
  /** Entries of the flow admitted and not yet answered. */
  queued: number
  readonly waiting: Job[]
}

interface Job {
  readonly tenant: string
  readonly items: readonly AppendItem[]
  readonly pusher: Pusher | undefined
  readonly start: number
  readonly arrival: number
  readonly resolve: (results: AppendResult[]) => void
  readonly reject: (error: unknown) => void
}

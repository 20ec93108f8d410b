/**
 * The write queue: every client store write the sync loop makes (acks, pages, held pages
 * again, the ledger index) goes through ONE queue, worked by one loop, in arrival order.
 *
 *   ack ─┐                                   ┌► applyAck (acks of one socket back to back: one write)
 *   page ┼► queue ─► one write at a time ─────┼► applyPages (pages of one subscription back to
 *   retry┤   (arrival order)                  │   back, up to PAGES_PER_WRITE_MAX: one write)
 *   index┘                                   └► indexPending
 *
 * Terms: a *run* is the pages one write stores; a *held* page waits in memory for storage
 * space; a *broken* socket lost a page and gets no more pages stored.
 *
 * Invariants:
 * 1. No write overtakes an earlier one: the loop takes the queue in order, one write at a time.
 *    (Acks and pages commute in the client store, so their order is for the cursor only.)
 * 2. Pages are never stored past a page that was not: when a page write fails, the socket is
 *    marked broken and abandoned, and every later page of it is dropped, so the relay resends
 *    from the stored cursors and the cursor never runs ahead of a page lost in between (a
 *    crash there would lose it for good).
 * 3. A page that fails for lack of space is held with every page after it and retried after a
 *    backoff (RECONNECT_MS_MIN doubling, at most RECONNECT_MS_MAX); acks go on meanwhile, so
 *    the outbox still drains. Held pages are at most the credit window: no credit is given
 *    back for them.
 * 4. An ack that fails for lack of space is applied again lean (deletes only), so a full disk
 *    never stops the outbox from draining.
 * 5. The ledger index is brought up to date at once when INDEX_STAGED_KEYS_MAX keys are
 *    staged, else INDEX_DELAY_MS after the last live page; its failure costs nothing but time.
 */
import { unreachable } from '@ledgerline/core'
import type { AckApplied, AckItem, ClientStore, PageApplied, PageIn } from './client-store.ts'
import { isStorageFull } from './errors.ts'
import {
  INDEX_DELAY_MS,
  INDEX_STAGED_KEYS_MAX,
  PAGES_PER_WRITE_MAX,
  RECONNECT_MS_MAX,
  RECONNECT_MS_MIN,
} from './limits.ts'
import type { Scheduler, TimerHandle } from './scheduler.ts'
import type { WebSocketLike } from './transport.ts'

export interface AckWork {
  readonly _tag: 'ack'
  readonly ws: WebSocketLike
  readonly items: readonly AckItem[]
}
export interface PageWork {
  readonly _tag: 'page'
  readonly ws: WebSocketLike
  readonly sub: number
  readonly scopeKey: string
  readonly page: PageIn
  readonly live: boolean
}
/** A write of the sync loop: an ack, a page, held pages again, or the ledger index. */
export type Work = AckWork | PageWork | { readonly _tag: 'retry' } | { readonly _tag: 'index' }

export interface WriteQueueOptions {
  readonly clientStore: Pick<ClientStore, 'applyAck' | 'applyPages' | 'indexPending'>
  readonly scheduler: Scheduler
  /** The current socket, if any. */
  readonly current: () => WebSocketLike | undefined
  /** Entities whose acked entries stay pending until received back (the subscription's scope). */
  readonly inScope: (entity: string) => boolean
  readonly live: () => boolean
  readonly stopped: () => boolean
  /** An ack write committed (`items`: what it applied). */
  readonly acked: (ws: WebSocketLike, applied: AckApplied, items: readonly AckItem[]) => void
  /** A run of pages committed (the last page of the run is `last`). */
  readonly paged: (ws: WebSocketLike, run: readonly PageWork[], applied: PageApplied) => void
  readonly failed: (message: string) => void
  /** Closes `ws` and ends its connection now (invariant 2). */
  readonly abandon: (ws: WebSocketLike) => void
}

export interface WriteQueue {
  enqueue(work: Work): void
  /** The socket is gone: held pages go with it (the next subscription fetches them again). */
  dropHeld(): void
  stop(): void
  /** Resolves when the writes queued so far are done (or dropped). */
  idle(): Promise<void>
}

/**
 * @example
 * const writes = createWriteQueue({ clientStore, scheduler, current, inScope, live, stopped,
 *   acked, paged, failed, abandon })
 * writes.enqueue({ _tag: 'ack', ws, items })
 */
export function createWriteQueue(options: WriteQueueOptions): WriteQueue {
  const { clientStore, scheduler } = options
  const queue: Work[] = []
  const held: PageWork[] = []
  let working: Promise<void> | undefined
  let running = false
  let heldTimer: TimerHandle | undefined
  let heldRetries = 0
  let indexTimer: TimerHandle | undefined
  let brokenSocket: WebSocketLike | undefined

  function enqueue(work: Work): void {
    queue.push(work)
    if (running) return
    // `running` is cleared by the loop itself, synchronously as it ends: a write enqueued in
    // the same tick as a loop that ended without awaiting (a page held behind another) starts
    // a new loop instead of waiting in the queue for the next message.
    running = true
    const loop: Promise<void> = workQueue().finally(() => {
      if (working === loop) working = undefined
    })
    working = loop
  }

  /** Invariant 1: takes the queue in order; consecutive pages of one socket go in one write. */
  async function workQueue(): Promise<void> {
    for (let work = queue.shift(); work !== undefined; work = queue.shift()) {
      try {
        switch (work._tag) {
          case 'ack': {
            // Acks of one socket that arrived back to back are applied in one transaction.
            let items = work.items
            for (
              let next = queue[0];
              next?._tag === 'ack' && next.ws === work.ws;
              next = queue[0]
            ) {
              items = [...items, ...next.items]
              queue.shift()
            }
            await applyAck(items === work.items ? work : { ...work, items })
            break
          }
          case 'page': {
            if (held.length > 0) {
              held.push(work) // behind a page waiting for space: keep the order
              break
            }
            const run = [work]
            for (let next = queue[0]; run.length < PAGES_PER_WRITE_MAX; next = queue[0]) {
              if (next?._tag !== 'page' || next.ws !== work.ws || next.sub !== work.sub) break
              run.push(next)
              queue.shift()
            }
            await applyPages(run)
            break
          }
          case 'retry': {
            heldTimer = undefined
            const run = held.splice(0, held.length)
            if (run.length > 0) await applyPages(run)
            break
          }
          case 'index':
            await clientStore.indexPending()
            break
          default:
            unreachable(work)
        }
      } catch (error) {
        options.failed(error instanceof Error ? error.message : String(error))
        // The index only saves work later; the next run picks up what this one left staged.
        if (work._tag === 'index') continue
        const ws = work._tag === 'retry' ? options.current() : work.ws
        if (work._tag === 'page' || work._tag === 'retry') brokenSocket = ws
        if (ws !== undefined && options.current() === ws) options.abandon(ws)
      }
    }
    // In the same tick as the last look at the queue (every item's failure is caught above).
    running = false
  }

  async function applyAck(work: AckWork): Promise<void> {
    let applied: AckApplied
    try {
      applied = await clientStore.applyAck(work.items, options.inScope)
    } catch (error) {
      if (!isStorageFull(error)) throw error
      // Invariant 4: still let the outbox drain (deleting frees space).
      applied = await clientStore.applyAck(work.items, options.inScope, true)
      options.failed('storage full: acks applied without keeping outcomes')
    }
    options.acked(work.ws, applied, work.items)
  }

  /**
   * Stores pages of one socket in one transaction. Pages of a socket that is gone, or that
   * already lost a page, are dropped: the next subscription starts from the stored cursors.
   */
  async function applyPages(run: readonly PageWork[]): Promise<void> {
    const first = run[0] as PageWork
    const ws = first.ws
    if (options.current() !== ws || brokenSocket === ws) return
    let applied: PageApplied
    try {
      applied = await clientStore.applyPages(
        run.map((w) => w.page),
        first.scopeKey,
      )
    } catch (error) {
      if (!isStorageFull(error) || options.current() !== ws) throw error
      // Invariant 3: held in memory and retried; the socket stays up so the outbox drains.
      options.failed('storage full: received entries wait in memory until space is freed')
      held.unshift(...run)
      const delay = Math.min(RECONNECT_MS_MAX, RECONNECT_MS_MIN * 2 ** Math.min(heldRetries++, 8))
      heldTimer ??= scheduler.setTimeout(() => enqueue({ _tag: 'retry' }), delay)
      return
    }
    heldRetries = 0
    options.paged(ws, run, applied)
    // Invariant 5: at once when enough is staged, else shortly after the last live page.
    scheduler.clearTimeout(indexTimer)
    indexTimer = undefined
    if (applied.stagedKeys >= INDEX_STAGED_KEYS_MAX) queue.push({ _tag: 'index' })
    else if (applied.stagedKeys > 0 && options.live()) {
      indexTimer = scheduler.setTimeout(() => {
        indexTimer = undefined
        if (!options.stopped()) enqueue({ _tag: 'index' })
      }, INDEX_DELAY_MS)
    }
  }

  return {
    enqueue,
    dropHeld() {
      held.length = 0
      scheduler.clearTimeout(heldTimer)
      heldTimer = undefined
    },
    stop() {
      scheduler.clearTimeout(heldTimer)
      heldTimer = undefined
      scheduler.clearTimeout(indexTimer)
      indexTimer = undefined
    },
    idle: async () => {
      while (working !== undefined) await working.catch(noop)
    },
  }
}

function noop(): void {}

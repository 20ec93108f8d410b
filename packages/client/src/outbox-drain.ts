/**
 * The outbox drain: reads the outbox in clientSeq order and pushes it over the welcomed socket
 * in bounded batches, keeping what is in flight until its ack comes back.
 *
 *   kick (append) ─DRAIN_DELAY_MS─► drain ─► readOutbox(after lastSent) ─► push batch ─► …
 *   ack ─► take(batch) ─► (write queue applies it) ─► drain again
 *
 * Terms: a *batch* is one `push`; *in flight* means sent and not yet acked; *lastSent* is the
 * key of the last outbox record pushed on this socket; the outbox is *unread* when it may hold
 * records after lastSent that no read has seen.
 *
 * Invariants:
 * 1. Batches are sent in clientSeq order, each ≤ PUSH_BATCH_ENTRIES_MAX entries and
 *    ≤ PUSH_BATCH_BYTES_MAX bytes, and at most PUSH_BATCHES_IN_FLIGHT_MAX are in flight.
 * 2. One drain runs at a time; a drain asked for while one runs makes it go round again.
 * 3. A drain reads the outbox only while it is unread: a kick, a new socket, a resend and a
 *    full batch mark it so; a drain after an ack of a short batch reads nothing.
 * 4. After a reset (a new socket) or a resend (a `seq_gap`), the outbox is sent again from its
 *    start: the relay answers what it already has as `duplicate` (exactly once, guarantee 2).
 * 5. Kicks within DRAIN_DELAY_MS of the first share one read, so appends made back to back are
 *    pushed and acked as one batch.
 */
import { ENTRY_DATA_BYTES_MAX } from '@ledgerline/protocol'
import type { Message } from '@ledgerline/protocol'
import type { ClientStore, OutboxRecord } from './client-store.ts'
import {
  DRAIN_DELAY_MS,
  PUSH_BATCH_BYTES_MAX,
  PUSH_BATCH_ENTRIES_MAX,
  PUSH_BATCHES_IN_FLIGHT_MAX,
} from './limits.ts'
import type { Scheduler, TimerHandle } from './scheduler.ts'
import type { WebSocketLike } from './transport.ts'

/** Ways to break the client on purpose (`ClientOptions.bugs`); production never sets them. */
export interface ClientBugs {
  /** Delete outbox records as soon as their push is sent, not when their ack says so. */
  readonly deleteOnSend?: boolean | undefined
}

export interface OutboxDrainOptions {
  readonly clientStore: Pick<ClientStore, 'readOutbox' | 'applyAck'>
  readonly scheduler: Scheduler
  /** `ws` is still the current socket. */
  readonly isCurrent: (ws: WebSocketLike) => boolean
  /** The current socket, when it is welcomed and subscribed (ready to push on). */
  readonly ready: () => WebSocketLike | undefined
  readonly send: (ws: WebSocketLike, message: Message) => boolean
  /** A batch went out (the in-flight count changed). */
  readonly sent: () => void
  readonly failed: (message: string) => void
  /** Test-only: a planted bug, so the simulation proves its checkers see it. */
  readonly bugs?: ClientBugs | undefined
}

export interface OutboxDrain {
  /** Pushes what the outbox holds past lastSent on `ws` (default: the ready socket). */
  drain(ws?: WebSocketLike | undefined): void
  /** The outbox changed: drain within DRAIN_DELAY_MS (invariant 5). */
  kick(): void
  /** The records of batch `batch`, now acked, or undefined when it is not in flight. */
  take(batch: number): readonly OutboxRecord[] | undefined
  /** Send the outbox again from its start on this socket (invariant 4). */
  resend(): void
  /** A new socket will come: nothing is in flight, the outbox is sent from its start. */
  reset(): void
  stop(): void
  inFlight(): number
  /** Batches in flight, a read running, or a kick waiting. */
  busy(): boolean
}

/**
 * @example
 * const drain = createOutboxDrain({ clientStore, scheduler, isCurrent, ready, send, sent, failed })
 * drain.kick()
 */
export function createOutboxDrain(options: OutboxDrainOptions): OutboxDrain {
  const { clientStore, scheduler } = options
  const inFlight = new Map<number, readonly OutboxRecord[]>()
  let batchNo = 0
  let lastSent: readonly [string, number] | undefined
  let draining = false
  let drainAgain = false
  let kickTimer: TimerHandle | undefined
  let stopped = false
  let unread = true

  function drain(ws: WebSocketLike | undefined = options.ready()): void {
    if (ws === undefined || ws !== options.ready()) return
    if (draining) {
      drainAgain = true
      return
    }
    draining = true
    void (async () => {
      try {
        do {
          drainAgain = false
          while (options.isCurrent(ws) && inFlight.size < PUSH_BATCHES_IN_FLIGHT_MAX && unread) {
            // Cleared before the read: an append committed after the read began kicks again.
            unread = false
            const records = await clientStore.readOutbox(
              lastSent,
              PUSH_BATCH_ENTRIES_MAX,
              PUSH_BATCH_BYTES_MAX,
            )
            if (records.length === 0 || !options.isCurrent(ws)) break
            // A short batch read everything committed (a batch is cut by bytes only when the
            // next entry, at most a few ENTRY_DATA_BYTES_MAX, would not fit).
            const bytes = records.reduce((n, r) => n + r.bytes, 0)
            if (
              records.length >= PUSH_BATCH_ENTRIES_MAX ||
              bytes + 2 * ENTRY_DATA_BYTES_MAX > PUSH_BATCH_BYTES_MAX
            )
              unread = true
            const batch = ++batchNo
            inFlight.set(batch, records)
            const last = records.at(-1) as OutboxRecord
            lastSent = [last.clientId, last.clientSeq]
            options.send(ws, { type: 'push', batch, entries: records.map((r) => r.entry) })
            options.sent()
            if (options.bugs?.deleteOnSend === true) await deleteOnSend(records)
          }
        } while (drainAgain && options.isCurrent(ws))
      } catch (error) {
        unread = true
        options.failed(error instanceof Error ? error.message : String(error))
      } finally {
        draining = false
      }
    })()
  }

  /** The `deleteOnSend` bug: the records go as if acked (a lean ack deletes only them). */
  async function deleteOnSend(records: readonly OutboxRecord[]): Promise<void> {
    const items = records.map((record) => ({
      record,
      result: {
        id: record.id,
        status: 'appended' as const,
        version: 0,
        partition: 0,
        offset: 0,
        committedAt: 0,
        corrections: [],
      },
    }))
    await clientStore.applyAck(items, () => false, true)
  }

  return {
    drain,
    kick() {
      // Coalesced: appends made within DRAIN_DELAY_MS of the first are read as one batch, and
      // the drain's reads do not queue between appends on the outbox.
      if (stopped || kickTimer !== undefined) return
      kickTimer = scheduler.setTimeout(() => {
        kickTimer = undefined
        unread = true
        drain()
      }, DRAIN_DELAY_MS)
    },
    take(batch) {
      const records = inFlight.get(batch)
      if (records !== undefined) inFlight.delete(batch)
      return records
    },
    resend() {
      lastSent = undefined
      unread = true
    },
    reset() {
      inFlight.clear()
      lastSent = undefined
      unread = true
    },
    stop() {
      stopped = true
      scheduler.clearTimeout(kickTimer)
      kickTimer = undefined
      inFlight.clear()
    },
    inFlight: () => inFlight.size,
    busy: () => inFlight.size > 0 || draining || kickTimer !== undefined,
  }
}

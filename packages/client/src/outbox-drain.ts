/**
 * The outbox drain: reads the outbox in clientSeq order and pushes it over the welcomed socket
 * in bounded batches, keeping what is in flight until every part of its ack came back.
 *
 *   welcome ─► begin(limits, ceiling = clientSeqHigh) ─► confirm: push records ≤ ceiling only
 *      └─ all answered ─► confirmed() ─► (sync: reissue, or) lift() ─► push everything
 *   kick (append) ─DRAIN_DELAY_MS─► drain ─► readOutbox(after lastSent) ─► push batch ─► …
 *   ack part ─► take(batch, first, count) ─► (write queue applies it) ─► applied ─► drain again
 *
 * Terms: a *batch* is one `push`; *in flight* means sent and not yet answered in full;
 * *lastSent* is the key of the last outbox record read on this socket; the outbox is *unread*
 * when it may hold records after lastSent that no read has seen. The *ceiling* is the relay's
 * high-water mark for this clientId at welcome: records at or below it were pushed before (their
 * acks were lost, or the database was restored), so they are *confirmed* first, alone. A *held*
 * record is kept back: the relay deferred it (`retryAfterMs`), or it failed alone in a batch of
 * one, or it is larger than the relay takes; held records are never deleted, and the records
 * after them go on (`outbox-held.ts` keeps them). The *cap* is the most entries a batch may have
 * now.
 *
 * Invariants:
 * 1. Batches are sent in clientSeq order, each ≤ the cap (≤ PUSH_BATCH_ENTRIES_MAX and the
 *    relay's `pushEntriesMax`) and ≤ the bytes both sides allow, at most the relay's
 *    `pushInFlightMax` (and PUSH_BATCHES_IN_FLIGHT_MAX) in flight.
 * 2. One drain runs at a time; a drain asked for while one runs makes it go round again.
 * 3. A drain reads the outbox only while it is unread: a kick, a new socket, a resend, a lifted
 *    ceiling and a full batch mark it so; a drain after an ack of a short batch reads nothing.
 * 4. Nothing above the ceiling is sent until `lift()`: when the log already holds some of this
 *    clientId's clientSeqs, those are answered (duplicate, id_conflict, …) before any later one
 *    could land after a conflict (issue 12 case 2). `confirmed()` is called once per `begin`,
 *    when every record at or below the ceiling was read, answered and applied; from then on
 *    nothing is sent (not even a held record falling due) until `lift()` or `reset()`, so a
 *    move of the outbox to another clientId never races a push under the old one.
 * 5. After a reset (a new socket) the outbox is sent again from its start, held records
 *    included unless they failed alone (those wait FAILED_ENTRY_RETRY_MS). After a `seq_gap`
 *    it is sent again from its start too, at once the first time and then after a backoff that
 *    doubles from RECONNECT_MS_MIN to RECONNECT_MS_MAX while the gap is at the same entry (no
 *    hot loop against a log that lost entries).
 * 6. A repeated `too_large` or `internal` failure of a push whose first entry is the same halves
 *    the cap (down to 1); an entry that still fails alone is held with that reason. Every batch
 *    answered in full doubles the cap back, up to the limits.
 * 7. Kicks within DRAIN_DELAY_MS of the first share one read, so appends made back to back are
 *    pushed and acked as one batch.
 * 8. A record a store hub answered `stored` is kept (never deleted: client store guarantee 4)
 *    and sent again every STORED_RESEND_MS, and with the whole outbox on every new socket,
 *    until head office's result comes (in an ack, or by its entry in a page: `settled`); the
 *    records after it go on meanwhile.
 */
import type { AckResult, Message, RelayLimitsAdvertised } from '@ledgerline/protocol'
import { ENTRY_DATA_BYTES_MAX, entryDataBytes } from '@ledgerline/protocol'
import type { ClientStore, OutboxRecord } from './client-store.ts'
import {
  DRAIN_DELAY_MS,
  FAILED_ENTRY_RETRY_MS,
  PUSH_BATCH_BYTES_MAX,
  PUSH_BATCH_ENTRIES_MAX,
  PUSH_BATCHES_IN_FLIGHT_MAX,
  RECONNECT_MS_MAX,
  RECONNECT_MS_MIN,
  STORED_RESEND_MS,
} from './limits.ts'
import type { HeldReason } from './outbox-held.ts'
import { createHeldRecords, STORED } from './outbox-held.ts'
import type { Scheduler, TimerHandle } from './scheduler.ts'
import type { WebSocketLike } from './transport.ts'

/** Ways to break the client on purpose (`ClientOptions.bugs`); production never sets them. */
export interface ClientBugs {
  /** Delete outbox records as soon as their push is sent, not when their ack says so. */
  readonly deleteOnSend?: boolean | undefined
  /** Delete outbox records a store hub answered `stored`, as if head office had appended them. */
  readonly deleteOnStored?: boolean | undefined
}

export interface OutboxDrainOptions {
  readonly clientStore: Pick<ClientStore, 'readOutbox' | 'applyAck'>
  readonly scheduler: Scheduler
  readonly now: () => number
  /** `ws` is still the current socket. */
  readonly isCurrent: (ws: WebSocketLike) => boolean
  /** The current socket, when it is welcomed and subscribed (ready to push on). */
  readonly ready: () => WebSocketLike | undefined
  readonly send: (ws: WebSocketLike, message: Message) => boolean
  /** A batch went out or was answered, or what is held changed. */
  readonly changed: () => void
  /** Every record at or below the ceiling of `begin` was read and answered (invariant 4). */
  readonly confirmed: (ws: WebSocketLike) => void
  readonly failed: (message: string) => void
  /** Test-only: a planted bug, so the simulation proves its checkers see it. */
  readonly bugs?: ClientBugs | undefined
}

export interface OutboxDrain {
  /** A welcomed socket: the relay's limits, and the high-water mark to confirm up to first. */
  begin(ws: WebSocketLike, limits: RelayLimitsAdvertised, ceiling: number): void
  /** The records at or below the ceiling are settled: send everything now (invariant 4). */
  lift(): void
  /** In the confirm phase of `begin` (not lifted yet, not settled). */
  confirming(): boolean
  /** Send nothing more on this socket (the outbox is about to move): until `reset` or `lift`. */
  freeze(): void
  /** Pushes what the outbox holds past lastSent on `ws` (default: the ready socket). */
  drain(ws?: WebSocketLike | undefined): void
  /** The outbox changed: drain within DRAIN_DELAY_MS (invariant 7). */
  kick(): void
  /**
   * The records an ack part answers (`count` of them from index `first` of batch `batch`), or
   * undefined when the batch is not in flight; `done` (or the last record answered) ends it.
   */
  take(
    batch: number,
    first: number,
    count: number,
    done: boolean,
  ): readonly OutboxRecord[] | undefined
  /**
   * The write queue stored these answers: deferred records are held, the others leave the
   * drain's care; a `seq_gap` sends the outbox again from its start (invariant 5).
   * `gapRepeated` is true when the gap repeats at the same entry (the log may have lost
   * entries: a stuck reason), false for a first gap, undefined without one.
   */
  applied(items: readonly { record: OutboxRecord; result: AckResult }[]): {
    readonly gapRepeated: boolean | undefined
  }
  /** The relay failed a push with `kind` while batches were in flight (invariant 6). */
  pushFailed(kind: string): void
  /** A new socket will come: nothing is in flight, the outbox is sent from its start. */
  reset(): void
  /** The outbox was moved to another clientId: forget every record kept by id. */
  forget(): void
  stop(): void
  inFlight(): number
  /** Batches in flight, a read running, a kick waiting, or a confirm phase not lifted yet. */
  busy(): boolean
  /** Records left the outbox outside an ack (settled by a page): stop resending them. */
  settled(ids: Iterable<string>): void
  /** Records held back, by reason (for `status().held`; `stored` ones are not). */
  held(): readonly HeldReason[]
  /** The cap on entries per batch now (invariant 6). */
  cap(): number
}

interface Flight {
  readonly records: readonly OutboxRecord[]
  answered: number
  /** The resend epoch it was sent in. */
  readonly epoch: number
}

/**
 * @example
 * const drain = createOutboxDrain({ clientStore, scheduler, now, isCurrent, ready, send,
 *   changed, confirmed, failed })
 * drain.begin(ws, welcome.limits, welcome.clientSeqHigh)
 */
export function createOutboxDrain(options: OutboxDrainOptions): OutboxDrain {
  const { clientStore, scheduler } = options
  const inFlight = new Map<number, Flight>()
  /** Records sent and not yet applied by the write queue, so a read from the start skips them. */
  const flying = new Set<string>()
  /** The resend epoch each answered, not yet applied record was sent in. */
  const answeredIn = new Map<string, number>()
  /** Raised by every resend after a gap (invariant 5). */
  let epoch = 0
  let batchNo = 0
  let lastSent: readonly [string, number] | undefined
  let draining = false
  let drainAgain = false
  let kickTimer: TimerHandle | undefined
  let gapTimer: TimerHandle | undefined
  let stopped = false
  let unread = true
  let limits = {
    entriesMax: PUSH_BATCH_ENTRIES_MAX,
    bytesMax: PUSH_BATCH_BYTES_MAX,
    inFlightMax: PUSH_BATCHES_IN_FLIGHT_MAX,
    entryDataBytesMax: Number.POSITIVE_INFINITY,
  }
  let cap = limits.entriesMax
  let ceiling = Number.POSITIVE_INFINITY
  let confirming: WebSocketLike | undefined
  let frozen = false
  let readPastCeiling = false
  let trouble: { id: string; failures: number } | undefined
  let gap: { id: string; streak: number } | undefined
  const holds = createHeldRecords({
    scheduler,
    now: options.now,
    paused: () => confirming !== undefined || frozen,
    stopped: () => stopped,
    readsFromStart: () => lastSent === undefined && unread,
    due() {
      // Held records sit before lastSent: read the outbox again from its start.
      lastSent = undefined
      unread = true
      drain()
    },
    changed: options.changed,
  })

  function drain(ws: WebSocketLike | undefined = options.ready()): void {
    if (ws === undefined || ws !== options.ready() || frozen) return
    if (draining) {
      drainAgain = true
      return
    }
    draining = true
    void (async () => {
      try {
        do {
          drainAgain = false
          // The socket may have changed while a read of the last one ran: drain the ready one.
          const current = options.ready()
          if (current === undefined) break
          while (
            !frozen &&
            options.isCurrent(current) &&
            inFlight.size < limits.inFlightMax &&
            unread &&
            gapTimer === undefined
          ) {
            // Cleared before the read: an append committed after the read began kicks again.
            unread = false
            const records = await clientStore.readOutbox(lastSent, cap, limits.bytesMax)
            if (!options.isCurrent(current)) break
            const sent = sendRead(current, records)
            if (options.bugs?.deleteOnSend === true && sent.length > 0) await deleteAsAcked(sent)
          }
          if (options.isCurrent(current)) settleConfirm(current)
        } while (drainAgain)
      } catch (error) {
        unread = true
        options.failed(error instanceof Error ? error.message : String(error))
      } finally {
        draining = false
        holds.arm()
      }
    })()
  }

  /** The `deleteOnSend` and `deleteOnStored` bugs: the records go as if acked (a lean ack). */
  async function deleteAsAcked(records: readonly OutboxRecord[]): Promise<void> {
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

  /** Pushes what one read gave, up to the ceiling, skipping held records (invariants 1, 4). */
  function sendRead(ws: WebSocketLike, records: readonly OutboxRecord[]): OutboxRecord[] {
    const now = options.now()
    const batch: OutboxRecord[] = []
    let cut = false
    for (const r of records) {
      if (r.clientSeq > ceiling) {
        cut = true
        break
      }
      lastSent = [r.clientId, r.clientSeq]
      // In flight already (a resend from the start): its own ack will answer it.
      if (flying.has(r.id)) continue
      const held = holds.get(r.id)
      if (held !== undefined && held.dueAt > now) continue
      if (
        r.bytes > limits.entryDataBytesMax &&
        entryDataBytes(r.entry.data) > limits.entryDataBytesMax
      ) {
        // The relay would refuse the frame (and close the socket): keep it until one takes it.
        holds.hold(r.id, 'too_large', Number.POSITIVE_INFINITY, true)
        continue
      }
      batch.push(r)
    }
    // A short read saw everything committed (a read is cut by bytes only when the next entry,
    // at most a few ENTRY_DATA_BYTES_MAX, would not fit).
    const readBytes = records.reduce((n, r) => n + r.bytes, 0)
    const full =
      records.length > 0 &&
      (records.length >= cap ||
        readBytes + Math.min(2 * ENTRY_DATA_BYTES_MAX, limits.bytesMax / 2) > limits.bytesMax)
    if (full && !cut) unread = true
    else readPastCeiling = true
    if (batch.length === 0) return batch
    for (const r of batch) {
      flying.add(r.id)
      const held = holds.get(r.id)
      if (held !== undefined) held.dueAt = Number.POSITIVE_INFINITY // in flight: not due again
    }
    const no = ++batchNo
    inFlight.set(no, { records: batch, answered: 0, epoch })
    options.send(ws, { type: 'push', batch: no, entries: batch.map((r) => r.entry) })
    options.changed()
    return batch
  }

  /** Invariant 4: the confirm phase ends when everything up to the ceiling was answered. */
  function settleConfirm(ws: WebSocketLike): void {
    if (confirming !== ws || !readPastCeiling || inFlight.size > 0 || flying.size > 0) return
    confirming = undefined
    frozen = true
    options.confirmed(ws)
  }

  return {
    begin(ws, relay, high) {
      limits = {
        entriesMax: Math.max(1, Math.min(PUSH_BATCH_ENTRIES_MAX, relay.pushEntriesMax)),
        bytesMax: Math.max(1, Math.min(PUSH_BATCH_BYTES_MAX, relay.pushBytesMax)),
        inFlightMax: Math.max(1, Math.min(PUSH_BATCHES_IN_FLIGHT_MAX, relay.pushInFlightMax)),
        entryDataBytesMax: relay.entryDataBytesMax,
      }
      cap = Math.min(cap, limits.entriesMax)
      ceiling = high
      confirming = ws
      frozen = false
      readPastCeiling = false
      lastSent = undefined
      unread = true
    },
    lift() {
      ceiling = Number.POSITIVE_INFINITY
      confirming = undefined
      frozen = false
      unread = true
      holds.arm()
    },
    confirming: () => confirming !== undefined,
    freeze() {
      frozen = true
    },
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
    take(batch, first, count, done) {
      const flight = inFlight.get(batch)
      if (flight === undefined) return undefined
      const records = flight.records.slice(first, first + count)
      flight.answered += records.length
      if (done || flight.answered >= flight.records.length) {
        inFlight.delete(batch)
        if (flight.answered >= flight.records.length) {
          // Invariant 6: a batch answered in full grows the cap back.
          cap = Math.min(limits.entriesMax, cap * 2)
          if (flight.records.some((r) => r.id === trouble?.id)) trouble = undefined
        }
        // Records a part never answered are no longer in flight: the next read sends them.
        for (const r of flight.records.slice(flight.answered)) flying.delete(r.id)
      }
      for (const r of records) answeredIn.set(r.id, flight.epoch)
      return records
    },
    applied(items) {
      let heldChanged = false
      let firstGap: OutboxRecord | undefined
      for (const { record, result } of items) {
        flying.delete(record.id)
        const sentIn = answeredIn.get(record.id)
        answeredIn.delete(record.id)
        if (result.status === 'deferred') {
          holds.set(record.id, {
            code: result.code,
            dueAt: options.now() + Math.max(0, result.retryAfterMs),
            onReconnect: true,
          })
          heldChanged = true
        } else if (result.status === 'stored') {
          // Invariant 8: in the store, not at head office: asked again until head office's
          // result comes back (not counted as held: nothing is wrong with it).
          if (options.bugs?.deleteOnStored === true) {
            void deleteAsAcked([record]).catch(() => {})
          } else {
            holds.set(record.id, {
              code: STORED,
              dueAt: options.now() + STORED_RESEND_MS,
              onReconnect: true,
            })
            holds.arm()
          }
        } else if (holds.delete(record.id)) {
          heldChanged = true
        }
        // A gap answered to a batch sent before the last resend repeats that gap: not news.
        if (result.status === 'refused' && result.code === 'seq_gap') {
          if (sentIn === epoch && firstGap === undefined) firstGap = record
        } else {
          gap = undefined // progress: a later gap starts a new streak
        }
      }
      if (heldChanged) options.changed()
      let repeated = false
      if (firstGap !== undefined) repeated = resendAfterGap(firstGap.id)
      const ws = options.ready()
      if (ws !== undefined) settleConfirm(ws)
      return { gapRepeated: firstGap === undefined ? undefined : repeated }
    },
    pushFailed(kind) {
      if (kind !== 'too_large' && kind !== 'internal') return
      const oldest = inFlight.values().next().value
      const first = oldest?.records[0]
      if (oldest === undefined || first === undefined) return
      if (trouble?.id !== first.id) {
        trouble = { id: first.id, failures: 1 }
        return
      }
      trouble.failures++
      if (oldest.records.length > 1) {
        cap = Math.max(1, Math.floor(oldest.records.length / 2))
        return
      }
      // Alone and failing still: hold it (never delete it); the records after it go on.
      trouble = undefined
      holds.hold(first.id, kind, options.now() + FAILED_ENTRY_RETRY_MS, false)
    },
    reset() {
      inFlight.clear()
      flying.clear()
      answeredIn.clear()
      lastSent = undefined
      unread = true
      confirming = undefined
      frozen = false
      ceiling = Number.POSITIVE_INFINITY
      gap = undefined
      scheduler.clearTimeout(gapTimer)
      gapTimer = undefined
      // Invariant 5: deferred records go again with the whole outbox on the next socket.
      holds.dueOnReconnect()
    },
    forget() {
      holds.clear()
      trouble = undefined
      gap = undefined
      holds.arm()
      options.changed()
    },
    stop() {
      stopped = true
      for (const t of [kickTimer, gapTimer]) scheduler.clearTimeout(t)
      kickTimer = gapTimer = undefined
      holds.stop()
      inFlight.clear()
      flying.clear()
    },
    inFlight: () => inFlight.size,
    // Confirming or settling counts: the outbox may be about to move (restore recovery).
    busy: () =>
      inFlight.size > 0 ||
      draining ||
      kickTimer !== undefined ||
      confirming !== undefined ||
      frozen,
    settled(ids) {
      for (const id of ids) holds.delete(id)
      holds.arm()
    },
    held: () => holds.reasons(),
    cap: () => cap,
  }

  /** Invariant 5: from the start again, at once the first time, then after a backoff. */
  function resendAfterGap(id: string): boolean {
    gap = gap?.id === id ? { id, streak: gap.streak + 1 } : { id, streak: 1 }
    epoch++
    lastSent = undefined
    unread = true
    if (gap.streak === 1) return false
    const delay = Math.min(RECONNECT_MS_MAX, RECONNECT_MS_MIN * 2 ** Math.min(gap.streak - 2, 16))
    scheduler.clearTimeout(gapTimer)
    gapTimer = scheduler.setTimeout(() => {
      gapTimer = undefined
      drain()
    }, delay)
    return true
  }
}

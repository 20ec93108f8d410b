/**
 * The hub's forwarder: drains the store queue to head office over the upstream link, in batches
 * head office's `welcome.limits` allow, and records head office's results.
 *
 * Terms: a *batch* is one forwarded `push` (entries of several registers, `subjects` naming each
 * clientId's subject); a result is *final* when it settles the queue row (appended, duplicate,
 * refused other than `seq_gap`, id_conflict); `deferred` and `seq_gap` leave it open.
 *
 *   queued / link up / retry timer ─► pump: open rows (arrival order) ─► batch ─► push ─►
 *   results ─► final ones settled (one transaction) ─► pump again; none final ─► retry later
 *
 * Invariants:
 * 1. At most `FORWARD_IN_FLIGHT_MAX` batches (and head office's `pushInFlightMax`) are in
 *    flight on the one link, sent in order; within a batch each clientId's entries are in
 *    clientSeq order, and a clientId's entry is only sent with (or after) its earlier open ones.
 *    A row in flight is not put in another batch.
 * 2. The forwarder sends the queued bytes as queued (`hub-store.ts` invariant 1); a resend after
 *    a dropped link or a restart is the same entry, which head office dedupes.
 * 3. A held entry (the hub refused it: outside the register's grants) is forwarded only when it
 *    is outside the hub's forward grant too, so head office records the same refusal; else it
 *    stays held and is logged (see docs/ARCHITECTURE.md, "Store hubs").
 * 4. A batch fits head office's limits: at most `pushEntriesMax` entries and
 *    `FORWARD_BYTES_SHARE` of `pushBytesMax` encoded bytes.
 * 5. Entries an upstream hub answered `stored` (a backup hub in front of the primary) are not
 *    sent again until the link is new or `FORWARD_RESEND_STORED_MS` passed; later entries of the
 *    same clientIds go on meanwhile (the upstream hub holds the earlier ones in order).
 * 6. A scan starts after `resume`, and every open row at or before `resume` is in flight: it
 *    only moves past rows a batch took, and goes back to 0 whenever a row in flight may be open
 *    again (a batch dropped or failed, a result not final, a new link). So the next batch is
 *    built without reading and decoding the batches in flight again (on a drain, that re-reading
 *    held the acks and the next push back: head office waited for the hub).
 * 7. A push's slot is free once head office answered it: the next batch is sent before the
 *    answered one's results are recorded, while its rows still count as in flight (so none is
 *    sent twice at once); head office's group commit gets the next push without waiting for the
 *    hub's bookkeeping.
 * 8. A row head office deferred waits its `retryAfterMs` (at least `FORWARD_RETRY_MS`), and a
 *    row refused `seq_gap` waits `FORWARD_RETRY_MS` with its clientId's later rows, before either
 *    is sent again; other rows go on meanwhile (a deferral used its clientSeq up). A new link
 *    ends every wait (head office may have restarted with a newer schema). Without the wait a
 *    deferred row went again the moment its answer was recorded, for good (finding G).
 */
import { matchesAny } from '@ledgerline/core'
import type { Entry } from '@ledgerline/core'
import type { AckResult } from '@ledgerline/protocol'
import type { Logger } from 'pino'
import type { QueuedEntry } from './hub-queue.ts'
import type { HubStore } from './hub-store.ts'
import {
  ENTRY_ENVELOPE_BYTES,
  FORWARD_BYTES_SHARE,
  FORWARD_IN_FLIGHT_MAX,
  FORWARD_RESEND_STORED_MS,
  FORWARD_RETRY_MS,
  FORWARD_SCAN_ROWS,
} from './hub-limits.ts'
import { NODE_TIMERS } from '../timers.ts'
import type { RelayTimers, TimerHandle } from '../timers.ts'
import type { UpstreamLink } from './upstream-link.ts'

export interface Forwarder {
  /** Something changed (queued rows, the link came up): drain when possible. */
  wake(): void
  /** Resolves when no batch is in flight. */
  close(): Promise<void>
}

/**
 * @example
 * const forwarder = createForwarder(hubStore, link, logger)
 * hubStore.onQueued(() => forwarder.wake())
 */
export function createForwarder(
  store: HubStore,
  link: UpstreamLink,
  logger: Logger,
  // Injectable for a simulation (`hub.ts` invariant 3).
  timers: RelayTimers = NODE_TIMERS,
): Forwarder {
  let closed = false
  let retry: TimerHandle | undefined
  const heldLogged = new Set<string>()
  /** Invariant 5: ids an upstream hub holds; bounded by the open rows. */
  let handedOn = new Set<string>()
  let handedOnSince = timers.now()
  /** Ids of the rows in flight with their queue seqs (invariant 1), and the batches. */
  const inFlight = new Map<string, number>()
  const batches = new Set<Promise<void>>()
  /** Invariant 8: rows head office has not decided, by id; bounded by the open rows. */
  let waiting = new Map<string, { readonly dueAt: number; readonly gap: boolean }>()
  /** Invariant 6: every open row up to this seq is in flight. */
  let resume = 0
  /** Pushes on the link not yet answered (invariant 1; 7: not counted while being recorded). */
  let pushing = 0

  const later = (ms: number = FORWARD_RETRY_MS) => {
    timers.clear(retry)
    retry = timers.set(() => wake(), ms, { unref: true })
  }

  /** The next batch from the open rows, scanned in pages past those held upstream or in flight. */
  const scan = (limits: { pushEntriesMax: number; pushBytesMax: number }) => {
    let after = resume
    let ahead = 0
    for (const seq of inFlight.values()) if (seq > resume) ahead++
    // Enough rows for one batch past those in flight, not more: every row read is decoded.
    const want = Math.min(
      FORWARD_SCAN_ROWS,
      limits.pushEntriesMax + ahead + handedOn.size + waiting.size,
    )
    const now = timers.now()
    /** Invariant 6: true while every row scanned so far is in flight or in this batch. */
    let taken = true
    for (;;) {
      const page = store.open(want, after)
      const rows = withoutWaiting(
        page.filter((r) => !handedOn.has(r.entry.id) && !inFlight.has(r.entry.id)),
        now,
      )
      const batch = nextBatch(rows, {
        entriesMax: limits.pushEntriesMax,
        bytesMax: Math.floor(limits.pushBytesMax * FORWARD_BYTES_SHARE),
        forward: link.forwardGrant() ?? [],
        onHeld: (r) => {
          if (heldLogged.has(r.entry.id)) return
          if (heldLogged.size >= FORWARD_SCAN_ROWS) heldLogged.clear()
          heldLogged.add(r.entry.id)
          logger.warn(
            { event: 'hub_entry_held', id: r.entry.id, entity: r.entry.entity },
            'an entry the hub refused is inside its forward grant: not forwarded',
          )
        },
      })
      const last = page.at(-1)
      if (taken) {
        const sent = new Set(batch.entries.map((e) => e.id))
        for (const r of page) {
          if (!inFlight.has(r.entry.id) && !sent.has(r.entry.id)) {
            taken = false
            break
          }
          resume = r.seq
        }
      }
      if (batch.entries.length > 0 || page.length < want || last === undefined) {
        return batch
      }
      after = last.seq
    }
  }

  /**
   * Invariant 8: `rows` less those still waiting at `now`, and less the later rows of a clientId
   * whose gapped row waits; a row whose wait is over is sent as any other.
   */
  const withoutWaiting = (rows: readonly QueuedEntry[], now: number): QueuedEntry[] => {
    if (waiting.size === 0) return [...rows]
    /** The lowest clientSeq of each clientId whose gapped row waits. */
    const gapFrom = new Map<string, number>()
    const kept: QueuedEntry[] = []
    for (const r of rows) {
      const w = waiting.get(r.entry.id)
      if (w !== undefined && w.dueAt <= now) waiting.delete(r.entry.id)
      else if (w !== undefined) {
        if (w.gap) {
          const from = gapFrom.get(r.entry.clientId)
          if (from === undefined || r.entry.clientSeq < from) {
            gapFrom.set(r.entry.clientId, r.entry.clientSeq)
          }
        }
        continue
      }
      kept.push(r)
    }
    return kept.filter((r) => {
      const from = gapFrom.get(r.entry.clientId)
      return from === undefined || r.entry.clientSeq < from
    })
  }

  /**
   * The retry timer for the earliest row due again: waiting ones (invariant 8), and those an
   * upstream hub holds (invariant 5). Waits that are over but found no open row (settled
   * meanwhile by a page) are dropped, so a stale one cannot wake the forwarder at once for good.
   */
  const armRetry = () => {
    const now = timers.now()
    let at = Number.POSITIVE_INFINITY
    for (const [id, w] of waiting) {
      if (w.dueAt <= now) waiting.delete(id)
      else at = Math.min(at, w.dueAt)
    }
    if (handedOn.size > 0 && pushing === 0) {
      at = Math.min(at, Math.max(now + FORWARD_RETRY_MS, handedOnSince + FORWARD_RESEND_STORED_MS))
    }
    if (at !== Number.POSITIVE_INFINITY) later(at - now)
  }

  /** Head office's results for one batch: final ones settle (one transaction). */
  const answered = (results: readonly AckResult[]) => {
    store.settle(results.filter(isFinal))
    const now = timers.now()
    let open = false
    for (const r of results) {
      if (r.status === 'stored') handedOn.add(r.id)
      else if (r.status === 'deferred') {
        waiting.set(r.id, { dueAt: now + Math.max(FORWARD_RETRY_MS, r.retryAfterMs), gap: false })
      } else if (r.status === 'refused' && r.code === 'seq_gap') {
        waiting.set(r.id, { dueAt: now + FORWARD_RETRY_MS, gap: true })
      }
      if (!isFinal(r)) open = true
    }
    // Deferred, gapped or held upstream: asked again when due (invariant 8; invariant 6:
    // scanned again from the start); the rest made room for more now.
    if (open) resume = 0
  }

  const wake = () => {
    if (closed || !link.state().connected) return
    const limits = link.limits()
    if (limits === undefined) return
    if (timers.now() - handedOnSince > FORWARD_RESEND_STORED_MS) {
      handedOn = new Set()
      handedOnSince = timers.now()
      resume = 0
    }
    const most = Math.max(1, Math.min(limits.pushInFlightMax, FORWARD_IN_FLIGHT_MAX))
    while (pushing < most) {
      let batch: ReturnType<typeof scan>
      try {
        batch = scan(limits)
      } catch (error) {
        logger.error({ event: 'forward_failed', err: error }, 'cannot read the store queue')
        later()
        return
      }
      if (batch.entries.length === 0) {
        // Only entries that wait (invariant 8) or an upstream hub holds are left: ask again
        // when the first is due.
        armRetry()
        return
      }
      const ids = batch.entries.map((e) => e.id)
      for (const [i, id] of ids.entries()) inFlight.set(id, batch.seqs[i] as number)
      pushing++
      const sent: Promise<void> = link
        .push(batch.entries, batch.subjects)
        .then(
          (results) => {
            // Invariant 7: the next batch goes before these results are recorded.
            pushing--
            wake()
            answered(results)
          },
          () => {
            // The link dropped: it wakes the forwarder when it is up again (invariant 2); what
            // was in flight is open again (invariant 6).
            pushing--
            resume = 0
          },
        )
        .catch((error: unknown) => {
          logger.error({ event: 'forward_failed', err: error }, 'cannot record results')
          resume = 0
          later()
        })
        .finally(() => {
          for (const id of ids) inFlight.delete(id)
          batches.delete(sent)
          wake()
        })
      batches.add(sent)
    }
  }

  const stopState = link.onState((s) => {
    // A new link: what the upstream hub held is asked again (invariant 5), and what head office
    // deferred or gapped (invariant 8), from the start.
    handedOn = new Set()
    waiting = new Map()
    handedOnSince = timers.now()
    resume = 0
    if (s.connected) wake()
  })
  const stopQueued = store.onQueued(() => wake())

  return {
    wake,
    async close() {
      closed = true
      timers.clear(retry)
      stopState()
      stopQueued()
      await Promise.allSettled(batches)
    },
  }
}

/** A head office result that settles a queue row. */
export function isFinal(r: AckResult): boolean {
  if (r.status === 'deferred' || r.status === 'stored') return false
  return !(r.status === 'refused' && r.code === 'seq_gap')
}

/**
 * The next batch of open rows (invariants 1, 3 and 4).
 *
 * @example
 * nextBatch(store.open(4000), { entriesMax: 500, bytesMax: 800_000, forward: ['*'] })
 */
export function nextBatch(
  rows: readonly QueuedEntry[],
  options: {
    readonly entriesMax: number
    readonly bytesMax: number
    readonly forward: readonly string[]
    readonly onHeld?: ((row: QueuedEntry) => void) | undefined
  },
): { entries: Entry[]; seqs: number[]; subjects: Record<string, string> } {
  const byClient = new Map<string, QueuedEntry[]>()
  const subjects: Record<string, string> = {}
  /** A clientId with a row left out: its later rows wait too (invariant 1). */
  const blocked = new Set<string>()
  let count = 0
  let bytes = 0
  for (const r of rows) {
    const e = r.entry
    if (blocked.has(e.clientId)) continue
    if (r.held !== null && matchesAny(options.forward, e.entity)) {
      options.onHeld?.(r)
      blocked.add(e.clientId)
      continue
    }
    const size = r.bytes + ENTRY_ENVELOPE_BYTES
    if (count >= options.entriesMax || (count > 0 && bytes + size > options.bytesMax)) {
      blocked.add(e.clientId)
      continue
    }
    count++
    bytes += size
    subjects[e.clientId] = r.subject
    const list = byClient.get(e.clientId) ?? []
    list.push(r)
    byClient.set(e.clientId, list)
  }
  const entries: Entry[] = []
  /** The queue seq of each entry, in the same order. */
  const seqs: number[] = []
  for (const list of byClient.values()) {
    list.sort((a, b) => a.entry.clientSeq - b.entry.clientSeq)
    for (const r of list) {
      entries.push(r.entry)
      seqs.push(r.seq)
    }
  }
  return { entries, seqs, subjects }
}

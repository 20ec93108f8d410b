/**
 * The held records of the outbox drain (`outbox-drain.ts`): which records are kept back, why,
 * until when, and the one timer that wakes the drain when the earliest falls due.
 *
 * Terms: a *held* record is kept back by the drain: the relay deferred it (`retryAfterMs`), it
 * failed alone in a batch of one, it is larger than the relay takes, or a store hub answered it
 * `stored` (`outbox-drain.ts` invariant 8). Its *due* time is when it may be sent again.
 *
 * Invariants:
 * 1. Holding never deletes a record: it is kept here by id until an answer other than a
 *    deferral or `stored` comes, a page settles it, or the outbox moves (`clear`).
 * 2. At most one retry timer runs, for the earliest due record; none while the drain confirms
 *    or is frozen (`lift` arms it again, `outbox-drain.ts` invariant 4), none once stopped, and
 *    none for a record due now when the next read starts from the outbox's start anyway.
 * 3. `stored` records are not reasons: nothing is wrong with them (`status().held`).
 */
import type { Scheduler, TimerHandle } from './scheduler.ts'

/** The hold code of records a store hub answered `stored` (`outbox-drain.ts` invariant 8). */
export const STORED = 'stored'

/** Why a record is held back, and how many are held for it. */
export interface HeldReason {
  readonly code: string
  readonly count: number
}

export interface Held {
  readonly code: string
  /** When to send it again (Infinity: not on this socket; -Infinity: due now). */
  dueAt: number
  /** Sent again on a new socket (deferrals); false: only after dueAt (entries that failed). */
  readonly onReconnect: boolean
}

export interface HeldRecordsOptions {
  readonly scheduler: Scheduler
  readonly now: () => number
  /** The drain confirms or is frozen: no retry timer (invariant 2). */
  readonly paused: () => boolean
  readonly stopped: () => boolean
  /** The next read starts from the outbox's start and the outbox is marked unread. */
  readonly readsFromStart: () => boolean
  /** The earliest held record fell due: read the outbox again from its start. */
  readonly due: () => void
  /** What is held changed. */
  readonly changed: () => void
}

export interface HeldRecords {
  get(id: string): Held | undefined
  /** Keeps `id` back without arming the timer (the drain arms it when its read ends). */
  set(id: string, held: Held): void
  delete(id: string): boolean
  /** Keeps `id` back, arms the timer and tells `changed`. */
  hold(id: string, code: string, dueAt: number, onReconnect: boolean): void
  /** Arms the retry timer for the earliest due record (invariant 2). */
  arm(): void
  /** A new socket: records held until a reconnect are due now. */
  dueOnReconnect(): void
  clear(): void
  stop(): void
  /** Records held back, by reason (invariant 3). */
  reasons(): readonly HeldReason[]
}

/**
 * @example
 * const held = createHeldRecords({ scheduler, now, paused, stopped, readsFromStart, due, changed })
 * held.hold(record.id, 'too_large', Number.POSITIVE_INFINITY, true)
 */
export function createHeldRecords(options: HeldRecordsOptions): HeldRecords {
  const { scheduler } = options
  const heldById = new Map<string, Held>()
  let retryTimer: TimerHandle | undefined

  /**
   * Wakes the drain when the earliest held record falls due (not while confirming or frozen:
   * `lift` arms it again).
   */
  function arm(): void {
    scheduler.clearTimeout(retryTimer)
    retryTimer = undefined
    if (options.paused()) return
    let first = Number.POSITIVE_INFINITY
    for (const h of heldById.values()) if (h.dueAt > -Infinity) first = Math.min(first, h.dueAt)
    if (first === Number.POSITIVE_INFINITY || options.stopped()) return
    // Due already, and the next read starts from the outbox's start: the drain could not push
    // (every batch in flight, a gap backing off), and what unblocks it (an ack, the gap timer, a
    // welcome) drains again and sends the record. A timer now would only spin.
    if (first <= options.now() && options.readsFromStart()) return
    retryTimer = scheduler.setTimeout(
      () => {
        retryTimer = undefined
        options.due()
      },
      Math.max(0, first - options.now()),
    )
  }

  return {
    get: (id) => heldById.get(id),
    set(id, held) {
      heldById.set(id, held)
    },
    delete: (id) => heldById.delete(id),
    hold(id, code, dueAt, onReconnect) {
      heldById.set(id, { code, dueAt, onReconnect })
      arm()
      options.changed()
    },
    arm,
    dueOnReconnect() {
      for (const h of heldById.values()) if (h.onReconnect) h.dueAt = Number.NEGATIVE_INFINITY
    },
    clear() {
      heldById.clear()
    },
    stop() {
      scheduler.clearTimeout(retryTimer)
      retryTimer = undefined
    },
    reasons() {
      const counts = new Map<string, number>()
      for (const h of heldById.values())
        if (h.code !== STORED) counts.set(h.code, (counts.get(h.code) ?? 0) + 1)
      return [...counts].map(([code, count]) => ({ code, count }))
    },
  }
}

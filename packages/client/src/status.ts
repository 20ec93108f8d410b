/**
 * Status: the `ClientStatus` the app shows (online, outbox depth and age, persistence, unseen
 * corrections, errors), kept in memory and published when it changes, and the waits
 * (`outcome`, `synced`) that look again whenever something changed.
 *
 * Terms: the *counters* are the client store's (`Counters`: outbox entries and bytes, oldest
 * outbox time, unseen corrections, acked entries waiting); the *connection state* is the sync
 * loop's (this tab's, or the leader tab's as last reported).
 *
 * Invariants:
 * 1. `status()` returns the same object until a field other than `oldestOutboxAgeMs` changes;
 *    listeners are called once per change.
 * 2. An append sets the counters from the meta record its own transaction wrote, without a
 *    read; a read of the counters that overlapped an append of this tab is not taken (it may
 *    be older than what the append wrote): a read is scheduled again instead.
 * 3. Reads caused by acks, pages and other tabs wait COUNTERS_DELAY_MS, so many of them share
 *    one read, which never queues between appends.
 * 4. Once closed, status stays closed and no more reads are scheduled.
 */
import type { ClientStatus } from './client-api.ts'
import type { ClientMeta, ClientStore, Counters } from './client-store.ts'
import { COUNTERS_DELAY_MS } from './limits.ts'
import type { Scheduler, TimerHandle } from './scheduler.ts'

/** The sync loop's part of the status. */
export interface ConnectionStatus {
  readonly online: boolean
  readonly syncing: boolean
  readonly live: boolean
  readonly lastServerContactAt: number | null
  readonly lastError: ClientStatus['lastError']
  readonly heldReasons: ClientStatus['heldReasons']
  readonly paused: boolean
  readonly relay?: ClientStatus['relay'] | undefined
  readonly headOffice?: ClientStatus['headOffice'] | undefined
}

export interface StatusOptions {
  readonly now: () => number
  readonly scheduler: Scheduler
  /** The client store, once open (rejects if it cannot be opened). */
  readonly clientStore: Promise<Pick<ClientStore, 'counters'>>
  readonly isLeader: () => boolean
}

export interface Status {
  status(): ClientStatus
  onStatus(onChange: (status: ClientStatus) => void): () => void
  counters(): Counters | undefined
  /** The counters as read at start. */
  setCounters(counters: Counters): void
  /** This tab's append committed `meta` at `at` (invariant 2). */
  appended(meta: ClientMeta, at: number, wasEmpty: boolean): void
  /** Reads the counters now (start, `synced`, `markCorrectionsSeen`). */
  refreshCounters(): Promise<void>
  /** Reads the counters after COUNTERS_DELAY_MS (invariant 3). */
  scheduleCounters(): void
  setConnection(patch: Partial<ConnectionStatus>): void
  setPersisted(persisted: boolean | null): void
  closed(): ClientStatus['closed']
  /** Closes the status for `reason` unless already closed; true when this call closed it. */
  close(reason: NonNullable<ClientStatus['closed']>): boolean
  /** Publishes the current status if it changed. */
  publish(): void
  /** Resolves after the next change, or after `ms` (whichever first). */
  waitForChange(ms: number): Promise<void>
  /** Something changed that a wait may be looking for. */
  wake(): void
}

/**
 * @example
 * const status = createStatus({ now, scheduler, clientStore, isLeader: () => tabs.isLeader() })
 * status.onStatus((s) => render(s.online, s.outboxEntries))
 */
export function createStatus(options: StatusOptions): Status {
  const { now, scheduler } = options
  const listeners = new Set<(status: ClientStatus) => void>()
  const waiters = new Set<() => void>()
  let counters: Counters | undefined
  // Appends of this tab committed so far (invariant 2).
  let appendsCommitted = 0
  let countersTimer: TimerHandle | undefined
  let connection: ConnectionStatus = {
    online: false,
    syncing: false,
    live: false,
    lastServerContactAt: null,
    lastError: null,
    heldReasons: [],
    paused: false,
  }
  let persisted: boolean | null = null
  let closed: ClientStatus['closed'] = null
  let current: ClientStatus = make()

  function make(): ClientStatus {
    const oldestOutboxAt = counters?.oldestOutboxAt ?? null
    return {
      online: connection.online,
      syncing: connection.syncing,
      live: connection.live,
      outboxEntries: counters?.outboxEntries ?? 0,
      storedEntries: counters?.storedEntries ?? 0,
      deviceEntries: Math.max(0, (counters?.outboxEntries ?? 0) - (counters?.storedEntries ?? 0)),
      outboxBytes: counters?.outboxBytes ?? 0,
      held: connection.heldReasons.reduce((n, r) => n + r.count, 0),
      heldReasons: connection.heldReasons,
      paused: connection.paused,
      oldestOutboxAt,
      oldestOutboxAgeMs: oldestOutboxAt === null ? 0 : Math.max(0, now() - oldestOutboxAt),
      lastServerContactAt: connection.lastServerContactAt,
      persisted,
      correctionsUnseen: counters?.correctionsUnseen ?? 0,
      clientId: counters?.clientId ?? null,
      leader: options.isLeader(),
      relay: connection.relay ?? null,
      headOffice: connection.headOffice ?? 'unknown',
      lastError: connection.lastError,
      closed,
    }
  }

  function publish(): void {
    const next = make()
    const keys = Object.keys(next) as (keyof ClientStatus)[]
    if (keys.every((k) => k === 'oldestOutboxAgeMs' || next[k] === current[k])) return
    current = next
    for (const l of listeners) l(current)
  }

  async function refreshCounters(): Promise<void> {
    try {
      const clientStore = await options.clientStore
      const appendsBefore = appendsCommitted
      const read = await clientStore.counters()
      if (appendsBefore !== appendsCommitted) {
        // An append of this tab committed while this read ran: whichever came first, the
        // counters it set are no older than this read. Read again shortly instead.
        scheduleCounters()
        return
      }
      counters = read
      publish()
    } catch {
      // The database closed under us; `status().closed` says why.
    }
  }

  function scheduleCounters(): void {
    if (countersTimer !== undefined || closed !== null) return
    countersTimer = scheduler.setTimeout(() => {
      countersTimer = undefined
      void refreshCounters()
    }, COUNTERS_DELAY_MS)
  }

  return {
    status: () => current,
    onStatus(onChange) {
      listeners.add(onChange)
      return () => listeners.delete(onChange)
    },
    counters: () => counters,
    setCounters(read) {
      counters = read
      publish()
    },
    appended(meta, at, wasEmpty) {
      appendsCommitted++
      if (counters === undefined) return
      // The meta record the append read and rewrote is exact as of its commit (acks and other
      // tabs included).
      counters = {
        ...counters,
        clientId: meta.clientId,
        seqLast: meta.seqLast,
        outboxEntries: meta.outboxEntries,
        outboxBytes: meta.outboxBytes,
        oldestOutboxAt: wasEmpty ? at : (counters.oldestOutboxAt ?? at),
      }
      publish()
    },
    refreshCounters,
    scheduleCounters,
    setConnection(patch) {
      connection = { ...connection, ...patch }
      publish()
    },
    setPersisted(value) {
      persisted = value
      publish()
    },
    closed: () => closed,
    close(reason) {
      if (closed !== null) return false
      closed = reason
      scheduler.clearTimeout(countersTimer)
      countersTimer = undefined
      return true
    },
    publish,
    waitForChange(ms) {
      return new Promise((resolve) => {
        const done = () => {
          scheduler.clearTimeout(timer)
          waiters.delete(done)
          resolve()
        }
        const timer = scheduler.setTimeout(done, Math.max(1, ms))
        waiters.add(done)
      })
    },
    wake() {
      for (const w of waiters) w()
    },
  }
}

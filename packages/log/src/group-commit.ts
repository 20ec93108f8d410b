/**
 * The one group-commit scheduler of the server log, used by every store: a queue of `append`
 * calls, cut into groups that are each committed in one transaction by the store's `commit`.
 *
 *   append() ─► bound check ─► queue ─(defer)─► group ≤ groupEntriesMax entries ─► commit(group)
 *                  │ over COMMIT_QUEUE_ENTRIES_MAX                       │ failed?
 *                  ▼                                                    ▼
 *        rejects at once: LogStoreError('overloaded')        each call again alone
 *                                                                       │
 *                      resolve each call with its own results ◄─────────┘ ─► onCommitted
 *
 * Terms: a *call* is one `append(tenant, items)`; a *group* is the calls of one `commit`; a
 * group is *in flight* from the moment it leaves the queue until its calls are answered; an
 * entry is *queued for commit* from `append` until its call is answered.
 *
 * Invariants:
 * 1. Entries queued for commit never pass `queueEntriesMax`: a call that would pass it rejects
 *    at once with `LogStoreError('overloaded')` and nothing of it is recorded.
 * 2. A group holds at most `groupEntriesMax` entries, unless one call alone holds more.
 * 3. Each call is resolved with only its own results (`commit` returns one list per call).
 * 4. A group whose `commit` fails is committed again call by call, so one bad call rejects only
 *    itself; a call's rejection is the error of its own commit.
 * 5. At most `groupsInFlightMax()` groups are in flight (1 unless the store asks for more); with
 *    more than one, no two groups in flight hold calls of one client, and a call waits while an
 *    earlier call of its client waits, so each client's calls are decided in the order they came
 *    (their clientSeqs are checked against committed high-water marks).
 * 6. `close()` stops accepting (`LogStoreError('closed')`) and resolves when every call it had
 *    accepted is answered. A call with an item of another tenant is refused whole
 *    (`LogStoreError('invalid')`).
 * 7. No timer of its own: it waits with the injected `defer`, so a simulation can drive it.
 */
import { SERVER_CLIENT_ID } from '@ledgerline/core'
import type { PlanCall } from './plan-types.ts'
import { joinKey } from './plan-types.ts'
import { COMMIT_QUEUE_ENTRIES_MAX, GROUP_COMMIT_ENTRIES_MAX } from './limits.ts'
import type { AppendItem, AppendResult, LogStoreOptions, Pusher } from './log-store.ts'
import { LogStoreError } from './log-store-error.ts'

/** What a store's `commit` returns for a committed group. */
export interface CommitOutcome {
  /** One result list per call of the group, in order. */
  readonly results: readonly (readonly AppendResult[])[]
  /** Partitions the group wrote, for `onCommitted`. */
  readonly touched: readonly number[]
}

export interface GroupCommitOptions {
  /**
   * Decides and writes `group` in one transaction and resolves once it is durable. May throw or
   * reject; then nothing of it may have been written (invariant 4 commits each call again).
   */
  readonly commit: (group: readonly PlanCall[]) => CommitOutcome | Promise<CommitOutcome>
  /** Told after the calls of a committed group were resolved. */
  readonly onCommitted?: ((touched: readonly number[]) => void) | undefined
  /** See `LogStoreOptions.defer`. */
  readonly defer: (fn: () => void) => void
  readonly groupEntriesMax?: number | undefined
  readonly queueEntriesMax?: number | undefined
  /** Groups allowed in flight, read before each group starts; default 1 (invariant 5). */
  readonly groupsInFlightMax?: (() => number) | undefined
}

export interface GroupCommit {
  append(
    tenant: string,
    items: readonly AppendItem[],
    pusher?: Pusher | undefined,
  ): Promise<AppendResult[]>
  /** Entries queued for commit now (invariant 1's count). */
  readonly queuedEntries: number
  /** Invariant 6. */
  close(): Promise<void>
}

/**
 * @example
 * const commits = createGroupCommit({ commit: (group) => writeInOneTransaction(group),
 *   defer: (fn) => setImmediate(fn) })
 * const results = await commits.append('acme', [{ entry }], { subject: 'till-7', grants })
 */
export function createGroupCommit(options: GroupCommitOptions): GroupCommit {
  return new Scheduler(options)
}

/**
 * The group commit options a store takes from its `LogStoreOptions`, with the store's own
 * `defer` when none is given (Node stores: `setImmediate`).
 *
 * @example
 * createGroupCommit({ ...groupCommitOptionsOf(options, nodeDefer), commit, onCommitted })
 */
export function groupCommitOptionsOf(
  options: LogStoreOptions,
  defer: (fn: () => void) => void,
): Pick<GroupCommitOptions, 'defer' | 'groupEntriesMax' | 'queueEntriesMax'> {
  return {
    defer: options.defer ?? defer,
    groupEntriesMax: options.groupCommitEntriesMax,
    queueEntriesMax: options.commitQueueEntriesMax,
  }
}

/**
 * An item of another tenant (not refused by the relay) is the caller's bug, not a business
 * outcome: the whole call is refused before anything is written, `LogStoreError('invalid')`.
 *
 * @example
 * checkTenant('acme', items) // throws when an item's entry is of another tenant
 */
export function checkTenant(tenant: string, items: readonly AppendItem[]): void {
  for (const item of items) {
    if (item.refuse === undefined && item.entry.tenant !== tenant) {
      throw new LogStoreError('invalid', `entry ${item.entry.id} is not of tenant ${tenant}`)
    }
  }
}

// ---------------------------------------------------------------------------------------------

interface Call extends PlanCall {
  readonly resolve: (results: AppendResult[]) => void
  readonly reject: (error: unknown) => void
  /** `joinKey(tenant, clientId)` of the call's client entries; only with several in flight. */
  readonly clients: readonly string[]
}

class Scheduler implements GroupCommit {
  readonly #options: GroupCommitOptions
  readonly #groupMax: number
  readonly #queueMax: number
  readonly #multi: boolean
  #queue: Call[] = []
  /** Entries in `#queue` (not yet in flight). */
  #waiting = 0
  /** Entries queued for commit: waiting or in flight (invariant 1). */
  #queued = 0
  #scheduled = false
  #closed = false
  readonly #running = new Set<Promise<void>>()
  /** Calls in flight per client (invariant 5). */
  readonly #busyClients = new Map<string, number>()

  constructor(options: GroupCommitOptions) {
    this.#options = options
    this.#groupMax = Math.max(1, options.groupEntriesMax ?? GROUP_COMMIT_ENTRIES_MAX)
    this.#queueMax = Math.max(1, options.queueEntriesMax ?? COMMIT_QUEUE_ENTRIES_MAX)
    this.#multi = options.groupsInFlightMax !== undefined
  }

  get queuedEntries(): number {
    return this.#queued
  }

  append(
    tenant: string,
    items: readonly AppendItem[],
    pusher?: Pusher | undefined,
  ): Promise<AppendResult[]> {
    if (this.#closed) return Promise.reject(new LogStoreError('closed', 'the log is closed'))
    try {
      checkTenant(tenant, items)
    } catch (error) {
      return Promise.reject(error)
    }
    if (items.length === 0) return Promise.resolve([])
    if (this.#queued + items.length > this.#queueMax) {
      return Promise.reject(
        new LogStoreError(
          'overloaded',
          `${this.#queued} entries wait for commit; ${items.length} more would pass COMMIT_QUEUE_ENTRIES_MAX (${this.#queueMax})`,
        ),
      )
    }
    const clients: string[] = []
    if (this.#multi) {
      for (const item of items) {
        const clientId = item.entry.clientId
        if (clientId === SERVER_CLIENT_ID) continue
        const key = joinKey(tenant, clientId)
        if (!clients.includes(key)) clients.push(key)
      }
    }
    this.#queued += items.length
    this.#waiting += items.length
    return new Promise<AppendResult[]>((resolve, reject) => {
      this.#queue.push({ tenant, items, pusher, resolve, reject, clients })
      this.#schedule()
    })
  }

  async close(): Promise<void> {
    this.#closed = true
    while (this.#queue.length > 0 || this.#running.size > 0) {
      if (this.#running.size > 0) await Promise.all(this.#running)
      else this.#flush()
    }
  }

  #schedule(): void {
    if (this.#scheduled) return
    this.#scheduled = true
    this.#options.defer(() => {
      this.#scheduled = false
      this.#flush()
    })
  }

  /**
   * Starts groups while fewer than allowed are in flight. With several in flight, queued
   * entries are shared out over the free slots, so while one group commits the next is already
   * waiting for the store's locks.
   */
  #flush(): void {
    const inFlightMax = Math.max(1, this.#options.groupsInFlightMax?.() ?? 1)
    while (this.#running.size < inFlightMax && this.#queue.length > 0) {
      const free = inFlightMax - this.#running.size
      const target = Math.min(this.#groupMax, Math.ceil(this.#waiting / free))
      const group: Call[] = []
      const rest: Call[] = []
      const waiting = new Set<string>()
      let count = 0
      for (let i = 0; i < this.#queue.length; i++) {
        const call = this.#queue[i] as Call
        if (group.length > 0 && count + call.items.length > target) {
          for (let j = i; j < this.#queue.length; j++) rest.push(this.#queue[j] as Call)
          break
        }
        if (call.clients.some((c) => this.#busyClients.has(c) || waiting.has(c))) {
          for (const c of call.clients) waiting.add(c)
          rest.push(call)
          continue
        }
        group.push(call)
        count += call.items.length
      }
      if (group.length === 0) return
      this.#queue = rest
      this.#waiting -= count
      for (const call of group) {
        for (const c of call.clients) this.#busyClients.set(c, (this.#busyClients.get(c) ?? 0) + 1)
      }
      const running: Promise<void> = this.#run(group).finally(() => {
        for (const call of group) {
          for (const c of call.clients) {
            const n = (this.#busyClients.get(c) ?? 1) - 1
            if (n === 0) this.#busyClients.delete(c)
            else this.#busyClients.set(c, n)
          }
        }
        this.#running.delete(running)
        if (this.#queue.length > 0) this.#schedule()
      })
      this.#running.add(running)
    }
  }

  async #run(group: readonly Call[]): Promise<void> {
    try {
      const outcome = await this.#options.commit(group)
      this.#answer(group, outcome)
      return
    } catch (error) {
      if (group.length === 1) {
        this.#fail(group[0] as Call, error)
        return
      }
    }
    // Invariant 4: one failing call must not take the others down with it.
    for (const call of group) {
      try {
        this.#answer([call], await this.#options.commit([call]))
      } catch (error) {
        this.#fail(call, error)
      }
    }
  }

  #answer(group: readonly Call[], outcome: CommitOutcome): void {
    group.forEach((call, i) => {
      this.#queued -= call.items.length
      call.resolve((outcome.results[i] ?? []) as AppendResult[])
    })
    this.#options.onCommitted?.(outcome.touched)
  }

  #fail(call: Call, error: unknown): void {
    this.#queued -= call.items.length
    call.reject(error)
  }
}

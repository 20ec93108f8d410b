/**
 * The subscriptions of one sync connection: scopes with per-partition cursors and credit, read
 * from the log (catch-up) or the relay's shared tails (live), and sent as `entries` pages
 * through the session that owns them (`session.ts`).
 *
 * Terms: a *subscription* is a scope (entity patterns within the read grants) with
 * per-partition cursors and *credit* (pages the client can take). A partition is *dirty* for a
 * subscription while the log may hold entries past its cursor. A *live* subscription reads from
 * the shared tails (`fanout-tail.ts`) while its cursor is inside them, and from the log
 * otherwise (catch-up, lagging).
 *
 * Invariants (numbered as in `session.ts`):
 * 2. Every entry sent is of the token's tenant and matches the subscription's scope and the read
 *    grants; every other entry is skipped (cursors still pass it).
 * 3. Per subscription and partition, entries are sent in offset order without gaps: one pump at
 *    a time reads from the cursor, and a partition stops being dirty only if no commit touched
 *    it during the read and the read reached the head.
 * 4. At most as many pages are sent as the client granted, each at most `pageEntriesMax`
 *    entries and `pageBytesMax` bytes (one bigger entry goes alone); a socket whose unsent bytes
 *    pass `bufferedBytesMax` is closed as a slow consumer.
 * 5. Reads of the log (catch-up, or a live subscription outside the tails) are charged to the
 *    connection: its subscriptions share one budget of `catchUpEntriesPerS` entries per second
 *    (burst `catchUpEntriesBurst`). With the budget spent, a subscription waits on one timer of
 *    its own, which a replacing `subscribe` or the close clears, so re-subscribing in a loop
 *    costs the log no more than the budget and holds no growing queue of waits.
 */
import { checkPattern, matchesAny, matchesPattern } from '@ledgerline/core'
import { CREDIT_PAGES_MAX, SCOPE_PATTERNS_MAX, SUBSCRIPTIONS_MAX } from '@ledgerline/protocol'
import type { ErrorKind, Grants } from '@ledgerline/protocol'
import { encodedEntry, entryPageBytes } from './fanout-tail.ts'
import type { EncodedEntry } from './fanout-tail.ts'
import type { SessionContext } from './session.ts'
import { NODE_TIMERS } from './timers.ts'
import type { RelayTimers, TimerHandle } from './timers.ts'

/** What the subscriptions need of the session that owns them. */
export interface SubscriptionHost {
  tenant(): string
  grants(): Grants
  /** True while the session may send (after `welcome`, before close). */
  isReady(): boolean
  bufferedAmount(): number
  sendEntries(
    sub: number,
    page: readonly EncodedEntry[],
    cursors: Record<number, number>,
    live: boolean,
  ): void
  /** An error that leaves the socket open. */
  sendError(kind: ErrorKind, message: string): void
  /** An error that closes the socket. */
  fail(kind: ErrorKind, message: string): void
}

interface Subscription {
  readonly id: number
  readonly scope: readonly string[]
  readonly cursors: number[]
  credit: number
  live: boolean
  pumping: boolean
  /** Partition → count of commits seen; see invariant 3. */
  readonly dirty: Map<number, number>
  /** Set while the subscription waits for the catch-up budget (invariant 5). */
  retry: TimerHandle | undefined
}

/**
 * @example
 * const subs = new Subscriptions(context, host)
 * subs.subscribe(message) // then subs.onCommit(partitions) after each commit
 */
export class Subscriptions {
  readonly #ctx: SessionContext
  readonly #host: SubscriptionHost
  readonly #subs = new Map<number, Subscription>()
  readonly #timers: RelayTimers
  readonly #budget: CatchUpBudget

  constructor(context: SessionContext, host: SubscriptionHost) {
    this.#ctx = context
    this.#host = host
    this.#timers = context.timers ?? NODE_TIMERS
    this.#budget = new CatchUpBudget(
      context.limits.catchUpEntriesPerS,
      context.limits.catchUpEntriesBurst,
      () => this.#timers.now(),
    )
  }

  /** The partitions of a commit: wake the subscriptions (invariant 3). */
  onCommit(partitions: readonly number[]): void {
    for (const sub of this.#subs.values()) {
      for (const p of partitions) sub.dirty.set(p, (sub.dirty.get(p) ?? 0) + 1)
      void this.#pump(sub)
    }
  }

  clear(): void {
    for (const sub of this.#subs.values()) this.#timers.clear(sub.retry)
    this.#subs.clear()
  }

  /** True when the subscription was made (or replaced); false when it was refused. */
  subscribe(m: Record<string, unknown>): boolean {
    const id = safeInt(m.sub, 'sub')
    if (!Array.isArray(m.scope) || m.scope.length === 0 || m.scope.length > SCOPE_PATTERNS_MAX) {
      throw new BadMessage(`scope must be a list of 1..${SCOPE_PATTERNS_MAX} entity patterns`)
    }
    const scope = (m.scope as unknown[]).map((p) => checkPattern(p))
    const credit = safeInt(m.credit ?? 0, 'credit')
    if (credit > CREDIT_PAGES_MAX) throw new BadMessage(`credit over ${CREDIT_PAGES_MAX}`)
    const partitions = this.#ctx.store.partitions
    const cursors = Array.from({ length: partitions }, () => 0)
    if (m.cursors !== undefined && m.cursors !== null) {
      if (typeof m.cursors !== 'object' || Array.isArray(m.cursors)) {
        throw new BadMessage('cursors must be a map of partition to offset')
      }
      for (const [key, value] of Object.entries(m.cursors as Record<string, unknown>)) {
        const p = Number(key)
        if (!Number.isSafeInteger(p) || p < 0 || p >= partitions) {
          throw new BadMessage(`cursor for unknown partition ${key.slice(0, 16)}`)
        }
        cursors[p] = safeInt(value, 'cursor')
      }
    }
    // A scope pattern is within the grants when a read pattern matches it read as a name:
    // only a grant's `*` can stand for the scope's `*`.
    const outside = scope.filter((p) => !this.#host.grants().read.some((g) => matchesPattern(g, p)))
    if (outside.length > 0) {
      this.#host.sendError(
        'forbidden',
        `subscription ${id}: scope outside read grants: ${outside.join(', ')}`,
      )
      return false
    }
    if (!this.#subs.has(id) && this.#subs.size >= SUBSCRIPTIONS_MAX) {
      this.#host.sendError('too_large', `at most ${SUBSCRIPTIONS_MAX} subscriptions per connection`)
      return false
    }
    // Re-subscribing with the same number replaces the subscription (new scope or cursors).
    const sub: Subscription = {
      id,
      scope,
      cursors,
      credit,
      live: false,
      pumping: false,
      dirty: new Map(cursors.map((_, p) => [p, 0])),
      retry: undefined,
    }
    this.#timers.clear(this.#subs.get(id)?.retry)
    this.#subs.set(id, sub)
    void this.#pump(sub)
    return true
  }

  credit(m: Record<string, unknown>): void {
    const id = safeInt(m.sub, 'sub')
    const pages = safeInt(m.pages, 'pages')
    if (pages > CREDIT_PAGES_MAX) throw new BadMessage(`credit over ${CREDIT_PAGES_MAX}`)
    const sub = this.#subs.get(id)
    if (sub === undefined) return // A credit racing an unsubscribe or a refused subscription.
    sub.credit = Math.min(sub.credit + pages, CREDIT_PAGES_MAX)
    void this.#pump(sub)
  }

  async #pump(sub: Subscription): Promise<void> {
    if (sub.pumping || sub.retry !== undefined) return
    sub.pumping = true
    const pageMax = this.#ctx.limits.pageEntriesMax
    try {
      while (sub.credit > 0 && this.#current(sub)) {
        if (this.#host.bufferedAmount() > this.#ctx.limits.bufferedBytesMax) {
          this.#host.fail(
            'slow_consumer',
            `more than ${this.#ctx.limits.bufferedBytesMax} bytes queued`,
          )
          return
        }
        const page: EncodedEntry[] = []
        let pageBytes = 0
        let full = false
        let spent = false
        const order = [...sub.dirty.keys()].sort((a, b) => a - b)
        for (const p of order) {
          const want = pageMax - page.length
          if (want <= 0 || full) break
          const seen = sub.dirty.get(p)
          const read = await this.#read(sub, p, want)
          if (!this.#current(sub)) return
          if (read === undefined) {
            spent = true
            break
          }
          let through = read.throughOffset
          for (const encoded of read.entries) {
            const e = encoded.entry
            // Invariant 2, checked again here whatever the store did.
            if (
              e.tenant !== this.#host.tenant() ||
              !matchesAny(sub.scope, e.entity) ||
              !matchesAny(this.#host.grants().read, e.entity)
            ) {
              continue
            }
            const bytes = entryPageBytes(encoded)
            if (page.length > 0 && pageBytes + bytes > this.#ctx.limits.pageBytesMax) {
              // The page is full by bytes: stop just before this entry; it comes next page.
              through = e.offset - 1
              full = true
              break
            }
            page.push(encoded)
            pageBytes += bytes
          }
          if (through > (sub.cursors[p] ?? 0)) sub.cursors[p] = through
          if (!full && read.atHead && sub.dirty.get(p) === seen) sub.dirty.delete(p)
        }
        const caughtUp = sub.dirty.size === 0
        if (page.length > 0 || (!sub.live && caughtUp)) {
          const live = sub.live || caughtUp
          sub.credit--
          sub.live = live
          this.#host.sendEntries(sub.id, page, cursorsOf(sub), live)
        }
        if (spent) {
          // Invariant 5: wait for the budget on this subscription's one timer.
          sub.retry = this.#timers.set(() => {
            sub.retry = undefined
            if (this.#current(sub)) void this.#pump(sub)
          }, this.#budget.waitMs())
          return
        }
        // Caught up with nothing to send: done until the next commit or credit.
        if (caughtUp && page.length === 0) break
      }
    } catch (error) {
      this.#ctx.logger.error(
        { event: 'internal_error', err: error },
        'reading the log for a subscription failed',
      )
      this.#host.fail('internal', 'could not read the log')
    } finally {
      sub.pumping = false
    }
  }

  /**
   * A live subscription reads from the shared tail when its cursor is inside it; otherwise the
   * log, charged to the connection (invariant 5): undefined when the budget is spent.
   */
  async #read(
    sub: Subscription,
    p: number,
    want: number,
  ): Promise<
    { entries: readonly EncodedEntry[]; throughOffset: number; atHead: boolean } | undefined
  > {
    const cursor = sub.cursors[p] ?? 0
    if (sub.live) {
      const shared = await this.#ctx.tails.read(this.#host.tenant(), p, cursor, want)
      if (shared !== undefined) return shared
      if (!this.#current(sub)) return { entries: [], throughOffset: cursor, atHead: false }
    }
    if (!this.#budget.available()) return undefined
    // Reserved before the read, so reads started in one turn cannot all pass the check; what
    // the read did not return is given back (an empty read still costs one: it is a query).
    this.#budget.charge(want)
    const read = await this.#ctx.store.readPartition(this.#host.tenant(), p, cursor, want)
    this.#budget.charge(Math.max(1, read.entries.length) - want)
    return {
      entries: read.entries.map(encodedEntry),
      throughOffset: read.throughOffset,
      atHead: read.entries.length < want,
    }
  }

  #current(sub: Subscription): boolean {
    return this.#host.isReady() && this.#subs.get(sub.id) === sub
  }
}

/**
 * A token bucket of entries read, which may go below zero by one read (a read reserves what it
 * asks for): a connection reads while its balance is positive.
 */
class CatchUpBudget {
  readonly #perS: number
  readonly #burst: number
  readonly #now: () => number
  #balance: number
  #at: number

  constructor(perS: number, burst: number, now: () => number) {
    this.#perS = perS
    this.#burst = burst
    this.#now = now
    this.#balance = burst
    this.#at = now()
  }

  available(): boolean {
    this.#refill()
    return this.#balance > 0
  }

  charge(entries: number): void {
    this.#refill()
    this.#balance -= entries
  }

  /** How long until the balance is positive again, in ms (at least 1). */
  waitMs(): number {
    this.#refill()
    return Math.max(1, Math.ceil(((1 - this.#balance) * 1000) / this.#perS))
  }

  #refill(): void {
    const now = this.#now()
    this.#balance = Math.min(this.#burst, this.#balance + ((now - this.#at) * this.#perS) / 1000)
    this.#at = now
  }
}

/** A frame with a wrong field: the connection closes with `bad_message`. */
export class BadMessage extends Error {}

export function safeInt(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new BadMessage(`${name} must be a non-negative integer`)
  }
  return value
}

function cursorsOf(sub: Subscription): Record<number, number> {
  const out: Record<number, number> = {}
  sub.cursors.forEach((offset, p) => {
    if (offset > 0) out[p] = offset
  })
  return out
}

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
 *    entries and `pageBytesMax` bytes (one bigger entry goes alone). The relay's own catch-up
 *    never trips the slow-consumer cap: a catch-up page (snapshots, or entries before live) goes
 *    out only while the socket's unsent bytes leave room for a whole frame (`FRAME_BYTES_MAX`)
 *    under `bufferedBytesMax`, else the subscription looks again after `CATCH_UP_DRAIN_POLL_MS`
 *    on its one timer (a reader on a slow link catches up at its link's pace; one that never
 *    reads is ended by the heartbeat). A live subscription whose socket's unsent bytes pass
 *    `bufferedBytesMax` is closed as a slow consumer: it cannot keep up with the log.
 * 5. Reads of the log (catch-up, or a live subscription outside the tails) are charged to the
 *    connection: its subscriptions share one budget of `catchUpEntriesPerS` entries per second
 *    (burst `catchUpEntriesBurst`). With the budget spent, a subscription waits on one timer of
 *    its own, which a replacing `subscribe` or the close clears, so re-subscribing in a loop
 *    costs the log no more than the budget and holds no growing queue of waits.
 * 6. Bootstrap (messages.ts invariants 6–7): a subscription with `bootstrap` first sends
 *    `snapshots` pages (each one page of credit, at most `SNAPSHOTS_PAGE_MAX` snapshots and
 *    `pageBytesMax` bytes, one bigger snapshot alone) of the entities in its scope and read
 *    grants under the client's fold keys, less those a `whole` rule asks whole; it remembers
 *    (entity → version) of what it sent, and its `entries` pages then leave out every entry of
 *    those entities at or below that version (cursors pass them). The log below a version never
 *    changes, so snapshot + later entries is the whole entity under concurrent appends. The
 *    memory is dropped once the subscription is live: every left-out entry has an offset at or
 *    below its snapshot's, which was at or below the partition head when read, and live means
 *    the cursors passed every such head.
 * 7. Never a silent gap after retention (`log-retention.ts`): before each read of the log, a
 *    cursor below its partition's first kept offset (less one) fails the connection with
 *    `history_dropped` (close 4410; the client subscribes again with a bootstrap). A bootstrap
 *    may start below it (its snapshots stand for what was dropped: the log drops only entries a
 *    snapshot under the current fold key covers), but fails the same once the mark rose past
 *    what it read when the subscription started (a drop during the bootstrap). A `whole` rule
 *    never leaves out the snapshot of an entity whose history was dropped.
 * 8. A bootstrap's reads cost what it sends, not the history under its snapshots: after the
 *    snapshot pages it reads the partition heads H, then the store's `entitySpans` of its scope
 *    (at most `BOOTSTRAP_SPANS_PAGE` entities a call, one budget entry each), and keeps per
 *    partition the offset ranges that may hold an entry it sends: [snapshot offset + 1, head
 *    offset] of an entity whose head passed the snapshot sent, [first offset, head offset] of
 *    one without a snapshot, cut at H. Below H its cursors jump over every offset outside those
 *    ranges without reading it. No gap: an entry at an offset ≤ H was committed before the spans
 *    were read, so its entity's span (read later) holds it, and an entity's entries after its
 *    snapshot's version lie after the snapshot's offset; at H and past it, reads go on as in
 *    invariant 3. More than `BOOTSTRAP_SPANS_MAX` ranges: none kept, partitions read whole.
 */
import { checkPattern, matchesAny, matchesPattern } from '@ledgerline/core'
import { hasLedgerSnapshots, hasLogRetention } from '@ledgerline/log'
import {
  CREDIT_PAGES_MAX,
  FRAME_BYTES_MAX,
  SCOPE_PATTERNS_MAX,
  SNAPSHOTS_PAGE_MAX,
  SUBSCRIPTIONS_MAX,
} from '@ledgerline/protocol'
import type { BootstrapRequest, ErrorKind, Grants, LedgerSnapshot } from '@ledgerline/protocol'
import { encodedEntry, entryPageBytes } from './fanout-tail.ts'
import type { EncodedEntry } from './fanout-tail.ts'
import { BOOTSTRAP_SPANS_MAX, BOOTSTRAP_SPANS_PAGE, CATCH_UP_DRAIN_POLL_MS } from './limits.ts'
import { encodedSnapshot } from './page-frames.ts'
import type { EncodedSnapshot } from './page-frames.ts'
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
  /** A `snapshots` page of a bootstrap (invariant 6), each snapshot encoded once. */
  sendSnapshots(sub: number, snapshots: readonly EncodedSnapshot[]): void
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
  /** Invariant 6: the bootstrap's snapshot phase, until every page of it is sent. */
  bootstrap: BootstrapPhase | undefined
  /** Invariant 6: entity → version and offset of each snapshot sent; emptied once live. */
  readonly covered: Map<string, { readonly version: number; readonly offset: number }>
  /** Invariant 8: the spans read so far, then the ranges kept; dropped once live. */
  spans: SpansPhase | undefined
  /** Invariant 7: made with a bootstrap (which may start below the first kept offsets). */
  readonly bootstrapped: boolean
  /** Invariant 7: the first kept offsets as the subscription started; `undefined` before. */
  keptAtStart: readonly number[] | undefined
}

interface SpansPhase {
  /** The partition heads H, read before the first spans page. */
  heads: number[] | undefined
  after: string | undefined
  /** Per partition, [first, last] offsets that may hold an entry this bootstrap sends. */
  readonly ranges: [number, number][][]
  count: number
  /** Set once the last page is read. */
  skips: SkipRanges | undefined
}

interface BootstrapPhase {
  readonly request: BootstrapRequest
  /** The store's cursor after the snapshots read so far; `undefined` before the first read. */
  after: string | undefined
  /** Read, not sent yet (a page cut by bytes). */
  pending: LedgerSnapshot[]
  /** The store has no more. */
  exhausted: boolean
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
    const bootstrap = m.bootstrap as BootstrapRequest | undefined
    if (bootstrap !== undefined && this.#ctx.bootstrap !== true) {
      this.#host.sendError(
        'bad_message',
        `subscription ${id}: this relay keeps no snapshots (welcome.snapshots); subscribe without bootstrap`,
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
      bootstrap:
        bootstrap === undefined
          ? undefined
          : { request: bootstrap, after: undefined, pending: [], exhausted: false },
      covered: new Map(),
      bootstrapped: bootstrap !== undefined,
      keptAtStart: undefined,
      spans:
        bootstrap === undefined
          ? undefined
          : {
              heads: undefined,
              after: undefined,
              ranges: Array.from({ length: partitions }, () => []),
              count: 0,
              skips: undefined,
            },
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
      // Invariant 7: the marks before the first snapshot is read.
      const store = this.#ctx.store
      if (sub.keptAtStart === undefined && hasLogRetention(store)) {
        sub.keptAtStart = await store.partitionsFirstKept(this.#host.tenant())
        if (!this.#current(sub)) return
      }
      // Invariant 6: every snapshot page goes before the first entries page.
      if (sub.bootstrap !== undefined && !(await this.#sendSnapshots(sub, sub.bootstrap))) return
      // Invariant 8: what the snapshots sent hold is passed without reading it.
      if (sub.spans !== undefined && !(await this.#readSpans(sub, sub.spans))) return
      while (sub.credit > 0 && this.#current(sub)) {
        if (!this.#room(sub)) return
        const page: EncodedEntry[] = []
        let pageBytes = 0
        let full = false
        let spent = false
        const order = [...sub.dirty.keys()].sort((a, b) => a - b)
        const skips = sub.live ? undefined : sub.spans?.skips
        for (const p of order) {
          if (page.length >= pageMax || full) break
          const seen = sub.dirty.get(p)
          let atHead = false
          // Without skips one read a partition a page; with them, a read a range until full.
          for (;;) {
            let want = pageMax - page.length
            if (want <= 0 || full) break
            if (skips !== undefined) {
              const cursor = sub.cursors[p] ?? 0
              const next = skips.next(p, cursor)
              if (next.cursor > cursor) sub.cursors[p] = next.cursor
              want = Math.min(want, next.span)
            }
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
              // Invariant 6: a snapshot sent holds this entry.
              if (e.version <= (sub.covered.get(e.entity)?.version ?? 0)) continue
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
            atHead = read.atHead
            if (atHead || skips === undefined) break
          }
          if (spent) break
          if (!full && atHead && sub.dirty.get(p) === seen) sub.dirty.delete(p)
        }
        const caughtUp = sub.dirty.size === 0
        if (page.length > 0 || (!sub.live && caughtUp)) {
          const live = sub.live || caughtUp
          sub.credit--
          sub.live = live
          // Invariants 6–7: every left-out entry is behind the cursors now.
          if (live) {
            sub.covered.clear()
            sub.spans = undefined
          }
          this.#host.sendEntries(sub.id, page, cursorsOf(sub), live)
        }
        if (spent) {
          this.#waitForBudget(sub)
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
   * The snapshot phase of a bootstrap (invariant 6): pages while credit lasts. True once the
   * phase is over (entries may follow); false to stop this pump (no credit, or replaced).
   */
  async #sendSnapshots(sub: Subscription, phase: BootstrapPhase): Promise<boolean> {
    const store = this.#ctx.store
    if (!hasLedgerSnapshots(store)) {
      sub.bootstrap = undefined
      return true
    }
    const { pageBytesMax } = this.#ctx.limits
    const max = Math.min(SNAPSHOTS_PAGE_MAX, this.#ctx.limits.pageEntriesMax)
    while (sub.credit > 0) {
      if (!this.#room(sub)) return false
      while (phase.pending.length < max && !phase.exhausted) {
        // Invariant 5 holds here too: a scan that matches little still costs the log.
        if (!this.#budget.available()) {
          this.#waitForBudget(sub)
          return false
        }
        const read = await store.snapshotsInScope(
          this.#host.tenant(),
          sub.scope,
          phase.request.foldKeys,
          phase.after,
          max,
        )
        if (!this.#current(sub)) return false
        this.#budget.charge(Math.max(1, read.snapshots.length))
        phase.after = read.next
        phase.exhausted = read.next === undefined
        for (const s of read.snapshots) {
          const wanted = this.#wanted(sub, phase, s)
          // Invariant 7: a snapshot stands for dropped history, asked whole or not.
          if (wanted === 'whole' && hasLogRetention(store)) {
            if ((await store.firstKept(this.#host.tenant(), s.entity)) > 1) phase.pending.push(s)
            if (!this.#current(sub)) return false
          } else if (wanted === 'yes') phase.pending.push(s)
        }
      }
      if (phase.pending.length === 0) break
      const page: EncodedSnapshot[] = []
      let bytes = 0
      while (page.length < max && phase.pending.length > 0) {
        // Encoded once: the bytes that measure the page are the bytes spliced into its frame.
        const next = encodedSnapshot(phase.pending[0] as LedgerSnapshot)
        const size = next.bytes.byteLength
        if (page.length > 0 && bytes + size > pageBytesMax) break
        page.push(next)
        phase.pending.shift()
        bytes += size
      }
      for (const { snapshot: s } of page)
        sub.covered.set(s.entity, { version: s.version, offset: s.offset })
      sub.credit--
      this.#host.sendSnapshots(sub.id, page)
    }
    if (phase.pending.length > 0 || !phase.exhausted) return false
    sub.bootstrap = undefined
    return true
  }

  /**
   * Invariant 8: the heads, then the spans of the scope, while the budget lasts. True once the
   * ranges are kept (or none can be); false to stop this pump (no budget, or replaced).
   */
  async #readSpans(sub: Subscription, phase: SpansPhase): Promise<boolean> {
    const store = this.#ctx.store
    if (phase.skips !== undefined) return true
    if (!hasLedgerSnapshots(store)) {
      sub.spans = undefined
      return true
    }
    if (phase.heads === undefined) {
      const heads = await store.partitionHeads()
      if (!this.#current(sub)) return false
      phase.heads = heads
    }
    const heads = phase.heads
    for (;;) {
      if (!this.#budget.available()) {
        this.#waitForBudget(sub)
        return false
      }
      const read = await store.entitySpans(
        this.#host.tenant(),
        sub.scope,
        phase.after,
        BOOTSTRAP_SPANS_PAGE,
      )
      if (!this.#current(sub)) return false
      this.#budget.charge(1)
      for (const span of read.spans) {
        // Nothing of an entity outside the read grants is sent.
        if (!matchesAny(this.#host.grants().read, span.entity)) continue
        const covered = sub.covered.get(span.entity)
        if (covered !== undefined && span.version <= covered.version) continue
        const from = covered === undefined ? span.firstOffset : covered.offset + 1
        const to = Math.min(span.lastOffset, heads[span.partition] ?? 0)
        if (from > to) continue
        if (++phase.count > BOOTSTRAP_SPANS_MAX) {
          sub.spans = undefined
          return true
        }
        phase.ranges[span.partition]?.push([from, to])
      }
      phase.after = read.next
      if (read.next === undefined) break
    }
    phase.skips = new SkipRanges(heads, phase.ranges)
    return true
  }

  /** Invariant 5: wait for the budget on this subscription's one timer, then pump again. */
  /**
   * Invariant 4: true when the socket has room for the subscription's next page. A live one
   * over the cap is cut; a catch-up one waits for the socket to drain, on its one timer.
   */
  #room(sub: Subscription): boolean {
    const buffered = this.#host.bufferedAmount()
    const max = this.#ctx.limits.bufferedBytesMax
    if (sub.live) {
      if (buffered <= max) return true
      this.#host.fail('slow_consumer', `more than ${max} bytes queued`)
      return false
    }
    if (buffered <= Math.max(0, max - FRAME_BYTES_MAX)) return true
    sub.retry = this.#timers.set(() => {
      sub.retry = undefined
      if (this.#current(sub)) void this.#pump(sub)
    }, CATCH_UP_DRAIN_POLL_MS)
    return false
  }

  #waitForBudget(sub: Subscription): void {
    sub.retry = this.#timers.set(() => {
      sub.retry = undefined
      if (this.#current(sub)) void this.#pump(sub)
    }, this.#budget.waitMs())
  }

  /** In the scope and read grants (else `no`), and not asked whole by a horizon rule (invariant 6). */
  #wanted(sub: Subscription, phase: BootstrapPhase, s: LedgerSnapshot): 'yes' | 'no' | 'whole' {
    if (!matchesAny(sub.scope, s.entity) || !matchesAny(this.#host.grants().read, s.entity)) {
      return 'no'
    }
    const whole = phase.request.whole.some(
      (rule) => s.committedAt >= rule.since && matchesPattern(rule.pattern, s.entity),
    )
    return whole ? 'whole' : 'yes'
  }

  /**
   * Invariant 7: true when the log no longer holds what lies past the subscription's cursor in
   * `p` (the connection is failed with `history_dropped`).
   */
  async #dropped(sub: Subscription, p: number): Promise<boolean> {
    const store = this.#ctx.store
    if (!hasLogRetention(store)) return false
    const kept = (await store.partitionsFirstKept(this.#host.tenant()))[p] ?? 1
    const cursor = sub.cursors[p] ?? 0
    if (cursor >= kept - 1) return false
    if (sub.bootstrapped && kept <= (sub.keptAtStart?.[p] ?? 1)) return false
    if (!this.#current(sub)) return true
    this.#host.fail(
      'history_dropped',
      `subscription ${sub.id}: partition ${p} is kept from offset ${kept}, the cursor is at ${cursor}: subscribe with a bootstrap`,
    )
    return true
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
    // Invariant 7, after the read: a drop committed before it is seen in the marks.
    if (await this.#dropped(sub, p)) return { entries: [], throughOffset: cursor, atHead: false }
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

/**
 * Invariant 8's ranges, merged and sorted per partition: where a cursor below the heads may
 * jump to, and how many offsets from there may hold an entry to send.
 */
class SkipRanges {
  readonly #heads: readonly number[]
  readonly #ranges: [number, number][][]
  /** Per partition, the first range that may still lie ahead of the cursor. */
  readonly #at: number[]

  constructor(heads: readonly number[], ranges: [number, number][][]) {
    this.#heads = heads
    this.#ranges = ranges.map(merged)
    this.#at = ranges.map(() => 0)
  }

  /**
   * From `cursor` in partition `p`: the cursor past every offset no range holds (never past
   * the head H), and the offsets of the range it then stands before (`Infinity` at H or past).
   */
  next(p: number, cursor: number): { cursor: number; span: number } {
    const head = this.#heads[p] ?? 0
    if (cursor >= head) return { cursor, span: Infinity }
    const ranges = this.#ranges[p] ?? []
    let i = this.#at[p] ?? 0
    while (i < ranges.length && (ranges[i] as [number, number])[1] <= cursor) i++
    this.#at[p] = i
    const range = ranges[i]
    if (range === undefined) return { cursor: head, span: Infinity }
    const at = Math.max(cursor, range[0] - 1)
    return { cursor: at, span: range[1] - at }
  }
}

/** Ranges sorted by their first offset, overlapping or adjacent ones joined. */
function merged(ranges: [number, number][]): [number, number][] {
  const out: [number, number][] = []
  for (const [from, to] of [...ranges].sort((a, b) => a[0] - b[0])) {
    const last = out.at(-1)
    if (last !== undefined && from <= last[1] + 1) last[1] = Math.max(last[1], to)
    else out.push([from, to])
  }
  return out
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

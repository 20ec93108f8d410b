/**
 * The relay's shared tails: per (tenant, partition), the newest committed entries, read from the
 * log once per commit and served to every live subscription whose cursor is inside the tail, so
 * fan-out to N subscriptions costs one read and one decode per entry instead of N. Each entry's
 * MessagePack bytes are made once too (`encodedEntry`), and pages are spliced from them
 * (`encodeEntriesPage`).
 *
 * Terms: a tail *covers* (base, through]: it holds every entry of its tenant with an offset in
 * that range (offsets are of the partition, so other tenants' entries are gaps). A *fill* reads
 * the log after `through`. The tail's *fill count* is the partition's commit count when its last
 * fill started.
 *
 *   store.onCommit ─► tails.onCommit (commit count of each partition + 1) ─► sessions.onCommit
 *   pump of a live subscription ─► tails.read(cursor) ─► fresh? serve : fill (one at a time) ─► serve
 *                                                   └─► cursor outside the tail: undefined (read the log)
 *
 * Invariants:
 * 1. Tails are filled only from the log (`readPartition`), never from this relay's own appends,
 *    so commits of other relays (PostgreSQL) are served the same way; every commit report, of
 *    any relay, bumps the commit count before any session hears of it.
 * 2. A read is served only from a fill that started at or after the commit count the caller saw
 *    when it asked: everything the caller was told about is in the tail (`readPartition` would
 *    give the same answer, invariant 3 of `session.ts`).
 * 3. What `read` returns is what `readPartition(tenant, partition, cursor, limit)` would return
 *    from the state the fill saw: the tenant's entries after the cursor in offset order, at most
 *    `limit`, with `throughOffset` past them; `atHead` is true only if nothing more was there.
 * 4. One fill per tail at a time; a tail holds at most `tailEntriesMax` entries and, beyond its
 *    newest entry, `TAIL_BYTES_MAX` bytes; at most `TAILS_MAX` tails are kept (least recently
 *    read dropped first).
 * 5. `reset()` forgets every tail: a store hub's mirror whose head office log changed holds
 *    another history, at offsets the old one used (`hub/hub-store.ts` invariant 4). A read that
 *    began before the reset answers `undefined` (the caller reads the log), never from a tail
 *    filled before it.
 */
import type { StoredEntry } from '@ledgerline/core'
import { encodeMessage } from '@ledgerline/protocol'
import type { Message } from '@ledgerline/protocol'
import { TAIL_BYTES_MAX, TAILS_MAX } from './limits.ts'
import { spliceFrame } from './page-frames.ts'
import type { LogStore } from './log-store.ts'

/** An entry with its MessagePack bytes, made at most once. */
export interface EncodedEntry {
  readonly entry: StoredEntry
  bytes: Uint8Array | undefined
}

export interface TailRead {
  readonly entries: readonly EncodedEntry[]
  readonly throughOffset: number
  /** True when the read reached the partition's head as of the fill. */
  readonly atHead: boolean
}

export interface FanoutTails {
  /** Called for every commit report, before the sessions hear of it (invariant 1). */
  onCommit(partitions: readonly number[]): void
  /**
   * The tenant's entries of `partition` after `afterOffset`, at most `limit`, served from the
   * shared tail; `undefined` when the cursor is outside the tail (the caller reads the log).
   */
  read(
    tenant: string,
    partition: number,
    afterOffset: number,
    limit: number,
  ): Promise<TailRead | undefined>
  /** Invariant 5: the log's history was replaced; every tail is dropped. */
  reset(): void
}

/**
 * Makes the shared tails of one relay over its log.
 *
 * @example
 * const tails = createFanoutTails(store, 256)
 * store.onCommit((partitions) => tails.onCommit(partitions))
 * const read = await tails.read('acme', 3, cursor, 100) // undefined: read the log instead
 */
export function createFanoutTails(store: LogStore, tailEntriesMax: number): FanoutTails {
  return new Tails(store, tailEntriesMax)
}

/** Wraps an entry read from the log; its bytes are made when first needed. */
export function encodedEntry(entry: StoredEntry): EncodedEntry {
  return { entry, bytes: undefined }
}

/** The entry's MessagePack bytes as inside a page (the same encoder, made once). */
export function bytesOf(e: EncodedEntry): Uint8Array {
  e.bytes ??= encodeMessage(e.entry as unknown as Message)
  return e.bytes
}

/** Encoded size of one entry inside a page, counted as a page with only that entry. */
export function entryPageBytes(e: EncodedEntry): number {
  return bytesOf(e).byteLength + EMPTY_PAGE_BYTES
}

/**
 * The frame of `{ type: 'entries', sub, entries, cursors, live }`, byte for byte what
 * `encodeMessage` makes of it, spliced from the entries' cached bytes. Like `encodeMessage` it
 * throws `ProtocolError` rather than make a frame the peer would refuse.
 */
export function encodeEntriesPage(
  sub: number,
  entries: readonly EncodedEntry[],
  cursors: Record<number, number>,
  live: boolean,
): Uint8Array {
  return spliceFrame(
    { type: 'entries', sub },
    'entries',
    entries.map(bytesOf),
    { cursors, live },
    () => ({
      type: 'entries',
      sub,
      entries: entries.map((e) => e.entry),
      cursors,
      live,
    }),
  )
}

interface Tail {
  base: number
  through: number
  /** Commit count of the partition when the last fill started; -1 before the first. */
  filledAt: number
  atHead: boolean
  entries: EncodedEntry[]
  filling: Promise<void> | undefined
}

class Tails implements FanoutTails {
  readonly #store: LogStore
  readonly #entriesMax: number
  readonly #commits: number[]
  /** Insertion order is recency of use: the first key is dropped first. */
  readonly #tails = new Map<string, Tail>()
  /** Invariant 5: resets so far; a read that sees it move gives up its tail. */
  #resets = 0

  constructor(store: LogStore, entriesMax: number) {
    this.#store = store
    this.#entriesMax = Math.max(1, entriesMax)
    this.#commits = Array.from({ length: store.partitions }, () => 0)
  }

  onCommit(partitions: readonly number[]): void {
    for (const p of partitions) this.#commits[p] = (this.#commits[p] ?? 0) + 1
  }

  reset(): void {
    this.#tails.clear()
    this.#resets++
  }

  async read(
    tenant: string,
    partition: number,
    afterOffset: number,
    limit: number,
  ): Promise<TailRead | undefined> {
    // Invariant 2: the caller saw at most this many commits of the partition.
    const seen = this.#commits[partition] ?? 0
    const resets = this.#resets
    const tail = this.#tail(tenant, partition, afterOffset)
    for (;;) {
      if (tail.filling !== undefined) {
        await tail.filling
        // Invariant 5: that fill may have read the history the reset replaced.
        if (this.#resets !== resets) return undefined
        continue
      }
      if (afterOffset < tail.base) return undefined
      const fresh = tail.filledAt >= seen && (tail.atHead || afterOffset < tail.through)
      if (fresh) break
      tail.filling = this.#fill(tenant, partition, tail, afterOffset).finally(() => {
        tail.filling = undefined
      })
    }
    if (afterOffset < tail.base || afterOffset > tail.through) return undefined
    return serve(tail, afterOffset, limit)
  }

  #tail(tenant: string, partition: number, afterOffset: number): Tail {
    const key = `${partition}\u0000${tenant}`
    let tail = this.#tails.get(key)
    if (tail !== undefined) {
      this.#tails.delete(key)
    } else {
      tail = {
        base: afterOffset,
        through: afterOffset,
        filledAt: -1,
        atHead: false,
        entries: [],
        filling: undefined,
      }
      while (this.#tails.size >= TAILS_MAX) {
        const oldest = this.#tails.keys().next().value
        if (oldest === undefined) break
        this.#tails.delete(oldest)
      }
    }
    this.#tails.set(key, tail)
    return tail
  }

  async #fill(tenant: string, partition: number, tail: Tail, afterOffset: number): Promise<void> {
    const startedAt = this.#commits[partition] ?? 0
    if (afterOffset > tail.through) {
      // The tail fell behind this cursor (it was not read for a while): start it again here.
      tail.entries = []
      tail.base = afterOffset
      tail.through = afterOffset
    }
    const from = tail.through
    const read = await this.#store.readPartition(tenant, partition, from, this.#entriesMax)
    if (tail.through !== from) return // Cannot happen: fills of a tail run one at a time.
    // Encoded now, once for every subscription it goes to (and so its bytes count below).
    const fresh = read.entries.map(encodedEntry)
    for (const e of fresh) bytesOf(e)
    const entries = tail.entries.concat(fresh)
    let base = tail.base
    let drop = Math.max(0, entries.length - this.#entriesMax)
    // Bytes beyond the newest entry (invariant 4).
    let bytes = 0
    for (let i = entries.length - 2; i >= drop; i--) {
      bytes += entries[i]?.bytes?.byteLength ?? 0
      if (bytes > TAIL_BYTES_MAX) {
        drop = i + 1
        break
      }
    }
    if (drop > 0) base = (entries[drop - 1] as EncodedEntry).entry.offset
    tail.entries = drop > 0 ? entries.slice(drop) : entries
    tail.base = base
    tail.through = Math.max(tail.through, read.throughOffset)
    tail.atHead = read.entries.length < this.#entriesMax
    tail.filledAt = startedAt
  }
}

/** Invariant 3: the tail's answer, as `readPartition` gives it. */
function serve(tail: Tail, afterOffset: number, limit: number): TailRead {
  const all = tail.entries
  // The first entry after the cursor: entries are in offset order.
  let lo = 0
  let hi = all.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if ((all[mid] as EncodedEntry).entry.offset <= afterOffset) lo = mid + 1
    else hi = mid
  }
  const entries = all.slice(lo, lo + limit)
  const last = entries.at(-1)
  if (entries.length >= limit && last !== undefined) {
    return { entries, throughOffset: last.entry.offset, atHead: false }
  }
  return { entries, throughOffset: Math.max(afterOffset, tail.through), atHead: tail.atHead }
}

const EMPTY_PAGE_BYTES = encodeMessage({
  type: 'entries',
  sub: 0,
  entries: [],
  cursors: {},
  live: false,
}).byteLength

/**
 * What the SQLite and PostgreSQL snapshot tables share (`sqlite-snapshots.ts`,
 * `postgres-snapshots.ts`): a row read back as a `LedgerSnapshot`, and the paged scan of
 * `snapshotsInScope` (invariant 4 there: at most `SNAPSHOT_SCAN_ROWS_MAX` rows a call, filtered
 * by fold key and pattern, continued from an opaque cursor of two parts).
 */
import { matchesAny } from '@ledgerline/core'
import type { Data } from '@ledgerline/core'
import type { EntitySpanPage, SnapshotPage } from '@ledgerline/log'
import type { LedgerSnapshot } from '@ledgerline/protocol'
import { Decoder, Encoder } from '@msgpack/msgpack'
import { SNAPSHOT_SCAN_ROWS_MAX } from './limits.ts'

/** The columns both tables give. */
export interface SnapshotRow {
  entity: string
  fold_key: string
  version: number
  partition: number
  offset: number
  committed_at: number
  state: Uint8Array
}

/** The columns both stores' `entitySpans` statements give (bigints may come as text). */
export interface SpanRow {
  entity: string
  partition: number
  version: number | string
  first_offset: number | string
  last_offset: number | string
}

/**
 * One `entitySpans` page of `rows` (a store's read of at most `limit` entities by name): those
 * matching `patterns`, continued after the last row read unless the read came back short.
 */
export function spanPageOf(
  rows: readonly SpanRow[],
  patterns: readonly string[],
  limit: number,
): EntitySpanPage {
  return {
    spans: rows
      .filter((r) => matchesAny(patterns, r.entity))
      .map((r) => ({
        entity: r.entity,
        partition: r.partition,
        version: Number(r.version),
        firstOffset: Number(r.first_offset),
        lastOffset: Number(r.last_offset),
      })),
    next: rows.length < limit ? undefined : rows.at(-1)?.entity,
  }
}

export function snapshotOf(row: SnapshotRow): LedgerSnapshot {
  return {
    entity: row.entity,
    foldKey: row.fold_key,
    version: row.version,
    partition: row.partition,
    offset: row.offset,
    committedAt: row.committed_at,
    state: decodeState(row.state),
  }
}

/** A cursor's two parts (`after` of `snapshotsInScope`, `next` of its page). */
export function cursorParts(after: string | undefined): [string, string] {
  if (after === undefined) return ['', '']
  const i = after.indexOf('\u0000')
  return [after.slice(0, i), after.slice(i + 1)]
}

/**
 * One `snapshotsInScope` call's scan: ask `want()` rows after `cursor`, hand them to `take`,
 * until `want()` is 0; then `page()`.
 *
 * @example
 * const scan = new SnapshotScan(patterns, foldKeys, after, limit, (r) => [r.entity, r.fold_key])
 * while (scan.want() > 0) scan.take(await readRows(scan.cursor, scan.want()))
 * return scan.page()
 */
export class SnapshotScan<R extends SnapshotRow> {
  cursor: [string, string]
  readonly #keys: ReadonlySet<string>
  readonly #patterns: readonly string[]
  readonly #limit: number
  readonly #position: (row: R) => [string, string]
  readonly #out: LedgerSnapshot[] = []
  #scanned = 0
  #asked = 0
  #reads = 0
  #ended = false

  constructor(
    patterns: readonly string[],
    foldKeys: readonly string[],
    after: string | undefined,
    limit: number,
    position: (row: R) => [string, string],
  ) {
    this.cursor = cursorParts(after)
    this.#keys = new Set(foldKeys)
    this.#patterns = patterns
    this.#limit = limit
    this.#position = position
  }

  /**
   * Rows to read next: first just what the page lacks (the common case, every row matching,
   * reads no row it does not return), then four times that (at least 64) while rows of other
   * fold keys or patterns are passed; never past `SNAPSHOT_SCAN_ROWS_MAX` a call.
   */
  want(): number {
    if (this.#ended || this.#out.length >= this.#limit) return 0
    if (this.#scanned >= SNAPSHOT_SCAN_ROWS_MAX) return 0
    const lacking = this.#limit - this.#out.length
    const next = this.#reads++ === 0 ? lacking : Math.max(lacking * 4, 64)
    this.#asked = Math.min(SNAPSHOT_SCAN_ROWS_MAX - this.#scanned, next)
    return this.#asked
  }

  take(rows: readonly R[]): void {
    for (const row of rows) {
      if (this.#out.length >= this.#limit) return
      this.#scanned++
      this.cursor = this.#position(row)
      if (this.#keys.has(row.fold_key) && matchesAny(this.#patterns, row.entity)) {
        this.#out.push(snapshotOf(row))
      }
    }
    // A short read is the table's end; the scan bound (`want`) ends this call only.
    if (rows.length < this.#asked) this.#ended = true
  }

  page(): SnapshotPage {
    const done = this.#ended && this.#out.length < this.#limit
    return {
      snapshots: this.#out,
      next: done ? undefined : `${this.cursor[0]}\u0000${this.cursor[1]}`,
    }
  }
}

const encoder = new Encoder({ ignoreUndefined: true })
const decoder = new Decoder()

/** MessagePack of a state, as both tables keep it. */
export function encodeState(state: Data): Uint8Array {
  return encoder.encode(state)
}

export function decodeState(bytes: Uint8Array): Data {
  return decoder.decode(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)) as Data
}

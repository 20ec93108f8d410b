/**
 * Entries: the immutable records of a ledger.
 *
 * Terms: an *entry* is made by a client (or, for a correction or a CRDT snapshot, by the server
 * log); its `id` is its idempotency key. A *stored entry* is an entry the server log appended: it adds the
 * entity-local `version`, the `partition` and the partition-local `offset`, and `committedAt`.
 *
 * Invariants:
 * 1. `id` is `entryId(clientId, clientSeq)` for client entries,
 *    `correctionId(corrects, rule, index)` for corrections, and `<entry id>~<rule>~<n>` for
 *    other server entries (a CRDT snapshot names the last entry it covers); it never changes.
 * 2. `intent` is `fact` (already happened, always appended) or `request` (asks for a decision).
 * 3. `expect` is only meaningful on requests: append only if the entity's version equals it.
 * 4. `data` is plain data (null, booleans, finite numbers, strings, byte arrays, arrays and plain
 *    objects) so every store and codec keeps it as it is.
 */
import { LedgerError } from './errors.ts'
import { checkTenant, parseEntityName } from './entity-name.ts'
import { checkHlc } from './hlc.ts'
import { isClientId, isEntryId, SERVER_CLIENT_ID } from './ids.ts'
import { CLIENT_SEQ_MAX, DATA_DEPTH_MAX, KIND_LENGTH_MAX, PARTITIONS_MAX } from './limits.ts'

/** Plain data an entry carries. Byte arrays carry CRDT updates. */
export type Data = null | boolean | number | string | Uint8Array | readonly Data[] | DataObject
export interface DataObject {
  readonly [key: string]: Data
}

export type Intent = 'fact' | 'request'

/** `K` narrows `kind` for the entries of typed kinds (`EntryOf` in `kinds.ts`). */
export interface Entry<D = Data, K extends string = string> {
  /** Idempotency key, made by the client: `<clientId>-<clientSeq>`. */
  readonly id: string
  readonly tenant: string
  /** `type/id` */
  readonly entity: string
  /** What happened or is asked, e.g. `stock.moved`. */
  readonly kind: K
  readonly data: D
  readonly intent: Intent
  /** Requests only: append only if the entity's version equals this. */
  readonly expect?: number | undefined
  /**
   * Id of the entry this one compensates for. On a client entry (a refund naming its sale) the
   * log checks it names an entry the client may write; only the log's own corrections are
   * corrections (`isLogCorrection`).
   */
  readonly corrects?: string | undefined
  /**
   * The id this entry had when it was first made, set when restore recovery moves it to another
   * clientId and copied on every later move (never on a new entry, never on the log's own). The
   * log dedupes a moved entry on it and its `recoveryDigest`, so the same sale recovered twice
   * under different numbering lands once.
   */
  readonly origin?: string | undefined
  readonly clientId: string
  /** Gap-free per client, from 1; 0 for corrections made by the server log. */
  readonly clientSeq: number
  /** Hybrid logical clock at append, see `hlc.ts`. */
  readonly hlc: string
  /** The author's wall clock at append, ms since the epoch. */
  readonly occurredAt: number
}

export interface StoredEntry<D = Data> extends Entry<D> {
  /** 1-based, dense per entity. */
  readonly version: number
  readonly partition: number
  /** 1-based, gap-free per partition, in commit order. */
  readonly offset: number
  /** The server log's clock at commit, ms since the epoch. */
  readonly committedAt: number
}

const KIND_RE = /^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$/
const CORRECTION_SUFFIX_RE = /^~[a-z0-9_.-]+~(?:0|[1-9][0-9]*)$/

/**
 * Checks that `value` is a well-formed entry and returns it typed. Throws `LedgerError`
 * (`invalid_entry`, or the kind of the failing part) naming the first bad field.
 *
 * @example
 * validateEntry({ id: `${cid}-1`, tenant: 't', entity: 'stock/a', kind: 'stock.moved',
 *   data: { qty: -1 }, intent: 'fact', clientId: cid, clientSeq: 1, hlc, occurredAt: 0 })
 */
export function validateEntry(value: unknown): Entry {
  if (!isPlainObject(value)) throw invalid('entry', 'must be an object')
  const e = value as Record<string, unknown>
  checkTenant(e.tenant)
  parseEntityName(e.entity)
  checkKind(e.kind)
  checkData(e.data, 'data', 0)
  if (e.intent !== 'fact' && e.intent !== 'request') {
    throw invalid('intent', "must be 'fact' or 'request'")
  }
  if (e.expect !== undefined) {
    if (!isCount(e.expect)) throw invalid('expect', 'must be a non-negative integer version')
    if (e.intent !== 'request') throw invalid('expect', 'is only allowed on requests')
  }
  if (e.corrects !== undefined && !isEntryId(e.corrects)) {
    throw invalid('corrects', 'must be an entry id')
  }
  const isServer = e.clientId === SERVER_CLIENT_ID
  if (e.origin !== undefined) {
    if (!isEntryId(e.origin)) throw invalid('origin', 'must be an entry id')
    if (isServer) throw invalid('origin', 'is only allowed on client entries')
    if (e.origin === e.id) throw invalid('origin', "must be another id than the entry's own")
  }
  if (!isServer && !isClientId(e.clientId))
    throw invalid('clientId', 'must be 32 lowercase hex digits')
  if (isServer) {
    if (e.clientSeq !== 0) throw invalid('clientSeq', 'must be 0 on a correction')
  } else if (!isCount(e.clientSeq) || e.clientSeq < 1 || e.clientSeq > CLIENT_SEQ_MAX) {
    throw invalid('clientSeq', 'must be a positive safe integer')
  }
  if (!isEntryId(e.id)) throw invalid('id', 'must be an entry id')
  if (isServer) {
    // Entries the server log makes derive their id from another entry's: a correction from
    // the entry it corrects (`corrects`), a CRDT snapshot from the last entry it covers.
    if (e.corrects === undefined) {
      if (!e.id.includes('~')) throw invalid('id', "of a server entry must be '<id>~<rule>~<n>'")
    } else {
      const suffix = e.id.startsWith(`${e.corrects as string}~`)
        ? e.id.slice((e.corrects as string).length)
        : ''
      if (!CORRECTION_SUFFIX_RE.test(suffix)) {
        throw invalid('id', "of a correction must be '<corrects>~<rule>~<index>'")
      }
    }
  } else if (e.id !== `${e.clientId as string}-${e.clientSeq as number}`) {
    throw invalid('id', "must be '<clientId>-<clientSeq>'")
  }
  checkHlc(e.hlc)
  if (typeof e.occurredAt !== 'number' || !Number.isFinite(e.occurredAt) || e.occurredAt < 0) {
    throw invalid('occurredAt', 'must be a non-negative number of ms since the epoch')
  }
  return value as unknown as Entry
}

/**
 * Checks an entry and the fields a stored entry adds (version, partition, offset, committedAt).
 *
 * @example
 * validateStoredEntry({ ...entry, version: 1, partition: 3, offset: 17, committedAt: 0 })
 */
export function validateStoredEntry(value: unknown): StoredEntry {
  const e = validateEntry(value) as Entry & Record<string, unknown>
  if (!isCount(e.version) || e.version < 1) throw invalid('version', 'must be a positive integer')
  if (!isCount(e.partition) || e.partition >= PARTITIONS_MAX) {
    throw invalid('partition', `must be an integer in 0..${PARTITIONS_MAX - 1}`)
  }
  if (!isCount(e.offset) || e.offset < 1) throw invalid('offset', 'must be a positive integer')
  if (typeof e.committedAt !== 'number' || !Number.isFinite(e.committedAt)) {
    throw invalid('committedAt', 'must be a number of ms since the epoch')
  }
  return e as unknown as StoredEntry
}

/**
 * Checks an entry kind such as `stock.moved` and returns it.
 *
 * @example
 * checkKind('stock.moved') // 'stock.moved'
 */
export function checkKind(kind: unknown): string {
  if (
    typeof kind !== 'string' ||
    kind.length === 0 ||
    kind.length > KIND_LENGTH_MAX ||
    !KIND_RE.test(kind)
  ) {
    throw invalid(
      'kind',
      `must match ${String(KIND_RE)} and be at most ${KIND_LENGTH_MAX} characters`,
    )
  }
  return kind
}

/**
 * Checks that `value` is plain data (see `Data`) no deeper than `DATA_DEPTH_MAX`.
 * `__proto__`, `constructor` and `prototype` keys are refused: they are a classic way to
 * poison objects that are later merged.
 *
 * @example
 * checkData({ qty: -1, sku: 'espresso-1kg' }) // returned as it is
 */
export function checkData(value: unknown, path = 'data', depth = 0): Data {
  if (depth > DATA_DEPTH_MAX) throw invalid(path, `nests deeper than ${DATA_DEPTH_MAX}`)
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return value
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw invalid(path, 'must be a finite number')
    return value
  }
  if (value instanceof Uint8Array) return value
  if (Array.isArray(value)) {
    // An index loop, not forEach: forEach skips the holes of a sparse array, which are
    // `undefined` and not data.
    for (let i = 0; i < value.length; i++) checkData(value[i], `${path}[${i}]`, depth + 1)
    return value as Data
  }
  if (isPlainObject(value)) {
    for (const key of Object.keys(value)) {
      if (key === '__proto__' || key === 'constructor' || key === 'prototype') {
        throw invalid(`${path}.${key}`, 'is a reserved key')
      }
      checkData((value as Record<string, unknown>)[key], `${path}.${key}`, depth + 1)
    }
    return value as Data
  }
  throw invalid(path, `must be plain data, got ${typeof value}`)
}

/** Orders entries of one client as they were made (for `Array.prototype.sort`). */
export function byClientSeq(a: Entry, b: Entry): number {
  return a.clientSeq - b.clientSeq
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0
}

function isPlainObject(value: unknown): value is object {
  if (typeof value !== 'object' || value === null) return false
  const proto = Object.getPrototypeOf(value) as unknown
  return proto === Object.prototype || proto === null
}

function invalid(field: string, message: string): LedgerError {
  return new LedgerError('invalid_entry', `entry ${field} ${message}`)
}

/**
 * A server log as a stream of records, whatever store holds it: what `migrate-sqlite` reads out
 * of a SQLite log (`sqlite-export.ts`) and writes into PostgreSQL (`postgres-import.ts`), and the
 * digest both sides compute to prove the copy equal.
 *
 * Terms: a *record* is one row of the log in a store-neutral shape (`LogRecord`); a *log digest*
 * (`LogDigest`) sums them up: per partition the count, the head and a digest of its entries,
 * per table the count and a digest of its rows, and a digest of the commit order.
 *
 * Invariants:
 * 1. A stream starts with one `log` record (partitions, identity), then every entry in commit
 *    order (SQLite rowid, PostgreSQL `seq`: corrections are found in that order), then refusals,
 *    deferrals, clients, origins and partition heads, in any order within each kind.
 * 2. Every field of every row is in its record: positions (partition, offset, version), ids,
 *    the `corrects` column, `committedAt`, the body bytes as stored, digests, refusal codes,
 *    reasons and heads, deferrals, clients' high-water marks and subjects, and the index of
 *    origins (which entry carries which moved entry's origin: the planner's lookup of copies,
 *    `append-plan.ts` invariant 12; without it a copy of the log lands a sale moved twice
 *    twice). A copy that keeps every record keeps the log (CRDT snapshots are entries; ledger
 *    snapshots are derived and the relay's snapshot pass makes them again).
 * 3. Two streams have equal summaries (`LogDigest.summary`) exactly when they hold the same rows
 *    and the same commit order of entries (up to SHA-256 collisions); the order of refusals,
 *    deferrals and clients does not count (stores sort text differently).
 */
import { createHash } from 'node:crypto'
import { unreachable } from '@ledgerline/core'
import type { LogIdentity } from '@ledgerline/protocol'

/** One row of a log (invariant 2). */
export type LogRecord =
  | { readonly _tag: 'log'; readonly partitions: number; readonly identity: LogIdentity }
  | {
      readonly _tag: 'entry'
      readonly tenant: string
      readonly partition: number
      readonly offset: number
      readonly id: string
      readonly entity: string
      readonly version: number
      /** The column: set for the log's own corrections only. */
      readonly corrects: string | null
      readonly committedAt: number
      /** The body exactly as stored (MessagePack, or v8 from an older build). */
      readonly body: Uint8Array
      readonly digest: Uint8Array | null
    }
  | {
      readonly _tag: 'refusal'
      readonly tenant: string
      readonly id: string
      readonly code: string
      readonly reason: string
      readonly head: number
      readonly digest: Uint8Array | null
    }
  | {
      readonly _tag: 'deferral'
      readonly tenant: string
      readonly id: string
      readonly code: string
      readonly reason: string
      readonly digest: Uint8Array
    }
  | {
      readonly _tag: 'client'
      readonly tenant: string
      readonly clientId: string
      readonly high: number
      readonly subject: string | null
    }
  | {
      readonly _tag: 'origin'
      readonly tenant: string
      /** The id the moved entry had first. */
      readonly origin: string
      /** The id of the entry in this log that carries it. */
      readonly id: string
    }
  | { readonly _tag: 'partition_head'; readonly partition: number; readonly head: number }

/** Count and digest of a set of rows. */
export interface RowsSummary {
  readonly count: number
  readonly digest: string
}

/** What a log digest says (invariant 3); equal for equal logs, compared with `diffSummaries`. */
export interface LogSummary {
  readonly partitions: number
  readonly identity: LogIdentity | undefined
  /** Per partition: entries, their head, their digest. */
  readonly perPartition: readonly (RowsSummary & { readonly head: number })[]
  readonly commitOrder: string
  readonly refusals: RowsSummary
  readonly deferrals: RowsSummary
  readonly clients: RowsSummary
  readonly origins: RowsSummary
}

export interface LogDigest {
  add(record: LogRecord): void
  summary(): LogSummary
}

/**
 * @example
 * const digest = createLogDigest()
 * for await (const record of exportSqliteLog(file)) digest.add(record)
 * digest.summary().perPartition[0] // { count: 12, head: 12, digest: '9f…' }
 */
export function createLogDigest(): LogDigest {
  let partitions = 0
  let identity: LogIdentity | undefined
  const perPartition = new Map<number, { rows: XorSet; head: number }>()
  const order = createHash('sha256')
  const tables = {
    refusal: new XorSet(),
    deferral: new XorSet(),
    client: new XorSet(),
    origin: new XorSet(),
  }
  const partition = (p: number) => {
    let found = perPartition.get(p)
    if (found === undefined) perPartition.set(p, (found = { rows: new XorSet(), head: 0 }))
    return found
  }
  return {
    add(record) {
      switch (record._tag) {
        case 'log':
          partitions = record.partitions
          identity = record.identity
          return
        case 'entry':
          order.update(`${record.partition}:${record.offset};`)
          partition(record.partition).rows.add([
            record.tenant,
            record.partition,
            record.offset,
            record.id,
            record.entity,
            record.version,
            record.corrects,
            record.committedAt,
            record.body,
            record.digest,
          ])
          return
        case 'refusal':
          tables.refusal.add([
            record.tenant,
            record.id,
            record.code,
            record.reason,
            record.head,
            record.digest,
          ])
          return
        case 'deferral':
          tables.deferral.add([record.tenant, record.id, record.code, record.reason, record.digest])
          return
        case 'client':
          tables.client.add([record.tenant, record.clientId, record.high, record.subject])
          return
        case 'origin':
          tables.origin.add([record.tenant, record.origin, record.id])
          return
        case 'partition_head':
          partition(record.partition).head = record.head
          return
        default:
          unreachable(record)
      }
    },
    summary() {
      const all = Math.max(partitions, ...[...perPartition.keys()].map((p) => p + 1))
      return {
        partitions,
        identity,
        perPartition: Array.from({ length: all }, (_, p) => {
          const found = perPartition.get(p)
          return found === undefined
            ? { count: 0, head: 0, digest: new XorSet().digest() }
            : { count: found.rows.count, head: found.head, digest: found.rows.digest() }
        }),
        commitOrder: order.copy().digest('hex'),
        refusals: tables.refusal.summary(),
        deferrals: tables.deferral.summary(),
        clients: tables.client.summary(),
        origins: tables.origin.summary(),
      }
    },
  }
}

/**
 * Where two summaries differ, one line each ("partition 3: 12 entries, head 12, digest 9f…
 * against …"); empty when the logs are equal.
 *
 * @example
 * diffSummaries(a, a) // []
 */
export function diffSummaries(source: LogSummary, copy: LogSummary): string[] {
  const out: string[] = []
  if (source.partitions !== copy.partitions) {
    out.push(`partitions: ${source.partitions} against ${copy.partitions}`)
  }
  if (JSON.stringify(source.identity) !== JSON.stringify(copy.identity)) {
    out.push(
      `identity: ${JSON.stringify(source.identity)} against ${JSON.stringify(copy.identity)}`,
    )
  }
  const length = Math.max(source.perPartition.length, copy.perPartition.length)
  for (let p = 0; p < length; p++) {
    const a = JSON.stringify(source.perPartition[p])
    const b = JSON.stringify(copy.perPartition[p])
    if (a !== b) out.push(`partition ${p}: ${a} against ${b}`)
  }
  if (source.commitOrder !== copy.commitOrder) out.push('the commit order of entries differs')
  for (const table of ['refusals', 'deferrals', 'clients', 'origins'] as const) {
    const a = JSON.stringify(source[table])
    const b = JSON.stringify(copy[table])
    if (a !== b) out.push(`${table}: ${a} against ${b}`)
  }
  return out
}

// ---------------------------------------------------------------------------------------------

type Field = string | number | null | Uint8Array

/** An order-independent digest of distinct rows: the XOR of each row's SHA-256, and a count. */
class XorSet {
  count = 0
  readonly #acc = Buffer.alloc(32)

  add(fields: readonly Field[]): void {
    const hash = createHash('sha256')
    for (const field of fields) {
      // Tagged and length-prefixed, so no two rows encode alike.
      if (field === null) hash.update('n;')
      else if (typeof field === 'number') hash.update(`i${field};`)
      else if (typeof field === 'string') hash.update(`s${Buffer.byteLength(field)}:${field};`)
      else hash.update(`b${field.byteLength}:`).update(field).update(';')
    }
    const row = hash.digest()
    for (let i = 0; i < 32; i++) this.#acc[i] = (this.#acc[i] as number) ^ (row[i] as number)
    this.count++
  }

  digest(): string {
    return this.#acc.toString('hex')
  }

  summary(): RowsSummary {
    return { count: this.count, digest: this.digest() }
  }
}

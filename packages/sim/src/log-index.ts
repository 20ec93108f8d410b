/**
 * The server log as read back at the end of a product simulation, indexed for the checkers: by
 * entry id, by op tag, by entity, by the entry a correction names; refusals by id. Indexing
 * checks what needs no more than the log itself.
 *
 * Terms as in `history.ts` (op, op tag); a *server entry* is one the log wrote itself
 * (`SERVER_CLIENT_ID`: a correction).
 *
 * Invariants (named checks of `check-tally.ts`):
 * 1. `offsets`: per partition, offsets 1..n (`checkOffsets`), each entry in `partitionOf`'s
 *    partition.
 * 2. `versions`: per entity, versions 1..n in offset order.
 * 3. `ids`: no id is in the log twice; `exactly-once`: every entry a till wrote carries an op
 *    tag (those that do not are counted `untagged`, as unexpected entries).
 */
import { SERVER_CLIENT_ID } from '@ledgerline/core'
import type { StoredEntry } from '@ledgerline/core'
import { checkOffsets } from '@ledgerline/testkit'
import type { Violate } from './check-tally.ts'
import { opOf } from './content.ts'
import type { LogDump } from './relay-node.ts'

export interface LogIndex {
  readonly byId: Map<string, StoredEntry>
  /** A till's entries by op tag (server entries have none). */
  readonly byOp: Map<string, StoredEntry[]>
  /** Each entity's entries in offset order. */
  readonly byEntity: Map<string, StoredEntry[]>
  /** The corrections of each entry, by the id they correct. */
  readonly correctionsOf: Map<string, StoredEntry[]>
  /** The log's refusals: id to code. */
  readonly refusedById: Map<string, string>
  /** Entries in the log. */
  readonly entries: number
  /** Entries of a till without an op tag (invariant 3). */
  readonly untagged: number
}

/**
 * @example
 * const index = indexLog(log, tally.violate)
 * index.byOp.get('till-1:3')
 */
export function indexLog(log: LogDump, violate: Violate): LogIndex {
  let untagged = 0
  const byId = new Map<string, StoredEntry>()
  const byOp = new Map<string, StoredEntry[]>()
  const byEntity = new Map<string, StoredEntry[]>()
  const correctionsOf = new Map<string, StoredEntry[]>()
  let logEntries = 0
  checkOffsets(log.partitions, (message) => violate('offsets', message))
  for (const entries of log.partitions) {
    for (const e of entries) {
      logEntries++
      if (byId.has(e.id)) violate('ids', `${e.id} is in the log twice`)
      byId.set(e.id, e)
      push(byEntity, e.entity, e)
      if (e.clientId === SERVER_CLIENT_ID) {
        if (e.corrects !== undefined) push(correctionsOf, e.corrects, e)
        continue
      }
      const op = opOf(e)
      if (op === undefined) {
        untagged++
        violate('exactly-once', `${e.id} (${e.kind}) carries no op tag`)
      } else push(byOp, op, e)
    }
  }
  for (const [entity, entries] of byEntity) {
    entries.forEach((e, i) => {
      if (e.version !== i + 1) violate('versions', `${entity} has version ${e.version} at ${i + 1}`)
    })
  }
  const refusedById = new Map(log.refusals.map((r) => [r.id, r.code]))
  return { byId, byOp, byEntity, correctionsOf, refusedById, entries: logEntries, untagged }
}

/** Appends `value` to the list under `key`. */
export function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key)
  if (list === undefined) map.set(key, [value])
  else list.push(value)
}

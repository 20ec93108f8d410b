/**
 * Yjs entity types: a CRDT entity whose ledger holds Yjs update bytes and whose state is their
 * merge.
 *
 * Terms: a `yjs.update` entry carries one (coalesced) Yjs update made by a client; a
 * `yjs.snapshot` entry is made by the server log (clientId `server`) and carries the merged
 * state of every entry before it (`{ through, state }`, `through` = the version it covers).
 *
 *   version:  1 update   2 update   3 update   4 snapshot{through:3}   5 update
 *   state:    u1         u1+u2      u1+u2+u3   = snapshot.state        snapshot+u5
 *
 * Invariants:
 * 1. `reduce` is pure and needs no IO: an update merges with `Y.mergeUpdates`, so the state is
 *    one Yjs update equal to the merge of every entry folded so far, whatever their order.
 * 2. A snapshot replaces the state. That is sound because the relay appends a snapshot as a
 *    request with `expect: through`, so it lands at version `through + 1` and covers exactly
 *    the versions before it (see `maybeSnapshot` in `@ledgerline/relay`).
 * 3. Only the server log makes snapshots: `validate` refuses a `yjs.snapshot` from a client,
 *    which could otherwise erase a document by replacing its state.
 * 4. Update bytes are at most `YJS_UPDATE_BYTES_MAX`; anything else is refused by `validate`.
 */
import type { Entry, EntityType } from '@ledgerline/core'
import { defineEntity, SERVER_CLIENT_ID } from '@ledgerline/core'
import * as Y from 'yjs'
import { YJS_UPDATE_BYTES_MAX } from './limits.ts'

/** Kind of an entry that carries a Yjs update made by a client. */
export const YJS_UPDATE = 'yjs.update'
/** Kind of an entry that carries the merged state, made by the server log. */
export const YJS_SNAPSHOT = 'yjs.snapshot'

/** The data of a `yjs.snapshot` entry. */
export interface YjsSnapshotData {
  /** The last version the snapshot covers; the snapshot itself is at `through + 1`. */
  readonly through: number
  /** Every entry up to `through`, merged into one Yjs update. */
  readonly state: Uint8Array
}

/**
 * Declares a Yjs entity type named `type`: its state is the merged Yjs update of its ledger.
 * Put it in the app's schema module beside the ledger entity types.
 *
 * @example
 * const catalog = yjsEntity('catalog')
 * export default defineSchema(stock, order, catalog)
 * // a Y.Doc bound to 'catalog/s7' then lives in the same log, outbox and auth as 'stock/…'
 */
export function yjsEntity(type: string): EntityType<Uint8Array> {
  return defineEntity<Uint8Array>({
    type,
    crdt: 'yjs',
    initial: EMPTY_UPDATE,
    reduce: reduceYjs,
    validate: validateYjs,
  })
}

/**
 * The Yjs state of a snapshot entry's data, or `undefined` when `data` is not one.
 *
 * @example
 * readYjsSnapshot({ through: 3, state }) // state
 */
export function readYjsSnapshot(data: unknown): YjsSnapshotData | undefined {
  if (typeof data !== 'object' || data === null || data instanceof Uint8Array) return undefined
  const { through, state } = data as Record<string, unknown>
  if (!Number.isSafeInteger(through) || (through as number) < 0) return undefined
  if (!(state instanceof Uint8Array)) return undefined
  return { through: through as number, state }
}

/**
 * The Yjs update an entry contributes (an update's bytes, a snapshot's state), or `undefined`
 * for an entry of another kind.
 *
 * @example
 * updateOfEntry(entry) // Uint8Array to pass to Y.applyUpdate
 */
export function updateOfEntry(entry: Entry): Uint8Array | undefined {
  if (entry.kind === YJS_UPDATE) return entry.data instanceof Uint8Array ? entry.data : undefined
  if (entry.kind === YJS_SNAPSHOT) return readYjsSnapshot(entry.data)?.state
  return undefined
}

// The update of an empty document: no structs, empty delete set.
const EMPTY_UPDATE: Uint8Array = Y.encodeStateAsUpdate(new Y.Doc())

function reduceYjs(state: Uint8Array, entry: Entry): Uint8Array {
  if (entry.kind === YJS_SNAPSHOT) return readYjsSnapshot(entry.data)?.state ?? state
  if (entry.kind !== YJS_UPDATE || !(entry.data instanceof Uint8Array)) return state
  return Y.mergeUpdates([state, entry.data])
}

function validateYjs(entry: Entry): true | string {
  if (entry.kind === YJS_UPDATE) {
    if (!(entry.data instanceof Uint8Array)) return 'yjs.update data must be bytes'
    if (entry.data.length > YJS_UPDATE_BYTES_MAX) {
      return `yjs.update is over ${YJS_UPDATE_BYTES_MAX} bytes`
    }
    return true
  }
  if (entry.kind === YJS_SNAPSHOT) {
    if (entry.clientId !== SERVER_CLIENT_ID) return 'only the server log makes yjs.snapshot'
    return readYjsSnapshot(entry.data) === undefined
      ? 'yjs.snapshot needs { through, state }'
      : true
  }
  return `a yjs entity takes ${YJS_UPDATE} entries, not ${entry.kind}`
}

/**
 * Yjs entity types: a CRDT entity whose ledger holds Yjs update bytes and whose state is their
 * merge.
 *
 * Terms: a `yjs.update` entry carries one (coalesced) Yjs update made by a client; a
 * `yjs.snapshot` entry is made by the server log (clientId `server`) and carries the merged
 * state of every entry before it (`{ through, state }`, `through` = the version it covers).
 * An update or a snapshot over one entry travels in *parts* (`yjs.part` entries, and snapshot
 * entries with `{ through, group, part, parts, bytes }`; see `crdt-parts.ts` of
 * `@ledgerline/core`), which the fold joins before it applies them.
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
 *    A part carries at most `CRDT_PART_BYTES_MAX` bytes of its update.
 * 5. The state is the merged update (`Uint8Array`) while no group of parts is open; with one
 *    open, it is `{ base, join }` (`CrdtState`), and `yjsStateUpdate` reads the update either way.
 *    Parts are joined before they are applied, whatever their order, however often folded.
 */
import type { CrdtState, Entry, EntityType } from '@ledgerline/core'
import {
  crdtPartKind,
  crdtStateBase,
  defineEntity,
  readCrdtPart,
  reduceCrdtParts,
  SERVER_CLIENT_ID,
} from '@ledgerline/core'
import * as Y from 'yjs'
import { YJS_UPDATE_BYTES_MAX } from './limits.ts'

/** Kind of an entry that carries a Yjs update made by a client. */
export const YJS_UPDATE = 'yjs.update'
/** Kind of an entry that carries the merged state, made by the server log. */
export const YJS_SNAPSHOT = 'yjs.snapshot'
/** Kind of an entry that carries one part of an update over one entry. */
export const YJS_PART = crdtPartKind('yjs')

/** The state of a Yjs entity: the merged update, with the parts still open (invariant 5). */
export type YjsState = CrdtState<Uint8Array>

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
export function yjsEntity(type: string): EntityType<YjsState> {
  return defineEntity<YjsState>({
    type,
    crdt: 'yjs',
    initial: EMPTY_UPDATE,
    reduce: (state, entry) => reduceCrdtParts(state, entry, 'yjs', reduceYjs),
    validate: validateYjs,
  })
}

/**
 * The merged Yjs update of a state (invariant 5).
 *
 * @example
 * Y.applyUpdate(doc, yjsStateUpdate((await client.load('catalog/s7')).view as YjsState))
 */
export function yjsStateUpdate(state: YjsState): Uint8Array {
  return crdtStateBase(state)
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
  if (entry.kind === YJS_PART) {
    return readCrdtPart(entry, 'yjs') === undefined
      ? 'yjs.part needs { group, part, parts, bytes } within CRDT_PARTS_MAX and CRDT_PART_BYTES_MAX'
      : true
  }
  if (entry.kind === YJS_UPDATE) {
    if (!(entry.data instanceof Uint8Array)) return 'yjs.update data must be bytes'
    if (entry.data.length > YJS_UPDATE_BYTES_MAX) {
      return `yjs.update is over ${YJS_UPDATE_BYTES_MAX} bytes`
    }
    return true
  }
  if (entry.kind === YJS_SNAPSHOT) {
    if (entry.clientId !== SERVER_CLIENT_ID) return 'only the server log makes yjs.snapshot'
    return readYjsSnapshot(entry.data) === undefined && readCrdtPart(entry, 'yjs') === undefined
      ? 'yjs.snapshot needs { through, state } or { through, group, part, parts, bytes }'
      : true
  }
  return `a yjs entity takes ${YJS_UPDATE} and ${YJS_PART} entries, not ${entry.kind}`
}

/**
 * Automerge entity types: a CRDT entity whose ledger holds Automerge change bytes and whose
 * state is all of them, loadable with `Automerge.load`.
 *
 * Terms: an `automerge.update` entry carries one or more local changes of a client,
 * concatenated (the format of `Automerge.saveIncremental`); an `automerge.snapshot` entry is
 * made by the server log (clientId `server`) and carries `{ through, state }`, the state of
 * every entry up to version `through`. Changes or a snapshot over one entry travel in *parts*
 * (`automerge.part` entries, and snapshot entries with `{ through, group, part, parts, bytes }`;
 * see `crdt-parts.ts` of `@ledgerline/core`), which the fold joins before it applies them.
 *
 * Invariants:
 * 1. `reduce` is pure and needs neither IO nor Automerge's WASM: the state is the concatenation
 *    of the entries' bytes, which `Automerge.load` / `loadIncremental` read as one document
 *    (changes it already has are skipped). So the relay can fold and snapshot an Automerge
 *    entity without loading Automerge.
 * 2. A snapshot replaces the state; the relay appends it as a request with `expect: through`,
 *    so it covers exactly the versions before it.
 * 3. Only the server log makes snapshots; `validate` refuses a client's `automerge.snapshot`.
 * 4. Update bytes are at most `AUTOMERGE_UPDATE_BYTES_MAX`; a part's at most
 *    `CRDT_PART_BYTES_MAX`.
 * 5. The state is the bytes (`Uint8Array`) while no group of parts is open; with one open, it
 *    is `{ base, join }` (`CrdtState`), and `automergeStateBytes` reads the bytes either way.
 */
import type { CrdtState, Entry, EntityType } from '@ledgerline/core'
import {
  concatBytes,
  crdtPartKind,
  crdtStateBase,
  defineEntity,
  readCrdtPart,
  reduceCrdtParts,
  SERVER_CLIENT_ID,
} from '@ledgerline/core'
import { AUTOMERGE_UPDATE_BYTES_MAX } from './limits.ts'

/** Kind of an entry that carries Automerge changes made by a client. */
export const AUTOMERGE_UPDATE = 'automerge.update'
/** Kind of an entry that carries the document's state, made by the server log. */
export const AUTOMERGE_SNAPSHOT = 'automerge.snapshot'
/** Kind of an entry that carries one part of changes over one entry. */
export const AUTOMERGE_PART = crdtPartKind('automerge')

/** The state of an Automerge entity: its bytes, with the parts still open (invariant 5). */
export type AutomergeState = CrdtState<Uint8Array>

/** The data of an `automerge.snapshot` entry. */
export interface AutomergeSnapshotData {
  /** The last version the snapshot covers; the snapshot itself is at `through + 1`. */
  readonly through: number
  /** Bytes `Automerge.load` reads as the document at `through`. */
  readonly state: Uint8Array
}

/**
 * Declares an Automerge entity type named `type`; put it in the app's schema module.
 *
 * @example
 * const handover = automergeEntity('handover')
 * export default defineSchema(stock, order, handover)
 */
export function automergeEntity(type: string): EntityType<AutomergeState> {
  return defineEntity<AutomergeState>({
    type,
    crdt: 'automerge',
    initial: new Uint8Array(0),
    reduce: (state, entry) => reduceCrdtParts(state, entry, 'automerge', reduceAutomerge),
    validate: validateAutomerge,
  })
}

/**
 * The bytes of a state, `Automerge.load`-able (invariant 5).
 *
 * @example
 * doc = Automerge.loadIncremental(doc, automergeStateBytes(view as AutomergeState))
 */
export function automergeStateBytes(state: AutomergeState): Uint8Array {
  return crdtStateBase(state)
}

/**
 * The snapshot data in `data`, or `undefined` when it is not one.
 *
 * @example
 * readAutomergeSnapshot({ through: 3, state }) // { through: 3, state }
 */
export function readAutomergeSnapshot(data: unknown): AutomergeSnapshotData | undefined {
  if (typeof data !== 'object' || data === null || data instanceof Uint8Array) return undefined
  const { through, state } = data as Record<string, unknown>
  if (!Number.isSafeInteger(through) || (through as number) < 0) return undefined
  if (!(state instanceof Uint8Array)) return undefined
  return { through: through as number, state }
}

/**
 * The Automerge bytes an entry contributes, or `undefined` for an entry of another kind.
 *
 * @example
 * doc = Automerge.loadIncremental(doc, changesOfEntry(entry) ?? new Uint8Array())
 */
export function changesOfEntry(entry: Entry): Uint8Array | undefined {
  if (entry.kind === AUTOMERGE_UPDATE) {
    return entry.data instanceof Uint8Array ? entry.data : undefined
  }
  if (entry.kind === AUTOMERGE_SNAPSHOT) return readAutomergeSnapshot(entry.data)?.state
  return undefined
}

function reduceAutomerge(state: Uint8Array, entry: Entry): Uint8Array {
  if (entry.kind === AUTOMERGE_SNAPSHOT) return readAutomergeSnapshot(entry.data)?.state ?? state
  if (entry.kind !== AUTOMERGE_UPDATE || !(entry.data instanceof Uint8Array)) return state
  return concat(state, entry.data)
}

function validateAutomerge(entry: Entry): true | string {
  if (entry.kind === AUTOMERGE_PART) {
    return readCrdtPart(entry, 'automerge') === undefined
      ? 'automerge.part needs { group, part, parts, bytes } within CRDT_PARTS_MAX and CRDT_PART_BYTES_MAX'
      : true
  }
  if (entry.kind === AUTOMERGE_UPDATE) {
    if (!(entry.data instanceof Uint8Array)) return 'automerge.update data must be bytes'
    if (entry.data.length > AUTOMERGE_UPDATE_BYTES_MAX) {
      return `automerge.update is over ${AUTOMERGE_UPDATE_BYTES_MAX} bytes`
    }
    return true
  }
  if (entry.kind === AUTOMERGE_SNAPSHOT) {
    if (entry.clientId !== SERVER_CLIENT_ID) return 'only the server log makes automerge.snapshot'
    return readAutomergeSnapshot(entry.data) === undefined &&
      readCrdtPart(entry, 'automerge') === undefined
      ? 'automerge.snapshot needs { through, state } or { through, group, part, parts, bytes }'
      : true
  }
  return `an automerge entity takes ${AUTOMERGE_UPDATE} and ${AUTOMERGE_PART} entries, not ${entry.kind}`
}

/** Concatenates byte arrays (Automerge reads concatenated chunks as one document). */
export function concat(...parts: readonly Uint8Array[]): Uint8Array {
  return concatBytes(parts)
}

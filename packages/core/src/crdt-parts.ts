/**
 * CRDT updates and snapshots larger than one entry, in parts: how a writer splits them and how a
 * fold joins them before they are applied. Pure; every writer (the `@ledgerline/yjs` and
 * `@ledgerline/automerge` bindings, the relay's y-websocket endpoint, the relay's snapshot writer)
 * and every reader (the adapters' entity types, the relay's rooms and snapshots) uses this file.
 *
 * Terms: a *group* is one update (or one snapshot state) cut into `parts` consecutive byte
 * ranges of at most `CRDT_PART_BYTES_MAX`; each range is one entry, a *part*:
 *
 *   update part    kind `<crdt>.part`      data { group, part, parts, bytes }
 *   snapshot part  kind `<crdt>.snapshot`  data { through, group, part, parts, bytes }
 *   (whole ones:   `<crdt>.update` data = bytes; `<crdt>.snapshot` data { through, state })
 *
 * A group is *open* in a fold from its first part seen until its last part arrives (then it is
 * *joined*: the fold applies one whole entry made of the parts' bytes) or until it is dropped.
 *
 *   entries ─► joinCrdtEntry ─► whole entries ─► the entity type's reduce of whole entries
 *
 * Invariants:
 * 1. Joining is keyed by (writer clientId, group, snapshot or not): no writer can add parts to
 *    another writer's group. A part seen twice counts once, so folding every entry twice gives
 *    the same state (CRDT merges are idempotent).
 * 2. Parts may arrive interleaved with other entries, in any order. Whole entries pass through
 *    at once; a joined update is emitted when its last missing part arrives.
 * 3. A joined snapshot replaces the state, so it is emitted *followed by every update emitted
 *    since its first part was seen*: a reduce that replaces its state on a snapshot loses
 *    nothing that arrived while the snapshot's parts were being written.
 * 4. Bounded: at most `CRDT_OPEN_GROUPS_MAX` open groups (the oldest is dropped), each for at
 *    most `CRDT_OPEN_GROUP_ENTRIES_MAX` entries and `CRDT_OPEN_GROUP_BYTES_MAX` bytes. A dropped
 *    group is a writer that never finished; every fold of the same entries drops it alike.
 * 5. `joinCrdtEntry` never mutates its input: the state it returns is new when it changed, so
 *    a fold may keep earlier states (snapshots, caches).
 */
import type { Data, Entry } from './entry.ts'
import {
  CRDT_GROUP_LENGTH_MAX,
  CRDT_OPEN_GROUP_BYTES_MAX,
  CRDT_OPEN_GROUP_ENTRIES_MAX,
  CRDT_OPEN_GROUPS_MAX,
  CRDT_PART_BYTES_MAX,
  CRDT_PARTS_MAX,
} from './limits.ts'
import type { CrdtKind } from './schema.ts'

/** The data of one part (a snapshot part has `through` too). */
export interface CrdtPartData {
  readonly group: string
  /** 0-based index of this part. */
  readonly part: number
  /** How many parts the group has. */
  readonly parts: number
  readonly bytes: Uint8Array
}

/** A part read from an entry. */
export interface CrdtPart extends CrdtPartData {
  /** A snapshot's part (its group joins into a snapshot), else an update's. */
  readonly snapshot: boolean
  /** Snapshots only: the last version the snapshot covers. */
  readonly through: number
}

/** What a fold holds of groups not yet joined; `undefined` when none is open. */
export interface CrdtJoin {
  readonly open: readonly OpenGroup[]
}

/** A CRDT entity's state when parts are involved: the state so far and its open groups. */
export interface CrdtStateWithParts<B> {
  readonly base: B
  readonly join: CrdtJoin
}

/** The state of a CRDT entity type that joins parts: `B` itself while no group is open. */
export type CrdtState<B> = B | CrdtStateWithParts<B>

/** Kind of an update part of a `crdt` entity. */
export function crdtPartKind(crdt: CrdtKind): string {
  return `${crdt}.part`
}

/**
 * Cuts `bytes` into ranges of at most `partBytesMax` (views of `bytes`, no copy).
 *
 * @example
 * splitCrdtBytes(new Uint8Array(130_000)).map((b) => b.length) // [61440, 61440, 7120]
 */
export function splitCrdtBytes(
  bytes: Uint8Array,
  partBytesMax: number = CRDT_PART_BYTES_MAX,
): Uint8Array[] {
  const size = Math.max(1, Math.min(partBytesMax, CRDT_PART_BYTES_MAX))
  const out: Uint8Array[] = []
  for (let at = 0; at < bytes.length; at += size) out.push(bytes.subarray(at, at + size))
  return out.length === 0 ? [bytes] : out
}

/**
 * The data of the parts of one update (`group` unique for its writer). Undefined when the update
 * needs more than `CRDT_PARTS_MAX` parts.
 *
 * @example
 * crdtUpdateParts(big, 'c0ffee…') // [{ group, part: 0, parts: 3, bytes }, …]
 */
export function crdtUpdateParts(
  bytes: Uint8Array,
  group: string,
  partBytesMax?: number,
): CrdtPartData[] | undefined {
  const chunks = splitCrdtBytes(bytes, partBytesMax)
  if (chunks.length > CRDT_PARTS_MAX) return undefined
  return chunks.map((chunk, part) => ({ group, part, parts: chunks.length, bytes: chunk }))
}

/**
 * What a writer appends for one update of a `crdt` entity: one `<crdt>.update` entry when it fits
 * in `wholeBytesMax`, else its parts (`<crdt>.part`), in order, to append together (one outbox
 * write, so they reach the log in order). Undefined when the update is over
 * `CRDT_UPDATE_BYTES_MAX`. `group` must be unique for the writer (random, or its first entry id).
 *
 * @example
 * crdtUpdateDrafts('yjs', update, 'f00d…') // [{ kind: 'yjs.part', data: { group, part: 0, … } }, …]
 */
export function crdtUpdateDrafts(
  crdt: CrdtKind,
  bytes: Uint8Array,
  group: string,
  wholeBytesMax: number = CRDT_PART_BYTES_MAX,
): { readonly kind: string; readonly data: Data }[] | undefined {
  if (bytes.length <= Math.min(wholeBytesMax, CRDT_PART_BYTES_MAX)) {
    return [{ kind: `${crdt}.update`, data: bytes }]
  }
  const parts = crdtUpdateParts(bytes, group, wholeBytesMax)
  return parts?.map((part) => ({ kind: crdtPartKind(crdt), data: { ...part } }))
}

/** What `appendCrdtDrafts` needs of a client: the writing half of the adapters' `CrdtClient`. */
export interface CrdtAppender {
  append(
    entity: string,
    kind: string,
    data: Data,
    options?: { readonly intent?: 'fact' | undefined },
  ): Promise<unknown>
  /** Appends in order in one durable write, all or none. */
  appendMany?:
    | ((
        drafts: readonly {
          readonly entity: string
          readonly kind: string
          readonly data: Data
          readonly intent?: 'fact' | undefined
        }[],
      ) => Promise<unknown>)
    | undefined
}

/**
 * Appends the drafts of one update (`crdtUpdateDrafts`) through an injected client: in one
 * `appendMany` when it has one (never half a group in the outbox), else one by one in order.
 *
 * @example
 * await appendCrdtDrafts(client, 'catalog/s7', crdtUpdateDrafts('yjs', update, group) ?? [])
 */
export async function appendCrdtDrafts(
  client: CrdtAppender,
  entity: string,
  drafts: readonly { readonly kind: string; readonly data: Data }[],
): Promise<void> {
  if (drafts.length > 1 && client.appendMany !== undefined) {
    await client.appendMany(drafts.map((d) => ({ entity, kind: d.kind, data: d.data })))
    return
  }
  for (const d of drafts) await client.append(entity, d.kind, d.data, { intent: 'fact' })
}

/**
 * The part an entry carries, or `undefined` when it is not a (well-formed) part of a `crdt`
 * entity. A malformed part is not a part: reducers ignore it like any unknown entry.
 *
 * @example
 * readCrdtPart(entry, 'yjs') // { group, part: 1, parts: 3, bytes, snapshot: false, through: 0 }
 */
export function readCrdtPart(entry: Entry, crdt: CrdtKind): CrdtPart | undefined {
  const snapshot = entry.kind === `${crdt}.snapshot`
  if (!snapshot && entry.kind !== crdtPartKind(crdt)) return undefined
  const data = entry.data as Data
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return undefined
  if (data instanceof Uint8Array) return undefined
  const { group, part, parts, bytes, through } = data as Record<string, Data>
  if (typeof group !== 'string' || group.length === 0 || group.length > CRDT_GROUP_LENGTH_MAX) {
    return undefined
  }
  if (!isInt(parts) || parts < 1 || parts > CRDT_PARTS_MAX) return undefined
  if (!isInt(part) || part < 0 || part >= parts) return undefined
  if (!(bytes instanceof Uint8Array) || bytes.length > CRDT_PART_BYTES_MAX) return undefined
  if (snapshot && (!isInt(through) || through < 0)) return undefined
  return { group, part, parts, bytes, snapshot, through: snapshot ? (through as number) : 0 }
}

/** True for an entry `readCrdtPart` reads as a part. */
export function isCrdtPart(entry: Entry, crdt: CrdtKind): boolean {
  return readCrdtPart(entry, crdt) !== undefined
}

/**
 * One step of joining: the whole entries `entry` makes available, and the new join state
 * (invariants 1-5). A whole entry comes back as it is; a part comes back as nothing until its
 * group is complete, then as one whole entry (plus, for a snapshot, the updates since).
 *
 * @example
 * let join: CrdtJoin | undefined
 * for (const e of entries) { const step = joinCrdtEntry(join, e, 'yjs'); join = step.join; … }
 */
export function joinCrdtEntry(
  join: CrdtJoin | undefined,
  entry: Entry,
  crdt: CrdtKind,
): { readonly join: CrdtJoin | undefined; readonly whole: readonly Entry[] } {
  const part = readCrdtPart(entry, crdt)
  if (part === undefined) {
    if (join === undefined) return { join, whole: [entry] }
    // Invariant 3: snapshots being joined remember the updates since; every group ages.
    const isUpdate = entry.kind === `${crdt}.update`
    const open = join.open.map((g) => age(g, g.snapshot && isUpdate ? entry : undefined))
    return { join: bounded(open), whole: [entry] }
  }
  const key = `${part.snapshot ? 's' : 'u'}\0${entry.clientId}\0${part.group}`
  const existing = join?.open.find((g) => g.key === key)
  const others = (join?.open ?? []).filter((g) => g !== existing)
  const aged = others.map((g) => age(g, undefined))
  let group: OpenGroup
  if (existing === undefined || existing.parts !== part.parts) {
    group = {
      key,
      snapshot: part.snapshot,
      through: part.through,
      parts: part.parts,
      got: Array.from({ length: part.parts }, () => null),
      missing: part.parts,
      bytes: 0,
      entries: 0,
      since: [],
    }
  } else {
    group = age(existing, undefined)
  }
  if (group.got[part.part] === null) {
    const got = [...group.got]
    got[part.part] = part.bytes
    group = { ...group, got, missing: group.missing - 1, bytes: group.bytes + part.bytes.length }
  }
  if (group.missing > 0) return { join: bounded([...aged, group]), whole: [] }
  const joined = concatBytes(group.got as readonly Uint8Array[])
  const whole: Entry = part.snapshot
    ? { ...entry, kind: `${crdt}.snapshot`, data: { through: group.through, state: joined } }
    : { ...entry, kind: `${crdt}.update`, data: joined }
  // Joined updates are updates since for the snapshots still open.
  const rest = part.snapshot ? aged : aged.map((g) => (g.snapshot ? remember(g, whole) : g))
  return { join: bounded(rest), whole: [whole, ...group.since] }
}

/**
 * Reduces one entry into a CRDT state that joins parts: `reduceWhole` sees whole entries only.
 * While no group is open the state is `B` itself, so an entity type that never meets a part
 * keeps the state it always had.
 *
 * @example
 * reduce: (s, e) => reduceCrdtParts(s, e, 'yjs', (b, w) => Y.mergeUpdates([b, w.data]))
 */
export function reduceCrdtParts<B>(
  state: CrdtState<B>,
  entry: Entry,
  crdt: CrdtKind,
  reduceWhole: (base: B, entry: Entry) => B,
): CrdtState<B> {
  const withParts = isStateWithParts(state) ? state : undefined
  const base = withParts === undefined ? (state as B) : withParts.base
  if (withParts === undefined && !isCrdtPart(entry, crdt)) return reduceWhole(base, entry)
  const step = joinCrdtEntry(withParts?.join, entry, crdt)
  let next = base
  for (const whole of step.whole) next = reduceWhole(next, whole)
  return step.join === undefined ? next : { base: next, join: step.join }
}

/**
 * The state without its open groups: what the entity holds now.
 *
 * @example
 * crdtStateBase(view) // the merged Yjs update of a yjs entity
 */
export function crdtStateBase<B>(state: CrdtState<B>): B {
  return isStateWithParts(state) ? state.base : state
}

/** True when a join state holds an open update group (an update not yet complete). */
export function hasOpenUpdate(join: CrdtJoin | undefined): boolean {
  return join?.open.some((g) => !g.snapshot) ?? false
}

/**
 * A joiner with its own state, for readers that go through a ledger once (the relay's rooms and
 * snapshots): `add` returns the whole entries an entry makes available.
 *
 * @example
 * const joiner = createCrdtJoiner('yjs')
 * for (const e of entries) for (const w of joiner.add(e)) apply(w)
 */
export function createCrdtJoiner(crdt: CrdtKind): {
  add(entry: Entry): readonly Entry[]
  /** True while an update group is open (a snapshot now would miss it). */
  hasOpenUpdate(): boolean
} {
  let join: CrdtJoin | undefined
  return {
    add(entry) {
      const step = joinCrdtEntry(join, entry, crdt)
      join = step.join
      return step.whole
    },
    hasOpenUpdate: () => hasOpenUpdate(join),
  }
}

/**
 * Joins byte arrays into one.
 *
 * @example
 * concatBytes([new Uint8Array([1]), new Uint8Array([2, 3])]) // Uint8Array [1, 2, 3]
 */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let length = 0
  for (const p of parts) length += p.length
  const out = new Uint8Array(length)
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}

// ---------------------------------------------------------------------------------------------

interface OpenGroup {
  readonly key: string
  readonly snapshot: boolean
  readonly through: number
  readonly parts: number
  /** Bytes of each part, `null` while missing. */
  readonly got: readonly (Uint8Array | null)[]
  readonly missing: number
  /** Bytes held: parts and updates since. */
  readonly bytes: number
  /** Entries folded since the group opened. */
  readonly entries: number
  /** Snapshots only: whole updates emitted since the group opened (invariant 3). */
  readonly since: readonly Entry[]
}

function age(group: OpenGroup, update: Entry | undefined): OpenGroup {
  const aged = { ...group, entries: group.entries + 1 }
  return update === undefined ? aged : remember(aged, update)
}

function remember(group: OpenGroup, update: Entry): OpenGroup {
  const size = update.data instanceof Uint8Array ? update.data.length : 0
  return { ...group, since: [...group.since, update], bytes: group.bytes + size }
}

// Invariant 4: drop what never finished, oldest first.
function bounded(open: readonly OpenGroup[]): CrdtJoin | undefined {
  const kept = open.filter(
    (g) => g.entries <= CRDT_OPEN_GROUP_ENTRIES_MAX && g.bytes <= CRDT_OPEN_GROUP_BYTES_MAX,
  )
  const recent = kept.length > CRDT_OPEN_GROUPS_MAX ? kept.slice(-CRDT_OPEN_GROUPS_MAX) : kept
  return recent.length === 0 ? undefined : { open: recent }
}

function isStateWithParts<B>(state: CrdtState<B>): state is CrdtStateWithParts<B> {
  if (typeof state !== 'object' || state === null || state instanceof Uint8Array) return false
  const s = state as { base?: unknown; join?: { open?: unknown } }
  return 'base' in s && Array.isArray(s.join?.open)
}

function isInt(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value)
}

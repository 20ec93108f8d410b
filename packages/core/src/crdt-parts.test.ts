// Goal: the invariants of crdt-parts.ts — parts join into the update they were cut from, in any
// order and interleaved with other entries, once however often they are folded; a snapshot in
// parts loses none of the updates that arrived while it was written; open groups are bounded.
// Method: a toy CRDT whose state is the sorted set of byte strings it merged (merge is set union,
// so order and duplicates do not matter, as for Yjs and Automerge), and seeded shuffles.
import { describe, expect, it } from 'vitest'
import {
  concatBytes,
  createCrdtJoiner,
  crdtPartKind,
  crdtStateBase,
  crdtUpdateParts,
  readCrdtPart,
  reduceCrdtParts,
  splitCrdtBytes,
} from './crdt-parts.ts'
import type { CrdtState } from './crdt-parts.ts'
import type { Data, Entry } from './entry.ts'
import { CRDT_OPEN_GROUP_ENTRIES_MAX, CRDT_PART_BYTES_MAX, CRDT_PARTS_MAX } from './limits.ts'

const A = 'a1'.repeat(16)
const B = 'b2'.repeat(16)

describe('crdt parts', () => {
  it('cuts bytes into parts of at most CRDT_PART_BYTES_MAX and joins them back', () => {
    const bytes = pattern(3 * CRDT_PART_BYTES_MAX + 17)
    const chunks = splitCrdtBytes(bytes)
    expect(chunks.map((c) => c.length)).toEqual([
      CRDT_PART_BYTES_MAX,
      CRDT_PART_BYTES_MAX,
      CRDT_PART_BYTES_MAX,
      17,
    ])
    expect(concatBytes(chunks)).toEqual(bytes)
    expect(crdtUpdateParts(pattern(CRDT_PARTS_MAX * CRDT_PART_BYTES_MAX + 1), 'g')).toBeUndefined()
  })

  it('joins an update from parts in any order, interleaved, folded twice', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const big = pattern(2 * CRDT_PART_BYTES_MAX + 100, seed)
      const parts = partsOf(A, 10, big, 'g1')
      const others = [update(B, 1, 'x'), update(B, 2, 'y')]
      const entries = shuffle([...parts, ...others], seed)
      const once = foldAll(entries)
      const twice = foldAll([...entries, ...shuffle(entries, seed + 100)])
      expect(crdtStateBase(once)).toEqual(set(['x', 'y', hex(big)]))
      expect(crdtStateBase(twice)).toEqual(crdtStateBase(once))
      expect(once).toBeInstanceOf(Array) // nothing left open: the state is the base itself
    }
  })

  it("never joins parts of another writer's group", () => {
    const big = pattern(2 * CRDT_PART_BYTES_MAX, 3)
    const [p0, p1] = partsOf(A, 1, big, 'g')
    const forged = part(B, 9, { group: 'g', part: 1, parts: 2, bytes: new Uint8Array([1]) })
    const state = foldAll([p0 as Entry, forged])
    expect(crdtStateBase(state)).toEqual(set([]))
    expect(crdtStateBase(foldAll([p0 as Entry, forged, p1 as Entry]))).toEqual(set([hex(big)]))
  })

  it('a snapshot in parts keeps the updates that arrived while its parts were written', () => {
    // Method: the snapshot covers x; y lands between its parts; a reader folding from the
    // snapshot's first part (as a catch-up does) and one folding from the start agree.
    const x = update(A, 1, 'x')
    const state = new TextEncoder().encode(JSON.stringify(['x']))
    const chunks = splitCrdtBytes(state, 4)
    const snap = chunks.map((bytes, i) =>
      snapshotPart(i, { through: 1, group: 'snap', part: i, parts: chunks.length, bytes }),
    )
    const y = update(B, 1, 'y')
    const ledger = [x, snap[0] as Entry, y, ...snap.slice(1)]
    expect(crdtStateBase(foldAll(ledger))).toEqual(set(['x', 'y']))
    expect(crdtStateBase(foldAll(ledger.slice(1)))).toEqual(set(['x', 'y']))
  })

  it('drops a group whose writer never finished it, after CRDT_OPEN_GROUP_ENTRIES_MAX entries', () => {
    const [p0] = partsOf(A, 1, pattern(2 * CRDT_PART_BYTES_MAX), 'never')
    let state: CrdtState<string[]> = foldAll([p0 as Entry])
    expect(state).not.toBeInstanceOf(Array)
    for (let i = 0; i <= CRDT_OPEN_GROUP_ENTRIES_MAX; i++) {
      state = reduceCrdtParts(state, update(B, i + 1, `u${i}`), 'yjs', merge)
    }
    expect(state).toBeInstanceOf(Array)
  })

  it('reads no malformed part as a part', () => {
    const good = { group: 'g', part: 0, parts: 2, bytes: new Uint8Array([1]) }
    expect(readCrdtPart(part(A, 1, good), 'yjs')).toMatchObject({ part: 0, parts: 2 })
    for (const bad of [
      { ...good, part: 2 },
      { ...good, parts: CRDT_PARTS_MAX + 1 },
      { ...good, group: '' },
      { ...good, bytes: 'no' },
      { ...good, bytes: new Uint8Array(CRDT_PART_BYTES_MAX + 1) },
    ]) {
      expect(readCrdtPart(part(A, 1, bad as Data), 'yjs')).toBeUndefined()
    }
    // A snapshot part needs `through`.
    expect(readCrdtPart({ ...part(A, 1, good), kind: 'yjs.snapshot' }, 'yjs')).toBeUndefined()
  })

  it('the stateful joiner says when an update is open', () => {
    const joiner = createCrdtJoiner('yjs')
    const [p0, p1] = partsOf(A, 1, pattern(2 * CRDT_PART_BYTES_MAX), 'g')
    expect(joiner.add(p0 as Entry)).toEqual([])
    expect(joiner.hasOpenUpdate()).toBe(true)
    expect(joiner.add(p1 as Entry).map((e) => e.kind)).toEqual(['yjs.update'])
    expect(joiner.hasOpenUpdate()).toBe(false)
  })
})

// The toy CRDT: state = sorted set of hex strings; an update's data is its bytes.
function merge(state: string[], entry: Entry): string[] {
  if (entry.kind === 'yjs.snapshot') {
    const s = (entry.data as { state?: Uint8Array }).state
    return s === undefined ? state : (JSON.parse(new TextDecoder().decode(s)) as string[])
  }
  if (entry.kind !== 'yjs.update' || !(entry.data instanceof Uint8Array)) return state
  const text = isText(entry.data) ? new TextDecoder().decode(entry.data) : hex(entry.data)
  return set([...state, text])
}

function foldAll(entries: readonly Entry[]): CrdtState<string[]> {
  let state: CrdtState<string[]> = []
  for (const e of entries) state = reduceCrdtParts(state, e, 'yjs', merge)
  return state
}

function set(items: string[]): string[] {
  return [...new Set(items)].sort()
}

function entry(clientId: string, seq: number, kind: string, data: Data): Entry {
  return {
    id: `${clientId}-${seq}`,
    tenant: 't',
    entity: 'doc/d',
    kind,
    data,
    intent: 'fact',
    clientId,
    clientSeq: seq,
    hlc: `${'0'.repeat(15)}:00000:${clientId}`,
    occurredAt: 0,
  }
}

function update(clientId: string, seq: number, text: string): Entry {
  return entry(clientId, seq, 'yjs.update', new TextEncoder().encode(text))
}

function part(clientId: string, seq: number, data: Data): Entry {
  return entry(clientId, seq, crdtPartKind('yjs'), data)
}

function snapshotPart(i: number, data: Data): Entry {
  return { ...entry('server', 0, 'yjs.snapshot', data), id: `x~snapshot~${i}` }
}

function partsOf(clientId: string, from: number, bytes: Uint8Array, group: string): Entry[] {
  return (crdtUpdateParts(bytes, group) ?? []).map((d, i) =>
    part(clientId, from + i, d as unknown as Data),
  )
}

function pattern(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length)
  let a = seed >>> 0
  for (let i = 0; i < length; i++) {
    a = (Math.imul(a, 1_103_515_245) + 12_345) >>> 0
    out[i] = 128 + ((a >>> 16) % 128) // never printable ASCII: `isText` tells them apart
  }
  return out
}

function isText(bytes: Uint8Array): boolean {
  return bytes.every((b) => b < 128)
}

function hex(bytes: Uint8Array): string {
  let out = ''
  for (let i = 0; i < bytes.length; i += 997) out += (bytes[i] as number).toString(16)
  return `${bytes.length}:${out}`
}

function shuffle<T>(items: readonly T[], seed: number): T[] {
  const out = [...items]
  let a = seed >>> 0
  for (let i = out.length - 1; i > 0; i--) {
    a = (Math.imul(a, 1_103_515_245) + 12_345) >>> 0
    const j = (a >>> 16) % (i + 1)
    ;[out[i], out[j]] = [out[j] as T, out[i] as T]
  }
  return out
}

// Goal: `@ledgerline/automerge` passes the CRDT adapter contract (convergence under reordering,
// duplicates, drops, offline periods and reloads; idempotence; catch-up from a snapshot) and
// coalesces local changes. Method: the testkit's seeded in-memory Ledgerline
// with fixed seeds (printed in each test's name). Importing the package's Node entry loads the
// WASM; the adapter itself imports only `/slim`.
import * as A from '@automerge/automerge'
import type { Data, Entry } from '@ledgerline/core'
import type { ContractRandom } from '@ledgerline/testkit'
import { runCrdtAdapterContract } from '@ledgerline/testkit'
import { describe, expect, it } from 'vitest'
import {
  AUTOMERGE_PART,
  automergeEntity,
  automergeStateBytes,
  AUTOMERGE_UPDATE,
} from './automerge-entity.ts'
import type { AutomergeState } from './automerge-entity.ts'
import { bindAutomerge } from './bind-automerge.ts'
import type { AutomergeHandle } from './bind-automerge.ts'

interface TestDoc {
  text?: string
  map?: Record<string, number>
  list?: string[]
}

runCrdtAdapterContract<AutomergeHandle<TestDoc>, AutomergeState>('automerge', {
  entityType: automergeEntity('doc'),
  bind: (client, entity, random) =>
    bindAutomerge<TestDoc>(client, entity, { actor: actorOf(random), coalesceMs: 5 }),
  edit: (handle, random) => handle.change((d) => randomEdit(d, random)),
  toJSON: (handle) => A.toJS(handle.doc()),
  version: (handle) => [...A.getHeads(handle.doc())].sort().join(','),
  stateToJSON: (state) => A.toJS(A.load<TestDoc>(automergeStateBytes(state))),
  flush: (handle) => handle.flush(),
  destroy: (handle) => handle.destroy(),
})

describe('bindAutomerge', () => {
  // Goal: many quick changes become few entries that, loaded, give the same document.
  // Method: 100 changes through a fake client that records appends.
  it('coalesces local changes and notifies subscribers', async () => {
    const appended: Uint8Array[] = []
    const client = {
      append: async (_entity: string, kind: string, data: Data) => {
        expect(kind).toBe(AUTOMERGE_UPDATE)
        appended.push(data as Uint8Array)
        return undefined
      },
      load: async () => ({ view: undefined }),
      subscribe: () => () => {},
    }
    const handle = await bindAutomerge<{ n?: number }>(client, 'doc/a', { coalesceMs: 20 })
    const seen: number[] = []
    handle.subscribe((d) => seen.push(d.n ?? -1))
    for (let i = 0; i < 100; i++) handle.change((d) => void (d.n = i))
    handle.change(() => {}) // changes nothing: no entry, no notification
    expect(seen.length).toBe(100)
    await handle.flush()
    expect(appended.length).toBe(1)
    const copy = A.loadIncremental(A.init<{ n?: number }>(), appended[0] as Uint8Array)
    expect(copy.n).toBe(99)
    await handle.destroy()
  })
})

describe('bindAutomerge with changes over one entry', () => {
  // Goal: bind-automerge.ts invariant 5 — changes over AUTOMERGE_UPDATE_BYTES_MAX are appended
  // as parts in one appendMany, and a view folded from them in any order (twice, even) joins
  // them before the document sees them. On the commit before (6ad10b3) they were refused
  // `too_large` and stayed in the document only. Method: a fake client that keeps the entries
  // it is handed; a second binding whose view folds them shuffled and doubled.
  it('appends a 300 KB change as parts, in one write, and another binding joins them', async () => {
    const log: Entry[] = []
    let writes = 0
    const type = automergeEntity('doc')
    const client = (view: () => unknown) => ({
      append: async (entity: string, kind: string, data: Data) => {
        writes++
        log.push(entryOf(log.length + 1, entity, kind, data))
        return undefined
      },
      appendMany: async (drafts: readonly { entity: string; kind: string; data: Data }[]) => {
        writes++
        for (const d of drafts) log.push(entryOf(log.length + 1, d.entity, d.kind, d.data))
        return undefined
      },
      load: async () => ({ view: view() }),
      subscribe: () => () => {},
    })
    const errors: string[] = []
    const writer = await bindAutomerge<{ text?: string }>(
      client(() => undefined),
      'doc/big',
      {
        onError: (e) => errors.push(e.kind),
      },
    )
    const text = 'abcdefghijklmnopqrstuvwxyz'.repeat(12_000)
    writer.change((d) => void (d.text = text))
    await writer.flush()
    expect(errors).toEqual([])
    expect(writes).toBe(1)
    expect(log.length).toBeGreaterThan(1)
    expect(log.every((e) => e.kind === AUTOMERGE_PART)).toBe(true)
    const shuffled = [...log].reverse()
    const folded = [...shuffled, ...log].reduce((s, e) => type.reduce(s, e), type.initial)
    const reader = await bindAutomerge<{ text?: string }>(
      client(() => folded),
      'doc/big',
    )
    expect(reader.doc().text).toBe(text)
    await writer.destroy()
    await reader.destroy()
  })
})

function entryOf(seq: number, entity: string, kind: string, data: Data): Entry {
  const clientId = 'ab'.repeat(16)
  return {
    id: `${clientId}-${seq}`,
    tenant: 't',
    entity,
    kind,
    data,
    intent: 'fact',
    clientId,
    clientSeq: seq,
    hlc: `${String(seq).padStart(15, '0')}:00000:${clientId}`,
    occurredAt: seq,
  }
}

function actorOf(random: ContractRandom): string {
  let hex = ''
  for (let i = 0; i < 32; i++) hex += random.int(0, 15).toString(16)
  return hex
}

function randomEdit(d: TestDoc, random: ContractRandom): void {
  const roll = random.int(0, 5)
  if (roll <= 1) {
    if (d.text === undefined) d.text = ''
    const at = random.int(0, d.text.length)
    A.splice(
      d,
      ['text'],
      at,
      0,
      String.fromCharCode(97 + random.int(0, 25)).repeat(random.int(1, 4)),
    )
  } else if (roll === 2 && d.text !== undefined && d.text.length > 0) {
    const at = random.int(0, d.text.length - 1)
    A.splice(d, ['text'], at, Math.min(random.int(1, 3), d.text.length - at))
  } else if (roll === 3) {
    if (d.map === undefined) d.map = {}
    d.map[`k${random.int(0, 5)}`] = random.int(0, 1000)
  } else if (roll === 4 && d.list !== undefined && d.list.length > 0) {
    d.list.splice(random.int(0, d.list.length - 1), 1)
  } else {
    if (d.list === undefined) d.list = []
    d.list.splice(random.int(0, d.list.length), 0, `i${random.int(0, 99)}`)
  }
}

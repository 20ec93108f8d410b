// Goal: `@ledgerline/yjs` passes the CRDT adapter contract (convergence under reordering,
// duplicates, drops, offline periods and reloads; idempotence; catch-up from a snapshot), and
// its coalescing keeps to its bounds. Method: the testkit's seeded in-memory Ledgerline, with
// fixed seeds (printed in each test's name), and a counting fake client for the bounds.
import type { Data } from '@ledgerline/core'
import type { ContractRandom } from '@ledgerline/testkit'
import { runCrdtAdapterContract } from '@ledgerline/testkit'
import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { bindYDoc } from './bind-ydoc.ts'
import type { YDocBinding } from './bind-ydoc.ts'
import { YJS_UPDATE_BYTES_MAX } from './limits.ts'
import { yjsEntity, yjsStateUpdate, YJS_UPDATE } from './yjs-entity.ts'
import type { YjsState } from './yjs-entity.ts'

runCrdtAdapterContract<YDocBinding, YjsState>('yjs', {
  entityType: yjsEntity('doc'),
  async bind(client, entity, random) {
    const doc = new Y.Doc()
    // A seeded client id keeps runs reproducible; Yjs needs it unique per live doc.
    doc.clientID = random.int(1, 2 ** 31 - 1)
    return bindYDoc(client, entity, { doc, coalesceMs: 5 })
  },
  edit: (binding, random) => randomEdit(binding.doc, random),
  toJSON: (binding) => docJSON(binding.doc),
  version: (binding) => canonicalStateVector(binding.doc),
  stateToJSON(state) {
    const doc = new Y.Doc()
    Y.applyUpdate(doc, yjsStateUpdate(state))
    return docJSON(doc)
  },
  flush: (binding) => binding.flush(),
  destroy: (binding) => binding.destroy(),
})

describe('bindYDoc coalescing', () => {
  // Goal: typing appends few entries, within the delay, and none over the byte bound.
  // Method: 200 single-character edits through a fake client that records appends.
  it('coalesces local updates within coalesceMs and bytesMax', async () => {
    const appended: Uint8Array[] = []
    const client = {
      append: async (_entity: string, kind: string, data: Data) => {
        expect(kind).toBe(YJS_UPDATE)
        appended.push(data as Uint8Array)
        return undefined
      },
      load: async () => ({ view: undefined }),
      subscribe: () => () => {},
    }
    const binding = await bindYDoc(client, 'doc/a', { coalesceMs: 20, bytesMax: 512 })
    const text = binding.doc.getText('t')
    for (let i = 0; i < 200; i++) text.insert(i, 'x')
    expect(appended.length).toBeLessThan(10)
    await new Promise((resolve) => setTimeout(resolve, 40))
    expect(appended.length).toBeGreaterThan(0)
    for (const u of appended) expect(u.length).toBeLessThanOrEqual(YJS_UPDATE_BYTES_MAX)
    const copy = new Y.Doc()
    for (const u of appended) Y.applyUpdate(copy, u)
    expect(copy.getText('t').toString()).toBe('x'.repeat(200))
    await binding.destroy()
  })

  // Goal: a failing append loses nothing. Method: the first append throws; a flush retries.
  it('keeps the update when an append fails and retries on flush', async () => {
    let fail = true
    const appended: Uint8Array[] = []
    const errors: string[] = []
    const client = {
      append: async (_e: string, _k: string, data: Data) => {
        if (fail) throw new Error('quota')
        appended.push(data as Uint8Array)
        return undefined
      },
      load: async () => ({ view: undefined }),
      subscribe: () => () => {},
    }
    const binding = await bindYDoc(client, 'doc/a', { onError: (e) => errors.push(e.kind) })
    binding.doc.getMap('m').set('k', 1)
    await binding.flush()
    expect(errors).toEqual(['append_failed'])
    fail = false
    await binding.flush()
    const copy = new Y.Doc()
    for (const u of appended) Y.applyUpdate(copy, u)
    expect(copy.getMap('m').get('k')).toBe(1)
    await binding.destroy()
  })
})

function randomEdit(doc: Y.Doc, random: ContractRandom): void {
  const text = doc.getText('text')
  const map = doc.getMap<number>('map')
  const list = doc.getArray<string>('list')
  const roll = random.int(0, 5)
  if (roll === 0 || roll === 1) {
    text.insert(
      random.int(0, text.length),
      String.fromCharCode(97 + random.int(0, 25)).repeat(random.int(1, 4)),
    )
  } else if (roll === 2 && text.length > 0) {
    const at = random.int(0, text.length - 1)
    text.delete(at, Math.min(random.int(1, 3), text.length - at))
  } else if (roll === 3) {
    map.set(`k${random.int(0, 5)}`, random.int(0, 1000))
  } else if (roll === 4 && list.length > 0) {
    list.delete(random.int(0, list.length - 1), 1)
  } else {
    list.insert(random.int(0, list.length), [`i${random.int(0, 99)}`])
  }
}

// `Y.Doc#toJSON` lists only the shared types a doc has already asked for, so name them.
function docJSON(doc: Y.Doc): unknown {
  return {
    text: doc.getText('text').toString(),
    map: doc.getMap('map').toJSON(),
    list: doc.getArray('list').toJSON(),
  }
}

function canonicalStateVector(doc: Y.Doc): string {
  const sv = Y.decodeStateVector(Y.encodeStateVector(doc))
  return [...sv.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([client, clock]) => `${client}:${clock}`)
    .join(',')
}

// Goal: the entity cache hands out one stable EntityState per entity until it changes, folds
// only what is stored after what it already folded, folds from version 1 again on a gap, shows
// this tab's appends at once, loads one entity once at a time, writes a snapshot after
// SNAPSHOT_ENTRIES_MIN entries keyed by the fold version (with the source of reduce beside it),
// warns once per type when a snapshot's source differs from reduce's, folds everything again
// after a reset, keeps at most `entitiesMax` entities, and refuses unknown types and bad
// patterns with typed errors.
// Method: a client store stand-in whose loads the test scripts, and the test schema.
import { describe, expect, it } from 'vitest'
import type { StoredEntry } from '@ledgerline/core'
import { entry, OTHER, stored } from '../test-support/entries.ts'
import { schema } from '../test-support/schema.ts'
import { settle } from '../test-support/manual-scheduler.ts'
import type { ClientStore, EntityBase, EntityLoad, SnapshotRecord } from './client-store.ts'
import type { ClientWarning } from './client-api.ts'
import { createEntityCache } from './entity-cache.ts'
import type { ClientError } from './errors.ts'
import { SNAPSHOT_ENTRIES_MIN } from './limits.ts'
import { reduceSource } from './snapshot-keys.ts'

const moved = (version: number, qty = 1): StoredEntry => ({
  ...stored(entry(OTHER, version), version, 0, version),
  data: { qty },
})

function setup(ledger: StoredEntry[] = []) {
  const calls: (EntityBase | null | undefined)[] = []
  const snapshots: SnapshotRecord[] = []
  let gate: Promise<void> | undefined
  const store: Pick<ClientStore, 'loadEntity' | 'putSnapshot'> = {
    async loadEntity(entity, _key, base) {
      calls.push(base)
      await gate
      const from = base?.version ?? 0
      const load: EntityLoad = {
        snapshot: base ?? undefined,
        snapshotSource: undefined,
        stored: ledger.filter((e) => e.entity === entity && e.version > from),
        lastChunk: ledger.length === 0 ? undefined : ledger.length,
        pending: [],
        acked: new Set(),
      }
      return load
    },
    async putSnapshot(s) {
      snapshots.push(s)
    },
  }
  const cache = createEntityCache({ schema, clientStore: Promise.resolve(store), entitiesMax: 2 })
  return {
    cache,
    calls,
    snapshots,
    ledger,
    hold: () => {
      let open = () => {}
      gate = new Promise((r) => (open = r))
      return () => {
        gate = undefined
        open()
      }
    },
  }
}

const EMPTY_LOAD: EntityLoad = {
  snapshot: undefined,
  snapshotSource: undefined,
  stored: [],
  lastChunk: undefined,
  pending: [],
  acked: new Set(),
}

describe('entity cache', () => {
  it('hands out a placeholder, then one stable state per change, and tells listeners', async () => {
    const t = setup([moved(1, 2), moved(2, 3)])
    const heard: string[] = []
    t.cache.subscribe('stock/*', (e) => heard.push(`pattern ${e}`))
    const stop = t.cache.subscribe('stock/a', (e) => heard.push(`entity ${e}`))
    const placeholder = t.cache.get<{ onHand: number }>('stock/a')
    expect(placeholder).toMatchObject({ loaded: false, version: 0, view: { onHand: 0 } })
    const loaded = await t.cache.load<{ onHand: number }>('stock/a')
    expect(loaded).toMatchObject({
      loaded: true,
      version: 2,
      view: { onHand: 5 },
      confirmed: { onHand: 5 },
    })
    expect(t.cache.get('stock/a')).toBe(loaded)
    expect(heard).toEqual(['entity stock/a', 'pattern stock/a'])
    // Refolds read only what is after the base, and change nothing when nothing changed.
    t.cache.changed('stock/a')
    await settle()
    expect(t.calls.at(-1)).toMatchObject({ version: 2 })
    expect(t.cache.get('stock/a')).toBe(loaded)
    t.ledger.push(moved(3, -1))
    t.cache.changed('stock/a')
    await settle()
    expect(t.cache.get('stock/a')).toMatchObject({ version: 3, view: { onHand: 4 } })
    stop()
  })

  it('folds from version 1 again when what is stored does not follow what it folded', async () => {
    // A client store whose history was replaced under the cache: after the cached version 2 it holds
    // version 4 (version 3 is not where the cache's base says), and from scratch 1 to 4.
    const full = [moved(1), moved(2), moved(3, 5), moved(4, 5)]
    const asked: string[] = []
    let first = true
    const store: Pick<ClientStore, 'loadEntity' | 'putSnapshot'> = {
      async loadEntity(_entity, _key, base) {
        asked.push(
          base === null ? 'scratch' : base === undefined ? 'snapshot' : `after ${base.version}`,
        )
        const list = first ? full.slice(0, 2) : base === null ? full : full.slice(3)
        first = false
        return {
          snapshot: base ?? undefined,
          snapshotSource: undefined,
          stored: list,
          lastChunk: 1,
          pending: [],
          acked: new Set(),
        }
      },
      putSnapshot: async () => {},
    }
    const cache = createEntityCache({ schema, clientStore: Promise.resolve(store) })
    expect((await cache.load('stock/a')).version).toBe(2)
    cache.changed('stock/a')
    await settle()
    expect(asked).toEqual(['snapshot', 'after 2', 'scratch'])
    expect(cache.get('stock/a')).toMatchObject({ version: 4, confirmed: { onHand: 12 } })
  })

  it('shows this tab’s appends at once, without reading them back', async () => {
    const t = setup([moved(1, 5)])
    await t.cache.load('stock/a')
    const before = t.calls.length
    const mine = { ...entry('a'.repeat(32), 1), data: { qty: -2 } }
    t.cache.addPending([mine])
    expect(t.calls.length).toBe(before)
    expect(t.cache.get('stock/a')).toMatchObject({ view: { onHand: 3 }, confirmed: { onHand: 5 } })
    expect(t.cache.get('stock/a').pending.map((e) => e.id)).toEqual([mine.id])
  })

  it('shows this tab’s appends at once while a load is in flight, and keeps them after it', async () => {
    const t = setup([moved(1, 5)])
    await t.cache.load('stock/a')
    const release = t.hold()
    t.cache.changed('stock/a') // a refresh is in flight; it read the store before the append
    await settle()
    const before = t.calls.length
    const mine = { ...entry('a'.repeat(32), 1), data: { qty: -2 } }
    t.cache.addPending([mine])
    expect(t.cache.get('stock/a')).toMatchObject({ view: { onHand: 3 }, confirmed: { onHand: 5 } })
    release()
    await settle()
    // The load that was in flight answered without the entry: the view keeps it, and nothing
    // was read again for it.
    expect(t.cache.get('stock/a')).toMatchObject({ view: { onHand: 3 }, loaded: true })
    expect(t.cache.get('stock/a').pending.map((e) => e.id)).toEqual([mine.id])
    expect(t.calls.length).toBe(before)
  })

  it('adopts a load read inside the append’s write for an entity not loaded yet', async () => {
    const t = setup([moved(1, 5)])
    const mine = { ...entry('a'.repeat(32), 1), data: { qty: -2 } }
    expect(t.cache.needsLoad('stock/a')).toBe(true)
    const primed = t.cache.prime('stock/a', {
      snapshot: undefined,
      snapshotSource: undefined,
      stored: [moved(1, 5)],
      lastChunk: 1,
      pending: [mine],
      acked: new Set(),
    })
    expect(primed).toBe(true)
    expect(t.calls.length).toBe(0)
    expect(t.cache.needsLoad('stock/a')).toBe(false)
    expect(t.cache.get('stock/a')).toMatchObject({ loaded: true, version: 1, view: { onHand: 3 } })
    // A loaded entity is not primed again (its load may be older than what is cached).
    expect(t.cache.prime('stock/a', { ...EMPTY_LOAD })).toBe(false)
  })

  it('folds a stored page that follows what it folded without reading it back, else loads', async () => {
    const t = setup([moved(1, 5)])
    await t.cache.load('stock/a')
    const mine = { ...entry('a'.repeat(32), 1), data: { qty: -2 } }
    t.cache.addPending([mine])
    const before = t.calls.length
    // Version 2 is this tab's entry received back: confirmed now, pending no more.
    const back = { ...stored(mine, 2, 0, 2), data: { qty: -2 } }
    t.cache.stored(['stock/a'], [{ n: 2, entries: [back, moved(3, 1)] }], new Set([mine.id]))
    expect(t.calls.length).toBe(before)
    expect(t.cache.get('stock/a')).toMatchObject({
      version: 3,
      confirmed: { onHand: 4 },
      pending: [],
    })
    // A page that does not follow (version 5 after 3) is read back from the store instead.
    t.ledger.push(moved(2, -2), moved(3, 1), moved(4, 1), moved(5, 1))
    t.cache.stored(['stock/a'], [{ n: 3, entries: [moved(5, 1)] }], new Set())
    await settle()
    expect(t.calls.length).toBe(before + 1)
    expect(t.cache.get('stock/a')).toMatchObject({ version: 5, confirmed: { onHand: 6 } })
  })

  it('loads an entity once at a time, and again after a change during the load', async () => {
    const t = setup([moved(1)])
    const release = t.hold()
    t.cache.get('stock/a')
    t.cache.changed('stock/a')
    t.cache.changed('stock/a')
    await settle()
    expect(t.calls.length).toBe(1)
    release()
    await t.cache.load('stock/a')
    expect(t.calls.length).toBe(2)
  })

  it('writes a snapshot after SNAPSHOT_ENTRIES_MIN folded entries', async () => {
    const t = setup(Array.from({ length: SNAPSHOT_ENTRIES_MIN }, (_, i) => moved(i + 1)))
    await t.cache.load('stock/a')
    await settle()
    expect(t.snapshots.map((s) => [s.entity, s.version, s.state])).toEqual([
      ['stock/a', SNAPSHOT_ENTRIES_MIN, { onHand: SNAPSHOT_ENTRIES_MIN }],
    ])
    expect(t.snapshots[0]?.typeKey).toBe('stock@1')
    expect(t.snapshots[0]?.source).toBe(reduceSource('stock', schema.typeOf('stock/a').reduce))
  })

  it('warns once per entity type when a snapshot of the same version has another reduce source', async () => {
    // Issue 12 case 6: the version keys the snapshot; the source only warns.
    const warnings: ClientWarning[] = []
    const keys: string[] = []
    const store: Pick<ClientStore, 'loadEntity' | 'putSnapshot'> = {
      async loadEntity(_entity, key, base) {
        keys.push(key)
        return {
          snapshot: base ?? { through: 1, version: 1, state: { onHand: 7 } },
          snapshotSource: base === undefined ? 'stock:0:0' : undefined,
          stored: [],
          lastChunk: 1,
          pending: [],
          acked: new Set(),
        }
      },
      async putSnapshot() {},
    }
    const cache = createEntityCache({
      schema,
      clientStore: Promise.resolve(store),
      onWarning: (w) => warnings.push(w),
    })
    expect((await cache.load('stock/a')).confirmed).toEqual({ onHand: 7 })
    await cache.load('stock/b')
    expect(keys).toEqual(['stock@1', 'stock@1'])
    expect(warnings.map((w) => [w.kind, w.type])).toEqual([['reduce_changed', 'stock']])
    expect(warnings[0]?.message).toMatch(/stock.*version/)
  })

  it('folds every cached entity from the client store alone after a reset', async () => {
    // A changed server log: confirmed history was dropped and comes again, from version 1.
    const t = setup([moved(1, 2), moved(2, 3)])
    const before = await t.cache.load<{ onHand: number }>('stock/a')
    expect(before.version).toBe(2)
    t.ledger.splice(0, t.ledger.length, moved(1, 10))
    t.cache.reset()
    await settle()
    expect(t.calls.at(-1)).toBeUndefined() // no base: from the snapshot, else version 1
    expect(t.cache.get('stock/a')).toMatchObject({ version: 1, confirmed: { onHand: 10 } })
    expect(t.cache.get('stock/a')).not.toBe(before)
  })

  it('keeps at most entitiesMax entities, the least recently read without a listener going first', async () => {
    const t = setup()
    const a = t.cache.get('stock/a')
    t.cache.subscribe('stock/b', () => {})
    t.cache.get('stock/c')
    expect(t.cache.entities().sort()).toEqual(['stock/b', 'stock/c'])
    expect(t.cache.get('stock/a')).not.toBe(a)
  })

  it('refuses an unknown entity type and a bad pattern with typed errors', () => {
    const t = setup()
    expect(() => t.cache.get('nope/a')).toThrow(expect.objectContaining({ kind: 'unknown_type' }))
    let error: ClientError | undefined
    try {
      t.cache.subscribe('not a pattern', () => {})
    } catch (e) {
      error = e as ClientError
    }
    expect(error?.kind).toBe('invalid')
  })
})

// Goal: the decisions of the sync loop's writes that both client stores share: which outbox
// records an ack deletes and what it keeps (never on an id_conflict or a deferral), how pages
// become chunks and a staged record, and which corrections join the feed.
// Method: the pure functions on hand-made entries; no storage.
import { describe, expect, it } from 'vitest'
import {
  ackItem,
  appendedResult,
  CLIENT,
  correctionOf,
  entry,
  meta,
  OTHER,
  stored,
} from '../test-support/entries.ts'
import type { CursorsRecord } from './client-store.ts'
import { CHUNK_ENTRIES_MAX } from './limits.ts'
import { planAck, planFeed, planPages } from './plans-sync.ts'

const cursors = (patch: Partial<CursorsRecord> = {}): CursorsRecord => ({
  tenant: 't1',
  scopeKey: 'k',
  cursors: {},
  chunkLast: 0,
  stagedKeys: 0,
  ...patch,
})

describe('planAck', () => {
  it('deletes what it answers, keeps seq_gap, skips what is gone, numbers outcomes', () => {
    const [e1, e2, e3, e4] = [1, 2, 3, 4].map((s) => entry(CLIENT, s))
    const items = [
      ackItem(e1!, appendedResult(e1!, 0, 5)),
      ackItem(e2!, { id: e2!.id, status: 'refused', code: 'seq_gap', reason: '', head: 0 }),
      ackItem(e3!, { id: e3!.id, status: 'refused', code: 'conflict', reason: 'r', head: 3 }),
      ackItem(e4!, appendedResult(e4!, 0, 6)),
    ]
    const plan = planAck(
      items,
      [true, true, true, false],
      meta({ outboxEntries: 4, outboxBytes: 400, n: 10 }),
      undefined,
      () => true,
      false,
    )
    expect(plan.deletes.map((r) => r.id)).toEqual([e1!.id, e3!.id])
    expect(plan.gaps).toBe(1)
    expect(plan.acked.map((a) => a.id)).toEqual([e1!.id])
    expect(plan.outcomes.map((o) => [o.id, o.n, o.outcome._tag])).toEqual([
      [e1!.id, 11, 'appended'],
      [e3!.id, 12, 'refused'],
    ])
    expect(plan.meta).toMatchObject({ outboxEntries: 2, outboxBytes: 200, n: 12 })
  })

  it('keeps no acked record the cursor passed, none out of scope, and nothing but deletes when lean', () => {
    const e1 = entry(CLIENT, 1)
    const c = correctionOf(e1, 0, 6)
    const ref = {
      id: c.id,
      entity: 'order/o1',
      kind: c.kind,
      version: 1,
      partition: 0,
      offset: 6,
    }
    const item = ackItem(e1, { ...appendedResult(e1, 0, 5), corrections: [ref] })
    const passed = planAck([item], [true], meta({ outboxEntries: 1 }), { 0: 5 }, () => true, false)
    expect(passed.acked).toEqual([])
    // A correction is a reference: its entity looks again, its body comes with a page.
    expect([...passed.entities].sort()).toEqual(['order/o1', 'stock/a'])
    expect(
      planAck([item], [true], meta({ outboxEntries: 1 }), {}, () => false, false).acked,
    ).toEqual([])
    const lean = planAck([item], [true], meta({ outboxEntries: 1 }), {}, () => true, true)
    expect(lean).toMatchObject({ acked: [], outcomes: [] })
    expect(lean.deletes.length).toBe(1)
    expect(lean.settled.get(e1.id)).toMatchObject({ _tag: 'appended' })
  })

  it('names as changed only the entities whose shown state an ack changes', () => {
    const [e1, e2, e3] = [1, 2, 3].map((s) => entry(CLIENT, s, `stock/e${s}`))
    const items = [
      ackItem(e1!, appendedResult(e1!, 0, 5)), // kept pending (acked record): nothing shows
      ackItem(e2!, { id: e2!.id, status: 'refused', code: 'conflict', reason: 'r', head: 3 }),
      ackItem(e3!, appendedResult(e3!, 1, 2)), // its page came first: pending no more
    ]
    const m = meta({ outboxEntries: 3 })
    const plan = planAck(items, [true, true, true], m, { 1: 2 }, () => true, false)
    expect([...plan.entities].sort()).toEqual(['stock/e1', 'stock/e2', 'stock/e3'])
    expect([...plan.changed].sort()).toEqual(['stock/e2', 'stock/e3'])
    // Out of scope (no acked record kept), or lean: the pending entry goes.
    expect(
      [...planAck(items, [true, true, true], m, {}, () => false, false).changed].sort(),
    ).toEqual(['stock/e1', 'stock/e2', 'stock/e3'])
    expect(
      planAck(items.slice(0, 1), [true], m, {}, () => true, true).changed.has('stock/e1'),
    ).toBe(true)
  })

  it('keeps the record of an id_conflict or a deferral, with no outcome', () => {
    // Issue 12: neither is a decision; the record is never deleted on them.
    const [e1, e2] = [1, 2].map((s) => entry(CLIENT, s))
    const plan = planAck(
      [
        ackItem(e1!, { id: e1!.id, status: 'id_conflict', reason: 'another entry' }),
        ackItem(e2!, {
          id: e2!.id,
          status: 'deferred',
          code: 'unknown_type',
          reason: 'no type yet',
          retryAfterMs: 1_000,
        }),
      ],
      [true, true],
      meta({ outboxEntries: 2, outboxBytes: 200 }),
      undefined,
      () => true,
      false,
    )
    expect(plan).toMatchObject({ deletes: [], outcomes: [], acked: [], gaps: 0 })
    expect(plan.meta).toMatchObject({ outboxEntries: 2, outboxBytes: 200 })
    expect(plan.settled.size).toBe(0)
  })
})

describe('planPages', () => {
  it('drops what the cursor covers, takes the last page’s cursors, and stages the chunks', () => {
    const page = [stored(entry(OTHER, 1), 1, 2, 4), stored(entry(OTHER, 2, 'stock/b'), 1, 2, 5)]
    const plan = planPages(
      [
        { entries: page, cursors: { 2: 5 } },
        { entries: [stored(entry(OTHER, 3), 2, 1, 1)], cursors: { 1: 1, 3: 9 } },
      ],
      cursors({ cursors: { 2: 4 }, chunkLast: 7, stagedKeys: 3 }),
      [CLIENT],
    )
    expect(plan.stored).toBe(2) // offset 4 of partition 2 was stored before
    expect(plan.cursors).toMatchObject({ cursors: { 1: 1, 2: 5, 3: 9 }, chunkLast: 9 })
    expect(plan.chunks.map((c) => [c.n, c.partition, c.first, c.last])).toEqual([
      [8, 2, 5, 5],
      [9, 1, 1, 1],
    ])
    expect(plan.staged?.entities).toEqual([
      ['stock/b', [8]],
      ['stock/a', [9]],
    ])
    expect(plan.cursors.stagedKeys).toBe(5)
  })

  it('cuts a partition’s run into chunks of CHUNK_ENTRIES_MAX', () => {
    const many = Array.from({ length: CHUNK_ENTRIES_MAX + 3 }, (_, i) =>
      stored(entry(OTHER, i + 1), i + 1, 0, i + 1),
    )
    const plan = planPages([{ entries: many, cursors: {} }], cursors(), [CLIENT])
    expect(plan.chunks.map((c) => c.entries.length)).toEqual([CHUNK_ENTRIES_MAX, 3])
    expect(plan.staged?.entities).toEqual([['stock/a', [1, 2]]])
    expect(plan.staged?.keys).toBe(2)
  })

  it('finds own entries and only the log’s corrections of own entries', () => {
    const mine = entry(CLIENT, 1)
    const theirs = entry(OTHER, 1)
    const forged = { ...correctionOf(mine, 0, 4), clientId: OTHER, clientSeq: 2 }
    const plan = planPages(
      [
        {
          entries: [
            stored(mine, 1, 0, 1),
            correctionOf(mine, 0, 2),
            correctionOf(theirs, 0, 3),
            forged,
          ],
          cursors: {},
        },
      ],
      cursors(),
      [CLIENT],
    )
    expect(plan.ownReceived).toEqual([mine.id])
    expect(plan.feedCandidates.map((c) => c.of)).toEqual([mine.id])
  })
})

describe('planFeed', () => {
  it('adds each correction the feed does not hold, numbered on', () => {
    const c = correctionOf(entry(CLIENT, 1), 0, 1)
    const candidate = { id: c.id, n: 0, entry: c, of: 'x', unseen: true }
    const plan = planFeed([candidate, { ...candidate, id: 'other' }], [true, false], {
      n: 4,
      correctionsUnseen: 1,
    })
    expect(plan.records.map((r) => [r.id, r.n])).toEqual([['other', 5]])
    expect(plan).toMatchObject({ n: 5, correctionsUnseen: 2 })
  })
})

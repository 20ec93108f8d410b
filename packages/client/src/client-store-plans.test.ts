// Goal: the write decisions both client stores share, on their own: which outbox records an ack
// deletes and what it keeps (never on an id_conflict or a deferral), how pages become chunks and
// a staged record, which corrections join the feed, how an append allocates and a reissue
// renames, and what a session's first write puts back and records (restore recovery).
// Method: the pure functions on hand-made entries; no storage.
import { describe, expect, it } from 'vitest'
import {
  ackItem,
  appendedResult,
  CLIENT,
  correctionOf,
  entry,
  meta,
  NOW,
  OTHER,
  record,
  stored,
} from '../test-support/entries.ts'
import {
  checkedBatch,
  completedMeta,
  planAck,
  planAppend,
  planFeed,
  planPages,
  planReissue,
  planSession,
} from './client-store-plans.ts'
import type { CursorsRecord } from './client-store.ts'
import { ClientError } from './errors.ts'
import { CHUNK_ENTRIES_MAX } from './limits.ts'

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

describe('planFeed, planAppend, checkedBatch, planReissue', () => {
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

  it('allocates clientSeq after seqLast, sizes each entry, and refuses past the limits', () => {
    const m = meta({ seqLast: 4, outboxEntries: 1, outboxBytes: 10 })
    const make = (c: string, first: number) => [entry(c, first), entry(c, first + 1)]
    const plan = planAppend(m, make, { entriesMax: 3, bytesMax: 100 }, NOW, () => 20)
    expect(plan.records.map((r) => r.clientSeq)).toEqual([5, 6])
    expect(plan.written).toMatchObject({ seqLast: 6, outboxEntries: 3, outboxBytes: 50 })
    const full = () => planAppend(m, make, { entriesMax: 2, bytesMax: 100 }, NOW, () => 20)
    expect(full).toThrow(ClientError)
    expect(() =>
      planAppend(
        m,
        (c, f) => [entry(c, f + 1)],
        { entriesMax: 9, bytesMax: 1e6 },
        NOW,
        () => 1,
      ),
    ).toThrow(/seq order/)
  })

  it('checks records read back and cuts a batch by bytes, the first always', () => {
    const rs = [1, 2, 3].map((s) => record(entry(CLIENT, s), 40))
    expect(checkedBatch(rs, 100).map((r) => r.clientSeq)).toEqual([1, 2])
    expect(checkedBatch(rs, 1).map((r) => r.clientSeq)).toEqual([1])
    const broken = { ...record(entry(CLIENT, 4)), clientSeq: 5 }
    expect(() => checkedBatch([broken], 100)).toThrow(/matches its entry/)
  })

  it('renames the outbox from clientSeq 1 and forwards each old id', () => {
    const rs = [3, 4].map((s) => record(entry(CLIENT, s)))
    const plan = planReissue(meta({ seqLast: 4, n: 2 }), rs, OTHER)
    expect(plan.records.map((r) => [r.id, r.entry.clientId, r.clientSeq])).toEqual([
      [`${OTHER}-1`, OTHER, 1],
      [`${OTHER}-2`, OTHER, 2],
    ])
    expect(plan.outcomes.map((o) => [o.id, o.n, o.outcome.as])).toEqual([
      [`${CLIENT}-3`, 3, `${OTHER}-1`],
      [`${CLIENT}-4`, 4, `${OTHER}-2`],
    ])
    expect(plan.meta).toMatchObject({
      clientId: OTHER,
      seqLast: 2,
      clientIds: [CLIENT, OTHER],
      n: 4,
    })
    // Recovery ends with the move; the same outbox moved to the same id gives the same entries.
    const again = planReissue(
      meta({ seqLast: 4, n: 2, recovering: true }),
      [...rs].reverse(),
      OTHER,
    )
    expect(again.meta.recovering).toBe(false)
    expect(again.records).toEqual(plan.records)
  })
})

describe('planSession, completedMeta', () => {
  const LOG = { id: 'log-a', generation: 1 }

  it('records the tenant and log of a first welcome, and recovers a restored database', () => {
    const first = planSession(
      meta({ tenant: null, seqLast: 2 }),
      { clientId: CLIENT, tenant: 't1', log: LOG, high: 2 },
      [],
      new Set(),
      () => 10,
    )
    expect(first.meta).toMatchObject({ tenant: 't1', log: LOG, recovering: false })
    expect(first).toMatchObject({ putBack: [], clearHistory: false })
    // Issue 12 case 1: the log holds more of this clientId than the database ever allocated.
    const restored = planSession(
      meta({ log: LOG, seqLast: 2 }),
      { clientId: CLIENT, tenant: 't1', log: LOG, high: 3 },
      [],
      new Set(),
      () => 10,
    )
    expect(restored.meta.recovering).toBe(true)
    expect(restored.clearHistory).toBe(false)
  })

  it('puts back what another log may lack: every own entry held, once, in order', () => {
    // Issue 12 case 4: from acked records and confirmed history, not what the outbox holds; at
    // or below the high-water mark too (the mark counts deferrals the old copy may hold).
    const [e1, e2, e3, e4] = [1, 2, 3, 4].map((seq) => entry(CLIENT, seq))
    const held = [
      stored(e3!, 3, 0, 3),
      e2!, // an acked record's entry
      stored(e1!, 1, 0, 1),
      stored(e2!, 2, 0, 2),
      stored(entry(OTHER, 5), 4, 0, 4),
      stored(e4!, 4, 0, 5),
    ]
    const plan = planSession(
      meta({ log: LOG, seqLast: 5, outboxEntries: 1, outboxBytes: 10 }),
      { clientId: CLIENT, tenant: 't1', log: { id: 'log-a', generation: 2 }, high: 1 },
      held,
      new Set([e4!.id]),
      () => 10,
    )
    expect(plan.putBack.map((r) => r.id)).toEqual([e1!.id, e2!.id, e3!.id])
    expect(plan.putBack[1]?.entry).toEqual(e2)
    expect(plan.putBack[2]?.entry).toEqual(e3) // the positions the old log gave are gone
    expect(plan.ackedDeletes).toEqual([e2!.id])
    expect(plan.clearHistory).toBe(true)
    expect(plan.meta).toMatchObject({
      recovering: true,
      log: { id: 'log-a', generation: 2 },
      outboxEntries: 4,
      outboxBytes: 40,
    })
  })

  it('fills what an older build’s meta record lacks, once', () => {
    const { tenant: _t, deviceSecret: _d, recovering: _r, log: _l, ...old } = meta()
    const filled = completedMeta(old as never, () => 'f'.repeat(32), 'acme')
    expect(filled).toMatchObject({
      tenant: 'acme',
      deviceSecret: 'f'.repeat(32),
      recovering: false,
      log: null,
    })
    expect(completedMeta(filled!, () => 'x', 'other')).toBeUndefined()
  })
})

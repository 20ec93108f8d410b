// Goal: the decisions of restore recovery that both client stores share: how a reissue renames
// the outbox, and what a session's first write puts back and records.
// Method: the pure functions on hand-made entries; no storage.
import { describe, expect, it } from 'vitest'
import { CLIENT, entry, meta, OTHER, record, stored } from '../test-support/entries.ts'
import { planReissue, planSession } from './plans-recovery.ts'

describe('planReissue', () => {
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

describe('planSession', () => {
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
})

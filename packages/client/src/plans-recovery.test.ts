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

  it('puts back every held entry of an answered earlier clientId, moved under the current one', () => {
    // Issue 14 finding A: the welcome answers the marks of the hello's earlier clientIds; all
    // their held entries go back after the outbox (seqLast + 1 …) with their origin, at or
    // below the mark too (the older log may hold one only as a deferral; it answers the ones
    // it holds duplicate); a void of one names its new id; an earlier clientId the welcome did
    // not answer puts nothing back; an entry whose origin an outbox record carries already is
    // not put back twice.
    const OLDER = 'd'.repeat(32)
    const UNANSWERED = 'e'.repeat(32)
    const [o1, o2, o3] = [1, 2, 3].map((seq) => entry(OLDER, seq))
    const voidOf3 = { ...entry(OLDER, 4), kind: 'stock.voided', corrects: o3!.id }
    const moved = { ...entry(CLIENT, 1), data: o2!.data, origin: o2!.id }
    const held = [
      stored(o1!, 1, 0, 1),
      stored(o2!, 2, 0, 2),
      stored(o3!, 3, 0, 3),
      voidOf3,
      stored(entry(UNANSWERED, 1), 4, 0, 4),
    ]
    const plan = planSession(
      meta({ log: LOG, seqLast: 1, clientIds: [UNANSWERED, OLDER, CLIENT] }),
      {
        clientId: CLIENT,
        tenant: 't1',
        log: { id: 'log-b', generation: 1 },
        high: 0,
        older: [{ clientId: OLDER, high: 1 }],
      },
      held,
      new Set([moved.id, moved.origin]),
      () => 10,
    )
    expect(plan.putBack.map((r) => [r.id, r.entry.origin, r.entry.corrects])).toEqual([
      [`${CLIENT}-2`, o1!.id, undefined],
      [`${CLIENT}-3`, o3!.id, undefined],
      [`${CLIENT}-4`, voidOf3.id, `${CLIENT}-3`],
    ])
    expect(plan.putBack[1]?.entry.data).toEqual(o3!.data)
    expect(plan.ackedDeletes).toEqual([voidOf3.id])
    expect(plan.outcomes.map((o) => [o.id, o.outcome.as])).toEqual([
      [o1!.id, `${CLIENT}-2`],
      [o3!.id, `${CLIENT}-3`],
      [voidOf3.id, `${CLIENT}-4`],
    ])
    expect(plan.meta).toMatchObject({ seqLast: 4, outboxEntries: 3, recovering: true })
  })
})

describe('planReissue and origins', () => {
  it('sets origin on the first move, keeps it on later ones, and sends a void after its sale', () => {
    // Issue 14 finding B: the log dedupes moved entries on their first id; a void put back
    // before the sale it corrects (by the sale's origin) goes right after the sale.
    const sale = { ...entry(CLIENT, 2), origin: 'd'.repeat(32) + '-7' }
    const voided = { ...entry(CLIENT, 1), kind: 'stock.voided', corrects: sale.origin }
    const plain = entry(CLIENT, 3)
    const first = planReissue(
      meta({ seqLast: 3 }),
      [voided, sale, plain].map((e) => record(e)),
      OTHER,
    )
    expect(first.records.map((r) => [r.id, r.entry.origin, r.entry.corrects])).toEqual([
      [`${OTHER}-1`, sale.origin, undefined],
      [`${OTHER}-2`, voided.id, `${OTHER}-1`],
      [`${OTHER}-3`, plain.id, undefined],
    ])
    const again = planReissue(first.meta, first.records, 'f'.repeat(32))
    expect(again.records.map((r) => r.entry.origin)).toEqual([sale.origin, voided.id, plain.id])
  })
})

// Goal: the decisions of an append that both client stores share: clientSeq allocated after
// seqLast with each entry sized and checked, the limits refused, records checked again when read
// back, and an older build's meta record completed once.
// Method: the pure functions on hand-made entries; no storage.
import { describe, expect, it } from 'vitest'
import { CLIENT, entry, meta, NOW, record } from '../test-support/entries.ts'
import { ClientError } from './errors.ts'
import { checkedBatch, completedMeta, planAppend } from './plans-outbox.ts'

describe('planAppend, checkedBatch, completedMeta', () => {
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

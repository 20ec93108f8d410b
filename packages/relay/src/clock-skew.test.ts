// Goal: issue 13 case 17 — an entry stamped far in the future (a till whose clock says the year
// 30,000, or one a day ahead) is not appended: it is `deferred` with code `clock_ahead` and a retry
// hint, nothing is written, the clientSeq is used up (the client's next entries are not
// `seq_gap`), and a resend is decided again from scratch. An entry a minute ahead (inside
// ENTRY_CLOCK_SKEW_MS_MAX, ten minutes) is appended as usual. On 3a8bfae all of them land.
// Method: the real relay on SQLite and PostgreSQL, one wire client pushing four entries.
import { describe, expect, it } from 'vitest'
import type { AckResult } from '@ledgerline/protocol'
import {
  deferredCode,
  deferredRetryMs,
  LOG_KINDS,
  makeEntry,
  pushAcked,
  TENANT,
  useEdgeRelays,
} from './edges.test-helper.ts'

const TILL = 'c1'.repeat(16)
const YEAR_30000_MS = Date.UTC(30_000, 0, 1)
const DAY_MS = 24 * 60 * 60 * 1000

const edge = useEdgeRelays()

describe.each(LOG_KINDS)('issue 13 case 17: clocks from far in the future (%s)', (kind) => {
  it('defers entries stamped beyond the allowed skew, appends the rest, and decides a resend again', async () => {
    const relay = await edge.start(kind)
    const till = await edge.connect(relay.url, TILL)
    const now = Date.now()
    const far = makeEntry(TILL, 1, 'order/o17', 'order.line', { n: 1 }, { hlc: hlc(YEAR_30000_MS) })
    const fine = makeEntry(TILL, 2, 'order/o17', 'order.line', { n: 2 })
    const dayAhead = makeEntry(
      TILL,
      3,
      'order/o17',
      'order.line',
      { n: 3 },
      { occurredAt: now + DAY_MS },
    )
    const minuteAhead = makeEntry(
      TILL,
      4,
      'order/o17',
      'order.line',
      { n: 4 },
      { hlc: hlc(now + 60_000), occurredAt: now + 60_000 },
    )
    const results = await pushAcked(till, 1, [far, fine, dayAhead, minuteAhead])
    expect(results.map(summary)).toEqual([
      'deferred:clock_ahead',
      'appended',
      'deferred:clock_ahead',
      'appended',
    ])
    for (const r of [results[0], results[2]] as AckResult[]) {
      expect(deferredRetryMs(r)).toBeGreaterThan(0)
    }
    const ledger = await relay.store.readEntity(TENANT, 'order/o17', 1, 100)
    expect(ledger.map((e) => e.id)).toEqual([fine.id, minuteAhead.id])
    // The clientSeqs are used up: the next entry follows on.
    const next = makeEntry(TILL, 5, 'order/o17', 'order.line', { n: 5 })
    expect((await pushAcked(till, 2, [next])).map(summary)).toEqual(['appended'])
    // A resend of a deferral is decided again, not answered from a record.
    expect((await pushAcked(till, 3, [far])).map(summary)).toEqual(['deferred:clock_ahead'])
    expect((await relay.store.readEntity(TENANT, 'order/o17', 1, 100)).length).toBe(3)
  })
})

function hlc(ms: number): string {
  return `${String(ms).padStart(15, '0')}:00000:${TILL}`
}

function summary(r: AckResult): string {
  const code = deferredCode(r)
  if (code !== undefined) return `deferred:${code}`
  return r.status === 'refused' ? `refused:${r.code}` : r.status
}

// Goal: the planner's results say what the log decided and nothing a pusher may not read: a
// duplicate is the original result with status duplicate, corrections are listed only when the
// pusher may read their entity (all of them for the log's own calls), a deferral carries the
// decision's code and retry hint, and an old `unknown_type` refusal reads as a deferral.
// Method: hand-made stored entries and results, pushers with narrow and wide read grants.
import { describe, expect, it } from 'vitest'
import type { StoredEntry } from '@ledgerline/core'
import type { Pusher } from './log-store.ts'
import {
  correctionRef,
  deferredOf,
  duplicateOf,
  isLegacyDeferral,
  resultOf,
  visible,
} from './plan-results.ts'
import type { AppendedResult, RefusalCode } from './plan-types.ts'

const stored = {
  id: 'log-c1',
  tenant: 'acme',
  entity: 'order/o1',
  kind: 'order.balance_due',
  data: {},
  intent: 'fact',
  clientId: 'server',
  clientSeq: 0,
  hlc: 'h',
  occurredAt: 1,
  version: 3,
  partition: 2,
  offset: 41,
  committedAt: 1000,
} as unknown as StoredEntry

const original: AppendedResult = {
  id: 'e1',
  status: 'appended',
  version: 7,
  partition: 1,
  offset: 40,
  committedAt: 1000,
  corrections: [
    { id: 'c1', entity: 'stock/s1', kind: 'stock.oversold', version: 8, partition: 1, offset: 41 },
    { id: 'c2', entity: 'order/o1', kind: 'order.due', version: 3, partition: 2, offset: 41 },
  ],
}

function pusher(read: string[]): Pusher {
  return { subject: 'till-1', grants: { read, write: ['stock/*'] } } as unknown as Pusher
}

describe('results of the planner', () => {
  it('names a stored correction by where it landed, and gives its own appended result', () => {
    expect(correctionRef(stored)).toEqual({
      id: 'log-c1',
      entity: 'order/o1',
      kind: 'order.balance_due',
      version: 3,
      partition: 2,
      offset: 41,
    })
    expect(resultOf(stored)).toEqual({
      id: 'log-c1',
      status: 'appended',
      version: 3,
      partition: 2,
      offset: 41,
      committedAt: 1000,
      corrections: [],
    })
  })

  it('shows a pusher only the corrections it may read, the log every one', () => {
    expect(visible(original, undefined)).toBe(original)
    expect(visible(original, pusher(['stock/*', 'order/*']))).toBe(original)
    expect(visible(original, pusher(['stock/*'])).corrections.map((c) => c.id)).toEqual(['c1'])
    expect(visible(original, pusher([])).corrections).toEqual([])
    expect(original.corrections).toHaveLength(2) // the record keeps every one
  })

  it('answers a duplicate with the original positions, as its pusher may see them', () => {
    const dup = duplicateOf(original, pusher(['order/*']))
    expect(dup).toEqual({
      ...original,
      status: 'duplicate',
      corrections: [original.corrections[1]],
    })
    expect(original.status).toBe('appended')
  })

  it('carries a deferral decision onto the wire result', () => {
    const decision = {
      _tag: 'defer',
      code: 'clock_ahead',
      reason: 'ahead',
      retryAfterMs: 250,
    } as const
    expect(deferredOf('e9', decision)).toEqual({
      id: 'e9',
      status: 'deferred',
      code: 'clock_ahead',
      reason: 'ahead',
      retryAfterMs: 250,
    })
  })

  it('reads an old unknown_type refusal as a deferral, and nothing else', () => {
    const refusal = (code: string) => ({
      _tag: 'refusal' as const,
      digest: null,
      result: {
        id: 'e1',
        status: 'refused' as const,
        code: code as RefusalCode,
        reason: 'r',
        head: 0,
      },
    })
    expect(isLegacyDeferral(refusal('unknown_type'))).toBe(true)
    expect(isLegacyDeferral(refusal('conflict'))).toBe(false)
    expect(isLegacyDeferral({ _tag: 'deferral', digest: null, code: 'unknown_type' })).toBe(false)
  })
})

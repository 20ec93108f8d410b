// Goal: the pure halves of a push (`session-push.ts` invariant 5): which items the relay refuses
// itself before the log decides, and how a rejected append closes the session. Method: entries
// of this client, of another tenant, outside the write grants and of another client; log and
// relay errors of each kind. The wire behaviour is covered by `relay.test.ts` and the edge tests.
import { describe, expect, it } from 'vitest'
import { LogStoreError } from './log-store.ts'
import { RelayError } from './relay-error.ts'
import type { SessionIdentity } from './session-auth.ts'
import { appendFailure, pushItems } from './session-push.ts'
import { BadMessage } from './subscriptions.ts'
import { makeEntry } from './edges.test-helper.ts'

const TILL = '5a'.repeat(16)
const identity: SessionIdentity = {
  tenant: 'acme',
  subject: 'till-1',
  grants: { read: ['*'], write: ['order/*'] },
  clientId: TILL,
}

describe('pushItems', () => {
  it('passes granted entries and refuses another tenant and ungranted entities as forbidden', () => {
    const granted = makeEntry(TILL, 1, 'order/o1', 'order.line', {})
    const foreign = { ...makeEntry(TILL, 2, 'order/o2', 'order.line', {}), tenant: 'other' }
    const ungranted = makeEntry(TILL, 3, 'stock/s1', 'stock.moved', { qty: 1 })
    expect(pushItems([granted, foreign, ungranted], identity)).toEqual([
      { entry: granted },
      { entry: foreign, refuse: { code: 'forbidden', reason: 'entry of another tenant' } },
      { entry: ungranted, refuse: { code: 'forbidden', reason: 'no write grant for stock/s1' } },
    ])
  })

  it('throws BadMessage for an entry of another client, so no clientSeq is used up', () => {
    const other = makeEntry('6b'.repeat(16), 1, 'order/o1', 'order.line', {})
    const mine = makeEntry(TILL, 1, 'order/o1', 'order.line', {})
    expect(() => pushItems([mine, other], identity)).toThrow(BadMessage)
  })
})

describe('appendFailure', () => {
  it('maps overloaded, closing and every other rejection to the kind the session closes with', () => {
    expect(appendFailure(new LogStoreError('overloaded', 'queue full'))).toEqual({
      kind: 'overloaded',
      message: 'the log is overloaded, retry later: queue full',
    })
    expect(appendFailure(new LogStoreError('closed', 'closed')).kind).toBe('shutting_down')
    expect(appendFailure(new RelayError('store_closed', 'closed')).kind).toBe('shutting_down')
    expect(appendFailure(new RelayError('config', 'x')).kind).toBe('internal')
    expect(appendFailure(new Error('disk')).kind).toBe('internal')
  })
})

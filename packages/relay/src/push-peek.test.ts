// Goal: push-peek.ts invariants — it reads the entry count of every push the codec makes, says
// nothing of other frames, and never throws on any bytes. Method: pushes of 0..600 entries made
// by the protocol's own encoder, every other message type, truncations, and seeded random bytes.
import { describe, expect, it } from 'vitest'
import { encodeMessage } from '@ledgerline/protocol'
import type { Message } from '@ledgerline/protocol'
import { createPrng } from '@ledgerline/testkit'
import { makeEntry } from './edges.test-helper.ts'
import { peekPushEntries } from './push-peek.ts'

const CLIENT = 'c3'.repeat(16)

describe('peekPushEntries', () => {
  it('reads the entry count of pushes the codec makes', () => {
    for (const n of [0, 1, 15, 16, 500, 600]) {
      const entries = Array.from({ length: n }, (_, i) =>
        makeEntry(CLIENT, i + 1, 'order/o1', 'order.line', { i }),
      )
      const frame = encodeMessage({ type: 'push', batch: 2 ** 40, entries } as Message)
      expect(peekPushEntries(frame)).toBe(n)
    }
  })

  it('says nothing of other messages, or of truncated and random bytes', () => {
    const others: Message[] = [
      { type: 'ping', t: 1.5 },
      { type: 'credit', sub: 1, pages: 2 },
      { type: 'subscribe', sub: 1, scope: ['*'], cursors: {}, credit: 1 },
      { type: 'renew', token: 'x' },
    ]
    for (const m of others) expect(peekPushEntries(encodeMessage(m))).toBeUndefined()
    const push = encodeMessage({ type: 'push', batch: 1, entries: [] } as Message)
    for (let cut = 0; cut < push.length; cut++) {
      expect(peekPushEntries(push.subarray(0, cut))).toBeUndefined()
    }
    const rng = createPrng(11)
    for (let i = 0; i < 2_000; i++) {
      const bytes = new Uint8Array(rng.int(0, 64)).map(() => rng.int(0, 255))
      expect(() => peekPushEntries(bytes)).not.toThrow()
    }
  })
})

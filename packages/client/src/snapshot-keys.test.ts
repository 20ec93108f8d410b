// Goal: snapshots are keyed by the entity type and its fold version only (issue 12 case 6), and
// the source fingerprint beside them is deterministic and tells texts apart.
// Method: the two functions on hand-made reduce functions.
import { describe, expect, it } from 'vitest'
import { reduceSource, snapshotTypeKey } from './snapshot-keys.ts'

describe('snapshot keys', () => {
  it('keys by type and fold version, whatever reduce looks like', () => {
    expect(snapshotTypeKey('stock', 1)).toBe('stock@1')
    expect(snapshotTypeKey('stock', 2)).not.toBe(snapshotTypeKey('stock', 1))
    expect(snapshotTypeKey('order', 1)).not.toBe(snapshotTypeKey('stock', 1))
  })

  it('fingerprints the source text of reduce, the same text the same way', () => {
    const weight = 2
    const a = (s: number) => s + 1
    const b = (s: number) => s + weight
    expect(reduceSource('tally', a)).toBe(reduceSource('tally', (s: number) => s + 1))
    expect(reduceSource('tally', a)).not.toBe(reduceSource('tally', b))
    expect(reduceSource('tally', a)).toMatch(/^tally:[0-9a-f]+:\d+$/)
  })
})

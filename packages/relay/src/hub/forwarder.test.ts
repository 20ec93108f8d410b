// Goal: the forwarder's batches (`forwarder.ts` invariants 1, 3, 4): each clientId's entries in
// clientSeq order, a clientId whose earlier row is left out has none of its later rows sent, held
// rows go only when head office will refuse them too, and a batch stays within head office's
// entry and byte limits. And which of head office's results settle a queue row.
import { describe, expect, it } from 'vitest'
import type { Entry } from '@ledgerline/core'
import type { AckResult } from '@ledgerline/protocol'
import { makeEntry } from '../edges.test-helper.ts'
import { isFinal, nextBatch } from './forwarder.ts'
import type { QueuedEntry } from './hub-queue.ts'

const A = 'a'.repeat(32)
const B = 'b'.repeat(32)
let seq = 0
const row = (entry: Entry, subject: string, held: string | null = null): QueuedEntry => ({
  seq: ++seq,
  entry,
  bytes: JSON.stringify(entry).length,
  subject,
  held,
  result: null,
})
const ids = (entries: readonly Entry[]) => entries.map((e) => e.id)

describe('nextBatch', () => {
  it('keeps each client in clientSeq order and names every subject', () => {
    const rows = [
      row(makeEntry(A, 2, 'sale/1', 'sold', {}), 'till-a'),
      row(makeEntry(B, 1, 'sale/2', 'sold', {}), 'till-b'),
      row(makeEntry(A, 1, 'sale/3', 'sold', {}), 'till-a'),
    ]
    const batch = nextBatch(rows, { entriesMax: 10, bytesMax: 1_000_000, forward: ['*'] })
    expect(ids(batch.entries)).toEqual([`${A}-1`, `${A}-2`, `${B}-1`])
    expect(batch.subjects).toEqual({ [A]: 'till-a', [B]: 'till-b' })
  })

  it('leaves out a client after its first row that does not fit', () => {
    const rows = [
      row(makeEntry(A, 1, 'sale/1', 'sold', {}), 'till-a'),
      row(makeEntry(B, 1, 'sale/2', 'sold', {}), 'till-b'),
      row(makeEntry(A, 2, 'sale/3', 'sold', {}), 'till-a'),
      row(makeEntry(B, 2, 'sale/4', 'sold', {}), 'till-b'),
    ]
    const batch = nextBatch(rows, { entriesMax: 2, bytesMax: 1_000_000, forward: ['*'] })
    expect(ids(batch.entries)).toEqual([`${A}-1`, `${B}-1`])
    const big = nextBatch(
      [
        row(makeEntry(A, 1, 'sale/1', 'sold', { s: 'x'.repeat(500) }), 'till-a'),
        rows[1] as QueuedEntry,
      ],
      { entriesMax: 10, bytesMax: 600, forward: ['*'] },
    )
    // The first entry always goes (head office answers a too-large one itself).
    expect(ids(big.entries)).toEqual([`${A}-1`])
  })

  it('forwards a held row only outside the forward grant, and holds its client back else', () => {
    const held: QueuedEntry[] = []
    const rows = [
      row(makeEntry(A, 1, 'price/1', 'set', {}), 'till-a', 'no write grant for price/1'),
      row(makeEntry(B, 1, 'sale/1', 'set', {}), 'till-b', 'no write grant for sale/1'),
      row(makeEntry(B, 2, 'sale/2', 'sold', {}), 'till-b'),
    ]
    const batch = nextBatch(rows, {
      entriesMax: 10,
      bytesMax: 1_000_000,
      forward: ['sale/*'],
      onHeld: (r) => held.push(r),
    })
    expect(ids(batch.entries)).toEqual([`${A}-1`])
    expect(ids(held.map((r) => r.entry))).toEqual([`${B}-1`])
  })
})

describe('isFinal', () => {
  it('settles decisions and keeps what head office has not decided', () => {
    const results: [AckResult, boolean][] = [
      [
        {
          id: 'x',
          status: 'appended',
          version: 1,
          partition: 0,
          offset: 1,
          committedAt: 1,
          corrections: [],
        },
        true,
      ],
      [{ id: 'x', status: 'refused', code: 'forbidden', reason: '', head: 0 }, true],
      [{ id: 'x', status: 'id_conflict', reason: '' }, true],
      [{ id: 'x', status: 'refused', code: 'seq_gap', reason: '', head: 0 }, false],
      [{ id: 'x', status: 'deferred', code: 'clock_ahead', reason: '', retryAfterMs: 1 }, false],
      [{ id: 'x', status: 'stored' }, false],
    ]
    expect(results.map(([r]) => isFinal(r))).toEqual(results.map(([, final]) => final))
  })
})

// Goal: a spliced `snapshots` page is byte for byte what `encodeMessage` makes of the message
// (page-frames.ts invariant 1), at every array-header size, and refuses an oversize frame the
// same way (invariant 2).
import { expect, it } from 'vitest'
import { encodeMessage, FRAME_BYTES_MAX, isProtocolError } from '@ledgerline/protocol'
import type { LedgerSnapshot, Message } from '@ledgerline/protocol'
import { encodedSnapshot, encodeSnapshotsPage } from './page-frames.ts'

const snapshot = (i: number, state: LedgerSnapshot['state'] = { n: i, sum: i * 3 }) => ({
  entity: `item/e${i}`,
  foldKey: 'item@1',
  version: i + 1,
  partition: i % 4,
  offset: 1_000 + i,
  committedAt: 1_700_000_000_000 + i,
  state,
})

it.each([0, 1, 15, 16, 1_000])('splices a page of %i snapshots as encodeMessage does', (n) => {
  const snapshots = Array.from({ length: n }, (_, i) => snapshot(i))
  const message = { type: 'snapshots', sub: 7, snapshots } as unknown as Message
  expect(encodeSnapshotsPage(7, snapshots.map(encodedSnapshot))).toEqual(encodeMessage(message))
})

it('refuses a frame over FRAME_BYTES_MAX with too_large', () => {
  // Strings under the scan's own bound, 180 KiB a snapshot: six make a frame over the limit.
  const part = 'x'.repeat(60 * 1024)
  const state = { a: part, b: part, c: part }
  const page = Array.from({ length: 6 }, (_, i) => encodedSnapshot(snapshot(i, state)))
  let caught: unknown
  try {
    encodeSnapshotsPage(1, page)
  } catch (error) {
    caught = error
  }
  expect(isProtocolError(caught) && caught.kind).toBe('too_large')
  expect(page.reduce((n, s) => n + s.bytes.byteLength, 0)).toBeGreaterThan(FRAME_BYTES_MAX)
})
